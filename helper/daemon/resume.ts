import type { DeltaRecord } from '../format/index.js';
import { readAreaAt } from '../areas/index.js';
import type { HelperConfig } from '../config/index.js';
import { deriveTiming } from '../engine/timing.js';
import type { Clock } from '../leases/index.js';
import { DirectStorage } from '../storage/index.js';
import { stillRunning, type VmProcessControl } from '../vms/vm-processes.js';
import type { HelperState } from './state-file.js';

/**
 * Whether a starting helper may resume its predecessor's incarnation, so
 * that VMs running under it keep their leases (SPEC section 3, "Helper
 * restart"): same boot, every VM holding leases still has its supervisor
 * (and reported child) running as recorded, every lockspace is still
 * configured, and our delta record on disk is still the old incarnation's,
 * at its generation, with time left before its fail deadline to renew it.
 * Anything else: the safe path (stop the VMs, join anew).
 */

export type ResumeDecision = { readonly resume: true } | { readonly resume: false; readonly reason: string };

export type OwnRecordReader = (path: string, offset: number, hostId: number) => Promise<DeltaRecord>;

/** Reads our record with O_DIRECT like every other read of lease storage. */
export const readOwnRecord: OwnRecordReader = async (path, offset, hostId) => {
  const storage = await DirectStorage.open(path, { writable: false, ioTimeoutMs: 10_000 });
  try {
    const area = await readAreaAt(storage, offset);
    if ('leader' in area) throw new Error(`${path}:${offset} is not a lockspace`);
    const own = area.hosts[hostId - 1];
    if (!own || !own.ok) throw new Error(`${path}:${offset}: our record (host ${hostId}) is unreadable`);
    return own.value;
  } finally {
    if (storage.stats.overdue > 0) storage.abandon();
    else await storage.close();
  }
};

export async function decideResume(state: HelperState, config: HelperConfig, bootId: string, control: VmProcessControl, clock: Clock, read: OwnRecordReader = readOwnRecord): Promise<ResumeDecision> {
  if (state.incarnation.bootId !== bootId) return { resume: false, reason: 'the host rebooted since' };
  if (!state.vms.some((vm) => vm.held.length > 0)) return { resume: false, reason: 'no VM held a lease: nothing to resume' };
  for (const vm of state.vms) {
    if (vm.held.length === 0) continue;
    if (!vm.supervisor || !stillRunning(control, vm.supervisor)) return { resume: false, reason: `VM ${vm.uuid} holds leases but its supervisor is gone` };
    if (vm.child && !stillRunning(control, vm.child)) return { resume: false, reason: `VM ${vm.uuid}'s reported child is gone` };
  }
  const timing = deriveTiming(config.ioTimeoutMs, config.watchdog?.fireTimeoutMs ?? 0);
  for (const ls of state.lockspaces) {
    const configured = config.lockspaces.find((c) => c.name === ls.name);
    if (!configured || configured.path !== ls.path || configured.offset !== ls.offset) return { resume: false, reason: `lockspace ${ls.name} is no longer configured as it was` };
    let record: DeltaRecord;
    try {
      record = await read(ls.path, ls.offset, config.hostId);
    } catch (error) {
      return { resume: false, reason: `lockspace ${ls.name}: ${(error as Error).message}` };
    }
    const ours = record.owner.bootId === state.incarnation.bootId && record.owner.nonce === state.incarnation.nonce && record.owner.hostName === state.incarnation.hostName;
    if (!ours || record.generation !== ls.generation) return { resume: false, reason: `lockspace ${ls.name}: our record is no longer the old incarnation's generation ${ls.generation}` };
    // The record's timestamp is the monotonic time just before its write was submitted (T): the
    // VMs must be stopped by T + 8N unless a renewal lands; keep a renewal interval in hand.
    const leftMs = record.timestampMs + timing.failMs - timing.renewIntervalMs - clock.nowMs();
    if (leftMs <= 0) return { resume: false, reason: `lockspace ${ls.name}: the old delta lease is too close to (or past) its fail deadline` };
  }
  return { resume: true };
}

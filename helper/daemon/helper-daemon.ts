import { randomBytes } from 'node:crypto';
import { chownSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { HelperConfig } from '../config/index.js';
import type { Incarnation } from '../format/index.js';
import { fileBallotFloor, type Clock } from '../leases/index.js';
import type { HostPolicy } from '../../policy/index.js';
import { HelperError } from './helper-error.js';
import { incarnationName } from './incarnation.js';
import { readLibvirtPid } from './libvirt-pid.js';
import { JoinedLockspace, type LockspaceIdentity } from './joined-lockspace.js';
import type { Logger } from './log.js';
import { prepareRunDir, runDirLayout, type RunDirLayout } from './run-dir.js';
import { StoragePool } from './storage-pool.js';
import { writeState, type HelperState } from './state-file.js';
import { VmService } from '../vms/vm-service.js';
import type { Vm } from '../vms/vm.js';
import type { VmProcessControl } from '../vms/vm-processes.js';
import { leasesFromDomain, type DomainLeases, type DomainRegistration } from '../vms/domain-leases.js';
import { ensureAutoLeaseFile, gatherDiskFacts } from '../disks/index.js';
import type { UnsafeTestSwitches } from '../../protocol/unsafe-test-switches.js';

/**
 * The helper: one per host, root. Joins its lockspaces, keeps them renewed,
 * and serves VMs their leases through VmService. The sockets and the
 * watchdog are attached by the process entry point (helper-main), which
 * also owns signals.
 */

export interface HelperDeps {
  readonly clock: Clock;
  readonly wallClockMs: () => number;
  readonly log: Logger;
  readonly control: VmProcessControl;
  readonly incarnation: Incarnation;
  readonly randomBytes?: (n: number) => Buffer;
  /** This helper process (pid + start time), recorded so a successor can wait for it to be gone. */
  readonly self: { readonly pid: number; readonly startTime: string };
  /** Test-only, guarded (protocol/unsafe-test-switches.ts): never set on a real host. */
  readonly unsafeTestSwitches?: UnsafeTestSwitches;
}

export const STORAGE_IO_TIMEOUT_FACTOR = 1;
/** Each file-system call while looking at a domain's disks (a hung NFS server must not hang a register). */
export const DISK_STEP_TIMEOUT_MS = 10_000;

export class HelperDaemon {
  readonly layout: RunDirLayout;
  readonly lockspaces = new Map<string, JoinedLockspace>();
  readonly vms: VmService;
  private readonly pools: StoragePool;
  private readonly log: Logger;

  constructor(
    readonly config: HelperConfig,
    private policy: HostPolicy,
    private readonly deps: HelperDeps,
  ) {
    this.layout = runDirLayout(config.runDir);
    this.log = deps.log;
    // Each I/O's deadline is the io timeout: the engines count a late I/O as failed at N.
    this.pools = new StoragePool(config.ioTimeoutMs * STORAGE_IO_TIMEOUT_FACTOR);
    const random = deps.randomBytes ?? randomBytes;
    this.vms = new VmService({
      hostId: config.hostId,
      lockspace: (name) => this.lockspaces.get(name),
      leaseRoots: () => this.policy.leaseRoots,
      pool: this.pools,
      clock: deps.clock,
      wallClockMs: deps.wallClockMs,
      log: deps.log.child({ part: 'vms' }),
      control: deps.control,
      ballotFloor: (key) => fileBallotFloor(join(this.layout.ballotsDir, createHash('sha256').update(key).digest('hex').slice(0, 32))),
      writeSecret: (vm, secret) => this.writeSecret(vm, secret),
      libvirtPid: (domain) => readLibvirtPid(join(config.libvirtRunDir, `${domain}.pid`)),
      removeSecret: (vm) => rmSync(this.secretPath(vm), { force: true }),
      randomBytes: random,
      persist: () => this.persist(),
      signalOnFence: !(deps.unsafeTestSwitches?.enabled.has('no-helper-kill') ?? false),
    });
  }

  /** The leases a libvirt domain needs by this host's policy, with missing automatic lease files created. */
  leasesFromDomain(registration: DomainRegistration): Promise<DomainLeases> {
    return leasesFromDomain(
      {
        policy: () => this.policy,
        lockspaceGeometry: (name) => {
          const ls = this.lockspaces.get(name);
          return ls?.state === 'joined' ? { hostsMax: ls.spec.hostsMax, sectorSize: ls.spec.sectorSize, ioTimeoutMs: ls.spec.ioTimeoutMs } : undefined;
        },
        gatherFacts: (paths, roots) => gatherDiskFacts(paths, roots, { stepTimeoutMs: DISK_STEP_TIMEOUT_MS }),
        ensureAutoLeaseFile: (options) => ensureAutoLeaseFile({ ...options, stepTimeoutMs: DISK_STEP_TIMEOUT_MS }),
      },
      registration,
    );
  }

  get identity(): LockspaceIdentity {
    return {
      hostId: this.config.hostId,
      incarnation: this.deps.incarnation,
      ioTimeoutMs: this.config.ioTimeoutMs,
      watchdogFireTimeoutMs: this.config.watchdog?.fireTimeoutMs ?? 0,
      takeoverWithoutWatchdog: this.config.takeoverWithoutWatchdog,
      ...(this.deps.unsafeTestSwitches?.enabled.has('takeover-before-host-dead') ? { brokenRules: { takeoverBeforeHostDead: true } } : {}),
    };
  }

  get incarnation(): Incarnation {
    return this.deps.incarnation;
  }

  get control(): VmProcessControl {
    return this.deps.control;
  }

  get incarnationName(): string {
    return incarnationName(this.deps.incarnation);
  }

  prepare(): void {
    prepareRunDir(this.layout);
  }

  /** Everything a successor must know: written after each change (state-file.ts). */
  snapshot(): HelperState {
    return {
      version: 1,
      helper: this.deps.self,
      incarnation: this.deps.incarnation,
      lockspaces: [...this.lockspaces.values()].flatMap((ls) => (ls.generation === undefined ? [] : [{ name: ls.name, path: ls.config.path, offset: ls.config.offset, generation: ls.generation }])),
      vms: [...this.vms.vms.values()].map((vm) => ({
        uuid: vm.uuid,
        uid: vm.uid,
        gid: vm.gid,
        leases: vm.leases,
        held: vm.held.flatMap((l) => (l.lver === undefined || l.mode === undefined ? [] : [{ path: l.location.path, offset: l.location.offset, lver: l.lver, mode: l.mode }])),
        supervisor: vm.supervisor ?? null,
        child: vm.child ?? null,
        libvirtDomain: vm.libvirtDomain,
        secretHash: vm.secretHash?.toString('hex') ?? null,
      })),
    };
  }

  persist(): void {
    writeState(this.layout.stateFile, this.snapshot());
  }

  /** Joins every configured lockspace, each on its own; resolves when all are joined or failed. */
  async joinAll(onProgress?: (ls: JoinedLockspace) => void, previousIncarnationGone?: Incarnation): Promise<void> {
    const results = await Promise.allSettled(this.config.lockspaces.map((config) => this.addLockspace(config, onProgress, previousIncarnationGone)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw failed[0]!.reason;
  }

  async addLockspace(config: HelperConfig['lockspaces'][number], onProgress?: (ls: JoinedLockspace) => void, previousIncarnationGone?: Incarnation): Promise<JoinedLockspace> {
    if (this.lockspaces.has(config.name)) throw new HelperError('LOCKSPACE_EXISTS', 'refused', `lockspace ${JSON.stringify(config.name)} is already in use`);
    const log = this.log.child({ lockspace: config.name });
    const ls = await JoinedLockspace.open(config, this.identity, this.pools, this.deps.clock, log);
    this.lockspaces.set(config.name, ls);
    log.info({ msg: 'lockspace.joining', path: config.path, offset: config.offset, hostId: this.config.hostId, ioTimeoutMs: ls.timing.ioTimeoutMs });
    onProgress?.(ls);
    try {
      await ls.join(this.identity, { renewed: (l) => this.vms.onRenewed(l), lost: (l, reason) => this.vms.onLost(l, reason) }, previousIncarnationGone);
      this.persist();
    } catch (error) {
      this.lockspaces.delete(config.name);
      await ls.close();
      throw error;
    }
    return ls;
  }

  /**
   * Takes over the predecessor's incarnation (decideResume said it may):
   * each lockspace's delta lease is adopted at its generation (the engine
   * re-reads our record and renews at once), every VM is restored with its
   * processes, and each held lease is adopted after its leader is read back.
   */
  async resumeFrom(state: HelperState): Promise<void> {
    const events = { renewed: (l: JoinedLockspace) => this.vms.onRenewed(l), lost: (l: JoinedLockspace, reason: string) => this.vms.onLost(l, reason) };
    for (const config of this.config.lockspaces) {
      const previous = state.lockspaces.find((ls) => ls.name === config.name);
      if (!previous) {
        // A record of this same incarnation there is ours: no need to wait it out.
        await this.addLockspace(config, undefined, state.incarnation);
        continue;
      }
      const log = this.log.child({ lockspace: config.name });
      const ls = await JoinedLockspace.open(config, this.identity, this.pools, this.deps.clock, log);
      this.lockspaces.set(config.name, ls);
      await ls.resume(this.identity, events, previous.generation);
    }
    for (const vm of state.vms) await this.vms.restore(vm);
    this.persist();
    this.log.info({ msg: 'helper.resumed', lockspaces: [...this.lockspaces.keys()], vms: state.vms.map((v) => v.uuid) });
  }

  /** Removes a lockspace at runtime: only when no VM of this host holds a lease of it. */
  async removeLockspace(name: string): Promise<void> {
    const ls = this.lockspaces.get(name);
    if (!ls) throw new HelperError('LOCKSPACE_UNKNOWN', 'refused', `lockspace ${JSON.stringify(name)} is not in use`);
    const holders = [...this.vms.vms.values()].filter((vm) => vm.usesLockspace(name));
    if (holders.length > 0) throw new HelperError('LOCKSPACE_HELD', 'refused', `lockspace ${JSON.stringify(name)} has leases held for VMs ${holders.map((v) => v.uuid).join(', ')}`);
    await ls.leave();
    await ls.close();
    this.lockspaces.delete(name);
    this.persist();
  }

  replacePolicy(policy: HostPolicy): void {
    this.policy = policy;
  }

  /**
   * Orderly shutdown (SIGTERM): fence first. Every VM's processes are
   * stopped and proven gone, its leases released; a lockspace is written
   * free only when no process holding its leases is alive.
   */
  async shutdown(): Promise<{ clean: boolean }> {
    let clean = true;
    for (const vm of [...this.vms.vms.values()]) {
      try {
        await this.vms.unregister(vm.uuid);
      } catch (error) {
        clean = false;
        this.log.error({ msg: 'helper.shutdown-vm-failed', vm: vm.uuid, reason: (error as Error).message });
      }
    }
    this.vms.stopTimers();
    let allFree = true;
    for (const ls of this.lockspaces.values()) {
      const holders = [...this.vms.vms.values()].some((vm) => vm.usesLockspace(ls.name));
      const free = !holders && (await ls.leave().catch(() => false));
      allFree &&= free;
      await ls.close();
    }
    // A record not written free (a renewal write was unfinished, or storage failed) ages out only
    // with a watchdog: keep the state, so the next start knows it was ours and that nothing runs.
    if (clean && allFree) rmSync(this.layout.stateFile, { force: true });
    else this.persist();
    this.lockspaces.clear();
    await this.pools.closeAll();
    return { clean };
  }

  /** Stops without fencing or writing anything (SIGQUIT: the next start resumes the VMs). */
  async detach(): Promise<void> {
    this.vms.stopTimers();
    for (const ls of this.lockspaces.values()) await ls.close();
    this.lockspaces.clear();
    await this.pools.closeAll();
  }

  secretPath(vm: Vm): string {
    return join(this.layout.vmsDir, `${vm.uuid}.secret`);
  }

  private writeSecret(vm: Vm, secret: Buffer): void {
    const path = this.secretPath(vm);
    rmSync(path, { force: true });
    writeFileSync(path, `${secret.toString('base64url')}\n`, { mode: 0o400, flag: 'wx' });
    chownSync(path, vm.uid, vm.gid);
  }
}

import type { HostLease } from './host-lease.js';
import type { LeaseLocation } from './lease-location.js';
import { stillRunning, type ProcessRef, type SessionProcessRef, type VmProcessControl } from './vm-processes.js';

/**
 * One registered VM: who it runs as, the leases root named for it, which of
 * them this host holds for it, and the processes that make it up. The helper
 * signals only processes recorded here and proven to still be them.
 */

export type VmState =
  /** Registered; leases not held. */
  | 'registered'
  | 'acquiring'
  /** Leases held; no child reported yet. */
  | 'holding'
  /** The supervisor reported its child. */
  | 'running'
  /** Leases lost or about to be: its processes are being stopped. */
  | 'fencing'
  | 'releasing';

/** What the helper can tell a bound supervisor session (signed by the session). */
export interface VmSessionLink {
  readonly sessionId: string;
  sendValidUntil(validUntilMs: number): void;
  sendLost(reason: string): void;
  close(code: string, reason: string): void;
}

export class Vm {
  state: VmState = 'registered';
  readonly held: HostLease[] = [];
  supervisor: SessionProcessRef | undefined;
  child: SessionProcessRef | undefined;
  session: VmSessionLink | undefined;
  /** SHA-256 of the one-time secret for a supervisor started without libvirt; undefined once used. */
  secretHash: Buffer | undefined;
  lostReason: string | undefined;

  constructor(
    readonly uuid: string,
    readonly uid: number,
    readonly gid: number,
    readonly leases: readonly LeaseLocation[],
    /** Under libvirt: the domain whose recorded pid (RUN/libvirt/qemu/NAME.pid) identifies the supervisor. */
    readonly libvirtDomain: string | null = null,
  ) {}

  get holdsLeases(): boolean {
    return this.held.length > 0;
  }

  usesLockspace(name: string): boolean {
    return this.held.some((lease) => lease.location.lockspace === name);
  }

  /** Every process of this VM that is still alive, by the kernel's word. */
  aliveProcesses(control: VmProcessControl): ProcessRef[] {
    const alive = new Map<number, ProcessRef>();
    for (const p of [this.supervisor, this.child]) {
      if (p && stillRunning(control, p)) alive.set(p.pid, p);
    }
    const sessions = new Set(vmSessions(this.supervisor, this.child));
    for (const sessionId of sessions) {
      for (const p of control.sessionProcesses(this.uid, sessionId)) alive.set(p.pid, p);
    }
    return [...alive.values()];
  }
}

/**
 * The sessions whose processes (with the VM's uid) belong to the VM: the
 * child's, and the supervisor's only when the supervisor leads it (as under
 * libvirt). A supervisor started from a shell shares the shell's session
 * with whatever else that shell started, possibly other VMs of the same uid.
 */
export function vmSessions(supervisor: SessionProcessRef | undefined, child: SessionProcessRef | undefined): number[] {
  const sessions: number[] = [];
  if (child) sessions.push(child.sessionId);
  if (supervisor && supervisor.sessionId === supervisor.pid && !sessions.includes(supervisor.sessionId)) sessions.push(supervisor.sessionId);
  return sessions;
}

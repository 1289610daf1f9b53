import { createHash, timingSafeEqual } from 'node:crypto';
import type { Holder } from '../engine/resource-engine.js';
import { deriveFenceTiming } from '../engine/timing.js';
import type { BallotFloorStore, Clock } from '../leases/index.js';
import { HelperError } from '../daemon/helper-error.js';
import type { JoinedLockspace } from '../daemon/joined-lockspace.js';
import type { Logger } from '../daemon/log.js';
import type { StoragePool } from '../daemon/storage-pool.js';
import { ProcsError } from '../procs/index.js';
import { HostLease } from './host-lease.js';
import { openLeaseArea, type LeaseLocation } from './lease-location.js';
import { stopProcesses } from './stop-processes.js';
import { Vm } from './vm.js';
import type { ProcessRef, VmProcessControl } from './vm-processes.js';
import type { PersistedVm } from '../daemon/state-file.js';

/**
 * The VMs this helper serves and the leases it holds for them: register,
 * acquire, release and unregister under the fence-first rules, and fencing
 * when a lockspace's renewals stop or it is lost. Processes are signalled
 * only through VmProcessControl (re-checked before each signal), leases are
 * released only when the VM's processes are proven gone.
 */

export interface VmServiceDeps {
  readonly hostId: number;
  lockspace(name: string): JoinedLockspace | undefined;
  leaseRoots(): readonly string[];
  readonly pool: StoragePool;
  readonly clock: Clock;
  readonly wallClockMs: () => number;
  readonly log: Logger;
  readonly control: VmProcessControl;
  ballotFloor(leaseKey: string): BallotFloorStore;
  /** The pid libvirt recorded for a domain's emulator (our supervisor), or undefined when there is none. */
  libvirtPid(domain: string): number | undefined;
  /** Writes the one-time secret for a supervisor started without libvirt, readable by that uid only. */
  writeSecret(vm: Vm, secret: Buffer): void;
  removeSecret(vm: Vm): void;
  randomBytes(n: number): Buffer;
  /** Called after every change the helper must remember across a restart. */
  persist(): void;
  /** Fencing layer 2: the helper signals the VM's processes. False only under a test switch (it then only waits for them to go). */
  readonly signalOnFence?: boolean;
}

export interface RegisterRequest {
  readonly vm: string;
  readonly uid: number;
  readonly gid: number;
  readonly leases: readonly LeaseLocation[];
  readonly acquire: boolean;
  readonly libvirtDomain: string | null;
}

export const SECRET_BYTES = 32;
/** How long unregister waits for a VM's processes after SIGTERM before SIGKILL, and after that. */
export const UNREGISTER_SIGKILL_AFTER_MS = 5_000;
export const UNREGISTER_GIVE_UP_AFTER_MS = 15_000;
export const PROCESS_POLL_MS = 50;

export interface HolderDescription {
  readonly hostId: number;
  readonly hostName: string | null;
  readonly state: string;
  readonly sinceIso: string | null;
  readonly takeoverPossibleIso: string | null;
}

export class VmService {
  readonly vms = new Map<string, Vm>();
  readonly leases = new Map<string, HostLease>();
  private readonly fenceTimers = new Map<string, unknown>();

  constructor(private readonly deps: VmServiceDeps) {}

  // ---- registration ----

  async register(request: RegisterRequest): Promise<{ vm: Vm; secretIssued: boolean }> {
    if (request.uid === 0) throw new HelperError('VM_ROOT_UID', 'refused', 'a VM must not run as uid 0: the helper signals a VM\'s processes, and never root\'s');
    if (this.vms.has(request.vm)) throw new HelperError('VM_EXISTS', 'refused', `VM ${request.vm} is already registered (unregister it first)`);
    if (request.leases.length === 0) throw new HelperError('VM_NO_LEASES', 'refused', `VM ${request.vm}: no lease given`);
    this.refuseDuplicateLeases(request.leases);
    for (const location of request.leases) this.joinedLockspace(location.lockspace);
    const vm = new Vm(request.vm, request.uid, request.gid, request.leases, request.libvirtDomain);
    const leases = await this.openLeases(vm);
    this.vms.set(vm.uuid, vm);
    this.bindLeases(vm, leases);
    // Without libvirt's recorded pid, the supervisor proves itself with a one-time secret.
    if (vm.libvirtDomain === null) {
      const secret = this.deps.randomBytes(SECRET_BYTES);
      vm.secretHash = createHash('sha256').update(secret).digest();
      this.deps.writeSecret(vm, secret);
    }
    this.deps.log.info({ msg: 'vm.registered', vm: vm.uuid, uid: vm.uid, leases: vm.leases.map((l) => `${l.lockspace}:${l.resource}`) });
    if (request.acquire) {
      try {
        await this.acquireLeases(vm);
      } catch (error) {
        await this.forget(vm);
        throw error;
      }
    }
    this.deps.persist();
    return { vm, secretIssued: true };
  }

  async unregister(uuid: string): Promise<{ released: string[] }> {
    const vm = this.vmOf(uuid);
    // This path releases: a supervisor session closing meanwhile must not start a second one.
    vm.state = 'fencing';
    const stopped = await stopProcesses(() => vm.aliveProcesses(this.deps.control), this.deps.control, this.deps.clock, this.unregisterDeadlines());
    if (!stopped.gone) {
      vm.state = 'fencing';
      if (stopped.unreadable !== undefined) throw new HelperError('VM_PROCESSES_ALIVE', 'error', `VM ${uuid}: its processes cannot be proven gone (${stopped.unreadable}); its leases stay held`);
      throw new HelperError('VM_PROCESSES_ALIVE', 'error', `VM ${uuid}: processes ${stopped.alive.map((p) => p.pid).join(', ')} are still alive after SIGKILL (in D state?); its leases stay held until they are gone`);
    }
    const released = await this.releaseLeases(vm);
    await this.forget(vm);
    this.deps.persist();
    return { released };
  }

  /**
   * Restores a VM the previous helper of this incarnation served: its
   * leases are checked again like at register, and each it held is adopted
   * (the engine reads the area back and refuses a lease that is not ours).
   */
  async restore(saved: PersistedVm): Promise<Vm> {
    const vm = new Vm(saved.uuid, saved.uid, saved.gid, saved.leases, saved.libvirtDomain);
    vm.supervisor = saved.supervisor ?? undefined;
    vm.child = saved.child ?? undefined;
    vm.secretHash = saved.secretHash === null ? undefined : Buffer.from(saved.secretHash, 'hex');
    const leases = await this.openLeases(vm);
    this.vms.set(vm.uuid, vm);
    this.bindLeases(vm, leases);
    for (const held of saved.held) {
      const lease = leases.find((l) => l.location.path === held.path && l.location.offset === held.offset);
      if (!lease) throw new HelperError('VM_RESTORE', 'error', `VM ${vm.uuid}: held lease ${held.path}:${held.offset} is not among its leases`);
      if (lease.state !== 'held') await lease.resume(held.lver, held.mode);
      lease.users.add(vm.uuid);
      vm.held.push(lease);
    }
    vm.state = vm.child ? 'running' : vm.holdsLeases ? 'holding' : 'registered';
    for (const lease of vm.held) this.armFenceTimer(lease.lockspace);
    this.deps.log.info({ msg: 'vm.restored', vm: vm.uuid, state: vm.state, leases: vm.held.map((l) => ({ lease: l.label, lver: l.lver })) });
    return vm;
  }

  vmOf(uuid: string): Vm {
    const vm = this.vms.get(uuid);
    if (!vm) throw new HelperError('VM_UNKNOWN', 'refused', `VM ${uuid} is not registered on this host`);
    return vm;
  }

  /** Under libvirt: the pid libvirt recorded for the VM's domain must be the peer's. */
  checkLibvirtPid(vm: Vm, peerPid: number): void {
    const recorded = this.deps.libvirtPid(vm.libvirtDomain!);
    if (recorded !== peerPid) throw new HelperError('IDENTITY_LIBVIRT_PID', 'refused', `VM ${vm.uuid}: libvirt recorded pid ${recorded ?? 'none'} for domain ${vm.libvirtDomain}, this peer is pid ${peerPid}`);
  }

  /** A one-time secret matches (and is used up), or the refusal. */
  useSecret(vm: Vm, secret: Buffer): void {
    const hash = createHash('sha256').update(secret).digest();
    if (!vm.secretHash || !timingSafeEqual(hash, vm.secretHash)) throw new HelperError('SESSION_BAD_SECRET', 'refused', `VM ${vm.uuid}: the secret is wrong or was already used`);
    vm.secretHash = undefined;
    this.deps.removeSecret(vm);
  }

  // ---- leases ----

  async acquireLeases(vm: Vm): Promise<void> {
    if (vm.holdsLeases) return;
    if (vm.state !== 'registered') throw new HelperError('VM_BUSY', 'error', `VM ${vm.uuid} is ${vm.state}`);
    vm.state = 'acquiring';
    const taken: HostLease[] = [];
    try {
      for (const lease of await this.currentLeases(vm)) {
        await this.acquireOne(vm, lease);
        taken.push(lease);
      }
    } catch (error) {
      // Nothing ran under these leases yet: they can be given back at once.
      for (const lease of taken) await this.dropUser(vm, lease);
      vm.state = 'registered';
      throw error;
    }
    vm.held.push(...taken);
    vm.lostReason = undefined;
    vm.state = 'holding';
    for (const lease of taken) this.armFenceTimer(lease.lockspace);
    this.deps.log.info({ msg: 'vm.leases-held', vm: vm.uuid, leases: taken.map((l) => ({ lease: l.label, lver: l.lver, mode: l.mode })) });
    this.deps.persist();
  }

  /** Releases every lease the VM holds; the caller has proven its processes gone. */
  async releaseLeases(vm: Vm): Promise<string[]> {
    vm.state = 'releasing';
    const released: string[] = [];
    while (vm.held.length > 0) {
      const lease = vm.held[0]!;
      await this.dropUser(vm, lease);
      vm.held.shift();
      released.push(lease.label);
    }
    vm.state = 'registered';
    vm.child = undefined;
    this.deps.persist();
    return released;
  }

  /** The earliest deadline by which the VM's supervisor must hear again (T + its valid time), over its lockspaces. */
  validUntilMs(vm: Vm): number | undefined {
    let until: number | undefined;
    for (const lease of vm.held) {
      const ls = lease.lockspace;
      if (ls.lastRenewedAtMs === undefined || ls.state !== 'joined') return undefined;
      const t = ls.lastRenewedAtMs + deriveFenceTiming(ls.timing).supervisorValidForMs;
      until = until === undefined ? t : Math.min(until, t);
    }
    return until;
  }

  describeHolder(lockspace: JoinedLockspace, holder: Holder): HolderDescription {
    const now = this.deps.clock.nowMs();
    const wall = (t: number | undefined) => (t === undefined ? null : new Date(this.deps.wallClockMs() + (t - now)).toISOString());
    return {
      hostId: holder.hostId,
      hostName: holder.status.record?.owner.hostName ?? null,
      state: holder.status.state,
      sinceIso: wall(holder.status.sinceMs),
      takeoverPossibleIso: wall(holder.status.deadAtMs),
    };
  }

  /** Something the helper must remember across a restart changed (a child reported). */
  recordChange(): void {
    this.deps.persist();
  }

  /**
   * The VM's supervisor went away while holding leases (its socket closed):
   * that proves nothing, so stop whatever of the VM still runs and release
   * only when the kernel shows it all gone.
   */
  async stopAndRelease(vm: Vm, reason: string): Promise<void> {
    if (vm.state === 'fencing' || vm.state === 'releasing') return;
    vm.state = 'fencing';
    this.deps.log.warn({ msg: 'vm.stopping', vm: vm.uuid, reason });
    const stopped = await stopProcesses(() => vm.aliveProcesses(this.deps.control), this.deps.control, this.deps.clock, this.unregisterDeadlines());
    if (!stopped.gone) {
      this.deps.log.error({ msg: 'vm.stop-incomplete', vm: vm.uuid, alive: stopped.alive.map((p) => p.pid), ...(stopped.unreadable !== undefined ? { unreadable: stopped.unreadable } : {}) });
      return;
    }
    await this.afterFence(vm);
  }

  // ---- fencing ----

  /** A lockspace renewed: tell its VMs' supervisors their new deadline, re-arm its fence timer. */
  onRenewed(lockspace: JoinedLockspace): void {
    for (const vm of this.vms.values()) {
      if (!vm.usesLockspace(lockspace.name) || vm.state === 'fencing' || vm.state === 'releasing') continue;
      if (!vm.session) {
        this.releaseIfGone(vm);
        continue;
      }
      const until = this.validUntilMs(vm);
      if (until !== undefined) vm.session.sendValidUntil(until);
    }
    this.armFenceTimer(lockspace);
  }

  /**
   * A VM that had a supervisor but has no session now (the helper restarted
   * and it has not come back, or it gave up on its own): once the kernel
   * shows all its processes gone, its leases are released. A VM whose
   * supervisor never bound (the start hook acquired, qemu not started yet)
   * is left alone.
   */
  private releaseIfGone(vm: Vm): void {
    if (!vm.supervisor || !vm.holdsLeases) return;
    try {
      if (vm.aliveProcesses(this.deps.control).length > 0) return;
    } catch (error) {
      // Called from a renewal: a scan that cannot be read proves nothing (the next renewal looks again) and must not throw there.
      if (!(error instanceof ProcsError)) throw error;
      this.deps.log.warn({ msg: 'vm.processes-unreadable', vm: vm.uuid, reason: error.message });
      return;
    }
    void this.stopAndRelease(vm, 'its supervisor and child are gone');
  }

  /** The lockspace is lost (its record taken, or past its fail deadline): its leases are void. */
  onLost(lockspace: JoinedLockspace, reason: string): void {
    for (const vm of this.vms.values()) {
      if (vm.usesLockspace(lockspace.name)) void this.fence(vm, lockspace, `lockspace ${lockspace.name} lost: ${reason}`, true);
    }
  }

  /**
   * Stops the VM: tells its supervisor, SIGTERM, SIGKILL by the lockspace's
   * deadline. When its processes are gone the leases are released if the
   * lockspace is still ours, or dropped (void) if it is lost.
   */
  async fence(vm: Vm, lockspace: JoinedLockspace, reason: string, lost: boolean): Promise<void> {
    if (vm.state === 'fencing') return;
    vm.state = 'fencing';
    vm.lostReason = reason;
    this.deps.log.error({ msg: 'vm.fencing', vm: vm.uuid, lockspace: lockspace.name, reason });
    vm.session?.sendLost(reason);
    if (lost) this.voidLeasesOf(lockspace);
    const deadlines = this.fenceDeadlines(lockspace);
    const real = this.deps.control;
    const control: VmProcessControl = this.deps.signalOnFence === false ? { describe: (pid) => real.describe(pid), sessionProcesses: (uid, sid) => real.sessionProcesses(uid, sid), signal: () => 'signalled' } : real;
    const stopped = await stopProcesses(() => vm.aliveProcesses(this.deps.control), control, this.deps.clock, deadlines);
    if (!stopped.gone) {
      this.deps.log.error({ msg: 'vm.fence-incomplete', vm: vm.uuid, alive: stopped.alive.map((p) => p.pid), ...(stopped.unreadable !== undefined ? { unreadable: stopped.unreadable } : {}) });
      return;
    }
    this.deps.log.warn({ msg: 'vm.fenced', vm: vm.uuid });
    vm.session?.close('LEASE_LOST', reason);
    vm.session = undefined;
    await this.afterFence(vm);
  }

  /**
   * The host was suspended (CLOCK_MONOTONIC stood still while time went
   * on): other hosts may have counted us dead and taken our leases. Every
   * lease is void; every VM holding one is stopped.
   */
  onSuspended(gapMs: number): void {
    for (const vm of this.vms.values()) {
      const lockspace = vm.held[0]?.lockspace;
      if (lockspace) void this.fence(vm, lockspace, `the host was suspended for about ${gapMs} ms: its leases cannot be trusted`, true);
    }
    for (const lease of this.leases.values()) if (lease.state !== 'void') lease.voidLease();
  }

  stopTimers(): void {
    for (const timer of this.fenceTimers.values()) this.deps.clock.clearTimer(timer);
    this.fenceTimers.clear();
  }

  // ---- internals ----

  private async afterFence(vm: Vm): Promise<void> {
    const voided = vm.held.filter((lease) => lease.state === 'void');
    for (const lease of voided) this.detach(vm, lease);
    vm.held.splice(0, vm.held.length, ...vm.held.filter((lease) => lease.state !== 'void'));
    try {
      await this.releaseLeases(vm);
    } catch (error) {
      this.deps.log.error({ msg: 'vm.release-failed', vm: vm.uuid, reason: (error as Error).message });
    }
    vm.state = 'registered';
    this.deps.persist();
  }

  private armFenceTimer(lockspace: JoinedLockspace): void {
    const old = this.fenceTimers.get(lockspace.name);
    if (old !== undefined) this.deps.clock.clearTimer(old);
    this.fenceTimers.delete(lockspace.name);
    const renewedAt = lockspace.lastRenewedAtMs;
    if (renewedAt === undefined || ![...this.vms.values()].some((vm) => vm.usesLockspace(lockspace.name))) return;
    const at = renewedAt + deriveFenceTiming(lockspace.timing).sigtermAfterMs;
    this.fenceTimers.set(
      lockspace.name,
      this.deps.clock.setTimer(at, () => this.onFenceDeadline(lockspace, renewedAt)),
    );
  }

  private onFenceDeadline(lockspace: JoinedLockspace, renewedAt: number): void {
    this.fenceTimers.delete(lockspace.name);
    if (lockspace.lastRenewedAtMs !== renewedAt) return;
    const reason = `lockspace ${lockspace.name} not renewed for ${this.deps.clock.nowMs() - renewedAt} ms`;
    for (const vm of this.vms.values()) {
      if (vm.usesLockspace(lockspace.name)) void this.fence(vm, lockspace, reason, false);
    }
  }

  private fenceDeadlines(lockspace: JoinedLockspace) {
    const fence = deriveFenceTiming(lockspace.timing);
    const now = this.deps.clock.nowMs();
    const t = lockspace.lastRenewedAtMs ?? now;
    // Never later than the schedule from T; at least a short grace from now when fencing starts late.
    const sigkillAtMs = Math.max(Math.min(t + fence.sigkillAfterMs, now + lockspace.timing.ioTimeoutMs), now);
    return { sigkillAtMs, giveUpAtMs: Math.max(t + fence.failMs, sigkillAtMs) + UNREGISTER_GIVE_UP_AFTER_MS, pollMs: PROCESS_POLL_MS };
  }

  private unregisterDeadlines() {
    const now = this.deps.clock.nowMs();
    return { sigkillAtMs: now + UNREGISTER_SIGKILL_AFTER_MS, giveUpAtMs: now + UNREGISTER_GIVE_UP_AFTER_MS, pollMs: PROCESS_POLL_MS };
  }

  private voidLeasesOf(lockspace: JoinedLockspace): void {
    for (const lease of this.leases.values()) {
      if (lease.lockspace === lockspace && lease.state !== 'void') lease.voidLease();
    }
  }

  private joinedLockspace(name: string): JoinedLockspace {
    const ls = this.deps.lockspace(name);
    if (!ls) throw new HelperError('LOCKSPACE_UNKNOWN', 'refused', `lockspace ${JSON.stringify(name)} is not configured on this host`);
    if (ls.state !== 'joined') throw new HelperError('LOCKSPACE_NOT_JOINED', 'error', `lockspace ${JSON.stringify(name)} is ${ls.state}, not joined`);
    return ls;
  }

  private refuseDuplicateLeases(leases: readonly LeaseLocation[]): void {
    const seen = new Set<string>();
    for (const l of leases) {
      const key = `${l.path}:${l.offset}`;
      if (seen.has(key)) throw new HelperError('VM_DUPLICATE_LEASE', 'refused', `lease area ${key} is named twice`);
      seen.add(key);
    }
  }

  /** Opens and checks every lease area; a refusal of any leaves nothing open. */
  private async openLeases(vm: Vm): Promise<HostLease[]> {
    const opened: HostLease[] = [];
    try {
      for (const location of vm.leases) opened.push(await this.hostLease(location));
      return opened;
    } catch (error) {
      for (const lease of opened) await this.maybeClose(lease);
      throw error;
    }
  }

  private async hostLease(location: LeaseLocation): Promise<HostLease> {
    const { storage, spec } = await openLeaseArea(location, this.deps.leaseRoots(), this.deps.hostId, this.deps.pool);
    const key = `${storage.info.identity}@${location.offset}`;
    const existing = this.leases.get(key);
    if (existing && existing.state === 'void' && existing.users.size === 0) {
      this.leases.delete(key);
      existing.stop();
      await this.deps.pool.release(existing.storage);
    } else if (existing) {
      await this.deps.pool.release(storage);
      return existing;
    }
    const lockspace = this.joinedLockspace(location.lockspace);
    const log = this.deps.log.child({ lease: `${location.lockspace}:${location.resource}` });
    const lease = new HostLease(key, location, spec, storage, lockspace, this.deps.hostId, this.deps.clock, this.deps.ballotFloor(key), log);
    this.leases.set(key, lease);
    return lease;
  }

  private bindLeases(vm: Vm, leases: HostLease[]): void {
    this.leaseKeys.set(vm.uuid, leases.map((lease) => lease.key));
  }

  /** The lease area keys of each registered VM, in the order of its leases. */
  private readonly leaseKeys = new Map<string, string[]>();

  /** The VM's leases; an area whose lease was voided (lockspace lost) is opened and checked again. */
  private async currentLeases(vm: Vm): Promise<HostLease[]> {
    const keys = this.leaseKeys.get(vm.uuid) ?? [];
    const leases: HostLease[] = [];
    for (const [index, key] of keys.entries()) {
      let lease = this.leases.get(key);
      if (!lease || lease.state === 'void') {
        lease = await this.hostLease(vm.leases[index]!);
        keys[index] = lease.key;
      }
      leases.push(lease);
    }
    return leases;
  }

  private leasesOf(vm: Vm): HostLease[] {
    return (this.leaseKeys.get(vm.uuid) ?? []).flatMap((key) => {
      const lease = this.leases.get(key);
      return lease ? [lease] : [];
    });
  }

  private modeOf(vm: Vm, lease: HostLease) {
    const index = (this.leaseKeys.get(vm.uuid) ?? []).indexOf(lease.key);
    return vm.leases[index]!.mode;
  }

  private async acquireOne(vm: Vm, lease: HostLease): Promise<void> {
    const mode = this.modeOf(vm, lease);
    if (lease.users.size > 0) {
      const other = [...lease.users][0]!;
      if (mode === 'exclusive' || lease.mode === 'exclusive') {
        throw new HelperError('LEASE_HELD_LOCALLY', 'busy', `lease ${lease.label} is held on this host for VM ${other}`, { vm: other });
      }
      lease.users.add(vm.uuid);
      return;
    }
    const result = await lease.acquire(mode);
    if (!result.acquired) {
      const holder = this.describeHolder(lease.lockspace, result.holder);
      throw new HelperError('LEASE_BUSY', 'busy', `lease ${lease.label} is held by host ${holder.hostId} (${holder.hostName ?? 'unknown'}), ${holder.state} since ${holder.sinceIso ?? 'unknown'}; takeover possible ${holder.takeoverPossibleIso ?? 'never on timing alone (no watchdog)'}`, { holder });
    }
    lease.users.add(vm.uuid);
  }

  private async dropUser(vm: Vm, lease: HostLease): Promise<void> {
    lease.users.delete(vm.uuid);
    if (lease.users.size === 0 && lease.state === 'held') await lease.release();
  }

  private detach(vm: Vm, lease: HostLease): void {
    lease.users.delete(vm.uuid);
  }

  /** Drops a VM that holds nothing: its lease areas are let go when no other VM names them. */
  private async forget(vm: Vm): Promise<void> {
    this.vms.delete(vm.uuid);
    if (vm.secretHash) this.deps.removeSecret(vm);
    vm.session?.close('VM_UNREGISTERED', 'the VM was unregistered');
    vm.session = undefined;
    const leases = this.leasesOf(vm);
    this.leaseKeys.delete(vm.uuid);
    for (const lease of leases) await this.maybeClose(lease);
  }

  private async maybeClose(lease: HostLease): Promise<void> {
    const named = [...this.leaseKeys.values()].some((keys) => keys.includes(lease.key));
    if (named || lease.users.size > 0 || lease.state === 'held' || lease.state === 'resolving') return;
    if (this.leases.get(lease.key) === lease) this.leases.delete(lease.key);
    lease.stop();
    await this.deps.pool.release(lease.storage);
  }
}

export type { ProcessRef };

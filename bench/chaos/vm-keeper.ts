import type { ChildProcess } from 'node:child_process';
import type { Rng } from '../../test/sim/rng.js';
import { signalPid, VM_UID, type ChaosHost } from './chaos-host.js';
import { identify, stateOf, stillAlive, type ProcessId } from './process-identity.js';
import { onJsonLines } from './json-lines.js';

/**
 * The cluster loop of the fault harness: keeps every VM running somewhere.
 * A VM that is down is started on a random host that is up and has no fault
 * running (`vmlease register --acquire`, then `vmlease supervise -- writer`);
 * a busy lease (exit 3: another host holds it, alive or not yet dead) is
 * tried again shortly, on another random host. When a supervisor exits, its
 * VM is unregistered from that host before that host is used for it again.
 *
 * A cluster manager cannot tell a dead host from a hung one: while a VM's
 * host has a fault running (its helper stopped, its storage stalled or
 * slowed, or it is down), the loop also tries to start the VM on another
 * host, as an HA manager would. The leases must answer "busy" until the old
 * instance is provably gone; if one of these starts succeeds while the old
 * writer still runs, the checker sees two writers.
 *
 * It also checks, when a VM's writer starts, that no earlier writer of that
 * VM is still alive anywhere (by pid and start time; a process in D state
 * counts as alive): the second half of the harness's checker, which sees an
 * overlap even when the two writers never touched the data block in
 * conflicting order.
 */

export const REGISTER_TIMEOUT_MS = 30_000;
export const UNREGISTER_TIMEOUT_MS = 30_000;
export const RETRY_MIN_MS = 200;
export const RETRY_MAX_MS = 800;
/** Kept per VM for the overlap check; older (dead) writers are dropped. */
export const WRITERS_TRACKED_MAX = 64;
/** How often VMs on a host with a fault are tried elsewhere. */
export const SUSPECT_RETRY_MS = 1_000;

export interface Violation {
  readonly kind: 'concurrent-writer' | 'overlap';
  readonly vm: string;
  readonly atMs: number;
  readonly detail: string;
}

export interface VmEvents {
  /** A writer started: `downMs` since the VM was last seen down (undefined for a first start). */
  started(vm: VmSlot, host: number, downMs: number | undefined, failover: boolean): void;
  exited(vm: VmSlot, host: number, status: string): void;
  violation(v: Violation): void;
  refusal(vm: VmSlot, host: number, status: number | null, stderr: string): void;
  /** A start elsewhere succeeded while the VM was believed to run on a host with a fault. */
  duplicateStart(vm: VmSlot, host: number): void;
}

interface WriterRef extends ProcessId {
  readonly host: number;
}

export class VmSlot {
  state: 'down' | 'starting' | 'running' = 'down';
  host: number | undefined;
  lastHost: number | undefined;
  downSinceMs: number | undefined;
  supervisor: ChildProcess | undefined;
  writer: WriterRef | undefined;
  readonly writers: WriterRef[] = [];
  /** Hosts this VM may still be registered on (unregister pending). */
  readonly registeredOn = new Set<number>();
  starts = 0;
  /** A start attempt is under way (at most one per VM). */
  attempting = false;

  constructor(
    readonly index: number,
    readonly uuid: string,
    readonly lease: string,
    readonly writerCommand: (host: number) => string[],
  ) {}
}

export class VmKeeper {
  readonly vms: VmSlot[];
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    vms: VmSlot[],
    private readonly hosts: readonly ChaosHost[],
    private readonly rng: Rng,
    private readonly events: VmEvents,
  ) {
    this.vms = vms;
  }

  start(): void {
    for (const vm of this.vms) this.schedule(vm, 0);
    const suspectTimer = setInterval(() => {
      for (const vm of this.vms) if (vm.state === 'running' && !vm.attempting && this.suspect(vm)) void this.tryStart(vm);
    }, SUSPECT_RETRY_MS);
    this.timers.add(suspectTimer);
  }

  /** The VM runs (as far as the loop knows) on a host that has a fault: an HA manager would start it elsewhere. */
  private suspect(vm: VmSlot): boolean {
    const host = vm.host === undefined ? undefined : this.hosts[vm.host - 1];
    return host !== undefined && (host.phase !== 'up' || host.fault !== undefined);
  }

  stop(): void {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t); // clears intervals too
    this.timers.clear();
  }

  running(): VmSlot[] {
    return this.vms.filter((vm) => vm.state === 'running' && vm.writer !== undefined && stillAlive(vm.writer));
  }

  /** A host was powered off or reset: nothing of it is registered any more. */
  hostGone(hostId: number): void {
    for (const vm of this.vms) vm.registeredOn.delete(hostId);
  }

  private schedule(vm: VmSlot, delayMs: number): void {
    if (this.stopping) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.tryStart(vm);
    }, delayMs);
    this.timers.add(timer);
  }

  private retry(vm: VmSlot): void {
    this.schedule(vm, this.rng.int(RETRY_MIN_MS, RETRY_MAX_MS));
  }

  private usable(host: ChaosHost): boolean {
    return host.phase === 'up' && host.fault === undefined;
  }

  private async tryStart(vm: VmSlot): Promise<void> {
    if (this.stopping || vm.attempting) return;
    const duplicate = vm.state === 'running' && this.suspect(vm);
    if (vm.state !== 'down' && !duplicate) return;
    vm.attempting = true;
    try {
      await this.attemptStart(vm, duplicate);
    } finally {
      vm.attempting = false;
    }
  }

  private async attemptStart(vm: VmSlot, duplicate: boolean): Promise<void> {
    // First clean up registrations left on usable hosts.
    for (const hostId of [...vm.registeredOn]) {
      const host = this.hosts[hostId - 1]!;
      if (!this.usable(host)) continue;
      await this.unregister(vm, host);
    }
    const candidates = this.hosts.filter((h) => this.usable(h) && !vm.registeredOn.has(h.id) && (!duplicate || h.id !== vm.host));
    if (candidates.length === 0) return duplicate ? undefined : this.retry(vm);
    const host = this.rng.pick(candidates);
    if (!duplicate) vm.state = 'starting';
    const registered = await host.cli(['register', '--vm', vm.uuid, '--uid', String(VM_UID), '--lease', vm.lease, '--acquire', '--json'], REGISTER_TIMEOUT_MS);
    if (this.stopping) return;
    if (registered.status !== 0) {
      if (vm.state === 'starting') vm.state = 'down';
      this.events.refusal(vm, host.id, registered.status, registered.stderr);
      if (/VM_EXISTS/.test(registered.stderr)) vm.registeredOn.add(host.id);
      if (registered.status === null) vm.registeredOn.add(host.id); // timed out: it may have registered
      return vm.state === 'down' ? this.retry(vm) : undefined;
    }
    if (duplicate) this.events.duplicateStart(vm, host.id);
    vm.registeredOn.add(host.id);
    this.runSupervisor(vm, host, duplicate);
  }

  /** A duplicate (a start while the VM is believed to run elsewhere) becomes the VM's supervisor only once its writer runs. */
  private runSupervisor(vm: VmSlot, host: ChaosHost, duplicate: boolean): void {
    const child = host.startSupervisor(vm.uuid, vm.writerCommand(host.id));
    if (!duplicate) {
      vm.supervisor = child;
      vm.host = host.id;
    }
    let stderr = '';
    onJsonLines<{ event: string; pid: number }>(child.stdout!, (event) => {
      if (event.event === 'writing' && typeof event.pid === 'number') {
        vm.supervisor = child;
        vm.host = host.id;
        this.onWriting(vm, host, event.pid);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-4000)));
    child.once('exit', (code, signal) => {
      const status = code !== null ? `exit ${code}` : `signal ${signal}`;
      if (vm.supervisor === child) {
        vm.supervisor = undefined;
        if (vm.state === 'starting') this.events.refusal(vm, host.id, code, stderr);
        vm.state = 'down';
        vm.lastHost = host.id;
        vm.downSinceMs = Date.now();
        vm.writer = undefined;
      }
      this.events.exited(vm, host.id, `${status}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`);
      if (this.stopping) return;
      void this.unregister(vm, host).finally(() => this.retry(vm));
    });
  }

  private onWriting(vm: VmSlot, host: ChaosHost, pid: number): void {
    const id = identify(pid);
    const now = Date.now();
    // Any earlier writer of this VM still alive, on any host, is a second writer.
    for (const w of vm.writers) {
      if (id && w.pid === id.pid && w.startTime === id.startTime) continue;
      const state = stateOf(w);
      if (state !== undefined && state !== 'Z' && state !== 'X') {
        this.events.violation({ kind: 'overlap', vm: vm.uuid, atMs: now, detail: `writer pid ${pid} started on host ${host.id} while writer pid ${w.pid} of host ${w.host} is still alive (state ${state})` });
      }
    }
    const ref: WriterRef = { pid, startTime: id?.startTime ?? '?', host: host.id };
    vm.writers.splice(0, vm.writers.length, ...vm.writers.filter((w) => stillAlive(w)).slice(-WRITERS_TRACKED_MAX), ref);
    vm.writer = ref;
    vm.state = 'running';
    vm.starts += 1;
    const downMs = vm.downSinceMs === undefined ? undefined : now - vm.downSinceMs;
    const failover = vm.lastHost !== undefined && vm.lastHost !== host.id;
    this.events.started(vm, host.id, downMs, failover);
  }

  private async unregister(vm: VmSlot, host: ChaosHost): Promise<void> {
    if (!vm.registeredOn.has(host.id) || host.phase !== 'up') return;
    const result = await host.cli(['unregister', '--vm', vm.uuid, '--json'], UNREGISTER_TIMEOUT_MS);
    // Done, or not registered there (any more): either way nothing of it is left on that host.
    if (result.status === 0 || /VM_UNKNOWN|not registered/i.test(result.stderr)) vm.registeredOn.delete(host.id);
  }

  /** SIGKILL of a VM's supervisor or writer (a fault). */
  kill(vm: VmSlot, which: 'supervisor' | 'writer'): boolean {
    if (which === 'supervisor') {
      if (!vm.supervisor?.pid) return false;
      signalPid(vm.supervisor.pid, 'SIGKILL');
      return true;
    }
    if (!vm.writer || !stillAlive(vm.writer)) return false;
    signalPid(vm.writer.pid, 'SIGKILL');
    return true;
  }
}

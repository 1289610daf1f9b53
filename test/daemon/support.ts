import { ProcsError } from '../../dist/helper/procs/index.js';
import type { ProcessRef, SignalResult, VmProcessControl } from '../../dist/helper/vms/vm-processes.js';
import type { ManualClock } from '../support/manual-clock.js';

/**
 * A fake kernel process table for VmProcessControl. Each process has a pid,
 * start time, uid and session; a signal is delivered only when pid, start
 * time and uid all still match and uid is not 0, as the real control does
 * (helper/procs/process-identity.ts signalIfSame). What a process does on a
 * signal is up to its behaviour: die, ignore SIGTERM, or ignore everything
 * (D state). Zombies are not alive (describe and sessionProcesses skip them).
 */

export interface FakeProcess {
  pid: number;
  startTime: string;
  uid: number;
  sessionId: number;
  ppid: number;
  zombie: boolean;
  /** 'dies' on SIGTERM; 'ignores-term' dies only on SIGKILL; 'unkillable' (D state) survives both. */
  behaviour: 'dies' | 'ignores-term' | 'unkillable';
}

export interface SignalRecord {
  readonly atMs: number;
  readonly pid: number;
  readonly startTime: string;
  readonly signal: NodeJS.Signals;
  readonly result: SignalResult;
}

export class FakeControl implements VmProcessControl {
  readonly processes = new Map<number, FakeProcess>();
  readonly signals: SignalRecord[] = [];
  /**
   * When set, every read of the table (describe, sessionProcesses, signal's
   * re-read) throws a ProcsError with this reason, as the real control does
   * when some process's /proc/PID/stat cannot be parsed.
   */
  unreadable: string | undefined;

  constructor(private readonly clock: { nowMs(): number }) {}

  private checkReadable(): void {
    if (this.unreadable !== undefined) throw new ProcsError('PROCS_STAT_MALFORMED', '/proc/4321/stat', this.unreadable);
  }

  spawn(p: Partial<FakeProcess> & { pid: number; uid: number; sessionId: number }): FakeProcess {
    const process: FakeProcess = { startTime: `${p.pid}00`, ppid: 1, zombie: false, behaviour: 'dies', ...p };
    this.processes.set(p.pid, process);
    return process;
  }

  /** The process exits on its own (its pid is reaped). */
  exit(pid: number): void {
    this.processes.delete(pid);
  }

  ref(pid: number): ProcessRef {
    const p = this.processes.get(pid)!;
    return { pid: p.pid, startTime: p.startTime, uid: p.uid };
  }

  describe(pid: number) {
    this.checkReadable();
    const p = this.processes.get(pid);
    if (!p || p.zombie) return undefined;
    return { pid: p.pid, startTime: p.startTime, uid: p.uid, sessionId: p.sessionId, ppid: p.ppid, euid: p.uid };
  }

  sessionProcesses(uid: number, sessionId: number): ProcessRef[] {
    this.checkReadable();
    return [...this.processes.values()]
      .filter((p) => !p.zombie && p.uid === uid && p.sessionId === sessionId)
      .sort((a, b) => a.pid - b.pid)
      .map((p) => ({ pid: p.pid, startTime: p.startTime, uid: p.uid }));
  }

  signal(process: ProcessRef, signal: NodeJS.Signals): SignalResult {
    this.checkReadable();
    const p = this.processes.get(process.pid);
    let result: SignalResult;
    if (!p) result = 'gone';
    else if (p.startTime !== process.startTime) result = 'mismatch';
    else if (p.zombie) result = 'gone';
    else if (p.uid !== process.uid || p.uid === 0) result = 'mismatch';
    else result = 'signalled';
    this.signals.push({ atMs: this.clock.nowMs(), pid: process.pid, startTime: process.startTime, signal, result });
    if (result === 'signalled' && p) {
      const dies = signal === 'SIGKILL' ? p.behaviour !== 'unkillable' : p.behaviour === 'dies';
      if (dies) this.processes.delete(p.pid);
    }
    return result;
  }

  /** Signals actually delivered, as "SIGNAL pid@ms". */
  delivered(): string[] {
    return this.signals.filter((s) => s.result === 'signalled').map((s) => `${s.signal} ${s.pid}@${s.atMs}`);
  }
}

/** Lets every pending promise continuation run (the manual clock fires timers synchronously). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Moves the manual clock forward in steps, letting continuations run after each step. */
export async function advance(clock: ManualClock, ms: number, stepMs = 1): Promise<void> {
  await settle();
  for (let done = 0; done < ms; ) {
    const step = Math.min(stepMs, ms - done);
    clock.advance(step);
    done += step;
    await settle();
  }
}

/** Tracks a promise's outcome without awaiting it. */
export function track<T>(promise: Promise<T>): { readonly settled: boolean; readonly value: T | undefined; readonly error: unknown } {
  const state: { settled: boolean; value: T | undefined; error: unknown } = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

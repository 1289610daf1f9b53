/**
 * What the helper needs to know about a VM's processes, from the kernel
 * (passed in: the real one reads /proc, tests can fake it). A VM's processes
 * are its supervisor, the child the supervisor reported, and every process
 * with the VM's uid in the supervisor's session.
 */

export interface ProcessRef {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat, as a decimal string. */
  readonly startTime: string;
  readonly uid: number;
}

export interface SessionProcessRef extends ProcessRef {
  readonly sessionId: number;
}

export type SignalResult = 'signalled' | 'gone' | 'mismatch';

export interface VmProcessControl {
  /** The live process `pid` as the kernel describes it, or undefined when there is none (or only a zombie). */
  describe(pid: number): (ProcessRef & { readonly sessionId: number; readonly ppid: number; /** Effective uid: 0 for a setuid-root program. */ readonly euid: number }) | undefined;
  /** Live processes (not zombies; D state counts as alive) of this uid in this session. */
  sessionProcesses(uid: number, sessionId: number): ProcessRef[];
  /** Signals the process only if pid, start time and uid still match and uid is not 0. */
  signal(process: ProcessRef, signal: NodeJS.Signals): SignalResult;
}

/** Whether a recorded process still runs (same pid and start time). */
export function stillRunning(control: VmProcessControl, process: ProcessRef): boolean {
  const now = control.describe(process.pid);
  return now !== undefined && now.startTime === process.startTime;
}

import assert from 'node:assert/strict';
import { isAlive } from './liveness.js';
import { signalIfSame, type SignalOutcome } from './process-identity.js';
import type { ProcessInfo, ProcessTable } from './process-table.js';

/** A VM's processes without a cgroup: those of the VM's uid in the supervisor's session. */
export interface VmSession {
  /** Real uid of the VM's processes; never 0. */
  readonly uid: number;
  /** The session id the supervisor (or, under libvirt, the emulator) runs in. */
  readonly sessionId: number;
}

function assertSession(session: VmSession): void {
  assert.ok(Number.isSafeInteger(session.uid) && session.uid > 0, `VM uid ${session.uid} must be a positive integer (never root)`);
  assert.ok(Number.isSafeInteger(session.sessionId) && session.sessionId > 0, `session id ${session.sessionId} must be a positive integer`);
}

/**
 * The live processes with the VM's real uid in its session, in pid order.
 * Zombies and dead processes are gone; D (uninterruptible) and T (stopped)
 * are alive (see liveness.ts). A process that vanishes during the scan is
 * gone. An empty result proves the VM gone only as far as a session can:
 * a process that called setsid() has left it (helper/procs/README.md).
 */
export function aliveVmProcesses(table: ProcessTable, session: VmSession): ProcessInfo[] {
  assertSession(session);
  const alive: ProcessInfo[] = [];
  for (const pid of table.list()) {
    const info = table.read(pid);
    if (info === undefined) continue;
    if (info.uid !== session.uid || info.sessionId !== session.sessionId) continue;
    if (isAlive(info)) alive.push(info);
  }
  return alive;
}

export interface KillReport {
  /** Processes signalled, by pid. */
  readonly signalled: number[];
  /** Processes that were gone by the time of the signal. */
  readonly gone: number[];
  /** Pids whose process changed (start time or uid) between the scan and the signal: not signalled. */
  readonly mismatch: number[];
}

/**
 * Signals every live process of the VM's session, each after re-reading its
 * start time and uid (signalIfSame). Returns what happened to each pid; the
 * caller scans again (aliveVmProcesses) to learn whether they are gone.
 */
export function killVmProcesses(table: ProcessTable, session: VmSession, signal: NodeJS.Signals): KillReport {
  const report: Record<SignalOutcome, number[]> = { signalled: [], gone: [], mismatch: [] };
  for (const info of aliveVmProcesses(table, session)) {
    const outcome = signalIfSame(table, { pid: info.pid, startTime: info.startTime, uid: info.uid }, signal);
    report[outcome].push(info.pid);
  }
  return { signalled: report.signalled, gone: report.gone, mismatch: report.mismatch };
}

import { readFileSync } from 'node:fs';

/**
 * A process known by pid *and* start time (field 22 of /proc/PID/stat), so
 * a reused pid is never taken for it; and its state letter. A zombie has
 * left (it holds no I/O); a process in D state has not.
 */

export interface ProcessId {
  readonly pid: number;
  readonly startTime: string;
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export function identify(pid: number): ProcessId | undefined {
  const fields = statFields(pid);
  return fields ? { pid, startTime: fields[19]! } : undefined;
}

/** The state letter (R, S, D, T, Z, ...) while the same process exists, else undefined (gone). */
export function stateOf(id: ProcessId): string | undefined {
  const fields = statFields(id.pid);
  if (!fields || fields[19] !== id.startTime) return undefined;
  return fields[0];
}

/** Whether the process still exists and has not exited (a zombie has). */
export function stillAlive(id: ProcessId): boolean {
  const state = stateOf(id);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

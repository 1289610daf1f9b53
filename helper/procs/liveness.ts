import type { ProcessInfo } from './process-table.js';

/**
 * Whether a process still counts as running, for "every process of the VM is
 * proven gone" (SPEC section 3):
 * - a zombie (Z) is gone: it runs no code and holds no file open; but a
 *   thread-group leader that exited while other threads run also shows Z
 *   (measured on 6.18: stat state Z, Threads: 2), so Z counts as gone only
 *   with at most one thread;
 * - dead (X, x) is gone;
 * - everything else is alive, including D (uninterruptible sleep: it may
 *   still have I/O in flight) and T/t (stopped: SIGCONT resumes it).
 */
export function isAlive(info: Pick<ProcessInfo, 'state' | 'threads'>): boolean {
  if (info.state === 'X' || info.state === 'x') return false;
  if (info.state === 'Z') return info.threads > 1;
  return true;
}

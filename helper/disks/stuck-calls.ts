import assert from 'node:assert/strict';
import { DiskError, DiskErrorCode } from './errors.js';

/**
 * Deadlines for file-system calls that cannot be cancelled, and a cap on how
 * many of them may still be running past their deadline.
 *
 * A stat of a path on a hung NFS server never returns, and it holds a libuv
 * threadpool thread until it does (SPEC section 2: four hung reads stalled
 * every fs.stat of the process). Racing each call against a timer frees the
 * caller, but not the thread. So the calls left running are counted, and
 * once `max` are outstanding no new call is started at all: a later caller
 * gets DISK_CALLS_STUCK at once instead of feeding one more thread to the
 * hung mount. The count falls again as stuck calls finally answer.
 */

/** The helper runs with UV_THREADPOOL_SIZE=16 (deploy/systemd): at most 4 may be lost to a hung mount, so renewals' neighbours keep 12. */
export const STUCK_CALLS_MAX_DEFAULT = 4;
export const STEP_TIMEOUT_MS_LIMIT = 600_000;

export class StuckCalls {
  private stuck = 0;

  constructor(readonly max: number) {
    assert.ok(Number.isInteger(max) && max >= 1 && max <= 1024, `stuck calls max ${max} outside 1..1024`);
  }

  /** Calls past their deadline that have not answered yet. */
  get outstanding(): number {
    return this.stuck;
  }

  /** Throws DISK_CALLS_STUCK when no new call may start. */
  ensureRoom(subject: string, what: string): void {
    if (this.stuck >= this.max) {
      throw new DiskError(DiskErrorCode.stuck, subject, `${what} not started: ${this.stuck} earlier file-system calls are past their deadline and still unanswered (a hung mount?)`);
    }
  }

  /**
   * Runs `start()` with a deadline of `timeoutMs`. Past it, rejects with
   * DISK_STEP_TIMEOUT and counts the call as stuck until it settles; a value
   * it delivers late is handed to `disposeLate` (e.g. to close a file handle
   * nobody is waiting for any more). The call's own errors pass through.
   */
  async run<T>(subject: string, what: string, timeoutMs: number, start: () => Promise<T>, disposeLate?: (late: T) => void): Promise<T> {
    assert.ok(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= STEP_TIMEOUT_MS_LIMIT, `step timeout ${timeoutMs} ms outside 1..${STEP_TIMEOUT_MS_LIMIT}`);
    this.ensureRoom(subject, what);
    const call = Promise.resolve().then(start);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stuck++;
        call.then(
          (value) => {
            this.stuck--;
            disposeLate?.(value);
          },
          () => void this.stuck--,
        );
        reject(new DiskError(DiskErrorCode.stepTimeout, subject, `${what} did not answer within ${timeoutMs} ms (it may still complete)`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([call, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The process's one count: stuck calls hold threads of the one threadpool, whoever started them. */
export const sharedStuckCalls = new StuckCalls(STUCK_CALLS_MAX_DEFAULT);

/** One file-system call with its deadline: `what` names the call, `subject` the path. */
export type Step = <T>(subject: string, what: string, call: () => Promise<T>, disposeLate?: (late: T) => void) => Promise<T>;

/** A Step with `timeoutMs` per call, counted in `stuckCalls`. */
export function stepsOf(stuckCalls: StuckCalls, timeoutMs: number): Step {
  return (subject, what, call, disposeLate) => stuckCalls.run(subject, `${what} ${subject}`, timeoutMs, call, disposeLate);
}

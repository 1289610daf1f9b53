/**
 * Time for the shells, passed in (never global): the monotonic clock the
 * engines reason with, and timers. CLOCK_MONOTONIC (process.hrtime) is shared
 * by every process on a host, so deadlines can be handed to supervisors.
 */
export interface Clock {
  nowMs(): number;
  setTimer(atMs: number, fire: () => void): unknown;
  clearTimer(timer: unknown): void;
}

export const monotonicClock: Clock = {
  nowMs: () => Number(process.hrtime.bigint() / 1_000_000n),
  setTimer(atMs, fire) {
    return setTimeout(fire, Math.max(0, atMs - this.nowMs()));
  },
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

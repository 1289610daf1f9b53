/**
 * How long the storages have held the current event-loop turn. A chain of
 * dependent I/Os (an acquire's reads and writes, or one operation awaited
 * after another) can run inside one turn without the helper's timers
 * (watchdog pets, renewals) getting a look in: completions seen spinning
 * resolve through promise callbacks, and Node drains a worker's messages
 * that arrive while earlier ones are handled (up to 1000) in one callback.
 * So a turn is measured in wall time from the first completion handled or
 * spin begun in it, and past STORAGE_TURN_US_MAX the storages neither spin
 * nor hand on a completion before the loop's check phase: the chain then
 * goes on one step per turn.
 */

export const STORAGE_TURN_US_MAX = 1_000;

let turnStartedMs: number | undefined;

/**
 * What is left of this turn's allowance in ms (negative once used up); the
 * first call in a turn starts it. `nowMs` is performance.now(): a double,
 * where process.hrtime.bigint() would allocate on every call of a spin loop.
 */
export function turnLeftMs(nowMs: number): number {
  if (turnStartedMs === undefined) {
    turnStartedMs = nowMs;
    // The check phase follows the poll phase (where messages arrive) and ends the turn.
    setImmediate(() => {
      turnStartedMs = undefined;
    }).unref();
  }
  return STORAGE_TURN_US_MAX / 1000 - (nowMs - turnStartedMs);
}

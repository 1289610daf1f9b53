import { describe, expect, it } from 'vitest';
import { CHILD_KILL_GRACE_MS, CHILD_KILL_GRACE_MS_MIN, killGraceMs } from '../../dist/supervisor/supervise.js';

/**
 * After a missed deadline the supervisor's SIGKILL must come before the
 * helper's (N after the deadline); deadlines arrive about 6N ahead.
 */
describe('the kill grace after a missed deadline', () => {
  it.each([20, 50, 100, 200, 1_000, 10_000])('with io timeout %i ms it stays under N/2 where the caps allow', (n) => {
    const grace = killGraceMs(6 * n);
    expect(grace).toBeLessThanOrEqual(CHILD_KILL_GRACE_MS);
    expect(grace).toBeGreaterThanOrEqual(CHILD_KILL_GRACE_MS_MIN);
    if (n / 2 >= CHILD_KILL_GRACE_MS_MIN) expect(grace).toBeLessThanOrEqual(n / 2);
  });
});

import { describe, expect, it } from 'vitest';
import { deriveTiming, hostDeadAfterMs, hostFailAfterMs, takeoverMarginMs, TIMING_DEFAULTS, type TimingOptions } from '../../../dist/helper/engine/timing.js';

const CASES: [n: number, w: number][] = [
  [1, 0],
  [7, 13],
  [10, 60],
  [100, 300],
  [250, 0],
  [10_000, 60_000],
  [600_000, 600_000],
];

/** The margin as SPEC section 3 states it, computed independently. */
function specMargin(failMs: number, w: number, o: TimingOptions = TIMING_DEFAULTS): number {
  return Math.max(o.marginMinMs, Math.ceil((2 * o.clockRatePpm * (failMs + w)) / 1_000_000) + o.watchdogErrorMs);
}

/** host_dead - (8N + W): at least the SPEC margin, and W + margin > N (a last renewal has landed by then). */
function expectDeadMargin(dead: number, n: number, w: number, o: TimingOptions = TIMING_DEFAULTS): void {
  const margin = dead - (8 * n + w);
  expect(margin).toBeGreaterThanOrEqual(specMargin(8 * n, w, o));
  expect(w + margin).toBeGreaterThan(n);
}

describe('deriveTiming', () => {
  it.each(CASES)('N=%i W=%i: renew 2N, warn 6N, fail 8N, settle > N', (n, w) => {
    const t = deriveTiming(n, w);
    expect(t.ioTimeoutMs).toBe(n);
    expect(t.watchdogFireTimeoutMs).toBe(w);
    expect(t.renewIntervalMs).toBe(2 * n);
    expect(t.renewWarnMs).toBe(6 * n);
    expect(t.failMs).toBe(8 * n);
    // A competing join write lands within the settle wait: at least 2N, and well before the warning.
    expect(t.joinSettleMs).toBeGreaterThanOrEqual(2 * n);
    expect(t.joinSettleMs).toBeLessThan(t.renewWarnMs);
    expect(t.renewIntervalMs).toBeLessThan(t.renewWarnMs);
    expect(t.renewWarnMs).toBeLessThan(t.failMs);
    expect(t.watchdogPetIntervalMs).toBeGreaterThanOrEqual(1);
    expect(t.watchdogPetIntervalMs).toBeLessThan(t.failMs);
  });

  it('refuses an io timeout that is not a positive integer, and a negative watchdog timeout', () => {
    expect(() => deriveTiming(0, 60)).toThrow();
    expect(() => deriveTiming(1.5, 60)).toThrow();
    expect(() => deriveTiming(10, -1)).toThrow();
  });
});

describe('takeoverMarginMs', () => {
  it.each(CASES)('N=%i W=%i: at least 1 s and at least 2·500ppm·(8N+W) + watchdog error', (n, w) => {
    const fail = 8 * n;
    const margin = takeoverMarginMs(fail, w);
    expect(margin).toBeGreaterThanOrEqual(1_000);
    expect(margin).toBeGreaterThanOrEqual((2 * 500 * (fail + w)) / 1_000_000 + TIMING_DEFAULTS.watchdogErrorMs);
    expect(margin).toBe(specMargin(fail, w));
  });

  it('grows with fail + W once the drift term dominates', () => {
    const small = takeoverMarginMs(8 * 10_000, 60_000);
    const large = takeoverMarginMs(8 * 600_000, 600_000);
    // 2 * 500e-6 * 5_400_000 = 5_400 ms of drift, plus 1 s of watchdog error.
    expect(large).toBe(6_400);
    expect(large).toBeGreaterThan(small);
    let previous = 0;
    for (const total of [1e5, 1e6, 2e6, 5e6, 1e7]) {
      const m = takeoverMarginMs(total, 0);
      expect(m).toBeGreaterThanOrEqual(previous);
      expect(m).toBeGreaterThanOrEqual(Math.ceil(total / 1_000) + 1_000);
      previous = m;
    }
  });

  it('follows the options: a larger rate error and watchdog error widen it, a test minimum below 1 s is allowed', () => {
    const options: TimingOptions = { clockRatePpm: 2_000, watchdogErrorMs: 50, marginMinMs: 10 };
    // 2 * 2000e-6 * (800 + 300) = 4.4 -> 5, + 50
    expect(takeoverMarginMs(800, 300, options)).toBe(55);
    expect(takeoverMarginMs(800, 300, { ...options, watchdogErrorMs: 500 })).toBe(505);
    expect(takeoverMarginMs(8 * 1_000_000, 0, options)).toBe(32_050);
    expect(takeoverMarginMs(1, 0, options)).toBe(51);
    expect(takeoverMarginMs(1, 0, { clockRatePpm: 500, watchdogErrorMs: 0, marginMinMs: 10 })).toBe(10);
  });

  it('refuses a clock-rate error bound below 500 ppm', () => {
    expect(() => takeoverMarginMs(800, 300, { clockRatePpm: 100, watchdogErrorMs: 1_000, marginMinMs: 1_000 })).toThrow();
  });
});

describe('hostDeadAfterMs', () => {
  const dead = (ownN: number, ownW: number, ownerN: number, ownerW: number, options?: TimingOptions) =>
    hostDeadAfterMs({ own: deriveTiming(ownN, ownW), ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW, takeoverWithoutWatchdog: false, ...(options ? { options } : {}) })!;

  it.each([
    [10, 100, 50, 20],
    [70, 5, 3, 2_500],
    [10_000, 60_000, 600_000, 30_000],
    [100, 300, 100, 300],
    [1, 1, 600_000, 600_000],
  ])('own N=%i W=%i, owner N=%i W=%i: uses the larger N and the larger W', (ownN, ownW, ownerN, ownerW) => {
    const n = Math.max(ownN, ownerN);
    const w = Math.max(ownW, ownerW);
    const d = dead(ownN, ownW, ownerN, ownerW);
    // The same as if both sides had the larger values, whichever side has them.
    expect(d).toBe(dead(n, w, n, w));
    expect(d).toBe(dead(ownerN, ownerW, ownN, ownW));
    expectDeadMargin(d, n, w);
    // Never shorter than with either side's values alone.
    expect(d).toBeGreaterThanOrEqual(dead(ownN, ownW, ownN, ownW));
    expect(d).toBeGreaterThanOrEqual(dead(ownerN, ownerW, ownerN, ownerW));
  });

  it('is 8N + W + the SPEC margin in the usual case (margin of at least 1 s)', () => {
    expect(dead(10, 100, 50, 20)).toBe(8 * 50 + 100 + specMargin(400, 100));
    expect(dead(10_000, 60_000, 10_000, 60_000)).toBe(80_000 + 60_000 + specMargin(80_000, 60_000));
    // The drift term shows with large values: 2 * 500e-6 * 4_860_000 = 4_860 ms, + 1 s.
    expect(dead(10_000, 60_000, 600_000, 600_000)).toBeGreaterThanOrEqual(4_800_000 + 600_000 + 5_400 + 1_000);
  });

  it.each(CASES)('own N=%i W=%i: always later than 8N+W of the larger values', (n, w) => {
    const own = deriveTiming(n, w);
    for (const [on, ow] of CASES) {
      const dead = hostDeadAfterMs({ own, ownerIoTimeoutMs: on, ownerWatchdogFireTimeoutMs: ow, takeoverWithoutWatchdog: true })!;
      const N = Math.max(n, on);
      const W = Math.max(w, ow);
      expect(dead).toBeGreaterThan(8 * N + W);
      expect(dead - (8 * N + W)).toBeGreaterThanOrEqual(1_000);
      expect(dead).toBeGreaterThan(hostFailAfterMs(own, on));
    }
  });

  it('is undefined for an owner without watchdog, unless takeoverWithoutWatchdog', () => {
    const own = deriveTiming(10, 100);
    expect(hostDeadAfterMs({ own, ownerIoTimeoutMs: 10, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: false })).toBeUndefined();
    // Our own watchdog does not make the owner's lack of one acceptable.
    expect(hostDeadAfterMs({ own: deriveTiming(10, 60_000), ownerIoTimeoutMs: 10, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: false })).toBeUndefined();
    const allowed = hostDeadAfterMs({ own, ownerIoTimeoutMs: 10, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: true })!;
    // Our own W still counts (the larger of the two).
    expectDeadMargin(allowed, 10, 100);
    expect(allowed).toBe(80 + 100 + specMargin(80, 100));
    // Neither side has a watchdog: 8N + margin, still beyond 8N.
    const neither = hostDeadAfterMs({ own: deriveTiming(10, 0), ownerIoTimeoutMs: 10, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: true })!;
    expectDeadMargin(neither, 10, 0);
    expect(neither).toBe(80 + specMargin(80, 0));
    // An owner with a watchdog is never refused.
    const withOne = hostDeadAfterMs({ own: deriveTiming(10, 0), ownerIoTimeoutMs: 10, ownerWatchdogFireTimeoutMs: 1, takeoverWithoutWatchdog: false });
    // Past the owner's fail time plus its watchdog, and W + margin beyond N.
    expect(withOne).toBeGreaterThan(8 * 10 + 1 + 10);
    expectDeadMargin(withOne!, 10, 1);
  });

  it('passes its options to the margin', () => {
    const options: TimingOptions = { clockRatePpm: 500, watchdogErrorMs: 5, marginMinMs: 20 };
    // margin max(20, ceil(0.11) + 5) = 20; W + margin = 50 > N = 10.
    expect(dead(10, 30, 10, 30, options)).toBe(80 + 30 + 20);
    expect(dead(10, 30, 10, 30, { ...options, watchdogErrorMs: 400 })).toBe(80 + 30 + 401);
    // With small test margins, W + margin still exceeds N.
    for (const [n, w] of [[100, 1], [100, 50], [1_000, 10]] as const) expectDeadMargin(dead(n, w, n, w, options), n, w, options);
  });

  it('hostFailAfterMs is 8 times the larger N', () => {
    expect(hostFailAfterMs(deriveTiming(10, 0), 30)).toBe(240);
    expect(hostFailAfterMs(deriveTiming(40, 0), 30)).toBe(320);
  });
});

describe('the join settle wait', () => {
  it.each([
    [1, 500],
    [20, 500],
    [100, 500],
    [10_000, 500],
    [10_000, 2_000],
  ])('N=%i, clock-rate error %i ppm: 2N + drift over 2N (both clocks) + 2 ms of flooring', (n, ppm) => {
    const t = deriveTiming(n, 6 * n, { ...TIMING_DEFAULTS, clockRatePpm: ppm });
    const drift = Math.ceil((2 * ppm * 2 * n) / 1_000_000);
    expect(t.joinSettleMs).toBe(2 * n + drift + 2);
    expect(t.joinSettleMs).toBeLessThan(t.renewWarnMs);
  });

  it('is 20 ms above 2N + 2 at sanlock\'s N = 10 s and 500 ppm', () => {
    expect(deriveTiming(10_000, 60_000).joinSettleMs).toBe(20_022);
  });
});

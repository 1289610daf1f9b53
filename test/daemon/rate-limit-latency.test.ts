import { describe, expect, it } from 'vitest';
import { LatencyHistory } from '../../dist/helper/daemon/latency-history.js';
import { RateLimit } from '../../dist/helper/sockets/rate-limit.js';

/** How many of `count` takes at one instant succeed. */
const takes = (limit: RateLimit, nowMs: number, count: number) => Array.from({ length: count }, () => limit.take(nowMs)).filter(Boolean).length;

describe('RateLimit', () => {
  it('allows a burst at once, then refuses', () => {
    const limit = new RateLimit(10, 5, 1_000);
    expect(takes(limit, 1_000, 5)).toBe(5);
    expect(limit.take(1_000)).toBe(false);
    expect(limit.take(1_000)).toBe(false);
  });

  it('refills at the configured rate', () => {
    const limit = new RateLimit(10, 5, 0); // one token per 100 ms
    expect(takes(limit, 0, 5)).toBe(5);
    expect(limit.take(99)).toBe(false);
    expect(limit.take(100)).toBe(true);
    expect(limit.take(100)).toBe(false);
    // 300 ms later: three tokens, not more.
    expect(takes(limit, 400, 10)).toBe(3);
  });

  it('counts partial refills across refused takes', () => {
    const limit = new RateLimit(4, 1, 0); // one token per 250 ms
    expect(limit.take(0)).toBe(true);
    expect(limit.take(125)).toBe(false); // half a token
    expect(limit.take(249)).toBe(false);
    expect(limit.take(250)).toBe(true); // the halves add up
  });

  it('never holds more than the burst, however long it was idle', () => {
    const limit = new RateLimit(1_000, 3, 0);
    expect(takes(limit, 3_600_000, 10)).toBe(3);
  });

  it('sustains exactly the rate under a steady flood', () => {
    const limit = new RateLimit(50, 1, 0);
    let allowed = 0;
    for (let t = 0; t < 10_000; t += 1) allowed += takes(limit, t, 2);
    // The burst of one at t = 0, then one per 20 ms up to t = 9980.
    expect(allowed).toBe(500);
  });

  it('refuses a rate or burst that makes no sense', () => {
    expect(() => new RateLimit(0, 5, 0)).toThrow(/positive rate and burst/);
    expect(() => new RateLimit(10, 0, 0)).toThrow(/positive rate and burst/);
  });
});

describe('LatencyHistory', () => {
  it('keeps latencies oldest first', () => {
    const history = new LatencyHistory(4);
    expect(history.recent()).toEqual([]);
    history.add(5);
    history.add(3);
    history.add(8);
    expect(history.recent()).toEqual([5, 3, 8]);
  });

  it('is bounded: the oldest entries are dropped', () => {
    const history = new LatencyHistory(3);
    for (const value of [1, 2, 3, 4, 5]) history.add(value);
    expect(history.recent()).toEqual([3, 4, 5]);
    for (let i = 0; i < 1_000; i++) history.add(i);
    expect(history.recent()).toEqual([997, 998, 999]);
  });

  it('returns a copy that cannot change the history', () => {
    const history = new LatencyHistory(2);
    history.add(1);
    history.recent().push(99);
    expect(history.recent()).toEqual([1]);
  });

  it('refuses a size below one or fractional', () => {
    expect(() => new LatencyHistory(0)).toThrow(/history of 0 entries/);
    expect(() => new LatencyHistory(1.5)).toThrow(/history of 1.5 entries/);
    const one = new LatencyHistory(1);
    one.add(7);
    one.add(9);
    expect(one.recent()).toEqual([9]);
  });
});

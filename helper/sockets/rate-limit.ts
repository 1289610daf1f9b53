import assert from 'node:assert/strict';

/**
 * A token bucket per session: `burst` messages at once, refilled at
 * `perSecond`. A peer that exceeds it loses its session (a flood must not
 * delay renewals, which share the event loop).
 */
export class RateLimit {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    assert.ok(perSecond > 0 && burst >= 1, 'a rate limit needs a positive rate and burst');
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  take(nowMs: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    this.lastMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

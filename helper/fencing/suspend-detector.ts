import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/**
 * Suspend detection (SPEC section 3). CLOCK_MONOTONIC stops while the host is
 * suspended; CLOCK_BOOTTIME (/proc/uptime) does not. Other hosts' clocks kept
 * running, so after a resume our leases may already have been taken over
 * while our monotonic deadlines say they are still valid. Comparing how far
 * each clock advanced between two checks shows the gap; the helper fences on
 * it. A sleep inhibitor (deploy/systemd) keeps most suspends from happening;
 * this catches the rest (forced suspend, a VM host paused as a whole).
 */

export interface ClockSample {
  /** CLOCK_BOOTTIME, ms. */
  readonly bootMs: number;
  /** CLOCK_MONOTONIC, ms. */
  readonly monotonicMs: number;
}

export interface SuspendCheck {
  readonly suspended: boolean;
  /** How much more boot time than monotonic time passed between the samples, ms (>= 0). */
  readonly gapMs: number;
}

/** Pure: between two samples, did boot time advance by more than monotonic time + thresholdMs? */
export function compareClockSamples(previous: ClockSample, next: ClockSample, thresholdMs: number): SuspendCheck {
  assert.ok(Number.isFinite(thresholdMs) && thresholdMs > 0, `suspend threshold ${thresholdMs} must be positive`);
  const bootAdvancedMs = next.bootMs - previous.bootMs;
  const monotonicAdvancedMs = next.monotonicMs - previous.monotonicMs;
  assert.ok(monotonicAdvancedMs >= 0, 'the monotonic clock went backwards');
  // Boot time can show less than monotonic time only through read skew and /proc/uptime's
  // 10 ms resolution; that is no suspend.
  const gapMs = Math.max(0, bootAdvancedMs - monotonicAdvancedMs);
  return { suspended: gapMs > thresholdMs, gapMs };
}

/** CLOCK_BOOTTIME in ms from /proc/uptime's first field ("12345.67 ..."; 10 ms resolution). */
export function parseUptimeMs(text: string): number {
  const match = /^(\d{1,12})\.(\d{2})\s/.exec(text);
  assert.ok(match !== null, `unexpected /proc/uptime contents '${text.slice(0, 40)}'`);
  return Number(match[1]) * 1000 + Number(match[2]) * 10;
}

/** Reads /proc/uptime (procfs, never shared storage: safe on the main thread). */
export function readBootTimeMs(read: () => string = () => readFileSync('/proc/uptime', 'utf8')): number {
  return parseUptimeMs(read());
}

export interface SuspendDetectorDeps {
  /** CLOCK_BOOTTIME, ms (readBootTimeMs). */
  readonly bootTimeMs: () => number;
  /** CLOCK_MONOTONIC, ms (Clock.nowMs). */
  readonly monotonicMs: () => number;
  /** A gap larger than this is a suspend. Keep it well above /proc/uptime's 10 ms resolution. */
  readonly thresholdMs: number;
}

/** Compares each check with the previous one; the helper calls check() on a timer. */
export class SuspendDetector {
  private previous: ClockSample;

  constructor(private readonly deps: SuspendDetectorDeps) {
    assert.ok(deps.thresholdMs >= 20, `suspend threshold ${deps.thresholdMs} ms is within /proc/uptime's resolution`);
    this.previous = this.sample();
  }

  check(): SuspendCheck {
    const next = this.sample();
    const result = compareClockSamples(this.previous, next, this.deps.thresholdMs);
    this.previous = next;
    return result;
  }

  private sample(): ClockSample {
    const bootMs = this.deps.bootTimeMs();
    const monotonicMs = this.deps.monotonicMs();
    return { bootMs, monotonicMs };
  }
}

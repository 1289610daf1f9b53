import assert from 'node:assert/strict';

/**
 * Every timeout of the lease algorithms, derived in one place from the io
 * timeout N and the watchdog fire timeout W (SPEC section 3), in milliseconds.
 *
 * Renew every 2N. With T the monotonic time read just before submitting the
 * renewal write that succeeded, everything holding the host's leases is
 * stopped by T+8N (fail); the last watchdog pet is no later than fail minus
 * the pet interval, so the watchdog resets the host by T+8N+W. Another host
 * may take over at t_obs+8N+W+margin, where t_obs is when it last saw the
 * owner's timestamp change and N, W are the larger of its own and the
 * owner's published values.
 */

export interface TimingOptions {
  /** Clock-rate error bound between any two hosts' monotonic clocks, parts per million (>= 500). */
  readonly clockRatePpm: number;
  /** How late a watchdog may fire after its timeout. */
  readonly watchdogErrorMs: number;
  /** The smallest takeover margin (SPEC: at least 1 s). */
  readonly marginMinMs: number;
}

export const TIMING_DEFAULTS: TimingOptions = { clockRatePpm: 500, watchdogErrorMs: 1_000, marginMinMs: 1_000 };

export interface Timing {
  readonly ioTimeoutMs: number;
  /** 0 = no watchdog. */
  readonly watchdogFireTimeoutMs: number;
  /** Renew the delta lease this often. */
  readonly renewIntervalMs: number;
  /** Warn when the last successful renewal is this old. */
  readonly renewWarnMs: number;
  /** From T, everything holding the host's leases must be stopped by this. */
  readonly failMs: number;
  /** The watchdog is petted at least this often while renewals succeed. */
  readonly watchdogPetIntervalMs: number;
  /** Wait after writing our delta record before re-reading it to confirm ownership. */
  readonly joinSettleMs: number;
}

export function deriveTiming(ioTimeoutMs: number, watchdogFireTimeoutMs: number, options: TimingOptions = TIMING_DEFAULTS): Timing {
  assert.ok(Number.isInteger(ioTimeoutMs) && ioTimeoutMs >= 1, `io timeout ${ioTimeoutMs} must be a positive integer of ms`);
  assert.ok(Number.isInteger(watchdogFireTimeoutMs) && watchdogFireTimeoutMs >= 0, `watchdog fire timeout ${watchdogFireTimeoutMs} must be a non-negative integer of ms`);
  assert.ok(options.clockRatePpm >= 500, 'clock-rate error bound must be at least 500 ppm');
  const settleDriftMs = driftMs(2 * ioTimeoutMs, options.clockRatePpm);
  const timing: Timing = {
    ioTimeoutMs,
    watchdogFireTimeoutMs,
    renewIntervalMs: 2 * ioTimeoutMs,
    renewWarnMs: 6 * ioTimeoutMs,
    failMs: 8 * ioTimeoutMs,
    watchdogPetIntervalMs: Math.max(1, Math.min(ioTimeoutMs, 1_000)),
    // A competitor that read before our write landed writes within N of its read (or re-reads),
    // and its write lands within N: 2N of its clock after our write completed, it is visible. Our
    // clock may run slower than its by the clock-rate error (both ways: 2ρ), and each clock is read
    // floored to a millisecond: 2N + drift + 2 ms.
    joinSettleMs: 2 * ioTimeoutMs + settleDriftMs + 2,
  };
  // A renewal (read + write, each up to N) fits in the interval before the next; several
  // renewals can fail before the warning, and the warning comes before the fail deadline.
  assert.ok(timing.renewIntervalMs >= 2 * ioTimeoutMs, 'renewal must fit its read and write');
  assert.ok(timing.renewIntervalMs < timing.renewWarnMs && timing.renewWarnMs < timing.failMs, 'renew < warn < fail');
  assert.ok(timing.watchdogPetIntervalMs < timing.failMs, 'the watchdog is petted more often than fail');
  assert.ok(timing.joinSettleMs >= 2 * ioTimeoutMs + settleDriftMs + 2, 'the settle wait covers 2N of a competitor\'s clock, drift and flooring');
  assert.ok(timing.joinSettleMs < timing.renewWarnMs, 'a join is confirmed well before its warning');
  return timing;
}

/** How far two monotonic clocks may drift apart over `intervalMs`, each off by up to `clockRatePpm`. */
export function driftMs(intervalMs: number, clockRatePpm: number): number {
  return Math.ceil((2 * clockRatePpm * intervalMs) / 1_000_000);
}

/** The takeover margin for fail + W, covering clock-rate error and watchdog lateness (SPEC section 3). */
export function takeoverMarginMs(failMs: number, watchdogFireTimeoutMs: number, options: TimingOptions = TIMING_DEFAULTS): number {
  assert.ok(options.clockRatePpm >= 500, 'clock-rate error bound must be at least 500 ppm');
  const drift = driftMs(failMs + watchdogFireTimeoutMs, options.clockRatePpm);
  const margin = Math.max(options.marginMinMs, drift + options.watchdogErrorMs);
  assert.ok(margin >= 1_000 || options.marginMinMs < 1_000, 'margin of at least 1 s unless a test lowers the minimum');
  return margin;
}

export interface HostDeadInput {
  readonly own: Timing;
  /** What the owner published in its delta record. */
  readonly ownerIoTimeoutMs: number;
  readonly ownerWatchdogFireTimeoutMs: number;
  /** The operator accepts takeover from a host without watchdog (SPEC: logged as a warning each time). */
  readonly takeoverWithoutWatchdog: boolean;
  readonly options?: TimingOptions;
}

/**
 * How long after t_obs (the observer's time when it last saw the owner's
 * timestamp change) the owner counts as dead, or undefined when it never
 * can on timing alone (it runs without a watchdog and takeover without one is
 * not allowed). N and W are the larger of the observer's and the owner's.
 */
export function hostDeadAfterMs(input: HostDeadInput): number | undefined {
  const ownerHasWatchdog = input.ownerWatchdogFireTimeoutMs > 0;
  if (!ownerHasWatchdog && !input.takeoverWithoutWatchdog) return undefined;
  const n = Math.max(input.own.ioTimeoutMs, input.ownerIoTimeoutMs);
  const w = Math.max(input.own.watchdogFireTimeoutMs, input.ownerWatchdogFireTimeoutMs);
  const failMs = 8 * n;
  // W + margin must exceed N: a renewal that succeeded just before the owner's fail time has
  // landed (within N) before any read submitted at host_dead, so that read would show it.
  const margin = Math.max(takeoverMarginMs(failMs, w, input.options), n + 1 - w);
  const dead = failMs + w + margin;
  assert.ok(dead > failMs + w && w + margin > n, 'host_dead is later than the owner\'s watchdog reset and than its last renewal landing');
  return dead;
}

/** The larger of the observer's and the owner's fail time: a host silent this long is FAIL. */
export function hostFailAfterMs(own: Timing, ownerIoTimeoutMs: number): number {
  return 8 * Math.max(own.ioTimeoutMs, ownerIoTimeoutMs);
}

/**
 * When this host stops its own VMs after its renewals stop succeeding,
 * measured from T (the last successful renewal), so that everything holding
 * the host's leases is gone by fail = T + 8N (SPEC section 3, fencing layers):
 * supervisors are told their deadline (they kill their child on their own
 * when no fresher one arrives), the helper sends SIGTERM, then SIGKILL, and
 * the watchdog is petted no later than fail minus the pet interval.
 */
export interface FenceTiming {
  /** The deadline handed to supervisors: T + this. */
  readonly supervisorValidForMs: number;
  /** The helper SIGTERMs the VMs' processes at T + this. */
  readonly sigtermAfterMs: number;
  /** The helper SIGKILLs what is left at T + this. */
  readonly sigkillAfterMs: number;
  readonly failMs: number;
}

export function deriveFenceTiming(timing: Timing): FenceTiming {
  const n = timing.ioTimeoutMs;
  const fence: FenceTiming = { supervisorValidForMs: 6 * n, sigtermAfterMs: 6 * n, sigkillAfterMs: 7 * n, failMs: timing.failMs };
  // A renewal that fails its whole interval twice still leaves the VMs running (no needless kills),
  // and SIGKILL leaves N for the kernel to tear the processes down before fail.
  assert.ok(fence.supervisorValidForMs > 2 * timing.renewIntervalMs, 'two failed renewals do not stop the VMs');
  assert.ok(fence.supervisorValidForMs <= fence.sigtermAfterMs && fence.sigtermAfterMs < fence.sigkillAfterMs && fence.sigkillAfterMs < fence.failMs, 'supervisor deadline <= SIGTERM < SIGKILL < fail');
  return fence;
}

import type { Rng } from '../../test/sim/rng.js';

/**
 * Which fault comes next, and with what parameters, drawn from the run's
 * seeded PRNG. The harness applies it to the cluster as it stands (a fault
 * that does not apply, such as killing a writer when none runs, is drawn
 * again). Durations are in units of the fail time F = 8N and the reset time
 * R = F + W, so a fault is sometimes short enough to be ridden out and
 * sometimes long enough to make the watchdog reset the host.
 */

export const FAULT_KINDS = [
  'host-kill',
  'host-restart',
  'helper-stop',
  'helper-restart',
  'supervisor-kill',
  'writer-kill',
  'storage-stall',
  'storage-slow',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export type Fault =
  | { readonly kind: 'host-kill'; readonly host: number; readonly downMs: number }
  | { readonly kind: 'helper-stop'; readonly host: number; readonly durationMs: number }
  | { readonly kind: 'helper-restart'; readonly host: number; readonly signal: 'SIGKILL' | 'SIGQUIT' }
  | { readonly kind: 'supervisor-kill'; readonly vm: number }
  | { readonly kind: 'writer-kill'; readonly vm: number }
  | { readonly kind: 'storage-stall'; readonly host: number; readonly durationMs: number }
  | { readonly kind: 'storage-slow'; readonly host: number; readonly durationMs: number };

/** Weights of the drawn kinds (host-restart follows every host-kill and reset; it is not drawn). */
const WEIGHTS: readonly [Exclude<FaultKind, 'host-restart'>, number][] = [
  ['host-kill', 2],
  ['helper-stop', 3],
  ['helper-restart', 2],
  ['supervisor-kill', 2],
  ['writer-kill', 2],
  ['storage-stall', 2],
  ['storage-slow', 2],
];

export interface FaultTargets {
  /** Hosts that are up and have no fault running on them. */
  readonly quietHosts: readonly number[];
  /** VMs whose writer runs. */
  readonly runningVms: readonly number[];
}

export interface FaultTiming {
  readonly failMs: number;
  readonly resetMs: number;
  readonly hostDeadMs: number;
  /**
   * When set, every helper stop, storage stall and slowdown lasts MIN..MAX ms instead of the
   * short-or-long draw: a run that must fail uses stops well past host_dead, so that each one on a
   * host running a VM gives the cluster loop a takeover to attempt.
   */
  readonly durationMs?: { readonly min: number; readonly max: number } | undefined;
}

export type DrawnKind = Exclude<FaultKind, 'host-restart'>;
export const DRAWN_KINDS: readonly DrawnKind[] = WEIGHTS.map(([kind]) => kind);

function kindOf(rng: Rng, kinds: ReadonlySet<DrawnKind>): DrawnKind {
  const weights = WEIGHTS.filter(([kind]) => kinds.has(kind));
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  let x = rng.float() * total;
  for (const [kind, w] of weights) {
    x -= w;
    if (x < 0) return kind;
  }
  return weights[weights.length - 1]![0];
}

/** The next fault, or undefined when nothing applies now (all hosts busy with a fault and no VM runs). */
export function drawFault(rng: Rng, targets: FaultTargets, timing: FaultTiming, kinds: ReadonlySet<DrawnKind> = new Set(DRAWN_KINDS), attemptsMax = 20): Fault | undefined {
  if (kinds.size === 0) return undefined;
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const kind = kindOf(rng, kinds);
    if (kind === 'supervisor-kill' || kind === 'writer-kill') {
      if (targets.runningVms.length === 0) continue;
      return { kind, vm: rng.pick(targets.runningVms) };
    }
    // Never fault the last quiet host: the cluster always keeps one host able to run VMs.
    if (targets.quietHosts.length <= 1) continue;
    const host = rng.pick(targets.quietHosts);
    const fixed = timing.durationMs;
    if (fixed !== undefined && (kind === 'helper-stop' || kind === 'storage-stall' || kind === 'storage-slow')) {
      return { kind, host, durationMs: rng.int(fixed.min, fixed.max) };
    }
    switch (kind) {
      case 'host-kill':
        return { kind, host, downMs: rng.int(1_000, 5_000) };
      case 'helper-stop':
        // Short (ridden out: under half the fail time) or long (past the reset time, up to twice host_dead).
        return { kind, host, durationMs: rng.chance(0.5) ? rng.int(100, Math.floor(timing.failMs / 2)) : rng.int(timing.resetMs, 2 * timing.hostDeadMs) };
      case 'helper-restart':
        return { kind, host, signal: rng.chance(0.5) ? 'SIGKILL' : 'SIGQUIT' };
      case 'storage-stall':
        return { kind, host, durationMs: rng.chance(0.4) ? rng.int(200, Math.floor(timing.failMs / 2)) : rng.int(timing.resetMs, 2 * timing.hostDeadMs) };
      case 'storage-slow':
        return { kind, host, durationMs: rng.int(1_000, 8_000) };
    }
  }
  return undefined;
}

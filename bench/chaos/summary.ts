import { renderTable } from '../../cli/render/table.js';
import { DRAWN_KINDS, FAULT_KINDS, type FaultKind } from './fault-plan.js';
import type { ChaosOptions, ResetRecord } from './chaos-run.js';
import type { Violation } from './vm-keeper.js';

/**
 * The verdict and figures of one harness run: a JSON document (for scripts
 * and docs/chaos.md) and a short table for people. The seed and the command
 * that repeats the run are part of both.
 */

export interface Spread {
  readonly count: number;
  readonly medianMs: number | null;
  readonly maxMs: number | null;
}

export interface ChaosSummary {
  readonly passed: boolean;
  readonly seed: number;
  readonly repeat: string;
  readonly hosts: number;
  readonly vms: number;
  readonly seconds: number;
  readonly durationMs: number;
  readonly sectorSize: number;
  readonly ioTimeoutMs: number;
  readonly watchdogFireTimeoutMs: number;
  readonly disabled: readonly string[];
  readonly unsafeHostDead: boolean;
  readonly hostDeadMs: number;
  /** fail + W: by then a host whose helper stopped renewing has been reset by its watchdog. */
  readonly resetMs: number;
  readonly faults: Readonly<Record<FaultKind, number>>;
  readonly faultsTotal: number;
  readonly vmStarts: number;
  readonly failovers: number;
  /** From a VM's supervisor exit to its writer running on another host. */
  readonly failoverMs: Spread;
  /** From a VM's supervisor exit to its writer running again anywhere. */
  readonly restartMs: Spread;
  readonly violations: number;
  readonly violationSamples: readonly Violation[];
  readonly vmsRunningAtEnd: number;
  readonly resets: { readonly count: number; readonly drainMs: Spread; readonly overMarginCount: number };
  readonly refusals: { readonly busy: number; readonly other: number; readonly samples: readonly string[] };
  /** Starts elsewhere that got the lease while the VM was believed to run on a host with a fault (its old instance was gone by then, or a violation shows). */
  readonly takeoversWhileSuspect: number;
  /** Helpers restarted by the harness because their lockspace was lost (they stay up but cannot serve). */
  readonly helperRepairs: number;
  /** The run directory with every host's log, kept when the run failed (or with --keep). */
  readonly dir: string | undefined;
}

export interface SummaryInput {
  readonly options: ChaosOptions;
  readonly hostDeadMs: number;
  readonly resetMs: number;
  readonly faults: ReadonlyMap<FaultKind, number>;
  readonly vmStarts: number;
  readonly failovers: number;
  readonly failoverMs: readonly number[];
  readonly restartMs: readonly number[];
  readonly violations: readonly Violation[];
  readonly violationCount: number;
  readonly vmsRunningAtEnd: number;
  readonly resets: readonly ResetRecord[];
  readonly busyRefusals: number;
  readonly duplicateStarts: number;
  readonly repairs: number;
  readonly otherRefusals: number;
  readonly refusalSamples: readonly string[];
  readonly durationMs: number;
  readonly dir: string | undefined;
}

export function spread(samples: readonly number[]): Spread {
  if (samples.length === 0) return { count: 0, medianMs: null, maxMs: null };
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
  return { count: sorted.length, medianMs: median, maxMs: sorted[sorted.length - 1]! };
}

/** The command that repeats a run (same seed and settings). */
export function repeatCommand(o: ChaosOptions): string {
  const parts = ['npm run chaos --', `--hosts ${o.hosts}`, `--vms ${o.vms}`, `--seconds ${o.seconds}`, `--seed ${o.seed}`];
  if (o.sectorSize !== 512) parts.push(`--sector-size ${o.sectorSize}`);
  parts.push(`--io-timeout-ms ${o.ioTimeoutMs}`, `--watchdog-ms ${o.watchdogFireTimeoutMs}`, `--fault-gap-ms ${o.faultGapMinMs}-${o.faultGapMaxMs}`);
  if (o.faultDurationMs !== undefined) parts.push(`--fault-ms ${o.faultDurationMs.min}-${o.faultDurationMs.max}`);
  if (o.faultKinds.length !== DRAWN_KINDS.length) parts.push(`--faults ${o.faultKinds.join(',')}`);
  parts.push(`--quiet-seconds ${o.quietSeconds}`);
  for (const d of o.disable) parts.push(`--disable ${d}`);
  if (o.unsafeHostDead) parts.push('--unsafe-host-dead');
  return parts.join(' ');
}

export function summarize(input: SummaryInput): ChaosSummary {
  const o = input.options;
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, input.faults.get(k) ?? 0])) as Record<FaultKind, number>;
  // Between a reset and the earliest takeover lie host_dead - (fail + W): a reset whose processes
  // took longer than that to leave (D state) could have let a late write land after a takeover.
  const marginMs = input.hostDeadMs - input.resetMs;
  return {
    passed: input.violationCount === 0 && input.vmsRunningAtEnd === o.vms,
    seed: o.seed,
    repeat: repeatCommand(o),
    hosts: o.hosts,
    vms: o.vms,
    seconds: o.seconds,
    durationMs: input.durationMs,
    sectorSize: o.sectorSize,
    ioTimeoutMs: o.ioTimeoutMs,
    watchdogFireTimeoutMs: o.watchdogFireTimeoutMs,
    disabled: [...o.disable],
    unsafeHostDead: o.unsafeHostDead,
    hostDeadMs: input.hostDeadMs,
    resetMs: input.resetMs,
    faults,
    faultsTotal: Object.values(faults).reduce((a, b) => a + b, 0),
    vmStarts: input.vmStarts,
    failovers: input.failovers,
    failoverMs: spread(input.failoverMs),
    restartMs: spread(input.restartMs),
    violations: input.violationCount,
    violationSamples: input.violations,
    vmsRunningAtEnd: input.vmsRunningAtEnd,
    resets: { count: input.resets.length, drainMs: spread(input.resets.map((r) => r.drainMs)), overMarginCount: input.resets.filter((r) => r.drainMs > marginMs).length },
    refusals: { busy: input.busyRefusals, other: input.otherRefusals, samples: input.refusalSamples },
    takeoversWhileSuspect: input.duplicateStarts,
    helperRepairs: input.repairs,
    dir: input.dir,
  };
}

const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);

export function renderSummary(s: ChaosSummary): string {
  const rows: string[][] = [
    ['verdict', s.passed ? 'PASS' : 'FAIL'],
    ['seed', String(s.seed)],
    ['hosts / VMs / seconds', `${s.hosts} / ${s.vms} / ${s.seconds} (${s.sectorSize}-byte sectors)`],
    ['io timeout N / watchdog W', `${s.ioTimeoutMs} ms / ${s.watchdogFireTimeoutMs} ms`],
    ['host_dead (configured)', `${s.hostDeadMs} ms${s.unsafeHostDead ? ' (UNSAFE: takeover at 2N)' : ''}`],
    ['disabled', s.disabled.length === 0 ? 'nothing' : s.disabled.join(', ')],
    ['faults', `${s.faultsTotal}: ${FAULT_KINDS.map((k) => `${k} ${s.faults[k]}`).join(', ')}`],
    ['VM starts', String(s.vmStarts)],
    ['failovers', String(s.failovers)],
    ['failover time median / max', `${ms(s.failoverMs.medianMs)} / ${ms(s.failoverMs.maxMs)} (host_dead ${s.hostDeadMs} ms)`],
    ['restart time median / max', `${ms(s.restartMs.medianMs)} / ${ms(s.restartMs.maxMs)}`],
    ['resets: last process gone after', `${s.resets.count} resets, median ${ms(s.resets.drainMs.medianMs)}, max ${ms(s.resets.drainMs.maxMs)}, ${s.resets.overMarginCount} over the margin ${s.hostDeadMs - s.resetMs} ms`],
    ['start refusals', `busy ${s.refusals.busy}, other ${s.refusals.other}`],
    ['takeovers of a suspect VM', String(s.takeoversWhileSuspect)],
    ['helpers restarted (lockspace lost)', String(s.helperRepairs)],
    ['violations', String(s.violations)],
    ['VMs running at the end', `${s.vmsRunningAtEnd} / ${s.vms}`],
    ['repeat', s.repeat],
  ];
  if (s.dir) rows.push(['logs', s.dir]);
  return renderTable(['WHAT', 'VALUE'], rows);
}

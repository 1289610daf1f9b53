import { describe, expect, it } from 'vitest';
import { Rng } from '../../dist/test/sim/rng.js';
import { drawFault, type Fault } from '../../dist/bench/chaos/fault-plan.js';
import { repeatCommand, spread } from '../../dist/bench/chaos/summary.js';

/** The harness's seeded choices and its figures, without processes. */

const timing = { failMs: 2_400, resetMs: 5_400, hostDeadMs: 6_406 };

function draws(seed: number, count: number, quietHosts: number[], runningVms: number[], kinds?: Set<'helper-stop' | 'writer-kill' | 'storage-stall'>): Fault[] {
  const rng = new Rng(seed);
  const out: Fault[] = [];
  for (let i = 0; i < count; i++) {
    const f = drawFault(rng, { quietHosts, runningVms }, timing, kinds);
    if (f) out.push(f);
  }
  return out;
}

describe('fault plan', () => {
  it('is a function of the seed', () => {
    expect(draws(7, 50, [1, 2, 3], [0, 1, 2])).toEqual(draws(7, 50, [1, 2, 3], [0, 1, 2]));
    expect(draws(7, 50, [1, 2, 3], [0, 1, 2])).not.toEqual(draws(8, 50, [1, 2, 3], [0, 1, 2]));
  });

  it('never faults the last quiet host, and kills only running VMs', () => {
    const faults = draws(3, 200, [2], [4]);
    expect(faults.length).toBeGreaterThan(0);
    for (const f of faults) {
      expect(['supervisor-kill', 'writer-kill']).toContain(f.kind);
      expect((f as { vm: number }).vm).toBe(4);
    }
    expect(draws(3, 20, [2], [])).toEqual([]);
  });

  it('draws only the kinds asked for, short ones under half the fail time and long ones past the reset time', () => {
    const faults = draws(11, 300, [1, 2, 3], [0], new Set(['helper-stop', 'storage-stall']));
    expect(new Set(faults.map((f) => f.kind))).toEqual(new Set(['helper-stop', 'storage-stall']));
    for (const f of faults) {
      const d = (f as { durationMs: number }).durationMs;
      expect(d <= timing.failMs / 2 || (d >= timing.resetMs && d <= 2 * timing.hostDeadMs)).toBe(true);
    }
    expect(faults.some((f) => (f as { durationMs: number }).durationMs >= timing.resetMs)).toBe(true);
  });

  it('with a fixed duration range, every stop, stall and slowdown lasts within it', () => {
    const rng = new Rng(5);
    const fixed = { ...timing, durationMs: { min: 9_000, max: 12_000 } };
    const faults: Fault[] = [];
    for (let i = 0; i < 300; i++) {
      const f = drawFault(rng, { quietHosts: [1, 2, 3], runningVms: [0] }, fixed, new Set(['helper-stop', 'storage-stall', 'storage-slow', 'writer-kill']));
      if (f) faults.push(f);
    }
    const timed = faults.filter((f) => 'durationMs' in f) as { durationMs: number }[];
    expect(new Set(faults.map((f) => f.kind))).toEqual(new Set(['helper-stop', 'storage-stall', 'storage-slow', 'writer-kill']));
    for (const f of timed) {
      expect(f.durationMs).toBeGreaterThanOrEqual(9_000);
      expect(f.durationMs).toBeLessThanOrEqual(12_000);
    }
    expect(Math.min(...timed.map((f) => f.durationMs))).toBeLessThan(9_500);
    expect(Math.max(...timed.map((f) => f.durationMs))).toBeGreaterThan(11_500);
  });
});

describe('summary figures', () => {
  it('median and max', () => {
    expect(spread([5, 1, 9])).toEqual({ count: 3, medianMs: 5, maxMs: 9 });
    expect(spread([4, 1, 9, 2])).toEqual({ count: 4, medianMs: 3, maxMs: 9 });
    expect(spread([])).toEqual({ count: 0, medianMs: null, maxMs: null });
  });

  it('the repeat command carries the seed and every setting that changes the run', () => {
    const cmd = repeatCommand({ hosts: 3, vms: 6, seconds: 120, seed: 99, sectorSize: 4096, ioTimeoutMs: 300, watchdogFireTimeoutMs: 3000, quietSeconds: 30, faultGapMinMs: 2000, faultGapMaxMs: 6000, faultDurationMs: { min: 9000, max: 12000 }, faultKinds: ['helper-stop'], disable: ['layer2'], unsafeHostDead: true, keep: false, progress: () => undefined });
    expect(cmd).toBe('npm run chaos -- --hosts 3 --vms 6 --seconds 120 --seed 99 --sector-size 4096 --io-timeout-ms 300 --watchdog-ms 3000 --fault-gap-ms 2000-6000 --fault-ms 9000-12000 --faults helper-stop --quiet-seconds 30 --disable layer2 --unsafe-host-dead');
  });
});

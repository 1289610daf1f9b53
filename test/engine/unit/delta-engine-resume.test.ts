import { describe, expect, it } from 'vitest';
import { deriveTiming } from '../../../dist/helper/engine/timing.js';
import { type LockspaceSpec } from '../../../dist/helper/format/index.js';
import { heldRecord, incarnation, World } from './harness.js';

/**
 * Resume: a restarted helper of the same incarnation adopts its record at
 * the generation it left, taking the record's timestamp (less 1 ms) as the
 * last successful renewal, and renews at once. Anything else is refused, and
 * nothing is written then.
 */

const N = 100;
const W = 300;
const HOST = 2;
const SPEC: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'cluster-r', hostsMax: 4, sectorSize: 512, ioTimeoutMs: N };
const ME = incarnation('host-me', 1);
const timing = deriveTiming(N, W);

function setup(recordTimestampMs: number, owner = ME, generation = 7) {
  const world = new World();
  const area = world.lockspace(SPEC);
  area.setRecord(heldRecord(SPEC, HOST, owner, { generation, timestampMs: recordTimestampMs, ownerWatchdogFireTimeoutMs: W }));
  const d = world.delta(area, { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0 });
  return { world, area, d };
}

describe('DeltaEngine resume', () => {
  it('adopts our record at its generation, valid until its timestamp - 1 + 8N, and renews at once', () => {
    const { world, area, d } = setup(9_900);
    d.send({ type: 'resume', generation: 7 });
    world.runUntil(() => d.outcomesOf('joined').length > 0, 10 * N);
    expect(d.outcomesOf('joined')[0]!.outcome).toEqual({ type: 'joined', generation: 7, validUntilMs: 9_899 + timing.failMs });
    world.runUntil(() => d.outcomesOf('renewed').length > 0, 10 * N);
    const record = area.record(HOST);
    expect(record.generation).toBe(7);
    expect(record.owner).toEqual(ME);
    expect(record.timestampMs).toBeGreaterThan(9_900);
  });

  it('refuses a record of another incarnation (resume-mismatch) and writes nothing', () => {
    const { world, area, d } = setup(9_900, incarnation('host-me', 9));
    const before = area.record(HOST);
    d.send({ type: 'resume', generation: 7 });
    world.runUntil(() => d.outcomesOf('join-failed').length > 0, 10 * N);
    expect(d.outcomesOf('join-failed')[0]!.outcome).toMatchObject({ type: 'join-failed', code: 'resume-mismatch' });
    expect(d.writes()).toEqual([]);
    expect(area.record(HOST)).toEqual(before);
  });

  it('refuses another generation of our incarnation (resume-mismatch)', () => {
    const { world, d } = setup(9_900, ME, 8);
    d.send({ type: 'resume', generation: 7 });
    world.runUntil(() => d.outcomesOf('join-failed').length > 0, 10 * N);
    expect(d.outcomesOf('join-failed')[0]!.outcome).toMatchObject({ code: 'resume-mismatch' });
    expect(d.writes()).toEqual([]);
  });

  it('refuses a record already past its fail deadline (fail-deadline) and writes nothing', () => {
    const { world, d } = setup(10_000 - timing.failMs);
    d.send({ type: 'resume', generation: 7 });
    world.runUntil(() => d.outcomesOf('join-failed').length > 0, 10 * N);
    expect(d.outcomesOf('join-failed')[0]!.outcome).toMatchObject({ code: 'fail-deadline' });
    expect(d.writes()).toEqual([]);
  });
});

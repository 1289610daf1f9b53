import { describe, expect, it } from 'vitest';
import type { DeltaConfig } from '../../../dist/helper/engine/delta-engine.js';
import { HostTable } from '../../../dist/helper/engine/host-table.js';
import { deriveTiming, hostDeadAfterMs, hostFailAfterMs } from '../../../dist/helper/engine/timing.js';
import { type DeltaRecord, type LockspaceSpec } from '../../../dist/helper/format/index.js';
import { EIO, heldRecord, incarnation, World, type DeltaDriver } from './harness.js';

/**
 * What a host knows of the others, as the delta engine's renewal reads see
 * their records change or stop changing: UNKNOWN / LIVE / FAIL / DEAD / FREE,
 * with DEAD at t_obs + host_dead on the observer's clock.
 */

const N = 100;
const W = 300;
const HOST = 1;
const OTHER_ID = 5;
const SPEC: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'cluster-h', hostsMax: 8, sectorSize: 512, ioTimeoutMs: N };
const ME = incarnation('observer', 1);
const OTHER = incarnation('observed', 2);
const timing = deriveTiming(N, W);
const hostDead = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: N, ownerWatchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false })!;
const hostFail = hostFailAfterMs(timing, N);

function setup(overrides: Partial<Omit<DeltaConfig, 'lockspace'>> = {}) {
  const world = new World();
  const area = world.lockspace(SPEC);
  const d = world.delta(area, { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0, ...overrides });
  d.send({ type: 'join' });
  world.runUntil(() => d.engine.held, 10 * N);
  return { world, area, d };
}

/**
 * A silent host is never DEAD before deadAt = t_obs + host_dead, and is DEAD
 * once a read submitted at or after deadAt still shows the old value (at the
 * latest when that read completes, within a renewal interval of deadAt).
 * Returns the time it became DEAD.
 */
function expectDeadOnSchedule(world: World, d: DeltaDriver, hostId: number, deadAt: number): number {
  world.advanceTo(deadAt - 1);
  expect(d.engine.hostStatus(hostId, world.now).state).not.toBe('DEAD');
  expect(d.engine.ownerGone(hostId, d.engine.hostStatus(hostId, world.now).record!.generation, world.now)).toBe(false);
  const confirming = () => d.reads().find((r) => r.submittedAtMs >= deadAt && r.completedAtMs !== undefined);
  world.runUntil(() => confirming() !== undefined, 4 * N);
  const at = confirming()!.completedAtMs!;
  expect(at).toBeLessThanOrEqual(deadAt + 2 * N);
  const s = d.engine.hostStatus(hostId, world.now);
  expect(s.state).toBe('DEAD');
  expect(s.deadAtMs).toBe(deadAt);
  expect(d.engine.ownerGone(hostId, s.record!.generation, world.now)).toBe(true);
  return at;
}

/** The completion time of the last read the engine made (its view is as of then). */
function lastReadAt(d: DeltaDriver): number {
  return d.reads().at(-1)!.completedAtMs!;
}

function other(fields: Partial<DeltaRecord> = {}): DeltaRecord {
  return heldRecord(SPEC, OTHER_ID, OTHER, { generation: 3, timestampMs: 1_000, ...fields });
}

describe('HostTable through the delta engine', () => {
  it('a host never read is UNKNOWN, a free record is FREE', () => {
    const world = new World();
    const area = world.lockspace(SPEC);
    const d = world.delta(area, { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0 });
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('UNKNOWN');
    d.send({ type: 'join' });
    const s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('FREE');
    expect(s.record?.timestampMs).toBe(0);
    // FREE never ages into anything else.
    world.advance(10 * hostDead);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FREE');
  });

  it('a record seen changing is LIVE; unchanged it becomes FAIL at t_obs+8N and DEAD at t_obs+host_dead', () => {
    const { world, area, d } = setup();
    area.setRecord(other({ timestampMs: 1_000 }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ timestampMs: 1_200 }));
    world.advanceTo(d.wakeAtMs!);
    const tObs = lastReadAt(d);
    let s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('LIVE');
    expect(s.sinceMs).toBe(tObs);
    expect(s.deadAtMs).toBe(tObs + hostDead);
    expect(s.record?.timestampMs).toBe(1_200);

    world.advanceTo(tObs + hostFail - 1);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('LIVE');
    world.advanceTo(tObs + hostFail);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    world.advanceTo(tObs + hostDead - 1);
    s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('FAIL');
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);
    expectDeadOnSchedule(world, d, OTHER_ID, tObs + hostDead);
    s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.sinceMs).toBe(tObs);
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(true);
  });

  it('a DEAD host that renews again is LIVE with a new t_obs; a free record is FREE and its generation gone', () => {
    const { world, area, d } = setup();
    area.setRecord(other({ timestampMs: 1_000 }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ timestampMs: 1_100 }));
    world.advance(hostDead + 4 * N);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('DEAD');
    area.setRecord(other({ timestampMs: 9_000 }));
    world.advanceTo(d.wakeAtMs!);
    const tObs = lastReadAt(d);
    let s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('LIVE');
    expect(s.sinceMs).toBe(tObs);
    expect(s.deadAtMs).toBe(tObs + hostDead);
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);

    area.setRecord(other({ timestampMs: 0 }));
    world.advanceTo(d.wakeAtMs!);
    s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('FREE');
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(true);
    // A lease of a later generation than the free record's is not proven gone.
    expect(d.engine.ownerGone(OTHER_ID, 4, world.now)).toBe(false);
  });

  it('a record re-acquired by a newer generation makes the older generation gone at once, not the new one', () => {
    const { world, area, d } = setup();
    area.setRecord(other({ generation: 3 }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ generation: 4, timestampMs: 50 }));
    world.advanceTo(d.wakeAtMs!);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('LIVE');
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(true);
    expect(d.engine.ownerGone(OTHER_ID, 4, world.now)).toBe(false);
  });

  it('a record already held when first read, never seen changing, is UNKNOWN, then FAIL and DEAD on the same schedule', () => {
    const world = new World();
    const area = world.lockspace(SPEC);
    area.setRecord(other());
    const d = world.delta(area, { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0 });
    d.send({ type: 'join' });
    const tObs = d.reads()[0]!.completedAtMs!;
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('UNKNOWN');
    world.advanceTo(tObs + hostFail - 1);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('UNKNOWN');
    world.advanceTo(tObs + hostFail);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    world.advanceTo(tObs + hostDead - 1);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    expectDeadOnSchedule(world, d, OTHER_ID, tObs + hostDead);
  });

  it('t_obs is when the read that saw the change completed, not when it was submitted', () => {
    const { world, area, d } = setup();
    area.setRecord(other({ timestampMs: 1_000 }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ timestampMs: 1_500 }));
    const submitted = d.wakeAtMs!;
    d.on({ kind: 'read' }, { delayMs: 60 });
    world.advanceTo(submitted + 60);
    const completed = lastReadAt(d);
    expect(completed).toBe(submitted + 60);
    expect(d.engine.hostStatus(OTHER_ID, world.now).sinceMs).toBe(completed);
    expect(d.engine.hostStatus(OTHER_ID, world.now).deadAtMs).toBe(completed + hostDead);
    world.advanceTo(submitted + hostDead);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).not.toBe('DEAD');
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);
    expectDeadOnSchedule(world, d, OTHER_ID, completed + hostDead);
  });

  it('uses the larger of its own and the owner\'s published N and W', () => {
    const { world, area, d } = setup();
    const ownerN = 180;
    const ownerW = 1_500;
    const dead = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW, takeoverWithoutWatchdog: false })!;
    area.setRecord(other({ ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW, timestampMs: 2_000 }));
    world.advanceTo(d.wakeAtMs!);
    const tObs = lastReadAt(d);
    expect(d.engine.hostStatus(OTHER_ID, world.now).deadAtMs).toBe(tObs + dead);
    world.advanceTo(tObs + 8 * N);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('LIVE');
    world.advanceTo(tObs + 8 * ownerN);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    world.advanceTo(tObs + hostDead);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    world.advanceTo(tObs + dead - 1);
    expect(d.engine.hostStatus(OTHER_ID, world.now).state).toBe('FAIL');
    expectDeadOnSchedule(world, d, OTHER_ID, tObs + dead);
  });

  it('a silent host is not DEAD on elapsed time alone while our own reads of the lockspace fail', () => {
    const { world, area, d } = setup();
    area.setRecord(other({ timestampMs: 1_000 }));
    world.advanceTo(d.wakeAtMs!);
    area.setRecord(other({ timestampMs: 1_100 }));
    world.advanceTo(d.wakeAtMs!);
    const tObs = lastReadAt(d);
    d.always({ kind: 'read' }, EIO);
    world.advanceTo(tObs + 3 * hostDead);
    const s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).not.toBe('DEAD');
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);
  });

  it('an owner publishing watchdog 0 goes FAIL but never DEAD, unless takeoverWithoutWatchdog', () => {
    for (const takeoverWithoutWatchdog of [false, true]) {
      const { world, area, d } = setup({ takeoverWithoutWatchdog });
      area.setRecord(other({ ownerWatchdogFireTimeoutMs: 0 }));
      world.advanceTo(d.wakeAtMs!);
      area.setRecord(other({ ownerWatchdogFireTimeoutMs: 0, timestampMs: 3_000 }));
      world.advanceTo(d.wakeAtMs!);
      const tObs = lastReadAt(d);
      world.advanceTo(tObs + 20 * hostDead);
      const s = d.engine.hostStatus(OTHER_ID, world.now);
      if (takeoverWithoutWatchdog) {
        expect(s.state).toBe('DEAD');
        expect(s.deadAtMs).toBe(tObs + hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: N, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: true })!);
        expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(true);
      } else {
        expect(s.state).toBe('FAIL');
        expect(s.deadAtMs).toBeUndefined();
        expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);
      }
    }
  });

  it('a record that fails its check is UNKNOWN with the problem named, never FREE or DEAD', () => {
    const { world, area, d } = setup();
    area.setRecord(other());
    area.corrupt(OTHER_ID);
    world.advanceTo(d.wakeAtMs!);
    world.advance(20 * hostDead);
    const s = d.engine.hostStatus(OTHER_ID, world.now);
    expect(s.state).toBe('UNKNOWN');
    expect(s.problem).toMatch(/checksum/);
    expect(d.engine.ownerGone(OTHER_ID, 3, world.now)).toBe(false);
    expect(d.engine.held).toBe(true);
  });

  it('ownerGone for our own host id: an older generation than ours is gone, ours is not', () => {
    const world = new World();
    const area = world.lockspace(SPEC);
    area.setRecord(heldRecord(SPEC, HOST, ME, { generation: 6, timestampMs: 0 }));
    const d = world.delta(area, { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0 });
    d.send({ type: 'join' });
    world.runUntil(() => d.engine.held, 10 * N);
    expect(d.engine.generation).toBe(7);
    expect(d.engine.ownerGone(HOST, 6, world.now)).toBe(true);
    expect(d.engine.ownerGone(HOST, 7, world.now)).toBe(false);
  });
});

describe('HostTable directly', () => {
  it('keeps t_obs (the completion time) while the value is unchanged and moves it on any change of timestamp, generation or owner', () => {
    const table = new HostTable(timing, false, undefined);
    const rec = (fields: Partial<DeltaRecord>) => ({ ok: true as const, value: { ...other(), hostId: 1, ...fields } });
    table.observe([rec({})], 90, 100);
    table.observe([rec({})], 290, 300);
    expect(table.status(1, 300).sinceMs).toBe(100);
    expect(table.status(1, 300).state).toBe('UNKNOWN');
    table.observe([rec({ timestampMs: 1_001 })], 490, 500);
    expect(table.status(1, 500)).toMatchObject({ state: 'LIVE', sinceMs: 500 });
    table.observe([rec({ timestampMs: 1_001, generation: 9 })], 690, 700);
    expect(table.status(1, 700).sinceMs).toBe(700);
    table.observe([rec({ timestampMs: 1_001, generation: 9, owner: incarnation('someone-else', 9) })], 890, 900);
    expect(table.status(1, 900).sinceMs).toBe(900);
    table.observe([rec({ timestampMs: 1_001, generation: 9, owner: incarnation('someone-else', 9) })], 900 + hostDead - 1, 900 + hostDead - 1);
    expect(table.status(1, 900 + hostDead - 1).state).toBe('FAIL');
    table.observe([rec({ timestampMs: 1_001, generation: 9, owner: incarnation('someone-else', 9) })], 900 + hostDead, 900 + hostDead + 3);
    expect(table.status(1, 900 + hostDead + 3)).toMatchObject({ state: 'DEAD', sinceMs: 900, deadAtMs: 900 + hostDead });
  });
});

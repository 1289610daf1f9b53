import { describe, expect, it } from 'vitest';
import type { DeltaConfig } from '../../../dist/helper/engine/delta-engine.js';
import { deriveTiming, hostDeadAfterMs, TIMING_DEFAULTS } from '../../../dist/helper/engine/timing.js';
import { specBytes, type LockspaceSpec } from '../../../dist/helper/format/index.js';
import { EIO, HOLD, heldRecord, incarnation, TIMEOUT, TIMEOUT_LANDED, World, type DeltaDriver, type IoLogEntry } from './harness.js';

const N = 100;
const W = 300;
const HOST = 3;
const SPEC: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'cluster-a', hostsMax: 8, sectorSize: 512, ioTimeoutMs: N };
const ME = incarnation('host-me', 1);
const OTHER = incarnation('host-other', 2);
const timing = deriveTiming(N, W);
/** The wait after the join write completes before the verify read (SPEC: about 2N). */
const SETTLE = timing.joinSettleMs;

function config(overrides: Partial<Omit<DeltaConfig, 'lockspace'>> = {}): Omit<DeltaConfig, 'lockspace'> {
  return { hostId: HOST, incarnation: ME, watchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false, ownerFeatures: 0, ...overrides };
}

function setup(spec: LockspaceSpec = SPEC, overrides: Partial<Omit<DeltaConfig, 'lockspace'>> = {}) {
  const world = new World(Math.max(1 << 20, 2 * specBytes(spec)));
  const area = world.lockspace(spec);
  const d = world.delta(area, config(overrides));
  return { world, area, d };
}

function ownOffset(spec: LockspaceSpec = SPEC, hostId = HOST): number {
  return (hostId - 1) * spec.sectorSize;
}

/** Joins a free record with immediate I/O; returns the time T of the join write. */
function joinNow(world: World, d: DeltaDriver): number {
  const t = world.now;
  d.send({ type: 'join' });
  world.runUntil(() => d.outcomesOf('joined').length > 0 || d.outcomesOf('join-failed').length > 0, 100 * N);
  expect(d.outcomesOf('joined')).toHaveLength(1);
  return t;
}

function expectWholeAreaRead(e: IoLogEntry, spec: LockspaceSpec = SPEC): void {
  expect(e.kind).toBe('read');
  expect(e.offset).toBe(0);
  expect(e.length).toBe(specBytes(spec));
}

function expectOwnSectorWrite(e: IoLogEntry, spec: LockspaceSpec = SPEC, hostId = HOST): void {
  expect(e.kind).toBe('write');
  expect(e.offset).toBe(ownOffset(spec, hostId));
  expect(e.length).toBe(spec.sectorSize);
}

describe('DeltaEngine join', () => {
  it('the settle wait is at least 2N (a competing join write lands within it)', () => {
    expect(SETTLE).toBeGreaterThanOrEqual(2 * N);
    expect(SETTLE).toBeLessThan(timing.renewWarnMs);
  });

  it('the settle wait uses the configured clock-rate error: 2N + drift + 2 ms before the verify read', () => {
    const { world, d } = setup(SPEC, { timingOptions: { ...TIMING_DEFAULTS, clockRatePpm: 10_000 } });
    // 2 x 10,000 ppm over 2N = 200 ms: 4 ms of drift.
    expect(d.engine.timing.joinSettleMs).toBe(2 * N + 4 + 2);
    const t0 = joinNow(world, d);
    expect(d.ioLog[2]!.submittedAtMs).toBe(t0 + 2 * N + 6);
  });

  it('on a free record: 1 read, 1 write, a settle wait of 2N, 1 verify read, then joined at generation+1, valid until T+8N', () => {
    const { world, area, d } = setup();
    area.setRecord({ ...heldRecord(SPEC, HOST, OTHER, { generation: 41, timestampMs: 0 }) });
    const t0 = world.now;
    d.send({ type: 'join' });
    expect(d.ioLog).toHaveLength(2);
    expectWholeAreaRead(d.ioLog[0]!);
    expectOwnSectorWrite(d.ioLog[1]!);
    expect(d.ioLog[1]!.submittedAtMs).toBe(t0);
    expect(d.wakeAtMs).toBe(t0 + SETTLE);

    world.advanceTo(t0 + SETTLE - 1);
    expect(d.ioLog).toHaveLength(2);
    expect(d.outcomes).toHaveLength(0);
    expect(d.engine.held).toBe(false);

    world.advanceTo(t0 + SETTLE);
    const joined = d.outcomesOf('joined');
    expect(joined).toHaveLength(1);
    // Exactly the verify read came before 'joined'.
    expect(joined[0]!.ioCountBefore).toBe(3);
    expectWholeAreaRead(d.ioLog[2]!);
    expect(d.ioLog[2]!.submittedAtMs).toBe(t0 + SETTLE);
    expect(joined[0]!.atMs).toBe(t0 + SETTLE);
    expect(joined[0]!.outcome.generation).toBe(42);
    expect(joined[0]!.outcome.validUntilMs).toBe(t0 + 8 * N);
    expect(d.engine.generation).toBe(42);
    expect(d.engine.held).toBe(true);

    const onDisk = area.record(HOST);
    expect(onDisk.generation).toBe(42);
    expect(onDisk.owner).toEqual(ME);
    expect(onDisk.ownerIoTimeoutMs).toBe(N);
    expect(onDisk.ownerWatchdogFireTimeoutMs).toBe(W);
    expect(onDisk.timestampMs).toBeGreaterThanOrEqual(t0);
  });

  it('T is when the join write was submitted, and the settle wait runs from its completion', () => {
    const { world, d } = setup();
    const t0 = world.now;
    d.on({ kind: 'read', seq: 0 }, { delayMs: 30 });
    d.on({ kind: 'write', seq: 1 }, { delayMs: 40 });
    d.send({ type: 'join' });
    world.advanceTo(t0 + 30);
    expect(d.ioLog).toHaveLength(2);
    const T = d.ioLog[1]!.submittedAtMs;
    expect(T).toBe(t0 + 30);
    // The write completes at T+40; the verify read comes 2N after that, not before.
    world.advanceTo(T + 40 + SETTLE - 1);
    expect(d.ioLog).toHaveLength(2);
    world.advanceTo(T + 40 + SETTLE);
    expect(d.ioLog[2]!.kind).toBe('read');
    expect(d.ioLog[2]!.submittedAtMs).toBe(T + 40 + SETTLE);
    const joined = d.outcomesOf('joined');
    expect(joined).toHaveLength(1);
    expect(joined[0]!.outcome.validUntilMs).toBe(T + 8 * N);
  });

  it('a join write that ends after T+8N fails the join with fail-deadline', () => {
    const { world, d } = setup();
    d.on({ kind: 'write' }, { delayMs: 8 * N + 1 });
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advance(20 * N);
    expect(d.outcomesOf('joined')).toHaveLength(0);
    expect(d.outcomesOf('join-failed').map((o) => [o.outcome.code, o.atMs])).toEqual([['fail-deadline', t0 + 8 * N + 1]]);
    expect(d.reads()).toHaveLength(1);
  });

  it('a verify read that ends after T+8N (e.g. the helper was paused) never reports joined with a validUntil already past', () => {
    const { world, d } = setup();
    d.on({ seq: 2 }, { delayMs: 7 * N });
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advance(20 * N);
    // The verify read was submitted after the settle wait (about T+2N) and ended past the fail time T+8N.
    expect(d.ioLog[2]!.completedAtMs).toBe(t0 + SETTLE + 7 * N);
    expect(d.ioLog[2]!.completedAtMs).toBeGreaterThan(t0 + 8 * N);
    for (const j of d.outcomesOf('joined')) expect(j.outcome.validUntilMs, 'joined with a validUntil before the time it was reported').toBeGreaterThan(j.atMs);
    expect(d.engine.held).toBe(false);
  });

  it('never writes on the strength of a join read that took longer than N: it reads again first', () => {
    const { world, d } = setup();
    d.on({ seq: 0 }, { delayMs: N + 50 });
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advance(N + 50);
    world.advance(SETTLE + 10 * N);
    expect(d.writes().length).toBeGreaterThan(0);
    const firstWrite = d.writes()[0]!;
    // A read submitted at most N before the write, completed, came between.
    const basis = d.reads().filter((r) => r.completedAtMs !== undefined && r.completedAtMs <= firstWrite.submittedAtMs).at(-1)!;
    expect(basis.seq).toBeGreaterThan(0);
    expect(firstWrite.submittedAtMs - basis.submittedAtMs).toBeLessThanOrEqual(N);
    expect(firstWrite.submittedAtMs).toBeGreaterThanOrEqual(t0 + N + 50);
    expect(d.outcomesOf('joined')).toHaveLength(1);
  });

  it('a join-read failure fails the join with code storage and writes nothing', () => {
    const { world, d } = setup();
    d.on({ seq: 0 }, EIO);
    d.send({ type: 'join' });
    world.advance(100 * N);
    expect(d.outcomesOf('join-failed').map((o) => o.outcome.code)).toEqual(['storage']);
    expect(d.writes()).toHaveLength(0);
    expect(d.engine.held).toBe(false);
  });

  it('a join verify read that finds another incarnation in our record fails with taken-concurrently', () => {
    const { world, area, d } = setup();
    const t0 = world.now;
    d.send({ type: 'join' });
    // A competitor's join write lands within the settle wait.
    world.advanceTo(t0 + N);
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { generation: 1, timestampMs: 77 }));
    world.advance(10 * N);
    expect(d.outcomesOf('joined')).toHaveLength(0);
    expect(d.outcomesOf('join-failed').map((o) => o.outcome.code)).toEqual(['taken-concurrently']);
    expect(d.engine.held).toBe(false);
    expect(d.writes()).toHaveLength(1);
  });
});

describe('DeltaEngine join over a record held by another incarnation', () => {
  const hostDead = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: N, ownerWatchdogFireTimeoutMs: W, takeoverWithoutWatchdog: false })!;

  it('waits until the record has been unchanged for host_dead before writing, then joins at generation+1', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { generation: 5, timestampMs: 4_321 }));
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advanceTo(t0 + hostDead - 1);
    expect(d.writes()).toHaveLength(0);
    // It keeps looking: re-reads about every renewal interval while it waits.
    expect(d.reads().length).toBeGreaterThanOrEqual(Math.floor(hostDead / (2 * N)));
    for (const r of d.reads()) expectWholeAreaRead(r);
    world.advanceTo(t0 + hostDead);
    expect(d.writes()).toHaveLength(1);
    expect(d.writes()[0]!.submittedAtMs).toBe(t0 + hostDead);
    world.advance(SETTLE);
    const joined = d.outcomesOf('joined');
    expect(joined).toHaveLength(1);
    expect(joined[0]!.outcome.generation).toBe(6);
    expect(joined[0]!.outcome.validUntilMs).toBe(t0 + hostDead + 8 * N);
    expect(area.record(HOST).owner).toEqual(ME);
  });

  it('measures host_dead with the larger of our and the owner\'s published N and W', () => {
    const { world, area, d } = setup();
    const ownerN = 150;
    const ownerW = 2_000;
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW }));
    const dead = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: ownerN, ownerWatchdogFireTimeoutMs: ownerW, takeoverWithoutWatchdog: false })!;
    expect(dead).toBeGreaterThan(8 * ownerN + ownerW);
    expect(dead).toBeGreaterThan(hostDead);
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advanceTo(t0 + dead - 1);
    expect(d.writes()).toHaveLength(0);
    world.advanceTo(t0 + dead);
    expect(d.writes()).toHaveLength(1);
  });

  it('counts host_dead from when the first read completed, not when it was submitted', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER));
    d.on({ seq: 0 }, { delayMs: 70 });
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advanceTo(t0 + 70 + hostDead - 1);
    expect(d.writes()).toHaveLength(0);
    world.advanceTo(t0 + 70 + hostDead);
    expect(d.writes()).toHaveLength(1);
  });

  it('fails with in-use, writing nothing, when the record changes while it waits', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { timestampMs: 4_321 }));
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advanceTo(t0 + 5 * N);
    expect(d.outcomes).toHaveLength(0);
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { timestampMs: 4_521 }));
    world.advanceTo(t0 + hostDead + 10 * N);
    const failed = d.outcomesOf('join-failed');
    expect(failed.map((o) => o.outcome.code)).toEqual(['in-use']);
    // Noticed at the next re-read, within a renewal interval.
    expect(failed[0]!.atMs).toBeLessThanOrEqual(t0 + 5 * N + 2 * N);
    expect(d.writes()).toHaveLength(0);
    expect(d.outcomesOf('joined')).toHaveLength(0);
    expect(area.record(HOST).owner).toEqual(OTHER);
    // It stopped: no more reads, no wake-up.
    const reads = d.reads().length;
    world.advance(100 * N);
    expect(d.reads()).toHaveLength(reads);
  });

  it('fails with held-without-watchdog, writing nothing, when the owner publishes watchdog 0', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { ownerWatchdogFireTimeoutMs: 0 }));
    d.send({ type: 'join' });
    world.advance(100 * hostDead);
    expect(d.outcomesOf('join-failed').map((o) => o.outcome.code)).toEqual(['held-without-watchdog']);
    expect(d.ioLog).toHaveLength(1);
    expect(d.writes()).toHaveLength(0);
  });

  it('with takeoverWithoutWatchdog, waits host_dead for an owner without watchdog and then joins', () => {
    const { world, area, d } = setup(SPEC, { takeoverWithoutWatchdog: true });
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { ownerWatchdogFireTimeoutMs: 0, generation: 9 }));
    const dead = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: N, ownerWatchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: true })!;
    const t0 = world.now;
    d.send({ type: 'join' });
    world.advanceTo(t0 + dead - 1);
    expect(d.writes()).toHaveLength(0);
    world.advanceTo(t0 + dead + SETTLE);
    expect(d.writes()[0]!.submittedAtMs).toBe(t0 + dead);
    expect(d.outcomesOf('joined').map((o) => o.outcome.generation)).toEqual([10]);
  });

  it('previousIncarnationGone matching the owner skips the wait', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER, { generation: 5 }));
    const t0 = world.now;
    d.send({ type: 'join', previousIncarnationGone: OTHER });
    expect(d.writes()).toHaveLength(1);
    expect(d.writes()[0]!.submittedAtMs).toBe(t0);
    world.advanceTo(t0 + SETTLE);
    expect(d.outcomesOf('joined').map((o) => o.outcome.generation)).toEqual([6]);
  });

  it('previousIncarnationGone naming another incarnation (same host and boot, other nonce) does not skip the wait', () => {
    const { world, area, d } = setup();
    area.setRecord(heldRecord(SPEC, HOST, OTHER));
    const t0 = world.now;
    d.send({ type: 'join', previousIncarnationGone: { ...OTHER, nonce: 'abcdefabcdefabcd' } });
    world.advanceTo(t0 + hostDead - 1);
    expect(d.writes()).toHaveLength(0);
    world.advanceTo(t0 + hostDead);
    expect(d.writes()).toHaveLength(1);
  });
});

describe('DeltaEngine renewal', () => {
  /** Splits the I/O log after `from` into renewal periods starting at `start`. */
  function periods(d: DeltaDriver, from: number, start: number, count: number): IoLogEntry[][] {
    const out: IoLogEntry[][] = [];
    for (let k = 0; k < count; k++) {
      const lo = start + k * 2 * N;
      out.push(d.ioLog.slice(from).filter((e) => e.submittedAtMs >= lo && e.submittedAtMs < lo + 2 * N));
    }
    return out;
  }

  it.each([
    [8, 512],
    [16, 4096],
    [2000, 512],
    [2000, 4096],
  ] as const)('hostsMax %i, %i-byte sectors: every 2N exactly one read of the whole area and one write of one sector (the first interval writes on the verify read)', (hostsMax, sectorSize) => {
    const spec: LockspaceSpec = { ...SPEC, hostsMax, sectorSize };
    const { world, d } = setup(spec);
    joinNow(world, d);
    const joinedAt = d.outcomesOf('joined')[0]!;
    const from = joinedAt.ioCountBefore;
    world.advance(20 * N);
    const [first, ...steady] = periods(d, from, joinedAt.atMs, 10);
    // The verify read that confirmed the join was just read: the first renewal only writes.
    expect(first).toHaveLength(1);
    expectOwnSectorWrite(first![0]!, spec);
    expect(first![0]!.submittedAtMs).toBe(joinedAt.atMs);
    expect(steady).toHaveLength(9);
    for (const p of steady) {
      expect(p).toHaveLength(2);
      expectWholeAreaRead(p[0]!, spec);
      expectOwnSectorWrite(p[1]!, spec);
    }
    expect(d.bytesRead(from)).toBe(d.reads(from).length * specBytes(spec));
    const renewed = d.outcomesOf('renewed');
    expect(renewed.length).toBeGreaterThanOrEqual(10);
    renewed.forEach((r, k) => {
      expect(r.outcome.renewedAtMs).toBe(joinedAt.atMs + k * 2 * N);
      expect(r.outcome.validUntilMs).toBe(r.outcome.renewedAtMs + 8 * N);
    });
  });

  it('stays one read and one write per 2N whatever else happens: other hosts change, a write fails, reads are slow, callers ask about hosts', () => {
    const { world, area, d } = setup();
    joinNow(world, d);
    const joinedAt = d.outcomesOf('joined')[0]!;
    const from = joinedAt.ioCountBefore;
    const start = joinedAt.atMs;
    for (let k = 0; k < 12; k++) {
      const periodStart = start + k * 2 * N;
      // Other hosts come, renew and go.
      area.setRecord(heldRecord(SPEC, 5, OTHER, { timestampMs: 1_000 + k, generation: 2 }));
      area.setRecord(heldRecord(SPEC, 7, incarnation('host-7', 7), { timestampMs: k % 2 === 0 ? 0 : 500 + k }));
      if (k === 3) d.on({ kind: 'write' }, EIO);
      if (k === 5) d.on({ kind: 'write' }, TIMEOUT);
      if (k === 7) d.on({ kind: 'read' }, { delayMs: N / 2 });
      if (k === 9) d.on({ kind: 'read' }, EIO);
      for (const h of [1, 2, 5, 7]) {
        d.engine.hostStatus(h, world.now);
        d.engine.ownerGone(h, 2, world.now);
      }
      world.advanceTo(periodStart + 2 * N - 1);
    }
    const ps = periods(d, from, start, 12);
    ps.forEach((p, k) => {
      const reads = p.filter((e) => e.kind === 'read');
      const writes = p.filter((e) => e.kind === 'write');
      // The first interval writes on the strength of the verify read that confirmed the join.
      if (k === 0) {
        expect(reads, 'period 0').toHaveLength(0);
        expect(writes.map((w) => w.submittedAtMs), 'period 0').toEqual([start]);
        return;
      }
      expect(reads, `period ${k}`).toHaveLength(1);
      expect(reads[0]!.submittedAtMs, `period ${k}`).toBe(start + k * 2 * N);
      expectWholeAreaRead(reads[0]!);
      // A failed read leaves nothing to write; otherwise exactly one write of our sector.
      expect(writes, `period ${k}`).toHaveLength(k === 9 ? 0 : 1);
      for (const w of writes) expectOwnSectorWrite(w);
    });
    expect(d.outcomesOf('renew-error')).toHaveLength(3);
    expect(d.outcomesOf('lost')).toHaveLength(0);
    expect(d.engine.held).toBe(true);
  });

  it('from the join read to the second renewal: 3 area reads (join, verify, second renewal), not 4', () => {
    const { world, d } = setup();
    const t0 = joinNow(world, d);
    const joinedAt = d.outcomesOf('joined')[0]!.atMs;
    world.advanceTo(joinedAt + 2 * N);
    expect(d.outcomesOf('renewed').map((r) => r.outcome.renewedAtMs)).toEqual([joinedAt, joinedAt + 2 * N]);
    expect(d.ioLog.map((e) => [e.kind, e.submittedAtMs - t0])).toEqual([
      ['read', 0],
      ['write', 0],
      ['read', joinedAt - t0],
      ['write', joinedAt - t0],
      ['read', joinedAt - t0 + 2 * N],
      ['write', joinedAt - t0 + 2 * N],
    ]);
  });

  it('a verify read that took longer than N is not fresh enough to write on: the first renewal reads first', () => {
    const { world, d } = setup();
    d.send({ type: 'join' });
    // The verify read (the engine's third I/O) is slow.
    d.on({ seq: 2 }, { delayMs: N + 1 });
    world.runUntil(() => d.outcomesOf('joined').length > 0, 100 * N);
    const joinedAt = d.outcomesOf('joined')[0]!;
    expect(d.ioLog[2]!.completedAtMs! - d.ioLog[2]!.submittedAtMs).toBe(N + 1);
    expect(d.ioLog.slice(joinedAt.ioCountBefore).map((e) => e.kind)).toEqual(['read', 'write']);
    expect(d.ioLog[3]!.submittedAtMs).toBe(joinedAt.atMs);
  });

  it('T of a renewal is when its write was submitted, not when it completed', () => {
    const { world, d } = setup();
    joinNow(world, d);
    const next = d.wakeAtMs!;
    d.on({ kind: 'read' }, { delayMs: 10 });
    d.on({ kind: 'write' }, { delayMs: 60 });
    world.advanceTo(next + 70);
    const last = d.outcomesOf('renewed').at(-1)!;
    expect(last.atMs).toBe(next + 70);
    expect(last.outcome.renewedAtMs).toBe(next + 10);
    expect(last.outcome.validUntilMs).toBe(next + 10 + 8 * N);
    expect(last.outcome.latencyMs).toBe(70);
    expect(d.engine.validUntilMs).toBe(next + 10 + 8 * N);
  });

  it('a renewal write that timed out (landed or not) is still recognised as ours at the next renewal', () => {
    const { world, area, d } = setup();
    joinNow(world, d);
    d.on({ kind: 'write' }, TIMEOUT_LANDED);
    world.advance(2 * N);
    d.on({ kind: 'write' }, TIMEOUT);
    world.advance(2 * N);
    world.advance(6 * N);
    expect(d.outcomesOf('lost')).toHaveLength(0);
    expect(d.engine.held).toBe(true);
    expect(d.outcomesOf('renewed').length).toBeGreaterThanOrEqual(3);
    expect(area.record(HOST).owner).toEqual(ME);
  });
});

describe('DeltaEngine own-record check', () => {
  it.each([
    ['another host', (gen: number, ts: number) => heldRecord(SPEC, HOST, OTHER, { generation: gen, timestampMs: ts })],
    ['another incarnation of our host (other nonce)', (gen: number, ts: number) => heldRecord(SPEC, HOST, { ...ME, nonce: '0123456789abcdef' }, { generation: gen, timestampMs: ts, ownerWatchdogFireTimeoutMs: W })],
  ])('if %s overwrites our record, the next renewal reports lost record-taken and does not write', (_label, make) => {
    const { world, area, d } = setup();
    joinNow(world, d);
    world.advance(N);
    const ours = area.record(HOST);
    // Same generation and timestamp as ours: only the owner differs.
    area.setRecord(make(ours.generation, ours.timestampMs));
    const writesBefore = d.writes().length;
    const next = d.wakeAtMs!;
    world.advanceTo(next);
    const lost = d.outcomesOf('lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.outcome.code).toBe('record-taken');
    expect(lost[0]!.atMs).toBe(next);
    expect(d.writes()).toHaveLength(writesBefore);
    expect(d.engine.held).toBe(false);
    expect(d.engine.generation).toBeUndefined();
    // Nothing more, ever.
    const ios = d.ioLog.length;
    world.advance(100 * N);
    expect(d.ioLog).toHaveLength(ios);
    expect(d.outcomesOf('renewed').every((r) => r.atMs < next)).toBe(true);
  });
});

describe('DeltaEngine deadlines', () => {
  it.each([
    ['every I/O fails', (d: DeltaDriver) => d.always({}, EIO)],
    ['every write times out', (d: DeltaDriver) => d.always({ kind: 'write' }, TIMEOUT)],
    ['the storage hangs', (d: DeltaDriver) => d.always({}, HOLD)],
  ])('without successful renewals (%s): renew-warning at T+6N, lost fail-deadline at T+8N', (_label, breakIt) => {
    const { world, d } = setup();
    joinNow(world, d);
    world.advance(2 * N);
    const renewed = d.outcomesOf('renewed');
    const T = renewed.at(-1)!.outcome.renewedAtMs;
    expect(T).toBe(world.now);
    breakIt(d);
    world.advanceTo(T + 6 * N - 1);
    expect(d.outcomesOf('renew-warning')).toHaveLength(0);
    expect(d.engine.held).toBe(true);
    expect(d.engine.validUntilMs).toBe(T + 8 * N);
    world.advanceTo(T + 6 * N);
    const warnings = d.outcomesOf('renew-warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.atMs).toBe(T + 6 * N);
    expect(warnings[0]!.outcome.lastRenewedAtMs).toBe(T);
    world.advanceTo(T + 8 * N - 1);
    expect(d.outcomesOf('lost')).toHaveLength(0);
    expect(d.engine.held).toBe(true);
    world.advanceTo(T + 8 * N);
    const lost = d.outcomesOf('lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.outcome.code).toBe('fail-deadline');
    expect(lost[0]!.atMs).toBe(T + 8 * N);
    expect(d.engine.held).toBe(false);
    expect(d.outcomesOf('renewed')).toHaveLength(renewed.length);
    expect(d.outcomesOf('renew-warning')).toHaveLength(1);
    const ios = d.ioLog.length;
    world.advance(100 * N);
    expect(d.ioLog).toHaveLength(ios);
  });

  it('one successful renewal after a warning moves both deadlines and re-arms the warning', () => {
    const { world, d } = setup();
    joinNow(world, d);
    const T0 = d.outcomesOf('renewed').at(-1)!.outcome.renewedAtMs;
    d.always({}, EIO);
    world.advanceTo(T0 + 6 * N - 1);
    // The renewal due at T0+6N is slow but succeeds, after the warning.
    d.clearRules();
    d.on({ kind: 'read' }, { delayMs: N / 2 });
    world.advanceTo(T0 + 6 * N);
    expect(d.outcomesOf('renew-warning').map((w) => [w.atMs, w.outcome.lastRenewedAtMs])).toEqual([[T0 + 6 * N, T0]]);
    world.advanceTo(T0 + 6 * N + N / 2);
    const T1 = d.outcomesOf('renewed').at(-1)!.outcome.renewedAtMs;
    expect(T1).toBe(T0 + 6 * N + N / 2);
    expect(d.engine.validUntilMs).toBe(T1 + 8 * N);
    d.always({}, EIO);
    world.advanceTo(T1 + 8 * N - 1);
    expect(d.outcomesOf('lost')).toHaveLength(0);
    expect(d.outcomesOf('renew-warning').map((w) => [w.atMs, w.outcome.lastRenewedAtMs])).toEqual([
      [T0 + 6 * N, T0],
      [T1 + 6 * N, T1],
    ]);
    world.advanceTo(T1 + 8 * N);
    expect(d.outcomesOf('lost').map((l) => [l.outcome.code, l.atMs])).toEqual([['fail-deadline', T1 + 8 * N]]);
  });
});

describe('DeltaEngine leave', () => {
  it('writes the record free (timestamp 0) and reports a clean leave', () => {
    const { world, area, d } = setup();
    joinNow(world, d);
    const generation = d.engine.generation!;
    d.send({ type: 'leave' });
    expect(d.outcomesOf('left').map((o) => o.outcome.clean)).toEqual([true]);
    const record = area.record(HOST);
    expect(record.timestampMs).toBe(0);
    expect(record.generation).toBe(generation);
    const ios = d.ioLog.length;
    world.advance(100 * N);
    expect(d.ioLog).toHaveLength(ios);
  });
});


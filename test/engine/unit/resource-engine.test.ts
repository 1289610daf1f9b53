import { describe, expect, it } from 'vitest';
import { ballotOwner } from '../../../dist/helper/engine/ballot.js';
import type { LeaseMode, ResourceConfig } from '../../../dist/helper/engine/resource-engine.js';
import { decodeHostBlock, emptyHostBlock, identityOf, specBytes, type HostBlock, type ResourceSpec } from '../../../dist/helper/format/index.js';
import { EIO, HOLD, OK, StubLiveness, TIMEOUT, TIMEOUT_LANDED, World, type Completion, type IoLogEntry, type ResourceArea, type ResourceDriver } from './harness.js';

const RETRY_MS = 50;
const GEN = 4;

function spec(hostsMax = 16, sectorSize: 512 | 4096 = 512): ResourceSpec {
  return { kind: 'resource', lockspaceName: 'cluster-r', resourceName: 'vm-disk-1', hostsMax, sectorSize };
}

function setup(s: ResourceSpec = spec(), hostId = 7, overrides: Partial<Omit<ResourceConfig, 'resource' | 'hostId'>> = {}) {
  const world = new World(Math.max(1 << 20, 2 * specBytes(s)));
  const area = world.resource(s);
  const live = new StubLiveness();
  const r = world.resourceEngine(area, { hostId, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3, ...overrides }, live);
  return { world, area, live, r, hostId };
}

function acquire(r: ResourceDriver, mode: LeaseMode = 'exclusive', generation = GEN, ballotFloor = 0): void {
  r.send({ type: 'acquire', mode, generation, ballotFloor });
}

/** The block a write of ours carried. */
function blockOf(area: ResourceArea, e: IoLogEntry, hostId: number): HostBlock {
  return decodeHostBlock(e.data!, { ...identityOf(area.spec), kind: 'hostBlock', blockHostId: hostId }, { area: 'test', block: `host ${hostId}` });
}

/** Every write went to our own block's sector or to the leader (sector 0), one sector long. */
function expectOnlyOwnWrites(r: ResourceDriver, hostId: number): void {
  const ss = r.area.spec.sectorSize;
  for (const w of r.writes()) {
    expect([0, hostId * ss]).toContain(w.offset);
    expect(w.length).toBe(ss);
  }
}

function p1Ballots(r: ResourceDriver): number[] {
  // The first write of each ballot is our block with bal below mbal (phase 1).
  return r.writes()
    .filter((w) => w.offset !== 0)
    .map((w) => blockOf(r.area, w, r.engine.config.hostId))
    .filter((b) => b.bal !== b.mbal)
    .map((b) => b.mbal);
}

describe('ResourceEngine uncontended exclusive acquire', () => {
  it.each([
    [16, 512, 1],
    [16, 4096, 7],
    [16, 512, 16],
    [2000, 512, 1],
    [2000, 4096, 1999],
    [2000, 4096, 2000],
  ] as const)('hostsMax %i, %i-byte sectors, host %i: exactly 3 whole-area reads and 3 one-sector writes (own block twice, leader once)', (hostsMax, sectorSize, hostId) => {
    const s = spec(hostsMax, sectorSize);
    const { area, r } = setup(s, hostId);
    acquire(r);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 1, mode: 'exclusive' }]);
    expect(r.ioLog.map((e) => e.kind)).toEqual(['read', 'write', 'read', 'write', 'read', 'write']);
    for (const e of r.reads()) {
      expect(e.offset).toBe(0);
      expect(e.length).toBe(specBytes(s));
    }
    expect(r.bytesRead()).toBe(3 * specBytes(s));
    const [w1, w2, w3] = r.writes();
    expect(w1!.offset).toBe(hostId * sectorSize);
    expect(w2!.offset).toBe(hostId * sectorSize);
    expect(w3!.offset).toBe(0);
    for (const w of r.writes()) expect(w.length).toBe(sectorSize);

    // Phase 1 writes a ballot; phase 2 writes it accepted with our value; the leader names us.
    const p1 = blockOf(area, w1!, hostId);
    const p2 = blockOf(area, w2!, hostId);
    expect(p1.mbal).toBeGreaterThan(0);
    expect(ballotOwner(p1.mbal, hostsMax)).toBe(hostId);
    expect(p1.bal).toBe(0);
    expect(p1.inp.lver).toBe(1);
    expect(p2).toMatchObject({ mbal: p1.mbal, bal: p1.mbal, inp: { hostId, generation: GEN, lver: 1 } });
    expect(area.leader()).toMatchObject({ lver: 1, ownerHostId: hostId, ownerGeneration: GEN, writerHostId: hostId, writerGeneration: GEN });
    expect(r.engine.holding).toEqual({ lver: 1, mode: 'exclusive' });
    expect(r.engine.state).toBe('held');
  });

  it('writes nothing but its own block and the leader: every other byte of the area is unchanged', () => {
    const s = spec(16, 512);
    const { area, r, hostId } = setup(s, 7);
    // Other hosts' blocks carry old ballots.
    area.setBlock({ ...emptyHostBlock(3), mbal: 35, bal: 35, inp: { hostId: 3, generation: 2, lver: 0, timestampMs: 5 } });
    area.setBlock({ ...emptyHostBlock(8), mbal: 40 });
    const before = area.bytes.slice();
    acquire(r);
    r.send({ type: 'release' });
    acquire(r, 'shared');
    r.send({ type: 'release' });
    expect(r.outcomesOf('acquired')).toHaveLength(2);
    expect(r.outcomesOf('released')).toHaveLength(2);
    expectOnlyOwnWrites(r, hostId);
    const after = area.bytes;
    for (let sector = 0; sector <= s.hostsMax; sector++) {
      if (sector === 0 || sector === hostId) continue;
      expect(Buffer.compare(after.subarray(sector * 512, sector * 512 + 512), before.subarray(sector * 512, sector * 512 + 512)), `sector ${sector}`).toBe(0);
    }
  });
});

describe('ResourceEngine release', () => {
  it.each([512, 4096] as const)('%i-byte sectors: 1 read of one sector, the leader written free at the same lver, then our block marked released', (sectorSize) => {
    const { area, r } = setup(spec(16, sectorSize), 7);
    acquire(r);
    const accepted = area.block(7);
    expect(accepted.released).toBe(false);
    const from = r.ioLog.length;
    r.send({ type: 'release' });
    const ios = r.ioLog.slice(from);
    expect(ios.map((e) => [e.kind, e.offset, e.length])).toEqual([
      ['read', 0, sectorSize],
      ['write', 0, sectorSize],
      ['write', 7 * sectorSize, sectorSize],
    ]);
    expect(r.outcomes.at(-1)!.outcome).toMatchObject({ type: 'released', lver: 1, note: undefined });
    expect(area.leader()).toMatchObject({ lver: 1, ownerHostId: 0, ownerGeneration: 0 });
    // The mark keeps the ballot state (promise and accepted value) and says it is released.
    expect(area.block(7)).toEqual({ ...accepted, released: true });
    expect(r.engine.holding).toBeUndefined();
    expect(r.engine.state).toBe('free');
    // The next ballot write clears the mark.
    acquire(r);
    const nextP1 = blockOf(area, r.writes(from + ios.length)[0]!, 7);
    expect(nextP1.released).toBe(false);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquired', lver: 2 });
  });

  it('a failed mark write still releases (the leader is free), with a note', () => {
    const { area, r } = setup();
    acquire(r);
    r.on({ kind: 'write', offset: 7 * 512 }, EIO);
    r.send({ type: 'release' });
    expect(r.lastOutcome()).toMatchObject({ type: 'released', lver: 1, note: expect.stringMatching(/released mark was not written/) });
    expect(area.leader()).toMatchObject({ lver: 1, ownerHostId: 0 });
    expect(area.block(7).released).toBe(false);
    expect(r.engine.state).toBe('free');
  });

  it('does not write the leader when it has moved past our lver', () => {
    const { area, r } = setup();
    acquire(r);
    area.setLeader({ ...area.leader(), lver: 2, ownerHostId: 3, ownerGeneration: 9, writerHostId: 3 });
    const writes = r.writes().length;
    r.send({ type: 'release' });
    expect(r.writes()).toHaveLength(writes);
    expect(r.lastOutcome()).toMatchObject({ type: 'released', lver: 1 });
    expect(area.leader()).toMatchObject({ lver: 2, ownerHostId: 3 });
  });

  it('a failed release write keeps the lease held', () => {
    const { area, r } = setup();
    acquire(r);
    r.on({ kind: 'write' }, EIO);
    r.send({ type: 'release' });
    expect(r.lastOutcome()?.type).toBe('release-failed');
    expect(r.engine.holding).toEqual({ lver: 1, mode: 'exclusive' });
    r.send({ type: 'release' });
    expect(r.lastOutcome()?.type).toBe('released');
    expect(area.leader().ownerHostId).toBe(0);
  });
});

describe('ResourceEngine ballot numbers', () => {
  it('strictly increase across acquires, belong to the host, and each is persisted with the ballot\'s first write', () => {
    const { r, hostId } = setup(spec(16), 7);
    for (let i = 0; i < 6; i++) {
      acquire(r);
      r.send({ type: 'release' });
    }
    const ballots = p1Ballots(r);
    expect(ballots).toHaveLength(6);
    for (let i = 1; i < ballots.length; i++) expect(ballots[i]!).toBeGreaterThan(ballots[i - 1]!);
    for (const b of ballots) expect(ballotOwner(b, 16)).toBe(hostId);
    const persisted = r.persistedFloors();
    expect(persisted.map((p) => p.floor)).toEqual(ballots);
    for (const p of persisted) {
      // The step that asks to persist the floor is the one that issues the phase-1 write carrying it.
      expect(p.ios).toHaveLength(1);
      expect(p.ios[0]!.kind).toBe('write');
      expect(p.ios[0]!.offset).toBe(hostId * 512);
      expect(blockOf(r.area, p.ios[0]!, hostId).mbal).toBe(p.floor);
    }
  });

  it('exceed the persisted ballotFloor passed in the acquire event, even when the disk shows none', () => {
    const { area, r, hostId } = setup();
    const floor = 1_000_003;
    acquire(r, 'exclusive', GEN, floor);
    const [b] = p1Ballots(r);
    expect(b).toBeGreaterThan(floor);
    expect(ballotOwner(b!, 16)).toBe(hostId);
    expect(area.block(hostId).mbal).toBe(b);
  });

  it('exceed every ballot seen in the area', () => {
    const { area, r, hostId } = setup();
    area.setBlock({ ...emptyHostBlock(2), mbal: 5_000_002, bal: 0, inp: { hostId: 0, generation: 0, lver: 0, timestampMs: 0 } });
    acquire(r);
    const [b] = p1Ballots(r);
    expect(b).toBeGreaterThan(5_000_002);
    expect(ballotOwner(b!, 16)).toBe(hostId);
  });

  it('a restarted engine given the persisted floor never reuses a ballot whose write did not land', () => {
    const s = spec();
    const world = new World();
    const area = world.resource(s);
    const live = new StubLiveness();
    const first = world.resourceEngine(area, { hostId: 7, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live, 'before restart');
    first.on({ kind: 'write' }, TIMEOUT);
    acquire(first);
    expect(first.lastOutcome()).toMatchObject({ type: 'acquire-failed', resolving: false });
    const persisted = first.persistedFloors().at(-1)!.floor;
    expect(area.block(7).mbal).toBe(0);
    const second = world.resourceEngine(area, { hostId: 7, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live, 'after restart');
    acquire(second, 'exclusive', GEN + 1, persisted);
    expect(second.lastOutcome()).toMatchObject({ type: 'acquired', lver: 1 });
    expect(p1Ballots(second)[0]!).toBeGreaterThan(persisted);
  });

  it('a lower ballotFloor in a later acquire does not lower the engine\'s own floor', () => {
    const { r } = setup();
    acquire(r, 'exclusive', GEN, 900_000);
    r.send({ type: 'release' });
    acquire(r, 'exclusive', GEN, 0);
    const [b1, b2] = p1Ballots(r);
    expect(b1).toBeGreaterThan(900_000);
    expect(b2).toBeGreaterThan(b1!);
  });
});

describe('ResourceEngine busy and takeover', () => {
  it('is busy, writing nothing, when the leader names a live owner; reports holder and liveness status', () => {
    const { area, live, r } = setup();
    area.setLeader({ lver: 4, ownerHostId: 9, ownerGeneration: 3, timestampMs: 77, writerHostId: 9, writerGeneration: 3, flags: 0 });
    live.states.set(9, 'FAIL');
    acquire(r);
    expect(r.ioLog.map((e) => e.kind)).toEqual(['read']);
    const busy = r.outcomesOf('busy');
    expect(busy).toHaveLength(1);
    expect(busy[0]!.outcome.holder).toMatchObject({ hostId: 9, generation: 3, mode: 'exclusive', status: { hostId: 9, state: 'FAIL' } });
    expect(live.asked).toContainEqual(expect.objectContaining({ hostId: 9, generation: 3 }));
    expect(r.engine.state).toBe('free');
    expect(r.engine.holding).toBeUndefined();
    expect(r.wakeAtMs).toBeUndefined();
    expect(area.leader()).toMatchObject({ lver: 4, ownerHostId: 9 });
  });

  it('takes over when the owner is gone (ownerGone true) at lver+1', () => {
    const { area, live, r, hostId } = setup();
    area.setLeader({ lver: 4, ownerHostId: 9, ownerGeneration: 3, timestampMs: 77, writerHostId: 9, writerGeneration: 3, flags: 0 });
    live.setGone(9, 3);
    acquire(r);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 5, mode: 'exclusive' }]);
    expect(area.leader()).toMatchObject({ lver: 5, ownerHostId: hostId, ownerGeneration: GEN });
    expect(r.ioLog).toHaveLength(6);
  });

  it('a live host\'s accepted, uncommitted value at the lver: busy at once without a ballot (that host is deciding it)', () => {
    const { world, area, live, r } = setup();
    // Host 2 accepted its own value for lver 1 (phase 2) and has not committed yet.
    area.setBlock({ ...emptyHostBlock(2), mbal: 18, bal: 18, inp: { hostId: 2, generation: 9, lver: 1, timestampMs: 3 }, writerGeneration: 9 });
    // A lower-balloted accepted value loses to it.
    area.setBlock({ ...emptyHostBlock(3), mbal: 3, bal: 3, inp: { hostId: 3, generation: 1, lver: 1, timestampMs: 1 }, writerGeneration: 1 });
    acquire(r);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'busy', holder: expect.objectContaining({ hostId: 2, generation: 9, mode: 'exclusive' }) })]);
    // No ballot: a higher ballot number of ours would only make host 2 start over.
    expect(r.ioLog.map((e) => e.kind)).toEqual(['read']);
    expect(area.leader()).toMatchObject({ lver: 0, ownerHostId: 0 });
    expect(r.engine.state).toBe('free');
    // Once host 2's generation is gone, a ballot adopts its value (the highest-balloted) for lver 1,
    // commits nothing for it, and the next version is ours.
    live.setGone(2, 9);
    acquire(r);
    world.advance(20 * RETRY_MS);
    expect(r.outcomesOf('acquired').map((o) => o.outcome.lver)).toEqual([2]);
    const p2 = r.writes().filter((w) => w.offset !== 0).map((w) => blockOf(area, w, 7)).find((b) => b.bal === b.mbal && b.bal > 0)!;
    expect(p2.inp).toMatchObject({ hostId: 2, generation: 9, lver: 1 });
    expect(area.leader()).toMatchObject({ lver: 2, ownerHostId: 7, ownerGeneration: GEN });
  });

  it('a gone owner of another generation does not free the lease', () => {
    const { area, live, r } = setup();
    area.setLeader({ lver: 4, ownerHostId: 9, ownerGeneration: 3, timestampMs: 77, writerHostId: 9, writerGeneration: 3, flags: 0 });
    live.setGone(9, 2);
    acquire(r);
    expect(r.lastOutcome()?.type).toBe('busy');
    expect(r.writes()).toHaveLength(0);
  });
});

describe('ResourceEngine shared mode', () => {
  function three() {
    const s = spec();
    const world = new World();
    const area = world.resource(s);
    const live = new StubLiveness();
    const make = (hostId: number) => world.resourceEngine(area, { hostId, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live);
    return { world, area, live, a: make(1), b: make(2), x: make(3) };
  }

  it('two hosts both acquire shared; an exclusive acquirer is busy while a live shared holder exists and succeeds after both release', () => {
    const { area, a, b, x } = three();
    acquire(a, 'shared', 11);
    acquire(b, 'shared', 12);
    expect(a.lastOutcome()).toMatchObject({ type: 'acquired', mode: 'shared' });
    expect(b.lastOutcome()).toMatchObject({ type: 'acquired', mode: 'shared' });
    expect(a.engine.holding?.mode).toBe('shared');
    expect(b.engine.holding?.mode).toBe('shared');
    // The leader is written free after the shared mark: the exclusive claim of each is marked released.
    expect(area.block(1)).toMatchObject({ shared: true, sharedGeneration: 11, released: true });
    expect(area.block(2)).toMatchObject({ shared: true, sharedGeneration: 12, released: true });
    expect(area.leader().ownerHostId).toBe(0);

    acquire(x, 'exclusive', 13);
    const busy1 = x.lastOutcome();
    expect(busy1).toMatchObject({ type: 'busy', holder: { mode: 'shared' } });
    expect(x.writes()).toHaveLength(0);

    a.send({ type: 'release' });
    expect(a.lastOutcome()?.type).toBe('released');
    expect(area.block(1).shared).toBe(false);
    acquire(x, 'exclusive', 13);
    expect(x.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 2, generation: 12, mode: 'shared' } });
    expect(x.writes()).toHaveLength(0);

    b.send({ type: 'release' });
    acquire(x, 'exclusive', 13);
    expect(x.lastOutcome()).toMatchObject({ type: 'acquired', mode: 'exclusive' });
    expect(area.leader()).toMatchObject({ ownerHostId: 3, ownerGeneration: 13 });
    expectOnlyOwnWrites(a, 1);
    expectOnlyOwnWrites(b, 2);
    expectOnlyOwnWrites(x, 3);
  });

  it('a shared holder that is gone does not block an exclusive acquirer', () => {
    const { live, a, x } = three();
    acquire(a, 'shared', 11);
    live.setGone(1, 11);
    acquire(x, 'exclusive', 13);
    expect(x.lastOutcome()).toMatchObject({ type: 'acquired', mode: 'exclusive' });
  });

  it('a shared acquirer is busy while an exclusive owner is live', () => {
    const { a, b } = three();
    acquire(a, 'exclusive', 11);
    acquire(b, 'shared', 12);
    expect(b.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 1, generation: 11, mode: 'exclusive' } });
  });

  it('shared release writes only our own block', () => {
    const { a } = three();
    acquire(a, 'shared', 11);
    const from = a.ioLog.length;
    a.send({ type: 'release' });
    expect(a.ioLog.slice(from).map((e) => [e.kind, e.offset])).toEqual([['write', 512]]);
  });
});

describe('ResourceEngine contention', () => {
  it('two hosts acquiring at once with interleaved I/O: exactly one gets it, the other ends busy', () => {
    const s = spec();
    const world = new World();
    const area = world.resource(s);
    const live = new StubLiveness();
    const a = world.resourceEngine(area, { hostId: 1, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live);
    const b = world.resourceEngine(area, { hostId: 2, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live);
    a.always({}, { delayMs: 10 });
    b.always({}, { delayMs: 10 });
    acquire(a, 'exclusive', 21);
    acquire(b, 'exclusive', 22);
    world.advance(2_000);
    const acquired = [a, b].filter((d) => d.outcomesOf('acquired').length > 0);
    expect(acquired).toHaveLength(1);
    const loser = acquired[0] === a ? b : a;
    expect(loser.lastOutcome()?.type).toBe('busy');
    expect(area.leader().ownerHostId).toBe(acquired[0]!.engine.config.hostId);
    expect(a.overlappingWrites).toHaveLength(0);
    expect(b.overlappingWrites).toHaveLength(0);
  });
});

describe('ResourceEngine I/O failures', () => {
  const BEFORE_PHASE_2: [string, number, Completion][] = [
    ['the first read fails', 0, EIO],
    ['the first read times out', 0, TIMEOUT],
    ['the phase-1 write fails', 1, EIO],
    ['the phase-1 write times out (and lands)', 1, TIMEOUT_LANDED],
    ['the phase-1 read fails', 2, EIO],
  ];

  it.each(BEFORE_PHASE_2)('before phase 2 (%s): acquire-failed, resolving false, the engine free and usable', (_label, seq, completion) => {
    const { world, area, r } = setup();
    r.on({ seq }, completion);
    acquire(r);
    expect(r.ioLog).toHaveLength(seq + 1);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'acquire-failed', code: 'storage', resolving: false })]);
    expect(r.engine.state).toBe('free');
    expect(r.engine.holding).toBeUndefined();
    expect(r.wakeAtMs).toBeUndefined();
    world.advance(100 * RETRY_MS);
    expect(r.ioLog).toHaveLength(seq + 1);
    expect(area.leader().ownerHostId).toBe(0);
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquired', lver: 1 });
  });

  const AFTER_PHASE_2: [string, number, Completion][] = [
    ['the phase-2 write times out (not landed)', 3, TIMEOUT],
    ['the phase-2 write times out (landed)', 3, TIMEOUT_LANDED],
    ['the phase-2 read fails', 4, EIO],
    ['the commit write times out (not landed)', 5, TIMEOUT],
    ['the commit write times out (landed)', 5, TIMEOUT_LANDED],
    ['the commit write fails (landed)', 5, { ok: false, reason: 'error', land: true }],
  ];

  it.each(AFTER_PHASE_2)('after phase 2 began (%s): resolving true, a retry after retryDelayMs, then resolved with the leader free', (_label, seq, completion) => {
    const { world, area, r, hostId } = setup();
    r.on({ seq }, completion);
    acquire(r);
    const failedAt = world.now;
    expect(r.ioLog).toHaveLength(seq + 1);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'acquire-failed', code: 'storage', resolving: true })]);
    expect(r.outcomesOf('acquired')).toHaveLength(0);
    expect(r.engine.state).toBe('resolving');
    expect(r.engine.holding).toBeUndefined();
    expect(r.wakeAtMs).toBe(failedAt + RETRY_MS);
    // A new acquire is refused while the old lver is unresolved.
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquire-failed', code: 'not-free', resolving: true });
    world.advanceTo(failedAt + RETRY_MS - 1);
    expect(r.ioLog).toHaveLength(seq + 1);
    world.advanceTo(failedAt + RETRY_MS);
    expect(r.ioLog.length).toBeGreaterThan(seq + 1);
    expect(r.ioLog[seq + 1]!.submittedAtMs).toBe(failedAt + RETRY_MS);
    world.advance(100 * RETRY_MS);
    const resolved = r.outcomesOf('resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.outcome).toMatchObject({ lver: 1, wasOurs: true });
    expect(area.leader()).toMatchObject({ lver: 1, ownerHostId: 0, ownerGeneration: 0 });
    // Written free and marked released in our block, like a release.
    expect(area.block(hostId)).toMatchObject({ released: true, inp: { hostId, generation: GEN, lver: 1 } });
    expect(r.engine.state).toBe('free');
    expect(r.wakeAtMs).toBeUndefined();
    expectOnlyOwnWrites(r, hostId);
    // Later ballots still increase, and the next lease version follows the resolved one.
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquired', lver: 2 });
    const ballots = p1Ballots(r);
    for (let i = 1; i < ballots.length; i++) expect(ballots[i]!).toBeGreaterThan(ballots[i - 1]!);
  });

  it('resolving never forgets an accepted value: its phase-1 write repeats the landed phase-2 bal and value', () => {
    const { world, area, r, hostId } = setup();
    r.on({ seq: 5 }, TIMEOUT);
    acquire(r);
    const p2 = blockOf(area, r.ioLog[3]!, hostId);
    expect(area.block(hostId)).toMatchObject({ bal: p2.bal, inp: p2.inp });
    world.advance(RETRY_MS);
    const resolveP1 = blockOf(area, r.writes().find((w) => w.seq > 5)!, hostId);
    expect(resolveP1.mbal).toBeGreaterThan(p2.mbal);
    expect(resolveP1.bal).toBe(p2.bal);
    expect(resolveP1.inp).toEqual(p2.inp);
    expect(area.block(hostId).bal).toBeGreaterThanOrEqual(p2.bal);
  });

  it('keeps retrying, every retryDelayMs, while the storage keeps failing after phase 2', () => {
    const { world, area, r } = setup();
    r.on({ seq: 5 }, TIMEOUT);
    acquire(r);
    r.always({}, EIO);
    const failedAt = world.now;
    world.advanceTo(failedAt + 10 * RETRY_MS);
    const retries = r.ioLog.slice(6).map((e) => e.submittedAtMs);
    expect(retries).toEqual(Array.from({ length: 10 }, (_, i) => failedAt + (i + 1) * RETRY_MS));
    expect(r.engine.state).toBe('resolving');
    r.clearRules();
    world.advance(RETRY_MS);
    expect(r.lastOutcome()).toMatchObject({ type: 'resolved', lver: 1 });
    expect(area.leader().ownerHostId).toBe(0);
  });

  /** Host 1's commit of lver 1 times out unlanded; host 2 then meets host 1's accepted value. */
  function commitLost(retryA: number, retryB: number) {
    const world = new World();
    const area = world.resource(spec());
    const liveA = new StubLiveness();
    const liveB = new StubLiveness();
    const a = world.resourceEngine(area, { hostId: 1, retryDelayMs: retryA, ballotAttemptsMax: 3 }, liveA);
    const b = world.resourceEngine(area, { hostId: 2, retryDelayMs: retryB, ballotAttemptsMax: 3 }, liveB);
    a.on({ seq: 5 }, TIMEOUT);
    acquire(a, 'exclusive', 31);
    expect(a.engine.state).toBe('resolving');
    return { world, area, liveB, a, b };
  }

  it('while host 1 resolves and is live, another host meeting its accepted value is busy and does not take the lease', () => {
    const { world, area, a, b } = commitLost(RETRY_MS, RETRY_MS);
    acquire(b, 'exclusive', 32);
    expect(b.outcomesOf('acquired')).toHaveLength(0);
    expect(b.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 1, generation: 31 } });
    world.advance(10 * RETRY_MS);
    expect(a.lastOutcome()).toMatchObject({ type: 'resolved', lver: 1, wasOurs: true });
    expect(area.leader()).toMatchObject({ lver: 1, ownerHostId: 0 });
    acquire(b, 'exclusive', 32);
    expect(b.lastOutcome()).toMatchObject({ type: 'acquired', lver: 2 });
  });

  it('no helping commit: a host that thinks host 1 gone decides its value at lver 1, writes no leader for it, and ballots lver 2 at once', () => {
    const { world, area, liveB, a, b } = commitLost(RETRY_MS, 20 * RETRY_MS);
    liveB.setGone(1, 31);
    acquire(b, 'exclusive', 32);
    expect(b.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 2, mode: 'exclusive' }]);
    // Two ballots back to back (lver 1 learns host 1's value, lver 2 is ours), no read between them,
    // and one leader write: our own commit of lver 2.
    expect(b.ioLog.map((e) => e.kind)).toEqual(['read', 'write', 'read', 'write', 'read', 'write', 'read', 'write', 'read', 'write']);
    expect(blockOf(area, b.ioLog[3]!, 2).inp).toMatchObject({ hostId: 1, generation: 31, lver: 1 });
    const leaderWrites = b.writes().filter((w) => w.offset === 0);
    expect(leaderWrites).toHaveLength(1);
    expect(area.leader()).toMatchObject({ lver: 2, ownerHostId: 2, ownerGeneration: 32 });
    // Host 1's resolving finds the leader past its lver and leaves it alone.
    world.advance(10 * RETRY_MS);
    expect(a.lastOutcome()).toMatchObject({ type: 'resolved', lver: 1 });
    expect(area.leader()).toMatchObject({ lver: 2, ownerHostId: 2, ownerGeneration: 32 });
  });

  it('resolving when another host has meanwhile moved the leader past our lver: resolved, not ours, the leader left alone', () => {
    const { world, area, liveB, a, b } = commitLost(20 * RETRY_MS, RETRY_MS);
    liveB.setGone(1, 31);
    acquire(b, 'exclusive', 32);
    world.advance(5 * RETRY_MS);
    expect(b.outcomesOf('acquired').map((o) => o.outcome.lver)).toEqual([2]);
    expect(a.outcomesOf('resolved')).toHaveLength(0);
    const aWrites = a.writes().length;
    world.advance(40 * RETRY_MS);
    expect(a.lastOutcome()).toMatchObject({ type: 'resolved', lver: 1, wasOurs: false });
    expect(a.writes()).toHaveLength(aWrites);
    expect(area.leader()).toMatchObject({ lver: 2, ownerHostId: 2, ownerGeneration: 32 });
    expect(a.engine.state).toBe('free');
  });

  it('once our own delta lease has expired, a ballot in progress writes nothing more and is never reported acquired', () => {
    const { world, live, r } = setup();
    r.on({ seq: 2 }, HOLD);
    acquire(r);
    live.ownExpired.add(GEN);
    const writes = r.writes().length;
    r.complete();
    world.advance(100 * RETRY_MS);
    expect(r.writes()).toHaveLength(writes);
    expect(r.outcomesOf('acquired')).toHaveLength(0);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquire-failed', resolving: false });
    expect(r.engine.state).toBe('free');
  });
});

describe('ResourceEngine generation-ended', () => {
  it('drops a held lease: free, nothing held, release refused, no I/O', () => {
    const { world, area, r } = setup();
    acquire(r);
    const ios = r.ioLog.length;
    r.send({ type: 'generation-ended' });
    expect(r.engine.state).toBe('free');
    expect(r.engine.holding).toBeUndefined();
    r.send({ type: 'release' });
    expect(r.lastOutcome()?.type).toBe('release-failed');
    world.advance(100 * RETRY_MS);
    expect(r.ioLog).toHaveLength(ios);
    // The leader still names the ended generation; other hosts see it gone through its delta lease.
    expect(area.leader()).toMatchObject({ ownerHostId: 7, ownerGeneration: GEN });
  });

  it('stops resolving: no retry, no wake-up, free', () => {
    const { world, r } = setup();
    r.on({ seq: 5 }, TIMEOUT);
    acquire(r);
    expect(r.engine.state).toBe('resolving');
    r.send({ type: 'generation-ended' });
    expect(r.engine.state).toBe('free');
    expect(r.wakeAtMs).toBeUndefined();
    const ios = r.ioLog.length;
    world.advance(100 * RETRY_MS);
    r.tick();
    expect(r.ioLog).toHaveLength(ios);
    expect(r.outcomesOf('resolved')).toHaveLength(0);
  });

  it.each([0, 1, 2, 3, 4, 5])('ignores the late result of I/O %i of the dropped attempt', (seq) => {
    const { world, r } = setup();
    r.on({ seq }, HOLD);
    acquire(r);
    expect(r.pendingIos()).toHaveLength(1);
    r.send({ type: 'generation-ended' });
    const ios = r.ioLog.length;
    const outcomes = r.outcomes.length;
    r.complete();
    world.advance(100 * RETRY_MS);
    expect(r.ioLog).toHaveLength(ios);
    expect(r.outcomes).toHaveLength(outcomes);
    expect(r.engine.state).toBe('free');
  });

  it('ignores a release read that completes after the generation ended', () => {
    const { world, area, r } = setup();
    acquire(r);
    r.on({ kind: 'read' }, HOLD);
    r.send({ type: 'release' });
    r.send({ type: 'generation-ended' });
    const ios = r.ioLog.length;
    r.complete();
    world.advance(100 * RETRY_MS);
    expect(r.ioLog).toHaveLength(ios);
    expect(r.outcomesOf('released')).toHaveLength(0);
    expect(area.leader()).toMatchObject({ ownerHostId: 7 });
  });

  // Our older generation counts as gone (as the delta engine's ownerGone says), so a late commit of
  // the dropped attempt that lands only moves the new attempt to the next lver.
  it.each([
    ['the first read, timing out', 0, TIMEOUT, 1],
    ['the first read, succeeding', 0, OK, 1],
    ['the phase-1 write, landing', 1, OK, 1],
    ['the commit write, landing', 5, OK, 2],
  ] as const)('%s, of a dropped attempt, completing while a new acquire (new generation) runs, does not drive the new attempt', (_label, seq, completion, lver) => {
    const { world, area, live, r, hostId } = setup();
    live.setGone(hostId, GEN);
    r.on({ seq }, HOLD);
    acquire(r, 'exclusive', GEN);
    const stale = r.pendingIos()[0]!;
    r.send({ type: 'generation-ended' });
    // The new attempt's first read is slow; the old I/O ends meanwhile.
    r.on({ kind: 'read' }, { delayMs: 5 });
    const from = r.ioLog.length;
    acquire(r, 'exclusive', GEN + 1);
    const outcomes = r.outcomes.length;
    expect(() => r.complete(stale.id, completion)).not.toThrow();
    expect(r.ioLog).toHaveLength(from + 1);
    expect(r.outcomes).toHaveLength(outcomes);
    world.advance(100 * RETRY_MS);
    // The new attempt runs its own ballot, once, and gets the lease at its generation.
    expect(r.outcomes.slice(outcomes).map((o) => o.outcome)).toEqual([{ type: 'acquired', lver, mode: 'exclusive' }]);
    expect(r.ioLog.slice(from).map((e) => e.kind)).toEqual(['read', 'write', 'read', 'write', 'read', 'write']);
    expect(r.overlappingWrites).toHaveLength(0);
    expect(area.leader()).toMatchObject({ lver, ownerHostId: hostId, ownerGeneration: GEN + 1 });
  });
});

describe('ResourceEngine contended after our phase 2 (learning the decided value)', () => {
  const OTHER = 3;
  const OTHER_GEN = 2;
  /** The I/O positions of one uncontended ballot: 0 read, 1 p1-write, 2 p1-read, 3 p2-write, 4 p2-read. */
  const P2_READ = 4;

  /**
   * Host 7 ballots lver 5 (the leader at 4 is free). Its phase-2 write lands; before its phase-2 read,
   * `meanwhile` changes the area (another host's ballot, a rolled-back leader). Returns with the
   * phase-2 read completed and the retry pending.
   */
  function contendedAfterPhase2(meanwhile: (area: ResourceArea) => void) {
    const ctx = setup();
    const { area, r } = ctx;
    area.setLeader({ lver: 4, ownerHostId: 0, ownerGeneration: 0, timestampMs: 1, writerHostId: OTHER, writerGeneration: OTHER_GEN, flags: 0 });
    r.on({ seq: P2_READ }, HOLD);
    acquire(r);
    const p2 = blockOf(area, r.ioLog[3]!, ctx.hostId);
    expect(p2).toMatchObject({ bal: p2.mbal, inp: { hostId: ctx.hostId, generation: GEN, lver: 5 } });
    meanwhile(area);
    r.complete();
    expect(r.outcomes).toHaveLength(0);
    return { ...ctx, p2 };
  }

  /** Host 3's late commit of lver 4 lands: the leader rolls back to name it, live, at lver 4. */
  function rollBackLeader(area: ResourceArea): void {
    area.setLeader({ lver: 4, ownerHostId: OTHER, ownerGeneration: OTHER_GEN, timestampMs: 2, writerHostId: OTHER, writerGeneration: OTHER_GEN, flags: 0 });
  }

  it('a higher phase-1 ballot and a rolled-back leader naming a live owner: re-ballots lver 5 instead of ending busy, and acquires it', () => {
    const { world, area, r, hostId, p2 } = contendedAfterPhase2((a) => {
      a.setBlock({ ...emptyHostBlock(OTHER), mbal: p2Mbal(a) + 16, inp: { hostId: 0, generation: 0, lver: 5, timestampMs: 0 }, writerGeneration: OTHER_GEN });
      rollBackLeader(a);
    });
    world.advance(20 * RETRY_MS);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 5, mode: 'exclusive' }]);
    // The retry balloted lver 5 again, repeating our accepted value with a higher mbal.
    const retryP1 = blockOf(area, r.writes().find((w) => w.seq > P2_READ)!, hostId);
    expect(retryP1.mbal).toBeGreaterThan(p2.mbal + 16);
    expect(retryP1).toMatchObject({ bal: p2.bal, inp: p2.inp });
    expect(area.leader()).toMatchObject({ lver: 5, ownerHostId: hostId, ownerGeneration: GEN });
  });

  it('learns that another value was decided at lver 5: busy, naming the lver it resolved', () => {
    const { world, area, r, hostId } = contendedAfterPhase2((a) => {
      const mbal = p2Mbal(a) + 16;
      // Host 3's phase-1 read missed our phase-2 write: it accepted its own value at a higher ballot.
      a.setBlock({ ...emptyHostBlock(OTHER), mbal, bal: mbal, inp: { hostId: OTHER, generation: OTHER_GEN, lver: 5, timestampMs: 3 }, writerGeneration: OTHER_GEN });
      rollBackLeader(a);
    });
    world.advance(20 * RETRY_MS);
    expect(r.outcomesOf('acquired')).toHaveLength(0);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'busy', resolvedLver: 5, holder: expect.objectContaining({ hostId: OTHER, generation: OTHER_GEN }) })]);
    // It learnt by a ballot: its last phase-2 write carried host 3's value.
    const last = blockOf(area, r.writes().at(-1)!, hostId);
    expect(last).toMatchObject({ bal: last.mbal, inp: { hostId: OTHER, generation: OTHER_GEN, lver: 5 } });
    expect(r.engine.state).toBe('free');
  });

  it('the area alone settles it (a leader at lver 5 names another live host): busy at once, naming the lver, without a ballot', () => {
    const { world, area, r } = contendedAfterPhase2((a) => {
      a.setBlock({ ...emptyHostBlock(OTHER), mbal: p2Mbal(a) + 16, bal: p2Mbal(a) + 16, inp: { hostId: OTHER, generation: OTHER_GEN, lver: 5, timestampMs: 3 }, writerGeneration: OTHER_GEN });
      a.setLeader({ lver: 5, ownerHostId: OTHER, ownerGeneration: OTHER_GEN, timestampMs: 4, writerHostId: OTHER, writerGeneration: OTHER_GEN, flags: 0 });
    });
    const writes = r.writes().length;
    world.advance(20 * RETRY_MS);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'busy', resolvedLver: 5, holder: expect.objectContaining({ hostId: OTHER }) })]);
    expect(r.writes()).toHaveLength(writes);
    expect(area.leader()).toMatchObject({ lver: 5, ownerHostId: OTHER });
  });

  it('an unusable area read while learning does not forget: acquire-failed (storage, resolving), then resolved as ours', () => {
    const { world, area, r } = contendedAfterPhase2((a) => {
      a.setBlock({ ...emptyHostBlock(OTHER), mbal: p2Mbal(a) + 16, inp: { hostId: 0, generation: 0, lver: 5, timestampMs: 0 }, writerGeneration: OTHER_GEN });
    });
    // Host 3's block fails its checksum when the retry reads the area.
    const good = area.read(OTHER * 512, 512);
    const bad = good.slice();
    bad[200] = bad[200]! ^ 0xff;
    area.write(OTHER * 512, bad);
    world.advance(RETRY_MS);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'acquire-failed', code: 'storage', resolving: true })]);
    expect(r.engine.state).toBe('resolving');
    area.write(OTHER * 512, good);
    world.advance(20 * RETRY_MS);
    expect(r.lastOutcome()).toMatchObject({ type: 'resolved', lver: 5, wasOurs: true });
  });

  it('gives up learning after ballotAttemptsMax contended ballots: acquire-failed (contended, resolving), then resolves in the background', () => {
    const { world, area, r, hostId } = contendedAfterPhase2((a) => {
      a.setBlock({ ...emptyHostBlock(OTHER), mbal: p2Mbal(a) + 16, inp: { hostId: 0, generation: 0, lver: 5, timestampMs: 0 }, writerGeneration: OTHER_GEN });
      rollBackLeader(a);
    });
    // Host 3 keeps starting higher ballots at lver 5, seen by every read of ours.
    let outbid = true;
    r.always({ where: (io) => {
      if (outbid && io.kind === 'read') area.setBlock({ ...area.block(OTHER), mbal: Math.max(area.block(OTHER).mbal, area.block(hostId).mbal) + 16 });
      return false;
    } }, OK);
    world.runUntil(() => r.outcomes.length > 0, 20 * RETRY_MS);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([expect.objectContaining({ type: 'acquire-failed', code: 'contended', resolving: true })]);
    expect(r.engine.state).toBe('resolving');
    // Three learning ballots after the first one, each a phase-1 write at lver 5 keeping our value.
    const ballots = r.writes().map((w) => blockOf(area, w, hostId)).filter((b) => b.bal !== b.mbal);
    expect(ballots).toHaveLength(4);
    for (const b of ballots.slice(1)) expect(b.inp).toMatchObject({ hostId, generation: GEN, lver: 5 });
    // Resolving keeps balloting in the background while outbid.
    world.advance(20 * RETRY_MS);
    expect(r.engine.state).toBe('resolving');
    outbid = false;
    world.advance(20 * RETRY_MS);
    expect(r.lastOutcome()).toMatchObject({ type: 'resolved', lver: 5, wasOurs: true });
    expect(area.leader()).toMatchObject({ lver: 5, ownerHostId: 0 });
  });
});

/** Our (host 7's) mbal as it is on disk. */
function p2Mbal(area: ResourceArea): number {
  return area.block(7).mbal;
}

describe('ResourceEngine rolled-back leader and the released mark', () => {
  /** Host 1 (generation 11) acquires lver 5 and releases it; then a late write rolls the leader back to lver 4. */
  function releasedThenRolledBack(markFails = false) {
    const world = new World();
    const area = world.resource(spec());
    const live = new StubLiveness();
    const h1 = world.resourceEngine(area, { hostId: 1, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live);
    const h2 = world.resourceEngine(area, { hostId: 2, retryDelayMs: RETRY_MS, ballotAttemptsMax: 3 }, live);
    area.setLeader({ lver: 4, ownerHostId: 0, ownerGeneration: 0, timestampMs: 1, writerHostId: 3, writerGeneration: 2, flags: 0 });
    acquire(h1, 'exclusive', 11);
    expect(h1.lastOutcome()).toMatchObject({ type: 'acquired', lver: 5 });
    if (markFails) h1.on({ kind: 'write', offset: 512 }, EIO);
    h1.send({ type: 'release' });
    expect(h1.lastOutcome()).toMatchObject({ type: 'released', lver: 5 });
    // Host 3's late write of lver 4 (its release) lands: the leader no longer shows lver 5.
    area.setLeader({ lver: 4, ownerHostId: 0, ownerGeneration: 0, timestampMs: 2, writerHostId: 3, writerGeneration: 2, flags: 0 });
    return { world, area, live, h1, h2 };
  }

  it('another host decides the released owner\'s value at lver 5 and ballots lver 6 at once, though that owner is live', () => {
    const { area, h1, h2 } = releasedThenRolledBack();
    expect(area.block(1)).toMatchObject({ released: true, writerGeneration: 11, inp: { hostId: 1, generation: 11, lver: 5 } });
    acquire(h2, 'exclusive', 12);
    expect(h2.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 6, mode: 'exclusive' }]);
    // Its ballot for lver 5 carried host 1's value; it never wrote the leader for host 1.
    expect(blockOf(area, h2.ioLog[3]!, 2).inp).toMatchObject({ hostId: 1, generation: 11, lver: 5 });
    expect(h2.writes().filter((w) => w.offset === 0)).toHaveLength(1);
    expect(area.leader()).toMatchObject({ lver: 6, ownerHostId: 2, ownerGeneration: 12 });
    // Host 1 acquires again after host 2 released: lver 7.
    h2.send({ type: 'release' });
    acquire(h1, 'exclusive', 11);
    expect(h1.lastOutcome()).toMatchObject({ type: 'acquired', lver: 7 });
  });

  it('without the mark (its write failed) the live owner\'s decided value keeps other hosts busy', () => {
    const { area, h2 } = releasedThenRolledBack(true);
    expect(area.block(1).released).toBe(false);
    acquire(h2, 'exclusive', 12);
    expect(h2.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 1, generation: 11 } });
    expect(area.leader()).toMatchObject({ lver: 4, ownerHostId: 0 });
  });

  it('a mark of another generation does not count: busy', () => {
    const { area, h2 } = releasedThenRolledBack();
    area.setBlock({ ...area.block(1), writerGeneration: 10 });
    acquire(h2, 'exclusive', 12);
    expect(h2.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 1, generation: 11 } });
  });

  it('a leader naming a live owner whose own block is marked released at that lver: not busy, the next lver is ours', () => {
    const { area, live, r } = setup();
    live.states.set(3, 'LIVE');
    area.setBlock({ ...emptyHostBlock(3), mbal: 19, bal: 19, inp: { hostId: 3, generation: 2, lver: 5, timestampMs: 1 }, writerGeneration: 2, released: true });
    area.setLeader({ lver: 5, ownerHostId: 3, ownerGeneration: 2, timestampMs: 1, writerHostId: 3, writerGeneration: 2, flags: 0 });
    acquire(r);
    expect(r.outcomes.map((o) => o.outcome)).toEqual([{ type: 'acquired', lver: 6, mode: 'exclusive' }]);
    // Marked released at an older lver only: busy.
    const { area: area2, r: r2 } = setup();
    area2.setBlock({ ...emptyHostBlock(3), mbal: 19, bal: 19, inp: { hostId: 3, generation: 2, lver: 4, timestampMs: 1 }, writerGeneration: 2, released: true });
    area2.setLeader({ lver: 5, ownerHostId: 3, ownerGeneration: 2, timestampMs: 1, writerHostId: 3, writerGeneration: 2, flags: 0 });
    acquire(r2);
    expect(r2.lastOutcome()).toMatchObject({ type: 'busy', holder: { hostId: 3, generation: 2 } });
  });
});

describe('ResourceEngine known versions (keyed by generation, pruned)', () => {
  it('a leader naming us at a version we committed at an older generation is not ours now: identity', () => {
    const { area, r, hostId } = setup();
    acquire(r, 'exclusive', GEN);
    r.send({ type: 'release' });
    r.send({ type: 'generation-ended' });
    // Another writer with our host id names our new generation at lver 1, a version we knew only at GEN.
    area.setLeader({ lver: 1, ownerHostId: hostId, ownerGeneration: GEN + 1, timestampMs: 9, writerHostId: hostId, writerGeneration: GEN + 1, flags: 0 });
    acquire(r, 'exclusive', GEN + 1);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquire-failed', code: 'identity' });
  });

  it('once a later leader write of ours completed, an older version of ours is forgotten: a leader naming us there is another writer', () => {
    const { area, r, hostId } = setup();
    acquire(r);
    r.send({ type: 'release' });
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquired', lver: 2 });
    r.send({ type: 'release' });
    expect(r.lastOutcome()).toMatchObject({ type: 'released', lver: 2 });
    // Our leader writes of lver 2 completed: no write of ours naming lver 1 can still land.
    area.setLeader({ lver: 1, ownerHostId: hostId, ownerGeneration: GEN, timestampMs: 9, writerHostId: hostId, writerGeneration: GEN, flags: 0 });
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquire-failed', code: 'identity' });
  });

  it('the version of our last leader write is still known: a leader naming us there (our own late commit) is ballotted past', () => {
    const { area, r, hostId } = setup();
    acquire(r);
    r.send({ type: 'release' });
    // Our commit of lver 1 lands again (as a late write would): the leader names us at lver 1.
    area.setLeader({ lver: 1, ownerHostId: hostId, ownerGeneration: GEN, timestampMs: 9, writerHostId: hostId, writerGeneration: GEN, flags: 0 });
    acquire(r);
    expect(r.lastOutcome()).toMatchObject({ type: 'acquired', lver: 2 });
  });
});

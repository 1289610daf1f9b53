import { describe, expect, it } from 'vitest';
import type { Liveness } from '../../../dist/helper/engine/resource-engine.js';
import type { ResourceSpec } from '../../../dist/helper/format/index.js';
import { World } from './harness.js';

/**
 * Resume: a restarted helper of the same incarnation adopts a lease it held,
 * but only after reading the area back: the leader must name this host and
 * generation at that lver (exclusive). It writes nothing to do so.
 */

const HOST = 2;
const SPEC: ResourceSpec = { kind: 'resource', lockspaceName: 'cluster-r', resourceName: 'vm-r', hostsMax: 4, sectorSize: 512 };

function liveness(valid = true): Liveness {
  return {
    ownerGone: () => false,
    hostStatus: (hostId) => ({ hostId, state: 'LIVE', record: undefined, sinceMs: undefined, deadAtMs: undefined, problem: undefined }),
    ownLeaseValid: () => valid,
  };
}

function setup(valid = true) {
  const world = new World();
  const area = world.resource(SPEC);
  const d = world.resourceEngine(area, { hostId: HOST, retryDelayMs: 50, ballotAttemptsMax: 3 }, liveness(valid));
  return { world, area, d };
}

describe('ResourceEngine resume', () => {
  it('adopts an exclusive lease whose leader names us at that lver, with one read and no write, and can release it', () => {
    const { world, d } = setup();
    d.send({ type: 'acquire', mode: 'exclusive', generation: 3, ballotFloor: 0 });
    world.runUntil(() => d.outcomesOf('acquired').length > 0, 10_000);
    // A second engine of the same host (the restarted helper) resumes it.
    const again = world.resourceEngine(d.area, { hostId: HOST, retryDelayMs: 50, ballotAttemptsMax: 3 }, liveness());
    again.send({ type: 'resume', generation: 3, lver: 1, mode: 'exclusive' });
    world.runUntil(() => again.outcomesOf('acquired').length > 0, 10_000);
    expect(again.outcomesOf('acquired')[0]!.outcome).toEqual({ type: 'acquired', lver: 1, mode: 'exclusive' });
    expect(again.writes()).toEqual([]);
    expect(again.reads()).toHaveLength(1);
    again.send({ type: 'release' });
    world.runUntil(() => again.outcomesOf('released').length > 0, 10_000);
    expect(again.outcomesOf('released')[0]!.outcome).toMatchObject({ type: 'released', lver: 1 });
  });

  it('refuses when the leader names another generation (resume-mismatch) and writes nothing', () => {
    const { world, d } = setup();
    d.send({ type: 'resume', generation: 3, lver: 1, mode: 'exclusive' });
    world.runUntil(() => d.outcomesOf('acquire-failed').length > 0, 10_000);
    expect(d.outcomesOf('acquire-failed')[0]!.outcome).toMatchObject({ code: 'resume-mismatch' });
    expect(d.writes()).toEqual([]);
  });

  it('refuses when our delta lease is not valid (lockspace-lost)', () => {
    const { world, d } = setup(false);
    d.send({ type: 'resume', generation: 3, lver: 1, mode: 'exclusive' });
    world.runUntil(() => d.outcomesOf('acquire-failed').length > 0, 10_000);
    expect(d.outcomesOf('acquire-failed')[0]!.outcome).toMatchObject({ code: 'lockspace-lost' });
  });
});

import { describe, expect, it } from 'vitest';
import { ballotOwner, nextBallot } from '../../../dist/helper/engine/ballot.js';

const HOSTS_MAX = [1, 2, 16, 250, 2000];

function hostsOf(hostsMax: number): number[] {
  return [...new Set([1, 2, Math.ceil(hostsMax / 2), hostsMax - 1, hostsMax])].filter((h) => h >= 1 && h <= hostsMax);
}

/** Values around multiples of hostsMax and host ids, where off-by-one mistakes live. */
function floorsFor(hostsMax: number): number[] {
  const out = new Set<number>([0, 1, 2, 3, 1_000_003, 2 ** 40 + 17]);
  for (let k = 0; k < 5; k++) for (let d = -2; d <= hostsMax + 2; d += Math.max(1, Math.floor(hostsMax / 7))) out.add(Math.max(0, k * hostsMax + d));
  return [...out];
}

describe('nextBallot', () => {
  it.each(HOSTS_MAX)('hostsMax %i: exceeds its argument and belongs to the host', (hostsMax) => {
    for (const hostId of hostsOf(hostsMax)) {
      for (const floor of floorsFor(hostsMax)) {
        const b = nextBallot(hostId, hostsMax, floor);
        expect(b).toBeGreaterThan(floor);
        // An integer, and ballots grow by at most two rounds per step (they never leap towards 2^53).
        expect(Math.trunc(b)).toBe(b);
        expect(b).toBeLessThanOrEqual(floor + 2 * hostsMax);
        expect(ballotOwner(b, hostsMax)).toBe(hostId);
      }
    }
  });

  it.each(HOSTS_MAX)('hostsMax %i: a host feeding back its own ballots gets a strictly increasing sequence', (hostsMax) => {
    for (const hostId of hostsOf(hostsMax)) {
      let b = 0;
      const seen: number[] = [];
      for (let i = 0; i < 50; i++) {
        const next = nextBallot(hostId, hostsMax, b);
        expect(next).toBeGreaterThan(b);
        seen.push(next);
        b = next;
      }
      expect(new Set(seen).size).toBe(seen.length);
    }
  });

  it('two hosts leapfrogging each other keep strictly increasing and never collide', () => {
    const hostsMax = 16;
    let highest = 0;
    const used = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const hostId = (i % 3) + 1;
      const b = nextBallot(hostId, hostsMax, highest);
      expect(b).toBeGreaterThan(highest);
      expect(used.has(b)).toBe(false);
      used.set(b, hostId);
      highest = b;
    }
  });

  it.each([2, 16, 250])('hostsMax %i: different hosts never get the same number, from any floors', (hostsMax) => {
    const owners = new Map<number, number>();
    const collisions: string[] = [];
    for (let hostId = 1; hostId <= hostsMax; hostId++) {
      for (let floor = 0; floor <= 4 * hostsMax + 3; floor++) {
        const b = nextBallot(hostId, hostsMax, floor);
        const other = owners.get(b);
        if (other !== undefined && other !== hostId) collisions.push(`ballot ${b}: hosts ${other} and ${hostId}`);
        owners.set(b, hostId);
      }
    }
    expect(collisions).toEqual([]);
    // Every ballot handed out was seen, and each belongs to exactly one host.
    expect(owners.size).toBeGreaterThan(hostsMax);
  });

  it('refuses a host id outside 1..hostsMax', () => {
    expect(() => nextBallot(0, 16, 0)).toThrow();
    expect(() => nextBallot(17, 16, 0)).toThrow();
  });
});

describe('ballotOwner', () => {
  it('maps b to its host id, 1-based, hostsMax for multiples of hostsMax', () => {
    expect(ballotOwner(17, 16)).toBe(1);
    expect(ballotOwner(32, 16)).toBe(16);
    expect(ballotOwner(2000 * 7 + 1999, 2000)).toBe(1999);
    expect(ballotOwner(5, 1)).toBe(1);
  });
});

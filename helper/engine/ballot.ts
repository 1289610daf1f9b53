import assert from 'node:assert/strict';

/**
 * Ballot numbers: unique per host (b ≡ hostId mod hostsMax, 1-based) and
 * strictly increasing: the next one exceeds every ballot seen in the area and
 * the host's own persisted floor.
 */
export function nextBallot(hostId: number, hostsMax: number, atLeastAbove: number): number {
  assert.ok(hostId >= 1 && hostId <= hostsMax, `host id ${hostId} outside 1..${hostsMax}`);
  const round = Math.floor(Math.max(0, atLeastAbove - hostId) / hostsMax) + 1;
  const ballot = round * hostsMax + hostId;
  assert.ok(ballot > atLeastAbove && Number.isSafeInteger(ballot), `ballot ${ballot} must exceed ${atLeastAbove}`);
  return ballot;
}

export function ballotOwner(ballot: number, hostsMax: number): number {
  const rest = ballot % hostsMax;
  return rest === 0 ? hostsMax : rest;
}

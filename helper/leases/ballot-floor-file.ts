import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurably } from './durable-file.js';
import type { BallotFloorStore } from './resource.js';

/**
 * How far above a ballot the file reserves: 2^20 ballot numbers, which is 524
 * ballots of one host at 2000 host ids and 65,536 at 16. One fsync'd write
 * per that many ballots instead of one per acquire (the write takes 0.5 ms on
 * this machine's ext4 and far more on a busy disk, and it runs on the main
 * thread); a restart skips at most that much of the 2^53 ballot space.
 */
export const BALLOT_FLOOR_RESERVE = 2 ** 20;

/**
 * A ballot floor kept in a file of the helper's run directory (local, never
 * shared storage): written to a temporary file, synced, renamed into place,
 * and the directory synced, before the ballot's first write is issued. A
 * restarted helper starts its ballots above it, so it never reuses a ballot
 * number whose write may still land.
 *
 * The file holds a reservation, not the last ballot: a ballot up to the
 * reserved value is durable already (the file says "nothing above this was
 * used", and nothing was), so only a ballot beyond it writes the file again,
 * with a new reservation above that ballot.
 */
export function fileBallotFloor(path: string, reserve = BALLOT_FLOOR_RESERVE): BallotFloorStore {
  assert.ok(Number.isSafeInteger(reserve) && reserve >= 0, `bad ballot floor reserve ${reserve}`);
  let reserved = readFloor(path);
  let floor = reserved;
  return {
    get: () => floor,
    set(value) {
      assert.ok(Number.isSafeInteger(value) && value >= 0, `bad ballot floor ${value}`);
      if (value <= floor) return;
      if (value > reserved) {
        const next = value + reserve;
        assert.ok(Number.isSafeInteger(next), `ballot floor ${value} leaves no room for a reservation`);
        writeFileDurably(path, `${next}\n`);
        reserved = next;
      }
      floor = value;
    },
  };
}

function readFloor(path: string): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8').trim();
  const value = Number(text);
  // A damaged floor file must stop the helper: guessing low could reuse a ballot number.
  assert.ok(/^[0-9]+$/.test(text) && Number.isSafeInteger(value), `ballot floor file ${path} is damaged: ${JSON.stringify(text.slice(0, 40))}`);
  return value;
}

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurably } from './durable-file.js';
import type { BallotFloorStore } from './resource.js';

/**
 * A ballot floor kept in a file of the helper's run directory (local, never
 * shared storage): written to a temporary file, synced, renamed into place,
 * and the directory synced, before the ballot's first write is issued. A
 * restarted helper starts its ballots above it, so it never reuses a ballot
 * number whose write may still land.
 */
export function fileBallotFloor(path: string): BallotFloorStore {
  let floor = readFloor(path);
  return {
    get: () => floor,
    set(value) {
      assert.ok(Number.isSafeInteger(value) && value >= 0, `bad ballot floor ${value}`);
      if (value <= floor) return;
      writeFileDurably(path, `${value}\n`);
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

import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BALLOT_FLOOR_RESERVE, fileBallotFloor } from '../../dist/helper/leases/index.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('floor');
afterAll(() => dir.remove());

it('keeps the highest ballot across restarts and never lowers it', () => {
  const path = join(dir.path, 'vm1.floor');
  const first = fileBallotFloor(path, 0);
  expect(first.get()).toBe(0);
  first.set(37);
  first.set(12);
  expect(first.get()).toBe(37);
  expect(existsSync(`${path}.tmp`)).toBe(false);
  const restarted = fileBallotFloor(path, 0);
  expect(restarted.get()).toBe(37);
});

it('writes a reservation, so most ballots need no write, and a restart starts above every ballot used', () => {
  const path = join(dir.path, 'vm2.floor');
  const floor = fileBallotFloor(path, 1000);
  floor.set(17);
  expect(readFileSync(path, 'utf8')).toBe('1017\n');
  // Ballots within the reservation are durable already: the file is not replaced (same inode).
  const inode = statSync(path).ino;
  floor.set(533);
  floor.set(1017);
  expect(floor.get()).toBe(1017);
  expect(statSync(path).ino).toBe(inode);
  // Beyond it, the next ballot is written with a new reservation before it is used.
  floor.set(1033);
  expect(readFileSync(path, 'utf8')).toBe('2033\n');
  expect(statSync(path).ino).not.toBe(inode);
  expect(floor.get()).toBe(1033);
  const restarted = fileBallotFloor(path, 1000);
  expect(restarted.get()).toBe(2033);
});

it('reserves 2^20 ballot numbers by default', () => {
  const path = join(dir.path, 'vm3.floor');
  fileBallotFloor(path).set(5);
  expect(BALLOT_FLOOR_RESERVE).toBe(1_048_576);
  expect(fileBallotFloor(path).get()).toBe(5 + 1_048_576);
});

it('refuses a damaged floor file rather than guessing', () => {
  const path = join(dir.path, 'damaged.floor');
  writeFileSync(path, 'garbage');
  expect(() => fileBallotFloor(path)).toThrow(/ballot floor file .* is damaged/);
});

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fileBallotFloor } from '../../dist/helper/leases/index.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('floor');
afterAll(() => dir.remove());

it('keeps the highest ballot across restarts and never lowers it', () => {
  const path = join(dir.path, 'vm1.floor');
  const first = fileBallotFloor(path);
  expect(first.get()).toBe(0);
  first.set(37);
  first.set(12);
  expect(first.get()).toBe(37);
  expect(existsSync(`${path}.tmp`)).toBe(false);
  const restarted = fileBallotFloor(path);
  expect(restarted.get()).toBe(37);
});

it('refuses a damaged floor file rather than guessing', () => {
  const path = join(dir.path, 'damaged.floor');
  writeFileSync(path, 'garbage');
  expect(() => fileBallotFloor(path)).toThrow(/ballot floor file .* is damaged/);
});

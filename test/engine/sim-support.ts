import { expect } from 'vitest';
import { runSeed } from '../../dist/test/sim/scenario.js';

/** Runs seeds [from, from+count) and fails listing every failing seed with the command that reproduces it. */
export function expectSeedsPass(from: number, count: number): void {
  const failures: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const result = runSeed(seed);
    if (result.violations.length > 0) {
      failures.push(`${result.summary}\n  ${result.violations.join('\n  ')}\n  reproduce: npm run sim -- --seed ${seed}`);
    }
  }
  expect(failures, failures.join('\n')).toEqual([]);
}

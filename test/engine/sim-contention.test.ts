import { expect, it } from 'vitest';
import { runSeed } from '../../dist/test/sim/scenario.js';

// High contention: 4 to 6 hosts acquire and release one resource as fast as they can, with the
// usual faults. Contended ballots after phase 2, resolving hosts outbid by learners and rolled-back
// leaders happen here often. npm run sim -- --contention runs more seeds.
it('under high contention, seeds 1..30 keep every invariant, liveness included', () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 30; seed++) {
    const result = runSeed(seed, { contention: true });
    if (result.violations.length > 0) failures.push(`${result.summary}\n  ${result.violations.join('\n  ')}\n  reproduce: npm run sim -- --seed ${seed} --contention`);
  }
  expect(failures, failures.join('\n')).toEqual([]);
}, 600_000);

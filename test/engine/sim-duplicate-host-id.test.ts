import { expect, it } from 'vitest';
import { runSeed } from '../../dist/test/sim/scenario.js';

// A machine misconfigured with another's host id: the delta lease keeps the two from holding the
// id at once, so leases stay exclusive. npm run sim -- --duplicate-host-id runs more seeds.
it('with a second machine on host id 1, seeds 1..200 keep every invariant', () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 200; seed++) {
    const result = runSeed(seed, { duplicateHostId: true });
    if (result.violations.length > 0) failures.push(`${result.summary}\n  ${result.violations.join('\n  ')}\n  reproduce: npm run sim -- --seed ${seed} --duplicate-host-id`);
  }
  expect(failures, failures.join('\n')).toEqual([]);
}, 600_000);

import { describe, expect, it } from 'vitest';
import type { BrokenRules } from '../../dist/helper/engine/broken-rules.js';
import { runSeed } from '../../dist/test/sim/scenario.js';

/**
 * The checker can fail: each deliberately broken rule (SPEC section 10) is
 * caught by the simulator within a bounded number of seeds, with a violation
 * of the invariant that rule protects.
 */

const SEEDS_MAX = 50;

const RULES: { rule: keyof BrokenRules; violation: RegExp }[] = [
  { rule: 'skipPhase1Read', violation: /decided twice|used by host .* at once/ },
  { rule: 'takeoverBeforeHostDead', violation: /used by host .* at once|decided twice/ },
  { rule: 'reuseBallotNumber', violation: /used ballot \d+ for two proposals|lowered its ballot/ },
  { rule: 'skipHostBlockInBallotRead', violation: /decided twice|used by host .* at once/ },
  { rule: 'forgetAfterPhase2Error', violation: /forgot resource \d+ lver \d+ after its phase 2 began/ },
  { rule: 'forgetContendedPhase2', violation: /ended busy for resource \d+, forgetting its phase-2 value/ },
];

describe('the simulator catches every deliberately broken rule', () => {
  it.each(RULES)('$rule is caught within 50 seeds', ({ rule, violation }) => {
    for (let seed = 1; seed <= SEEDS_MAX; seed++) {
      const result = runSeed(seed, { brokenRules: { [rule]: true } });
      if (result.violations.length > 0) {
        expect(result.violations.join('\n')).toMatch(violation);
        return;
      }
    }
    expect.fail(`${rule}: no violation in seeds 1..${SEEDS_MAX}`);
  });

  it('the same seed gives the same run', () => {
    const a = runSeed(4242);
    const b = runSeed(4242);
    expect(b.summary).toBe(a.summary);
    expect(b.events).toBe(a.events);
  });
});

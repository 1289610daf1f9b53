import { it } from 'vitest';
import { expectSeedsPass } from './sim-support.js';

// npm test runs 1,000 seeds in four files (so they run in parallel); npm run sim -- --seeds N runs more.
it('simulator seeds 1..250 keep every invariant', () => expectSeedsPass(1, 250), 600_000);

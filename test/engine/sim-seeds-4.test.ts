import { it } from 'vitest';
import { expectSeedsPass } from './sim-support.js';

// npm test runs 1,000 seeds in four files (so they run in parallel); npm run sim -- --seeds N runs more.
it('simulator seeds 751..1000 keep every invariant', () => expectSeedsPass(751, 250), 600_000);

/**
 * Deliberately broken rules, for the simulator only: each switch breaks one
 * rule the algorithms depend on, so tests can show that the simulator's
 * checker catches it (SPEC section 10). Never set outside tests.
 */
export interface BrokenRules {
  /** Go to phase 2 without reading the blocks after the phase-1 write. */
  readonly skipPhase1Read?: boolean;
  /** Count an owner dead at a quarter of its fail time, long before host_dead. */
  readonly takeoverBeforeHostDead?: boolean;
  /** Use the same ballot number for every ballot. */
  readonly reuseBallotNumber?: boolean;
  /** Ignore one other host's block (the highest host id but ours) in ballot reads. */
  readonly skipHostBlockInBallotRead?: boolean;
  /** Treat an I/O failure after phase 2 has started like one before it: forget the attempt. */
  readonly forgetAfterPhase2Error?: boolean;
  /** Retry a ballot contended after our phase-2 write like a fresh acquire (it may end busy). */
  readonly forgetContendedPhase2?: boolean;
}

export const NO_BROKEN_RULES: BrokenRules = {};

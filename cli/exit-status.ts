/** Exit statuses of every vmlease command (SPEC section 9). */
export const ExitStatus = {
  ok: 0,
  error: 1,
  usage: 2,
  busy: 3,
  refused: 4,
  storage: 5,
  leaseLost: 6,
} as const;

export type ExitStatus = (typeof ExitStatus)[keyof typeof ExitStatus];

/** A command-line mistake: exit 2, with a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

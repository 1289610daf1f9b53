/**
 * An expected failure of a helper request, with a stable code (tests and
 * scripts match on it) and a kind that the command line maps to its exit
 * status: busy 3, refused 4, storage 5, anything else 1.
 */
export type HelperErrorKind = 'busy' | 'refused' | 'storage' | 'error';

export class HelperError extends Error {
  override readonly name = 'HelperError';

  constructor(
    readonly code: string,
    readonly kind: HelperErrorKind,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

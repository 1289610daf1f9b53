import { FormatError } from '../format/index.js';
import { StorageError } from '../storage/index.js';
import { DiskError } from '../disks/errors.js';
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

/**
 * Expected failures from the storage and format layers, as helper errors of
 * kind 'storage' (exit 5), so a hung or broken lease device is reported as
 * what it is rather than as an internal error. Anything else is returned as is.
 */
export function asHelperError(error: unknown): unknown {
  if (error instanceof HelperError) return error;
  if (error instanceof StorageError) return new HelperError(error.code, 'storage', error.message);
  if (error instanceof FormatError) return new HelperError(error.code, 'storage', error.message);
  // Disk facts, lease directories, auto lease files: their own kinds (a missing marker is a refusal).
  if (error instanceof DiskError) return new HelperError(error.code, error.kind, error.message);
  return error;
}

/** Expected storage failures, with stable codes. */
export const StorageErrorCode = {
  /** open() failed (the message carries errno's code). */
  open: 'STORAGE_OPEN',
  /** The path is neither a regular file nor a block device. */
  notStorage: 'STORAGE_NOT_FILE_OR_DEVICE',
  /** An I/O did not complete by its deadline. It may still land later. */
  ioTimeout: 'STORAGE_IO_TIMEOUT',
  /** The kernel returned an error for a read or write. */
  ioError: 'STORAGE_IO_ERROR',
  /** The block device is smaller than the area to be written. */
  tooSmall: 'STORAGE_TOO_SMALL',
  /** A write transferred fewer bytes than asked. */
  shortWrite: 'STORAGE_SHORT_WRITE',
  /** Offset or length is not a multiple of the storage's I/O alignment. */
  misaligned: 'STORAGE_MISALIGNED',
  /** A write overlaps sectors with a write that has not completed (perhaps timed out). */
  writeOutstanding: 'STORAGE_WRITE_OUTSTANDING',
  /** Too many I/Os queued on this storage (it is probably hung). */
  queueFull: 'STORAGE_QUEUE_FULL',
  /** No aligned buffer is free: buffers of unfinished I/Os are never reused. */
  buffersExhausted: 'STORAGE_BUFFERS_EXHAUSTED',
  /** The storage was closed, or is closing. */
  closed: 'STORAGE_CLOSED',
  /** The I/O worker thread died. */
  workerDied: 'STORAGE_WORKER_DIED',
} as const;

export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

export class StorageError extends Error {
  override readonly name = 'StorageError';

  constructor(
    readonly code: StorageErrorCode,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

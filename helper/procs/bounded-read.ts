import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { ProcsError, ProcsErrorCode } from './errors.js';

/** What a bounded read got: at most `maxBytes`, and whether the file had more. */
export interface BoundedRead {
  readonly bytes: Buffer;
  /** True when the file holds more than `maxBytes` bytes (only the first `maxBytes` are in `bytes`). */
  readonly truncated: boolean;
}

/** errno codes that mean "the process (or cgroup) is not there any more". */
const GONE_CODES = new Set(['ENOENT', 'ESRCH']);

/**
 * Reads at most `maxBytes` of a procfs, sysfs or cgroupfs file, synchronously
 * (these filesystems never wait on storage). Returns undefined when the file
 * does not exist or its process has exited (ENOENT, ESRCH); any other failure
 * is a ProcsError.
 */
export function readBounded(path: string, maxBytes: number): BoundedRead | undefined {
  assert.ok(Number.isSafeInteger(maxBytes) && maxBytes >= 1, `readBounded: maxBytes ${maxBytes} must be a positive integer`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    return goneOrThrow(path, error);
  }
  try {
    // One byte more than allowed tells a file of exactly maxBytes from a longer one.
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    while (filled < buffer.length) {
      let n: number;
      try {
        n = readSync(fd, buffer, filled, buffer.length - filled, null);
      } catch (error) {
        return goneOrThrow(path, error);
      }
      if (n === 0) break;
      filled += n;
    }
    const truncated = filled > maxBytes;
    return { bytes: buffer.subarray(0, Math.min(filled, maxBytes)), truncated };
  } finally {
    closeSync(fd);
  }
}

function goneOrThrow(path: string, error: unknown): undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && GONE_CODES.has(code)) return undefined;
  throw new ProcsError(ProcsErrorCode.readFailed, path, (error as Error).message);
}

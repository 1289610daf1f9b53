import { constants } from 'node:fs';
import { link, lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { DiskError, DiskErrorCode, errnoCode } from './errors.js';
import type { Step } from './stuck-calls.js';

/**
 * Publishing a fully written file under its final name without ever
 * replacing what is there: link(2) the temporary file to the final name.
 * link fails with EEXIST when the name exists, atomically, on local file
 * systems and on NFS alike, so of several hosts racing to create one name
 * exactly one wins; rename(2) would silently replace the winner's file.
 */

/** A failed fs call as DISK_IO (deadline and stuck refusals pass through as they are). */
export function ioFailure(subject: string, what: string, error: unknown): DiskError {
  if (error instanceof DiskError) return error;
  return new DiskError(DiskErrorCode.io, subject, `${what} failed: ${(error as Error).message}`);
}

function closeQuietly(handle: FileHandle): void {
  handle.close().catch(() => undefined);
}

/** 'linked': `final` is now our file; 'exists': another file already had the name (ours is untouched). */
export async function linkIntoPlace(temporary: string, final: string, step: Step): Promise<'linked' | 'exists'> {
  try {
    await step(final, 'link', () => link(temporary, final));
    return 'linked';
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw ioFailure(final, `link ${temporary} to`, error);
  }
  // Over NFS a link whose reply was lost is retried by the client and then fails with EEXIST
  // although it succeeded: the name holds our inode then.
  try {
    const [ours, theirs] = [await step(temporary, 'lstat', () => lstat(temporary, { bigint: true })), await step(final, 'lstat', () => lstat(final, { bigint: true }))];
    return ours.dev === theirs.dev && ours.ino === theirs.ino ? 'linked' : 'exists';
  } catch (error) {
    throw ioFailure(final, 'lstat after EEXIST from link', error);
  }
}

/** Opens `path` with `flags`, fsyncs and closes it, each with its deadline. */
async function syncPath(path: string, flags: number, step: Step): Promise<void> {
  const handle = await step(path, 'open', () => open(path, flags), closeQuietly);
  try {
    await step(path, 'fsync', () => handle.sync());
  } catch (error) {
    // FileHandle.close waits for the handle's pending calls: not for a hung fsync.
    closeQuietly(handle);
    throw error;
  }
  await step(path, 'close', () => handle.close());
}

/** fsync of a directory: makes the names created or removed in it durable. */
export async function syncDirectory(directory: string, step: Step): Promise<void> {
  await syncPath(directory, constants.O_RDONLY | constants.O_DIRECTORY, step).catch((error: unknown) => {
    throw ioFailure(directory, 'fsync of directory', error);
  });
}

/** fsync of a regular file by name (a symlink in its place is refused: O_NOFOLLOW). */
export async function syncFile(path: string, step: Step): Promise<void> {
  await syncPath(path, constants.O_RDONLY | constants.O_NOFOLLOW, step).catch((error: unknown) => {
    throw ioFailure(path, 'fsync', error);
  });
}

/** Removes a temporary file; one already gone is fine. */
export async function removeTemporary(path: string, step: Step): Promise<void> {
  try {
    await step(path, 'unlink', () => unlink(path));
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw ioFailure(path, 'unlink', error);
  }
}

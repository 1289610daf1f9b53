import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { absolutePathProblem } from '../config/index.js';
import { nameProblem } from '../format/fields.js';
import { DiskError, DiskErrorCode, errnoCode } from './errors.js';
import { checkSharedFileSystem } from './file-system-type.js';
import { ioFailure, linkIntoPlace, removeTemporary, syncDirectory } from './link-into-place.js';
import { sharedStuckCalls, stepsOf, type Step, type StuckCalls } from './stuck-calls.js';

/**
 * A lease directory holds auto lease files, usually on a file system shared
 * by every host (NFS). It carries a marker file naming its lockspace, so a
 * directory that lacks it (an NFS mount point whose mount failed: an empty
 * local directory) is refused instead of silently getting local lease files
 * that no other host sees — two hosts would each "hold" the same disk.
 *
 * The marker is exactly one line, the JSON object
 *   {"format":"vmlease-lease-directory","version":1,"lockspace":"NAME"}
 * with its keys in that order and no spaces, then a newline. Anything else
 * (other keys, spacing, a newer version) is refused rather than interpreted.
 */

export const LEASE_DIRECTORY_MARKER = '.vmlease-lease-directory';
export const LEASE_DIRECTORY_FORMAT = 'vmlease-lease-directory';
export const LEASE_DIRECTORY_VERSION = 1;
/** The longest marker is 113 bytes (a 48-byte name quoted); reading stops beyond this. */
export const MARKER_BYTES_MAX = 256;
/** The marker is readable by all: it names a lockspace, nothing secret, and tools may check it unprivileged. */
export const MARKER_MODE = 0o644;
/** Default deadline of each file-system call. */
export const LEASE_DIRECTORY_STEP_TIMEOUT_MS_DEFAULT = 10_000;

export interface LeaseDirectoryOptions {
  /** Deadline of each file-system call (the directory may be on a hung NFS server). */
  readonly stepTimeoutMs?: number;
  readonly stuckCalls?: StuckCalls;
  /**
   * Accept a directory on a local file system (ext4, xfs, tmpfs, ...; see
   * file-system-type.ts). Off by default: a local lease directory is seen by
   * this host alone. Single-host setups and tests turn it on.
   */
  readonly allowLocalFileSystem?: boolean;
}

export interface LeaseDirectory {
  readonly path: string;
  readonly lockspace: string;
  /** st_dev of the directory when it was checked: a file created in it later must be on this device. */
  readonly device: bigint;
}

/** The marker's exact bytes for `lockspace`. */
export function markerText(lockspace: string): string {
  return `${JSON.stringify({ format: LEASE_DIRECTORY_FORMAT, version: LEASE_DIRECTORY_VERSION, lockspace })}\n`;
}

/** The lockspace a marker names; throws LEASE_DIR_MARKER_MALFORMED for anything but the exact format. */
export function parseMarker(text: string, markerPath: string): string {
  const malformed = (why: string): never => {
    throw new DiskError(DiskErrorCode.markerMalformed, markerPath, `${why}; expected exactly ${markerText('NAME').trim()} and a newline (vmlease init-lease-directory writes it)`);
  };
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return malformed(`is not JSON (${text.length} bytes)`);
  }
  const lockspace = (document as { lockspace?: unknown } | null)?.lockspace;
  if (typeof lockspace !== 'string') return malformed('has no "lockspace" string');
  const problem = nameProblem(lockspace);
  if (problem !== undefined) return malformed(`names lockspace ${JSON.stringify(lockspace)}, which ${problem}`);
  if (text !== markerText(lockspace)) return malformed('is not in the exact marker format (keys, order, spacing, version or final newline differ)');
  return lockspace;
}

function checkNames(dir: string, lockspace: string): void {
  const pathProblem = absolutePathProblem(dir);
  if (pathProblem !== undefined) throw new DiskError(DiskErrorCode.dirPath, dir, `lease directory ${pathProblem}`);
  const problem = nameProblem(lockspace);
  if (problem !== undefined) throw new DiskError(DiskErrorCode.badName, dir, `lockspace name ${JSON.stringify(lockspace)} ${problem}`);
}

function stepOf(options: LeaseDirectoryOptions): Step {
  return stepsOf(options.stuckCalls ?? sharedStuckCalls, options.stepTimeoutMs ?? LEASE_DIRECTORY_STEP_TIMEOUT_MS_DEFAULT);
}

/** The directory itself: it exists, is a directory, and is not a symlink (lstat: nothing is followed). Returns its st_dev. */
async function checkDirectoryItself(dir: string, step: Step): Promise<bigint> {
  let info;
  try {
    info = await step(dir, 'lstat', () => lstat(dir, { bigint: true }));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new DiskError(DiskErrorCode.dirMissing, dir, 'lease directory does not exist');
    throw ioFailure(dir, 'lstat of lease directory', error);
  }
  if (info.isSymbolicLink()) throw new DiskError(DiskErrorCode.dirSymlink, dir, 'lease directory is a symbolic link (refused: name the directory itself)');
  if (!info.isDirectory()) throw new DiskError(DiskErrorCode.dirNotDirectory, dir, 'lease directory is not a directory');
  return info.dev;
}

/**
 * Refuses with LEASE_DIR_DEVICE_CHANGED unless `path`, a file just created in
 * the lease directory, is on `device`, the directory's st_dev when it was
 * checked. Called before link(2): had the shared file system been unmounted
 * since the check, the file would be on the local disk under the mount point.
 */
export async function checkOnDirectoryDevice(path: string, device: bigint, step: Step): Promise<void> {
  let info;
  try {
    info = await step(path, 'lstat', () => lstat(path, { bigint: true }));
  } catch (error) {
    throw ioFailure(path, 'lstat of new file', error);
  }
  if (info.dev !== device) {
    throw new DiskError(
      DiskErrorCode.deviceChanged,
      path,
      `is on device ${info.dev}, but the lease directory was on device ${device} when it was checked (was the shared file system unmounted meanwhile?); it is not linked into place`,
    );
  }
}

function closeQuietly(handle: FileHandle): void {
  handle.close().catch(() => undefined);
}

/** The marker's text, or undefined when there is none. Never follows a symlink; reads at most MARKER_BYTES_MAX + 1 bytes. */
async function readMarker(markerPath: string, step: Step): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted as the marker must not block the open (it is refused below).
    handle = await step(markerPath, 'open', () => open(markerPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK), closeQuietly);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    if (errnoCode(error) === 'ELOOP') throw new DiskError(DiskErrorCode.markerMalformed, markerPath, 'marker is a symbolic link');
    throw ioFailure(markerPath, 'open of marker', error);
  }
  try {
    const info = await step(markerPath, 'fstat', () => handle.stat());
    if (!info.isFile()) throw new DiskError(DiskErrorCode.markerMalformed, markerPath, 'marker is not a regular file');
    const buffer = Buffer.alloc(MARKER_BYTES_MAX + 1);
    const { bytesRead } = await step(markerPath, 'read', () => handle.read(buffer, 0, buffer.byteLength, 0));
    if (bytesRead > MARKER_BYTES_MAX) throw new DiskError(DiskErrorCode.markerMalformed, markerPath, `marker is longer than ${MARKER_BYTES_MAX} bytes`);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } catch (error) {
    throw ioFailure(markerPath, 'read of marker', error);
  } finally {
    closeQuietly(handle);
  }
}

function wrongLockspace(dir: string, markerPath: string, found: string, wanted: string): DiskError {
  return new DiskError(DiskErrorCode.wrongLockspace, dir, `lease directory belongs to lockspace ${JSON.stringify(found)} (${markerPath}), not ${JSON.stringify(wanted)}`);
}

/**
 * Refuses, with a DiskError naming the directory and why, unless `dir` is a
 * directory (not a symlink) on a shared file system (or a local one that is
 * allowed) whose marker names `lockspace`.
 */
export async function checkLeaseDirectory(dir: string, lockspace: string, options: LeaseDirectoryOptions = {}): Promise<LeaseDirectory> {
  checkNames(dir, lockspace);
  const step = stepOf(options);
  const device = await checkDirectoryItself(dir, step);
  // Before the marker: a marker on a local file system (written before the mount, or copied) proves nothing.
  await checkSharedFileSystem(dir, step, options.allowLocalFileSystem === true);
  const markerPath = `${dir}/${LEASE_DIRECTORY_MARKER}`;
  const text = await readMarker(markerPath, step);
  if (text === undefined) {
    throw new DiskError(
      DiskErrorCode.noMarker,
      dir,
      `lease directory has no marker ${LEASE_DIRECTORY_MARKER} (is the shared file system mounted? a directory without it is never used; mark it once with 'vmlease init-lease-directory ${lockspace}:${dir}')`,
    );
  }
  const found = parseMarker(text, markerPath);
  if (found !== lockspace) throw wrongLockspace(dir, markerPath, found, lockspace);
  return { path: dir, lockspace, device };
}

export interface InitLeaseDirectoryOutcome {
  readonly markerPath: string;
  /** False when the directory already carried this lockspace's marker (nothing was written). */
  readonly created: boolean;
}

/**
 * Marks an existing directory as a lease directory of `lockspace`. The
 * directory is never created: under an unmounted mount point that would mark
 * the local directory. The marker appears whole or not at all (written to a
 * temporary file, fsynced, then linked into place, never over an existing
 * marker), so a host checking at the same moment never sees half of it.
 * An existing marker of the same lockspace is accepted as is. A directory on
 * a local file system is refused unless allowed (an unmounted mount point).
 */
export async function initLeaseDirectory(dir: string, lockspace: string, options: LeaseDirectoryOptions & { readonly randomSuffix?: () => string } = {}): Promise<InitLeaseDirectoryOutcome> {
  checkNames(dir, lockspace);
  const step = stepOf(options);
  const device = await checkDirectoryItself(dir, step);
  await checkSharedFileSystem(dir, step, options.allowLocalFileSystem === true);
  const markerPath = `${dir}/${LEASE_DIRECTORY_MARKER}`;
  const existing = await readMarker(markerPath, step);
  if (existing !== undefined) return acceptExisting(dir, markerPath, existing, lockspace);

  const temporary = `${markerPath}.tmp-${(options.randomSuffix ?? randomSuffix)()}`;
  try {
    await writeNewFile(temporary, markerText(lockspace), step);
    await checkOnDirectoryDevice(temporary, device, step);
    const outcome = await linkIntoPlace(temporary, markerPath, step);
    await removeTemporary(temporary, step);
    await syncDirectory(dir, step);
    if (outcome === 'exists') {
      const theirs = await readMarker(markerPath, step);
      return acceptExisting(dir, markerPath, theirs ?? '', lockspace);
    }
    return { markerPath, created: true };
  } catch (error) {
    await removeTemporary(temporary, step).catch(() => undefined);
    throw error;
  }
}

function acceptExisting(dir: string, markerPath: string, text: string, lockspace: string): InitLeaseDirectoryOutcome {
  const found = parseMarker(text, markerPath);
  if (found !== lockspace) throw wrongLockspace(dir, markerPath, found, lockspace);
  return { markerPath, created: false };
}

export function randomSuffix(): string {
  return randomBytes(8).toString('hex');
}

/** Creates `path` exclusively (O_EXCL, no symlink followed) with MARKER_MODE, writes `text` and fsyncs it. */
async function writeNewFile(path: string, text: string, step: Step): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  try {
    const handle = await step(path, 'create', () => open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, MARKER_MODE), closeQuietly);
    try {
      // The umask may have taken bits away: the mode is part of the format.
      await step(path, 'chmod', () => handle.chmod(MARKER_MODE));
      const { bytesWritten } = await step(path, 'write', () => handle.write(bytes, 0, bytes.byteLength, 0));
      if (bytesWritten !== bytes.byteLength) throw new Error(`wrote ${bytesWritten} of ${bytes.byteLength} bytes`);
      await step(path, 'fsync', () => handle.sync());
    } catch (error) {
      closeQuietly(handle);
      throw error;
    }
    await step(path, 'close', () => handle.close());
  } catch (error) {
    throw ioFailure(path, 'writing the marker', error);
  }
}

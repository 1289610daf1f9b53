import { lstat } from 'node:fs/promises';
import { areaErrors, initialiseArea, readAreaAt } from '../areas/index.js';
import { FormatError, nameProblem, specProblems, type ResourceSpec, type SectorSize } from '../format/index.js';
import { DirectStorage, StorageError, StorageErrorCode, type OpenOptions } from '../storage/index.js';
import { DiskError, DiskErrorCode, errnoCode } from './errors.js';
import { checkLeaseDirectory, checkOnDirectoryDevice, LEASE_DIRECTORY_STEP_TIMEOUT_MS_DEFAULT, randomSuffix, type LeaseDirectoryOptions } from './lease-directory.js';
import { ioFailure, linkIntoPlace, removeTemporary, syncDirectory, syncFile } from './link-into-place.js';
import { sharedStuckCalls, stepsOf, type Step } from './stuck-calls.js';

/**
 * The lease file of an auto disk lease: `DIR/RESOURCE.lease`, one resource
 * area at offset 0, created on first use by whichever host gets there first.
 *
 * Hosts sharing the directory may all try to create the same file at once.
 * Each initialises a private temporary file in the directory (the bytes
 * `vmlease init-resource` writes, with the same direct I/O and read-back
 * check), fsyncs it, and link(2)s it to the final name. link never replaces
 * an existing name, so exactly one host's file becomes the lease file and the
 * others find it with EEXIST and use it. Because a file gets its final name
 * only once it is complete, nobody ever sees a half-initialised lease file.
 * An existing final name that is not a valid area of this resource is
 * refused and left untouched; nothing is ever renamed over it.
 */

export interface AutoLeaseFileOptions extends LeaseDirectoryOptions {
  readonly directory: string;
  readonly lockspace: string;
  readonly resource: string;
  /** Host ids the area serves when this call creates it (an existing area keeps its own). */
  readonly hostsMax: number;
  readonly sectorSize: SectorSize;
  /** Deadline of each direct I/O (and of open and close of the lease file). */
  readonly ioTimeoutMs: number;
  /** Suffix of the temporary file's name (random by default). */
  readonly randomSuffix?: () => string;
}

export interface AutoLeaseFile {
  readonly path: string;
  /** This call's temporary file became the lease file. */
  readonly created: boolean;
  /** The area found or written (hostsMax and sectorSize are the area's, which may differ from the request when another host created it). */
  readonly spec: ResourceSpec;
  /** This call initialised a temporary file but another host linked its own first (ours was removed). */
  readonly lostRace: boolean;
}

export const AUTO_LEASE_SUFFIX = '.lease';
/** Temporary files start with this; a name starting with '.' is never a lease file's. */
export const AUTO_LEASE_TEMPORARY_PREFIX = '.tmp-';

/** The final name of `resource`'s lease file in `directory`. */
export function autoLeaseFilePath(directory: string, resource: string): string {
  return `${directory}/${resource}${AUTO_LEASE_SUFFIX}`;
}

function checkRequest(options: AutoLeaseFileOptions): ResourceSpec {
  const { directory, lockspace, resource, hostsMax, sectorSize } = options;
  const problem = nameProblem(resource) ?? (resource.includes('/') ? "contains '/'" : resource.startsWith('.') ? "starts with '.' (reserved for the marker and temporary files)" : undefined);
  if (problem !== undefined) throw new DiskError(DiskErrorCode.badName, directory, `resource name ${JSON.stringify(resource)} ${problem}`);
  const spec: ResourceSpec = { kind: 'resource', lockspaceName: lockspace, resourceName: resource, hostsMax, sectorSize };
  const problems = specProblems(spec);
  if (problems.length > 0) throw new DiskError(DiskErrorCode.badName, directory, `cannot create resource ${JSON.stringify(resource)}: ${problems.join('; ')}`);
  return spec;
}

/**
 * Opens, uses and always lets go of a lease file: closed when its I/O
 * finished, abandoned when an I/O is overdue (close would wait for it). A
 * failing close never hides the error that is already on its way out.
 */
async function withLeaseFile<T>(path: string, options: OpenOptions, use: (storage: DirectStorage) => Promise<T>): Promise<T> {
  const storage = await DirectStorage.open(path, options);
  const letGo = (): Promise<void> => (storage.stats.overdue > 0 ? Promise.resolve(storage.abandon()) : storage.close());
  let result: T;
  try {
    result = await use(storage);
  } catch (error) {
    await letGo().catch(() => undefined);
    throw error;
  }
  await letGo();
  return result;
}

function notArea(path: string, why: string, spec: ResourceSpec): DiskError {
  return new DiskError(DiskErrorCode.notArea, path, `is not a valid lease area of resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)} (${why}); it is left untouched`);
}

/**
 * The area of an existing lease file, checked in full: every record of a
 * resource area of this lockspace and resource. Undefined when the name does
 * not exist.
 */
async function existingArea(path: string, wanted: ResourceSpec, step: Step, ioTimeoutMs: number): Promise<ResourceSpec | undefined> {
  let info;
  try {
    info = await step(path, 'lstat', () => lstat(path));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioFailure(path, 'lstat', error);
  }
  if (info.isSymbolicLink()) throw notArea(path, 'a symbolic link', wanted);
  if (!info.isFile()) throw notArea(path, 'not a regular file', wanted);
  try {
    const area = await withLeaseFile(path, { writable: false, noFollow: true, ioTimeoutMs }, (storage) => readAreaAt(storage, 0));
    const { spec } = area;
    if (spec.kind !== 'resource') throw notArea(path, `it holds lockspace ${JSON.stringify(spec.lockspaceName)}`, wanted);
    if (spec.lockspaceName !== wanted.lockspaceName || spec.resourceName !== wanted.resourceName) {
      throw notArea(path, `it holds resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)}`, wanted);
    }
    const broken = areaErrors(area)[0];
    if (broken !== undefined) throw notArea(path, `${broken.code}: ${broken.message}`, wanted);
    return spec;
  } catch (error) {
    if (error instanceof FormatError) throw notArea(path, `${error.code}: ${error.message}`, wanted);
    throw error;
  }
}

/** Thrown when the temporary name was taken already: that file is someone else's and must not be removed. */
class TemporaryTaken extends Error {}

/** Writes a complete area into the new file `temporary` and makes it durable. */
async function initialiseTemporary(temporary: string, spec: ResourceSpec, step: Step, ioTimeoutMs: number): Promise<void> {
  // create: O_CREAT | O_EXCL, mode 0600, as `init-resource --create`; noFollow: a symlink planted under the name is refused.
  const options: OpenOptions = { writable: true, create: true, noFollow: true, ioTimeoutMs };
  await withLeaseFile(temporary, options, (storage) => initialiseArea(storage, 0, spec, false)).catch((error: unknown) => {
    if (error instanceof StorageError && error.code === StorageErrorCode.open && /EEXIST/.test(error.message)) {
      throw new TemporaryTaken(`${temporary} exists already: ${error.message}`);
    }
    throw error;
  });
  // Every write was O_DSYNC; the fsync makes the file's own metadata durable before any name points at it.
  await syncFile(temporary, step);
}

/**
 * Returns the lease file of `resource` in `directory`, creating it race-free
 * when it does not exist yet. Checks the directory's marker first. Throws
 * DiskError (refusals, deadlines, fs failures), StorageError (direct I/O) or
 * InitRefusal; a temporary file this call made is removed on every path.
 */
export async function ensureAutoLeaseFile(options: AutoLeaseFileOptions): Promise<AutoLeaseFile> {
  const wanted = checkRequest(options);
  const { directory, ioTimeoutMs } = options;
  const { device } = await checkLeaseDirectory(directory, options.lockspace, options);
  const step = stepsOf(options.stuckCalls ?? sharedStuckCalls, options.stepTimeoutMs ?? LEASE_DIRECTORY_STEP_TIMEOUT_MS_DEFAULT);
  const path = autoLeaseFilePath(directory, options.resource);

  const found = await existingArea(path, wanted, step, ioTimeoutMs);
  if (found !== undefined) return { path, created: false, spec: found, lostRace: false };

  const temporary = `${directory}/${AUTO_LEASE_TEMPORARY_PREFIX}${options.resource}-${(options.randomSuffix ?? randomSuffix)()}`;
  try {
    await initialiseTemporary(temporary, wanted, step, ioTimeoutMs);
    await checkOnDirectoryDevice(temporary, device, step);
    const outcome = await linkIntoPlace(temporary, path, step);
    await removeTemporary(temporary, step);
    await syncDirectory(directory, step);
    if (outcome === 'linked') return { path, created: true, spec: wanted, lostRace: false };
    // Another host linked first: its file is complete (it got the name only once it was), check it as any existing file.
    const theirs = await existingArea(path, wanted, step, ioTimeoutMs);
    if (theirs === undefined) throw new DiskError(DiskErrorCode.io, path, 'link reported the name taken, but it no longer exists (removed by someone else?)');
    return { path, created: false, spec: theirs, lostRace: true };
  } catch (error) {
    // A random name someone else holds is theirs: report it, touch nothing.
    if (error instanceof TemporaryTaken) throw new DiskError(DiskErrorCode.io, directory, error.message);
    // Best effort: the error that got us here is the one to report.
    await removeTemporary(temporary, step).catch(() => undefined);
    throw error;
  }
}

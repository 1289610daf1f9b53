import { lstat, stat } from 'node:fs/promises';
import { FormatError, type ResourceSpec } from '../format/index.js';
import { AREA_ALIGNMENT_BYTES, identifyAreaAt } from '../areas/index.js';
import { absolutePathProblem } from '../config/index.js';
import type { LeaseMode } from '../engine/resource-engine.js';
import { deviceNumber, type DirectStorage } from '../storage/index.js';
import { HelperError } from '../daemon/helper-error.js';
import type { StoragePool } from '../daemon/storage-pool.js';

/**
 * Where a VM's lease lives, as root named it at `register`, and the checks
 * that make sure the helper only ever opens an initialised resource area of
 * the named lockspace and resource, strictly below a lease root, reached
 * without a symlink, and that the file opened is the file the path walk saw
 * (SPEC section 1: no VM can make the helper touch anything else).
 */

export interface LeaseLocation {
  readonly lockspace: string;
  readonly resource: string;
  readonly path: string;
  readonly offset: number;
  readonly mode: LeaseMode;
}

/** Each file-system step of the walk has this long (a hung NFS server must not hang a register forever). */
export const PATH_STEP_TIMEOUT_MS = 10_000;

function refuse(code: string, location: LeaseLocation, reason: string): never {
  throw new HelperError(code, 'refused', `lease ${location.lockspace}:${location.resource} at ${location.path}:${location.offset}: ${reason}`);
}

async function withDeadline<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HelperError('LEASE_PATH_TIMEOUT', 'storage', `${what} took longer than ${PATH_STEP_TIMEOUT_MS} ms`)), PATH_STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The lease root the path lies strictly below, or a refusal. */
export function leaseRootOf(location: LeaseLocation, leaseRoots: readonly string[]): string {
  const problem = absolutePathProblem(location.path);
  if (problem !== undefined) refuse('LEASE_PATH', location, problem);
  const root = leaseRoots.find((r) => location.path.startsWith(`${r}/`));
  if (root === undefined) refuse('LEASE_OUTSIDE_ROOTS', location, `the path is not below a lease root (${leaseRoots.join(', ')})`);
  return root;
}

/** Walks from the root to the file with lstat; returns the kernel identity the walk ended at. */
async function walk(location: LeaseLocation, root: string): Promise<string> {
  const rootStat = await withDeadline(`stat ${root}`, stat(root, { bigint: true })).catch((error: unknown) => refuse('LEASE_ROOT_MISSING', location, `lease root ${root}: ${(error as Error).message}`));
  if (!rootStat.isDirectory()) refuse('LEASE_ROOT_MISSING', location, `lease root ${root} is not a directory`);
  const parts = location.path.slice(root.length + 1).split('/');
  let current = root;
  for (const [index, part] of parts.entries()) {
    current = `${current}/${part}`;
    const info = await withDeadline(`lstat ${current}`, lstat(current, { bigint: true })).catch((error: unknown) => refuse('LEASE_MISSING', location, `${current}: ${(error as Error).message}`));
    if (info.isSymbolicLink()) refuse('LEASE_SYMLINK', location, `${current} is a symbolic link (refused below a lease root)`);
    const last = index === parts.length - 1;
    if (!last && !info.isDirectory()) refuse('LEASE_MISSING', location, `${current} is not a directory`);
    if (last && info.isFile()) return `file:${deviceNumber(info.dev)}:${info.ino}`;
    if (last && info.isBlockDevice()) return `block:${deviceNumber(info.rdev)}`;
  }
  return refuse('LEASE_NOT_AREA', location, 'is neither a regular file nor a block device');
}

function checkSpec(location: LeaseLocation, spec: Awaited<ReturnType<typeof identifyAreaAt>>, hostId: number): ResourceSpec {
  if (spec.kind !== 'resource') refuse('LEASE_NOT_AREA', location, `the area there is lockspace ${JSON.stringify(spec.lockspaceName)}, not a resource`);
  if (spec.lockspaceName !== location.lockspace || spec.resourceName !== location.resource) {
    refuse('LEASE_NAME_MISMATCH', location, `the area there is resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)}`);
  }
  if (hostId > spec.hostsMax) refuse('LEASE_HOST_ID', location, `this host's id ${hostId} is outside the area's 1..${spec.hostsMax}`);
  return spec;
}

/**
 * Opens the lease area after every check, reading only. On any refusal the
 * storage is let go again and nothing was written.
 */
export async function openLeaseArea(location: LeaseLocation, leaseRoots: readonly string[], hostId: number, pool: StoragePool): Promise<{ storage: DirectStorage; spec: ResourceSpec }> {
  if (location.offset % AREA_ALIGNMENT_BYTES !== 0) refuse('LEASE_OFFSET', location, `offset ${location.offset} is not a multiple of ${AREA_ALIGNMENT_BYTES}`);
  const walked = await walk(location, leaseRootOf(location, leaseRoots));
  const storage = await pool.acquire(location.path, { noFollow: true });
  try {
    if (storage.info.identity !== walked) refuse('LEASE_PATH_CHANGED', location, `the file opened (${storage.info.identity}) is not the one the path walk found (${walked})`);
    const spec = await identifyAreaAt(storage, location.offset).catch((error: unknown) => {
      if (error instanceof FormatError) refuse('LEASE_NOT_AREA', location, `not an initialised lease area: ${error.message}`);
      throw error;
    });
    return { storage, spec: checkSpec(location, spec, hostId) };
  } catch (error) {
    await pool.release(storage);
    throw error;
  }
}

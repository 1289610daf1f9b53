import { posix } from 'node:path';
import type { DiskFacts, LeaseRootFacts, PathFacts, SharedRootFacts } from '../../policy/disk-facts.js';
import { deviceNumber } from '../storage/index.js';
import { absentAsUndefined, blockIdentities, type SysfsAccess } from './block-identities.js';
import { DiskError, DiskErrorCode, errnoCode } from './errors.js';
import { nodeFactsFs, type FactsFs, type FactsStats } from './facts-fs.js';
import { sharedStuckCalls, type StuckCalls } from './stuck-calls.js';

/**
 * Gathers what the pure policy needs to know about a domain's paths
 * (policy/disk-facts.ts), with a deadline on every file-system call: a path
 * on a hung NFS mount becomes `missing` after `stepTimeoutMs` instead of
 * hanging the helper, and once too many calls hang (StuckCalls) gathering is
 * refused outright with DISK_CALLS_STUCK.
 *
 * Paths are looked at one after the other: a hung mount then costs at most
 * one stuck call per step, not one per disk at once.
 */

export interface GatherOptions {
  /** Deadline of each file-system call (lstat, stat, realpath, each sysfs read). */
  readonly stepTimeoutMs: number;
  /** Where sysfs is mounted; tests point it at a fake tree. */
  readonly sysfsRoot?: string;
  readonly fs?: FactsFs;
  /** Default: the process's shared count (stuck calls hold threads of the one threadpool). */
  readonly stuckCalls?: StuckCalls;
}

/** The roots gathering looks at besides the paths: shared file roots and lease roots, as the host policy writes them. */
export interface RootsToGather {
  readonly shared: readonly string[];
  readonly lease: readonly string[];
}

export const SYSFS_ROOT_DEFAULT = '/sys';
/** Entries of one lease root looked at; a root with more is reported as unknown rather than half-read. */
export const LEASE_ROOT_ENTRIES_MAX = 16384;
/** Block devices and symlinks of one lease root stat()ed for their device number; more is reported as unknown. */
export const LEASE_ROOT_DEVICES_MAX = 256;
/** Directories above a file disk that are stat()ed (to find a lease root bind-mounted above it). */
export const DIRECTORIES_MAX = 64;
/** Paths plus shared roots per call: a domain with more disks than this is refused, not gathered slowly. */
export const GATHER_PATHS_MAX = 512;

class Gatherer {
  private readonly fs: FactsFs;
  private readonly stuckCalls: StuckCalls;
  private readonly sysfsRoot: string;

  constructor(private readonly options: GatherOptions) {
    this.fs = options.fs ?? nodeFactsFs;
    this.stuckCalls = options.stuckCalls ?? sharedStuckCalls;
    this.sysfsRoot = options.sysfsRoot ?? SYSFS_ROOT_DEFAULT;
  }

  private step<T>(subject: string, what: string, call: () => Promise<T>): Promise<T> {
    return this.stuckCalls.run(subject, `${what} ${subject}`, this.options.stepTimeoutMs, call);
  }

  private readonly sysfs: SysfsAccess = {
    text: (path, bytesMax) => absentAsUndefined(this.step(path, 'read', () => this.fs.readText(path, bytesMax + 1))),
    realpath: (path) => absentAsUndefined(this.step(path, 'realpath', () => this.fs.realpath(path))),
    list: (path) => absentAsUndefined(this.step(path, 'readdir', () => this.fs.readdir(path)).then((entries) => entries.map((e) => e.name))),
  };

  async pathFacts(path: string): Promise<PathFacts> {
    if (!path.startsWith('/')) return { kind: 'missing', reason: 'not an absolute path (it would be resolved against the helper\'s working directory)' };
    let info: FactsStats;
    try {
      info = await this.step(path, 'lstat', () => this.fs.lstat(path));
      if (info.isSymbolicLink()) {
        try {
          info = await this.step(path, 'stat', () => this.fs.stat(path));
        } catch (error) {
          if (errnoCode(error) === 'ENOENT') return { kind: 'missing', reason: 'a symbolic link to nothing (stat: ENOENT)' };
          throw error;
        }
      }
    } catch (error) {
      return missing(error);
    }
    try {
      const resolvedPath = await this.step(path, 'realpath', () => this.fs.realpath(path));
      if (info.isFile()) return { kind: 'file', resolvedPath, device: info.dev.toString(10), inode: info.ino.toString(10), links: Number(info.nlink), directories: await this.directoriesAbove(resolvedPath) };
      if (info.isBlockDevice()) {
        const rdev = deviceNumber(info.rdev);
        return { kind: 'block', resolvedPath, rdev, identities: await blockIdentities(this.sysfs, this.sysfsRoot, rdev) };
      }
      return { kind: 'other', resolvedPath, what: whatItIs(info) };
    } catch (error) {
      return missing(error);
    }
  }

  /** `device:inode` of each directory above a resolved path, its parent first; a path deeper than DIRECTORIES_MAX makes the facts unknown. */
  private async directoriesAbove(resolvedPath: string): Promise<string[]> {
    const directories: string[] = [];
    let at = resolvedPath;
    while (at !== '/') {
      at = posix.dirname(at);
      if (directories.length >= DIRECTORIES_MAX) throw new Error(`${resolvedPath} is more than ${DIRECTORIES_MAX} directories deep`);
      const info = await this.step(at, 'stat', () => this.fs.stat(at));
      directories.push(`${info.dev.toString(10)}:${info.ino.toString(10)}`);
    }
    return directories;
  }

  /** Where a lease root resolves and the block devices directly in it (each symlink followed), each call with its deadline. */
  async leaseRoot(root: string): Promise<LeaseRootFacts> {
    let resolvedPath: string;
    let entries: readonly { name: string; isBlockDevice(): boolean; isSymbolicLink(): boolean }[];
    try {
      resolvedPath = await this.step(root, 'realpath', () => this.fs.realpath(root));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { blockDevices: [] };
      return { blockDevices: [], unknown: `it cannot be resolved: ${problem(error)}` };
    }
    let directory: string;
    try {
      const info = await this.step(resolvedPath, 'stat', () => this.fs.stat(resolvedPath));
      directory = `${info.dev.toString(10)}:${info.ino.toString(10)}`;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { resolvedPath, blockDevices: [] };
      return { resolvedPath, blockDevices: [], unknown: `it cannot be inspected: ${problem(error)}` };
    }
    try {
      entries = await this.step(resolvedPath, 'readdir', () => this.fs.readdir(resolvedPath));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return { resolvedPath, directory, blockDevices: [] };
      return { resolvedPath, directory, blockDevices: [], unknown: `its entries cannot be listed: ${problem(error)}` };
    }
    if (entries.length > LEASE_ROOT_ENTRIES_MAX) return { resolvedPath, directory, blockDevices: [], unknown: `it has ${entries.length} entries, more than the ${LEASE_ROOT_ENTRIES_MAX} looked at` };
    const candidates = entries.filter((e) => e.isBlockDevice() || e.isSymbolicLink()).map((e) => `${resolvedPath === '/' ? '' : resolvedPath}/${e.name}`);
    if (candidates.length > LEASE_ROOT_DEVICES_MAX) return { resolvedPath, directory, blockDevices: [], unknown: `it has ${candidates.length} device nodes and symlinks, more than the ${LEASE_ROOT_DEVICES_MAX} looked at` };
    const blockDevices = new Set<string>();
    for (const entry of candidates) {
      try {
        const info = await this.step(entry, 'stat', () => this.fs.stat(entry));
        if (info.isBlockDevice()) blockDevices.add(deviceNumber(info.rdev));
      } catch (error) {
        // A symlink to nothing leads to no device.
        if (errnoCode(error) === 'ENOENT') continue;
        return { resolvedPath, directory, blockDevices: [], unknown: `${entry} cannot be inspected: ${problem(error)}` };
      }
    }
    return { resolvedPath, directory, blockDevices: [...blockDevices].sort() };
  }

  /** Where a shared root resolves, and its device (st_dev). */
  async sharedRoot(path: string): Promise<SharedRootFacts> {
    let resolvedPath: string;
    try {
      resolvedPath = await this.step(path, 'realpath', () => this.fs.realpath(path));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return {};
      return { unknown: `it cannot be resolved: ${problem(error)}` };
    }
    try {
      const info = await this.step(resolvedPath, 'stat', () => this.fs.stat(resolvedPath));
      return { resolvedPath, device: info.dev.toString(10) };
    } catch (error) {
      return { resolvedPath, unknown: `it cannot be inspected: ${problem(error)}` };
    }
  }
}

/** Why a step failed, as one clause; a refusal to start calls at all is thrown on. */
function problem(error: unknown): string {
  if (error instanceof DiskError && error.code === DiskErrorCode.stuck) throw error;
  if (error instanceof DiskError) return error.reason;
  const code = errnoCode(error);
  const message = (error as Error).message;
  return code !== undefined && !message.startsWith(code) ? `${code}: ${message}` : message;
}

/**
 * A failed step: `missing` when nothing is there (ENOENT, ENOTDIR), `unknown`
 * for everything else (a deadline, EIO, a sysfs read that failed), which the
 * policy does not take for "no identity". A refusal to start calls at all is
 * thrown on.
 */
function missing(error: unknown): PathFacts {
  const reason = problem(error);
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing', reason } : { kind: 'unknown', reason };
}

function whatItIs(info: FactsStats): string {
  if (info.isDirectory()) return 'directory';
  if (info.isCharacterDevice()) return 'character device';
  if (info.isSocket()) return 'socket';
  if (info.isFIFO()) return 'fifo';
  return 'unknown file type';
}

/**
 * Facts for each of `paths`, the resolved location of each shared root, and
 * what each lease root resolves to and holds. Rejects only with
 * DISK_CALLS_STUCK (too many calls already hang) or when given more than
 * GATHER_PATHS_MAX paths and roots; every other failure is a fact.
 */
export async function gatherDiskFacts(paths: readonly string[], roots: RootsToGather, options: GatherOptions): Promise<DiskFacts> {
  const sharedRootPaths = roots.shared;
  if (paths.length + sharedRootPaths.length + roots.lease.length > GATHER_PATHS_MAX) {
    throw new DiskError(DiskErrorCode.tooManyPaths, `${paths.length} paths, ${sharedRootPaths.length} shared roots and ${roots.lease.length} lease roots`, `at most ${GATHER_PATHS_MAX} in all are looked at`);
  }
  const gatherer = new Gatherer(options);
  const facts = new Map<string, PathFacts>();
  for (const path of paths) if (!facts.has(path)) facts.set(path, await gatherer.pathFacts(path));
  const sharedRoots = new Map<string, SharedRootFacts>();
  for (const root of sharedRootPaths) if (!sharedRoots.has(root)) sharedRoots.set(root, await gatherer.sharedRoot(root));
  const leaseRoots = new Map<string, LeaseRootFacts>();
  for (const root of roots.lease) if (!leaseRoots.has(root)) leaseRoots.set(root, await gatherer.leaseRoot(root));
  return { paths: facts, sharedRoots, leaseRoots };
}

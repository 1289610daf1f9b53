import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, JsonObjectReader, absolutePathProblem } from '../helper/config/index.js';
import { nameProblem } from '../helper/format/fields.js';

/**
 * The host policy file (SPEC section 6): where lease areas may live, how
 * disk leases are derived from a VM's disks, and what happens when a lease
 * is lost. Parsed key by key; a refusal names the file, the key and why.
 */

/** A directory shared by every host (NFS, a cluster file system), named so every host names it alike. */
export interface SharedFileRoot {
  /** Names the root in disk identities: `file:NAME/relative/path`. */
  readonly name: string;
  /** Where this host mounts it: absolute, normalised. */
  readonly path: string;
}

export interface AutoDiskLeases {
  readonly enabled: boolean;
  /** The lockspace auto disk leases belong to. */
  readonly lockspace: string;
  /** Where auto lease files are created; below a lease root, and carrying a lockspace marker. */
  readonly directory: string;
  /** Refuse a VM with a writable disk that gets no lease. Needs `enabled`. */
  readonly requireForWritableDisks: boolean;
  /** The only places a file disk's identity can be derived from (a local path means nothing on another host). */
  readonly sharedFileRoots: readonly SharedFileRoot[];
  /**
   * Accept a lease directory on a local file system (ext4, xfs, tmpfs, ...).
   * Off by default: such a directory is usually an unmounted mount point, and
   * lease files there are seen by this host alone. For single-host setups.
   */
  readonly allowLocalDirectory: boolean;
}

/** What the supervisor does when its VM's leases are lost. Only `kill` exists: pausing leaves a writer that can resume. */
export type OnLockFailure = 'kill';

export interface HostPolicy {
  readonly file: string;
  /** Absolute, normalised directories; a lease path must lie strictly below one. */
  readonly leaseRoots: readonly string[];
  readonly autoDiskLeases: AutoDiskLeases;
  readonly onLockFailure: OnLockFailure;
  /** The vmlease emulator shim libvirt must start for a VM with leases (`<emulator>` in the domain XML). */
  readonly emulatorShim: string;
}

export const LEASE_ROOTS_MAX = 64;
export const SHARED_FILE_ROOTS_MAX = 64;
export const POLICY_BYTES_MAX = 1024 * 1024;
/** Where `vmlease install-libvirt` puts the emulator shim by default. */
export const EMULATOR_SHIM_DEFAULT = '/usr/local/libexec/vmlease/qemu-shim';

const AUTO_DISK_LEASES_OFF: AutoDiskLeases = { enabled: false, lockspace: '', directory: '', requireForWritableDisks: false, sharedFileRoots: [], allowLocalDirectory: false };

const SHARED_ROOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

function leaseRootsOf(root: JsonObjectReader): string[] {
  const leaseRoots = root.array('leaseRoots', LEASE_ROOTS_MAX, (element) =>
    element.string((value) => absolutePathProblem(value) ?? (value === '/' ? 'the whole file system cannot be a lease root' : undefined)),
  );
  if (leaseRoots.length === 0) root.fail('leaseRoots', 'is empty: no lease could ever be registered');
  return leaseRoots;
}

function sharedFileRootsOf(auto: JsonObjectReader): SharedFileRoot[] {
  if (!auto.has('sharedFileRoots')) return [];
  const roots = auto.array('sharedFileRoots', SHARED_FILE_ROOTS_MAX, (element) => {
    const entry = element.object();
    const name = entry.string('name', (v) => (SHARED_ROOT_NAME.test(v) ? undefined : `${JSON.stringify(v)} is not 1..32 letters, digits, '.', '_' or '-' starting with a letter or digit`));
    const path = entry.string('path', (v) => absolutePathProblem(v) ?? (v === '/' ? 'the whole file system cannot be a shared root' : undefined));
    entry.done();
    return { name, path };
  });
  roots.forEach((r, i) => {
    if (roots.findIndex((o) => o.name === r.name) !== i) auto.fail(`sharedFileRoots[${i}].name`, `${JSON.stringify(r.name)} is used twice`);
    const nested = roots.find((o, j) => j !== i && (o.path === r.path || r.path.startsWith(`${o.path}/`)));
    if (nested) auto.fail(`sharedFileRoots[${i}].path`, `${r.path} overlaps shared root ${JSON.stringify(nested.name)} (${nested.path}): a file would have two identities`);
  });
  return roots;
}

function autoDiskLeasesOf(root: JsonObjectReader, leaseRoots: readonly string[]): AutoDiskLeases {
  if (!root.has('autoDiskLeases')) return AUTO_DISK_LEASES_OFF;
  const auto = root.object('autoDiskLeases');
  const enabled = auto.boolean('enabled', false);
  const requireForWritableDisks = auto.boolean('requireForWritableDisks', false);
  const allowLocalDirectory = auto.boolean('allowLocalDirectory', false);
  if (!enabled) {
    if (requireForWritableDisks) auto.fail('requireForWritableDisks', 'needs "enabled": true (disk leases are what it requires)');
    for (const key of ['lockspace', 'directory', 'sharedFileRoots']) auto.raw(key);
    auto.done();
    return AUTO_DISK_LEASES_OFF;
  }
  const lockspace = auto.string('lockspace', (v) => nameProblem(v));
  const directory = auto.string('directory', (v) => absolutePathProblem(v) ?? (leaseRoots.some((r) => v.startsWith(`${r}/`)) ? undefined : `${v} is not below a lease root (${leaseRoots.join(', ')})`));
  const sharedFileRoots = sharedFileRootsOf(auto);
  auto.done();
  return { enabled, lockspace, directory, requireForWritableDisks, sharedFileRoots, allowLocalDirectory };
}

export function parseHostPolicy(file: string, document: unknown): HostPolicy {
  const root = JsonObjectReader.root(file, document);
  const leaseRoots = leaseRootsOf(root);
  const autoDiskLeases = autoDiskLeasesOf(root, leaseRoots);
  const onLockFailure = root.string('onLockFailure', (v) => (v === 'kill' ? undefined : `${JSON.stringify(v)} is not supported: only "kill" (a paused VM could resume writing after another host took its lease)`), 'kill') as OnLockFailure;
  const emulatorShim = root.string('emulatorShim', absolutePathProblem, EMULATOR_SHIM_DEFAULT);
  root.done();
  return { file, leaseRoots, autoDiskLeases, onLockFailure, emulatorShim };
}

/** Reads and parses the host policy file (the one I/O of this module; everything else in policy/ is pure). */
export function loadHostPolicy(path: string): HostPolicy {
  const file = resolve(path);
  let document: unknown;
  try {
    const bytes = readFileSync(file);
    if (bytes.byteLength > POLICY_BYTES_MAX) throw new ConfigError(file, '', `is ${bytes.byteLength} bytes, at most ${POLICY_BYTES_MAX} are allowed`);
    document = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, '', `cannot be read as JSON: ${(error as Error).message}`);
  }
  return parseHostPolicy(file, document);
}

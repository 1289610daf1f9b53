import { statfs } from 'node:fs/promises';
import { DiskError, DiskErrorCode } from './errors.js';
import { ioFailure } from './link-into-place.js';
import type { Step } from './stuck-calls.js';

/**
 * Whether a lease directory lies on a local file system, by statfs(2)'s
 * f_type magic number (linux/magic.h). A lease directory must be seen by
 * every host; a local one is what an NFS mount point turns into when the
 * mount is missing, and a marker copied or written there (rsync, or
 * init-lease-directory run before the mount) must not make it usable.
 *
 * This is a list of known local types, not of known shared ones: an unknown
 * type (a cluster file system, FUSE) is accepted, as its marker then says.
 */

/** f_type magic numbers of local file systems, with their names. */
export const LOCAL_FILE_SYSTEM_TYPES: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext2/ext3/ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x858458f6, 'ramfs'],
  [0xf2f52010, 'f2fs'],
  [0x2fc12fc1, 'zfs'],
  [0x3153464a, 'jfs'],
  [0x52654973, 'reiserfs'],
  [0xca451a4e, 'bcachefs'],
  [0x3434, 'nilfs2'],
  [0x4d44, 'vfat/msdos'],
  [0x2011bab0, 'exfat'],
  [0x5346544e, 'ntfs'],
  [0x73717368, 'squashfs'],
  [0x9660, 'iso9660'],
]);

/** The name of a local file system type, or undefined for any other (shared, or unknown). */
export function localFileSystemName(type: number | bigint): string | undefined {
  return LOCAL_FILE_SYSTEM_TYPES.get(Number(type));
}

/**
 * Refuses `dir` with LEASE_DIR_LOCAL_FS when statfs says it is on a local
 * file system, unless `allowLocal`. statfs runs with the step's deadline.
 */
export async function checkSharedFileSystem(dir: string, step: Step, allowLocal: boolean): Promise<void> {
  let type: number;
  try {
    type = (await step(dir, 'statfs', () => statfs(dir))).type;
  } catch (error) {
    throw ioFailure(dir, 'statfs of lease directory', error);
  }
  const local = localFileSystemName(type);
  if (local === undefined || allowLocal) return;
  throw new DiskError(
    DiskErrorCode.localFileSystem,
    dir,
    `lease directory is on a local file system (${local}, statfs type 0x${type.toString(16)}): is the shared file system mounted? Lease files there would be seen by this host alone; a single-host setup may allow it (policy autoDiskLeases.allowLocalDirectory, init-lease-directory --allow-local-fs)`,
  );
}

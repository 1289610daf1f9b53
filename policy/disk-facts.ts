/**
 * What the caller found out about the paths a domain names, so that the
 * policy can decide without any I/O. The shell (helper/disks) gathers these
 * with deadlines; tests write them by hand. A disk's identity must be the
 * same on every host, so the facts carry the stable names the kernel and
 * storage give a device, never a per-host name like /dev/dm-3.
 */

/** A stable name of a block device, as every host of the cluster sees it. */
export type BlockIdentity =
  /** An LVM logical volume: from the device-mapper uuid `LVM-<vg uuid><lv uuid>` (32 characters each, no dashes). */
  | { readonly kind: 'lvm'; readonly vgUuid: string; readonly lvUuid: string }
  /** A SCSI/NVMe world wide name (`/sys/block/X/device/wwid` or `wwn-*` in /dev/disk/by-id). */
  | { readonly kind: 'wwn'; readonly value: string }
  /** A device serial (virtio-blk, NVMe, ATA) as the device reports it. */
  | { readonly kind: 'serial'; readonly value: string }
  /** A loop device: the file behind it, symlinks resolved on this host (a file identity then applies). */
  | { readonly kind: 'loop'; readonly backingFile: string }
  /** Partition NUMBER of a whole device with its own identity. */
  | { readonly kind: 'partition'; readonly of: BlockIdentity; readonly number: number };

export type PathFacts =
  /** Nothing is there (ENOENT, ENOTDIR, a symlink to nothing): a structural fact. */
  | { readonly kind: 'missing'; readonly reason: string }
  /** What is there could not be found out: a call did not answer before its deadline, an I/O error, a sysfs read that failed. */
  | { readonly kind: 'unknown'; readonly reason: string }
  /**
   * A regular file; resolvedPath is realpath() on this host, links its hard link count (st_nlink),
   * directories the `device:inode` of each directory above resolvedPath, its parent first, `/` last.
   */
  | { readonly kind: 'file'; readonly resolvedPath: string; readonly device: string; readonly inode: string; readonly links: number; readonly directories: readonly string[] }
  /** A block device; `identities` lists every stable name found, best first (empty: none). */
  | { readonly kind: 'block'; readonly resolvedPath: string; readonly rdev: string; readonly identities: readonly BlockIdentity[] }
  /** A directory, socket, FIFO, character device... never a disk image. */
  | { readonly kind: 'other'; readonly resolvedPath: string; readonly what: string };

/** What is at a shared file root on this host (policy `autoDiskLeases.sharedFileRoots`). */
export interface SharedRootFacts {
  /** realpath() of the root on this host; undefined when nothing is there (ENOENT) or it is unknown. */
  readonly resolvedPath?: string;
  /** st_dev of the resolved root, as PathFacts' `device`: a file on another device is on a file system mounted inside the share. */
  readonly device?: string;
  /** Set when the root could not be looked at (a deadline, an I/O error). */
  readonly unknown?: string;
}

/** What is at a lease root on this host (policy `leaseRoots`). */
export interface LeaseRootFacts {
  /** realpath() of the root on this host; undefined when nothing is there (ENOENT). */
  readonly resolvedPath?: string;
  /** `device:inode` of the resolved root: a file below it through another mount (a bind mount) has it among its directories. */
  readonly directory?: string;
  /** rdev ("major:minor") of each block device directly in the resolved root (symlinks followed, not recursive). */
  readonly blockDevices: readonly string[];
  /** Set when the root could not be looked at (a deadline, an I/O error, too many entries): what is in it is unknown. */
  readonly unknown?: string;
}

export interface DiskFacts {
  /** Facts for each path the policy asked about (pathsToInspect), keyed by the path as written. */
  readonly paths: ReadonlyMap<string, PathFacts>;
  /** Each shared file root (by its path as in the policy): where it resolves on this host and on which device. */
  readonly sharedRoots: ReadonlyMap<string, SharedRootFacts>;
  /** Each lease root (as in the policy): where it resolves and which block devices it holds. */
  readonly leaseRoots: ReadonlyMap<string, LeaseRootFacts>;
}

/**
 * Expected failures of the disk shell (facts, lease directories, auto lease
 * files), with stable codes that tests and scripts match on, and a kind the
 * command line maps to its exit status (refused 4, storage 5, error 1).
 */
export const DiskErrorCode = {
  /** Too many file-system calls of earlier steps are still unanswered (a hung mount): no new ones are started. */
  stuck: 'DISK_CALLS_STUCK',
  /** One file-system step did not answer before its deadline (it may still complete later). */
  stepTimeout: 'DISK_STEP_TIMEOUT',
  /** A file-system call failed for a reason other than the refusals below (errno's code in the message). */
  io: 'DISK_IO',
  /** More paths than one gathering looks at. */
  tooManyPaths: 'DISK_TOO_MANY_PATHS',
  /** A lockspace or resource name that cannot be used (empty, too long, not printable, not a file name). */
  badName: 'DISK_BAD_NAME',
  /** The lease directory path is not absolute and normalised. */
  dirPath: 'LEASE_DIR_PATH',
  /** The lease directory does not exist. */
  dirMissing: 'LEASE_DIR_MISSING',
  /** The lease directory is a symbolic link. */
  dirSymlink: 'LEASE_DIR_SYMLINK',
  /** The lease directory path names something other than a directory. */
  dirNotDirectory: 'LEASE_DIR_NOT_DIRECTORY',
  /** The directory is on a local file system (ext4, xfs, tmpfs, ...) and that was not allowed: perhaps an unmounted mount point. */
  localFileSystem: 'LEASE_DIR_LOCAL_FS',
  /** A new file in the directory landed on another device than the directory was checked on (unmounted meanwhile?); it was not linked into place. */
  deviceChanged: 'LEASE_DIR_DEVICE_CHANGED',
  /** The directory carries no marker: perhaps an unmounted mount point, never used as a local directory. */
  noMarker: 'LEASE_DIR_NO_MARKER',
  /** The marker is not exactly what init-lease-directory writes (or not a regular file). */
  markerMalformed: 'LEASE_DIR_MARKER_MALFORMED',
  /** The marker names another lockspace. */
  wrongLockspace: 'LEASE_DIR_WRONG_LOCKSPACE',
  /** An auto lease file exists but is not a valid resource area of that lockspace and resource; it is left untouched. */
  notArea: 'AUTO_LEASE_NOT_AREA',
} as const;

export type DiskErrorCode = (typeof DiskErrorCode)[keyof typeof DiskErrorCode];

/** What the command line makes of an error: refused 4, storage 5, error 1 (as HelperError kinds). */
export type DiskErrorKind = 'refused' | 'storage' | 'error';

const KIND_OF: Record<DiskErrorCode, DiskErrorKind> = {
  DISK_CALLS_STUCK: 'storage',
  DISK_STEP_TIMEOUT: 'storage',
  DISK_IO: 'storage',
  DISK_TOO_MANY_PATHS: 'refused',
  DISK_BAD_NAME: 'error',
  LEASE_DIR_PATH: 'error',
  LEASE_DIR_MISSING: 'refused',
  LEASE_DIR_SYMLINK: 'refused',
  LEASE_DIR_NOT_DIRECTORY: 'refused',
  LEASE_DIR_LOCAL_FS: 'refused',
  LEASE_DIR_DEVICE_CHANGED: 'refused',
  LEASE_DIR_NO_MARKER: 'refused',
  LEASE_DIR_MARKER_MALFORMED: 'refused',
  LEASE_DIR_WRONG_LOCKSPACE: 'refused',
  AUTO_LEASE_NOT_AREA: 'refused',
};

export class DiskError extends Error {
  override readonly name = 'DiskError';
  readonly kind: DiskErrorKind;

  constructor(
    readonly code: DiskErrorCode,
    /** The path concerned. */
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`${subject}: ${reason}`);
    this.kind = KIND_OF[code];
  }
}

/** errno's code of a Node fs error ('ENOENT'...), or undefined for anything else. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

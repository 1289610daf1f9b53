import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';

/**
 * The file-system calls fact gathering makes, passed in so tests can give a
 * path whose stat never answers (a hung NFS mount) without hanging a mount.
 */

/** What gathering needs of a stat result (Node's BigIntStats has all of it). */
export interface FactsStats {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly rdev: bigint;
  readonly nlink: bigint;
  isFile(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}

/** A directory entry as readdir({ withFileTypes: true }) gives it (the type from the directory, no stat). */
export interface FactsDirEntry {
  readonly name: string;
  isBlockDevice(): boolean;
  isSymbolicLink(): boolean;
}

export interface FactsFs {
  lstat(path: string): Promise<FactsStats>;
  stat(path: string): Promise<FactsStats>;
  realpath(path: string): Promise<string>;
  /** The entries of a directory (lease roots are looked into for block devices). */
  readdir(path: string): Promise<readonly FactsDirEntry[]>;
  /** At most `bytesMax` bytes of a small file (sysfs attributes) as UTF-8; rejects as fs does (ENOENT when absent). */
  readText(path: string, bytesMax: number): Promise<string>;
}

async function readText(path: string, bytesMax: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(bytesMax);
    const { bytesRead } = await handle.read(buffer, 0, bytesMax, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

export const nodeFactsFs: FactsFs = {
  lstat: (path) => lstat(path, { bigint: true }),
  stat: (path) => stat(path, { bigint: true }),
  realpath: (path) => realpath(path),
  readdir: (path) => readdir(path, { withFileTypes: true }),
  readText,
};

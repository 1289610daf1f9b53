import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLeaseDirectory, DiskError, initLeaseDirectory, LEASE_DIRECTORY_MARKER, localFileSystemName, markerText, parseMarker } from '../../dist/helper/disks/index.js';
import { workDir } from '../support/tmp.js';

/** The tests run on ext4 or tmpfs: a local file system, refused unless allowed. */
const LOCAL = { allowLocalFileSystem: true } as const;
const dir = workDir('disks-dir');
afterAll(() => dir.remove());
let count = 0;
function freshDir(): string {
  const path = join(dir.path, `d${++count}`);
  mkdirSync(path);
  return path;
}

async function diskError(promise: Promise<unknown>): Promise<DiskError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DiskError);
  return error as DiskError;
}

describe('the lease directory marker', () => {
  it('is one exact JSON line', () => {
    expect(markerText('cluster')).toBe('{"format":"vmlease-lease-directory","version":1,"lockspace":"cluster"}\n');
    expect(parseMarker(markerText('cluster'), '/m')).toBe('cluster');
  });

  it.each([
    ['{"format":"vmlease-lease-directory","version":1,"lockspace":"cluster"}', 'is not in the exact marker format'],
    ['{"format":"vmlease-lease-directory", "version":1,"lockspace":"cluster"}\n', 'is not in the exact marker format'],
    ['{"format":"vmlease-lease-directory","version":2,"lockspace":"cluster"}\n', 'is not in the exact marker format'],
    ['{"format":"vmlease-lease-directory","version":1,"lockspace":"cluster","extra":1}\n', 'is not in the exact marker format'],
    ['{"format":"vmlease-lease-directory","version":1,"lockspace":""}\n', 'names lockspace "", which is empty'],
    ['{"version":1}\n', 'has no "lockspace" string'],
    ['', 'is not JSON (0 bytes)'],
  ])('refuses %j', (text, why) => {
    expect(() => parseMarker(text, '/d/m')).toThrow(`/d/m: ${why}`);
  });
});

describe('initLeaseDirectory', () => {
  it('writes the marker with mode 0644, exactly once, and accepts it again for the same lockspace', async () => {
    const path = freshDir();
    expect(await initLeaseDirectory(path, 'cluster', LOCAL)).toEqual({ markerPath: join(path, LEASE_DIRECTORY_MARKER), created: true });
    const marker = join(path, LEASE_DIRECTORY_MARKER);
    expect(readFileSync(marker, 'utf8')).toBe(markerText('cluster'));
    expect(statSync(marker).mode & 0o7777).toBe(0o644);
    // No temporary file is left behind.
    expect(readdirSync(path)).toEqual([LEASE_DIRECTORY_MARKER]);
    expect(await initLeaseDirectory(path, 'cluster', LOCAL)).toEqual({ markerPath: marker, created: false });
    expect(await checkLeaseDirectory(path, 'cluster', LOCAL)).toEqual({ path, lockspace: 'cluster', device: statSync(path, { bigint: true }).dev });
  });

  it('keeps the mode 0644 under a restrictive umask', async () => {
    const path = freshDir();
    const previous = process.umask(0o077);
    try {
      await initLeaseDirectory(path, 'cluster', LOCAL);
    } finally {
      process.umask(previous);
    }
    expect(statSync(join(path, LEASE_DIRECTORY_MARKER)).mode & 0o7777).toBe(0o644);
  });

  it("refuses a directory marked for another lockspace and leaves the marker as it was", async () => {
    const path = freshDir();
    await initLeaseDirectory(path, 'alpha', LOCAL);
    const error = await diskError(initLeaseDirectory(path, 'beta', LOCAL));
    expect(error).toMatchObject({ code: 'LEASE_DIR_WRONG_LOCKSPACE', kind: 'refused' });
    expect(error.message).toBe(`${path}: lease directory belongs to lockspace "alpha" (${path}/${LEASE_DIRECTORY_MARKER}), not "beta"`);
    expect(readFileSync(join(path, LEASE_DIRECTORY_MARKER), 'utf8')).toBe(markerText('alpha'));
  });

  it('never creates the directory itself (it could be an unmounted mount point)', async () => {
    const path = join(dir.path, 'not-there');
    const error = await diskError(initLeaseDirectory(path, 'cluster', LOCAL));
    expect(error).toMatchObject({ code: 'LEASE_DIR_MISSING', message: `${path}: lease directory does not exist` });
    expect(() => statSync(path)).toThrow(/ENOENT/);
  });

  it('refuses bad names and paths before touching anything', async () => {
    expect(await diskError(initLeaseDirectory('relative/dir', 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_PATH', kind: 'error' });
    expect(await diskError(initLeaseDirectory(`${dir.path}/x/../y`, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_PATH' });
    expect(await diskError(initLeaseDirectory(freshDir(), 'has space', LOCAL))).toMatchObject({ code: 'DISK_BAD_NAME', message: expect.stringContaining('lockspace name "has space" has a character outside printable ASCII') });
  });
});

describe('a lease directory on a local file system', () => {
  const LOCAL_MESSAGE = /^(.*): lease directory is on a local file system \((ext2\/ext3\/ext4|xfs|btrfs|tmpfs|overlayfs), statfs type 0x[0-9a-f]+\): is the shared file system mounted\? Lease files there would be seen by this host alone; a single-host setup may allow it \(policy autoDiskLeases.allowLocalDirectory, init-lease-directory --allow-local-fs\)$/;

  it('is not marked unless allowed, and nothing is written', async () => {
    const path = freshDir();
    const error = await diskError(initLeaseDirectory(path, 'cluster'));
    expect(error).toMatchObject({ code: 'LEASE_DIR_LOCAL_FS', kind: 'refused', subject: path });
    expect(LOCAL_MESSAGE.exec(error.message)?.[1]).toBe(path);
    expect(readdirSync(path)).toEqual([]);
  });

  it('is refused even with a valid marker (written before the mount, or copied), and accepted when allowed', async () => {
    const path = freshDir();
    await initLeaseDirectory(path, 'cluster', LOCAL);
    const error = await diskError(checkLeaseDirectory(path, 'cluster'));
    expect(error).toMatchObject({ code: 'LEASE_DIR_LOCAL_FS', kind: 'refused', subject: path });
    expect(LOCAL_MESSAGE.exec(error.message)?.[1]).toBe(path);
    expect(await diskError(checkLeaseDirectory(path, 'cluster', { allowLocalFileSystem: false }))).toMatchObject({ code: 'LEASE_DIR_LOCAL_FS' });
    expect(await checkLeaseDirectory(path, 'cluster', LOCAL)).toMatchObject({ path, lockspace: 'cluster' });
  });

  it('is told apart by the statfs magic: local types by name, shared and unknown ones not', () => {
    expect(localFileSystemName(0xef53)).toBe('ext2/ext3/ext4');
    expect(localFileSystemName(0x58465342)).toBe('xfs');
    expect(localFileSystemName(0x9123683e)).toBe('btrfs');
    expect(localFileSystemName(0x01021994)).toBe('tmpfs');
    expect(localFileSystemName(0x794c7630)).toBe('overlayfs');
    expect(localFileSystemName(0x858458f6)).toBe('ramfs');
    expect(localFileSystemName(0xf2f52010n)).toBe('f2fs');
    // NFS, CIFS, SMB2, Ceph, GFS2, OCFS2, FUSE: not local.
    for (const shared of [0x6969, 0xff534d42, 0xfe534d42, 0x00c36400, 0x01161970, 0x7461636f, 0x65735546]) expect(localFileSystemName(shared)).toBeUndefined();
  });
});

describe('a new file landing on another device than the checked directory', () => {
  it('is not linked into place as the marker, and is removed (LEASE_DIR_DEVICE_CHANGED)', async () => {
    // The temporary name's parent is a symlink to another file system: the file lands there,
    // as it would on the local disk after the share was unmounted between check and link.
    const path = freshDir();
    const elsewhere = mkdtempSync('/dev/shm/vmlease-elsewhere-');
    try {
      expect(statSync(elsewhere).dev).not.toBe(statSync(path).dev);
      symlinkSync(elsewhere, join(path, `${LEASE_DIRECTORY_MARKER}.tmp-x`));
      const error = await diskError(initLeaseDirectory(path, 'cluster', { ...LOCAL, randomSuffix: () => 'x/f' }));
      expect(error).toMatchObject({ code: 'LEASE_DIR_DEVICE_CHANGED', kind: 'refused', subject: `${path}/${LEASE_DIRECTORY_MARKER}.tmp-x/f` });
      expect(error.message).toMatch(/: is on device \d+, but the lease directory was on device \d+ when it was checked \(was the shared file system unmounted meanwhile\?\); it is not linked into place$/);
      expect(readdirSync(path)).toEqual([`${LEASE_DIRECTORY_MARKER}.tmp-x`]);
      expect(readdirSync(elsewhere)).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('checkLeaseDirectory', () => {
  it('refuses a directory without a marker (an unmounted NFS mount point looks just like that)', async () => {
    const path = freshDir();
    const error = await diskError(checkLeaseDirectory(path, 'cluster', LOCAL));
    expect(error).toMatchObject({ code: 'LEASE_DIR_NO_MARKER', kind: 'refused' });
    expect(error.message).toBe(
      `${path}: lease directory has no marker ${LEASE_DIRECTORY_MARKER} (is the shared file system mounted? a directory without it is never used; mark it once with 'vmlease init-lease-directory cluster:${path}')`,
    );
  });

  it('refuses a marker of another lockspace', async () => {
    const path = freshDir();
    await initLeaseDirectory(path, 'alpha', LOCAL);
    expect(await diskError(checkLeaseDirectory(path, 'beta', LOCAL))).toMatchObject({ code: 'LEASE_DIR_WRONG_LOCKSPACE' });
  });

  it('refuses a symlink to a lease directory, and a path that is not a directory', async () => {
    const path = freshDir();
    await initLeaseDirectory(path, 'cluster', LOCAL);
    const link = join(dir.path, `link-${count}`);
    symlinkSync(path, link);
    expect(await diskError(checkLeaseDirectory(link, 'cluster', LOCAL))).toMatchObject({
      code: 'LEASE_DIR_SYMLINK',
      message: `${link}: lease directory is a symbolic link (refused: name the directory itself)`,
    });
    const file = join(path, 'plain');
    writeFileSync(file, '');
    expect(await diskError(checkLeaseDirectory(file, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_NOT_DIRECTORY', message: `${file}: lease directory is not a directory` });
  });

  it('refuses a marker that is a symlink, a FIFO, too long or not exact', async () => {
    const target = freshDir();
    await initLeaseDirectory(target, 'cluster', LOCAL);
    const viaLink = freshDir();
    symlinkSync(join(target, LEASE_DIRECTORY_MARKER), join(viaLink, LEASE_DIRECTORY_MARKER));
    expect(await diskError(checkLeaseDirectory(viaLink, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_MARKER_MALFORMED', message: `${viaLink}/${LEASE_DIRECTORY_MARKER}: marker is a symbolic link` });

    const fifo = freshDir();
    execFileSync('mkfifo', [join(fifo, LEASE_DIRECTORY_MARKER)]);
    expect(await diskError(checkLeaseDirectory(fifo, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_MARKER_MALFORMED', message: `${fifo}/${LEASE_DIRECTORY_MARKER}: marker is not a regular file` });

    const long = freshDir();
    writeFileSync(join(long, LEASE_DIRECTORY_MARKER), `${markerText('cluster')}${' '.repeat(300)}`);
    expect(await diskError(checkLeaseDirectory(long, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_MARKER_MALFORMED', message: `${long}/${LEASE_DIRECTORY_MARKER}: marker is longer than 256 bytes` });

    const loose = freshDir();
    writeFileSync(join(loose, LEASE_DIRECTORY_MARKER), '{ "format": "vmlease-lease-directory", "version": 1, "lockspace": "cluster" }\n');
    expect(await diskError(checkLeaseDirectory(loose, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_MARKER_MALFORMED' });
    // initLeaseDirectory does not "repair" a malformed marker either.
    expect(await diskError(initLeaseDirectory(loose, 'cluster', LOCAL))).toMatchObject({ code: 'LEASE_DIR_MARKER_MALFORMED' });
  });
});

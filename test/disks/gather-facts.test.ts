import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatherDiskFacts, nodeFactsFs, StuckCalls, type FactsFs, type FactsStats } from '../../dist/helper/disks/index.js';
import { attachLoopDevice } from '../../dist/bench/support/loop-device.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('disks-facts');
afterAll(() => dir.remove());

const NO_ROOTS = { shared: [], lease: [] } as const;

/** `device:inode` of each directory above PATH, its parent first. */
function directoriesAbove(path: string): string[] {
  const directories: string[] = [];
  for (let at = dirname(path); ; at = dirname(at)) {
    const info = statSync(at, { bigint: true });
    directories.push(`${info.dev}:${info.ino}`);
    if (at === '/') return directories;
  }
}
const VG = 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF';
const LV = 'Zy8xW6vU4tS2rQ0pO8nM6lK4jI2hG0fE';

/** A block device node's stat for the fake tree (Linux dev_t with major < 4096, minor < 256). */
function blockStats(major: number, minor: number): FactsStats {
  const no = (): boolean => false;
  return { dev: 5n, ino: 1n, nlink: 1n, rdev: BigInt((major << 8) | minor), isFile: no, isBlockDevice: () => true, isCharacterDevice: no, isDirectory: no, isSymbolicLink: no, isFIFO: no, isSocket: no };
}

/** Answers stat for the fake /dev names in `devices`; sysfs reads and everything else go to the real file system. */
function fakeDevices(devices: Record<string, [number, number]>): FactsFs {
  const known = (path: string): FactsStats | undefined => (devices[path] ? blockStats(...devices[path]) : undefined);
  return {
    lstat: (path) => (known(path) ? Promise.resolve(known(path)!) : nodeFactsFs.lstat(path)),
    stat: (path) => (known(path) ? Promise.resolve(known(path)!) : nodeFactsFs.stat(path)),
    realpath: (path) => (known(path) ? Promise.resolve(path) : nodeFactsFs.realpath(path)),
    readdir: nodeFactsFs.readdir,
    readText: nodeFactsFs.readText,
  };
}

/** A sysfs tree as the kernel lays it out: dev/block/M:m are symlinks into devices/, partitions are subdirectories of their disk. */
function fakeSysfs(root: string, devices: Record<string, { dir: string; files: Record<string, string> }>): void {
  mkdirSync(join(root, 'dev/block'), { recursive: true });
  for (const [number, { dir: deviceDir, files }] of Object.entries(devices)) {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(root, deviceDir, name, '..'), { recursive: true });
      writeFileSync(join(root, deviceDir, name), content);
    }
    mkdirSync(join(root, deviceDir), { recursive: true });
    symlinkSync(`../../${deviceDir}`, join(root, 'dev/block', number));
  }
}

describe('gatherDiskFacts: block identities from sysfs', () => {
  const sysfsRoot = join(dir.path, 'sys');
  const backing = join(dir.path, 'images/disk.img');
  mkdirSync(join(dir.path, 'images'));
  writeFileSync(backing, '');
  symlinkSync(join(dir.path, 'images'), join(dir.path, 'images-link'));
  const SDB = 'devices/pci0000:00/0000:00:10.0/host2/target2:0:0/2:0:0:0/block/sdb';
  fakeSysfs(sysfsRoot, {
    '253:3': { dir: 'devices/virtual/block/dm-3', files: { 'dm/uuid': `LVM-${VG}${LV}\n` } },
    '253:4': { dir: 'devices/virtual/block/dm-4', files: { 'dm/uuid': `LVM-${VG}${LV}-real\n` } },
    '8:16': { dir: SDB, files: { 'device/wwid': 'naa.600508b1001c4d5e6f7a8b9c0d1e2f30\n', 'device/serial': ' 3600508b1001c \n' } },
    '8:17': { dir: `${SDB}/sdb1`, files: { partition: '1\n' } },
    '259:0': { dir: 'devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1', files: { wwid: 'eui.0025388b91b2c3d4\n', 'device/serial': 'S4EWNX0R123456\n' } },
    '252:0': { dir: 'devices/pci0000:00/0000:00:05.0/virtio2/block/vda', files: { serial: 'vm-disk-7\n', 'device/wwid': 'bad\u0001value\n' } },
    '8:80': { dir: 'devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sdf', files: { 'device/wwid': 't10.ATA     QEMU HARDDISK                           QM00001\n' } },
    '7:9': { dir: 'devices/virtual/block/loop9', files: { 'loop/backing_file': `${join(dir.path, 'images-link/disk.img')}\n` } },
    '7:10': { dir: 'devices/virtual/block/loop10', files: { 'loop/backing_file': `${join(dir.path, 'images/gone.img')} (deleted)\n` } },
    '7:11': { dir: 'devices/virtual/block/loop11', files: { 'loop/backing_file': `/${'x'.repeat(5000)}\n` } },
  });
  const devices: Record<string, [number, number]> = {
    '/dev/vg0/lv0': [253, 3],
    '/dev/dm-4': [253, 4],
    '/dev/sdb': [8, 16],
    '/dev/sdb1': [8, 17],
    '/dev/nvme0n1': [259, 0],
    '/dev/vda': [252, 0],
    '/dev/loop9': [7, 9],
    '/dev/loop10': [7, 10],
    '/dev/loop11': [7, 11],
    '/dev/unknown': [1, 77],
    '/dev/sdf': [8, 80],
  };

  it('names a multipath map by the names of its paths when they all agree, and a kpartx map as their partition', async () => {
    const LUN = 'devices/platform/host3/session1/target3:0:0/3:0:0:1/block';
    const WWID = 'naa.60014055f0c1a2b3c4d5e6f708192a3b\n';
    fakeSysfs(sysfsRoot, {
      '8:32': { dir: `${LUN}/sdc`, files: { 'device/wwid': WWID } },
      '8:48': { dir: `${LUN}/sdd`, files: { 'device/wwid': WWID } },
      '8:64': { dir: `${LUN}/sde`, files: { 'device/wwid': 'naa.6001405aaaaaaaaaaaaaaaaaaaaaaaaa\n' } },
      '253:20': { dir: 'devices/virtual/block/dm-20', files: { 'dm/uuid': 'mpath-360014055f0c1a2b3c4d5e6f708192a3b\n' } },
      '253:21': { dir: 'devices/virtual/block/dm-21', files: { 'dm/uuid': 'part1-mpath-360014055f0c1a2b3c4d5e6f708192a3b\n' } },
      '253:22': { dir: 'devices/virtual/block/dm-22', files: { 'dm/uuid': 'mpath-mixed\n' } },
    });
    const slave = (map: string, name: string, target: string): void => {
      mkdirSync(join(sysfsRoot, 'devices/virtual/block', map, 'slaves'), { recursive: true });
      symlinkSync(join(sysfsRoot, target), join(sysfsRoot, 'devices/virtual/block', map, 'slaves', name));
    };
    slave('dm-20', 'sdc', `${LUN}/sdc`);
    slave('dm-20', 'sdd', `${LUN}/sdd`);
    slave('dm-21', 'dm-20', 'devices/virtual/block/dm-20');
    slave('dm-22', 'sdc', `${LUN}/sdc`);
    slave('dm-22', 'sde', `${LUN}/sde`);
    const maps: Record<string, [number, number]> = { '/dev/mapper/mpatha': [253, 20], '/dev/mapper/mpatha1': [253, 21], '/dev/mapper/mixed': [253, 22], '/dev/sdc': [8, 32] };
    const facts = await gatherDiskFacts(Object.keys(maps), NO_ROOTS, { stepTimeoutMs: 5000, sysfsRoot, fs: fakeDevices(maps), stuckCalls: new StuckCalls(4) });
    const wwn = { kind: 'wwn', value: 'naa.60014055f0c1a2b3c4d5e6f708192a3b' };
    expect(Object.fromEntries([...facts.paths].map(([path, f]) => [path, f.kind === 'block' ? f.identities : f]))).toEqual({
      // The map and each of its paths: one disk, one name.
      '/dev/mapper/mpatha': [wwn],
      '/dev/sdc': [wwn],
      '/dev/mapper/mpatha1': [{ kind: 'partition', of: wwn, number: 1 }],
      // Paths that name different LUNs: no name rather than either.
      '/dev/mapper/mixed': [],
    });
  });

  it('names each device by every stable name sysfs gives, best first', async () => {
    const facts = await gatherDiskFacts(Object.keys(devices), NO_ROOTS, { stepTimeoutMs: 5000, sysfsRoot, fs: fakeDevices(devices), stuckCalls: new StuckCalls(4) });
    const identities = Object.fromEntries([...facts.paths].map(([path, f]) => [path, f.kind === 'block' ? f.identities : f]));
    const wwn = { kind: 'wwn', value: 'naa.600508b1001c4d5e6f7a8b9c0d1e2f30' };
    const serial = { kind: 'serial', value: '3600508b1001c' };
    expect(identities).toEqual({
      '/dev/vg0/lv0': [{ kind: 'lvm', vgUuid: VG, lvUuid: LV }],
      // An LVM layer device (-real, -cow) is not a volume: no LVM name.
      '/dev/dm-4': [],
      '/dev/sdb': [wwn, serial],
      '/dev/sdb1': [
        { kind: 'partition', of: wwn, number: 1 },
        { kind: 'partition', of: serial, number: 1 },
      ],
      '/dev/nvme0n1': [
        { kind: 'wwn', value: 'eui.0025388b91b2c3d4' },
        { kind: 'serial', value: 'S4EWNX0R123456' },
      ],
      // A value with a control character is not a name.
      '/dev/vda': [{ kind: 'serial', value: 'vm-disk-7' }],
      '/dev/loop9': [{ kind: 'loop', backingFile: realpathSync(backing) }],
      // The backing file is deleted: its old name may belong to another file by now.
      '/dev/loop10': [],
      // Cut off at 4096 bytes it could name another file: no facts rather than wrong ones.
      '/dev/loop11': { kind: 'unknown', reason: `${sysfsRoot}/dev/block/7:11/loop/backing_file is longer than 4096 bytes` },
      '/dev/unknown': [],
      // Runs of spaces inside a WWN become one _, as the policy normalises it (it used to be kept with its spaces and refused by the policy).
      '/dev/sdf': [{ kind: 'wwn', value: 't10.ATA_QEMU_HARDDISK_QM00001' }],
    });
    expect(facts.paths.get('/dev/sdb')).toEqual({ kind: 'block', resolvedPath: '/dev/sdb', rdev: '8:16', identities: [wwn, serial] });
  });
});

describe('gatherDiskFacts: lease roots', () => {
  it('resolves each lease root and lists the block devices in it, symlinks followed', async () => {
    const root = join(dir.path, 'vg_leases');
    mkdirSync(root);
    symlinkSync('../dm-4', join(root, 'cluster'));
    symlinkSync('../dm-7', join(root, 'app'));
    symlinkSync(join(dir.path, 'nowhere'), join(root, 'dangling'));
    writeFileSync(join(root, 'notes.txt'), '');
    symlinkSync(root, join(dir.path, 'vg_leases-link'));
    // The symlinks' targets do not exist here; the fake answers stat for the names gathering looks at.
    const fs = fakeDevices({ [join(root, 'cluster')]: [253, 4], [join(root, 'app')]: [253, 7] });
    const facts = await gatherDiskFacts([], { shared: [], lease: [join(dir.path, 'vg_leases-link'), join(dir.path, 'no-such-root')] }, { stepTimeoutMs: 5000, fs, stuckCalls: new StuckCalls(4) });
    const rootInfo = statSync(root, { bigint: true });
    expect(Object.fromEntries(facts.leaseRoots)).toStrictEqual({
      [join(dir.path, 'vg_leases-link')]: { resolvedPath: realpathSync(root), directory: `${rootInfo.dev}:${rootInfo.ino}`, blockDevices: ['253:4', '253:7'] },
      [join(dir.path, 'no-such-root')]: { blockDevices: [] },
    });
  });

  it('reports a lease root it cannot look into as unknown, not as empty', async () => {
    const root = join(dir.path, 'eio-root');
    mkdirSync(root);
    const eio = Object.assign(new Error(`EIO: i/o error, scandir '${root}'`), { code: 'EIO' });
    const fs: FactsFs = { ...nodeFactsFs, readdir: () => Promise.reject(eio) };
    const facts = await gatherDiskFacts([], { shared: [], lease: [root] }, { stepTimeoutMs: 5000, fs, stuckCalls: new StuckCalls(4) });
    const rootInfo = statSync(root, { bigint: true });
    expect(facts.leaseRoots.get(root)).toStrictEqual({ resolvedPath: realpathSync(root), directory: `${rootInfo.dev}:${rootInfo.ino}`, blockDevices: [], unknown: `its entries cannot be listed: EIO: i/o error, scandir '${root}'` });
  });

  it('gives a file the device and inode of each directory above it, where a bind-mounted lease root shows', async () => {
    const root = join(dir.path, 'file-root');
    mkdirSync(join(root, 'disks'), { recursive: true });
    writeFileSync(join(root, 'disks/x.lease'), '');
    const facts = await gatherDiskFacts([join(root, 'disks/x.lease')], { shared: [], lease: [root] }, { stepTimeoutMs: 5000 });
    const rootFacts = facts.leaseRoots.get(root);
    const fileFacts = facts.paths.get(join(root, 'disks/x.lease'));
    expect(fileFacts?.kind === 'file' ? fileFacts.directories : fileFacts).toEqual(directoriesAbove(realpathSync(join(root, 'disks/x.lease'))));
    expect(fileFacts?.kind === 'file' ? fileFacts.directories[1] : fileFacts).toBe(rootFacts?.directory);
  });
});

describe('gatherDiskFacts on this host', () => {
  it('gives a loop device identical facts through its /dev name and through a symlink', async () => {
    const loop = attachLoopDevice(join(dir.path, 'loop-backing.img'), 1024 * 1024, 512);
    try {
      const link = join(dir.path, 'loop-link');
      symlinkSync(loop.path, link);
      const facts = await gatherDiskFacts([loop.path, link], NO_ROOTS, { stepTimeoutMs: 5000 });
      const expected = { kind: 'block', resolvedPath: loop.path, rdev: loop.device, identities: [{ kind: 'loop', backingFile: realpathSync(loop.backingFile) }] };
      expect(facts.paths.get(loop.path)).toEqual(expected);
      expect(facts.paths.get(link)).toEqual(expected);
    } finally {
      loop.detach();
    }
  });

  it('gives files, directories, other nodes, missing paths and shared roots their facts', async () => {
    const file = join(dir.path, 'files/disk.qcow2');
    mkdirSync(join(dir.path, 'files'));
    writeFileSync(file, 'image');
    symlinkSync(join(dir.path, 'files'), join(dir.path, 'files-link'));
    symlinkSync(join(dir.path, 'nowhere'), join(dir.path, 'dangling'));
    execFileSync('mkfifo', [join(dir.path, 'fifo')]);
    const viaLink = join(dir.path, 'files-link/disk.qcow2');
    writeFileSync(join(dir.path, 'files/linked.img'), '');
    linkSync(join(dir.path, 'files/linked.img'), join(dir.path, 'files/linked-too.img'));
    const info = statSync(file, { bigint: true });
    const facts = await gatherDiskFacts(
      [file, viaLink, join(dir.path, 'files/linked-too.img'), join(dir.path, 'files'), '/dev/null', join(dir.path, 'fifo'), join(dir.path, 'absent.img'), join(dir.path, 'dangling'), 'relative/disk.img', file],
      { shared: [join(dir.path, 'files-link'), join(dir.path, 'no-root')], lease: [] },
      { stepTimeoutMs: 5000 },
    );
    const fileFacts = { kind: 'file', resolvedPath: realpathSync(file), device: info.dev.toString(), inode: info.ino.toString(), links: 1, directories: directoriesAbove(realpathSync(file)) };
    expect(Object.fromEntries(facts.paths)).toEqual({
      [file]: fileFacts,
      [viaLink]: fileFacts,
      [join(dir.path, 'files/linked-too.img')]: { kind: 'file', resolvedPath: realpathSync(join(dir.path, 'files/linked-too.img')), device: info.dev.toString(), inode: statSync(join(dir.path, 'files/linked.img')).ino.toString(), links: 2, directories: directoriesAbove(realpathSync(file)) },
      [join(dir.path, 'files')]: { kind: 'other', resolvedPath: realpathSync(join(dir.path, 'files')), what: 'directory' },
      '/dev/null': { kind: 'other', resolvedPath: '/dev/null', what: 'character device' },
      [join(dir.path, 'fifo')]: { kind: 'other', resolvedPath: realpathSync(join(dir.path, 'fifo')), what: 'fifo' },
      [join(dir.path, 'absent.img')]: { kind: 'missing', reason: `ENOENT: no such file or directory, lstat '${join(dir.path, 'absent.img')}'` },
      [join(dir.path, 'dangling')]: { kind: 'missing', reason: 'a symbolic link to nothing (stat: ENOENT)' },
      'relative/disk.img': { kind: 'missing', reason: "not an absolute path (it would be resolved against the helper's working directory)" },
    });
    expect(Object.fromEntries(facts.sharedRoots)).toStrictEqual({
      [join(dir.path, 'files-link')]: { resolvedPath: realpathSync(join(dir.path, 'files')), device: statSync(join(dir.path, 'files'), { bigint: true }).dev.toString() },
      [join(dir.path, 'no-root')]: {},
    });
  });

  it('tells a path that is not there (missing) from one that could not be looked at (unknown)', async () => {
    const eio = (path: string): Error => Object.assign(new Error(`EIO: i/o error, lstat '${path}'`), { code: 'EIO' });
    const fs: FactsFs = { ...nodeFactsFs, lstat: (path) => (path.endsWith('/eio.img') ? Promise.reject(eio(path)) : nodeFactsFs.lstat(path)) };
    const facts = await gatherDiskFacts([join(dir.path, 'eio.img'), join(dir.path, 'absent-too.img')], NO_ROOTS, { stepTimeoutMs: 5000, fs, stuckCalls: new StuckCalls(4) });
    expect(Object.fromEntries(facts.paths)).toStrictEqual({
      [join(dir.path, 'eio.img')]: { kind: 'unknown', reason: `EIO: i/o error, lstat '${join(dir.path, 'eio.img')}'` },
      [join(dir.path, 'absent-too.img')]: { kind: 'missing', reason: `ENOENT: no such file or directory, lstat '${join(dir.path, 'absent-too.img')}'` },
    });
  });

  it('refuses more paths than one gathering looks at', async () => {
    const paths = Array.from({ length: 513 }, (_, i) => `/dev/disk${i}`);
    await expect(gatherDiskFacts(paths, NO_ROOTS, { stepTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'DISK_TOO_MANY_PATHS', kind: 'refused' });
  });
});

describe('StuckCalls', () => {
  it('hands a value that arrives after the deadline to disposeLate, and counts the call until then', async () => {
    const stuckCalls = new StuckCalls(3);
    let answer: (value: string) => void = () => undefined;
    const disposed: string[] = [];
    const call = stuckCalls.run('/nfs/f', 'open /nfs/f', 20, () => new Promise<string>((resolve) => (answer = resolve)), (late) => disposed.push(late));
    await expect(call).rejects.toMatchObject({ code: 'DISK_STEP_TIMEOUT', kind: 'storage', message: '/nfs/f: open /nfs/f did not answer within 20 ms (it may still complete)' });
    expect(stuckCalls.outstanding).toBe(1);
    answer('fd 17');
    await new Promise((resolve) => setImmediate(resolve));
    expect(disposed).toEqual(['fd 17']);
    expect(stuckCalls.outstanding).toBe(0);
    expect(await stuckCalls.run('/nfs/f', 'open /nfs/f', 20, () => Promise.resolve('fd 18'), (late) => disposed.push(late))).toBe('fd 18');
    expect(disposed).toEqual(['fd 17']);
  });
});

describe('gatherDiskFacts with a hung mount', () => {
  /** lstat, stat and realpath of paths under /hung never answer until release() is called; they then fail with ENOENT. */
  function hungFs(): { fs: FactsFs; calls: string[]; release(): void } {
    const waiting: (() => void)[] = [];
    const calls: string[] = [];
    const hang = <T>(what: string, path: string, real: () => Promise<T>): Promise<T> => {
      calls.push(`${what} ${path}`);
      if (!path.startsWith('/hung/')) return real();
      return new Promise<T>((_, reject) => waiting.push(() => reject(Object.assign(new Error(`ENOENT: no such file or directory, ${what} '${path}'`), { code: 'ENOENT' }))));
    };
    return {
      calls,
      fs: {
        lstat: (path) => hang('lstat', path, () => nodeFactsFs.lstat(path)),
        stat: (path) => hang('stat', path, () => nodeFactsFs.stat(path)),
        realpath: (path) => hang('realpath', path, () => nodeFactsFs.realpath(path)),
        readdir: (path) => hang('readdir', path, () => nodeFactsFs.readdir(path)),
        readText: nodeFactsFs.readText,
      },
      release: () => waiting.splice(0).forEach((answer) => answer()),
    };
  }

  it('makes an unanswered path missing after its deadline, and refuses to start calls once too many hang', async () => {
    const hung = hungFs();
    const stuckCalls = new StuckCalls(2);
    const file = join(dir.path, 'ok.img');
    writeFileSync(file, '');
    const options = { stepTimeoutMs: 50, fs: hung.fs, stuckCalls };

    const started = Date.now();
    const first = await gatherDiskFacts(['/hung/a.img', file], { shared: ['/hung/root'], lease: [] }, options);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(first.paths.get('/hung/a.img')).toEqual({ kind: 'unknown', reason: 'lstat /hung/a.img did not answer within 50 ms (it may still complete)' });
    expect(first.paths.get(file)).toMatchObject({ kind: 'file', resolvedPath: file });
    // The shared root's realpath hung too: two calls are now stuck, the cap.
    expect(Object.fromEntries(first.sharedRoots)).toStrictEqual({ '/hung/root': { unknown: 'it cannot be resolved: realpath /hung/root did not answer within 50 ms (it may still complete)' } });
    expect(stuckCalls.outstanding).toBe(2);

    const callsBefore = hung.calls.length;
    await expect(gatherDiskFacts([file], NO_ROOTS, options)).rejects.toMatchObject({ code: 'DISK_CALLS_STUCK', kind: 'storage' });
    expect(hung.calls.length).toBe(callsBefore);

    hung.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(stuckCalls.outstanding).toBe(0);
    const after = await gatherDiskFacts([file], NO_ROOTS, options);
    expect(after.paths.get(file)).toMatchObject({ kind: 'file', resolvedPath: file });
  });

  it('stops a gathering midway when its own hung calls reach the cap', async () => {
    const hung = hungFs();
    const stuckCalls = new StuckCalls(1);
    await expect(gatherDiskFacts(['/hung/a.img', '/hung/b.img'], NO_ROOTS, { stepTimeoutMs: 30, fs: hung.fs, stuckCalls })).rejects.toMatchObject({
      code: 'DISK_CALLS_STUCK',
      message: '/hung/b.img: lstat /hung/b.img not started: 1 earlier file-system calls are past their deadline and still unanswered (a hung mount?)',
    });
    expect(hung.calls).toEqual(['lstat /hung/a.img']);
    hung.release();
  });
});

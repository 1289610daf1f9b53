import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  emptyHostBlock,
  identityOf,
  type LockspaceSpec,
  type ResourceSpec,
} from '../../dist/helper/format/index.js';
import { DirectStorage } from '../../dist/helper/storage/index.js';
import { attachLoopDevice } from '../../dist/bench/support/loop-device.js';
import { vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('cli');
afterAll(() => dir.remove());
let fileCount = 0;
const freshFile = (): string => join(dir.path, `lease-${++fileCount}.img`);

const LOCKSPACE: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'cluster', hostsMax: 16, sectorSize: 512, ioTimeoutMs: 1000 };
const RESOURCE: ResourceSpec = { kind: 'resource', lockspaceName: 'cluster', resourceName: 'vm-web1', hostsMax: 16, sectorSize: 512 };

async function writeAt(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const storage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 5000 });
  await storage.write(offset, bytes);
  await storage.close();
}

function dumpJson(target: string): { status: number | null; doc: any } {
  const result = vmlease(['dump', target, '--json']);
  return { status: result.status, doc: JSON.parse(result.stdout) };
}

describe('init-lockspace and init-resource', () => {
  it('initialise areas that dump shows as free and valid', () => {
    const path = freshFile();
    const ls = vmlease(['init-lockspace', `cluster:${path}:0`, '--hosts', '16', '--io-timeout-ms', '1000', '--create']);
    expect(ls.status).toBe(0);
    expect(ls.stdout).toMatch(/initialised lockspace cluster at .*:0: 16 host ids, 512-byte sectors, 8192 bytes, io timeout 1000 ms/);
    const res = vmlease(['init-resource', `cluster:vm-web1:${path}:1048576`, '--hosts', '16']);
    expect(res.status).toBe(0);
    const { status, doc } = dumpJson(`${path}:0:2097152`);
    expect(status).toBe(0);
    expect(doc.errors).toBe(0);
    expect(doc.areas.map((a: any) => [a.offset, a.kind, a.hostsMax, a.bytes])).toEqual([
      [0, 'lockspace', 16, 8192],
      [1048576, 'resource', 16, 17 * 512],
    ]);
    expect(doc.areas[0].ioTimeoutMs).toBe(1000);
    expect(doc.areas[0].hosts).toHaveLength(16);
    expect(doc.areas[0].hosts.every((h: any) => h.ok && h.record.timestampMs === 0)).toBe(true);
    expect(doc.areas[1].leader.record).toMatchObject({ lver: 0, ownerHostId: 0 });
  });

  it('defaults to 2000 host ids and the device sector size, and refuses to overwrite without --force', () => {
    const path = freshFile();
    expect(vmlease(['init-lockspace', `big:${path}:0`, '--create']).stdout).toMatch(/2000 host ids, 512-byte sectors, 1024000 bytes, io timeout 10000 ms/);
    const again = vmlease(['init-lockspace', `other:${path}:0`, '--hosts', '16']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already initialised as lockspace "big" \(2000 host ids, 512-byte sectors\); use --force/);
    const inside = vmlease(['init-resource', `big:r1:${path}:4096`, '--hosts', '4']);
    expect(inside.status).toBe(1);
    expect(inside.stderr).toMatch(/overlaps another lease area|holds lease records/);
    const forced = vmlease(['init-lockspace', `other:${path}:0`, '--hosts', '16', '--force']);
    expect(forced.status).toBe(0);
    expect(forced.stderr).toMatch(/--force: overwrote what was there: .*lockspace "big"/);
    expect(dumpJson(`${path}:0`).doc.areas[0].lockspace).toBe('other');
  });

  it('refuses to overwrite non-zero data that is not a lease area', () => {
    const path = freshFile();
    writeFileSync(path, Buffer.alloc(65536, 0));
    writeFileSync(path, Buffer.from('a filesystem superblock, perhaps'), { flag: 'r+' });
    const refused = vmlease(['init-resource', `ls:r:${path}:0`, '--hosts', '8']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/holds non-zero data that is not a lease area \(first at byte 0 of it\)/);
    expect(readFileSync(path).subarray(0, 6).toString()).toBe('a file');
    expect(vmlease(['init-resource', `ls:r:${path}:0`, '--hosts', '8', '--force']).status).toBe(0);
  });

  it('takes \\: inside a path as a colon', () => {
    const path = join(dir.path, 'with:colon.img');
    const result = vmlease(['init-lockspace', `ls:${path.replace(/:/g, '\\:')}:0`, '--hosts', '4', '--create']);
    expect(result.stdout).toContain(`at ${path.replace(/:/g, '\\:')}:0:`);
    expect(result.status).toBe(0);
    expect(readFileSync(path).byteLength).toBe(2048);
    expect(vmlease(['dump', path.replace(/:/g, '\\:')]).status).toBe(0);
  });

  it.each([
    [['init-lockspace', 'ls:/tmp/x'], /has 2 fields, expected LS:PATH:OFFSET/],
    [['init-lockspace', 'ls:/tmp/x:12ab'], /OFFSET "12ab" is not a decimal number/],
    [['init-lockspace', 'ls:/tmp/x:0', '--hosts', '2001'], /--hosts 2001 is outside 1\.\.2000/],
    [['init-lockspace', 'ls:/tmp/x:0', '--sector-size', '1024'], /--sector-size must be 512 or 4096/],
    [['init-lockspace', 'ls:/tmp/x:0', '--io-timeout-ms', '0'], /--io-timeout-ms 0 is outside/],
    [['init-lockspace', `${'n'.repeat(49)}:/tmp/x:0`], /lockspace name is 49 bytes long, at most 48/],
    [['init-lockspace', 'ls:/tmp/x\\y:0'], /'\\' must be followed by ':' or '\\'/],
    [['init-resource', 'ls:r:/tmp/x:0', '--io-timeout-ms', '5'], /Unknown option '--io-timeout-ms'/],
    [['init-resource', 'ls:bad name:/tmp/x:0'], /resource name has a character outside printable ASCII/],
    [['dump', '/tmp/x:0:1:2'], /has 4 fields/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('refuses bad usage %j with exit 2', (args, message) => {
    const result = vmlease(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('refuses an offset that is not a multiple of 4096, before creating anything', () => {
    const path = freshFile();
    const result = vmlease(['init-lockspace', `ls:${path}:512`, '--hosts', '4', '--create']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/OFFSET 512 is not a multiple of 4096/);
    expect(existsSync(path)).toBe(false);
  });

  it('creates a lease file only with --create, never over an existing one, never under /dev', () => {
    const path = freshFile();
    const missing = vmlease(['init-lockspace', `ls:${path}:0`, '--hosts', '4']);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toMatch(/does not exist \(give --create to create a new lease file/);
    expect(existsSync(path)).toBe(false);
    expect(vmlease(['init-lockspace', `ls:${path}:0`, '--hosts', '4', '--create']).status).toBe(0);
    const again = vmlease(['init-resource', `ls:r:${path}:4096`, '--hosts', '4', '--create']);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists; leave out --create/);
    const dev = vmlease(['init-lockspace', 'ls:/dev/vmlease-typo:0', '--create']);
    expect(dev.status).toBe(2);
    expect(dev.stderr).toMatch(/will not create a regular file under \/dev/);
    expect(existsSync('/dev/vmlease-typo')).toBe(false);
  });

  it('checks for data up to the next 4096-byte boundary after the area', () => {
    const path = freshFile();
    const bytes = Buffer.alloc(8192);
    bytes.write('x', 3000); // after a 4-host resource area at 0 (2560 bytes), in its last 4 KiB page
    writeFileSync(path, bytes);
    const refused = vmlease(['init-resource', `ls:r:${path}:0`, '--hosts', '4', '--sector-size', '512']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/holds non-zero data that is not a lease area \(first at byte 3000 of it\)/);
  });

  it('refuses a block device that another holder opened exclusively', async () => {
    const loop = attachLoopDevice(join(dir.path, 'held.img'), 4 * 1024 * 1024, 512);
    try {
      const holder = await DirectStorage.open(loop.path, { writable: false, exclusiveBlockDevice: true, ioTimeoutMs: 5000 });
      const busy = vmlease(['init-lockspace', `ls:${loop.path}:0`, '--hosts', '4']);
      expect(busy.status).toBe(5);
      expect(busy.stderr).toMatch(/the block device is in use \(mounted, or held by device-mapper/);
      await holder.close();
      expect(vmlease(['init-lockspace', `ls:${loop.path}:0`, '--hosts', '4']).status).toBe(0);
    } finally {
      loop.detach();
    }
  });

  it('uses 4096-byte sectors on a 4096-byte-sector device and refuses 512 there', () => {
    const loop = attachLoopDevice(join(dir.path, 'loop4k.img'), 16 * 1024 * 1024, 4096);
    try {
      expect(vmlease(['init-lockspace', `ls:${loop.path}:0`, '--sector-size', '512', '--hosts', '4']).stderr).toMatch(/sector-size 512 is smaller than the logical block size 4096/);
      expect(vmlease(['init-lockspace', `ls:${loop.path}:0`]).stdout).toMatch(/250 host ids, 4096-byte sectors, 1024000 bytes/);
      expect(vmlease(['init-resource', `ls:r:${loop.path}:1048576`, '--hosts', '2000']).stdout).toMatch(/2000 host ids, 4096-byte sectors, 8196096 bytes/);
      const { status, doc } = dumpJson(`${loop.path}:0:16777216`);
      expect(status).toBe(0);
      expect(doc.areas.map((a: any) => [a.kind, a.sectorSize, a.hostsMax])).toEqual([
        ['lockspace', 4096, 250],
        ['resource', 4096, 2000],
      ]);
      expect(vmlease(['init-resource', `ls:r:${loop.path}:0`, '--hosts', '2000', '--force', '--sector-size', '4096']).status).toBe(0);
      const tooBig = vmlease(['init-resource', `ls:r:${loop.path}:12582912`, '--hosts', '2000']);
      expect(tooBig.status).toBe(5);
      expect(tooBig.stderr).toMatch(/the device has 16777216/);
    } finally {
      loop.detach();
    }
  });
});

describe('dump', () => {
  it('shows owners, generations, timestamps, timeouts and request bits of a lockspace', async () => {
    const path = freshFile();
    expect(vmlease(['init-lockspace', `cluster:${path}:0`, '--hosts', '16', '--io-timeout-ms', '1000', '--create']).status).toBe(0);
    const held = {
      hostId: 3,
      generation: 7,
      timestampMs: 123456,
      ownerIoTimeoutMs: 1000,
      ownerWatchdogFireTimeoutMs: 6000,
      areaIoTimeoutMs: 1000,
      ownerFeatures: 0,
      owner: { hostName: 'host-c', bootId: '0123456789abcdef0123456789abcdef', nonce: 'feedfacecafebeef' },
      requests: [5, 16],
    };
    await writeAt(path, 2 * 512, encodeDeltaRecord(identityOf(LOCKSPACE), held));
    const human = vmlease(['dump', path]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/HOST\s+STATE\s+GENERATION\s+TIMESTAMP_MS\s+OWNER\s+IO_TIMEOUT_MS\s+WATCHDOG_MS\s+REQUESTS/);
    expect(human.stdout).toMatch(/\n3\s+held\s+7\s+123456\s+host-c \(boot 01234567, nonce feedface\)\s+1000\s+6000\s+5,16\n/);
    expect(human.stdout).toMatch(/15 more host ids: free, never joined/);
    await writeAt(path, 4 * 512, encodeDeltaRecord(identityOf(LOCKSPACE), { ...held, hostId: 5, owner: { ...held.owner, hostName: 'evil\nHOST 9' } }));
    expect(vmlease(['dump', path]).stdout).toMatch(/\n5\s+held\s+7\s+123456\s+"evil\\nHOST 9" \(boot/);
    const { doc } = dumpJson(path);
    expect(doc.areas[0].hosts[2].record).toMatchObject({ hostId: 3, generation: 7, owner: { hostName: 'host-c', nonce: 'feedfacecafebeef' }, requests: [5, 16] });
  });

  it('shows the leader and each used host block of a resource', async () => {
    const path = freshFile();
    expect(vmlease(['init-resource', `cluster:vm-web1:${path}:0`, '--hosts', '16', '--create']).status).toBe(0);
    const identity = identityOf(RESOURCE);
    await writeAt(path, 0, encodeLeaderRecord(identity, { lver: 4, ownerHostId: 2, ownerGeneration: 9, timestampMs: 5555, writerHostId: 2, writerGeneration: 9, flags: 0 }));
    await writeAt(path, 2 * 512, encodeHostBlock(identity, { ...emptyHostBlock(2), mbal: 34, bal: 34, inp: { hostId: 2, generation: 9, lver: 4, timestampMs: 5555 }, writerGeneration: 9 }));
    await writeAt(path, 7 * 512, encodeHostBlock(identity, { ...emptyHostBlock(7), shared: true, sharedGeneration: 3, writerGeneration: 3 }));
    const human = vmlease(['dump', path]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/leader: owner host 2 generation 9, lver 4, written by host 2 \(generation 9\)/);
    expect(human.stdout).toMatch(/\n2\s+34\s+34\s+host 2 gen 9 lver 4\s+9\s+no\s+-\n/);
    expect(human.stdout).toMatch(/\n7\s+0\s+0\s+-\s+3\s+yes \(gen 3\)\s+-\n/);
    expect(human.stdout).toMatch(/14 more host blocks: empty/);
  });

  it('names a corrupt record precisely and exits 5', () => {
    const path = freshFile();
    expect(vmlease(['init-lockspace', `cluster:${path}:0`, '--hosts', '16', '--create']).status).toBe(0);
    const bytes = readFileSync(path);
    bytes.writeUInt8(bytes.readUInt8(2 * 512 + 200) ^ 0x40, 2 * 512 + 200); // inside host id 3's record
    writeFileSync(path, bytes);
    const human = vmlease(['dump', path]);
    expect(human.status).toBe(5);
    expect(human.stdout).toMatch(/\n3\s+ERROR\s+FORMAT_CHECKSUM: checksum 0x[0-9a-f]{8} does not match contents/);
    expect(human.stderr).toMatch(/1 record\(s\) in .* failed their checks/);
    const { status, doc } = dumpJson(path);
    expect(status).toBe(5);
    expect(doc.errors).toBe(1);
    expect(doc.areas[0].hosts[2].error.message).toMatch(/lockspace "cluster" at .*:0: host id 3 \(sector 2\): checksum/);
  });

  it('reports a truncated area block by block', () => {
    const path = freshFile();
    expect(vmlease(['init-resource', `cluster:r:${path}:0`, '--hosts', '16', '--create']).status).toBe(0);
    truncateSync(path, 15 * 512);
    const { status, doc } = dumpJson(path);
    expect(status).toBe(5);
    expect(doc.areas[0].hosts.filter((h: any) => !h.ok).map((h: any) => [h.hostId, h.error.code])).toEqual([
      [15, 'FORMAT_TRUNCATED'],
      [16, 'FORMAT_TRUNCATED'],
    ]);
    expect(doc.areas[0].hosts[14].error.message).toMatch(/resource "r" of lockspace "cluster" at .*: host id 15 \(sector 15\): the storage ends/);
  });

  it('says when there is no area, and reports stray sectors in a range', () => {
    const path = freshFile();
    writeFileSync(path, Buffer.alloc(8192));
    const none = vmlease(['dump', `${path}:4096`]);
    expect(none.status).toBe(5);
    expect(none.stdout).toMatch(/FORMAT_UNINITIALISED: area at .*:4096: sector 0: all zero: not initialised/);
    const bytes = Buffer.alloc(8192);
    bytes.write('junk', 1024);
    writeFileSync(path, bytes);
    const { status, doc } = dumpJson(`${path}:0:8192`);
    expect(status).toBe(5);
    expect(doc.problems).toEqual([expect.objectContaining({ offset: 1024, code: 'FORMAT_MAGIC' })]);
  });

  it('fails with a storage error for a missing path', () => {
    const result = vmlease(['dump', join(dir.path, 'nope.img')]);
    expect(result.status).toBe(5);
    expect(result.stderr).toMatch(/^vmlease dump: storage error: STORAGE_OPEN: .*nope\.img: cannot open: ENOENT/);
  });
});

describe('help', () => {
  it('prints the overview to stderr with exit 2 when no command is given', () => {
    const bare = vmlease([]);
    expect(bare.status).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^usage: vmlease COMMAND/);
  });

  it('lists only the commands this build has, and each explains itself', () => {
    const overview = vmlease(['--help']);
    expect(overview.status).toBe(0);
    const listed = [...overview.stdout.matchAll(/^ {2}(\S+) {2}/gm)].map((m) => m[1]);
    expect(listed).toEqual(['init-lockspace', 'init-resource', 'init-lease-directory', 'dump', 'helper', 'register', 'unregister', 'status', 'hosts', 'add-lockspace', 'remove-lockspace', 'supervise', 'policy', 'install-libvirt', 'uninstall-libvirt', 'libvirt-hook']);
    for (const name of listed) {
      const help = vmlease([name!, '--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: vmlease ${name}`));
    }
  });
});

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCluster, startHelper, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { adminSocket } from '../support/threat-kit.js';

/**
 * The admin socket and what root may name at register (SPEC section 1): a
 * non-root peer gets no reply, and a "lease" that is outside the lease
 * roots, reached through a symlink, or not an initialised lease area (a disk
 * image, /etc/passwd) is refused with its code and exit status 4, leaving
 * the file byte for byte as it was.
 */

let cluster: Cluster;
let helper: HelperProcess;
let outside: string;

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 1000 });
  outside = join(cluster.dir, 'outside');
  mkdirSync(outside);
  helper = await startHelper(cluster, 1);
});

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('the admin socket refuses non-root peers', () => {
  const connectAs = (extra: string[]) =>
    spawnSync('setpriv', [...extra, process.execPath, '-e', `
      const { WebSocket } = await import(${JSON.stringify(fileURLToPath(new URL('../../node_modules/ws/wrapper.mjs', import.meta.url)))});
      const ws = new WebSocket('ws+unix://${adminSocket(helper.runDir)}:/');
      const events = [];
      ws.on('open', () => { events.push('open'); ws.send(JSON.stringify({ type: 'status', seq: 1 })); });
      ws.on('message', (m) => events.push('message ' + m));
      ws.on('error', (e) => events.push('error ' + (e.code ?? e.message)));
      ws.on('close', () => { console.log(JSON.stringify(events)); process.exit(0); });
    `, '--input-type=module'], { encoding: 'utf8', timeout: 30_000 });

  it('uid 65534 cannot reach it: the admin directory is 0700', () => {
    const result = connectAs(['--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups']);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual(['error EACCES']);
  });

  it('uid 65534 that gets past the file permissions (CAP_DAC_OVERRIDE) is closed by SO_PEERCRED without a reply', async () => {
    const caps = ['--inh-caps', '+dac_override', '--ambient-caps', '+dac_override'];
    const result = connectAs(['--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups', ...caps]);
    expect(result.stderr).toBe('');
    const events = JSON.parse(result.stdout) as string[];
    expect(events.some((e) => e === 'open' || e.startsWith('message'))).toBe(false);
    expect(events).toEqual([expect.stringMatching(/^error (socket hang up|ECONNRESET|EPIPE)$/)]);
    const refused = await helper.waitForLog('socket.refused', 10_000, (l) => l.socket === 'admin');
    expect(refused).toMatchObject({ peer: { uid: VM_UID }, reason: `uid ${VM_UID} is not root` });
    // The helper serves root on.
    expect(helper.cli(['status', '--json']).status).toBe(0);
  });
});

describe('register refuses what is not a lease area under the roots, and writes nothing', () => {
  function refused(leasePath: string, code: string): void {
    const before = sha256(leasePath);
    const vm = randomUUID();
    const result = helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', `${cluster.lockspace}:vm-x:${leasePath.replaceAll(':', '\\:')}:0`, '--acquire']);
    expect(result.stderr).toContain(code);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.status).toBe(4);
    expect(sha256(leasePath)).toBe(before);
    const vms = JSON.parse(helper.cli(['status', '--json']).stdout).vms as { uuid: string }[];
    expect(vms.map((v) => v.uuid)).not.toContain(vm);
  }

  it('/etc/passwd: LEASE_OUTSIDE_ROOTS', () => refused('/etc/passwd', 'LEASE_OUTSIDE_ROOTS'));

  it('a file outside the roots: LEASE_OUTSIDE_ROOTS', () => {
    const path = join(outside, 'disk.img');
    writeFileSync(path, randomBytes(1 << 20));
    refused(path, 'LEASE_OUTSIDE_ROOTS');
  });

  it('a path that only starts like a root (leases-evil/...): LEASE_OUTSIDE_ROOTS', () => {
    const evil = `${cluster.leasesDir}-evil`;
    mkdirSync(evil);
    const path = join(evil, 'x.res');
    writeFileSync(path, randomBytes(1 << 20));
    refused(path, 'LEASE_OUTSIDE_ROOTS');
  });

  it('a disk image of random bytes under the roots: LEASE_NOT_AREA', () => {
    const path = join(cluster.leasesDir, 'vm-disk.img');
    writeFileSync(path, randomBytes(4 << 20));
    refused(path, 'LEASE_NOT_AREA');
  });

  it('a symlink under the roots to /etc/passwd: LEASE_SYMLINK (the target unchanged)', () => {
    const link = join(cluster.leasesDir, 'passwd.res');
    symlinkSync('/etc/passwd', link);
    const before = sha256('/etc/passwd');
    refused(link, 'LEASE_SYMLINK');
    expect(sha256('/etc/passwd')).toBe(before);
  });

  it('a symlinked directory under the roots, even to a real lease area: LEASE_SYMLINK', () => {
    const real = cluster.resource('vm-x').split(':')[2]!;
    const dir = join(cluster.leasesDir, 'linked');
    symlinkSync(cluster.leasesDir, dir);
    const before = sha256(real);
    refused(join(dir, 'vm-x.res'), 'LEASE_SYMLINK');
    expect(sha256(real)).toBe(before);
  });

  it('a root-only file under the roots that is not an area, with another lease that is: nothing of either is kept', () => {
    const path = join(cluster.leasesDir, 'notes.res');
    writeFileSync(path, 'operator notes\n'.repeat(100));
    chmodSync(path, 0o600);
    const good = cluster.resource('vm-y');
    const before = [sha256(path), sha256(good.split(':')[2]!)];
    const vm = randomUUID();
    const result = helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', good, '--lease', `${cluster.lockspace}:vm-x:${path}:0`, '--acquire']);
    expect(result.stderr).toContain('LEASE_NOT_AREA');
    expect(result.status).toBe(4);
    expect([sha256(path), sha256(good.split(':')[2]!)]).toEqual(before);
    expect(JSON.parse(helper.cli(['status', '--json']).stdout).vms).toEqual([]);
  });
});

/**
 * End to end with the real libvirtd 9.0 and qemu 7.2 (Debian 12), no mocks:
 * domains whose <emulator> is the vmlease shim start under their supervisor
 * with their leases held by the host's helper, qemu runs as libvirt-qemu and
 * cannot open a lease file, stopping or killing the VM releases the leases,
 * and a lease held elsewhere (another VM on this host, or host 1 seen from a
 * second libvirtd with its own helper) refuses the start with the reason in
 * virsh's error. `npm run test:libvirt`; test/libvirt/setup.sh prepares the
 * machine. No disk contents and no kernel: the guests sit in the BIOS.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmlease } from '../support/cli.js';
import { alive, makeCluster, writeAutoLeasePolicy, type Cluster } from '../support/helper-harness.js';
import { parentPid, processUid, setupMachine, startLibvirtHost, userId, type LibvirtHost } from './libvirt-host.js';

const VM_1 = '3f0e8a52-6c1d-4b7e-9a10-2c4d5e6f7a8b';
const VM_2 = '9b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8';

let cluster: Cluster;
let host1: LibvirtHost;
let imagesDir: string;
let disksDir: string;
let prefix: string;
let qemuUid: number;

interface DomainOptions {
  readonly uuid: string;
  readonly name: string;
  readonly lease?: string;
}

function domainXml(o: DomainOptions): string {
  return `<domain type='qemu'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${join(prefix, 'libexec/vmlease/qemu-shim')}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='${join(imagesDir, 'shared.img')}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
${o.lease === undefined ? '' : `    <lease><lockspace>${cluster.lockspace}</lockspace><key>${o.lease}</key><target path='${join(cluster.leasesDir, `${o.lease}.res`)}' offset='0'/></lease>\n`}  </devices>
</domain>
`;
}

function define(host: LibvirtHost, o: DomainOptions): void {
  const path = join(cluster.dir, `${o.name}.xml`);
  writeFileSync(path, domainXml(o));
  const defined = host.virsh(['define', path]);
  if (defined.status !== 0) throw new Error(`virsh define ${o.name}: ${defined.stderr}`);
}

interface StatusVm {
  uuid: string;
  uid: number;
  state: string;
  supervisorPid: number | null;
  childPid: number | null;
  leases: { lockspace: string; resource: string; path: string; state: string }[];
}

const statusVms = (host: LibvirtHost) => (JSON.parse(host.helper.cli(['status', '--json']).stdout) as { vms: StatusVm[] }).vms;

function leaderOwner(path: string): number {
  const dumped = JSON.parse(vmlease(['dump', path, '--json']).stdout) as { areas: { leader: { record: { ownerHostId: number } } }[] };
  return dumped.areas[0]!.leader.record.ownerHostId;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const domState = (host: LibvirtHost, name: string) => host.virsh(['domstate', name]).stdout.trim();

beforeAll(async () => {
  setupMachine();
  qemuUid = userId('libvirt-qemu');
  cluster = makeCluster({ ioTimeoutMs: 500 });
  imagesDir = join(cluster.dir, 'images');
  mkdirSync(imagesDir);
  writeFileSync(join(imagesDir, 'shared.img'), Buffer.alloc(1024 * 1024));
  // libvirt's DAC driver hands the image to libvirt-qemu while the VM runs; the leases directory stays root 0700.
  chmodSync(imagesDir, 0o755);
  disksDir = join(cluster.leasesDir, 'disks');
  mkdirSync(disksDir);
  expect(vmlease(['init-lease-directory', '--allow-local-fs', `${cluster.lockspace}:${disksDir}`]).status).toBe(0);
  cluster.resource('vm-one');
  prefix = join(cluster.dir, 'prefix-1');
  writeAutoLeasePolicy(cluster, { directory: disksDir, imagesDir, emulatorShim: join(prefix, 'libexec/vmlease/qemu-shim') });
  host1 = await startLibvirtHost(cluster, 1, prefix);
  define(host1, { uuid: VM_1, name: 'vm-one', lease: 'vm-one' });
  define(host1, { uuid: VM_2, name: 'vm-two' });
});

afterAll(async () => {
  await host1?.stop();
  cluster?.remove();
});

describe('libvirt end to end (host 1)', () => {
  it('virsh start runs the VM under its supervisor, with host 1 holding its <lease> and its disk lease; qemu runs as libvirt-qemu and cannot open a lease file', async () => {
    const began = Date.now();
    const started = host1.virsh(['start', 'vm-one']);
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    process.stdout.write(`virsh start with the hook and the supervisor: ${Date.now() - began} ms\n`);
    const vm = await until('VM running with a child', () => statusVms(host1).find((v) => v.uuid === VM_1 && v.state === 'running' && v.childPid !== null));
    expect(vm.leases.map((l) => [l.resource, l.state])).toEqual([
      ['vm-one', 'held'],
      [expect.stringMatching(/^disk-[0-9a-f]{40}$/), 'held'],
    ]);
    for (const lease of vm.leases) expect([lease.resource, leaderOwner(lease.path)]).toEqual([lease.resource, 1]);
    // The supervisor is the process libvirt recorded; qemu is its child; both run as libvirt-qemu.
    expect(Number(readFileSync(join(host1.libvirtRunDir, 'vm-one.pid'), 'utf8').trim())).toBe(vm.supervisorPid);
    expect(vm.uid).toBe(qemuUid);
    expect(processUid(vm.supervisorPid!)).toBe(qemuUid);
    expect(processUid(vm.childPid!)).toBe(qemuUid);
    expect(readFileSync(`/proc/${vm.childPid}/cmdline`, 'utf8').split('\0').slice(0, 3)).toEqual(['/usr/bin/qemu-system-x86_64', '-name', 'guest=vm-one,debug-threads=on']);
    expect(readFileSync(`/proc/${vm.supervisorPid}/cmdline`, 'utf8').split('\0').slice(1, 4)).toEqual(['--jitless', expect.stringMatching(/dist\/cli\/main\.js$/), 'supervise']);
    for (const lease of vm.leases) {
      const opened = spawnSync('setpriv', ['--reuid', String(qemuUid), '--regid', String(qemuUid), '--clear-groups', 'sh', '-c', 'exec 3< "$1"', 'probe', lease.path], { encoding: 'utf8', timeout: 10_000 });
      expect(opened.status).toBe(2);
      expect(opened.stderr).toContain('Permission denied');
    }
    expect(domState(host1, 'vm-one')).toBe('running');
  });

  it('a second VM with the same writable disk is refused on this host, with the reason in virsh\'s error', () => {
    const [vm] = statusVms(host1);
    const disk = vm!.leases[1]!.resource;
    const refused = host1.virsh(['start', 'vm-two']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('Hook script execution failed');
    expect(refused.stderr).toContain(`unexpected exit status 3: vmlease: lease busy: held on this host for VM ${VM_1} (lease ${cluster.lockspace}:${disk})`);
    expect(domState(host1, 'vm-two')).toBe('shut off');
    expect(statusVms(host1).map((v) => v.uuid)).toEqual([VM_1]);
  });

  it('a domain the policy refuses (a leased disk through the host page cache) is stopped at prepare, the rule in virsh\'s error', () => {
    const path = join(cluster.dir, 'cached.xml');
    writeFileSync(path, domainXml({ uuid: 'c0ffee00-1111-4222-8333-444455556666', name: 'cached' }).replace("cache='none'", "cache='writeback'"));
    expect(host1.virsh(['define', path]).status).toBe(0);
    const refused = host1.virsh(['start', 'cached']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("cached prepare begin -) unexpected exit status 4: vmlease: refused by policy: POLICY_PAGE_CACHE: <disk target='vda'> is writable and leased but its cache mode writeback uses the host page cache");
    expect(statusVms(host1).map((v) => v.uuid)).toEqual([VM_1]);
    expect(host1.virsh(['undefine', 'cached']).status).toBe(0);
  });

  it('virsh destroy stops the VM and its leases are released', async () => {
    const [vm] = statusVms(host1);
    expect(host1.virsh(['destroy', 'vm-one']).status).toBe(0);
    await until('no VM registered', () => (statusVms(host1).length === 0 ? true : undefined));
    expect(alive(vm!.childPid!)).toBe(false);
    expect(alive(vm!.supervisorPid!)).toBe(false);
    for (const lease of vm!.leases) expect([lease.resource, leaderOwner(lease.path)]).toEqual([lease.resource, 0]);
  });

  it('kill -9 of qemu stops the VM and releases its leases; the same disk then starts in the other VM', async () => {
    expect(host1.virsh(['start', 'vm-one']).status).toBe(0);
    const vm = await until('VM running', () => statusVms(host1).find((v) => v.state === 'running' && v.childPid !== null));
    process.kill(vm.childPid!, 'SIGKILL');
    await until('vm-one shut off', () => (domState(host1, 'vm-one') === 'shut off' ? true : undefined));
    await until('no VM registered', () => (statusVms(host1).length === 0 ? true : undefined));
    expect(alive(vm.supervisorPid!)).toBe(false);
    for (const lease of vm.leases) expect([lease.resource, leaderOwner(lease.path)]).toEqual([lease.resource, 0]);
    const other = host1.virsh(['start', 'vm-two']);
    expect(other.stderr).toBe('');
    expect(other.status).toBe(0);
    expect(host1.virsh(['destroy', 'vm-two']).status).toBe(0);
    await until('no VM registered', () => (statusVms(host1).length === 0 ? true : undefined));
  });
});

describe('libvirt end to end (libvirtd restart)', () => {
  it('libvirtd restarted under a running VM reconnects to it (the hook exits 0 at reconnect): same supervisor, leases still held, destroy still releases', async () => {
    expect(host1.virsh(['start', 'vm-one']).status).toBe(0);
    const before = await until('VM running', () => statusVms(host1).find((v) => v.state === 'running' && v.childPid !== null));
    // libvirt daemonized the emulator (the supervisor): its parent is the host's reaper, which outlives libvirtd.
    expect(parentPid(before.supervisorPid!)).toBe(host1.reaper.pid);
    host1.restartLibvirtd();
    expect(parentPid(before.supervisorPid!)).toBe(host1.reaper.pid);
    expect(domState(host1, 'vm-one')).toBe('running');
    const after = statusVms(host1);
    expect(after.map((v) => [v.uuid, v.state, v.supervisorPid, v.childPid, v.leases.map((l) => l.state)])).toEqual([[VM_1, 'running', before.supervisorPid, before.childPid, ['held', 'held']]]);
    expect(Number(readFileSync(join(host1.libvirtRunDir, 'vm-one.pid'), 'utf8').trim())).toBe(before.supervisorPid);
    expect(host1.virsh(['destroy', 'vm-one']).status).toBe(0);
    await until('no VM registered', () => (statusVms(host1).length === 0 ? true : undefined));
    for (const lease of before.leases) expect([lease.resource, leaderOwner(lease.path)]).toEqual([lease.resource, 0]);
  });
});

describe('libvirt end to end (two hosts)', () => {
  it('a second libvirtd with its own helper (host 2) refuses to start the VM host 1 runs, naming host 1', async () => {
    expect(host1.virsh(['start', 'vm-one']).status).toBe(0);
    await until('VM running on host 1', () => statusVms(host1).find((v) => v.state === 'running'));
    const host2 = await startLibvirtHost(cluster, 2, join(cluster.dir, 'prefix-2'));
    try {
      define(host2, { uuid: VM_1, name: 'vm-one', lease: 'vm-one' });
      const refused = host2.virsh(['start', 'vm-one']);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/unexpected exit status 3: vmlease: lease busy: held by host 1 \(host-1\), LIVE since \S+; takeover possible never on timing alone \(no watchdog\) \(lease cluster:vm-one\)/);
      expect(domState(host2, 'vm-one')).toBe('shut off');
      expect(statusVms(host2)).toEqual([]);
      expect(domState(host1, 'vm-one')).toBe('running');
    } finally {
      await host2.stop();
    }
  }, 180_000);
});

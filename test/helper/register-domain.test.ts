/**
 * `vmlease register --domain-xml` and `vmlease policy check` against a real
 * helper: the policy derives a VM's leases from libvirt domain XML (explicit
 * <lease> elements and automatic disk leases), the helper creates missing
 * automatic lease files in the marked lease directory, and one host never
 * grants one disk's exclusive lease to two VMs, whatever path names the disk.
 */
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmlease } from '../support/cli.js';
import { makeCluster, startHelper, writeAutoLeasePolicy, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';

const SHIM = '/usr/local/libexec/vmlease/qemu-shim';
const VM_A = '3f0e8a52-6c1d-4b7e-9a10-2c4d5e6f7a8b';
const VM_B = '9b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8';

let cluster: Cluster;
let helper: HelperProcess;
let imagesDir: string;
let disksDir: string;
let explicitLease: string;

interface DomainOptions {
  readonly uuid: string;
  readonly name: string;
  readonly disk: string;
  readonly cache?: string;
  readonly lease?: boolean;
}

function domainXml(o: DomainOptions): string {
  const [lockspace, key, path] = explicitLease.split(':') as [string, string, string];
  return `<domain type='kvm'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='KiB'>131072</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${SHIM}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='${o.cache ?? 'none'}'/>
      <source file='${o.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${join(imagesDir, 'install.iso')}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
${o.lease === false ? '' : `    <lease><lockspace>${lockspace}</lockspace><key>${key}</key><target path='${path}' offset='0'/></lease>\n`}  </devices>
</domain>
`;
}

function writeDomain(name: string, xml: string): string {
  const path = join(cluster.dir, `${name}.xml`);
  writeFileSync(path, xml);
  return path;
}

function writePolicy(directory: string, allowLocalDirectory = true): void {
  writeAutoLeasePolicy(cluster, { directory, imagesDir, emulatorShim: SHIM, allowLocalDirectory });
}

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 500 });
  imagesDir = join(cluster.dir, 'images');
  mkdirSync(imagesDir);
  writeFileSync(join(imagesDir, 'web.img'), Buffer.alloc(1024 * 1024));
  writeFileSync(join(imagesDir, 'install.iso'), Buffer.alloc(4096));
  symlinkSync('web.img', join(imagesDir, 'web-alias.img'));
  disksDir = join(cluster.leasesDir, 'disks');
  mkdirSync(disksDir);
  expect(vmlease(['init-lease-directory', '--allow-local-fs', `${cluster.lockspace}:${disksDir}`]).status).toBe(0);
  explicitLease = cluster.resource('web-vm');
  writePolicy(disksDir);
  helper = await startHelper(cluster, 1);
}, 60_000);

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

function policyCheck(xmlPath: string, json = true) {
  return vmlease(['policy', 'check', '--domain-xml', xmlPath, '--policy', cluster.policyPath, ...(json ? ['--json'] : [])]);
}

describe('register --domain-xml', () => {
  it('policy check shows the explicit lease and the automatic disk lease it would create; nothing is written', () => {
    const xml = writeDomain('web', domainXml({ uuid: VM_A, name: 'web', disk: join(imagesDir, 'web.img') }));
    const checked = policyCheck(xml);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    const result = JSON.parse(checked.stdout) as { ok: boolean; vm: unknown; leases: { resource: string; path: string; exists: boolean | null; mode: string }[]; unleasedDisks: unknown[] };
    expect(result).toMatchObject({ ok: true, vm: { uuid: VM_A, name: 'web' }, unleasedDisks: [] });
    expect(result.leases).toHaveLength(2);
    expect(result.leases[0]).toMatchObject({ resource: 'web-vm', mode: 'exclusive', exists: null });
    const auto = result.leases[1]!;
    expect(auto).toMatchObject({ mode: 'exclusive', exists: false });
    expect(auto.path).toBe(join(disksDir, `${auto.resource}.lease`));
    expect(readdirSync(disksDir)).toEqual(['.vmlease-lease-directory']);
    const human = policyCheck(xml, false);
    expect(human.stdout).toContain(`VM ${VM_A} (web): 2 leases`);
    expect(human.stdout).toContain(`${auto.path}:0 (created at register)`);
  });

  it('registers from standard input, creates the automatic lease file and acquires both leases', () => {
    const xml = domainXml({ uuid: VM_A, name: 'web', disk: join(imagesDir, 'web.img') });
    const checked = JSON.parse(policyCheck(writeDomain('web', xml)).stdout) as { leases: { resource: string; path: string }[] };
    const auto = checked.leases[1]!;
    const registered = vmlease(['register', '--vm', VM_A, '--uid', String(VM_UID), '--domain-xml', '-', '--acquire', '--json', '--run-dir', helper.runDir], undefined, xml);
    expect(registered.stderr).toBe('');
    expect(registered.status).toBe(0);
    const result = JSON.parse(registered.stdout) as { vm: { leases: { resource: string; state: string }[] }; policy: { createdLeaseFiles: string[]; unleasedDisks: unknown[]; reasons: string[] } };
    expect(result.policy.createdLeaseFiles).toEqual([auto.path]);
    expect(result.policy.reasons).toHaveLength(2);
    expect(result.vm.leases.map((l) => [l.resource, l.state])).toEqual([
      ['web-vm', 'held'],
      [auto.resource, 'held'],
    ]);
    expect(readdirSync(disksDir).sort()).toEqual(['.vmlease-lease-directory', `${auto.resource}.lease`]);
    const after = JSON.parse(policyCheck(writeDomain('web', xml)).stdout) as { leases: { exists: boolean | null }[] };
    expect(after.leases.map((l) => l.exists)).toEqual([null, true]);
  });

  it('a second VM naming the same disk through a symlink gets the same disk lease, and is refused it on this host (exit 3)', () => {
    const xml = writeDomain('copy', domainXml({ uuid: VM_B, name: 'copy', disk: join(imagesDir, 'web-alias.img'), lease: false }));
    const first = JSON.parse(policyCheck(writeDomain('web', domainXml({ uuid: VM_A, name: 'web', disk: join(imagesDir, 'web.img') }))).stdout) as { leases: { resource: string }[] };
    const second = JSON.parse(policyCheck(xml).stdout) as { leases: { resource: string }[] };
    expect(second.leases.map((l) => l.resource)).toEqual([first.leases[1]!.resource]);
    const registered = helper.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml, '--acquire']);
    expect(registered.status).toBe(3);
    expect(registered.stderr).toBe(`vmlease register: LEASE_HELD_LOCALLY: lease ${cluster.lockspace}:${second.leases[0]!.resource} is held on this host for VM ${VM_A}\n`);
    expect(helper.cli(['status', '--json']).stdout).not.toContain(VM_B);
  });

  it('refuses, exit 4, a leased disk using the host page cache, naming the rule and the element', () => {
    const xml = writeDomain('cached', domainXml({ uuid: VM_B, name: 'cached', disk: join(imagesDir, 'web.img'), cache: 'writeback', lease: false }));
    const checked = policyCheck(xml);
    expect(checked.status).toBe(4);
    const refusal = (JSON.parse(checked.stdout) as { ok: false; refusal: { rule: string; element: string; message: string } }).refusal;
    expect(refusal).toMatchObject({ rule: 'POLICY_PAGE_CACHE', element: "<disk target='vda'>" });
    expect(checked.stderr).toBe(`vmlease policy check: refused: ${refusal.message}\n`);
    const registered = helper.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml]);
    expect(registered.status).toBe(4);
    expect(registered.stderr).toBe(`vmlease register: POLICY_PAGE_CACHE: ${refusal.message}\n`);
  });

  it('refuses, exit 4, domain XML of another VM than --vm', () => {
    const xml = writeDomain('other', domainXml({ uuid: VM_A, name: 'web', disk: join(imagesDir, 'web.img') }));
    const registered = helper.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml]);
    expect(registered.status).toBe(4);
    expect(registered.stderr).toBe(`vmlease register: POLICY_VM_MISMATCH: the domain XML is VM ${VM_A}, not ${VM_B}\n`);
  });

  it('refuses, exit 4, to create automatic lease files in a directory without the marker (an unmounted share)', async () => {
    const unmarked = join(cluster.leasesDir, 'unmarked');
    mkdirSync(unmarked);
    writePolicy(unmarked);
    const other = await startHelper(cluster, 2);
    try {
      const xml = writeDomain('unmarked', domainXml({ uuid: VM_B, name: 'unmarked', disk: join(imagesDir, 'web.img'), lease: false }));
      const checked = policyCheck(xml);
      expect(checked.status).toBe(4);
      expect(checked.stderr).toMatch(/^vmlease policy check: refused: LEASE_DIR_NO_MARKER: /);
      const registered = other.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml]);
      expect(registered.status).toBe(4);
      expect(registered.stderr).toMatch(new RegExp(`^vmlease register: LEASE_DIR_NO_MARKER: ${unmarked}`));
      expect(readdirSync(unmarked)).toEqual([]);
    } finally {
      await other.stop('SIGTERM');
      writePolicy(disksDir);
    }
  });

  it('refuses, exit 4, a marked lease directory on a local file system when the policy does not allow it', async () => {
    const local = join(cluster.leasesDir, 'local-marked');
    mkdirSync(local);
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `${cluster.lockspace}:${local}`]).status).toBe(0);
    writePolicy(local, false);
    const other = await startHelper(cluster, 2);
    try {
      const xml = writeDomain('local', domainXml({ uuid: VM_B, name: 'local', disk: join(imagesDir, 'web.img'), lease: false }));
      const checked = policyCheck(xml);
      expect(checked.status).toBe(4);
      expect(checked.stderr).toMatch(/^vmlease policy check: refused: LEASE_DIR_LOCAL_FS: /);
      const registered = other.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml]);
      expect(registered.status).toBe(4);
      expect(registered.stderr).toMatch(new RegExp(`^vmlease register: LEASE_DIR_LOCAL_FS: ${local}: lease directory is on a local file system `));
      expect(readdirSync(local)).toEqual(['.vmlease-lease-directory']);
    } finally {
      await other.stop('SIGTERM');
      writePolicy(disksDir);
    }
  });

  it('refuses --lease together with --domain-xml, and neither (usage, exit 2)', () => {
    const xml = writeDomain('web', domainXml({ uuid: VM_A, name: 'web', disk: join(imagesDir, 'web.img') }));
    const both = helper.cli(['register', '--vm', VM_B, '--uid', String(VM_UID), '--domain-xml', xml, '--lease', explicitLease]);
    expect([both.status, both.stderr]).toEqual([2, "vmlease register: give --lease or --domain-xml, not both (see 'vmlease register --help')\n"]);
    const neither = helper.cli(['register', '--vm', VM_B, '--uid', String(VM_UID)]);
    expect([neither.status, neither.stderr]).toEqual([2, "vmlease register: at least one --lease, or --domain-xml, is required (see 'vmlease register --help')\n"]);
  });
});

/**
 * `vmlease libvirt-hook`, as /etc/libvirt/hooks/qemu runs it, against real
 * helpers with the domain XML on standard input (no libvirtd needed): the
 * decision for each operation, the uid/gid taken from the DAC seclabel or
 * qemu.conf, refusals in the words virsh will show, the deadline on a helper
 * that does not answer, and the installed shim keeping the pid libvirt
 * recorded when it becomes the supervisor.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmlease, type CliResult } from '../support/cli.js';
import { exitOf, makeCluster, startHelper, writeAutoLeasePolicy, VM_GID, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';

const VM_A = '5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
const VM_B = '6b7c8d9e-2f3a-4b4c-9d5e-6f7a8b9c0d1e';

let cluster: Cluster;
let helper: HelperProcess;
let imagesDir: string;
let disksDir: string;
let libvirtRunDir: string;
let prefix: string;
let qemuConf: string;

interface DomainOptions {
  readonly uuid: string;
  readonly name: string;
  readonly cache?: string;
  /** The DAC label libvirt adds by start begin; undefined: none (as at prepare). */
  readonly dac?: string;
}

function domainXml(o: DomainOptions): string {
  return `<domain type='qemu' id='7'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='KiB'>32768</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${join(prefix, 'libexec/vmlease/qemu-shim')}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='${o.cache ?? 'none'}'/>
      <source file='${join(imagesDir, 'shared.img')}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
${o.dac === undefined ? '' : `  <seclabel type='dynamic' model='dac' relabel='yes'>\n    <label>${o.dac}</label>\n    <imagelabel>${o.dac}</imagelabel>\n  </seclabel>\n`}</domain>
`;
}

function hook(runDir: string, domain: string, operation: string, subOperation: string, xml: string | undefined, deadlineMs = 20_000): CliResult {
  return vmlease(['libvirt-hook', '--run-dir', runDir, '--policy', cluster.policyPath, '--qemu-conf', qemuConf, '--deadline-ms', String(deadlineMs), '--', domain, operation, subOperation, '-'], undefined, xml);
}

interface StatusVm {
  uuid: string;
  uid: number;
  state: string;
  leases: { resource: string; state: string }[];
}

const statusVms = (h: HelperProcess) => (JSON.parse(h.cli(['status', '--json']).stdout) as { vms: StatusVm[] }).vms;

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 1000 });
  imagesDir = join(cluster.dir, 'images');
  mkdirSync(imagesDir);
  writeFileSync(join(imagesDir, 'shared.img'), Buffer.alloc(1024 * 1024));
  disksDir = join(cluster.leasesDir, 'disks');
  mkdirSync(disksDir);
  expect(vmlease(['init-lease-directory', '--allow-local-fs', `${cluster.lockspace}:${disksDir}`]).status).toBe(0);
  prefix = join(cluster.dir, 'prefix');
  writeAutoLeasePolicy(cluster, { directory: disksDir, imagesDir, emulatorShim: join(prefix, 'libexec/vmlease/qemu-shim') });
  qemuConf = join(cluster.dir, 'qemu.conf');
  writeFileSync(qemuConf, '# libvirt qemu.conf\n#user = "root"\nuser = "nobody"   # who qemu runs as\ngroup = "nogroup"\n');
  libvirtRunDir = join(cluster.dir, 'libvirt-qemu');
  mkdirSync(libvirtRunDir, { mode: 0o700 });
  helper = await startHelper(cluster, 1, { libvirtRunDir });
}, 60_000);

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

describe('vmlease libvirt-hook', () => {
  it('every operation but prepare, start, stopped and release exits 0 at once, without reading the XML or asking the helper', () => {
    for (const [operation, sub] of [['started', 'begin'], ['reconnect', 'begin'], ['migrate', 'begin'], ['restore', 'begin'], ['attach', 'begin'], ['stopped', 'begin'], ['release', 'begin']] as const) {
      expect([operation, hook('/nonexistent/run', 'web', operation, sub, undefined)]).toEqual([operation, { status: 0, stdout: '', stderr: '' }]);
    }
  });

  it('prepare begin checks the policy only: accepted exits 0; a refusal exits 4 with the rule on stderr', () => {
    expect(hook('/nonexistent/run', 'web', 'prepare', 'begin', domainXml({ uuid: VM_A, name: 'web' }))).toEqual({ status: 0, stdout: '', stderr: '' });
    const refused = hook('/nonexistent/run', 'web', 'prepare', 'begin', domainXml({ uuid: VM_A, name: 'web', cache: 'writeback' }));
    expect(refused.status).toBe(4);
    expect(refused.stderr).toMatch(/^vmlease: refused by policy: POLICY_PAGE_CACHE: <disk target='vda'> is writable and leased but its cache mode writeback uses the host page cache/);
  });

  it('prepare begin refuses a lease directory on a local file system when the policy does not allow it (exit 4)', () => {
    const strict = join(cluster.dir, 'policy-local-refused.json');
    const policy = JSON.parse(readFileSync(cluster.policyPath, 'utf8')) as { autoDiskLeases: Record<string, unknown> };
    writeFileSync(strict, JSON.stringify({ ...policy, autoDiskLeases: { ...policy.autoDiskLeases, allowLocalDirectory: false } }));
    const refused = vmlease(['libvirt-hook', '--run-dir', '/nonexistent/run', '--policy', strict, '--qemu-conf', qemuConf, '--', 'web', 'prepare', 'begin', '-'], undefined, domainXml({ uuid: VM_A, name: 'web' }));
    expect(refused.status).toBe(4);
    expect(refused.stderr).toMatch(new RegExp(`^vmlease: refused by policy: LEASE_DIR_LOCAL_FS: ${disksDir}: lease directory is on a local file system `));
  });

  it('start begin registers the VM under its libvirt domain with the DAC label\'s uid/gid and acquires its disk lease', () => {
    const started = hook(helper.runDir, 'web', 'start', 'begin', domainXml({ uuid: VM_A, name: 'web', dac: `+${VM_UID}:+${VM_GID}` }));
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    expect(started.stdout).toMatch(new RegExp(`^vmlease: VM ${VM_A} \\(web\\) registered as uid ${VM_UID} gid ${VM_GID} \\(from seclabel\\); holds cluster:disk-[0-9a-f]{40}\\n$`));
    const [vm] = statusVms(helper);
    expect(vm).toMatchObject({ uuid: VM_A, uid: VM_UID, state: 'holding' });
    expect(vm!.leases.map((l) => l.state)).toEqual(['held']);
  });

  it('start begin of another VM on the same disk exits 3: "lease busy: held on this host for VM ..."', () => {
    const [vm] = statusVms(helper);
    const refused = hook(helper.runDir, 'copy', 'start', 'begin', domainXml({ uuid: VM_B, name: 'copy', dac: `+${VM_UID}:+${VM_GID}` }));
    expect(refused.status).toBe(3);
    expect(refused.stderr).toBe(`vmlease: lease busy: held on this host for VM ${VM_A} (lease cluster:${vm!.leases[0]!.resource})\n`);
    // libvirt then runs stopped end and release end for the refused VM: nothing to do, and VM A keeps its lease.
    expect(hook(helper.runDir, 'copy', 'stopped', 'end', domainXml({ uuid: VM_B, name: 'copy' }))).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(statusVms(helper).map((v) => [v.uuid, v.leases.map((l) => l.state)])).toEqual([[VM_A, ['held']]]);
  });

  it('start begin on another host exits 3 naming host 1 as the holder', async () => {
    const other = await startHelper(cluster, 2);
    try {
      const refused = hook(other.runDir, 'web', 'start', 'begin', domainXml({ uuid: VM_A, name: 'web', dac: `+${VM_UID}:+${VM_GID}` }));
      expect(refused.status).toBe(3);
      expect(refused.stderr).toMatch(/^vmlease: lease busy: held by host 1 \(host-1\), LIVE since \S+; takeover possible never on timing alone \(no watchdog\) \(lease cluster:disk-[0-9a-f]{40}\)\n$/);
      expect(statusVms(other)).toEqual([]);
    } finally {
      await other.stop('SIGTERM');
    }
  }, 60_000);

  it('the installed shim, exec\'d where libvirt recorded the pid, binds as the supervisor and runs the real qemu', async () => {
    const fakeQemu = join(cluster.dir, 'fake-qemu');
    // It runs until the test has seen the helper accept it as the VM's child: one that exits at
    // once can be gone before the helper looks (IDENTITY_CHILD_GONE), as happened under load.
    const mayExit = join(cluster.dir, 'fake-qemu-may-exit');
    writeFileSync(fakeQemu, `#!/bin/sh\necho "fake qemu as $(id -u) with $*"\nfor i in $(seq 600); do [ -e ${mayExit} ] && exit 0; sleep 0.05; done\nexit 9\n`, { mode: 0o755 });
    const installed = vmlease(['install-libvirt', '--prefix', prefix, '--hooks-dir', join(cluster.dir, 'hooks'), '--qemu', fakeQemu, '--run-dir', helper.runDir, '--policy', cluster.policyPath]);
    expect(installed.status).toBe(0);
    const shim = join(prefix, 'libexec/vmlease/qemu-shim');
    // Like libvirt: record the pid, drop to the VM's ids, exec the emulator in that same process.
    const script = `echo $$ > ${join(libvirtRunDir, 'web.pid')}; exec setpriv --reuid ${VM_UID} --regid ${VM_GID} --clear-groups ${shim} -name guest=web,debug-threads=on -S -uuid ${VM_A} -nodefaults`;
    const emulator = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    emulator.stdout!.setEncoding('utf8').on('data', (c: string) => void (output += c));
    emulator.stderr!.setEncoding('utf8').on('data', (c: string) => void (output += c));
    await helper.waitForLog('session.child', 30_000, (l) => l.vm === VM_A);
    writeFileSync(mayExit, '');
    expect(await exitOf(emulator)).toEqual({ code: 0, signal: null });
    expect(output).toContain(`fake qemu as ${VM_UID} with -name guest=web,debug-threads=on -S -uuid ${VM_A} -nodefaults\n`);
    expect(helper.lines.filter((l) => l.msg === 'session.child' && l.vm === VM_A)).toHaveLength(1);
  }, 60_000);

  it('stopped end after the supervisor exited forgets the VM (the supervisor released on its way out)', () => {
    const stopped = hook(helper.runDir, 'web', 'stopped', 'end', domainXml({ uuid: VM_A, name: 'web', dac: `+${VM_UID}:+${VM_GID}` }));
    expect(stopped).toEqual({ status: 0, stdout: `vmlease: VM ${VM_A} (web) unregistered; released nothing\n`, stderr: '' });
    expect(statusVms(helper)).toEqual([]);
  });

  it('release end unregisters a VM that still holds its lease and releases it; a second stopped end is a no-op', () => {
    const xml = domainXml({ uuid: VM_A, name: 'web', dac: `+${VM_UID}:+${VM_GID}` });
    expect(hook(helper.runDir, 'web', 'start', 'begin', xml).status).toBe(0);
    const released = hook(helper.runDir, 'web', 'release', 'end', xml);
    expect(released.stderr).toBe('');
    expect(released.status).toBe(0);
    expect(released.stdout).toMatch(new RegExp(`^vmlease: VM ${VM_A} \\(web\\) unregistered; released cluster:disk-[0-9a-f]{40}\\n$`));
    expect(statusVms(helper)).toEqual([]);
    expect(hook(helper.runDir, 'web', 'stopped', 'end', xml)).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it("start begin without a DAC label takes qemu.conf's user and group", () => {
    const started = hook(helper.runDir, 'web', 'start', 'begin', domainXml({ uuid: VM_A, name: 'web' }));
    expect(started.status).toBe(0);
    expect(started.stdout).toContain(`registered as uid 65534 gid 65534 (from qemu.conf)`);
    expect(hook(helper.runDir, 'web', 'release', 'end', domainXml({ uuid: VM_A, name: 'web' })).status).toBe(0);
    writeFileSync(qemuConf, 'user = "no-such-user-here"\n');
    const unknown = hook(helper.runDir, 'web', 'start', 'begin', domainXml({ uuid: VM_A, name: 'web' }));
    expect([unknown.status, unknown.stderr]).toEqual([4, 'vmlease: start begin of web: LIBVIRT_ACCOUNT: user "no-such-user-here" is not in /etc/passwd\n']);
    expect(statusVms(helper)).toEqual([]);
  });

  it('a helper that does not answer fails start begin after the deadline (exit 1) instead of hanging libvirtd', async () => {
    helper.process.kill('SIGSTOP');
    const began = Date.now();
    let result: CliResult;
    try {
      result = hook(helper.runDir, 'web', 'start', 'begin', domainXml({ uuid: VM_A, name: 'web', dac: `+${VM_UID}:+${VM_GID}` }), 1500);
    } finally {
      helper.process.kill('SIGCONT');
    }
    const tookMs = Date.now() - began;
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`vmlease: registering VM ${VM_A} (web) failed: no reply from the helper at ${join(helper.runDir, 'admin', 'admin.sock')} within 1500 ms\n`);
    expect(tookMs).toBeGreaterThanOrEqual(1500);
    expect(tookMs).toBeLessThan(10_000);
  });
});

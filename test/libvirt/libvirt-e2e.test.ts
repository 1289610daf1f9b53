/**
 * End to end with the real libvirtd 9.0 and qemu 7.2 (Debian 12), no mocks:
 * domains whose <emulator> is the vmlease shim start under their supervisor
 * with their leases held by the host's helper, qemu runs as libvirt-qemu and
 * cannot open a lease file, stopping or killing the VM releases the leases,
 * and a lease held elsewhere (another VM on this host, or host 1 seen from a
 * second libvirtd with its own helper) refuses the start with the reason in
 * virsh's error. Killing the supervisor kills qemu, and the leases are
 * released only after qemu is gone; suspend/resume, a libvirtd restart and a
 * helper restart keep them; with host 1's helper killed for good, host 1's
 * qemu is stopped before host 2 can start the VM, which it then does once
 * host 1 is dead. Part of `npm test` (and alone: `npm run test:libvirt`);
 * test/libvirt/setup.sh prepares the machine. No disk contents and no kernel:
 * the guests sit in the BIOS.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deriveFenceTiming, deriveTiming, hostDeadAfterMs } from '../../dist/helper/engine/timing.js';
import { isAlive, ProcFsProcessTable, ProcsError } from '../../dist/helper/procs/index.js';
import { vmlease } from '../support/cli.js';
import { alive, makeCluster, writeAutoLeasePolicy, type Cluster } from '../support/helper-harness.js';
import { DeltaWatcher, FifoWatchdog, logTimeMs, sleep, tailOf, type TimedResult } from '../support/two-hosts.js';
import { parentPid, processUid, setupMachine, startLibvirtHost, userId, type LibvirtHost } from './libvirt-host.js';

const VM_1 = '3f0e8a52-6c1d-4b7e-9a10-2c4d5e6f7a8b';
const VM_2 = '9b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8';
/** The lockspace's io timeout: small, so that fail (8N) and host_dead are seconds. */
const N_MS = 500;
/** Host 1's watchdog fire timeout (a FIFO that resets nothing: the test shows what stops a VM without it). */
const W_MS = 1_000;
const FENCE = deriveFenceTiming(deriveTiming(N_MS, W_MS));
/** host_dead of host 1 as host 2 (no watchdog of its own) computes it. */
const HOST_1_DEAD_MS = hostDeadAfterMs({ own: deriveTiming(N_MS, 0), ownerIoTimeoutMs: N_MS, ownerWatchdogFireTimeoutMs: W_MS, takeoverWithoutWatchdog: false })!;

let cluster: Cluster;
let host1: LibvirtHost;
let watchdog1: FifoWatchdog;
/** Host 2 while the two-host tests run (for failure reports). */
const host2Ref: { current: LibvirtHost | undefined } = { current: undefined };
let imagesDir: string;
let disksDir: string;
let prefix: string;
let qemuUid: number;

interface DomainOptions {
  readonly uuid: string;
  readonly name: string;
  readonly lease?: string;
}

function domainXml(o: DomainOptions & { readonly emulator: string }): string {
  return `<domain type='qemu'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${o.emulator}</emulator>
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
  const path = join(cluster.dir, `${o.name}-host-${host.hostId}.xml`);
  writeFileSync(path, domainXml({ ...o, emulator: host.shim }));
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

interface Leader {
  readonly ownerHostId: number;
  readonly lver: number;
}

/** The leader record of the resource area at the start of a lease file, by `vmlease dump` (O_DIRECT, no daemon). */
function leader(path: string): Leader {
  const dumped = vmlease(['dump', path, '--json']);
  if (dumped.status !== 0) throw new Error(`vmlease dump ${path}: ${dumped.stderr}`);
  const { ownerHostId, lver } = (JSON.parse(dumped.stdout) as { areas: { leader: { record: Leader } }[] }).areas[0]!.leader.record;
  return { ownerHostId, lver };
}

const leaderOwner = (path: string): number => leader(path).ownerHostId;

/** [resource, owner host id, lver] of each of the VM's leases, as storage shows them. */
const leadersOf = (vm: StatusVm) =>
  vm.leases.map((l) => {
    const { ownerHostId, lver } = leader(l.path);
    return [l.resource, ownerHostId, lver] as const;
  });

const procs = new ProcFsProcessTable();

/**
 * Whether the process at `pid` that started at `startTime` still runs, by the helper's rule (a
 * zombie leader with live threads runs). A stat the parser refuses proves nothing, so it counts
 * as running: seen once for an exiting qemu in a pid namespace (kernel 6.18), its pgrp read -1.
 */
function runs(pid: number, startTime: bigint): boolean {
  let info;
  try {
    info = procs.read(pid);
  } catch (error) {
    if (error instanceof ProcsError) return true;
    throw error;
  }
  return info !== undefined && info.startTime === startTime && isAlive(info);
}

const startTimeOf = (pid: number): bigint => {
  const info = procs.read(pid);
  if (info === undefined) throw new Error(`pid ${pid} is gone`);
  return info.startTime;
};

const runningOn = (host: LibvirtHost, uuid: string) => until(`VM ${uuid} running with a child on host ${host.hostId}`, () => statusVms(host).find((v) => v.uuid === uuid && v.state === 'running' && v.childPid !== null));
const noVmOn = (host: LibvirtHost) => until(`no VM registered on host ${host.hostId}`, () => (statusVms(host).length === 0 ? true : undefined));

/** The helper's log lines with message `msg` logged at or after `fromMs` (Date.now()). */
const logsSince = (host: LibvirtHost, fromMs: number, msg: string) => host.helper.lines.filter((l) => l.msg === msg && logTimeMs(l) >= fromMs);

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

/** `virsh start` that must succeed; virsh's error is the failure message. */
function startDomain(host: LibvirtHost, name: string): void {
  const started = host.virsh(['start', name]);
  expect(started.status, `virsh start ${name} on host ${host.hostId}: ${started.stderr}`).toBe(0);
}

beforeAll(async () => {
  setupMachine();
  qemuUid = userId('libvirt-qemu');
  cluster = makeCluster({ ioTimeoutMs: N_MS });
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
  watchdog1 = new FifoWatchdog(join(cluster.dir, 'host-1'));
  host1 = await startLibvirtHost(cluster, 1, prefix, { watchdog: { device: watchdog1.path, fireTimeoutMs: W_MS } });
  define(host1, { uuid: VM_1, name: 'vm-one', lease: 'vm-one' });
  define(host1, { uuid: VM_2, name: 'vm-two' });
});

/** A test failed: the cluster directory (libvirtd logs, the domains' qemu logs, helper state) is kept. */
let failed = false;

afterEach((context) => {
  // What each host's helper saw and did, when a test fails.
  if (context.task.result?.state !== 'fail') return;
  failed = true;
  for (const host of [host1, host2Ref.current]) if (host) process.stderr.write(`--- host ${host.hostId} helper log (last lines) ---\n${tailOf(host.helper, 40)}\n`);
});

afterAll(async () => {
  await host1?.stop();
  watchdog1?.close();
  if (failed && cluster) process.stderr.write(`kept ${cluster.dir} for diagnosis (libvirt-N/libvirtd.log, libvirt-N/log/qemu/NAME.log)\n`);
  else cluster?.remove();
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
    writeFileSync(path, domainXml({ uuid: 'c0ffee00-1111-4222-8333-444455556666', name: 'cached', emulator: host1.shim }).replace("cache='none'", "cache='writeback'"));
    expect(host1.virsh(['define', path]).status).toBe(0);
    const refused = host1.virsh(['start', 'cached']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("cached prepare begin -) unexpected exit status 4: vmlease: refused by policy: POLICY_PAGE_CACHE: <disk target='vda'> is writable and leased but its cache mode writeback uses the host page cache");
    expect(statusVms(host1).map((v) => v.uuid)).toEqual([VM_1]);
    expect(host1.virsh(['undefine', 'cached']).status).toBe(0);
  });

  it('virsh suspend and resume keep the leases: vmlease dump shows host 1 owning them, at one lver, throughout (longer than the fail time)', async () => {
    const [vm] = statusVms(host1);
    const owned = leadersOf(vm!);
    expect(owned.map(([, owner]) => owner)).toEqual([1, 1]);
    const suspended = host1.virsh(['suspend', 'vm-one']);
    expect(suspended.stderr).toBe('');
    expect(domState(host1, 'vm-one')).toBe('paused');
    // Longer than the supervisor's deadline and the fail time (8N): a VM whose leases were not
    // kept fresh while paused would have been fenced and its leases released by now.
    // Each sample is two `vmlease dump` runs: on a loaded machine they come less often than every N.
    const samples: (typeof owned)[] = [];
    const sampleUntil = Date.now() + FENCE.failMs + 2 * N_MS;
    while (Date.now() < sampleUntil || samples.length < 3) {
      samples.push(leadersOf(vm!));
      await sleep(N_MS);
    }
    expect(samples).toEqual(samples.map(() => owned));
    expect(domState(host1, 'vm-one')).toBe('paused');
    expect(host1.virsh(['resume', 'vm-one']).status).toBe(0);
    expect(domState(host1, 'vm-one')).toBe('running');
    expect(leadersOf(vm!)).toEqual(owned);
    const after = statusVms(host1);
    expect(after.map((v) => [v.uuid, v.state, v.supervisorPid, v.childPid, v.leases.map((l) => l.state)])).toEqual([[VM_1, 'running', vm!.supervisorPid, vm!.childPid, ['held', 'held']]]);
    expect(logsSince(host1, 0, 'vm.fencing')).toEqual([]);
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
    startDomain(host1, 'vm-one');
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

describe('libvirt end to end (supervisor killed)', () => {
  it('kill -9 of the supervisor: qemu dies with it, and the leases are released only after qemu is gone', async () => {
    const startedAt = Date.now();
    startDomain(host1, 'vm-one');
    const vm = await runningOn(host1, VM_1);
    const qemu = { pid: vm.childPid!, startTime: startTimeOf(vm.childPid!) };
    process.kill(vm.supervisorPid!, 'SIGKILL');
    // qemu dies by its parent-death signal. Watch it as the helper judges it, in a tight loop: the
    // last moment it was seen running is before it died, so a release logged before that moment
    // would be a release while qemu still ran.
    const killedAt = Date.now();
    let lastSeenRunningAt = killedAt;
    for (;;) {
      const now = Date.now();
      if (!runs(qemu.pid, qemu.startTime)) break;
      lastSeenRunningAt = now;
      if (now > killedAt + 10_000) throw new Error(`qemu ${qemu.pid} still runs 10 s after its supervisor was killed`);
    }
    const goneSeenAt = Date.now();
    const leaseNames = vm.leases.map((l) => `${l.lockspace}:${l.resource}`).sort();
    // The helper's log lines reach this process whenever its event loop turns: select by their time.
    const released = await until('both leases released', () => {
      const lines = logsSince(host1, startedAt, 'lease.released');
      return lines.length >= 2 ? lines : undefined;
    });
    const report = `qemu last seen running ${lastSeenRunningAt - killedAt} ms and first seen gone ${goneSeenAt - killedAt} ms after the kill; releases logged at ${released.map((l) => logTimeMs(l) - killedAt).join(', ')} ms\n${tailOf(host1.helper, 15)}`;
    for (const line of released) expect(logTimeMs(line), report).toBeGreaterThanOrEqual(lastSeenRunningAt);
    expect(released.map((l) => l.lease).sort(), report).toEqual(leaseNames);
    // The helper saw the supervisor go and stopped what was left before releasing.
    expect(logsSince(host1, startedAt, 'vm.stopping').map((l) => l.vm), report).toEqual([VM_1]);
    for (const lease of vm.leases) expect([lease.resource, leaderOwner(lease.path)]).toEqual([lease.resource, 0]);
    // libvirt sees its emulator gone: the domain stops and the stopped hook unregisters it.
    await until('vm-one shut off', () => (domState(host1, 'vm-one') === 'shut off' ? true : undefined));
    await noVmOn(host1);
  });
});

describe('libvirt end to end (libvirtd restart)', () => {
  it('libvirtd restarted under a running VM reconnects to it (the hook exits 0 at reconnect): same supervisor, leases still held, destroy still releases', async () => {
    startDomain(host1, 'vm-one');
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
  let host2: LibvirtHost;

  beforeAll(async () => {
    // Host 2 has its own shim (baked with its own helper's run directory), so its own policy naming it.
    const prefix2 = join(cluster.dir, 'prefix-2');
    const policyPath = join(cluster.dir, 'policy-2.json');
    writeAutoLeasePolicy(cluster, { directory: disksDir, imagesDir, emulatorShim: join(prefix2, 'libexec/vmlease/qemu-shim'), policyPath });
    host2 = await startLibvirtHost(cluster, 2, prefix2, { policyPath });
    host2Ref.current = host2;
    define(host2, { uuid: VM_1, name: 'vm-one', lease: 'vm-one' });
  });

  afterAll(async () => {
    host2Ref.current = undefined;
    await host2?.stop();
  });

  /** Host 2 refused the start because host 1 holds a lease, and ran nothing. */
  function expectRefusedForHost1(attempt: TimedResult, report = ''): void {
    expect(attempt.status, `${attempt.stderr}\n${report}`).toBe(1);
    expect(attempt.stderr, report).toMatch(/vm-one start begin -\) unexpected exit status 3: vmlease: lease busy: held by host 1 \(host-1\), (LIVE|FAIL) since \S+Z; takeover possible \S+Z \(lease cluster:(vm-one|disk-[0-9a-f]{40})\)/);
  }

  it('a second libvirtd with its own helper (host 2) refuses to start the VM host 1 runs, naming host 1', async () => {
    startDomain(host1, 'vm-one');
    await runningOn(host1, VM_1);
    const refused = await host2.virshAsync(['start', 'vm-one']);
    expectRefusedForHost1(refused);
    expect(domState(host2, 'vm-one')).toBe('shut off');
    expect(statusVms(host2)).toEqual([]);
    expect(domState(host1, 'vm-one')).toBe('running');
  });

  it("host 1's helper restarted (SIGKILL, started again) while the VM runs: the VM keeps running with its leases, and host 2 cannot start it meanwhile", async () => {
    const before = await runningOn(host1, VM_1);
    const owned = leadersOf(before);
    expect(owned.map(([, owner]) => owner)).toEqual([1, 1]);
    let restarted = false;
    const restart = host1.restartHelper('SIGKILL').then((helper) => ((restarted = true), helper));
    // Host 2 asks again and again while host 1's helper is down and coming back.
    const attempts: TimedResult[] = [];
    do attempts.push(await host2.virshAsync(['start', 'vm-one']));
    while (!restarted && attempts.at(-1)!.status !== 0);
    const helper = await restart;
    await helper.waitForLog('helper.resumed', 30_000);
    await helper.waitForLog('session.bound', 30_000, (l) => l.vm === VM_1 && l.returning === true);
    // Longer than the deadline the killed incarnation last signed: only the new one's statements keep the VM.
    await sleep(FENCE.supervisorValidForMs + 2 * N_MS);
    attempts.push(await host2.virshAsync(['start', 'vm-one']));
    const report = tailOf(helper, 20);
    for (const attempt of attempts) expectRefusedForHost1(attempt, report);
    expect(statusVms(host2)).toEqual([]);
    expect(domState(host1, 'vm-one'), report).toBe('running');
    const after = statusVms(host1);
    expect(after.map((v) => [v.uuid, v.state, v.supervisorPid, v.childPid, v.leases.map((l) => l.state)]), report).toEqual([[VM_1, 'running', before.supervisorPid, before.childPid, ['held', 'held']]]);
    expect(alive(before.childPid!)).toBe(true);
    expect(leadersOf(before)).toEqual(owned);
  });

  it('virsh destroy on host 1 releases the leases: host 2 then starts the VM and holds them, and host 1 is refused naming host 2', async () => {
    const [vm] = statusVms(host1);
    expect(host1.virsh(['destroy', 'vm-one']).status).toBe(0);
    await noVmOn(host1);
    const released = leadersOf(vm!);
    expect(released.map(([, owner]) => owner)).toEqual([0, 0]);
    const started = await host2.virshAsync(['start', 'vm-one']);
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    const vm2 = await runningOn(host2, VM_1);
    expect(vm2.leases.map((l) => [l.resource, l.state])).toEqual(vm!.leases.map((l) => [l.resource, 'held']));
    expect(leadersOf(vm2)).toEqual(released.map(([resource, , lver]) => [resource, 2, lver + 1]));
    expect(processUid(vm2.childPid!)).toBe(qemuUid);
    const refused = host1.virsh(['start', 'vm-one']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/unexpected exit status 3: vmlease: lease busy: held by host 2 \(host-2\), LIVE since \S+Z; takeover possible never on timing alone \(no watchdog\)/);
    expect(host2.virsh(['destroy', 'vm-one']).status).toBe(0);
    await noVmOn(host2);
    expect(leadersOf(vm2).map(([, owner]) => owner)).toEqual([0, 0]);
  });

  it("host 1's helper killed for good: host 1's qemu is stopped (by its supervisor) before host 2 can start the VM, and host 2 starts it once host 1 is dead", async () => {
    startDomain(host1, 'vm-one');
    const vm = await runningOn(host1, VM_1);
    const qemu = { pid: vm.childPid!, startTime: startTimeOf(vm.childPid!) };
    const lvers = leadersOf(vm).map(([, , lver]) => lver);
    // Host 1's delta record, read the way another host reads it: when did its last renewal land?
    const watcher = new DeltaWatcher(cluster.lockspacePath, 1);
    let qemuGoneAt: number | undefined;
    const deathWatch = setInterval(() => {
      if (qemuGoneAt === undefined && !runs(qemu.pid, qemu.startTime)) qemuGoneAt = Date.now();
    }, 5);
    try {
      await until("a renewal of host 1's delta lease", () => (watcher.changes.length >= 2 ? true : undefined));
      const killedAt = Date.now();
      await host1.helper.stop('SIGKILL');
      // Host 2 asks until it gets the VM (each attempt a whole virsh start: hook, acquire, shim).
      const attempts: TimedResult[] = [];
      let success: TimedResult | undefined;
      while (success === undefined && Date.now() < killedAt + HOST_1_DEAD_MS + 60_000) {
        const attempt = await host2.virshAsync(['start', 'vm-one']);
        attempts.push(attempt);
        if (attempt.status === 0) success = attempt;
        else await sleep(200);
      }
      clearInterval(deathWatch);
      watcher.poll();
      const last = watcher.last;
      // Host 2's log lines of the successful start (they reach this process a little later).
      if (success) await until("host 2's log of both acquisitions", () => (logsSince(host2, success!.startedAt, 'lease.acquired').length >= 2 ? true : undefined)).catch(() => undefined);
      const acquired = logsSince(host2, killedAt, 'lease.acquired');
      const refused = attempts.filter((a) => a !== success);
      const longestRefusedMs = Math.max(0, ...refused.map((a) => a.endedAt - a.startedAt));
      const rel = (t: number | undefined) => (t === undefined ? 'never' : `${t - killedAt} ms`);
      const report = [
        `host_dead ${HOST_1_DEAD_MS} ms; from the helper's SIGKILL: host 1's last renewal landed after ${rel(last.landedAfter)}, qemu seen gone at ${rel(qemuGoneAt)},`,
        `host 2 acquired (log) at ${acquired.map((l) => rel(logTimeMs(l))).join(', ')}; attempts: ${attempts.map((a) => `[${rel(a.startedAt)}..${rel(a.endedAt)}] ${a.status}`).join(' ')}`,
        `last refusal: ${refused.at(-1)?.stderr.trim() ?? '-'}`,
        watcher.describe(),
      ].join('\n');

      expect(last.landedAfter, report).toBeLessThan(killedAt);
      expect(success?.status, report).toBe(0);
      // Host 1's qemu was gone before host 2's successful start even began, and before host 2 acquired anything.
      expect(qemuGoneAt ?? Infinity, report).toBeLessThan(success!.startedAt);
      for (const line of acquired) expect(logTimeMs(line), report).toBeGreaterThan(qemuGoneAt!);
      // Its supervisor stopped it on its own (no helper to tell it): its last words are in libvirt's log.
      expect(host1.qemuLog('vm-one'), report).toMatch(/no fresh lease deadline from helper incarnation \S+ by its deadline/);
      // Host 2 took the leases no earlier than host_dead after host 1's last renewal could be seen...
      expect(acquired.filter((l) => logTimeMs(l) >= success!.startedAt && logTimeMs(l) <= success!.endedAt).map((l) => l.lease), report).toEqual(vm.leases.map((l) => `${l.lockspace}:${l.resource}`));
      for (const line of acquired) expect(logTimeMs(line), report).toBeGreaterThanOrEqual(last.landedAfter + HOST_1_DEAD_MS);
      // ...and no later than host_dead after it saw that renewal (it reads others' records every
      // renewal, 2N, each read within N), plus one refused attempt in flight and a second of slack.
      expect(success!.startedAt, report).toBeLessThanOrEqual(last.seenAt + HOST_1_DEAD_MS + 3 * N_MS + longestRefusedMs + 200 + 1_000);
      expect(refused.length, report).toBeGreaterThanOrEqual(1);
      for (const attempt of refused) expectRefusedForHost1(attempt, report);
      const vm2 = await runningOn(host2, VM_1);
      expect(leadersOf(vm2), report).toEqual(vm.leases.map((l, i) => [l.resource, 2, lvers[i]! + 1]));
      expect(processUid(vm2.childPid!)).toBe(qemuUid);
      // libvirt on host 1 saw its emulator exit (the stopped hook could not reach the dead helper; the stop went on).
      await until('vm-one shut off on host 1', () => (domState(host1, 'vm-one') === 'shut off' ? true : undefined));
      expect(host2.virsh(['destroy', 'vm-one']).status).toBe(0);
      await noVmOn(host2);
    } finally {
      clearInterval(deathWatch);
      watcher.stop();
    }
  }, 180_000);
});

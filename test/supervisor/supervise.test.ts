import { closeSync, existsSync, fstatSync, openSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, exitOf, makeCluster, startHelper, startSupervisor, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { deathOf, expectLeaseUnreadable, fdsOf, leakedIntoSpawns, expectUnprivilegedJitless, listeningAddresses, listeningSocketsOf, openToVm, sleep, waitFor } from '../support/supervisor-kit.js';

/**
 * The supervisor as libvirt runs it: uid 65534 under `node --jitless`, the
 * lease file closed to it, a real helper. What the child inherits, what
 * happens to it when the supervisor is signalled or killed, and exit statuses.
 */

const N = 500;
let cluster: Cluster;
let helper: HelperProcess;
let out: string;
let vmCount = 0;

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: N });
  out = openToVm(join(cluster.dir, 'out'));
  helper = await startHelper(cluster, 1);
}, 60_000);

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

function nextVm(): string {
  vmCount += 1;
  return `5a0e0000-0000-4000-8000-${String(vmCount).padStart(12, '0')}`;
}

/** A registered VM with its own lease; its supervisor started as the VM's uid; resolves once the child is reported. */
async function running(script: string, extraStdio: Parameters<typeof startSupervisor>[4] = []) {
  const vm = nextVm();
  const lease = cluster.resource(`sup-${vmCount}`);
  expect(helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', lease]).status).toBe(0);
  const supervisor = startSupervisor(helper.runDir, vm, ['sh', '-c', script], VM_UID, extraStdio);
  const reported = await helper.waitForLog('session.child', 30_000, (l) => l.vm === vm);
  expectUnprivilegedJitless(supervisor.pid!);
  expectLeaseUnreadable(lease);
  return { vm, lease, supervisor, childPid: reported.pid as number };
}

function leaseState(vm: string): unknown {
  const status = JSON.parse(helper.cli(['status', '--json']).stdout);
  return status.vms.find((v: { uuid: string }) => v.uuid === vm)?.leases[0]?.state;
}

function unregister(vm: string): void {
  expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
}

describe('file descriptors', () => {
  it('the child gets every fd the supervisor inherited at the same number and open file, and none of its own', async () => {
    writeFileSync(join(cluster.dir, 'alpha'), 'alpha\n');
    writeFileSync(join(cluster.dir, 'bravo'), 'bravo\n');
    const alpha = openSync(join(cluster.dir, 'alpha'), 'r');
    const bravo = openSync(join(cluster.dir, 'bravo'), 'r');
    const expected = [...new Set([0, 1, 2, 3, 5, 7, ...leakedIntoSpawns()])].sort((a, b) => a - b);
    const { vm, supervisor, childPid } = await running('exec sleep 600', [alpha, 'ignore', bravo, 'ignore', 'pipe']);
    // Looked at from outside: the child (sleep) opens nothing of its own.
    expect(fdsOf(childPid), supervisor.output()).toEqual(expected);
    expect(statSync(`/proc/${childPid}/fd/3`).ino).toBe(fstatSync(alpha).ino);
    expect(statSync(`/proc/${childPid}/fd/5`).ino).toBe(fstatSync(bravo).ino);
    expect(readFileSync(`/proc/${childPid}/fd/3`, 'utf8')).toBe('alpha\n');
    expect(readFileSync(`/proc/${childPid}/fd/5`, 'utf8')).toBe('bravo\n');
    // fd 7 is one end of a socket pair whose other end we hold: the child's is the supervisor's very socket.
    expect(readlinkSync(`/proc/${childPid}/fd/7`)).toMatch(/^socket:\[\d+\]$/);
    expect(readlinkSync(`/proc/${childPid}/fd/7`)).toBe(readlinkSync(`/proc/${supervisor.pid}/fd/7`));
    closeSync(alpha);
    closeSync(bravo);
    unregister(vm);
    await exitOf(supervisor);
  });

  it('with nothing passed beyond stdio, the child has only 0, 1 and 2 (and what this test process leaks into every spawn)', async () => {
    const { vm, supervisor, childPid } = await running('exec sleep 600');
    expect(fdsOf(childPid), supervisor.output()).toEqual([0, 1, 2, ...leakedIntoSpawns()]);
    unregister(vm);
    await exitOf(supervisor);
  });
});

describe('signals and exit status', () => {
  it('SIGKILL of the supervisor kills the child; the helper then releases the lease', async () => {
    const { vm, supervisor, childPid } = await running('exec sleep 600');
    expect(alive(childPid)).toBe(true);
    process.kill(supervisor.pid!, 'SIGKILL');
    await deathOf(childPid, 10_000);
    await waitFor('lease released after the VM is gone', () => leaseState(vm) === 'free', 20_000, 100);
    unregister(vm);
  });

  it('SIGTERM reaches the child, shutdown ends well within 10 s, and the child status passes through', async () => {
    const marker = join(out, 'term');
    const ready = join(out, 'term-ready');
    const { vm, supervisor } = await running(`trap 'echo got-term > ${marker}; exit 7' TERM; touch ${ready}; while :; do sleep 0.05; done`);
    await waitFor('trap installed', () => existsSync(ready), 20_000);
    const sentAt = Date.now();
    supervisor.kill('SIGTERM');
    expect(await exitOf(supervisor)).toEqual({ code: 7, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(readFileSync(marker, 'utf8')).toBe('got-term\n');
    expect(leaseState(vm)).toBe('free');
    unregister(vm);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s is forwarded: a child that dies of it makes the supervisor exit %i', async (signal, status) => {
    const { vm, supervisor, childPid } = await running('exec sleep 600');
    supervisor.kill(signal);
    expect(await exitOf(supervisor)).toEqual({ code: status, signal: null });
    expect(alive(childPid)).toBe(false);
    unregister(vm);
  });

  it.each([
    ['exit 42', 42],
    ['kill -KILL $$', 137],
    ['exit 0', 0],
  ])('child `%s`: the supervisor exits %i and the lease is released', async (script, status) => {
    const vm = nextVm();
    expect(helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', cluster.resource(`sup-${vmCount}`)]).status).toBe(0);
    const supervisor = startSupervisor(helper.runDir, vm, ['sh', '-c', `sleep 0.2; ${script}`]);
    expect(await exitOf(supervisor), supervisor.output()).toEqual({ code: status, signal: null });
    expect(helper.lines.some((l) => l.msg === 'session.child' && l.vm === vm)).toBe(true);
    expect(leaseState(vm)).toBe('free');
    unregister(vm);
  });

  it('SIGUSR1 opens no debugger port and does not stop the supervisor', async () => {
    const { vm, supervisor, childPid } = await running('exec sleep 600');
    const before = listeningAddresses(supervisor.pid!);
    supervisor.kill('SIGUSR1');
    // Node opens the inspector within milliseconds of the signal; give it far longer.
    await sleep(1_500);
    expect(alive(supervisor.pid!)).toBe(true);
    expect(alive(childPid)).toBe(true);
    expect(listeningSocketsOf(supervisor.pid!)).toEqual([]);
    expect(listeningAddresses(supervisor.pid!)).toEqual(before);
    expect(supervisor.output()).not.toContain('Debugger');
    unregister(vm);
    await exitOf(supervisor);
  });
});

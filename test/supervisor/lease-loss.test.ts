import { closeSync, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, exitOf, makeCluster, startHelper, startSupervisor, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { deathOf, expectLeaseUnreadable, expectUnprivilegedJitless, openToVm } from '../support/supervisor-kit.js';

/**
 * Before the child starts: a busy lease exits 3 naming the holder, and the
 * command never runs. After: a lost lease, or a helper that stopped
 * answering, kills the child before the fail deadline (T + 8N) and exits 6
 * with the reason on stderr's last line. Supervisors as uid 65534 under
 * `node --jitless`.
 */

const N = 500;
const FAIL_MS = 8 * N;
let cluster: Cluster;
let out: string;
const helpers: HelperProcess[] = [];

beforeAll(() => {
  cluster = makeCluster({ ioTimeoutMs: N });
  out = openToVm(join(cluster.dir, 'out'));
});

afterAll(async () => {
  for (const h of helpers) {
    if (h.process.signalCode === null && h.process.exitCode === null) process.kill(h.process.pid!, 'SIGCONT');
    await h.stop('SIGKILL');
  }
  cluster?.remove();
});

async function helper(hostId: number): Promise<HelperProcess> {
  const h = await startHelper(cluster, hostId, {}, 60_000);
  helpers.push(h);
  return h;
}

async function runningOn(h: HelperProcess, vm: string, resource: string, script: string) {
  const lease = cluster.resource(resource);
  expect(h.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', lease]).status).toBe(0);
  const supervisor = startSupervisor(h.runDir, vm, ['sh', '-c', script]);
  const reported = await h.waitForLog('session.child', 30_000, (l) => l.vm === vm);
  expectUnprivilegedJitless(supervisor.pid!);
  expectLeaseUnreadable(lease);
  return { lease, supervisor, childPid: reported.pid as number };
}

const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? '';
// A child that ignores SIGTERM: only the supervisor's SIGKILL stops it.
const STUBBORN = "trap '' TERM; while :; do sleep 0.05; done";

describe('lease trouble', () => {
  it('busy: exit 3 with the holder (host id, name, state, since, takeover) on one line; the command never runs', async () => {
    const host1 = await helper(1);
    const host2 = await helper(2);
    const vm = '6b1f0000-0000-4000-8000-000000000001';
    const { supervisor } = await runningOn(host1, vm, 'busy', 'exec sleep 600');
    const marker = join(out, 'busy-started');
    expect(host2.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', cluster.resource('busy')]).status).toBe(0);
    const second = startSupervisor(host2.runDir, vm, ['sh', '-c', `touch ${marker}`]);
    expect(await exitOf(second)).toEqual({ code: 3, signal: null });
    const line = lastLine(second.output());
    expect(line).toMatch(/^vmlease supervise: lease busy: held by host 1 \(host-1\), LIVE since \d{4}-\d\d-\d\dT\S+Z, takeover possible never on timing alone$/);
    expect(existsSync(marker)).toBe(false);
    expect(host2.lines.some((l) => l.msg === 'session.child' && l.vm === vm)).toBe(false);
    expect(host2.cli(['unregister', '--vm', vm]).status).toBe(0);
    expect(host1.cli(['unregister', '--vm', vm]).status).toBe(0);
    await exitOf(supervisor);
    await host1.stop('SIGTERM');
    await host2.stop('SIGTERM');
  });

  it('lost (our delta record taken): the child, deaf to SIGTERM, is killed at once and the supervisor exits 6 before the fail deadline', async () => {
    // A valid record of an earlier incarnation of host 3, put back over the current one:
    // at its next renewal the helper finds host id 3 belongs to someone else.
    const before = await helper(3);
    const earlier = readSector(cluster.lockspacePath, 2);
    await before.stop('SIGTERM');
    const host3 = await helper(3);
    const vm = '6b1f0000-0000-4000-8000-000000000002';
    const { supervisor, childPid } = await runningOn(host3, vm, 'lost', STUBBORN);
    const takenAt = Date.now();
    writeSector(cluster.lockspacePath, 2, earlier);
    const exit = await exitOf(supervisor);
    const diedAt = await deathOf(childPid, 1_000);
    expect(exit, supervisor.output()).toEqual({ code: 6, signal: null });
    // The helper renews at most 2N after the write; it fails 8N after its last renewal before that.
    expect(diedAt - takenAt, supervisor.output()).toBeLessThan(FAIL_MS);
    expect(lastLine(supervisor.output())).toMatch(/^vmlease supervise: lease lost: lockspace cluster lost: record-taken: host id 3 now belongs to /);
    await host3.stop('SIGKILL');
  });

  it('helper SIGSTOPped: the supervisor kills the child on its own before the fail deadline and exits 6', async () => {
    const host4 = await helper(4);
    const vm = '6b1f0000-0000-4000-8000-000000000003';
    const { supervisor, childPid } = await runningOn(host4, vm, 'stopped', 'exec sleep 600');
    const stoppedAt = Date.now();
    process.kill(host4.process.pid!, 'SIGSTOP');
    // The last renewal was before the SIGSTOP: its fail deadline is before stoppedAt + 8N.
    const diedAt = await deathOf(childPid, FAIL_MS + 10_000);
    expect(diedAt - stoppedAt, supervisor.output()).toBeLessThan(FAIL_MS);
    expect(await exitOf(supervisor)).toEqual({ code: 6, signal: null });
    expect(lastLine(supervisor.output())).toMatch(/no fresh lease deadline from helper incarnation \S+ by its deadline$/);
    expect(alive(childPid)).toBe(false);
    process.kill(host4.process.pid!, 'SIGCONT');
    await host4.stop('SIGKILL');
  });
});

/** The lockspace sector of a host id (sector h-1), 512-byte sectors as the cluster is initialised. */
function readSector(path: string, index: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(512);
    expect(readSync(fd, buffer, 0, 512, index * 512)).toBe(512);
    return buffer;
  } finally {
    closeSync(fd);
  }
}

function writeSector(path: string, index: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, index * 512);
  } finally {
    closeSync(fd);
  }
}

import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, exitOf, makeCluster, startHelper, startSupervisor, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';

/**
 * One helper process, the admin commands and one supervisor as uid 65534
 * under node --jitless: the path a new user walks through in the README.
 */

const VM = '0e5a1f0c-3b7d-4c59-9a2e-5d0f6b7c8d9e';
let cluster: Cluster;
let helper: HelperProcess;

beforeAll(async () => {
  // Generous for a loaded CI machine: a lease read past N fails (the storage deadline is N).
  cluster = makeCluster({ ioTimeoutMs: 500 });
  helper = await startHelper(cluster, 1);
});

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

describe('helper, admin commands and supervisor', () => {
  it('registers a VM, runs its command under the lease, releases when the command exits', async () => {
    const lease = cluster.resource('vm-basic');
    const registered = helper.cli(['register', '--vm', VM, '--uid', String(VM_UID), '--lease', lease, '--json']);
    expect(registered.stderr).toBe('');
    expect(JSON.parse(registered.stdout).vm.leases[0]).toMatchObject({ resource: 'vm-basic', state: 'free' });

    const supervisor = startSupervisor(helper.runDir, VM, ['sleep', '2']);
    const child = await helper.waitForLog('session.child', 20_000);
    const status = JSON.parse(helper.cli(['status', '--json']).stdout);
    const vm = status.vms.find((v: { uuid: string }) => v.uuid === VM);
    expect(vm).toMatchObject({ state: 'running', supervisorPid: supervisor.pid, childPid: child.pid });
    expect(vm.leases[0]).toMatchObject({ state: 'held', lver: 1, mode: 'exclusive' });
    expect(alive(child.pid as number)).toBe(true);

    expect(await exitOf(supervisor)).toEqual({ code: 0, signal: null });
    const after = JSON.parse(helper.cli(['status', '--json']).stdout).vms.find((v: { uuid: string }) => v.uuid === VM);
    expect(after.leases[0]).toMatchObject({ state: 'free', lver: null });

    const unregistered = helper.cli(['unregister', '--vm', VM, '--json']);
    expect(JSON.parse(unregistered.stdout)).toEqual({ vm: VM, released: [] });
    expect(JSON.parse(helper.cli(['status', '--json']).stdout).vms).toEqual([]);
  });

  it("the VM's uid, which the supervisor runs as, cannot open the lease file it holds a lease on", () => {
    const lease = cluster.resource('vm-basic');
    const path = lease.split(':')[2]!;
    const probe = spawnSync('setpriv', ['--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups', process.execPath, '-e', `require('fs').openSync(${JSON.stringify(path)}, 'r')`], { encoding: 'utf8' });
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toContain('EACCES');
  });

  it('shows this host LIVE in its lockspace host table', () => {
    const hosts = JSON.parse(helper.cli(['hosts', cluster.lockspace, '--json']).stdout);
    expect(hosts.hosts).toEqual([expect.objectContaining({ hostId: 1, state: 'LIVE', hostName: 'host-1', self: true })]);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { deriveFenceTiming, deriveTiming } from '../../dist/helper/engine/timing.js';
import { alive, exitOf, makeCluster, startHelper, startSupervisor, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';

/**
 * A helper that dies (SIGKILL) or detaches (SIGQUIT) while a VM runs, and is
 * started again: it resumes its incarnation, the supervisor reconnects, and
 * the VM keeps running with its lease; when resuming is not safe any more
 * (the supervisor already self-fenced), the new helper joins anew.
 */

const N = 500;
const fence = deriveFenceTiming(deriveTiming(N, 0));
const cluster: Cluster = makeCluster({ ioTimeoutMs: N });
const helpers: HelperProcess[] = [];

afterAll(async () => {
  for (const h of helpers) await h.stop('SIGKILL');
  cluster.remove();
});

async function helper(): Promise<HelperProcess> {
  const h = await startHelper(cluster, 1, {}, 60_000);
  helpers.push(h);
  return h;
}

function vmStatus(h: HelperProcess, vm: string) {
  return JSON.parse(h.cli(['status', '--json']).stdout).vms.find((v: { uuid: string }) => v.uuid === vm);
}

async function runningVm(h: HelperProcess, vm: string, resource: string) {
  expect(h.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', cluster.resource(resource)]).status).toBe(0);
  const supervisor = startSupervisor(h.runDir, vm, ['sleep', '600']);
  const child = await h.waitForLog('session.child', 20_000, (l) => l.vm === vm);
  return { supervisor, childPid: child.pid as number };
}

describe('helper restart', () => {
  it.each(['SIGKILL', 'SIGQUIT'] as const)('after %s the next helper resumes: the VM keeps running and keeps its lease', async (signal) => {
    const vm = signal === 'SIGKILL' ? '7d1c0b2a-1111-4a2b-9c3d-4e5f60718293' : '7d1c0b2a-2222-4a2b-9c3d-4e5f60718293';
    const first = await helper();
    const { supervisor, childPid } = await runningVm(first, vm, `restart-${signal.toLowerCase()}`);
    const lver = vmStatus(first, vm).leases[0].lver;
    await first.stop(signal);
    expect(first.lines.map((l) => l.msg)).not.toContain('vm.stopping');

    const second = await helper();
    await second.waitForLog('helper.resumed');
    await second.waitForLog('session.bound', 20_000, (l) => l.vm === vm && l.returning === true);
    // Longer than the deadline the old incarnation last signed: only fresh statements keep the VM alive.
    await new Promise((resolve) => setTimeout(resolve, fence.supervisorValidForMs + 2 * N));
    expect(alive(childPid)).toBe(true);
    expect(vmStatus(second, vm)).toMatchObject({ state: 'running', childPid, supervisorPid: supervisor.pid });
    expect(vmStatus(second, vm).leases[0]).toMatchObject({ state: 'held', lver });

    expect(second.cli(['unregister', '--vm', vm]).status).toBe(0);
    await exitOf(supervisor);
    expect(alive(childPid)).toBe(false);
    await second.stop('SIGTERM');
  }, 120_000);

  it('when the supervisor already gave up (no fresh deadline), the next helper does not resume: it stops what is left and joins anew', async () => {
    const vm = '7d1c0b2a-3333-4a2b-9c3d-4e5f60718293';
    const first = await helper();
    const generation = JSON.parse(first.cli(['status', '--json']).stdout).lockspaces[0].generation;
    const { supervisor, childPid } = await runningVm(first, vm, 'restart-late');
    await first.stop('SIGKILL');
    const exit = await exitOf(supervisor);
    expect(exit.code).toBe(6);
    expect(supervisor.output().trim().split('\n').at(-1)).toContain('no fresh lease deadline');
    expect(alive(childPid)).toBe(false);

    const second = await helper();
    const refused = await second.waitForLog('helper.not-resuming');
    expect(refused.reason).toContain('supervisor is gone');
    expect(JSON.parse(second.cli(['status', '--json']).stdout)).toMatchObject({ vms: [], lockspaces: [{ state: 'joined', generation: generation + 1 }] });
    await second.stop('SIGTERM');
  }, 120_000);
});

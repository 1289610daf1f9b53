import { describe, expect, it } from 'vitest';
import { HelperError } from '../../dist/helper/daemon/helper-error.js';
import { memoryLogger } from '../../dist/helper/daemon/log.js';
import {
  PREVIOUS_HELPER_WAIT_MS,
  RECOVERY_GIVE_UP_AFTER_MS,
  RECOVERY_POLL_MS,
  RECOVERY_SIGKILL_AFTER_MS,
  previousVmProcesses,
  recoverFromPreviousHelper,
} from '../../dist/helper/daemon/recovery.js';
import type { HelperState, PersistedVm } from '../../dist/helper/daemon/state-file.js';
import { ManualClock } from '../support/manual-clock.js';
import { advance, FakeControl, track } from './support.js';

const INCARNATION = { hostName: 'host-a', bootId: '0123456789abcdef0123456789abcdef', nonce: 'fedcba9876543210' };

function vm(uuid: string, uid: number, supervisor: [number, string, number] | null, child: [number, string, number] | null): PersistedVm {
  const p = (x: [number, string, number] | null) => (x === null ? null : { pid: x[0], startTime: x[1], uid, sessionId: x[2] });
  return { uuid, uid, gid: uid, leases: [], held: [], supervisor: p(supervisor), child: p(child), libvirtDomain: null, secretHash: null };
}

function state(vms: PersistedVm[]): HelperState {
  return {
    version: 1,
    helper: { pid: 4242, startTime: '987654' },
    incarnation: INCARNATION,
    lockspaces: [{ name: 'cluster', path: '/srv/leases/cluster.ls', offset: 0, generation: 3 }],
    vms,
  };
}

function setup() {
  const clock = new ManualClock(10_000);
  const control = new FakeControl(clock);
  const log = memoryLogger();
  return { clock, control, log };
}

async function rejection(outcome: { error: unknown }): Promise<HelperError> {
  expect(outcome.error).toBeInstanceOf(HelperError);
  return outcome.error as HelperError;
}

describe('recoverFromPreviousHelper', () => {
  it('does nothing without a state file', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 5000, uid: 107, sessionId: 5000 });
    await expect(recoverFromPreviousHelper(undefined, control, clock, log)).resolves.toEqual({ previousIncarnationGone: undefined, stoppedPids: [] });
    expect(control.signals).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
    expect(log.lines).toEqual([]);
  });

  it('with a state but nothing left running, returns the old incarnation at once without signalling', async () => {
    const { clock, control, log } = setup();
    const result = await recoverFromPreviousHelper(state([vm('a', 107, [5000, '1', 5000], [5001, '2', 5000])]), control, clock, log);
    expect(result).toEqual({ previousIncarnationGone: INCARNATION, stoppedPids: [] });
    expect(control.signals).toEqual([]);
    expect(log.lines.map((l) => l.msg)).toEqual(['helper.recovered']);
  });

  it('waits while the previous helper (same pid and start time) is alive, then throws HELPER_PREVIOUS_ALIVE', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 4242, uid: 0, sessionId: 4242, startTime: '987654' });
    control.spawn({ pid: 5000, uid: 107, sessionId: 5000, startTime: '1' });
    const outcome = track(recoverFromPreviousHelper(state([vm('a', 107, [5000, '1', 5000], null)]), control, clock, log));
    await advance(clock, PREVIOUS_HELPER_WAIT_MS - 10, 10);
    expect(outcome.settled).toBe(false);
    await advance(clock, 10);
    expect(outcome.settled).toBe(true);
    const error = await rejection(outcome);
    expect(error.code).toBe('HELPER_PREVIOUS_ALIVE');
    expect(error.message).toBe(`the previous helper (pid 4242) is still alive after ${PREVIOUS_HELPER_WAIT_MS} ms`);
    // Nothing was signalled: neither the old helper nor its VMs.
    expect(control.signals).toEqual([]);
    expect(control.describe(5000)?.startTime).toBe('1');
  });

  it('goes on once the previous helper exits, and only then stops its VMs', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 4242, uid: 0, sessionId: 4242, startTime: '987654' });
    control.spawn({ pid: 5000, uid: 107, sessionId: 5000, startTime: '1' });
    const outcome = track(recoverFromPreviousHelper(state([vm('a', 107, [5000, '1', 5000], null)]), control, clock, log));
    await advance(clock, 1_000);
    expect(control.signals).toEqual([]);
    control.exit(4242);
    await advance(clock, RECOVERY_POLL_MS);
    expect(control.delivered()).toEqual(['SIGTERM 5000@11050']);
    await advance(clock, RECOVERY_POLL_MS);
    expect(outcome.value).toEqual({ previousIncarnationGone: INCARNATION, stoppedPids: [5000] });
  });

  it('does not wait for a process that merely reuses the previous helper\'s pid', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 4242, uid: 0, sessionId: 1, startTime: '111' });
    await expect(recoverFromPreviousHelper(state([]), control, clock, log)).resolves.toEqual({ previousIncarnationGone: INCARNATION, stoppedPids: [] });
    expect(clock.nowMs()).toBe(10_000);
    expect(control.signals).toEqual([]);
  });

  it('stops the recorded supervisor and child and every process of their sessions with the VM uid, and returns only when they are gone', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 5000, uid: 107, sessionId: 5000, startTime: '50' }); // supervisor
    control.spawn({ pid: 5001, uid: 107, sessionId: 5000, startTime: '51', behaviour: 'ignores-term' }); // qemu (child)
    control.spawn({ pid: 5002, uid: 107, sessionId: 5000, startTime: '52' }); // a helper process qemu started
    control.spawn({ pid: 6000, uid: 108, sessionId: 6000, startTime: '60' }); // second VM's supervisor
    control.spawn({ pid: 6005, uid: 108, sessionId: 6005, startTime: '65' }); // its child, in a session of its own
    control.spawn({ pid: 6006, uid: 108, sessionId: 6005, startTime: '66', behaviour: 'ignores-term' }); // in the child's session
    // Not the VMs' processes: another uid in a VM's session, the VM uid in another session, a zombie.
    control.spawn({ pid: 7000, uid: 109, sessionId: 5000, startTime: '70' });
    control.spawn({ pid: 7001, uid: 107, sessionId: 7001, startTime: '71' });
    control.spawn({ pid: 7002, uid: 107, sessionId: 5000, startTime: '72', zombie: true });
    const previous = state([vm('a', 107, [5000, '50', 5000], [5001, '51', 5000]), vm('b', 108, [6000, '60', 6000], [6005, '65', 6005])]);
    expect(previousVmProcesses(previous, control).map((p) => p.pid).sort()).toEqual([5000, 5001, 5002, 6000, 6005, 6006]);

    const outcome = track(recoverFromPreviousHelper(previous, control, clock, log));
    await advance(clock, RECOVERY_SIGKILL_AFTER_MS - 1);
    expect(outcome.settled).toBe(false);
    expect(control.delivered().sort()).toEqual(['SIGTERM 5000@10000', 'SIGTERM 5001@10000', 'SIGTERM 5002@10000', 'SIGTERM 6000@10000', 'SIGTERM 6005@10000', 'SIGTERM 6006@10000']);
    await advance(clock, 1);
    expect(control.delivered().filter((s) => s.startsWith('SIGKILL')).sort()).toEqual(['SIGKILL 5001@12000', 'SIGKILL 6006@12000']);
    expect(outcome.settled).toBe(false);
    await advance(clock, RECOVERY_POLL_MS);
    expect(outcome.settled).toBe(true);
    const result = outcome.value!;
    expect(result.previousIncarnationGone).toEqual(INCARNATION);
    expect([...result.stoppedPids].sort()).toEqual([5000, 5001, 5002, 6000, 6005, 6006]);
    // The others were never signalled and still run.
    expect(control.signals.filter((s) => s.pid >= 7000)).toEqual([]);
    expect([...control.processes.keys()].sort()).toEqual([7000, 7001, 7002]);
    expect(log.lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'helper.recovery-stopping'],
      ['info', 'helper.recovered'],
    ]);
  });

  it('throws HELPER_PREVIOUS_VMS_ALIVE, naming the survivor, when a process survives SIGKILL', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 5000, uid: 107, sessionId: 5000, startTime: '50' });
    control.spawn({ pid: 5001, uid: 107, sessionId: 5000, startTime: '51', behaviour: 'unkillable' });
    const outcome = track(recoverFromPreviousHelper(state([vm('a', 107, [5000, '50', 5000], [5001, '51', 5000])]), control, clock, log));
    await advance(clock, RECOVERY_GIVE_UP_AFTER_MS - 1, 1);
    expect(outcome.settled).toBe(false);
    await advance(clock, 1);
    const error = await rejection(outcome);
    expect(error.code).toBe('HELPER_PREVIOUS_VMS_ALIVE');
    expect(error.message).toMatch(/^processes 5001 of the previous helper's VMs cannot be proven gone/);
    expect(control.delivered()).toEqual(['SIGTERM 5000@10000', 'SIGTERM 5001@10000', 'SIGKILL 5001@12000']);
    expect(log.lines.map((l) => l.msg)).toEqual(['helper.recovery-stopping']);
  });

  it('does not signal a recorded process whose pid now belongs to another process', async () => {
    const { clock, control, log } = setup();
    control.spawn({ pid: 5000, uid: 107, sessionId: 9000, startTime: '999' });
    const result = await recoverFromPreviousHelper(state([vm('a', 107, [5000, '50', 5000], null)]), control, clock, log);
    expect(result).toEqual({ previousIncarnationGone: INCARNATION, stoppedPids: [] });
    expect(control.signals).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { stopProcesses, type StopDeadlines } from '../../dist/helper/vms/stop-processes.js';
import { stillRunning, type ProcessRef } from '../../dist/helper/vms/vm-processes.js';
import { ManualClock } from '../support/manual-clock.js';
import { advance, FakeControl, track } from './support.js';

const DEADLINES: StopDeadlines = { sigkillAtMs: 1_000, giveUpAtMs: 3_000, pollMs: 50 };

/** A clock, a fake kernel and the VM's processes as the helper recorded them. */
function setup() {
  const clock = new ManualClock(0);
  const control = new FakeControl(clock);
  const recorded: ProcessRef[] = [];
  const add = (pid: number, behaviour: 'dies' | 'ignores-term' | 'unkillable' = 'dies') => {
    control.spawn({ pid, uid: 107, sessionId: 500, behaviour });
    recorded.push(control.ref(pid));
  };
  // Like Vm.aliveProcesses: recorded processes still running (same pid and start time).
  const list = () => recorded.filter((p) => stillRunning(control, p));
  return { clock, control, add, list, recorded };
}

describe('fake process control', () => {
  it('signals only a process with the same pid, start time and uid, never uid 0, never a zombie', () => {
    const clock = new ManualClock(0);
    const control = new FakeControl(clock);
    control.spawn({ pid: 10, uid: 107, sessionId: 1, startTime: '5' });
    control.spawn({ pid: 11, uid: 0, sessionId: 1, startTime: '5' });
    control.spawn({ pid: 12, uid: 107, sessionId: 1, startTime: '5', zombie: true });
    expect(control.signal({ pid: 10, startTime: '6', uid: 107 }, 'SIGKILL')).toBe('mismatch');
    expect(control.signal({ pid: 10, startTime: '5', uid: 108 }, 'SIGKILL')).toBe('mismatch');
    expect(control.signal({ pid: 11, startTime: '5', uid: 0 }, 'SIGKILL')).toBe('mismatch');
    expect(control.signal({ pid: 12, startTime: '5', uid: 107 }, 'SIGKILL')).toBe('gone');
    expect(control.signal({ pid: 13, startTime: '5', uid: 107 }, 'SIGKILL')).toBe('gone');
    expect(control.describe(10)).toEqual({ pid: 10, startTime: '5', uid: 107, sessionId: 1, ppid: 1, euid: 107 });
    expect(control.signal({ pid: 10, startTime: '5', uid: 107 }, 'SIGKILL')).toBe('signalled');
    expect(control.describe(10)).toBeUndefined();
    expect(control.sessionProcesses(107, 1)).toEqual([]); // the zombie is not alive
  });
});

describe('stopProcesses', () => {
  it('reports gone at once when SIGTERM stops everything (no SIGKILL)', async () => {
    const { clock, control, add, list } = setup();
    add(10);
    add(11);
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 0);
    expect(result.settled).toBe(true);
    expect(result.value).toEqual({ gone: true });
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGTERM 11@0']);
  });

  it('reports gone with nothing to stop, without signalling', async () => {
    const { clock, control, list } = setup();
    await expect(stopProcesses(list, control, clock, DEADLINES)).resolves.toEqual({ gone: true });
    expect(control.signals).toEqual([]);
  });

  it('sends SIGKILL at sigkillAtMs, only to what SIGTERM left', async () => {
    const { clock, control, add, list } = setup();
    add(10);
    add(11, 'ignores-term');
    add(12);
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 999);
    expect(result.settled).toBe(false);
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGTERM 11@0', 'SIGTERM 12@0']);
    await advance(clock, 1);
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGTERM 11@0', 'SIGTERM 12@0', 'SIGKILL 11@1000']);
    // The kernel is given one poll to tear it down; then it is seen gone.
    await advance(clock, 49);
    expect(result.settled).toBe(false);
    await advance(clock, 1);
    expect(result.value).toEqual({ gone: true });
  });

  it('reports gone at the first poll after the last process exits, never sending SIGKILL', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'ignores-term');
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 130);
    control.exit(10); // it finished its shutdown at 130 ms
    await advance(clock, 19);
    expect(result.settled).toBe(false);
    await advance(clock, 1);
    expect(result.value).toEqual({ gone: true });
    expect(clock.nowMs()).toBe(150);
    await advance(clock, 2_000);
    expect(control.delivered()).toEqual(['SIGTERM 10@0']);
  });

  it('gives up at giveUpAtMs with the survivors listed when a process ignores every signal (D state)', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'ignores-term');
    add(11, 'unkillable');
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 2_999);
    expect(result.settled).toBe(false);
    await advance(clock, 1);
    expect(result.settled).toBe(true);
    expect(result.value).toEqual({ gone: false, alive: [{ pid: 11, startTime: '1100', uid: 107 }] });
    // SIGKILL once, at its time, to both survivors of SIGTERM; nothing else.
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGTERM 11@0', 'SIGKILL 10@1000', 'SIGKILL 11@1000']);
  });

  it('sends SIGTERM and SIGKILL at once when the SIGKILL time has already passed', async () => {
    const { clock, control, add, list } = setup();
    clock.advance(5_000);
    add(10, 'ignores-term');
    const result = track(stopProcesses(list, control, clock, { sigkillAtMs: 4_000, giveUpAtMs: 6_000, pollMs: 50 }));
    await advance(clock, 0);
    expect(control.delivered()).toEqual(['SIGTERM 10@5000', 'SIGKILL 10@5000']);
    await advance(clock, 50);
    expect(result.value).toEqual({ gone: true });
  });

  it('never signals a process whose start time changed (its pid was reused)', async () => {
    const { clock, control, add } = setup();
    add(10, 'ignores-term');
    add(11, 'ignores-term');
    // A list that looks at pids only (as a buggy caller might): the control must still refuse.
    const snapshot = [control.ref(10), control.ref(11)];
    const list = () => snapshot.filter((p) => control.describe(p.pid) !== undefined);
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 500);
    // 10 exits and its pid goes to an unrelated process of the same uid.
    control.exit(10);
    control.spawn({ pid: 10, uid: 107, sessionId: 900, startTime: '777', behaviour: 'dies' });
    await advance(clock, 500);
    expect(control.signals.filter((s) => s.pid === 10).map((s) => `${s.signal} ${s.startTime} ${s.result}`)).toEqual(['SIGTERM 1000 signalled', 'SIGKILL 1000 mismatch']);
    expect(control.describe(10)).toEqual({ pid: 10, startTime: '777', uid: 107, sessionId: 900, ppid: 1, euid: 107 });
    // 11 got its SIGKILL; the stranger with pid 10 keeps the list from emptying, and is never signalled.
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGTERM 11@0', 'SIGKILL 11@1000']);
    await advance(clock, 2_000, 10);
    expect(result.value).toEqual({ gone: false, alive: [{ pid: 10, startTime: '1000', uid: 107 }] });
    expect(control.describe(10)?.startTime).toBe('777');
  });

  it('does not signal a recorded process that was replaced, and counts it gone', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'ignores-term');
    control.exit(10);
    control.spawn({ pid: 10, uid: 107, sessionId: 500, startTime: '999', behaviour: 'dies' });
    await expect(stopProcesses(list, control, clock, DEADLINES)).resolves.toEqual({ gone: true });
    expect(control.signals).toEqual([]);
    expect(control.describe(10)?.startTime).toBe('999');
  });

  it('counts a zombie as gone', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'ignores-term');
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 200);
    control.processes.get(10)!.zombie = true; // exited, not yet reaped
    await advance(clock, 50);
    expect(result.value).toEqual({ gone: true });
    expect(control.delivered()).toEqual(['SIGTERM 10@0']);
  });
});

/**
 * A scan of /proc that throws (some process's stat cannot be parsed: the
 * helper once met pgrp -1 from an exiting qemu) proves nothing: the VM is
 * not gone, and the fence must neither throw (a rejected fence is an
 * unhandled rejection: the helper dies) nor release.
 */
describe('stopProcesses when /proc cannot be read', () => {
  it('never reports gone while every scan fails, signals nothing, and gives up without throwing', async () => {
    const { clock, control, add, list } = setup();
    add(10);
    control.unreadable = 'pgrp -1';
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 2_999, 10);
    expect(result.settled).toBe(false);
    await advance(clock, 1);
    expect(result.error).toBeUndefined();
    expect(result.value).toEqual({ gone: false, alive: [], unreadable: '/proc/4321/stat: pgrp -1' });
    expect(control.signals).toEqual([]);
    expect([...control.processes.keys()]).toEqual([10]); // never signalled, still there
  });

  it('keeps what the last good scan saw as alive, and goes on once /proc reads again', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'ignores-term');
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 0);
    expect(control.delivered()).toEqual(['SIGTERM 10@0']);
    control.unreadable = 'pgrp -1';
    // Unreadable across the SIGKILL time: nothing is sent on a scan that failed, and nothing is released.
    await advance(clock, 1_200, 10);
    expect(result.settled).toBe(false);
    expect(control.delivered()).toEqual(['SIGTERM 10@0']);
    control.unreadable = undefined;
    await advance(clock, 50, 10);
    expect(control.delivered()).toEqual(['SIGTERM 10@0', 'SIGKILL 10@1250']);
    await advance(clock, 50, 10);
    expect(result.value).toEqual({ gone: true });
  });

  it('lists a process whose last scan failed at the give-up time as alive, with the reason', async () => {
    const { clock, control, add, list } = setup();
    add(10, 'unkillable');
    const result = track(stopProcesses(list, control, clock, DEADLINES));
    await advance(clock, 1_500, 10);
    control.unreadable = 'pgrp -1';
    await advance(clock, 1_500, 10);
    expect(result.value).toEqual({ gone: false, alive: [{ pid: 10, startTime: '1000', uid: 107 }], unreadable: '/proc/4321/stat: pgrp -1' });
  });
});

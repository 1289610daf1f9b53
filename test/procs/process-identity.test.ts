import { AssertionError } from 'node:assert';
import { afterEach, describe, expect, it } from 'vitest';
import { signalIfSame, verifyChildOf } from '../../dist/helper/procs/index.js';
import { asNobody, FakeTable, fakeProcess, killAll, NOBODY, pidOf, procfs, start, waitFor, waitForComm, waitForExit } from './support.js';

afterEach(() => killAll());

async function nobodySleep(): Promise<{ pid: number; startTime: bigint; child: ReturnType<typeof start> }> {
  const [command, args] = asNobody('sleep', ['30']);
  const child = start(command, args);
  const pid = pidOf(child);
  const info = await waitForComm(pid, 'sleep');
  return { pid, startTime: info.startTime, child };
}

describe('verifyChildOf on real processes', () => {
  it('accepts a child running as uid 65534 and returns its identity', async () => {
    const { pid, startTime } = await nobodySleep();
    const result = verifyChildOf(procfs, pid, startTime, { parentPid: process.pid, uid: NOBODY });
    expect(result.ok && result.identity).toEqual({ pid, startTime, uid: NOBODY });
  });

  it('refuses it for another uid', async () => {
    const { pid, startTime } = await nobodySleep();
    const result = verifyChildOf(procfs, pid, startTime, { parentPid: process.pid, uid: 65533 });
    expect(!result.ok && result.code).toBe('IDENTITY_UID_MISMATCH');
  });

  it('refuses a root process, and a request for uid 0', async () => {
    const child = start('sleep', ['30']);
    const pid = pidOf(child);
    const { startTime } = await waitForComm(pid, 'sleep');
    const asked = verifyChildOf(procfs, pid, startTime, { parentPid: process.pid, uid: NOBODY });
    expect(!asked.ok && asked.code).toBe('IDENTITY_UID_ROOT');
    const askedRoot = verifyChildOf(procfs, pid, startTime, { parentPid: process.pid, uid: 0 });
    expect(!askedRoot.ok && askedRoot.code).toBe('IDENTITY_UID_ROOT');
  });

  it('refuses a wrong start time (a reused pid)', async () => {
    const { pid, startTime } = await nobodySleep();
    const result = verifyChildOf(procfs, pid, startTime - 1n, { parentPid: process.pid, uid: NOBODY });
    expect(!result.ok && result.code).toBe('IDENTITY_START_TIME_MISMATCH');
  });

  it('refuses a process that is not a child of the parent named', async () => {
    // A grandchild: sh (uid 65534) runs sleep as its child and waits for it.
    const [command, args] = asNobody('sh', ['-c', 'sleep 30; exit 0']);
    const shell = pidOf(start(command, args));
    const sleeper = await waitFor(() => procfs.list().map((p) => procfs.read(p)).find((i) => i?.ppid === shell && i.comm === 'sleep'), 'the grandchild');
    const result = verifyChildOf(procfs, sleeper.pid, sleeper.startTime, { parentPid: process.pid, uid: NOBODY });
    expect(!result.ok && result.code).toBe('IDENTITY_PARENT_MISMATCH');
    expect(verifyChildOf(procfs, sleeper.pid, sleeper.startTime, { parentPid: shell, uid: NOBODY }).ok).toBe(true);
  });

  it('refuses a zombie, and a pid with no process', async () => {
    // sleep 30 is exec'd over a shell that started 'true' in the background: nobody reaps 'true'.
    const [command, args] = asNobody('sh', ['-c', 'true & exec sleep 30']);
    const parent = pidOf(start(command, args));
    const zombie = await waitFor(() => procfs.list().map((p) => procfs.read(p)).find((i) => i?.ppid === parent && i.state === 'Z'), 'the zombie');
    const result = verifyChildOf(procfs, zombie.pid, zombie.startTime, { parentPid: parent, uid: NOBODY });
    expect(!result.ok && result.code).toBe('IDENTITY_ZOMBIE');
    const none = verifyChildOf(new FakeTable(new Map()), 1234, 1n, { parentPid: parent, uid: NOBODY });
    expect(!none.ok && none.code).toBe('IDENTITY_NO_SUCH_PROCESS');
  });
});

describe('verifyChildOf order and effective uid (fake table)', () => {
  it('refuses a process whose effective uid differs (a setuid binary), and one with effective uid 0', () => {
    const table = new FakeTable(new Map([
      [7, fakeProcess({ pid: 7, euid: 108 })],
      [8, fakeProcess({ pid: 8, euid: 0 })],
    ]));
    const setuid = verifyChildOf(table, 7, 5000n, { parentPid: 100, uid: 107 });
    expect(!setuid.ok && setuid.code).toBe('IDENTITY_UID_MISMATCH');
    const root = verifyChildOf(table, 8, 5000n, { parentPid: 100, uid: 107 });
    expect(!root.ok && root.code).toBe('IDENTITY_UID_ROOT');
  });

  it('checks the start time before anything else about the process', () => {
    const table = new FakeTable(new Map([[7, fakeProcess({ pid: 7, uid: 0, state: 'Z', ppid: 1 })]]));
    const result = verifyChildOf(table, 7, 1n, { parentPid: 100, uid: 107 });
    expect(!result.ok && result.code).toBe('IDENTITY_START_TIME_MISMATCH');
  });
});

describe('signalIfSame', () => {
  const identity = { pid: 7, startTime: 5000n, uid: 107 };

  it('does not signal after the pid was reused (start time changed)', () => {
    const table = new FakeTable(new Map([[7, fakeProcess({ pid: 7, startTime: 5001n })]]));
    expect(signalIfSame(table, identity, 'SIGKILL')).toBe('mismatch');
    expect(table.signals).toEqual([]);
  });

  it('re-reads right before the signal: a pid reused after an earlier check is not signalled', () => {
    const table = new FakeTable(new Map([[7, fakeProcess({ pid: 7 })]]));
    expect(signalIfSame(table, identity, 'SIGTERM')).toBe('signalled');
    table.processes.set(7, fakeProcess({ pid: 7, startTime: 9999n }));
    expect(signalIfSame(table, identity, 'SIGKILL')).toBe('mismatch');
    expect(table.signals).toEqual([{ pid: 7, signal: 'SIGTERM' }]);
  });

  it('does not signal a process that changed uid or became root', () => {
    const table = new FakeTable(new Map([
      [7, fakeProcess({ pid: 7, uid: 108 })],
      [8, fakeProcess({ pid: 8, euid: 0 })],
    ]));
    expect(signalIfSame(table, identity, 'SIGKILL')).toBe('mismatch');
    expect(signalIfSame(table, { ...identity, pid: 8 }, 'SIGKILL')).toBe('mismatch');
    expect(table.signals).toEqual([]);
  });

  it('reports gone for no process and for a zombie, without signalling', () => {
    const table = new FakeTable(new Map([[8, fakeProcess({ pid: 8, state: 'Z' })]]));
    expect(signalIfSame(table, identity, 'SIGKILL')).toBe('gone');
    expect(signalIfSame(table, { ...identity, pid: 8 }, 'SIGKILL')).toBe('gone');
    expect(table.signals).toEqual([]);
  });

  it('treats an identity with uid 0 as a bug', () => {
    const table = new FakeTable(new Map([[7, fakeProcess({ pid: 7, uid: 0, euid: 0 })]]));
    expect(() => signalIfSame(table, { ...identity, uid: 0 }, 'SIGKILL')).toThrow(AssertionError);
    expect(table.signals).toEqual([]);
  });

  it('signals a real matching child', async () => {
    const { pid, startTime, child } = await nobodySleep();
    expect(signalIfSame(procfs, { pid, startTime, uid: NOBODY }, 'SIGTERM')).toBe('signalled');
    expect(await waitForExit(child)).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('does not signal a real child under a wrong start time', async () => {
    const { pid, startTime, child } = await nobodySleep();
    expect(signalIfSame(procfs, { pid, startTime: startTime + 1n, uid: NOBODY }, 'SIGTERM')).toBe('mismatch');
    await new Promise((r) => setTimeout(r, 100));
    expect(child.exitCode === null && child.signalCode === null).toBe(true);
    expect(procfs.read(pid)?.state).toBe('S');
  });
});

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { aliveVmProcesses, isAlive, killVmProcesses, type ProcessInfo } from '../../dist/helper/procs/index.js';
import { asNobody, FakeTable, fakeProcess, killAll, NOBODY, pidOf, procfs, sharedTempDir, start, waitFor, waitForComm } from './support.js';

afterEach(() => killAll());
const dir = sharedTempDir('procs-vm');
afterAll(() => dir.remove());

/** A "VM": a session of its own (setsid), run as 65534, with `script` as its shell command. */
async function vmSession(script: string): Promise<{ leader: number; session: { uid: number; sessionId: number } }> {
  const [command, args] = asNobody('sh', ['-c', script]);
  const leader = pidOf(start(command, args, { detached: true }));
  await waitFor(() => procfs.read(leader)?.uid === NOBODY, 'setpriv to drop to 65534');
  return { leader, session: { uid: NOBODY, sessionId: leader } };
}

function sessionMembers(sessionId: number): ProcessInfo[] {
  return procfs.list().flatMap((pid) => {
    const info = procfs.read(pid);
    return info?.sessionId === sessionId ? [info] : [];
  });
}

const pids = (infos: ProcessInfo[]): number[] => infos.map((i) => i.pid);

describe('isAlive', () => {
  it.each([
    ['R', 1, true], ['S', 1, true], ['D', 1, true], ['T', 1, true], ['t', 1, true], ['I', 1, true],
    ['Z', 1, false], ['Z', 0, false], ['Z', 2, true], ['X', 1, false], ['x', 1, false],
  ])('state %s with %i thread(s): alive %s', (state, threads, alive) => {
    expect(isAlive({ state, threads })).toBe(alive);
  });
});

describe('aliveVmProcesses', () => {
  it('counts a zombie of the session as gone', async () => {
    const { leader, session } = await vmSession('true & exec sleep 30');
    await waitForComm(leader, 'sleep');
    const zombie = await waitFor(() => sessionMembers(leader).find((i) => i.state === 'Z'), 'the unreaped child');
    expect(zombie.uid).toBe(NOBODY); // it is in the session with the VM's uid: only its state excludes it
    expect(pids(aliveVmProcesses(procfs, session))).toEqual([leader]);
  });

  it('counts a stopped process (SIGSTOP) as alive', async () => {
    const { leader, session } = await vmSession('sleep 30 & wait');
    const sleeper = await waitFor(() => sessionMembers(leader).find((i) => i.comm === 'sleep'), 'the sleep');
    process.kill(sleeper.pid, 'SIGSTOP');
    await waitFor(() => procfs.read(sleeper.pid)?.state === 'T', 'the stop');
    expect(pids(aliveVmProcesses(procfs, session))).toEqual([leader, sleeper.pid].sort((a, b) => a - b));
  });

  it('counts a process whose main thread exited while another thread runs as alive (its stat says Z)', async () => {
    const source = join(dir.path, 'leader-exits.c');
    writeFileSync(source, '#include <pthread.h>\n#include <unistd.h>\nstatic void *run(void *a) { (void)a; sleep(30); return 0; }\nint main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_exit(0); }\n');
    const binary = join(dir.path, 'leader-exits');
    execFileSync('cc', ['-pthread', '-o', binary, source]);
    const { leader, session } = await vmSession(`exec ${binary}`);
    const info = await waitFor(() => {
      const i = procfs.read(leader);
      return i?.comm === 'leader-exits' && i.state === 'Z' ? i : undefined;
    }, 'the leader thread to exit');
    expect(info.threads).toBe(2);
    expect(pids(aliveVmProcesses(procfs, session))).toEqual([leader]);
  });

  it('sees only the VM uid in the VM session: not root in that session, not the uid in another session', async () => {
    // The session leader starts a root sleep, then drops to 65534 and becomes the "VM".
    const child = start('sh', ['-c', `sleep 30 & exec setpriv --reuid ${NOBODY} --regid ${NOBODY} --clear-groups sleep 30`], { detached: true });
    const leader = pidOf(child);
    await waitFor(() => procfs.read(leader)?.uid === NOBODY && procfs.read(leader)?.comm === 'sleep', 'the drop to 65534');
    const rootSleep = await waitFor(() => sessionMembers(leader).find((i) => i.uid === 0 && i.comm === 'sleep'), 'the root sleep');
    expect(rootSleep.sessionId).toBe(leader);
    const other = await vmSession('exec sleep 30');
    await waitForComm(other.leader, 'sleep');
    expect(pids(aliveVmProcesses(procfs, { uid: NOBODY, sessionId: leader }))).toEqual([leader]);
  });

  it('asserts the VM uid is not root', () => {
    expect(() => aliveVmProcesses(procfs, { uid: 0, sessionId: 5 })).toThrow(/never root/);
  });
});

describe('killVmProcesses', () => {
  it('kills every live process of the session and leaves other sessions alone', async () => {
    const vm = await vmSession('sleep 30 & sleep 30 & wait');
    await waitFor(() => sessionMembers(vm.leader).filter((i) => i.comm === 'sleep').length === 2, 'two sleeps');
    const bystander = await vmSession('exec sleep 30');
    await waitForComm(bystander.leader, 'sleep');
    const report = killVmProcesses(procfs, vm.session, 'SIGKILL');
    expect(report.signalled.length).toBe(3);
    expect(report.mismatch).toEqual([]);
    await waitFor(() => aliveVmProcesses(procfs, vm.session).length === 0, 'the VM to be gone');
    expect(pids(aliveVmProcesses(procfs, bystander.session))).toEqual([bystander.leader]);
  });

  it('does not signal a pid whose process changed between the scan and the signal', () => {
    const table = new FakeTable(new Map([
      [7, fakeProcess({ pid: 7 })],
      [8, fakeProcess({ pid: 8 })],
      [9, fakeProcess({ pid: 9, state: 'Z' })],
    ]));
    let reads = 0;
    table.onRead = (pid) => {
      // Pid 8 is read once by the scan; before its signal re-read, it is a new process.
      if (pid === 8 && ++reads === 2) table.processes.set(8, fakeProcess({ pid: 8, startTime: 6000n }));
    };
    const report = killVmProcesses(table, { uid: 107, sessionId: 100 }, 'SIGTERM');
    expect(report).toEqual({ signalled: [7], gone: [], mismatch: [8] });
    expect(table.signals).toEqual([{ pid: 7, signal: 'SIGTERM' }]);
  });
});

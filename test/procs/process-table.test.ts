import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  CMDLINE_MAX_ARGS,
  CMDLINE_MAX_BYTES,
  aliveVmProcesses,
  ProcFsProcessTable,
  ProcsError,
  readBounded,
  type BoundedRead,
} from '../../dist/helper/procs/index.js';
import { procfsControl } from '../../dist/helper/vms/procfs-control.js';
import { asNobody, killAll, NOBODY, pidOf, procfs, sharedTempDir, sleepNamed, start, waitFor, waitForComm, waitForExit } from './support.js';

const dir = sharedTempDir('procs-table');
afterAll(() => dir.remove());
afterEach(() => killAll());

const TAIL = 'S 1 300 300 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0';
const STATUS = 'Name:\tq\nUid:\t107\t107\t107\t107\nGid:\t108\t108\t108\t108\n';

/** A crafted procfs with one process per entry. */
function fakeProc(name: string, processes: Record<number, { stat?: string; status?: string; cmdline?: Buffer | string }>): string {
  const root = join(dir.path, name);
  mkdirSync(root);
  for (const [pid, files] of Object.entries(processes)) {
    mkdirSync(join(root, pid));
    writeFileSync(join(root, pid, 'stat'), files.stat ?? `${pid} (q) ${TAIL}\n`);
    writeFileSync(join(root, pid, 'status'), files.status ?? STATUS);
    writeFileSync(join(root, pid, 'cmdline'), files.cmdline ?? 'qemu\0-uuid\0abc\0');
  }
  return root;
}

describe('ProcFsProcessTable on the real /proc', () => {
  it('reads a process named "x) Z 1 1 1" with its true state, parent, uid and session', async () => {
    // The kernel takes comm from the exec'd file's name: a copy of sleep under that name.
    const binary = sleepNamed(dir.path, 'x) Z 1 1 1');
    const [command, args] = asNobody(binary, ['30']);
    const child = start(command, args, { detached: true });
    const pid = pidOf(child);
    // Just after exec it may still be R; once asleep it is S (a naive parser would read Z from the name).
    const info = await waitFor(() => {
      const i = procfs.read(pid);
      return i?.comm === 'x) Z 1 1 1' && i.state === 'S' ? i : undefined;
    }, 'the named sleep to sleep');
    expect(info.ppid).toBe(process.pid);
    expect(info.sessionId).toBe(pid); // detached: setsid() made it a session leader
    expect(info.processGroup).toBe(pid);
    expect(info.uid).toBe(NOBODY);
    expect(info.euid).toBe(NOBODY);
    expect(info.gid).toBe(NOBODY);
    expect(info.cmdline).toEqual([binary, '30']);
    expect(info.cmdlineTruncated).toBe(false);
    expect(info.startTime).toBe(BigInt(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)?.split(' ')[19] ?? ''));
  });

  it('lists pids in ascending order, including this process and a child', () => {
    const child = start('sleep', ['30']);
    const pids = procfs.list();
    expect(pids).toContain(process.pid);
    expect(pids).toContain(pidOf(child));
    expect(pids).toEqual([...pids].sort((a, b) => a - b));
  });

  it('reads no process for a pid that has none', async () => {
    const child = start('true', []);
    const pid = pidOf(child);
    await new Promise((resolve) => child.once('exit', resolve));
    // Reaped by Node: the pid is free until the kernel hands it out again (pid_max 32768 here).
    expect(procfs.read(pid)).toBeUndefined();
  });

  it('asserts a pid is a single positive pid (kill 0 or -1 would signal groups)', () => {
    for (const pid of [0, -1, 1.5, 4194305]) {
      expect(() => procfs.read(pid)).toThrow(/must be an integer/);
      expect(() => procfs.signal(pid, 'SIGTERM', 1n)).toThrow(/must be an integer/);
    }
  });
});

describe('ProcFsProcessTable on a crafted procfs', () => {
  it('reads fields, ids and an argv whose last argument has no NUL', () => {
    const table = new ProcFsProcessTable({ procRoot: fakeProc('plain', { 300: { cmdline: 'qemu\0-name\0guest=a' } }) });
    expect(table.read(300)).toEqual({
      pid: 300, comm: 'q', state: 'S', ppid: 1, processGroup: 300, sessionId: 300, threads: 1, startTime: 777n,
      uid: 107, euid: 107, gid: 108, egid: 108, cmdline: ['qemu', '-name', 'guest=a'], cmdlineTruncated: false,
    });
  });

  it('lists only numeric entries within PID_MAX_LIMIT, in numeric order', () => {
    const root = fakeProc('list', { 10: {}, 9: {}, 100: {} });
    for (const name of ['self', 'net', '0', '007', '4194305']) mkdirSync(join(root, name));
    expect(new ProcFsProcessTable({ procRoot: root }).list()).toEqual([9, 10, 100]);
  });

  it('caps the command line in bytes and in arguments, and says so', () => {
    const table = new ProcFsProcessTable({
      procRoot: fakeProc('caps', {
        301: { cmdline: Buffer.alloc(CMDLINE_MAX_BYTES + 10, 'a') },
        302: { cmdline: 'a\0'.repeat(CMDLINE_MAX_ARGS + 1) },
        303: { cmdline: 'a\0'.repeat(CMDLINE_MAX_ARGS) },
      }),
    });
    const long = table.read(301);
    expect(long?.cmdlineTruncated).toBe(true);
    expect(long?.cmdline).toEqual(['a'.repeat(CMDLINE_MAX_BYTES)]);
    const many = table.read(302);
    expect(many?.cmdlineTruncated).toBe(true);
    expect(many?.cmdline.length).toBe(CMDLINE_MAX_ARGS);
    expect(table.read(303)?.cmdlineTruncated).toBe(false);
  });

  it('reads the ids from a status whose Groups: line is far longer than the prefix read', () => {
    const groups = `Groups:\t${Array.from({ length: 65536 }, (_, i) => i).join(' ')}\n`;
    const table = new ProcFsProcessTable({ procRoot: fakeProc('groups', { 304: { status: STATUS + groups + 'VmRSS:\t1 kB\n' } }) });
    expect(table.read(304)?.gid).toBe(108);
  });

  it('refuses a stat longer than 4096 bytes, a stat naming another pid, a malformed status; names the file', () => {
    const root = fakeProc('bad', {
      305: { stat: `305 (q) ${TAIL}${' 0'.repeat(2100)}\n` },
      306: { stat: `307 (q) ${TAIL}\n` },
      308: { status: 'Name:\tq\nUid:\t1\t1\t1\n' },
    });
    const table = new ProcFsProcessTable({ procRoot: root });
    const codeOf = (pid: number): [string, string] => {
      try {
        table.read(pid);
      } catch (error) {
        expect(error).toBeInstanceOf(ProcsError);
        return [(error as ProcsError).code, (error as ProcsError).subject];
      }
      throw new Error('accepted');
    };
    expect(codeOf(305)).toEqual(['PROCS_STAT_MALFORMED', join(root, '305', 'stat')]);
    expect(codeOf(306)).toEqual(['PROCS_STAT_MALFORMED', join(root, '306', 'stat')]);
    expect(codeOf(308)).toEqual(['PROCS_STATUS_MALFORMED', join(root, '308', 'status')]);
  });

  it('reads again when the pid changed owner between stat and the second stat, and never mixes two processes', () => {
    const root = fakeProc('reuse', { 310: { status: 'Uid:\t107\t107\t107\t107\nGid:\t108\t108\t108\t108\n' } });
    // The first stat shows a process that started at tick 777; by the second, pid 310 is a new one (tick 900, root).
    const reads: string[] = [];
    let statReads = 0;
    const readFile = (path: string, max: number): BoundedRead | undefined => {
      reads.push(path.slice(root.length + 5));
      if (path.endsWith('/stat')) {
        statReads += 1;
        const tick = statReads === 1 ? '777' : '900';
        return { bytes: Buffer.from(`310 (q) ${TAIL.replace(' 777 ', ` ${tick} `)}\n`), truncated: false };
      }
      if (path.endsWith('/status') && statReads > 1) return { bytes: Buffer.from('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n'), truncated: false };
      return readBounded(path, max);
    };
    const info = new ProcFsProcessTable({ procRoot: root, readFile }).read(310);
    expect(info?.startTime).toBe(900n);
    expect(info?.uid).toBe(0); // the status read after the change, not the old process's 107
    expect(reads).toEqual(['stat', 'status', 'cmdline', 'stat', 'stat', 'status', 'cmdline', 'stat']);
  });

  it('gives up with PROCS_UNSTABLE when the pid keeps changing owner', () => {
    const root = fakeProc('unstable', { 311: {} });
    let tick = 0;
    const readFile = (path: string, max: number): BoundedRead | undefined =>
      path.endsWith('/stat') ? { bytes: Buffer.from(`311 (q) ${TAIL.replace(' 777 ', ` ${++tick} `)}\n`), truncated: false } : readBounded(path, max);
    expect(() => new ProcFsProcessTable({ procRoot: root, readFile }).read(311)).toThrow(expect.objectContaining({ code: 'PROCS_UNSTABLE' }));
  });

  it('reads no process when it vanishes between its files', () => {
    const root = fakeProc('vanish', { 312: {} });
    const readFile = (path: string, max: number): BoundedRead | undefined => (path.endsWith('/cmdline') ? undefined : readBounded(path, max));
    expect(new ProcFsProcessTable({ procRoot: root, readFile }).read(312)).toBeUndefined();
  });
});

/**
 * An exiting process read just after the kernel released it (fs/proc/array.c
 * do_task_stat could not lock its signal state): ppid 0, pgrp -1, session
 * -1, tty_nr 0, tpgid -1, threads 0. Seen for an exiting qemu under a
 * non-reaping pid 1; any process on the host can show it, and every VM's
 * session scan reads every process on the host.
 */
const RELEASED_TAIL = (state: string) => `${state} 0 -1 -1 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 0 0 900 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0`;
/** A VM process of uid 107 in session 300. */
const VM_TAIL = 'S 1 300 300 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0';

describe('a released task in the process table', () => {
  it('is read, with session and pgrp -1, instead of failing the read', () => {
    const table = new ProcFsProcessTable({ procRoot: fakeProc('released-read', { 4321: { stat: `4321 (qemu-system-x86) ${RELEASED_TAIL('X')}\n`, cmdline: '' } }) });
    expect(table.read(4321)).toMatchObject({ pid: 4321, state: 'X', ppid: 0, processGroup: -1, sessionId: -1, threads: 0, startTime: 900n });
  });

  it('does not fail a VM\'s session scan, and is not one of its processes', () => {
    const root = fakeProc('released-scan', {
      300: { stat: `300 (q) ${VM_TAIL}\n` },
      301: { stat: `301 (q) ${VM_TAIL.replace(' 777 ', ' 778 ')}\n` },
      4321: { stat: `4321 (qemu-system-x86) ${RELEASED_TAIL('Z')}\n`, cmdline: '' },
    });
    const table = new ProcFsProcessTable({ procRoot: root });
    expect(aliveVmProcesses(table, { uid: 107, sessionId: 300 }).map((i) => i.pid)).toEqual([300, 301]);
    expect(procfsControl(table).sessionProcesses(107, 300).map((p) => p.pid)).toEqual([300, 301]);
  });

  it.each(['X', 'Z', 'R'])('is no live process to describe (state %s): it has no session or parent to record', (state) => {
    const table = new ProcFsProcessTable({ procRoot: fakeProc(`released-describe-${state}`, { 4321: { stat: `4321 (qemu-system-x86) ${RELEASED_TAIL(state)}\n`, cmdline: '' } }) });
    expect(procfsControl(table).describe(4321)).toBeUndefined();
  });

  it('an unparseable stat still fails the scan: it is never skipped as if its process were gone', () => {
    const root = fakeProc('released-malformed', {
      300: { stat: `300 (q) ${VM_TAIL}\n` },
      4321: { stat: `4321 (q) ${RELEASED_TAIL('X').replace(' -1 -1 ', ' -1 0 ')}\n` },
    });
    expect(() => procfsControl(new ProcFsProcessTable({ procRoot: root })).sessionProcesses(107, 300)).toThrow(expect.objectContaining({ code: 'PROCS_STAT_MALFORMED' }));
  });
});

describe('readBounded', () => {
  it('tells a file of exactly the limit from a longer one', () => {
    const path = join(dir.path, 'eight');
    writeFileSync(path, '12345678');
    expect(readBounded(path, 8)).toEqual({ bytes: Buffer.from('12345678'), truncated: false });
    expect(readBounded(path, 7)).toEqual({ bytes: Buffer.from('1234567'), truncated: true });
    expect(readBounded(join(dir.path, 'missing'), 8)).toBeUndefined();
  });

  it('reports other failures as PROCS_READ_FAILED', () => {
    expect(() => readBounded(dir.path, 8)).toThrow(expect.objectContaining({ code: 'PROCS_READ_FAILED', subject: dir.path }));
  });
});

describe('ProcFsProcessTable.signal', () => {
  it('signals a real process only under its own start time', async () => {
    const child = start('sleep', ['30']);
    const pid = pidOf(child);
    const { startTime } = await waitForComm(pid, 'sleep');
    expect(procfs.signal(pid, 'SIGTERM', startTime + 1n)).toBe('mismatch');
    await new Promise((r) => setTimeout(r, 100));
    expect(procfs.read(pid)?.state).toBe('S');
    expect(procfs.signal(pid, 'SIGTERM', startTime)).toBe('sent');
    expect(await waitForExit(child)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(procfs.signal(pid, 'SIGTERM', startTime)).toBe('gone');
  });

  /** A procfs with process 320 (started at tick 777) and pidfd calls that log what happens, in order. */
  function logged(options: { statTick?: () => string; sendErrno?: number } = {}) {
    const root = fakeProc(`signal-${Math.random().toString(36).slice(2)}`, { 320: {} });
    const log: string[] = [];
    const table = new ProcFsProcessTable({
      procRoot: root,
      readFile: (path, max) => {
        if (path.endsWith('/stat')) {
          log.push('read stat');
          return { bytes: Buffer.from(`320 (q) ${TAIL.replace(' 777 ', ` ${options.statTick?.() ?? '777'} `)}\n`), truncated: false };
        }
        return readBounded(path, max);
      },
      pidfd: {
        pidfdOpen: (pid) => {
          log.push(`open ${pid}`);
          return openSync('/dev/null', 'r'); // a real descriptor: the table closes it
        },
        pidfdSendSignal: (_fd, signo) => {
          if (options.sendErrno !== undefined) throw Object.assign(new Error('pidfd_send_signal failed'), { errno: options.sendErrno });
          log.push(`send ${signo}`);
        },
      },
    });
    return { table, log };
  }

  it('opens the pidfd before it checks the start time, and signals through it', () => {
    const { table, log } = logged();
    expect(table.signal(320, 'SIGKILL', 777n)).toBe('sent');
    expect(log).toEqual(['open 320', 'read stat', 'send 9']);
  });

  it('sends nothing when the pid holds another process by the time of the check', () => {
    const { table, log } = logged({ statTick: () => '901' });
    expect(table.signal(320, 'SIGKILL', 777n)).toBe('mismatch');
    expect(log).toEqual(['open 320', 'read stat']);
  });

  it('reports gone when the process exits between the check and the signal (ESRCH), fails loudly on EPERM', () => {
    expect(logged({ sendErrno: 3 }).table.signal(320, 'SIGTERM', 777n)).toBe('gone');
    expect(() => logged({ sendErrno: 1 }).table.signal(320, 'SIGTERM', 777n)).toThrow(expect.objectContaining({ code: 'PROCS_SIGNAL_FAILED' }));
  });

  it('closes every pidfd it opens', () => {
    const opened: number[] = [];
    const table = new ProcFsProcessTable({
      pidfd: {
        pidfdOpen: () => {
          const fd = openSync('/dev/null', 'r');
          opened.push(fd);
          return fd;
        },
        pidfdSendSignal: () => {},
      },
    });
    expect(table.signal(process.pid, 'SIGCONT', 1n)).toBe('mismatch');
    expect(opened.length).toBe(1);
    // closeSync of a closed descriptor throws EBADF: the table closed it.
    expect(() => closeSync(opened[0] as number)).toThrow(/EBADF/);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessInfo, ProcessTable } from '../../dist/helper/procs/index.js';
import { ProcFsProcessTable } from '../../dist/helper/procs/index.js';

export const NOBODY = 65534;

/** setpriv arguments that make the exec'd program run as uid/gid 65534 with no supplementary groups. */
export function asNobody(command: string, args: string[]): [string, string[]] {
  return ['setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', command, ...args]];
}

const children: ChildProcess[] = [];

/**
 * Spawns a process that lives until killed. `detached` gives it a session of
 * its own (setsid), so its session id is its pid.
 */
export function start(command: string, args: string[], options: { detached?: boolean } = {}): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore', detached: options.detached ?? false });
  children.push(child);
  return child;
}

/** SIGKILLs every child started and every descendant of it that is still there. */
export function killAll(): void {
  const roots = children.splice(0).flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
  const parents = new Map<number, number>();
  for (const pid of procfs.list()) {
    const info = procfs.read(pid);
    if (info) parents.set(pid, info.ppid);
  }
  const doomed = new Set(roots.filter((pid) => parents.get(pid) === process.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (doomed.has(ppid) && !doomed.has(pid)) {
        doomed.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('spawn failed');
  return child.pid;
}

export async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const procfs = new ProcFsProcessTable();

/** Waits until the process has exec'd `comm` (after setpriv/sh) and returns what /proc shows. */
export function waitForComm(pid: number, comm: string): Promise<ProcessInfo> {
  return waitFor(() => {
    const info = procfs.read(pid);
    return info?.comm === comm ? info : undefined;
  }, `pid ${pid} to run ${comm}`);
}

export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** A directory that uid 65534 can enter (mkdtemp makes 0700). */
export function sharedTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `vmlease-${prefix}-`));
  chmodSync(path, 0o755);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A copy of /bin/sleep under `name`: the kernel takes comm from the exec'd file's name. */
export function sleepNamed(dir: string, name: string): string {
  const path = join(dir, name);
  copyFileSync('/bin/sleep', path);
  chmodSync(path, 0o755);
  return path;
}

/** A ProcessTable over a fixed set of processes, recording every signal. */
export class FakeTable implements ProcessTable {
  readonly signals: { pid: number; signal: NodeJS.Signals }[] = [];
  /** Called on each read: tests change processes between reads with it. */
  onRead: ((pid: number) => void) | undefined;

  constructor(readonly processes: Map<number, ProcessInfo>) {}

  read(pid: number): ProcessInfo | undefined {
    this.onRead?.(pid);
    return this.processes.get(pid);
  }

  list(): number[] {
    return [...this.processes.keys()].sort((a, b) => a - b);
  }

  /** Like the real table: sends only to the process that started at `startTime`. */
  signal(pid: number, signal: NodeJS.Signals, startTime: bigint): 'sent' | 'gone' | 'mismatch' {
    const info = this.processes.get(pid);
    if (info === undefined) return 'gone';
    if (info.startTime !== startTime) return 'mismatch';
    this.signals.push({ pid, signal });
    return 'sent';
  }
}

export function fakeProcess(fields: Partial<ProcessInfo> & { pid: number }): ProcessInfo {
  return {
    comm: 'qemu',
    state: 'S',
    ppid: 100,
    processGroup: fields.pid,
    sessionId: 100,
    threads: 1,
    startTime: 5000n,
    uid: 107,
    euid: 107,
    gid: 107,
    egid: 107,
    cmdline: ['qemu'],
    cmdlineTruncated: false,
    ...fields,
  };
}

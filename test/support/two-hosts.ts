import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from './cli.js';
import { runAsync as runCommandAsync, type TimedResult } from '../../dist/bench/support/run-async.js';
import { alive, VM_UID, type Cluster, type HelperProcess } from './helper-harness.js';

/**
 * Tools for tests with several real helpers on one lease file: an async
 * `vmlease` (so the test's event loop keeps polling while a command runs), a
 * watcher of one host's delta record on storage (when did its last renewal
 * land, as any other host could have seen it), a FIFO that a helper can use
 * as its watchdog device without anything being reset, and a registry of
 * every process to kill at the end, also when a test fails.
 */

export type { TimedResult };

/** Runs the built `vmlease` without blocking the event loop. */
export function vmleaseAsync(args: readonly string[], timeoutMs = 60_000): Promise<TimedResult> {
  return runAsync(process.execPath, [CLI, ...args], timeoutMs);
}

/** Runs a command without blocking the event loop (the test's timers keep running); SIGKILL after the timeout. */
export function runAsync(command: string, args: readonly string[], timeoutMs = 60_000): Promise<TimedResult> {
  return runCommandAsync(command, args, timeoutMs);
}

/** `vmlease ARGS --run-dir` of a helper, async. */
export function cliAsync(helper: HelperProcess, args: readonly string[]): Promise<TimedResult> {
  return vmleaseAsync([...args, '--run-dir', helper.runDir]);
}

/** The pino `time` (ISO) of a log line, as Date.now() milliseconds. */
export function logTimeMs(line: Record<string, unknown>): number {
  return Date.parse(String(line.time));
}

export interface DeltaChange {
  /** Date.now() just before the first read that showed this value. */
  readonly seenAt: number;
  /** Date.now() just before the last read that did not show it yet: the value landed after this. */
  readonly landedAfter: number;
  readonly generation: bigint;
  readonly timestampMs: bigint;
}

/**
 * Polls host `hostId`'s delta record in a lockspace file with O_DIRECT reads
 * (a page-aligned buffer from WebAssembly memory), recording when each new
 * value appeared. A renewal that lands between two reads is bracketed:
 * nobody (no other host) can have seen it before `landedAfter`.
 */
export class DeltaWatcher {
  readonly changes: DeltaChange[] = [];
  private readonly fd: number;
  private readonly buffer: Uint8Array;
  private readonly offset: number;
  private lastReadStartedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: string | undefined;

  constructor(
    path: string,
    private readonly hostId: number,
    pollMs = 5,
  ) {
    this.fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
    this.buffer = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer, 0, 4096);
    // Host id h's record is sector h-1; the sector size is in every record's header (offset 8).
    readSync(this.fd, this.buffer, 0, 4096, 0);
    const sectorSize = Buffer.from(this.buffer.buffer, 0, 512).readUInt32LE(8);
    if (sectorSize !== 512 && sectorSize !== 4096) throw new Error(`${path}: sector size ${sectorSize} in host 1's record`);
    this.offset = (hostId - 1) * sectorSize;
    this.poll();
    this.timer = setInterval(() => this.poll(), pollMs);
  }

  poll(): void {
    const startedAt = Date.now();
    const length = 4096;
    readSync(this.fd, this.buffer, 0, length, this.offset - (this.offset % 4096));
    const record = Buffer.from(this.buffer.buffer, this.offset % 4096, 512);
    const generation = record.readBigUInt64LE(128);
    const timestampMs = record.readBigUInt64LE(136);
    const key = `${generation}:${timestampMs}`;
    if (key !== this.current) {
      this.current = key;
      this.changes.push({ seenAt: startedAt, landedAfter: this.lastReadStartedAt ?? -Infinity, generation, timestampMs });
    }
    this.lastReadStartedAt = startedAt;
  }

  /** The value it holds now, and when it appeared. */
  get last(): DeltaChange {
    return this.changes[this.changes.length - 1]!;
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    closeSync(this.fd);
  }

  describe(): string {
    return `host ${this.hostId} record changes (last 3): ${JSON.stringify(this.changes.slice(-3), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`;
  }
}

/**
 * A FIFO a helper can open as its watchdog "device" (it is then required to
 * publish W > 0): held open for reading and drained, so pets never fail, but
 * nothing is ever reset. Records when the last pet arrived.
 */
export class FifoWatchdog {
  readonly path: string;
  lastPetAt: number | undefined;
  pets = 0;
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;
  private readonly scratch = Buffer.alloc(4096);

  constructor(dir: string, name = 'watchdog.fifo') {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, name);
    execFileSync('mkfifo', ['-m', '0600', '--', this.path]);
    this.fd = openSync(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
    this.timer = setInterval(() => this.drain(), 20);
  }

  drain(): void {
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.scratch, 0, this.scratch.length, null);
      } catch {
        return; // EAGAIN: a writer is there, nothing to read
      }
      if (n <= 0) return; // no writer
      this.pets += n;
      this.lastPetAt = Date.now();
    }
  }

  close(): void {
    clearInterval(this.timer);
    closeSync(this.fd);
  }
}

/** Every process a test started, to kill (and SIGCONT first) whatever is left at the end. */
export class Reaper {
  private readonly pids = new Set<number>();
  private readonly cleanups: (() => void | Promise<void>)[] = [];

  track(pid: number | undefined): void {
    if (pid !== undefined) this.pids.add(pid);
  }

  trackChild<T extends ChildProcess>(child: T): T {
    this.track(child.pid);
    return child;
  }

  onCleanup(action: () => void | Promise<void>): void {
    this.cleanups.push(action);
  }

  async reap(): Promise<void> {
    for (const pid of this.pids) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // ESRCH: gone already
        }
      }
    }
    const deadline = Date.now() + 10_000;
    while ([...this.pids].some((pid) => alive(pid)) && Date.now() < deadline) await sleep(20);
    this.pids.clear();
    for (const action of this.cleanups.splice(0).reverse()) {
      try {
        await action();
      } catch {
        // best effort: the remaining cleanups still run
      }
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `condition` holds, or throws after the timeout. Returns Date.now() right after the check that held (it held by then). */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string, pollMs = 10): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return Date.now();
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/**
 * `vmlease supervise` as uid 65534 under node --jitless, like the harness's
 * startSupervisor but as the leader of a session of its own (as under
 * libvirt, where each VM's emulator has its own session): the helper finds a
 * VM's processes by uid and session id, and every "host" here shares one
 * kernel, so supervisors in the test's session would all look like one VM's.
 */
export function startSupervisorInOwnSession(runDir: string, vm: string, command: readonly string[], uid = VM_UID): ChildProcess & { output: () => string } {
  const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, '--jitless', CLI, 'supervise', '--vm', vm, '--run-dir', runDir, '--', ...command], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => void (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => void (output += c));
  return Object.assign(child, { output: () => output });
}

/** A directory the VM uid can write to (for marker files of its command). */
export function vmWritableDir(cluster: Cluster, name: string): string {
  const dir = join(cluster.dir, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  return dir;
}

/** Log lines of a helper, compact, for failure messages. */
export function tailOf(helper: HelperProcess | undefined, count = 40): string {
  if (!helper) return '(no helper)';
  return helper.lines
    .slice(-count)
    .map((l) => {
      const { time, msg, level, pid: _pid, hostname: _h, ...rest } = l;
      return `  ${String(time)} ${String(level)} ${String(msg)} ${JSON.stringify(rest)}`;
    })
    .join('\n');
}

import assert from 'node:assert/strict';
import { closeSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native } from '../native/native.js';
import { readBounded, type BoundedRead } from './bounded-read.js';
import { ProcsError, ProcsErrorCode } from './errors.js';
import { parseProcStat, PID_MAX_LIMIT, PROC_STAT_MAX_BYTES } from './proc-stat.js';
import { parseProcStatusIds, PROC_STATUS_PREFIX_BYTES } from './proc-status.js';

/** One process as procfs shows it at one moment. */
export interface ProcessInfo {
  readonly pid: number;
  readonly comm: string;
  /** stat's state letter (R S D T t X x Z P I K W). */
  readonly state: string;
  readonly ppid: number;
  /** -1 (with sessionId -1, ppid 0, threads 0) only when the kernel had already released the task (proc-stat.ts). */
  readonly processGroup: number;
  /** 0 when the session leader is outside our pid namespace; -1 for a released task (proc-stat.ts). */
  readonly sessionId: number;
  /** Threads in the group: a zombie leader ('Z') with threads > 1 still has live threads. */
  readonly threads: number;
  /** Clock ticks after boot; (pid, startTime) names one process for good. */
  readonly startTime: bigint;
  /** Real uid (who the process is; kill(2) permission checks it). */
  readonly uid: number;
  readonly euid: number;
  /** Real gid. */
  readonly gid: number;
  readonly egid: number;
  /** argv, NUL-split; at most CMDLINE_MAX_BYTES bytes and CMDLINE_MAX_ARGS entries. Empty for kernel threads and zombies. */
  readonly cmdline: readonly string[];
  /** True when the command line was longer than the caps (cmdline holds only its start). */
  readonly cmdlineTruncated: boolean;
}

/** What the helper knows of processes and may do to them: the kernel's /proc, or a fake in tests. */
export interface ProcessTable {
  /** The process now at `pid`, or undefined when there is none. */
  read(pid: number): ProcessInfo | undefined;
  /** Pids of all processes (thread-group leaders), ascending. */
  list(): number[];
  /**
   * Signals the process at `pid` only if it is the one that started at
   * `startTime`: 'mismatch' (nothing sent) when the pid holds another
   * process, 'gone' when it holds none or the process exited first.
   */
  signal(pid: number, signal: NodeJS.Signals, startTime: bigint): 'sent' | 'gone' | 'mismatch';
}

/** The pidfd system calls (the native addon; tests fake them). Errors carry a numeric `errno`. */
export interface PidfdCalls {
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signo: number): void;
}

export const CMDLINE_MAX_BYTES = 64 * 1024;
export const CMDLINE_MAX_ARGS = 4096;
/** Reads of one pid are retried this often when the pid changes owner mid-read. */
const READ_ATTEMPTS = 3;

/** Asserts a pid can name one process: kill(2) with 0 or a negative pid signals whole groups. */
export function assertPid(pid: number): void {
  assert.ok(Number.isSafeInteger(pid) && pid >= 1 && pid <= PID_MAX_LIMIT, `pid ${pid} must be an integer in 1..${PID_MAX_LIMIT}`);
}

/** Splits /proc/PID/cmdline bytes (NUL-terminated arguments) into at most CMDLINE_MAX_ARGS strings. */
export function parseCmdline(bytes: Buffer, truncatedBytes: boolean): { args: string[]; truncated: boolean } {
  if (bytes.length === 0) return { args: [], truncated: truncatedBytes };
  const text = bytes.toString('utf8');
  // A process that rewrote its argv may leave no final NUL; the last piece is an argument then.
  const pieces = text.split('\0');
  if (text.endsWith('\0')) pieces.pop();
  const truncated = truncatedBytes || pieces.length > CMDLINE_MAX_ARGS;
  return { args: pieces.slice(0, CMDLINE_MAX_ARGS), truncated };
}

export interface ProcFsOptions {
  /** Where procfs is mounted (tests point it at crafted files). Default '/proc'. */
  readonly procRoot?: string;
  /** How a file is read (readBounded semantics); tests replace it to show a pid changing owner between reads. */
  readonly readFile?: (path: string, maxBytes: number) => BoundedRead | undefined;
  /** pidfd_open / pidfd_send_signal. Default: the native addon. */
  readonly pidfd?: PidfdCalls;
}

const ESRCH = constants.errno.ESRCH;

/**
 * The kernel's process table through procfs. Reads are synchronous (procfs
 * never blocks on storage) and bounded in size. Each read of a pid reads
 * stat, status and cmdline, then stat again: if the start time changed, the
 * pid was reused between the reads and they are retried, so the fields of one
 * ProcessInfo always come from one process (up to start times equal to the
 * clock tick).
 *
 * signal() opens a pidfd first, then checks the start time, then signals
 * through the pidfd: the pidfd names the process that held the pid when it
 * was opened, so a pid reused at any point cannot receive the signal.
 */
export class ProcFsProcessTable implements ProcessTable {
  readonly procRoot: string;
  private readonly readFile: (path: string, maxBytes: number) => BoundedRead | undefined;
  private readonly pidfd: PidfdCalls | undefined;

  constructor(options: ProcFsOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.readFile = options.readFile ?? readBounded;
    this.pidfd = options.pidfd;
  }

  read(pid: number): ProcessInfo | undefined {
    assertPid(pid);
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const result = this.readOnce(pid);
      if (result !== 'reused') return result;
    }
    throw new ProcsError(ProcsErrorCode.unstable, `pid ${pid}`, `changed process ${READ_ATTEMPTS} times while being read`);
  }

  list(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.procRoot);
    } catch (error) {
      throw new ProcsError(ProcsErrorCode.readFailed, this.procRoot, (error as Error).message);
    }
    const pids: number[] = [];
    for (const name of names) {
      if (!/^[1-9][0-9]{0,6}$/.test(name)) continue;
      const pid = Number(name);
      if (pid > PID_MAX_LIMIT) continue; // so at most PID_MAX_LIMIT entries
      pids.push(pid);
    }
    return pids.sort((a, b) => a - b);
  }

  signal(pid: number, signal: NodeJS.Signals, startTime: bigint): 'sent' | 'gone' | 'mismatch' {
    assertPid(pid);
    const signo = constants.signals[signal];
    assert.ok(Number.isInteger(signo) && signo > 0, `unknown signal ${signal}`);
    const calls = this.pidfd ?? native();
    let pidfd: number;
    try {
      pidfd = calls.pidfdOpen(pid);
    } catch (error) {
      if ((error as { errno?: unknown }).errno === ESRCH) return 'gone';
      throw new ProcsError(ProcsErrorCode.signalFailed, `pid ${pid}`, (error as Error).message);
    }
    try {
      // After the open: whatever the pid holds now is what the pidfd names, or has exited since.
      const stat = this.readStat(pid);
      if (stat === undefined) return 'gone';
      if (stat.startTime !== startTime) return 'mismatch';
      try {
        calls.pidfdSendSignal(pidfd, signo);
      } catch (error) {
        if ((error as { errno?: unknown }).errno === ESRCH) return 'gone';
        throw new ProcsError(ProcsErrorCode.signalFailed, `pid ${pid}`, `${signal}: ${(error as Error).message}`);
      }
      return 'sent';
    } finally {
      closeSync(pidfd);
    }
  }

  private readStat(pid: number): ReturnType<typeof parseProcStat> | undefined {
    const path = join(this.procRoot, String(pid), 'stat');
    const read = this.readFile(path, PROC_STAT_MAX_BYTES);
    if (read === undefined) return undefined;
    if (read.truncated) throw new ProcsError(ProcsErrorCode.statMalformed, path, `longer than ${PROC_STAT_MAX_BYTES} bytes`);
    let stat;
    try {
      stat = parseProcStat(read.bytes.toString('utf8'));
    } catch (error) {
      if (error instanceof ProcsError) throw new ProcsError(error.code, path, error.reason);
      throw error;
    }
    if (stat.pid !== pid) throw new ProcsError(ProcsErrorCode.statMalformed, path, `names pid ${stat.pid}`);
    return stat;
  }

  private readOnce(pid: number): ProcessInfo | undefined | 'reused' {
    const stat = this.readStat(pid);
    if (stat === undefined) return undefined;
    const statusPath = join(this.procRoot, String(pid), 'status');
    const status = this.readFile(statusPath, PROC_STATUS_PREFIX_BYTES);
    if (status === undefined) return undefined;
    let ids;
    try {
      ids = parseProcStatusIds(status.bytes.toString('utf8'));
    } catch (error) {
      if (error instanceof ProcsError) throw new ProcsError(error.code, statusPath, error.reason);
      throw error;
    }
    const cmdlineRead = this.readFile(join(this.procRoot, String(pid), 'cmdline'), CMDLINE_MAX_BYTES);
    if (cmdlineRead === undefined) return undefined;
    const again = this.readStat(pid);
    if (again === undefined) return undefined;
    if (again.startTime !== stat.startTime) return 'reused';
    const cmdline = parseCmdline(cmdlineRead.bytes, cmdlineRead.truncated);
    // The second stat is the later truth for fields that change (state, ppid after reparenting).
    return {
      pid,
      comm: again.comm,
      state: again.state,
      ppid: again.ppid,
      processGroup: again.processGroup,
      sessionId: again.sessionId,
      threads: again.threads,
      startTime: again.startTime,
      uid: ids.uid.real,
      euid: ids.uid.effective,
      gid: ids.gid.real,
      egid: ids.gid.effective,
      cmdline: cmdline.args,
      cmdlineTruncated: cmdline.truncated,
    };
  }
}

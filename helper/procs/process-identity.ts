import assert from 'node:assert/strict';
import { isAlive } from './liveness.js';
import { assertPid, type ProcessInfo, type ProcessTable } from './process-table.js';

/** One process for good: a pid is reused, (pid, startTime) is not. */
export interface ProcessIdentity {
  readonly pid: number;
  /** stat field 22, clock ticks after boot. */
  readonly startTime: bigint;
  /** Real uid; never 0. */
  readonly uid: number;
}

export const IdentityRefusalCode = {
  /** No process has that pid. */
  noSuchProcess: 'IDENTITY_NO_SUCH_PROCESS',
  /** A process has that pid but started at another time: the pid was reused. */
  startTimeMismatch: 'IDENTITY_START_TIME_MISMATCH',
  /** The process has exited (zombie or dead). */
  zombie: 'IDENTITY_ZOMBIE',
  /** The process, or the uid asked for, is root (real or effective uid 0). */
  uidRoot: 'IDENTITY_UID_ROOT',
  /** The process runs as another uid (real or effective) than the VM's. */
  uidMismatch: 'IDENTITY_UID_MISMATCH',
  /** The process is not a child of the expected parent. */
  parentMismatch: 'IDENTITY_PARENT_MISMATCH',
} as const;

export type IdentityRefusalCode = (typeof IdentityRefusalCode)[keyof typeof IdentityRefusalCode];

export interface IdentityRefusal {
  readonly ok: false;
  readonly code: IdentityRefusalCode;
  readonly reason: string;
}

export interface IdentityVerified {
  readonly ok: true;
  readonly identity: ProcessIdentity;
  /** What was read to verify it. */
  readonly info: ProcessInfo;
}

function refuse(code: IdentityRefusalCode, reason: string): IdentityRefusal {
  return { ok: false, code, reason };
}

/**
 * Checks that the process at `pid` is the one that started at `startTime`,
 * is alive, runs as `expected.uid` (real and effective, never 0) and is a
 * child of `expected.parentPid`. Checks are made in that order; the first
 * failing one is the refusal.
 */
export function verifyChildOf(
  table: ProcessTable,
  pid: number,
  startTime: bigint,
  expected: { readonly parentPid: number; readonly uid: number },
): IdentityVerified | IdentityRefusal {
  assertPid(pid);
  assertPid(expected.parentPid);
  const info = table.read(pid);
  if (info === undefined) return refuse(IdentityRefusalCode.noSuchProcess, `no process ${pid}`);
  if (info.startTime !== startTime) {
    return refuse(IdentityRefusalCode.startTimeMismatch, `process ${pid} started at ${info.startTime}, not ${startTime}: the pid was reused`);
  }
  if (!isAlive(info)) return refuse(IdentityRefusalCode.zombie, `process ${pid} has exited (state ${info.state})`);
  if (expected.uid === 0 || info.uid === 0 || info.euid === 0) {
    return refuse(IdentityRefusalCode.uidRoot, `process ${pid} (uid ${info.uid}, euid ${info.euid}) or the expected uid ${expected.uid} is root`);
  }
  if (info.uid !== expected.uid || info.euid !== expected.uid) {
    return refuse(IdentityRefusalCode.uidMismatch, `process ${pid} runs as uid ${info.uid}, euid ${info.euid}, not ${expected.uid}`);
  }
  if (info.ppid !== expected.parentPid) {
    return refuse(IdentityRefusalCode.parentMismatch, `process ${pid} is a child of ${info.ppid}, not of ${expected.parentPid}`);
  }
  return { ok: true, identity: { pid, startTime: info.startTime, uid: info.uid }, info };
}

export type SignalOutcome = 'signalled' | 'gone' | 'mismatch';

/**
 * Signals the process named by `identity` if, read again right before
 * kill(2), it is still that process: same start time, same real and
 * effective uid, neither 0. 'gone' when it has exited (no process at the pid,
 * or a zombie); 'mismatch' when the pid now holds another process or the
 * process changed uid: nothing is signalled then.
 *
 * The table's signal() checks the start time once more under a pidfd, so a
 * pid reused after this re-read cannot receive the signal (README.md).
 */
export function signalIfSame(table: ProcessTable, identity: ProcessIdentity, signal: NodeJS.Signals): SignalOutcome {
  assertPid(identity.pid);
  assert.ok(identity.uid !== 0, `identity of pid ${identity.pid} has uid 0: root processes are never identities`);
  const info = table.read(identity.pid);
  if (info === undefined) return 'gone';
  if (info.startTime !== identity.startTime) return 'mismatch';
  if (!isAlive(info)) return 'gone';
  if (info.uid !== identity.uid || info.euid !== identity.uid) return 'mismatch';
  const sent = table.signal(identity.pid, signal, identity.startTime);
  return sent === 'sent' ? 'signalled' : sent;
}

import { ProcsError, ProcsErrorCode } from './errors.js';

/**
 * /proc/PID/stat, parsed exactly (proc(5)).
 *
 * The command name (comm) is whatever the process chose (prctl PR_SET_NAME,
 * or the file name it exec'd) and may contain spaces, parentheses, ') ' and
 * newlines, so it is taken from between the FIRST '(' and the LAST ')': the
 * kernel writes nothing after it that contains ')'. Every field after it must
 * be a decimal number (the state a single letter), printed as the kernel does.
 *
 * A released task (fs/proc/array.c do_task_stat): ppid, pgrp, session,
 * tty_nr, tpgid and num_threads are read under lock_task_sighand(); when the
 * task has already been through release_task() (__exit_signal set its
 * sighand to NULL: it was reaped, or autoreaped, between the open and the
 * read) the lock fails and the kernel prints their initial values instead:
 * ppid 0, pgrp -1, session -1, tty_nr 0, tpgid -1, num_threads 0. That is
 * the only way pgrp or session is ever -1 (task_pgrp_nr_ns and
 * task_session_nr_ns return 0, never -1, for a leader outside the reader's
 * pid namespace), so -1 is accepted in exactly that shape and nowhere else.
 */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** One letter: R S D T t X x Z P I K W (proc(5)). */
  readonly state: string;
  /** Field 4; 0 when the parent is outside our pid namespace, and for a released task (below). */
  readonly ppid: number;
  /** Field 5; 0 when the group leader is outside our pid namespace; -1 only for a released task (below). */
  readonly processGroup: number;
  /** Field 6; 0 when the session leader is outside our pid namespace; -1 only for a released task (below). */
  readonly sessionId: number;
  /** Field 20: threads in the thread group (a zombie leader with live threads has more than 1; 0 for a released task). */
  readonly threads: number;
  /** Field 22: clock ticks after boot at which the process started; with pid, names one process for good. */
  readonly startTime: bigint;
}

/** Longest stat text accepted (the kernel writes ~52 fields, about 300 bytes). */
export const PROC_STAT_MAX_BYTES = 4096;
/**
 * Longest comm accepted. TASK_COMM_LEN is 16, but kernel worker threads show
 * longer names (measured on 6.18: 34 characters, 'kworker/0:2-events_power_efficient').
 */
export const PROC_STAT_COMM_MAX = 64;
/** Fields after comm: the kernel writes 50 (since 3.5); up to 64 are accepted so newer kernels parse. */
const MIN_FIELDS_AFTER_COMM = 20; // state (3) .. starttime (22)
const MAX_FIELDS_AFTER_COMM = 62;
/** PID_MAX_LIMIT on 64-bit kernels. */
export const PID_MAX_LIMIT = 4_194_304;

const PID_PREFIX = /^([1-9][0-9]{0,6}) \(/;
const STATES = /^[RSDTtXxZPIKW]$/;
const UNSIGNED = /^(0|[1-9][0-9]{0,19})$/;
const SIGNED = /^(0|-?[1-9][0-9]{0,19})$/;

function malformed(reason: string): ProcsError {
  return new ProcsError(ProcsErrorCode.statMalformed, 'stat', reason);
}

function pidField(text: string, name: string, min: number): number {
  if (!UNSIGNED.test(text)) throw malformed(`${name} '${text}' is not a decimal number`);
  const value = Number(text);
  if (value < min || value > PID_MAX_LIMIT) throw malformed(`${name} ${text} outside ${min}..${PID_MAX_LIMIT}`);
  return value;
}

/** Parses the text of /proc/PID/stat; a malformed text is a ProcsError (PROCS_STAT_MALFORMED) saying why. */
export function parseProcStat(text: string): ProcStat {
  if (text.length > PROC_STAT_MAX_BYTES) throw malformed(`longer than ${PROC_STAT_MAX_BYTES} characters`);
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const prefix = PID_PREFIX.exec(body);
  if (!prefix || prefix[1] === undefined) throw malformed(`does not start with 'PID ('`);
  const pid = pidField(prefix[1], 'pid', 1);
  const open = prefix[0].length - 1;
  const close = body.lastIndexOf(')');
  if (close <= open) throw malformed('no closing parenthesis after the command name');
  const comm = body.slice(open + 1, close);
  if (comm.length > PROC_STAT_COMM_MAX) throw malformed(`command name longer than ${PROC_STAT_COMM_MAX} characters`);
  if (body[close + 1] !== ' ') throw malformed(`no space after the command name's closing parenthesis`);
  const fields = body.slice(close + 2).split(' ');
  if (fields.length < MIN_FIELDS_AFTER_COMM) throw malformed(`${fields.length} fields after the command name, fewer than ${MIN_FIELDS_AFTER_COMM}`);
  if (fields.length > MAX_FIELDS_AFTER_COMM) throw malformed(`${fields.length} fields after the command name, more than ${MAX_FIELDS_AFTER_COMM}`);
  const [state, ...numbers] = fields;
  if (state === undefined || !STATES.test(state)) throw malformed(`state '${state ?? ''}' is not a process state letter`);
  numbers.forEach((field, i) => {
    if (!SIGNED.test(field)) throw malformed(`field ${i + 4} '${field}' is not a decimal number`);
  });
  // numbers[0] is field 4; field n is numbers[n - 4].
  const field = (n: number): string => numbers[n - 4] as string;
  const threads = pidField(field(20), 'num_threads', 0);
  if (!UNSIGNED.test(field(22))) throw malformed(`starttime '${field(22)}' is not an unsigned decimal number`);
  const startTime = BigInt(field(22));
  if (startTime >= 1n << 64n) throw malformed(`starttime ${field(22)} exceeds 64 bits`);
  const released = field(5) === '-1' || field(6) === '-1';
  if (released) checkReleased(field);
  return {
    pid,
    comm,
    state,
    ppid: pidField(field(4), 'ppid', 0),
    processGroup: released ? -1 : pidField(field(5), 'pgrp', 0),
    sessionId: released ? -1 : pidField(field(6), 'session', 0),
    threads,
    startTime,
  };
}

/** The values do_task_stat prints when lock_task_sighand() fails (the task was released); anything else with a -1 is malformed. */
const RELEASED_SHAPE: readonly (readonly [number, string, string])[] = [
  [4, 'ppid', '0'],
  [5, 'pgrp', '-1'],
  [6, 'session', '-1'],
  [7, 'tty_nr', '0'],
  [8, 'tpgid', '-1'],
  [20, 'num_threads', '0'],
];

function checkReleased(field: (n: number) => string): void {
  for (const [n, name, expected] of RELEASED_SHAPE) {
    if (field(n) !== expected) {
      throw malformed(`pgrp ${field(5)} and session ${field(6)}: a -1 there is a released task, which the kernel prints with ${name} ${expected}; this has ${name} ${field(n)}`);
    }
  }
}

import { ProcsError, ProcsErrorCode } from './errors.js';

/**
 * /proc/PID/stat, parsed exactly (proc(5)).
 *
 * The command name (comm) is whatever the process chose (prctl PR_SET_NAME,
 * or the file name it exec'd) and may contain spaces, parentheses, ') ' and
 * newlines, so it is taken from between the FIRST '(' and the LAST ')': the
 * kernel writes nothing after it that contains ')'. Every field after it must
 * be a decimal number (the state a single letter), printed as the kernel does.
 */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** One letter: R S D T t X x Z P I K W (proc(5)). */
  readonly state: string;
  readonly ppid: number;
  readonly processGroup: number;
  readonly sessionId: number;
  /** Field 20: threads in the thread group (a zombie leader with live threads has more than 1). */
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
  return {
    pid,
    comm,
    state,
    ppid: pidField(field(4), 'ppid', 0),
    processGroup: pidField(field(5), 'pgrp', 0),
    sessionId: pidField(field(6), 'session', 0),
    threads,
    startTime,
  };
}

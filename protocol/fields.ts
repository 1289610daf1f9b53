/**
 * The protocol's field types, each with its rule, shared by messages and
 * statements so a VM uuid or a lockspace name means the same everywhere.
 */
import { nameProblem } from '../helper/format/fields.js';
import {
  CHILD_PID_MIN,
  ERROR_CODE_BYTES_MAX,
  HOST_ID_MAX,
  HOST_NAME_BYTES_MAX,
  ID_MAX,
  INCARNATION_BYTES_MAX,
  MESSAGE_BYTES_MAX,
  NAME_BYTES_MAX,
  PID_MAX,
  SESSION_ID_BYTES_MAX,
  START_TIME_DIGITS_MAX,
  START_TIME_MAX,
} from './limits.js';
import { badShape, integer, text } from './shape.js';

/** Lowercase canonical form only, so one VM has one spelling (libvirt writes it this way). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN = /^[A-Za-z0-9._-]+$/;
const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/;
/** No leading zeros: the kernel prints starttime as %llu, and one value must have one spelling. */
const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function vmUuid(value: unknown, where: string): string {
  return text(value, where, { bytesMax: 36, pattern: UUID, patternName: 'a canonical lowercase UUID' });
}

/** Request sequence numbers start at 1; JSON numbers are exact up to 2^53-1. */
export function requestSeq(value: unknown, where: string): number {
  return integer(value, where, 1, Number.MAX_SAFE_INTEGER);
}

export function statementSeq(value: unknown, where: string): number {
  return integer(value, where, 0, Number.MAX_SAFE_INTEGER);
}

/** Milliseconds or lease versions: non-negative and exact in a double. */
export function safeCount(value: unknown, where: string): number {
  return integer(value, where, 0, Number.MAX_SAFE_INTEGER);
}

/** Lockspace and resource names: the on-disk format's rule (1..48 bytes of printable ASCII, no spaces). */
export function leaseName(value: unknown, where: string): string {
  const name = text(value, where, { bytesMax: NAME_BYTES_MAX });
  const problem = nameProblem(name);
  if (problem) throw badShape(where, problem);
  return name;
}

export function incarnationId(value: unknown, where: string): string {
  return text(value, where, { bytesMax: INCARNATION_BYTES_MAX, pattern: TOKEN, patternName: 'letters, digits, ".", "_" or "-"' });
}

export function sessionId(value: unknown, where: string): string {
  return text(value, where, { bytesMax: SESSION_ID_BYTES_MAX, pattern: TOKEN, patternName: 'letters, digits, ".", "_" or "-"' });
}

export function errorCode(value: unknown, where: string): string {
  return text(value, where, { bytesMax: ERROR_CODE_BYTES_MAX, pattern: ERROR_CODE, patternName: 'an UPPER_SNAKE code' });
}

/** Free text for people; one line (controls are refused by text()). */
export function message(value: unknown, where: string): string {
  return text(value, where, { bytesMax: MESSAGE_BYTES_MAX });
}

export function hostId(value: unknown, where: string): number {
  return integer(value, where, 1, HOST_ID_MAX);
}

/** Empty when the record holds no owner (a free lease). */
export function hostName(value: unknown, where: string): string {
  return text(value, where, { bytesMin: 0, bytesMax: HOST_NAME_BYTES_MAX });
}

export function peerPid(value: unknown, where: string): number {
  return integer(value, where, 1, PID_MAX);
}

export function childPid(value: unknown, where: string): number {
  return integer(value, where, CHILD_PID_MIN, PID_MAX);
}

export function posixId(value: unknown, where: string): number {
  return integer(value, where, 0, ID_MAX);
}

/** /proc/PID/stat field 22: a u64 in decimal, kept as text because it may exceed 2^53. */
export function startTime(value: unknown, where: string): string {
  const s = text(value, where, { bytesMax: START_TIME_DIGITS_MAX, pattern: DECIMAL, patternName: 'a decimal number without leading zeros' });
  if (BigInt(s) > START_TIME_MAX) throw badShape(where, 'must fit in 64 bits');
  return s;
}

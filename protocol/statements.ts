/**
 * Signed statements: the only helper words a supervisor acts on. A statement
 * is a JSON body (text) and an Ed25519 signature over a domain separator
 * followed by the body's UTF-8 bytes. The separator keeps a signature over a
 * statement from ever being valid for anything else this key might sign.
 *
 * Bodies have one canonical spelling (the encoder's key order, no spaces). The
 * parser refuses any other spelling, so duplicate keys or padding cannot make
 * two parsers read one signed text two ways.
 *
 * This file must stay free of libsodium (see statement-verifier.ts).
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import {
  incarnationId,
  leaseName,
  message,
  peerPid,
  posixId,
  safeCount,
  sessionId,
  statementSeq,
  vmUuid,
} from './fields.js';
import { ED25519_SIGNATURE_BYTES, LEASES_PER_STATEMENT_MAX, NONCE_BYTES, STATEMENT_BODY_BYTES_MAX, TYPE_BYTES_MAX } from './limits.js';
import { badShape, base64Bytes, exactObject, integer, oneOf, text, type JsonObject } from './shape.js';

export const STATEMENT_DOMAIN = 'vmlease-statement-v1\n';

export interface Signed {
  /** The statement body, canonical JSON text. */
  readonly body: string;
  /** base64 of the 64-byte Ed25519 signature over STATEMENT_DOMAIN + body (UTF-8). */
  readonly sig: string;
}

interface StatementHeader {
  readonly incarnation: string;
  readonly sessionId: string;
  readonly statementSeq: number;
}

/** First statement of a session: proves the helper's incarnation and binds the session to the kernel-verified peer. */
export interface WelcomeStatement extends StatementHeader {
  readonly kind: 'welcome';
  readonly statementSeq: 0;
  /** The client's hello nonce, echoed: this welcome is fresh, not replayed. */
  readonly nonce: string;
  readonly peerPid: number;
  readonly peerUid: number;
  readonly peerGid: number;
}

export type LeaseMode = 'exclusive' | 'shared';
export const LEASE_MODES: readonly LeaseMode[] = ['exclusive', 'shared'];

export interface GrantedLease {
  readonly lockspace: string;
  readonly resource: string;
  readonly mode: LeaseMode;
  readonly lver: number;
}

export interface GrantedStatement extends StatementHeader {
  readonly kind: 'granted';
  readonly vm: string;
  readonly leases: readonly GrantedLease[];
  /** CLOCK_MONOTONIC milliseconds, shared by every process on the host. */
  readonly validUntilMs: number;
}

export interface ValidUntilStatement extends StatementHeader {
  readonly kind: 'valid-until';
  readonly vm: string;
  readonly validUntilMs: number;
}

export interface LostStatement extends StatementHeader {
  readonly kind: 'lost';
  readonly vm: string;
  readonly reason: string;
}

export type StatementBody = WelcomeStatement | GrantedStatement | ValidUntilStatement | LostStatement;
export type StatementKind = StatementBody['kind'];
export const STATEMENT_KINDS: readonly StatementKind[] = ['welcome', 'granted', 'valid-until', 'lost'];

/** The canonical body text. Objects are rebuilt field by field, so stray runtime properties never reach a signature. */
export function encodeStatementBody(body: StatementBody): string {
  const header = { kind: body.kind, incarnation: body.incarnation, sessionId: body.sessionId, statementSeq: body.statementSeq };
  switch (body.kind) {
    case 'welcome':
      return JSON.stringify({ ...header, nonce: body.nonce, peerPid: body.peerPid, peerUid: body.peerUid, peerGid: body.peerGid });
    case 'granted': {
      const leases = body.leases.map((l) => ({ lockspace: l.lockspace, resource: l.resource, mode: l.mode, lver: l.lver }));
      return JSON.stringify({ ...header, vm: body.vm, leases, validUntilMs: body.validUntilMs });
    }
    case 'valid-until':
      return JSON.stringify({ ...header, vm: body.vm, validUntilMs: body.validUntilMs });
    case 'lost':
      return JSON.stringify({ ...header, vm: body.vm, reason: body.reason });
  }
}

/** The bytes a signature covers. */
export function statementSigningBytes(body: string): Buffer {
  return Buffer.concat([Buffer.from(STATEMENT_DOMAIN, 'utf8'), Buffer.from(body, 'utf8')]);
}

/** A Signed envelope's shape (not its signature: that is the verifier's job). */
export function parseSigned(value: unknown, where: string): Signed {
  const o = exactObject(value, where, ['body', 'sig']);
  return {
    body: text(o.body, `${where}.body`, { bytesMax: STATEMENT_BODY_BYTES_MAX }),
    sig: signatureText(o.sig, `${where}.sig`),
  };
}

export function signatureText(value: unknown, where: string): string {
  base64Bytes(value, where, ED25519_SIGNATURE_BYTES, 'base64');
  return value as string;
}

/** Parses a body text into its exact shape; call it only on a body whose signature verified. */
export function parseStatementBody(body: string): StatementBody {
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch {
    throw new ProtocolError(ProtocolErrorCode.notJson, 'statement body is not one JSON value');
  }
  const parsed = bodyOfKind(value);
  if (encodeStatementBody(parsed) !== body) throw badShape('statement', 'body is not in canonical form');
  return parsed;
}

function bodyOfKind(value: unknown): StatementBody {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badShape('statement', 'must be an object');
  const kind = text((value as JsonObject).kind, 'statement.kind', { bytesMax: TYPE_BYTES_MAX });
  switch (kind) {
    case 'welcome':
      return welcome(value);
    case 'granted':
      return granted(value);
    case 'valid-until':
      return validUntil(value);
    case 'lost':
      return lost(value);
    default:
      throw new ProtocolError(ProtocolErrorCode.unknownType, `statement kind is not one of ${STATEMENT_KINDS.join(', ')}`);
  }
}

const HEADER_KEYS = ['kind', 'incarnation', 'sessionId', 'statementSeq'] as const;

function header(o: JsonObject, where: string): Omit<StatementHeader, 'statementSeq'> {
  return { incarnation: incarnationId(o.incarnation, `${where}.incarnation`), sessionId: sessionId(o.sessionId, `${where}.sessionId`) };
}

/** Every statement after the welcome has statementSeq >= 1. */
function laterSeq(o: JsonObject, where: string): number {
  const seq = statementSeq(o.statementSeq, `${where}.statementSeq`);
  if (seq < 1) throw badShape(`${where}.statementSeq`, 'must be at least 1 (0 is the welcome)');
  return seq;
}

function welcome(value: unknown): WelcomeStatement {
  const w = 'welcome';
  const o = exactObject(value, w, [...HEADER_KEYS, 'nonce', 'peerPid', 'peerUid', 'peerGid']);
  integer(o.statementSeq, `${w}.statementSeq`, 0, 0);
  base64Bytes(o.nonce, `${w}.nonce`, NONCE_BYTES, 'base64');
  return {
    kind: 'welcome',
    ...header(o, w),
    statementSeq: 0,
    nonce: o.nonce as string,
    peerPid: peerPid(o.peerPid, `${w}.peerPid`),
    peerUid: posixId(o.peerUid, `${w}.peerUid`),
    peerGid: posixId(o.peerGid, `${w}.peerGid`),
  };
}

function granted(value: unknown): GrantedStatement {
  const w = 'granted';
  const o = exactObject(value, w, [...HEADER_KEYS, 'vm', 'leases', 'validUntilMs']);
  return {
    kind: 'granted',
    ...header(o, w),
    statementSeq: laterSeq(o, w),
    vm: vmUuid(o.vm, `${w}.vm`),
    leases: leases(o.leases, `${w}.leases`),
    validUntilMs: safeCount(o.validUntilMs, `${w}.validUntilMs`),
  };
}

function leases(value: unknown, where: string): GrantedLease[] {
  if (!Array.isArray(value)) throw badShape(where, 'must be an array');
  if (value.length < 1 || value.length > LEASES_PER_STATEMENT_MAX) throw badShape(where, `must hold 1..${LEASES_PER_STATEMENT_MAX} leases`);
  const result = value.map((item: unknown, i) => lease(item, `${where}[${i}]`));
  // A duplicate would make "which lver did we get" ambiguous.
  const keys = new Set(result.map((l) => `${l.lockspace}\n${l.resource}`));
  if (keys.size !== result.length) throw badShape(where, 'names one lease twice');
  return result;
}

function lease(value: unknown, where: string): GrantedLease {
  const o = exactObject(value, where, ['lockspace', 'resource', 'mode', 'lver']);
  return {
    lockspace: leaseName(o.lockspace, `${where}.lockspace`),
    resource: leaseName(o.resource, `${where}.resource`),
    mode: oneOf(o.mode, `${where}.mode`, LEASE_MODES),
    lver: safeCount(o.lver, `${where}.lver`),
  };
}

function validUntil(value: unknown): ValidUntilStatement {
  const w = 'valid-until';
  const o = exactObject(value, w, [...HEADER_KEYS, 'vm', 'validUntilMs']);
  return {
    kind: 'valid-until',
    ...header(o, w),
    statementSeq: laterSeq(o, w),
    vm: vmUuid(o.vm, `${w}.vm`),
    validUntilMs: safeCount(o.validUntilMs, `${w}.validUntilMs`),
  };
}

function lost(value: unknown): LostStatement {
  const w = 'lost';
  const o = exactObject(value, w, [...HEADER_KEYS, 'vm', 'reason']);
  return {
    kind: 'lost',
    ...header(o, w),
    statementSeq: laterSeq(o, w),
    vm: vmUuid(o.vm, `${w}.vm`),
    reason: message(o.reason, `${w}.reason`),
  };
}

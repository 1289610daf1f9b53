/**
 * Helper -> supervisor messages on the supervisor channel: JSON text frames.
 * Statements arrive signed; this parser checks their envelope only. Their
 * bodies are read after the signature verifies (statement-verifier.ts), so the
 * kind of a `statement` message's statement is checked there, by the caller.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { errorCode, hostId, hostName, message, requestSeq, vmUuid } from './fields.js';
import { decodeJsonFrame, type FrameData } from './frame.js';
import { SUPERVISOR_FRAME_BYTES_MAX, TYPE_BYTES_MAX } from './limits.js';
import { assertParses, badShape, boolean, exactObject, isoInstant, nullable, oneOf, text, type JsonObject } from './shape.js';
import { parseSigned, type Signed } from './statements.js';
import type { HostState } from '../helper/engine/host-table.js';
import type { SupervisorRequestType } from './supervisor-requests.js';

/** The helper's host table states (helper/engine/host-table.ts). */
export type { HostState };
export const HOST_STATES: readonly HostState[] = ['UNKNOWN', 'LIVE', 'FAIL', 'DEAD', 'FREE'];

/** Who holds a lease we could not get: enough for the supervisor's one-line "busy" report. */
export interface Holder {
  readonly hostId: number;
  readonly hostName: string;
  readonly state: HostState;
  /** When the holder's state last changed, as we saw it; null when not seen change yet. */
  readonly sinceIso: string | null;
  /** When takeover becomes possible; null: never on timing alone (a LIVE holder). */
  readonly takeoverPossibleIso: string | null;
}

export interface ReplyError {
  readonly code: string;
  readonly message: string;
  readonly holder?: Holder;
}

/** bind: the VM the session is now bound to (the helper's word, checked by the supervisor against its own). */
export interface BoundResult {
  readonly vm: string;
}
/** acquire, claim: a signed 'granted' statement. inquire: the current one, or null when no leases are held. */
export interface StatementResult {
  readonly statement: Signed | null;
}
/** report-child, release: nothing but success. */
export type EmptyResult = Readonly<Record<never, never>>;
export type ReplyResult = BoundResult | StatementResult | EmptyResult;

export interface GrantResult {
  readonly statement: Signed;
}

/** Which result each request gets on success. hello gets no reply: it gets a welcome. The extends makes a missing request a compile error. */
export interface ReplyResults extends Record<Exclude<SupervisorRequestType, 'hello'>, ReplyResult> {
  readonly bind: BoundResult;
  readonly acquire: GrantResult;
  readonly claim: GrantResult;
  readonly 'report-child': EmptyResult;
  readonly release: EmptyResult;
  readonly inquire: StatementResult;
}

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly statement: Signed;
}

export interface ReplyOkMessage {
  readonly type: 'reply';
  readonly seq: number;
  readonly ok: true;
  readonly result: ReplyResult;
}

export interface ReplyErrorMessage {
  readonly type: 'reply';
  readonly seq: number;
  readonly ok: false;
  readonly error: ReplyError;
}

/** Unsolicited: 'valid-until' renewals and 'lost'. */
export interface StatementMessage {
  readonly type: 'statement';
  readonly statement: Signed;
}

/** Sent before the helper closes a session; code is a ProtocolErrorCode or a helper code. */
export interface GoodbyeMessage {
  readonly type: 'goodbye';
  readonly code: string;
  readonly reason: string;
}

export type HelperMessage = WelcomeMessage | ReplyOkMessage | ReplyErrorMessage | StatementMessage | GoodbyeMessage;
export type HelperMessageType = HelperMessage['type'];
export const HELPER_MESSAGE_TYPES: readonly HelperMessageType[] = ['welcome', 'reply', 'statement', 'goodbye'];

export function parseHelperMessage(data: FrameData, isBinary = false): HelperMessage {
  return helperMessage(decodeJsonFrame(data, SUPERVISOR_FRAME_BYTES_MAX, isBinary));
}

function helperMessage(value: unknown): HelperMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badShape('message', 'must be an object');
  const type = text((value as JsonObject).type, 'message.type', { bytesMax: TYPE_BYTES_MAX });
  switch (type) {
    case 'welcome':
    case 'statement': {
      const o = exactObject(value, type, ['type', 'statement']);
      return { type, statement: parseSigned(o.statement, `${type}.statement`) };
    }
    case 'reply':
      return reply(value);
    case 'goodbye': {
      const o = exactObject(value, type, ['type', 'code', 'reason']);
      return { type, code: errorCode(o.code, 'goodbye.code'), reason: message(o.reason, 'goodbye.reason') };
    }
    default:
      throw new ProtocolError(ProtocolErrorCode.unknownType, `message type is not one of ${HELPER_MESSAGE_TYPES.join(', ')}`);
  }
}

function reply(value: unknown): ReplyOkMessage | ReplyErrorMessage {
  const ok = boolean((value as JsonObject).ok, 'reply.ok');
  if (ok) {
    const o = exactObject(value, 'reply', ['type', 'seq', 'ok', 'result']);
    return { type: 'reply', seq: requestSeq(o.seq, 'reply.seq'), ok, result: replyResult(o.result, 'reply.result') };
  }
  const o = exactObject(value, 'reply', ['type', 'seq', 'ok', 'error']);
  return { type: 'reply', seq: requestSeq(o.seq, 'reply.seq'), ok, error: replyError(o.error, 'reply.error') };
}

function replyResult(value: unknown, where: string): ReplyResult {
  const o = exactObject(value, where, [], ['vm', 'statement']);
  const keys = Object.keys(o);
  if (keys.length > 1) throw badShape(where, 'must hold at most one of "vm", "statement"');
  if (Object.hasOwn(o, 'vm')) return { vm: vmUuid(o.vm, `${where}.vm`) };
  if (Object.hasOwn(o, 'statement')) return { statement: nullable(o.statement, (v) => parseSigned(v, `${where}.statement`)) };
  return {};
}

function replyError(value: unknown, where: string): ReplyError {
  const o = exactObject(value, where, ['code', 'message'], ['holder']);
  const error = { code: errorCode(o.code, `${where}.code`), message: message(o.message, `${where}.message`) };
  return Object.hasOwn(o, 'holder') ? { ...error, holder: holder(o.holder, `${where}.holder`) } : error;
}

function holder(value: unknown, where: string): Holder {
  const o = exactObject(value, where, ['hostId', 'hostName', 'state', 'sinceIso', 'takeoverPossibleIso']);
  return {
    hostId: hostId(o.hostId, `${where}.hostId`),
    hostName: hostName(o.hostName, `${where}.hostName`),
    state: oneOf(o.state, `${where}.state`, HOST_STATES),
    sinceIso: nullable(o.sinceIso, (v) => isoInstant(v, `${where}.sinceIso`)),
    takeoverPossibleIso: nullable(o.takeoverPossibleIso, (v) => isoInstant(v, `${where}.takeoverPossibleIso`)),
  };
}

/**
 * Narrows a successful reply's result to the one its request gets, so a
 * supervisor that sent `acquire` at this seq can rely on a granted statement.
 */
export function expectReplyResult<T extends keyof ReplyResults>(requestType: T, result: ReplyResult): ReplyResults[T] {
  const keys = Object.keys(result);
  const fits = ((): boolean => {
    switch (requestType as keyof ReplyResults) {
      case 'bind':
        return keys.length === 1 && 'vm' in result;
      case 'acquire':
      case 'claim':
        return keys.length === 1 && 'statement' in result && result.statement !== null;
      case 'inquire':
        return keys.length === 1 && 'statement' in result;
      case 'report-child':
      case 'release':
        return keys.length === 0;
    }
  })();
  if (!fits) throw badShape('reply.result', `is not the result of a ${requestType} request`);
  return result as ReplyResults[T];
}

/** The frame text for a helper message; built field by field and checked by the parser (see encodeSupervisorRequest). */
export function encodeHelperMessage(message: HelperMessage): string {
  const text = JSON.stringify(wireObject(message));
  assertParses(() => parseHelperMessage(text));
  return text;
}

function wireObject(m: HelperMessage): object {
  switch (m.type) {
    case 'welcome':
    case 'statement':
      return { type: m.type, statement: signedObject(m.statement) };
    case 'goodbye':
      return { type: m.type, code: m.code, reason: m.reason };
    case 'reply':
      return m.ok
        ? { type: m.type, seq: m.seq, ok: true, result: resultObject(m.result) }
        : { type: m.type, seq: m.seq, ok: false, error: errorObject(m.error) };
  }
}

function signedObject(s: Signed): object {
  return { body: s.body, sig: s.sig };
}

function resultObject(r: ReplyResult): object {
  if ('vm' in r) return { vm: r.vm };
  if ('statement' in r) return { statement: r.statement === null ? null : signedObject(r.statement) };
  return {};
}

function errorObject(e: ReplyError): object {
  const base = { code: e.code, message: e.message };
  if (e.holder === undefined) return base;
  const h = e.holder;
  return { ...base, holder: { hostId: h.hostId, hostName: h.hostName, state: h.state, sinceIso: h.sinceIso, takeoverPossibleIso: h.takeoverPossibleIso } };
}

/**
 * Supervisor -> helper requests on the supervisor channel: JSON text frames.
 * Every request carries `seq` (1, 2, 3, ...); RequestSequence checks the order.
 * Which request is allowed in which session state is the helper's table
 * (README.md); this file only says what a well-formed request is.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { childPid, requestSeq, startTime, vmUuid } from './fields.js';
import { decodeJsonFrame, type FrameData } from './frame.js';
import { NONCE_BYTES, PROTOCOL_VERSION, SECRET_BYTES, SUPERVISOR_FRAME_BYTES_MAX, TYPE_BYTES_MAX } from './limits.js';
import { assertParses, badShape, base64Bytes, exactObject, integer, text, type JsonObject } from './shape.js';

export interface HelloRequest {
  readonly type: 'hello';
  readonly seq: 1;
  readonly protocol: typeof PROTOCOL_VERSION;
  /** base64 of NONCE_BYTES random bytes; the signed welcome echoes it. */
  readonly nonce: string;
}

export interface BindRequest {
  readonly type: 'bind';
  readonly seq: number;
  readonly vm: string;
  /** base64url of SECRET_BYTES: the one-time registration secret (no libvirt). */
  readonly secret?: string;
}

/** Requests that carry nothing but their seq. */
export interface BareRequest {
  readonly type: 'acquire' | 'claim' | 'release' | 'inquire';
  readonly seq: number;
}

export interface ReportChildRequest {
  readonly type: 'report-child';
  readonly seq: number;
  readonly pid: number;
  /** /proc/PID/stat field 22, decimal: with the pid it names one process, not a reused pid. */
  readonly startTime: string;
}

export type SupervisorRequest = HelloRequest | BindRequest | BareRequest | ReportChildRequest;
export type SupervisorRequestType = SupervisorRequest['type'];
export const SUPERVISOR_REQUEST_TYPES: readonly SupervisorRequestType[] = [
  'hello', 'bind', 'acquire', 'claim', 'report-child', 'release', 'inquire',
];

export function parseSupervisorRequest(data: FrameData, isBinary = false): SupervisorRequest {
  return supervisorRequest(decodeJsonFrame(data, SUPERVISOR_FRAME_BYTES_MAX, isBinary));
}

function supervisorRequest(value: unknown): SupervisorRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badShape('request', 'must be an object');
  const type = text((value as JsonObject).type, 'request.type', { bytesMax: TYPE_BYTES_MAX });
  switch (type) {
    case 'hello':
      return hello(value as JsonObject);
    case 'bind':
      return bind(value);
    case 'report-child':
      return reportChild(value);
    case 'acquire':
    case 'claim':
    case 'release':
    case 'inquire': {
      const o = exactObject(value, type, ['type', 'seq']);
      return { type, seq: requestSeq(o.seq, `${type}.seq`) };
    }
    default:
      throw new ProtocolError(ProtocolErrorCode.unknownType, `request type is not one of ${SUPERVISOR_REQUEST_TYPES.join(', ')}`);
  }
}

function hello(value: JsonObject): HelloRequest {
  // The version first: another version's hello may have other keys, and deserves the version error.
  const protocol = integer(value.protocol, 'hello.protocol', 1, 65_535);
  if (protocol !== PROTOCOL_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.unsupportedVersion, `hello.protocol is ${protocol}, this build speaks ${PROTOCOL_VERSION}`);
  }
  const o = exactObject(value, 'hello', ['type', 'seq', 'protocol', 'nonce']);
  if (requestSeq(o.seq, 'hello.seq') !== 1) throw new ProtocolError(ProtocolErrorCode.badSeq, 'hello.seq must be 1');
  base64Bytes(o.nonce, 'hello.nonce', NONCE_BYTES, 'base64');
  return { type: 'hello', seq: 1, protocol: PROTOCOL_VERSION, nonce: o.nonce as string };
}

function bind(value: unknown): BindRequest {
  const o = exactObject(value, 'bind', ['type', 'seq', 'vm'], ['secret']);
  const request = { type: 'bind', seq: requestSeq(o.seq, 'bind.seq'), vm: vmUuid(o.vm, 'bind.vm') } as const;
  if (!Object.hasOwn(o, 'secret')) return request;
  base64Bytes(o.secret, 'bind.secret', SECRET_BYTES, 'base64url');
  return { ...request, secret: o.secret as string };
}

function reportChild(value: unknown): ReportChildRequest {
  const o = exactObject(value, 'report-child', ['type', 'seq', 'pid', 'startTime']);
  return {
    type: 'report-child',
    seq: requestSeq(o.seq, 'report-child.seq'),
    pid: childPid(o.pid, 'report-child.pid'),
    startTime: startTime(o.startTime, 'report-child.startTime'),
  };
}

/**
 * The frame text for a request. Built field by field (stray runtime properties
 * are not sent) and checked by the parser: sending what the peer must refuse is a bug.
 */
export function encodeSupervisorRequest(request: SupervisorRequest): string {
  const text = JSON.stringify(wireObject(request));
  assertParses(() => parseSupervisorRequest(text));
  return text;
}

function wireObject(r: SupervisorRequest): object {
  switch (r.type) {
    case 'hello':
      return { type: r.type, seq: r.seq, protocol: r.protocol, nonce: r.nonce };
    case 'bind':
      return r.secret === undefined ? { type: r.type, seq: r.seq, vm: r.vm } : { type: r.type, seq: r.seq, vm: r.vm, secret: r.secret };
    case 'report-child':
      return { type: r.type, seq: r.seq, pid: r.pid, startTime: r.startTime };
    default:
      return { type: r.type, seq: r.seq };
  }
}

/**
 * The admin channel (admin.sock, root only): the libvirt hook and the
 * `vmlease register / unregister / status / hosts` commands. JSON text
 * frames; every request carries `seq` (1, 2, ...) and gets one reply with the
 * same `seq`. Requests are parsed here into exact shapes (the checks of
 * shape.ts and fields.ts); anything else is refused with a ProtocolError and
 * ends the connection.
 */
import { leaseName, requestSeq, vmUuid, posixId } from './fields.js';
import { decodeJsonFrame, type FrameData } from './frame.js';
import { ADMIN_FRAME_BYTES_MAX } from './limits.js';
import { badShape, boolean, exactObject, integer, oneOf, text } from './shape.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

export { ADMIN_FRAME_BYTES_MAX };

export const ADMIN_PROTOCOL_VERSION = 1;
export const ADMIN_LEASES_MAX = 64;
export { ID_MAX as UID_MAX } from "./limits.js";
const PATH_BYTES_MAX = 4096;
/** Domain XML in a register request: libvirt's largest domains are tens of KiB; the frame must also fit JSON escaping. */
export const DOMAIN_XML_BYTES_MAX = 262_144;

export type LeaseModeWire = 'exclusive' | 'shared';

export interface LeaseLocationWire {
  readonly lockspace: string;
  readonly resource: string;
  readonly path: string;
  readonly offset: number;
  readonly mode: LeaseModeWire;
}

export type AdminRequest =
  /** Leases named one by one (`leases`), or derived by the helper's policy from libvirt domain XML (`domainXml`): exactly one of the two. */
  | { readonly type: 'register'; readonly seq: number; readonly vm: string; readonly uid: number; readonly gid: number; readonly leases: readonly LeaseLocationWire[]; readonly domainXml: string | null; readonly acquire: boolean; readonly libvirtDomain: string | null }
  | { readonly type: 'unregister'; readonly seq: number; readonly vm: string }
  | { readonly type: 'status'; readonly seq: number }
  | { readonly type: 'hosts'; readonly seq: number; readonly lockspace: string }
  | { readonly type: 'add-lockspace'; readonly seq: number; readonly lockspace: string; readonly path: string; readonly offset: number }
  | { readonly type: 'remove-lockspace'; readonly seq: number; readonly lockspace: string };

export interface AdminErrorWire {
  readonly code: string;
  readonly kind: 'busy' | 'refused' | 'storage' | 'error';
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type AdminReply =
  | { readonly type: 'reply'; readonly seq: number; readonly ok: true; readonly result: Readonly<Record<string, unknown>> }
  | { readonly type: 'reply'; readonly seq: number; readonly ok: false; readonly error: AdminErrorWire };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A VM uuid as libvirt writes it: lowercase canonical form (for command-line checks). */
export function uuidProblem(value: string): string | undefined {
  return UUID_PATTERN.test(value) ? undefined : `${JSON.stringify(value.slice(0, 64))} is not a lowercase canonical UUID`;
}

/** A libvirt domain name as it appears in /run/libvirt/qemu/NAME.pid: no '/', no leading '.', printable. */
export const LIBVIRT_DOMAIN_PATTERN = /^[^/.\s][^/\s]{0,254}$/;

function libvirtDomainName(value: unknown, where: string): string {
  return text(value, where, { bytesMax: 255, pattern: LIBVIRT_DOMAIN_PATTERN, patternName: "a libvirt domain name (no '/', no leading '.')" });
}

function leaseOf(value: unknown, index: number): LeaseLocationWire {
  const where = `register.leases[${index}]`;
  const o = exactObject(value, where, ['lockspace', 'resource', 'path', 'offset', 'mode']);
  return {
    lockspace: leaseName(o.lockspace, `${where}.lockspace`),
    resource: leaseName(o.resource, `${where}.resource`),
    path: text(o.path, `${where}.path`, { bytesMax: PATH_BYTES_MAX, pattern: /^\//, patternName: 'an absolute path' }),
    offset: integer(o.offset, `${where}.offset`, 0, Number.MAX_SAFE_INTEGER),
    mode: oneOf(o.mode, `${where}.mode`, ['exclusive', 'shared'] as const),
  };
}

function leasesOf(value: unknown): LeaseLocationWire[] {
  if (!Array.isArray(value)) throw badShape('register.leases', 'must be an array');
  if (value.length > ADMIN_LEASES_MAX) throw badShape('register.leases', `must have at most ${ADMIN_LEASES_MAX} entries`);
  return value.map(leaseOf);
}

/** XML 1.0 admits tab, newline and carriage return among the control characters, and no lone surrogates. */
const NOT_XML_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\p{Cs}]/u;

function domainXmlOf(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw badShape('register.domainXml', 'must be a string or null');
  // length > max already implies too many bytes; it spares counting a huge string.
  const bytes = value.length > DOMAIN_XML_BYTES_MAX ? value.length : Buffer.byteLength(value, 'utf8');
  if (bytes === 0 || bytes > DOMAIN_XML_BYTES_MAX) throw badShape('register.domainXml', `must be 1..${DOMAIN_XML_BYTES_MAX} bytes of UTF-8`);
  if (NOT_XML_TEXT.test(value)) throw badShape('register.domainXml', 'must not contain control characters other than tab, newline and carriage return');
  return value;
}

function registerOf(o: Record<string, unknown>, seq: number): AdminRequest {
  const leases = leasesOf(o.leases);
  const domainXml = domainXmlOf(o.domainXml);
  if (domainXml !== null && leases.length > 0) throw badShape('register', 'names leases and domain XML: give one of the two');
  return {
    type: 'register',
    seq,
    vm: vmUuid(o.vm, 'register.vm'),
    uid: posixId(o.uid, 'register.uid'),
    gid: posixId(o.gid, 'register.gid'),
    leases,
    domainXml,
    acquire: boolean(o.acquire, 'register.acquire'),
    libvirtDomain: o.libvirtDomain === null ? null : libvirtDomainName(o.libvirtDomain, 'register.libvirtDomain'),
  };
}

const KEYS: Record<AdminRequest['type'], readonly string[]> = {
  register: ['type', 'seq', 'vm', 'uid', 'gid', 'leases', 'domainXml', 'acquire', 'libvirtDomain'],
  unregister: ['type', 'seq', 'vm'],
  status: ['type', 'seq'],
  hosts: ['type', 'seq', 'lockspace'],
  'add-lockspace': ['type', 'seq', 'lockspace', 'path', 'offset'],
  'remove-lockspace': ['type', 'seq', 'lockspace'],
};

export function parseAdminRequest(data: FrameData, isBinary = false): AdminRequest {
  const value = decodeJsonFrame(data, ADMIN_FRAME_BYTES_MAX, isBinary);
  const head = exactObject(value, 'request', ['type', 'seq'], ['vm', 'uid', 'gid', 'leases', 'domainXml', 'acquire', 'libvirtDomain', 'lockspace', 'path', 'offset']);
  const type = head.type;
  if (typeof type !== 'string' || !Object.hasOwn(KEYS, type)) throw new ProtocolError(ProtocolErrorCode.unknownType, 'unknown admin request type');
  const kind = type as AdminRequest['type'];
  const o = exactObject(value, kind, KEYS[kind]);
  const seq = requestSeq(o.seq, `${kind}.seq`);
  switch (kind) {
    case 'register':
      return registerOf(o, seq);
    case 'unregister':
      return { type: kind, seq, vm: vmUuid(o.vm, 'unregister.vm') };
    case 'status':
      return { type: kind, seq };
    case 'hosts':
      return { type: kind, seq, lockspace: leaseName(o.lockspace, 'hosts.lockspace') };
    case 'add-lockspace':
      return {
        type: kind,
        seq,
        lockspace: leaseName(o.lockspace, 'add-lockspace.lockspace'),
        path: text(o.path, 'add-lockspace.path', { bytesMax: PATH_BYTES_MAX, pattern: /^\//, patternName: 'an absolute path' }),
        offset: integer(o.offset, 'add-lockspace.offset', 0, Number.MAX_SAFE_INTEGER),
      };
    case 'remove-lockspace':
      return { type: kind, seq, lockspace: leaseName(o.lockspace, 'remove-lockspace.lockspace') };
  }
}

/** The client side trusts the helper's shape only this far: a reply to its request. */
export function parseAdminReply(data: FrameData, isBinary = false): AdminReply {
  const value = decodeJsonFrame(data, ADMIN_FRAME_BYTES_MAX, isBinary);
  const o = exactObject(value, 'reply', ['type', 'seq', 'ok'], ['result', 'error']);
  if (o.type !== 'reply') throw badShape('reply.type', 'must be "reply"');
  requestSeq(o.seq, 'reply.seq');
  if (boolean(o.ok, 'reply.ok')) {
    if (typeof o.result !== 'object' || o.result === null || Array.isArray(o.result)) throw badShape('reply.result', 'must be an object');
  } else {
    const error = exactObject(o.error, 'reply.error', ['code', 'kind', 'message'], ['details']);
    oneOf(error.kind, 'reply.error.kind', ['busy', 'refused', 'storage', 'error'] as const);
    if (typeof error.code !== 'string' || typeof error.message !== 'string') throw badShape('reply.error', 'needs a code and a message');
  }
  return value as AdminReply;
}

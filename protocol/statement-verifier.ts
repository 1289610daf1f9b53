/**
 * Verifies signed statements on the supervisor side with node:crypto only.
 * The supervisor runs under `node --jitless` (svirt_t forbids executable
 * anonymous memory), where libsodium-wrappers has no WebAssembly and its
 * fallback crashes the process: this file must never import libsodium,
 * directly or through anything it imports (a test walks the import graph and
 * runs it under --jitless).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './limits.js';
import { badShape, base64Bytes } from './shape.js';
import { parseSigned, parseStatementBody, statementSigningBytes, type Signed, type StatementBody, type StatementKind } from './statements.js';

/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410); the 32 raw key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A KeyObject for a raw 32-byte Ed25519 public key; make it once per incarnation and reuse it. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.byteLength !== ED25519_PUBLIC_KEY_BYTES) throw badShape('public key', `must be ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    throw badShape('public key', 'is not an Ed25519 public key');
  }
}

export interface StatementExpectation<K extends StatementKind> {
  /** The incarnation named in the public key file the key came from. */
  readonly incarnation: string;
  /** The session's id, from its welcome; absent only when verifying the welcome itself. */
  readonly sessionId?: string;
  /** The kinds acceptable here; absent: any. */
  readonly kinds?: readonly K[];
}

/**
 * Checks the signature first and reads the body only after: nothing a peer
 * wrote is parsed beyond the envelope unless the incarnation key vouches for it.
 */
export function verifyStatement<K extends StatementKind = StatementKind>(
  publicKey: Uint8Array | KeyObject,
  signed: Signed,
  expected: StatementExpectation<K>,
): Extract<StatementBody, { kind: K }> {
  const envelope = parseSigned(signed, 'statement');
  const sig = base64Bytes(envelope.sig, 'statement.sig', ED25519_SIGNATURE_BYTES, 'base64');
  const key = publicKey instanceof Uint8Array ? ed25519PublicKey(publicKey) : publicKey;
  if (!signatureHolds(key, envelope.body, sig)) {
    throw new ProtocolError(ProtocolErrorCode.badSignature, 'statement signature does not verify under the incarnation key');
  }
  const body = parseStatementBody(envelope.body);
  checkExpected(body, expected);
  return body as Extract<StatementBody, { kind: K }>;
}

function signatureHolds(key: KeyObject, body: string, sig: Buffer): boolean {
  try {
    return verify(null, statementSigningBytes(body), key, sig);
  } catch {
    return false; // e.g. a key of another type: not a signature we accept
  }
}

function checkExpected(body: StatementBody, expected: StatementExpectation<StatementKind>): void {
  // A validly signed statement of another incarnation means the key and its file disagree: refuse, never trust.
  if (body.incarnation !== expected.incarnation) {
    throw new ProtocolError(ProtocolErrorCode.wrongIncarnation, 'statement names another helper incarnation');
  }
  if (expected.sessionId !== undefined && body.sessionId !== expected.sessionId) {
    throw new ProtocolError(ProtocolErrorCode.wrongSession, 'statement belongs to another session');
  }
  if (expected.kinds !== undefined && !expected.kinds.includes(body.kind)) {
    throw new ProtocolError(ProtocolErrorCode.wrongKind, `statement is a ${body.kind}, expected ${expected.kinds.join(' or ')}`);
  }
}

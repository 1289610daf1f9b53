/**
 * Typed errors for bytes that break the wire contract. The codes are stable:
 * the helper sends them in `goodbye`, the supervisor logs them, tests match on
 * them. A ProtocolError always means "the peer (or a file) sent something we
 * refuse", never a bug of ours: those are assertions.
 */

export const ProtocolErrorCode = {
  /** The frame (or file) is longer than its byte cap; it was not decoded at all. */
  tooLarge: 'PROTO_TOO_LARGE',
  /** The frame is binary, or its bytes are not well-formed UTF-8 text. */
  notText: 'PROTO_NOT_TEXT',
  /** The text is not one JSON value. */
  notJson: 'PROTO_NOT_JSON',
  /** The JSON does not have the exact shape: a key missing or extra, a wrong type, a value out of range or too long. */
  badShape: 'PROTO_BAD_SHAPE',
  /** `type` (or a statement's `kind`) is a string this protocol version does not know. */
  unknownType: 'PROTO_UNKNOWN_TYPE',
  /** The client's `hello` names a protocol version this build does not speak. */
  unsupportedVersion: 'PROTO_UNSUPPORTED_VERSION',
  /** A request's `seq` is not exactly the previous one plus 1 (replayed, reordered, skipped, or a first request other than 1). */
  badSeq: 'PROTO_BAD_SEQ',
  /** A statement's Ed25519 signature does not verify under the incarnation's public key. */
  badSignature: 'PROTO_BAD_SIGNATURE',
  /** A signed statement names another helper incarnation than the one whose public key we trust. */
  wrongIncarnation: 'PROTO_WRONG_INCARNATION',
  /** A signed statement belongs to another session than this one. */
  wrongSession: 'PROTO_WRONG_SESSION',
  /** A signed statement is about another VM than the one this session is bound to. */
  wrongVm: 'PROTO_WRONG_VM',
  /** A welcome statement does not echo the nonce this client sent in its hello. */
  wrongNonce: 'PROTO_WRONG_NONCE',
  /** A signed statement is of another kind than the one expected at this point. */
  wrongKind: 'PROTO_WRONG_KIND',
  /** A signed statement's statementSeq is not above the last one accepted (replayed or reordered). */
  stale: 'PROTO_STALE',
} as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';

  constructor(
    readonly code: ProtocolErrorCode,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

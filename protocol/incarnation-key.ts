/**
 * The helper's incarnation key: an Ed25519 key pair made fresh for each helper
 * incarnation (libsodium), whose signatures make statements the supervisor can
 * trust. Helper side only: libsodium-wrappers crashes under `node --jitless`,
 * so nothing the supervisor imports may import this file.
 */
import assert from 'node:assert/strict';
import sodium from 'libsodium-wrappers';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { incarnationId } from './fields.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SECRET_KEY_BYTES } from './limits.js';
import { assertParses } from './shape.js';
import { encodeStatementBody, parseStatementBody, statementSigningBytes, type Signed, type StatementBody } from './statements.js';

export interface IncarnationKey {
  readonly incarnation: string;
  /** The raw 32-byte Ed25519 public key, as the public key file carries it. */
  readonly publicKey: Uint8Array;
  /** A detached 64-byte Ed25519 signature over exactly these bytes. */
  sign(bytes: Uint8Array): Uint8Array;
  /** A copy of libsodium's 64-byte secret key (seed, then public key), for a root-only file. */
  secretKeyBytes(): Uint8Array;
}

export async function createIncarnationKey(incarnation: string): Promise<IncarnationKey> {
  await sodium.ready;
  const pair = sodium.crypto_sign_keypair();
  return keyOf(incarnationId(incarnation, 'incarnation'), pair.publicKey, pair.privateKey);
}

/** A key persisted by secretKeyBytes(). Its public half must be the one its seed makes: a torn or mixed file is refused. */
export async function loadIncarnationKey(incarnation: string, secretKey: Uint8Array): Promise<IncarnationKey> {
  await sodium.ready;
  if (secretKey.byteLength !== ED25519_SECRET_KEY_BYTES) {
    throw new ProtocolError(ProtocolErrorCode.badShape, `incarnation secret key must be ${ED25519_SECRET_KEY_BYTES} bytes`);
  }
  const pair = sodium.crypto_sign_seed_keypair(secretKey.subarray(0, 32));
  if (!sodium.memcmp(pair.publicKey, secretKey.subarray(32))) {
    throw new ProtocolError(ProtocolErrorCode.badShape, 'incarnation secret key: its public half is not the one its seed makes');
  }
  return keyOf(incarnationId(incarnation, 'incarnation'), pair.publicKey, pair.privateKey);
}

function keyOf(incarnation: string, publicKey: Uint8Array, privateKey: Uint8Array): IncarnationKey {
  assert.equal(publicKey.byteLength, ED25519_PUBLIC_KEY_BYTES);
  const ownPublicKey = Uint8Array.from(publicKey);
  return {
    incarnation,
    get publicKey() {
      return Uint8Array.from(ownPublicKey); // a copy: a caller cannot change what we later publish
    },
    sign: (bytes) => sodium.crypto_sign_detached(bytes, privateKey),
    secretKeyBytes: () => Uint8Array.from(privateKey),
  };
}

/** Signs a statement of this incarnation. The body must parse as it will at the supervisor: a body we would refuse is a bug. */
export function signStatement(key: IncarnationKey, body: StatementBody): Signed {
  assert.equal(body.incarnation, key.incarnation, 'a statement must name the incarnation whose key signs it');
  const text = encodeStatementBody(body);
  assertParses(() => parseStatementBody(text));
  const sig = key.sign(statementSigningBytes(text));
  return { body: text, sig: Buffer.from(sig).toString('base64') };
}

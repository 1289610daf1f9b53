/**
 * The helper's public key file (`<runDir>/incarnation.pub`, root-owned):
 * how a supervisor learns which incarnation and key to trust. Parsed with the
 * same rules as frames; no libsodium here (the supervisor reads it).
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { incarnationId } from './fields.js';
import { decodeJsonFrame, type FrameData } from './frame.js';
import { ED25519_PUBLIC_KEY_BYTES, PUBLIC_KEY_FILE_BYTES_MAX, PUBLIC_KEY_FILE_VERSION } from './limits.js';
import { assertParses, base64Bytes, exactObject, integer } from './shape.js';

export interface PublicKeyFile {
  readonly version: typeof PUBLIC_KEY_FILE_VERSION;
  readonly incarnation: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

export function encodePublicKeyFile(file: { readonly incarnation: string; readonly publicKey: Uint8Array }): string {
  const text = `${JSON.stringify({
    version: PUBLIC_KEY_FILE_VERSION,
    incarnation: file.incarnation,
    publicKey: Buffer.from(file.publicKey).toString('base64'),
  })}\n`;
  assertParses(() => parsePublicKeyFile(text));
  return text;
}

export function parsePublicKeyFile(data: FrameData): PublicKeyFile {
  const o = exactObject(decodeJsonFrame(data, PUBLIC_KEY_FILE_BYTES_MAX), 'public key file', ['version', 'incarnation', 'publicKey']);
  const version = integer(o.version, 'public key file.version', 1, 65_535);
  if (version !== PUBLIC_KEY_FILE_VERSION) {
    throw new ProtocolError(ProtocolErrorCode.unsupportedVersion, `public key file version is ${version}, this build reads ${PUBLIC_KEY_FILE_VERSION}`);
  }
  return {
    version: PUBLIC_KEY_FILE_VERSION,
    incarnation: incarnationId(o.incarnation, 'public key file.incarnation'),
    publicKey: new Uint8Array(base64Bytes(o.publicKey, 'public key file.publicKey', ED25519_PUBLIC_KEY_BYTES, 'base64')),
  };
}

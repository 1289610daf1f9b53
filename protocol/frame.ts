/**
 * The edge: untrusted frame bytes become one JSON value, or a ProtocolError.
 * The cap is checked before any decoding so an oversized frame costs nothing.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/** What ws hands a 'message' listener (binaryType 'nodebuffer'), or a string in tests and tools. */
export type FrameData = Uint8Array | string;

// fatal: malformed UTF-8 is refused, not replaced. ignoreBOM: a BOM stays and JSON.parse refuses it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;

export function decodeJsonFrame(data: FrameData, bytesMax: number, isBinary = false): unknown {
  if (isBinary) throw new ProtocolError(ProtocolErrorCode.notText, 'binary frame; this channel carries JSON text frames only');
  const text = typeof data === 'string' ? checkedString(data, bytesMax) : decodedBytes(data, bytesMax);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Also catches RangeError from pathological nesting: the peer's fault, not ours.
    throw new ProtocolError(ProtocolErrorCode.notJson, 'frame text is not one JSON value');
  }
}

function decodedBytes(bytes: Uint8Array, bytesMax: number): string {
  if (bytes.byteLength > bytesMax) throw tooLarge(bytes.byteLength, bytesMax);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError(ProtocolErrorCode.notText, 'frame bytes are not well-formed UTF-8');
  }
}

function checkedString(text: string, bytesMax: number): string {
  // Each UTF-16 unit is at least one UTF-8 byte: the cheap test first, the exact count after.
  if (text.length > bytesMax) throw tooLarge(text.length, bytesMax);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > bytesMax) throw tooLarge(bytes, bytesMax);
  if (LONE_SURROGATE.test(text)) throw new ProtocolError(ProtocolErrorCode.notText, 'frame text has a lone surrogate: it is not UTF-8 text');
  return text;
}

function tooLarge(bytes: number, bytesMax: number): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.tooLarge, `frame is at least ${bytes} bytes, at most ${bytesMax} are allowed`);
}

import assert from 'node:assert/strict';
import { NAME_BYTES_MAX } from './layout.js';

/**
 * Little-endian field access on a record. Reads check ranges (a u64 above
 * 2^53 cannot be a value we wrote); writes assert them (a bad value is a bug).
 */

export function view(record: Uint8Array): DataView {
  return new DataView(record.buffer, record.byteOffset, record.byteLength);
}

export function readU64(v: DataView, offset: number): number | undefined {
  // Two u32 halves instead of a BigInt: this runs for every field of every record read.
  const low = v.getUint32(offset, true);
  const high = v.getUint32(offset + 4, true);
  return high > 0x1fffff ? undefined : high * 0x100000000 + low;
}

export function writeU64(v: DataView, offset: number, value: number): void {
  assert.ok(Number.isSafeInteger(value) && value >= 0, `u64 field at ${offset} out of range: ${value}`);
  // Two u32 halves, as readU64 reads them: exact for any safe integer, and no BigInt per field.
  v.setUint32(offset, value % 0x100000000, true);
  v.setUint32(offset + 4, Math.floor(value / 0x100000000), true);
}

export function writeU32(v: DataView, offset: number, value: number): void {
  assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffffffff, `u32 field at ${offset} out of range: ${value}`);
  v.setUint32(offset, value, true);
}

export function writeU16(v: DataView, offset: number, value: number): void {
  assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffff, `u16 field at ${offset} out of range: ${value}`);
  v.setUint16(offset, value, true);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A NUL-padded text field. Returns undefined when bytes follow the first NUL or the text is not valid UTF-8. */
export function readText(record: Uint8Array, offset: number, bytesMax: number): string | undefined {
  return decodeText(record.subarray(offset, offset + bytesMax));
}

function decodeText(field: Uint8Array): string | undefined {
  // Plain loops: this runs for two names in every record read (and a host name in a delta record).
  let end = field.length;
  let ascii = true;
  for (let i = 0; i < field.length; i++) {
    const b = field[i]!;
    if (b === 0) {
      end = i;
      break;
    }
    if (b >= 0x80) ascii = false;
  }
  for (let i = end + 1; i < field.length; i++) if (field[i] !== 0) return undefined;
  const used = field.subarray(0, end);
  // Names are printable ASCII (nameProblem): the same string as the decoder's, without its call.
  if (ascii) return String.fromCharCode.apply(null, used as unknown as number[]);
  try {
    return utf8.decode(used);
  } catch {
    return undefined;
  }
}

export function writeText(record: Uint8Array, offset: number, bytesMax: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  assert.ok(bytes.length <= bytesMax && !bytes.includes(0), `text field at ${offset} does not fit: ${JSON.stringify(text)}`);
  record.fill(0, offset, offset + bytesMax);
  record.set(bytes, offset);
}

/**
 * Lockspace and resource names: 1..48 bytes of printable ASCII without
 * spaces. Returns the reason a name is refused, or undefined when it is valid.
 * ':' is allowed (written `\:` on the command line).
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > NAME_BYTES_MAX) return `is ${name.length} bytes long, at most ${NAME_BYTES_MAX} are allowed`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return `has a character outside printable ASCII (code ${c}) at position ${i}`;
  }
  return undefined;
}

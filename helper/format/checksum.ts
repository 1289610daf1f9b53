import { crc32 } from 'node:zlib';
import { HEADER, RECORD_BYTES } from './layout.js';

/**
 * CRC-32 (IEEE, as zlib computes it) of a record with its checksum field read
 * as zero. zlib's crc32 is native and in Node's standard library (>= 20.15).
 *
 * Each native call costs about as much as hashing 512 bytes, and a ballot
 * read checks up to 2000 records, so a record is hashed in one call, as it
 * is, and the stored checksum's contribution is then taken out again: CRC-32
 * is affine over GF(2), so for two records of the same length that differ
 * only in some bytes, crc(a) ^ crc(b) depends only on the differing bytes
 * (a ^ b) and where they sit. The tables below hold that difference for each
 * byte value at each byte of the checksum field and of the block host id.
 */

/** table[i * 256 + v]: crc of a zero record with byte `offset + i` set to v, xor crc of the zero record. */
function byteEffects(offset: number, width: number): Int32Array {
  const zero = new Uint8Array(RECORD_BYTES);
  const base = crc32(zero);
  const table = new Int32Array(width * 256);
  for (let i = 0; i < width; i++) {
    // The difference is linear in the byte: hash the 8 single-bit values, combine the rest by xor.
    for (let bit = 0; bit < 8; bit++) {
      zero[offset + i] = 1 << bit;
      table[i * 256 + (1 << bit)] = crc32(zero) ^ base;
    }
    zero[offset + i] = 0;
    for (let v = 1; v < 256; v++) {
      const low = v & -v;
      if (v !== low) table[i * 256 + v] = table[i * 256 + low]! ^ table[i * 256 + (v ^ low)]!;
    }
  }
  return table;
}

const CHECKSUM_FIELD = byteEffects(HEADER.checksum, 4);
const BLOCK_HOST_ID_FIELD = byteEffects(HEADER.blockHostId, 2);

/** The stored checksum field of a record (u32, little-endian). */
export function storedChecksum(record: Uint8Array, start = 0): number {
  const at = start + HEADER.checksum;
  return (record[at]! | (record[at + 1]! << 8) | (record[at + 2]! << 16) | (record[at + 3]! << 24)) >>> 0;
}

/**
 * The checksum a record should carry: CRC-32 of its first RECORD_BYTES bytes
 * from `start`, its checksum field read as zero. `record` must hold them.
 */
export function recordChecksum(record: Uint8Array, start = 0): number {
  const stored = storedChecksum(record, start);
  const whole = crc32(start === 0 && record.byteLength === RECORD_BYTES ? record : record.subarray(start, start + RECORD_BYTES));
  const f = CHECKSUM_FIELD;
  return (whole ^ f[stored & 0xff]! ^ f[256 + ((stored >>> 8) & 0xff)]! ^ f[512 + ((stored >>> 16) & 0xff)]! ^ f[768 + (stored >>> 24)]!) >>> 0;
}

/**
 * The checksum of a record that is byte for byte a record whose checksum is
 * `checksum`, except that its block host id is `toHostId` instead of
 * `fromHostId` (its checksum field aside).
 */
export function checksumWithHostId(checksum: number, fromHostId: number, toHostId: number): number {
  const d = fromHostId ^ toHostId;
  return (checksum ^ BLOCK_HOST_ID_FIELD[d & 0xff]! ^ BLOCK_HOST_ID_FIELD[256 + ((d >>> 8) & 0xff)]!) >>> 0;
}

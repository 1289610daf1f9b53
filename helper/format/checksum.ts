import { crc32 } from 'node:zlib';

/**
 * CRC-32 (IEEE, as zlib computes it) of a record with its checksum field read
 * as zero. zlib's crc32 is native and in Node's standard library (>= 20.15);
 * the record is small and fixed, so the field is skipped by hashing the bytes
 * before and after it rather than copying the record.
 */
export function recordChecksum(record: Uint8Array, checksumOffset: number, recordBytes: number): number {
  const zeros = new Uint8Array(4);
  let crc = crc32(record.subarray(0, checksumOffset));
  crc = crc32(zeros, crc);
  crc = crc32(record.subarray(checksumOffset + 4, recordBytes), crc);
  return crc >>> 0;
}

/**
 * Test support for the format tests. Everything here is written against the
 * format's rules (docs/format.md), not against the codec, so that the tests
 * can tamper with records and check bytes independently of the code under test.
 */
import { crc32 } from 'node:zlib';
import { expect } from 'vitest';
import {
  FormatError,
  type Checked,
  type FormatErrorCode,
  type SectorSize,
} from '../../dist/helper/format/index.js';

export const RECORD = 512;
export const CHECKSUM_OFFSET = 12;

/** CRC-32 (IEEE, zlib) of bytes 0..511 with bytes 12..15 zeroed: the format's checksum rule. */
export function independentChecksum(record: Uint8Array): number {
  const copy = Buffer.from(record.subarray(0, RECORD)); // a copy: the caller's bytes stay as they are
  copy.fill(0, CHECKSUM_OFFSET, CHECKSUM_OFFSET + 4);
  return crc32(copy) >>> 0;
}

/** Stores a freshly computed checksum, so a tampered record fails only the check under test. */
export function reseal(record: Uint8Array): void {
  dv(record).setUint32(CHECKSUM_OFFSET, independentChecksum(record), true);
}

export function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The sector at `index` of an area, as a view into the area's bytes. */
export function sectorOf(area: Uint8Array, sectorSize: SectorSize, index: number): Uint8Array {
  return area.subarray(index * sectorSize, (index + 1) * sectorSize);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Joins a hex literal written over several lines (whitespace ignored). */
export function hexLiteral(lines: string): string {
  return lines.replace(/\s+/g, '');
}

/** A name of exactly `bytes` printable ASCII characters, starting with `prefix`. */
export function asciiName(prefix: string, bytes: number): string {
  const filler = 'abcdefghijklmnopqrstuvwxyz0123456789-_.:';
  let name = prefix;
  for (let i = 0; name.length < bytes; i++) name += filler[i % filler.length];
  return name.slice(0, bytes);
}

/** The FormatError of a record that must have failed. */
export function failure<T>(checked: Checked<T> | undefined): FormatError {
  expect(checked, 'record result present').toBeDefined();
  if (checked === undefined || checked.ok) throw new Error(`expected a FormatError, got ${JSON.stringify(checked)}`);
  expect(checked.error).toBeInstanceOf(FormatError);
  return checked.error;
}

/** The value of a record that must have passed its checks. */
export function value<T>(checked: Checked<T> | undefined): T {
  expect(checked, 'record result present').toBeDefined();
  if (checked === undefined || !checked.ok) throw new Error(`expected a valid record, got ${checked?.error.message}`);
  return checked.value;
}

/** Calls `fn` and returns the FormatError it throws. */
export function thrownFormatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return error as FormatError;
  }
  throw new Error('expected a FormatError, nothing was thrown');
}

/** The error has `code` and its message names the area label and the block. */
export function expectNamedError(error: FormatError, code: FormatErrorCode, areaLabel: string, block: string, reason?: RegExp): void {
  expect(error.code).toBe(code);
  expect(error.name).toBe('FormatError');
  expect(error.place).toEqual({ area: areaLabel, block });
  expect(error.message.startsWith(`${areaLabel}: ${block}: `)).toBe(true);
  if (reason) expect(error.reason).toMatch(reason);
}

import assert from 'node:assert/strict';
import { FormatError, FormatErrorCode, type RecordPlace } from './errors.js';
import { readU64, view, writeU32 } from './fields.js';
import { encodeHeader, checkHeader, sealRecord, type AreaIdentity, type RecordExpectation } from './header.js';
import type { RecordKind } from './layout.js';

/**
 * Shared plumbing of the record codecs: a typed reader that turns an
 * out-of-range field into a FormatError naming it, and the write path that
 * encodes, seals and then decodes the result again, so a record is checked
 * before it is written as well as after it is read.
 */

export class FieldReader {
  readonly v: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly place: RecordPlace,
  ) {
    this.v = view(bytes);
  }

  u16(offset: number): number {
    return this.v.getUint16(offset, true);
  }

  u32(offset: number): number {
    return this.v.getUint32(offset, true);
  }

  u64(offset: number, field: string): number {
    return readU64(this.v, offset) ?? this.fail(`${field} is above 2^53`);
  }

  hex64(offset: number): string {
    // Two u32 halves, high first: the same 16 digits as the u64's, without a BigInt.
    return this.v.getUint32(offset + 4, true).toString(16).padStart(8, '0') + this.v.getUint32(offset, true).toString(16).padStart(8, '0');
  }

  hostId(offset: number, field: string, hostsMax: number, allowZero: boolean): number {
    const id = this.u16(offset);
    if ((id === 0 && !allowZero) || id > hostsMax) this.fail(`${field} ${id} is outside ${allowZero ? 0 : 1}..${hostsMax}`);
    return id;
  }

  flags(offset: number, field: string, known: number): number {
    const flags = this.u32(offset);
    if ((flags & ~known) !== 0) this.fail(`${field} has unknown bits 0x${(flags & ~known).toString(16)}`);
    return flags;
  }

  fail(reason: string): never {
    throw new FormatError(FormatErrorCode.fieldRange, this.place, reason);
  }
}

export function writeHex64(v: DataView, offset: number, hex: string): void {
  assert.match(hex, /^[0-9a-f]{16}$/, `not a 64-bit hex value: ${hex}`);
  v.setBigUint64(offset, BigInt(`0x${hex}`), true);
}

export function writeFlags(v: DataView, offset: number, flags: number, known: number): void {
  assert.equal(flags & ~known, 0, `unknown flag bits 0x${flags.toString(16)} at ${offset}`);
  writeU32(v, offset, flags);
}

/**
 * Builds one sector: header, then the kind's body, then the checksum, then a
 * full decode of the result with `decode` (the check before every write).
 */
export function encodeRecord<T>(
  kind: RecordKind,
  identity: AreaIdentity,
  blockHostId: number,
  writeBody: (record: Uint8Array, v: DataView) => void,
  decode: (record: Uint8Array, expect: RecordExpectation, place: RecordPlace) => T,
): Uint8Array {
  assert.ok(
    kind === 'leader' ? blockHostId === 0 : Number.isInteger(blockHostId) && blockHostId >= 1 && blockHostId <= identity.hostsMax,
    `${kind} record for host id ${blockHostId} outside the area's host ids 1..${identity.hostsMax}`,
  );
  const sector = new Uint8Array(identity.sectorSize);
  encodeHeader(sector, { ...identity, kind, blockHostId });
  writeBody(sector, view(sector));
  sealRecord(sector);
  const expect: RecordExpectation = { ...identity, kind, blockHostId };
  try {
    decode(sector, expect, { area: 'record being written', block: `${kind} of host id ${blockHostId}` });
  } catch (error) {
    // Writing a record that its own reader refuses is a bug, never an expected failure.
    if (error instanceof FormatError) assert.fail(`refusing to write a record that fails its check: ${error.message}`);
    throw error;
  }
  return sector;
}

export function readerFor(record: Uint8Array, expect: RecordExpectation, place: RecordPlace): FieldReader {
  checkHeader(record, expect, place);
  return new FieldReader(record, place);
}

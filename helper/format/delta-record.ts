import assert from 'node:assert/strict';
import { readText, writeText, writeU32, writeU64 } from './fields.js';
import type { AreaIdentity, RecordExpectation } from './header.js';
import type { RecordPlace } from './errors.js';
import { BOOT_ID_BYTES, DELTA, HOST_NAME_BYTES_MAX, IO_TIMEOUT_MS_MAX, IO_TIMEOUT_MS_MIN, REQUEST_BITMAP_BYTES } from './layout.js';
import { encodeRecord, readerFor, writeHex64 } from './record-io.js';

/** Which helper incarnation owns a delta lease: host name + boot id + random nonce. */
export interface Incarnation {
  readonly hostName: string;
  /** 32 lowercase hex digits (the kernel's boot id without dashes). */
  readonly bootId: string;
  /** 16 lowercase hex digits, random per helper start. */
  readonly nonce: string;
}

/** One host id's delta lease in a lockspace. `timestampMs === 0` means free. */
export interface DeltaRecord {
  readonly hostId: number;
  readonly generation: number;
  readonly timestampMs: number;
  readonly ownerIoTimeoutMs: number;
  /** 0 = the owner runs without a watchdog. */
  readonly ownerWatchdogFireTimeoutMs: number;
  /** Fixed at init; the authoritative io timeout of the lockspace. */
  readonly areaIoTimeoutMs: number;
  readonly ownerFeatures: number;
  readonly owner: Incarnation;
  /** Host ids whose bit is set in the request bitmap, ascending. */
  readonly requests: readonly number[];
}

export const NO_INCARNATION: Incarnation = { hostName: '', bootId: '0'.repeat(32), nonce: '0'.repeat(16) };

export function encodeDeltaRecord(identity: AreaIdentity, record: DeltaRecord): Uint8Array {
  return encodeRecord('delta', identity, record.hostId, (bytes, v) => {
    writeU64(v, DELTA.generation, record.generation);
    writeU64(v, DELTA.timestampMs, record.timestampMs);
    writeU32(v, DELTA.ownerIoTimeoutMs, record.ownerIoTimeoutMs);
    writeU32(v, DELTA.ownerWatchdogFireTimeoutMs, record.ownerWatchdogFireTimeoutMs);
    writeU32(v, DELTA.areaIoTimeoutMs, record.areaIoTimeoutMs);
    writeU32(v, DELTA.ownerFeatures, record.ownerFeatures);
    writeText(bytes, DELTA.ownerHostName, HOST_NAME_BYTES_MAX, record.owner.hostName);
    assert.match(record.owner.bootId, /^[0-9a-f]{32}$/, 'boot id must be 32 hex digits');
    bytes.set(Buffer.from(record.owner.bootId, 'hex'), DELTA.ownerBootId);
    writeHex64(v, DELTA.ownerNonce, record.owner.nonce);
    for (const hostId of record.requests) {
      assert.ok(Number.isInteger(hostId) && hostId >= 1 && hostId <= identity.hostsMax, `request bit for host id ${hostId} outside the area`);
      const bit = hostId - 1;
      bytes[DELTA.requestBitmap + (bit >> 3)]! |= 1 << (bit & 7);
    }
  }, decodeDeltaRecord);
}

export function decodeDeltaRecord(bytes: Uint8Array, expect: RecordExpectation, place: RecordPlace): DeltaRecord {
  const r = readerFor(bytes, { ...expect, kind: 'delta' }, place);
  const hostName = readText(bytes, DELTA.ownerHostName, HOST_NAME_BYTES_MAX) ?? r.fail('owner host name is not NUL-padded UTF-8');
  const areaIoTimeoutMs = r.u32(DELTA.areaIoTimeoutMs);
  if (areaIoTimeoutMs < IO_TIMEOUT_MS_MIN || areaIoTimeoutMs > IO_TIMEOUT_MS_MAX) r.fail(`lockspace io timeout ${areaIoTimeoutMs} ms is outside ${IO_TIMEOUT_MS_MIN}..${IO_TIMEOUT_MS_MAX}`);
  return {
    hostId: expect.blockHostId,
    generation: r.u64(DELTA.generation, 'generation'),
    timestampMs: r.u64(DELTA.timestampMs, 'timestamp'),
    ownerIoTimeoutMs: r.u32(DELTA.ownerIoTimeoutMs),
    ownerWatchdogFireTimeoutMs: r.u32(DELTA.ownerWatchdogFireTimeoutMs),
    areaIoTimeoutMs,
    ownerFeatures: r.u32(DELTA.ownerFeatures),
    owner: {
      hostName,
      bootId: Buffer.from(bytes.subarray(DELTA.ownerBootId, DELTA.ownerBootId + BOOT_ID_BYTES)).toString('hex'),
      nonce: r.hex64(DELTA.ownerNonce),
    },
    requests: readRequestBitmap(bytes, expect.hostsMax, r.fail.bind(r)),
  };
}

function readRequestBitmap(bytes: Uint8Array, hostsMax: number, fail: (reason: string) => never): number[] {
  const hostIds: number[] = [];
  for (let i = 0; i < REQUEST_BITMAP_BYTES; i++) {
    const byte = bytes[DELTA.requestBitmap + i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      const hostId = i * 8 + bit + 1;
      if (hostId > hostsMax) fail(`request bit set for host id ${hostId}, the area serves ${hostsMax}`);
      hostIds.push(hostId);
    }
  }
  return hostIds;
}

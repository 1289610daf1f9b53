import assert from 'node:assert/strict';
import { recordChecksum } from './checksum.js';
import { FormatError, FormatErrorCode, type RecordPlace } from './errors.js';
import { nameProblem, readText, view, writeText, writeU16, writeU32 } from './fields.js';
import {
  FEATURES_INCOMPAT_KNOWN,
  FORMAT_VERSION,
  HEADER,
  HOSTS_MAX_LIMIT,
  MAGIC,
  NAME_BYTES_MAX,
  RECORD_BYTES,
  isSectorSize,
  type RecordKind,
  type SectorSize,
} from './layout.js';

/** What every record carries about its area. */
export interface AreaIdentity {
  readonly sectorSize: SectorSize;
  readonly hostsMax: number;
  readonly lockspaceName: string;
  /** Empty for lockspace records. */
  readonly resourceName: string;
  readonly featuresIncompat: number;
  readonly featuresCompat: number;
}

export interface RecordHeader extends AreaIdentity {
  readonly kind: RecordKind;
  readonly blockHostId: number;
}

/** What a reader expects of a record; every field is checked. */
export interface RecordExpectation {
  readonly kind: RecordKind;
  readonly sectorSize: SectorSize;
  readonly hostsMax: number;
  readonly blockHostId: number;
  readonly lockspaceName: string;
  readonly resourceName: string;
}

const KIND_BY_MAGIC = new Map<number, RecordKind>(
  (Object.entries(MAGIC) as [RecordKind, number][]).map(([kind, magic]) => [magic, kind]),
);

const KIND_WORDS: Record<RecordKind, string> = {
  delta: 'a lockspace delta lease',
  leader: 'a resource leader',
  hostBlock: 'a resource host block',
};

export function encodeHeader(record: Uint8Array, header: RecordHeader): void {
  const v = view(record);
  writeU32(v, HEADER.magic, MAGIC[header.kind]);
  writeU16(v, HEADER.version, FORMAT_VERSION);
  writeU16(v, HEADER.hostsMax, header.hostsMax);
  writeU32(v, HEADER.sectorSize, header.sectorSize);
  writeU32(v, HEADER.featuresIncompat, header.featuresIncompat);
  writeU32(v, HEADER.featuresCompat, header.featuresCompat);
  writeU16(v, HEADER.blockHostId, header.blockHostId);
  writeText(record, HEADER.lockspaceName, NAME_BYTES_MAX, header.lockspaceName);
  writeText(record, HEADER.resourceName, NAME_BYTES_MAX, header.resourceName);
}

/** Seals a fully encoded record: computes and stores its checksum. */
export function sealRecord(record: Uint8Array): void {
  assert.ok(record.byteLength >= RECORD_BYTES, 'record buffer shorter than a record');
  view(record).setUint32(HEADER.checksum, 0, true);
  view(record).setUint32(HEADER.checksum, recordChecksum(record), true);
}

/**
 * Checks what makes a record self-consistent: not blank, our magic, our
 * version, intact checksum, sane area fields, known incompat features. Needs
 * no expectation, so `dump` can identify an area from its first sector.
 */
export function decodeHeader(record: Uint8Array, place: RecordPlace): RecordHeader {
  const fail = (code: FormatErrorCode, reason: string): never => {
    throw new FormatError(code, place, reason);
  };
  if (record.byteLength < RECORD_BYTES) fail(FormatErrorCode.truncated, `only ${record.byteLength} of ${RECORD_BYTES} record bytes are present`);
  const bytes = record.subarray(0, RECORD_BYTES);
  const v = view(bytes);
  const magic = v.getUint32(HEADER.magic, true);
  if (magic === 0 && bytes.every((b) => b === 0)) fail(FormatErrorCode.uninitialised, 'all zero: not initialised');
  const kind = KIND_BY_MAGIC.get(magic) ?? fail(FormatErrorCode.magic, `bad magic 0x${magic.toString(16).padStart(8, '0')}: not a vmlease record`);
  const version = v.getUint16(HEADER.version, true);
  if (version !== FORMAT_VERSION) fail(FormatErrorCode.version, `format version ${version}, this build reads version ${FORMAT_VERSION}`);
  const stored = v.getUint32(HEADER.checksum, true);
  const computed = recordChecksum(bytes);
  if (stored !== computed) fail(FormatErrorCode.checksum, `checksum 0x${hex32(stored)} does not match contents 0x${hex32(computed)}`);
  const sectorSize = v.getUint32(HEADER.sectorSize, true);
  if (!isSectorSize(sectorSize)) fail(FormatErrorCode.sectorSize, `sector size ${sectorSize} is not 512 or 4096`);
  const hostsMax = v.getUint16(HEADER.hostsMax, true);
  if (hostsMax < 1 || hostsMax > HOSTS_MAX_LIMIT) fail(FormatErrorCode.fieldRange, `host-id count ${hostsMax} is outside 1..${HOSTS_MAX_LIMIT}`);
  const featuresIncompat = v.getUint32(HEADER.featuresIncompat, true);
  const unknown = featuresIncompat & ~FEATURES_INCOMPAT_KNOWN;
  if (unknown !== 0) fail(FormatErrorCode.features, `needs feature bits 0x${hex32(unknown)} that this build does not know`);
  const lockspaceName = readText(bytes, HEADER.lockspaceName, NAME_BYTES_MAX) ?? fail(FormatErrorCode.fieldRange, 'lockspace name field is not NUL-padded UTF-8');
  const resourceName = readText(bytes, HEADER.resourceName, NAME_BYTES_MAX) ?? fail(FormatErrorCode.fieldRange, 'resource name field is not NUL-padded UTF-8');
  // Names are printed and matched; only what init accepts is accepted on read.
  const lockspaceProblem = nameProblem(lockspaceName);
  if (lockspaceProblem) fail(FormatErrorCode.fieldRange, `lockspace name ${lockspaceProblem}`);
  const resourceProblem = resourceName === '' ? undefined : nameProblem(resourceName);
  if (resourceProblem) fail(FormatErrorCode.fieldRange, `resource name ${resourceProblem}`);
  return {
    kind,
    sectorSize: sectorSize as SectorSize,
    hostsMax,
    blockHostId: v.getUint16(HEADER.blockHostId, true),
    lockspaceName,
    resourceName,
    featuresIncompat,
    featuresCompat: v.getUint32(HEADER.featuresCompat, true),
  };
}

/** Decodes the header and checks that the record is the one the reader expects. */
export function checkHeader(record: Uint8Array, expect: RecordExpectation, place: RecordPlace): RecordHeader {
  const header = decodeHeader(record, place);
  const fail = (code: FormatErrorCode, reason: string): never => {
    throw new FormatError(code, place, reason);
  };
  if (header.kind !== expect.kind) fail(FormatErrorCode.kind, `found ${KIND_WORDS[header.kind]} record where ${KIND_WORDS[expect.kind]} record belongs`);
  if (header.sectorSize !== expect.sectorSize) fail(FormatErrorCode.sectorSize, `record says sector size ${header.sectorSize}, the area is read with ${expect.sectorSize}`);
  if (header.hostsMax !== expect.hostsMax) fail(FormatErrorCode.hosts, `record serves ${header.hostsMax} host ids, the area serves ${expect.hostsMax}`);
  if (header.blockHostId !== expect.blockHostId) fail(FormatErrorCode.blockHostId, `record belongs to host id ${header.blockHostId}, found in the block of host id ${expect.blockHostId}`);
  if (header.lockspaceName !== expect.lockspaceName) fail(FormatErrorCode.lockspaceName, `record belongs to lockspace ${JSON.stringify(header.lockspaceName)}, expected ${JSON.stringify(expect.lockspaceName)}`);
  if (header.resourceName !== expect.resourceName) fail(FormatErrorCode.resourceName, `record belongs to resource ${JSON.stringify(header.resourceName)}, expected ${JSON.stringify(expect.resourceName)}`);
  return header;
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

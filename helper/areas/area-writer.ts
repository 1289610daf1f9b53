import assert from 'node:assert/strict';
import { FormatError, identifyArea, initialAreaBytes, RECORD_BYTES, specBytes, type AreaSpec } from '../format/index.js';
import { StorageError, StorageErrorCode, type DirectStorage } from '../storage/index.js';
import { areaErrors, areaLabel, parseArea, type ParsedArea } from './area-reader.js';

/**
 * Initialising an area: never over an initialised area or foreign data unless
 * forced, and verified by reading it back.
 */

/**
 * Areas start at multiples of this, and init checks for data up to the next
 * multiple after the area: the unchecked padding of a 4096-byte sector must
 * never hold another area's 512-byte records.
 */
export const AREA_ALIGNMENT_BYTES = 4096;

export const InitRefusalCode = {
  initialised: 'INIT_AREA_INITIALISED',
  leaseData: 'INIT_OVERLAPS_LEASE_DATA',
  foreignData: 'INIT_NON_ZERO_DATA',
} as const;

export type InitRefusalCode = (typeof InitRefusalCode)[keyof typeof InitRefusalCode];

/** Initialising would overwrite something; the caller must ask for --force. */
export class InitRefusal extends Error {
  override readonly name = 'InitRefusal';

  constructor(
    readonly code: InitRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

/** What the bytes that an init would overwrite hold; undefined when all zero (or past the end). */
export function describeExisting(existing: Uint8Array, where: string): InitRefusal | undefined {
  const firstNonZero = existing.findIndex((b) => b !== 0);
  if (firstNonZero === -1) return undefined;
  try {
    const spec = identifyArea(existing.subarray(0, RECORD_BYTES), where);
    const what = spec.kind === 'lockspace' ? `lockspace ${JSON.stringify(spec.lockspaceName)}` : `resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)}`;
    return new InitRefusal(InitRefusalCode.initialised, `${where} is already initialised as ${what} (${spec.hostsMax} host ids, ${spec.sectorSize}-byte sectors)`);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
  }
  // Records of any sector size start at multiples of 512: look at every one.
  for (let at = 0; at + RECORD_BYTES <= existing.byteLength; at += RECORD_BYTES) {
    try {
      identifyArea(existing.subarray(at, at + RECORD_BYTES), where);
      return new InitRefusal(InitRefusalCode.leaseData, `${where} overlaps another lease area starting at byte ${at} of it`);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      if (error.code !== 'FORMAT_MAGIC' && error.code !== 'FORMAT_UNINITIALISED') {
        return new InitRefusal(InitRefusalCode.leaseData, `${where} holds lease records at byte ${at} of it (${error.reason})`);
      }
    }
  }
  return new InitRefusal(InitRefusalCode.foreignData, `${where} holds non-zero data that is not a lease area (first at byte ${firstNonZero} of it)`);
}

export interface InitOutcome {
  readonly area: ParsedArea;
  readonly overwrote: InitRefusal | undefined;
}

export async function initialiseArea(storage: DirectStorage, offset: number, spec: AreaSpec, force: boolean): Promise<InitOutcome> {
  assert.equal(offset % AREA_ALIGNMENT_BYTES, 0, `area offset ${offset} is not a multiple of ${AREA_ALIGNMENT_BYTES}`);
  const bytes = specBytes(spec);
  const label = areaLabel(spec, storage.path, offset);
  const where = `${storage.path}:${offset} (${bytes} bytes)`;
  if (storage.info.kind === 'block' && offset + bytes > storage.info.sizeBytes) {
    const size = storage.info.sizeBytes === 0 ? 'sysfs does not tell its size' : `the device has ${storage.info.sizeBytes}`;
    throw new StorageError(StorageErrorCode.tooSmall, storage.path, `the area needs bytes ${offset}..${offset + bytes}, ${size}`);
  }
  const checkedBytes = Math.ceil(bytes / AREA_ALIGNMENT_BYTES) * AREA_ALIGNMENT_BYTES;
  const existing = await storage.read(offset, storage.info.kind === 'block' ? Math.min(checkedBytes, storage.info.sizeBytes - offset) : checkedBytes);
  const refusal = describeExisting(existing, where);
  if (refusal && !force) throw refusal;
  await storage.write(offset, initialAreaBytes(spec));
  const area = parseArea(await storage.read(offset, bytes), spec, label);
  const errors = areaErrors(area);
  if (errors.length > 0) throw errors[0]!;
  return { area, overwrote: refusal };
}

import {
  FormatError,
  FormatErrorCode,
  identifyArea,
  parseLockspaceArea,
  parseResourceArea,
  RECORD_BYTES,
  specBytes,
  type AreaSpec,
  type LockspaceArea,
  type ResourceArea,
} from '../format/index.js';
import type { DirectStorage } from '../storage/index.js';

/**
 * Reading whole areas from storage: recognise the area from its first record,
 * then read and check every record of it. Used by `dump`, `init-*` and (later)
 * the helper, so every reader applies the same checks.
 */

export type ParsedArea = LockspaceArea | ResourceArea;

export function areaLabel(spec: AreaSpec, path: string, offset: number): string {
  return spec.kind === 'lockspace'
    ? `lockspace ${JSON.stringify(spec.lockspaceName)} at ${path}:${offset}`
    : `resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)} at ${path}:${offset}`;
}

export function parseArea(bytes: Uint8Array, spec: AreaSpec, label: string): ParsedArea {
  return spec.kind === 'lockspace' ? parseLockspaceArea(bytes, spec, label) : parseResourceArea(bytes, spec, label);
}

/** Every record failure of a parsed area, in sector order. */
export function areaErrors(area: ParsedArea): FormatError[] {
  const records = 'leader' in area ? [area.leader, ...area.hosts] : area.hosts;
  return records.flatMap((record) => (record.ok ? [] : [record.error]));
}

/** Bytes needed to read one record at `offset`: a sector of the storage's alignment. */
function firstReadBytes(storage: DirectStorage): number {
  return Math.max(storage.alignment, RECORD_BYTES);
}

/**
 * Recognises the area at `offset` by its first record. Throws a FormatError
 * when there is none (all zero, past the end, corrupt, or not an area start).
 */
export async function identifyAreaAt(storage: DirectStorage, offset: number): Promise<AreaSpec> {
  const label = `area at ${storage.path}:${offset}`;
  const first = await storage.read(offset, firstReadBytes(storage));
  if (first.byteLength < RECORD_BYTES) {
    throw new FormatError(FormatErrorCode.truncated, { area: label, block: 'sector 0' }, `the storage ends at byte ${offset + first.byteLength}, before the area's first record`);
  }
  const spec = identifyArea(first, label);
  if (spec.sectorSize % storage.alignment !== 0) {
    throw new FormatError(FormatErrorCode.sectorSize, { area: label, block: 'sector 0' }, `area has ${spec.sectorSize}-byte sectors, the device needs I/O in multiples of ${storage.alignment}`);
  }
  return spec;
}

/** Reads and checks every record of the area at `offset`. */
export async function readAreaAt(storage: DirectStorage, offset: number): Promise<ParsedArea> {
  const spec = await identifyAreaAt(storage, offset);
  const bytes = await storage.read(offset, specBytes(spec));
  return parseArea(bytes, spec, areaLabel(spec, storage.path, offset));
}

import assert from 'node:assert/strict';
import { FormatError, FormatErrorCode, type RecordPlace } from './errors.js';
import { nameProblem } from './fields.js';
import { decodeHeader, type AreaIdentity, type RecordExpectation } from './header.js';
import { decodeDeltaRecord, encodeDeltaRecord, NO_INCARNATION, type DeltaRecord } from './delta-record.js';
import { decodeHostBlock, emptyHostBlock, encodeHostBlock, type HostBlock } from './host-block.js';
import { scanHostBlocks } from './host-block-scan.js';
import { decodeLeaderRecord, encodeLeaderRecord, LEADER_AT_INIT, type LeaderRecord } from './leader-record.js';
import {
  areaBytes,
  FEATURES_COMPAT_KNOWN,
  FEATURES_INCOMPAT_KNOWN,
  HOSTS_MAX_LIMIT,
  hostSector,
  IO_TIMEOUT_MS_MAX,
  IO_TIMEOUT_MS_MIN,
  isSectorSize,
  type AreaKind,
  type SectorSize,
} from './layout.js';

/** Everything that defines an area; fixed when it is initialised. */
export interface LockspaceSpec {
  readonly kind: 'lockspace';
  readonly lockspaceName: string;
  readonly hostsMax: number;
  readonly sectorSize: SectorSize;
  readonly ioTimeoutMs: number;
}

export interface ResourceSpec {
  readonly kind: 'resource';
  readonly lockspaceName: string;
  readonly resourceName: string;
  readonly hostsMax: number;
  readonly sectorSize: SectorSize;
}

export type AreaSpec = LockspaceSpec | ResourceSpec;

/** A record as read: its value, or the precise reason it is unusable. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: FormatError };

export interface LockspaceArea {
  readonly spec: LockspaceSpec;
  /** Index i holds host id i+1. */
  readonly hosts: readonly Checked<DeltaRecord>[];
}

export interface ResourceArea {
  readonly spec: ResourceSpec;
  readonly leader: Checked<LeaderRecord>;
  /** Index i holds host id i+1. */
  readonly hosts: readonly Checked<HostBlock>[];
}


/** Reasons a spec cannot describe an area; empty when it is valid. Used at the CLI edge and asserted on write. */
export function specProblems(spec: AreaSpec): string[] {
  const problems: string[] = [];
  const lsProblem = nameProblem(spec.lockspaceName);
  if (lsProblem) problems.push(`lockspace name ${lsProblem}`);
  if (spec.kind === 'resource') {
    const resProblem = nameProblem(spec.resourceName);
    if (resProblem) problems.push(`resource name ${resProblem}`);
  }
  if (!Number.isInteger(spec.hostsMax) || spec.hostsMax < 1 || spec.hostsMax > HOSTS_MAX_LIMIT) {
    problems.push(`host-id count ${spec.hostsMax} is outside 1..${HOSTS_MAX_LIMIT}`);
  }
  if (!isSectorSize(spec.sectorSize)) problems.push(`sector size ${spec.sectorSize} is not 512 or 4096`);
  if (spec.kind === 'lockspace' && (!Number.isInteger(spec.ioTimeoutMs) || spec.ioTimeoutMs < IO_TIMEOUT_MS_MIN || spec.ioTimeoutMs > IO_TIMEOUT_MS_MAX)) {
    problems.push(`io timeout ${spec.ioTimeoutMs} ms is outside ${IO_TIMEOUT_MS_MIN}..${IO_TIMEOUT_MS_MAX}`);
  }
  return problems;
}

export function specBytes(spec: AreaSpec): number {
  return areaBytes(spec.kind, spec.hostsMax, spec.sectorSize);
}

export function identityOf(spec: AreaSpec): AreaIdentity {
  return {
    sectorSize: spec.sectorSize,
    hostsMax: spec.hostsMax,
    lockspaceName: spec.lockspaceName,
    resourceName: spec.kind === 'resource' ? spec.resourceName : '',
    featuresIncompat: FEATURES_INCOMPAT_KNOWN,
    featuresCompat: FEATURES_COMPAT_KNOWN,
  };
}

/** The bytes `init-lockspace` / `init-resource` write: every record valid, every lease free. */
export function initialAreaBytes(spec: AreaSpec): Uint8Array {
  const problems = specProblems(spec);
  assert.equal(problems.length, 0, `invalid area spec: ${problems.join('; ')}`);
  const identity = identityOf(spec);
  const area = new Uint8Array(specBytes(spec));
  for (let hostId = 1; hostId <= spec.hostsMax; hostId++) {
    const record = spec.kind === 'lockspace' ? encodeDeltaRecord(identity, freeDeltaRecord(hostId, spec.ioTimeoutMs)) : encodeHostBlock(identity, emptyHostBlock(hostId));
    area.set(record, hostSector(spec.kind, hostId) * spec.sectorSize);
  }
  if (spec.kind === 'resource') area.set(encodeLeaderRecord(identity, LEADER_AT_INIT), 0);
  return area;
}

export function freeDeltaRecord(hostId: number, areaIoTimeoutMs: number): DeltaRecord {
  return {
    hostId,
    generation: 0,
    timestampMs: 0,
    ownerIoTimeoutMs: 0,
    ownerWatchdogFireTimeoutMs: 0,
    areaIoTimeoutMs,
    ownerFeatures: 0,
    owner: NO_INCARNATION,
    requests: [],
  };
}

export function blockPlace(areaLabel: string, kind: AreaKind, hostId: number): RecordPlace {
  return { area: areaLabel, block: `host id ${hostId} (sector ${hostSector(kind, hostId)})` };
}

export function leaderPlace(areaLabel: string): RecordPlace {
  return { area: areaLabel, block: 'leader (sector 0)' };
}

function expectation(spec: AreaSpec, kind: RecordExpectation['kind'], blockHostId: number): RecordExpectation {
  // Built field by field: this runs once per record of every ballot read (2000 per area).
  return {
    sectorSize: spec.sectorSize,
    hostsMax: spec.hostsMax,
    lockspaceName: spec.lockspaceName,
    resourceName: spec.kind === 'resource' ? spec.resourceName : '',
    kind,
    blockHostId,
  };
}

/**
 * Decodes one record of an area at `sector` (an index within the area) from
 * `bytes`, which hold the area from its start and may be short (truncated
 * storage). Never throws a FormatError: it returns it.
 */
function checkedRecord<T>(bytes: Uint8Array, sectorSize: number, sector: number, place: RecordPlace, decode: (record: Uint8Array) => T): Checked<T> {
  const start = sector * sectorSize;
  if (start + sectorSize > bytes.byteLength) {
    return { ok: false, error: new FormatError(FormatErrorCode.truncated, place, `the storage ends at byte ${bytes.byteLength} of the area, before this sector`) };
  }
  try {
    return { ok: true, value: decode(bytes.subarray(start, start + sectorSize)) };
  } catch (error) {
    if (error instanceof FormatError) return { ok: false, error };
    throw error;
  }
}

/** The io timeout fixed at init is the same in every record of a lockspace; a record that disagrees is not trusted. */
function checkIoTimeout(record: DeltaRecord, spec: LockspaceSpec, place: RecordPlace): DeltaRecord {
  if (record.areaIoTimeoutMs !== spec.ioTimeoutMs) {
    throw new FormatError(FormatErrorCode.ioTimeout, place, `record says the lockspace io timeout is ${record.areaIoTimeoutMs} ms, the area's is ${spec.ioTimeoutMs} ms`);
  }
  return record;
}

export function parseLockspaceArea(bytes: Uint8Array, spec: LockspaceSpec, areaLabel: string): LockspaceArea {
  const hosts: Checked<DeltaRecord>[] = [];
  for (let hostId = 1; hostId <= spec.hostsMax; hostId++) {
    const place = blockPlace(areaLabel, 'lockspace', hostId);
    hosts.push(checkedRecord(bytes, spec.sectorSize, hostSector('lockspace', hostId), place, (record) => checkIoTimeout(decodeDeltaRecord(record, expectation(spec, 'delta', hostId), place), spec, place)));
  }
  return { spec, hosts };
}

export function parseResourceArea(bytes: Uint8Array, spec: ResourceSpec, areaLabel: string): ResourceArea {
  const place = leaderPlace(areaLabel);
  const leader = checkedRecord(bytes, spec.sectorSize, 0, place, (record) => decodeLeaderRecord(record, expectation(spec, 'leader', 0), place));
  // The full decode of one block, for every block the bulk checks do not pass (and its error).
  const full = (hostId: number): Checked<HostBlock> => {
    const hostPlace = blockPlace(areaLabel, 'resource', hostId);
    return checkedRecord(bytes, spec.sectorSize, hostSector('resource', hostId), hostPlace, (record) => decodeHostBlock(record, expectation(spec, 'hostBlock', hostId), hostPlace));
  };
  return { spec, leader, hosts: scanHostBlocks(bytes, spec, full) };
}

/**
 * Recognises an area from its first record alone (what `dump` and the init
 * overwrite check do). Throws a FormatError when the first record is not the
 * first record of a vmlease area.
 */
export function identifyArea(firstRecord: Uint8Array, areaLabel: string): AreaSpec {
  const place: RecordPlace = { area: areaLabel, block: 'sector 0' };
  const header = decodeHeader(firstRecord, place);
  if (header.kind === 'delta' && header.resourceName !== '') {
    throw new FormatError(FormatErrorCode.resourceName, place, `a lockspace record names resource ${JSON.stringify(header.resourceName)}`);
  }
  if (header.kind !== 'delta' && header.resourceName === '') {
    throw new FormatError(FormatErrorCode.resourceName, place, 'a resource record has an empty resource name');
  }
  if (header.kind === 'delta' && header.blockHostId === 1) {
    const record = decodeDeltaRecord(firstRecord, { ...header, blockHostId: 1 }, blockPlace(areaLabel, 'lockspace', 1));
    return { kind: 'lockspace', lockspaceName: header.lockspaceName, hostsMax: header.hostsMax, sectorSize: header.sectorSize, ioTimeoutMs: record.areaIoTimeoutMs };
  }
  if (header.kind === 'leader') {
    decodeLeaderRecord(firstRecord, { ...header, blockHostId: 0 }, leaderPlace(areaLabel));
    return { kind: 'resource', lockspaceName: header.lockspaceName, resourceName: header.resourceName, hostsMax: header.hostsMax, sectorSize: header.sectorSize };
  }
  const what = header.kind === 'delta' ? `the delta lease of host id ${header.blockHostId}` : `the block of host id ${header.blockHostId}`;
  throw new FormatError(FormatErrorCode.kind, place, `holds ${what}, not the first record of an area: the offset is not where an area starts`);
}

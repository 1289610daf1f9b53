import { describe, expect, it } from 'vitest';
import {
  decodeDeltaRecord,
  decodeHostBlock,
  decodeLeaderRecord,
  emptyHostBlock,
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  freeDeltaRecord,
  LEADER_AT_INIT,
  type AreaIdentity,
  type RecordExpectation,
  type RecordKind,
  type SectorSize,
} from '../../dist/helper/format/index.js';
import { busyDelta, busyHostBlock, busyLeader, lockspaceIdentity, MAX_SAFE, resourceIdentity } from './fixtures.js';
import { dv, independentChecksum, RECORD } from './support.js';

const SECTOR_SIZES: SectorSize[] = [512, 4096];
const place = { area: 'round trip', block: 'test' };

function expectation(identity: AreaIdentity, kind: RecordKind, blockHostId: number): RecordExpectation {
  return { ...identity, kind, blockHostId };
}

/** Every encoded sector is one sector long, checksummed over its first 512 bytes, zero after them. */
function expectSectorShape(sector: Uint8Array, sectorSize: SectorSize): void {
  expect(sector.byteLength).toBe(sectorSize);
  expect(dv(sector).getUint32(12, true)).toBe(independentChecksum(sector));
  expect(sector.subarray(RECORD).every((b) => b === 0)).toBe(true);
}

describe.each(SECTOR_SIZES)('round trip with %i-byte sectors', (sectorSize) => {
  it('delta record with every field non-trivial, 48-byte lockspace name, 64-byte UTF-8 host name, request bits up to host id 2000', () => {
    const identity = lockspaceIdentity(sectorSize, 2000);
    const record = busyDelta(2000);
    expect(Buffer.byteLength(record.owner.hostName, 'utf8')).toBe(64);
    expect(identity.lockspaceName).toHaveLength(48);
    const sector = encodeDeltaRecord(identity, record);
    expectSectorShape(sector, sectorSize);
    expect(decodeDeltaRecord(sector, expectation(identity, 'delta', 2000), place)).toEqual(record);
  });

  it('free delta record (the init value) of host id 1', () => {
    const identity = lockspaceIdentity(sectorSize, 1);
    const record = freeDeltaRecord(1, 600_000);
    const sector = encodeDeltaRecord(identity, record);
    expectSectorShape(sector, sectorSize);
    expect(decodeDeltaRecord(sector, expectation(identity, 'delta', 1), place)).toEqual(record);
  });

  it('delta record request bits come back ascending and without duplicates', () => {
    const identity = lockspaceIdentity(sectorSize, 2000);
    const sector = encodeDeltaRecord(identity, { ...busyDelta(5), requests: [2000, 3, 1, 3, 1000] });
    expect(decodeDeltaRecord(sector, expectation(identity, 'delta', 5), place).requests).toEqual([1, 3, 1000, 2000]);
  });

  it('delta record host name keeps a leading U+FEFF (the byte order mark is data, not stripped)', () => {
    const identity = lockspaceIdentity(sectorSize, 4);
    const record = { ...busyDelta(2), owner: { ...busyDelta(2).owner, hostName: '\uFEFFhost-with-bom' }, requests: [4] };
    const sector = encodeDeltaRecord(identity, record);
    expect(decodeDeltaRecord(sector, expectation(identity, 'delta', 2), place)).toEqual(record);
  });

  it('leader record with every field non-trivial', () => {
    const identity = resourceIdentity(sectorSize, 2000);
    const record = busyLeader();
    const sector = encodeLeaderRecord(identity, record);
    expectSectorShape(sector, sectorSize);
    expect(decodeLeaderRecord(sector, expectation(identity, 'leader', 0), place)).toEqual(record);
  });

  it('leader record at init', () => {
    const identity = resourceIdentity(sectorSize, 16);
    const sector = encodeLeaderRecord(identity, LEADER_AT_INIT);
    expectSectorShape(sector, sectorSize);
    expect(decodeLeaderRecord(sector, expectation(identity, 'leader', 0), place)).toEqual(LEADER_AT_INIT);
  });

  it('host block with every field non-trivial, shared mode and a migration request', () => {
    const identity = resourceIdentity(sectorSize, 2000);
    const block = busyHostBlock(1999);
    const sector = encodeHostBlock(identity, block);
    expectSectorShape(sector, sectorSize);
    expect(decodeHostBlock(sector, expectation(identity, 'hostBlock', 1999), place)).toEqual(block);
  });

  it('host block in exclusive mode and the empty block written at init', () => {
    const identity = resourceIdentity(sectorSize, 2000);
    const exclusive = { ...busyHostBlock(2000), shared: false, sharedGeneration: 0 };
    expect(decodeHostBlock(encodeHostBlock(identity, exclusive), expectation(identity, 'hostBlock', 2000), place)).toEqual(exclusive);
    const empty = emptyHostBlock(1);
    expect(decodeHostBlock(encodeHostBlock(identity, empty), expectation(identity, 'hostBlock', 1), place)).toEqual(empty);
  });

  it('u64 fields hold exactly 2^53-1 on disk as little-endian', () => {
    const identity = resourceIdentity(sectorSize, 2000);
    const sector = encodeLeaderRecord(identity, { ...busyLeader(), lver: MAX_SAFE });
    expect(dv(sector).getBigUint64(128, true)).toBe(2n ** 53n - 1n);
  });
});

describe('unknown compat feature bits', () => {
  it.each(SECTOR_SIZES)('are written and read back (%i-byte sectors)', (sectorSize) => {
    const identity = { ...lockspaceIdentity(sectorSize, 8), featuresCompat: 0x8000_0000 };
    const sector = encodeDeltaRecord(identity, { ...busyDelta(8), requests: [8] });
    expect(dv(sector).getUint32(20, true)).toBe(0x8000_0000);
    expect(decodeDeltaRecord(sector, expectation(identity, 'delta', 8), place).hostId).toBe(8);
  });
});

describe('host name limits', () => {
  it('a 64-byte host name of 2-byte characters round-trips', () => {
    const identity = lockspaceIdentity(512, 2);
    const record = { ...freeDeltaRecord(2, 1000), owner: { hostName: 'é'.repeat(32), bootId: 'f'.repeat(32), nonce: '0'.repeat(15) + '1' } };
    expect(Buffer.byteLength(record.owner.hostName, 'utf8')).toBe(64);
    expect(decodeDeltaRecord(encodeDeltaRecord(identity, record), expectation(identity, 'delta', 2), place)).toEqual(record);
  });
});

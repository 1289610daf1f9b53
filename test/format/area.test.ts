import { describe, expect, it } from 'vitest';
import {
  emptyHostBlock,
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  freeDeltaRecord,
  identityOf,
  initialAreaBytes,
  LEADER_AT_INIT,
  parseLockspaceArea,
  parseResourceArea,
  specBytes,
  type LockspaceSpec,
  type ResourceSpec,
  type SectorSize,
} from '../../dist/helper/format/index.js';
import { busyDelta, busyHostBlock, busyLeader, LOCKSPACE_NAME_48, RESOURCE_NAME_48 } from './fixtures.js';
import { dv, independentChecksum, RECORD, sectorOf, value } from './support.js';

const CASES: [number, SectorSize][] = [
  [1, 512],
  [1, 4096],
  [16, 512],
  [16, 4096],
  [2000, 512],
  [2000, 4096],
];

function lockspaceSpec(hostsMax: number, sectorSize: SectorSize): LockspaceSpec {
  return { kind: 'lockspace', lockspaceName: LOCKSPACE_NAME_48, hostsMax, sectorSize, ioTimeoutMs: 10_000 };
}

function resourceSpec(hostsMax: number, sectorSize: SectorSize): ResourceSpec {
  return { kind: 'resource', lockspaceName: LOCKSPACE_NAME_48, resourceName: RESOURCE_NAME_48, hostsMax, sectorSize };
}

/** Reads a sector's header fields straight from the bytes. */
function headerOf(sector: Uint8Array): { magic: string; blockHostId: number; hostsMax: number; sectorSize: number } {
  return {
    magic: Buffer.from(sector.subarray(0, 4)).toString('latin1'),
    blockHostId: dv(sector).getUint16(24, true),
    hostsMax: dv(sector).getUint16(6, true),
    sectorSize: dv(sector).getUint32(8, true),
  };
}

describe.each(CASES)('areas with %i host ids and %i-byte sectors', (hostsMax, sectorSize) => {
  it('lockspace: hostsMax sectors, host id h in sector h-1, every record free and valid', () => {
    const spec = lockspaceSpec(hostsMax, sectorSize);
    const bytes = initialAreaBytes(spec);
    expect(bytes.byteLength).toBe(hostsMax * sectorSize);
    expect(specBytes(spec)).toBe(hostsMax * sectorSize);
    for (const h of [1, Math.ceil(hostsMax / 2), hostsMax]) {
      const sector = sectorOf(bytes, sectorSize, h - 1);
      expect(headerOf(sector)).toEqual({ magic: 'VMLD', blockHostId: h, hostsMax, sectorSize });
      expect(dv(sector).getUint32(12, true)).toBe(independentChecksum(sector));
      expect(sector.subarray(RECORD).every((b) => b === 0)).toBe(true);
    }
    const area = parseLockspaceArea(bytes, spec, 'ls-area');
    expect(area.spec).toBe(spec);
    expect(area.hosts).toHaveLength(hostsMax);
    area.hosts.forEach((checked, i) => expect(value(checked)).toEqual(freeDeltaRecord(i + 1, 10_000)));
  });

  it('lockspace: a record written into its sector is read back for that host id only', () => {
    const spec = lockspaceSpec(hostsMax, sectorSize);
    const bytes = initialAreaBytes(spec);
    const h = hostsMax;
    const record = { ...busyDelta(h), areaIoTimeoutMs: 10_000, requests: [...new Set([1, hostsMax])] };
    bytes.set(encodeDeltaRecord(identityOf(spec), record), (h - 1) * sectorSize);
    const area = parseLockspaceArea(bytes, spec, 'ls-area');
    expect(value(area.hosts[h - 1])).toEqual(record);
    area.hosts.forEach((checked, i) => {
      if (i !== h - 1) expect(value(checked)).toEqual(freeDeltaRecord(i + 1, 10_000));
    });
  });

  it('resource: 1+hostsMax sectors, leader in sector 0, host id h in sector h, every record valid and empty', () => {
    const spec = resourceSpec(hostsMax, sectorSize);
    const bytes = initialAreaBytes(spec);
    expect(bytes.byteLength).toBe((1 + hostsMax) * sectorSize);
    expect(specBytes(spec)).toBe((1 + hostsMax) * sectorSize);
    expect(headerOf(sectorOf(bytes, sectorSize, 0))).toEqual({ magic: 'VMLR', blockHostId: 0, hostsMax, sectorSize });
    for (const h of [1, Math.ceil(hostsMax / 2), hostsMax]) {
      const sector = sectorOf(bytes, sectorSize, h);
      expect(headerOf(sector)).toEqual({ magic: 'VMLB', blockHostId: h, hostsMax, sectorSize });
      expect(dv(sector).getUint32(12, true)).toBe(independentChecksum(sector));
      expect(sector.subarray(RECORD).every((b) => b === 0)).toBe(true);
    }
    const area = parseResourceArea(bytes, spec, 'res-area');
    expect(value(area.leader)).toEqual(LEADER_AT_INIT);
    expect(area.hosts).toHaveLength(hostsMax);
    area.hosts.forEach((checked, i) => expect(value(checked)).toEqual(emptyHostBlock(i + 1)));
  });

  it('resource: leader and host blocks written into their sectors are read back', () => {
    const spec = resourceSpec(hostsMax, sectorSize);
    const bytes = initialAreaBytes(spec);
    const identity = identityOf(spec);
    const leader = { ...busyLeader(), ownerHostId: hostsMax, writerHostId: 1 };
    const block = { ...busyHostBlock(hostsMax), inp: { ...busyHostBlock(hostsMax).inp, hostId: hostsMax } };
    bytes.set(encodeLeaderRecord(identity, leader), 0);
    bytes.set(encodeHostBlock(identity, block), hostsMax * sectorSize);
    const area = parseResourceArea(bytes, spec, 'res-area');
    expect(value(area.leader)).toEqual(leader);
    expect(value(area.hosts[hostsMax - 1])).toEqual(block);
  });
});

describe('example sizes', () => {
  it('16 host ids at 512 bytes: 8 KiB lockspace, 8.5 KiB resource', () => {
    expect(initialAreaBytes(lockspaceSpec(16, 512)).byteLength).toBe(8 * 1024);
    expect(initialAreaBytes(resourceSpec(16, 512)).byteLength).toBe(8.5 * 1024);
  });

  it('2000 host ids at 4096 bytes: about 7.8 MiB', () => {
    expect(initialAreaBytes(lockspaceSpec(2000, 4096)).byteLength / 2 ** 20).toBeCloseTo(7.81, 2);
    expect(initialAreaBytes(resourceSpec(2000, 4096)).byteLength / 2 ** 20).toBeCloseTo(7.82, 2);
  });
});

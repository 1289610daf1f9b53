import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import {
  emptyHostBlock,
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  freeDeltaRecord,
  FormatErrorCode,
  identifyArea,
  initialAreaBytes,
  LEADER_AT_INIT,
  specProblems,
  type AreaSpec,
  type LockspaceSpec,
  type ResourceSpec,
  type SectorSize,
} from '../../dist/helper/format/index.js';
import { busyDelta, busyHostBlock, lockspaceIdentity, LOCKSPACE_NAME_48, resourceIdentity, RESOURCE_NAME_48 } from './fixtures.js';
import { asciiName, expectNamedError, sectorOf, thrownFormatError } from './support.js';

const LABEL = '/dev/vg0/leases:0';

function lockspaceSpec(sectorSize: SectorSize, hostsMax = 16): LockspaceSpec {
  return { kind: 'lockspace', lockspaceName: LOCKSPACE_NAME_48, hostsMax, sectorSize, ioTimeoutMs: 7_500 };
}

function resourceSpec(sectorSize: SectorSize, hostsMax = 16): ResourceSpec {
  return { kind: 'resource', lockspaceName: LOCKSPACE_NAME_48, resourceName: RESOURCE_NAME_48, hostsMax, sectorSize };
}

describe('identifyArea', () => {
  it.each([512, 4096] as const)('recognises a lockspace from its first sector (%i-byte sectors)', (sectorSize) => {
    const spec = lockspaceSpec(sectorSize, 250);
    const area = initialAreaBytes(spec);
    expect(identifyArea(sectorOf(area, sectorSize, 0), LABEL)).toEqual(spec);
    expect(identifyArea(area.subarray(0, 512), LABEL)).toEqual(spec);
  });

  it.each([512, 4096] as const)('recognises a resource from its leader (%i-byte sectors)', (sectorSize) => {
    const spec = resourceSpec(sectorSize, 2000);
    const area = initialAreaBytes(spec);
    expect(identifyArea(sectorOf(area, sectorSize, 0), LABEL)).toEqual(spec);
  });

  it('refuses a resource host block (not the first record of an area) with FORMAT_KIND', () => {
    const area = initialAreaBytes(resourceSpec(512));
    const error = thrownFormatError(() => identifyArea(sectorOf(area, 512, 3), LABEL));
    expectNamedError(error, FormatErrorCode.kind, LABEL, 'sector 0', /holds the block of host id 3, not the first record of an area/);
  });

  it('refuses the delta lease of host id 2 (an offset inside a lockspace) with FORMAT_KIND', () => {
    const area = initialAreaBytes(lockspaceSpec(4096));
    const error = thrownFormatError(() => identifyArea(sectorOf(area, 4096, 1), LABEL));
    expectNamedError(error, FormatErrorCode.kind, LABEL, 'sector 0', /holds the delta lease of host id 2/);
  });

  it('refuses zeroed storage with FORMAT_UNINITIALISED and foreign data with FORMAT_MAGIC', () => {
    expectNamedError(thrownFormatError(() => identifyArea(new Uint8Array(4096), LABEL)), FormatErrorCode.uninitialised, LABEL, 'sector 0');
    const foreign = new Uint8Array(512).fill(0x5a);
    expectNamedError(thrownFormatError(() => identifyArea(foreign, LABEL)), FormatErrorCode.magic, LABEL, 'sector 0');
  });

  it('refuses a lockspace record that names a resource, and a leader without one, with FORMAT_RESOURCE_NAME', () => {
    const delta = encodeDeltaRecord({ ...lockspaceIdentity(512, 16), resourceName: 'stray' }, freeDeltaRecord(1, 7_500));
    expectNamedError(thrownFormatError(() => identifyArea(delta, LABEL)), FormatErrorCode.resourceName, LABEL, 'sector 0', /a lockspace record names resource "stray"/);
    const leader = encodeLeaderRecord({ ...resourceIdentity(512, 16), resourceName: '' }, LEADER_AT_INIT);
    expectNamedError(thrownFormatError(() => identifyArea(leader, LABEL)), FormatErrorCode.resourceName, LABEL, 'sector 0', /a resource record has an empty resource name/);
  });

  it('refuses fewer than 512 bytes with FORMAT_TRUNCATED', () => {
    const area = initialAreaBytes(lockspaceSpec(512));
    expectNamedError(thrownFormatError(() => identifyArea(area.subarray(0, 100), LABEL)), FormatErrorCode.truncated, LABEL, 'sector 0');
  });
});

describe('encoding invalid values is a bug: it throws an AssertionError', () => {
  const ls = lockspaceIdentity(512, 16);
  const rs = resourceIdentity(4096, 16);
  const delta = { ...busyDelta(4), requests: [1, 16] };

  it('a lockspace or resource name of 49 bytes', () => {
    expect(() => encodeDeltaRecord({ ...ls, lockspaceName: asciiName('ls', 49) }, delta)).toThrow(AssertionError);
    expect(() => encodeLeaderRecord({ ...rs, resourceName: asciiName('res', 49) }, LEADER_AT_INIT)).toThrow(AssertionError);
    expect(() => encodeHostBlock({ ...rs, lockspaceName: asciiName('ls', 49) }, emptyHostBlock(1))).toThrow(AssertionError);
  });

  it('a host name of 65 bytes, or one containing NUL', () => {
    const tooLong = { ...delta, owner: { ...delta.owner, hostName: 'é'.repeat(32) + 'x' } };
    expect(() => encodeDeltaRecord(ls, tooLong)).toThrow(AssertionError);
    const withNul = { ...delta, owner: { ...delta.owner, hostName: 'a\u0000b' } };
    expect(() => encodeDeltaRecord(ls, withNul)).toThrow(AssertionError);
  });

  it.each([0, 17, 2001, 1.5, -1])('a request for host id %s, outside the area of 16 host ids', (hostId) => {
    expect(() => encodeDeltaRecord(ls, { ...delta, requests: [1, hostId] })).toThrow(AssertionError);
  });

  it.each([0, 17])('a delta record or host block for host id %i, outside the area of 16 host ids', (hostId) => {
    expect(() => encodeDeltaRecord(ls, freeDeltaRecord(hostId, 1000))).toThrow(AssertionError);
    expect(() => encodeHostBlock(rs, emptyHostBlock(hostId))).toThrow(AssertionError);
  });

  it('u64 values at 2^53, negative or fractional', () => {
    expect(() => encodeDeltaRecord(ls, { ...delta, generation: 2 ** 53 })).toThrow(AssertionError);
    expect(() => encodeDeltaRecord(ls, { ...delta, timestampMs: -1 })).toThrow(AssertionError);
    expect(() => encodeLeaderRecord(rs, { ...LEADER_AT_INIT, lver: 0.5 })).toThrow(AssertionError);
    expect(() => encodeHostBlock(rs, { ...busyHostBlock(2), inp: { ...busyHostBlock(2).inp, hostId: 3 }, mbal: 2 ** 60 })).toThrow(AssertionError);
  });

  it('a u32 value above 2^32-1', () => {
    expect(() => encodeDeltaRecord(ls, { ...delta, ownerIoTimeoutMs: 2 ** 32 })).toThrow(AssertionError);
  });

  it('a boot id or nonce that is not lowercase hex of the right length', () => {
    expect(() => encodeDeltaRecord(ls, { ...delta, owner: { ...delta.owner, bootId: 'ABCDEF'.repeat(5) + 'ab' } })).toThrow(AssertionError);
    expect(() => encodeDeltaRecord(ls, { ...delta, owner: { ...delta.owner, nonce: '0123' } })).toThrow(AssertionError);
    const block = { ...emptyHostBlock(2), request: { ...emptyHostBlock(2).request, nonce: 'g'.repeat(16) } };
    expect(() => encodeHostBlock(rs, block)).toThrow(AssertionError);
  });

  it('unknown leader or request flag bits', () => {
    expect(() => encodeLeaderRecord(rs, { ...LEADER_AT_INIT, flags: 1 })).toThrow(AssertionError);
    const block = { ...emptyHostBlock(2), request: { ...emptyHostBlock(2).request, flags: 4 } };
    expect(() => encodeHostBlock(rs, block)).toThrow(AssertionError);
  });

  it('initialAreaBytes with an invalid spec', () => {
    expect(() => initialAreaBytes({ ...lockspaceSpec(512), hostsMax: 2001 })).toThrow(AssertionError);
    expect(() => initialAreaBytes({ ...resourceSpec(512), resourceName: 'has space' })).toThrow(AssertionError);
  });
});

describe('specProblems', () => {
  it('accepts valid specs, including 48-byte names with ":" and the limits of every number', () => {
    expect(specProblems(lockspaceSpec(512, 1))).toEqual([]);
    expect(specProblems({ ...lockspaceSpec(4096, 2000), ioTimeoutMs: 600_000 })).toEqual([]);
    expect(specProblems({ ...lockspaceSpec(4096, 2000), ioTimeoutMs: 1 })).toEqual([]);
    expect(specProblems(resourceSpec(4096, 2000))).toEqual([]);
  });

  it.each<[string, AreaSpec, RegExp]>([
    ['empty lockspace name', { ...lockspaceSpec(512), lockspaceName: '' }, /^lockspace name is empty$/],
    ['49-byte lockspace name', { ...lockspaceSpec(512), lockspaceName: asciiName('ls', 49) }, /^lockspace name is 49 bytes long, at most 48 are allowed$/],
    ['lockspace name with a space', { ...lockspaceSpec(512), lockspaceName: 'my cluster' }, /^lockspace name has a character outside printable ASCII \(code 32\) at position 2$/],
    ['non-ASCII resource name', { ...resourceSpec(512), resourceName: 'vm-é' }, /^resource name has a character outside printable ASCII \(code 233\) at position 3$/],
    ['49-byte resource name', { ...resourceSpec(512), resourceName: asciiName('r', 49) }, /^resource name is 49 bytes long/],
    ['0 host ids', { ...lockspaceSpec(512), hostsMax: 0 }, /^host-id count 0 is outside 1\.\.2000$/],
    ['2001 host ids', { ...resourceSpec(512), hostsMax: 2001 }, /^host-id count 2001 is outside 1\.\.2000$/],
    ['fractional host ids', { ...resourceSpec(512), hostsMax: 1.5 }, /^host-id count 1\.5 is outside/],
    ['sector size 1024', { ...lockspaceSpec(512), sectorSize: Number('1024') as SectorSize }, /^sector size 1024 is not 512 or 4096$/],
    ['io timeout 0', { ...lockspaceSpec(512), ioTimeoutMs: 0 }, /^io timeout 0 ms is outside 1\.\.600000$/],
    ['io timeout above 10 minutes', { ...lockspaceSpec(512), ioTimeoutMs: 600_001 }, /^io timeout 600001 ms is outside/],
  ])('reports %s', (_what, spec, problem) => {
    const problems = specProblems(spec);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it('reports every problem of a spec at once', () => {
    const spec: ResourceSpec = { kind: 'resource', lockspaceName: '', resourceName: 'a b', hostsMax: 0, sectorSize: Number('0') as SectorSize };
    expect(specProblems(spec)).toHaveLength(4);
  });
});

/**
 * Every corruption is reported with its stable code and a message naming the
 * area and the block; neighbouring blocks stay readable. Tampering is done on
 * raw bytes at the offsets of docs/format.md; where a test must get past the
 * checksum, it recomputes it with the test's own CRC (support.ts: reseal).
 */
import { describe, expect, it } from 'vitest';
import {
  decodeDeltaRecord,
  FormatErrorCode,
  initialAreaBytes,
  parseLockspaceArea,
  parseResourceArea,
  specBytes,
  type AreaSpec,
  type Checked,
  type FormatErrorCode as Code,
  type LockspaceSpec,
  type ResourceSpec,
  type SectorSize,
} from '../../dist/helper/format/index.js';
import { dv, expectNamedError, failure, reseal, sectorOf, thrownFormatError, value } from './support.js';

const HOSTS = 5;
const LABEL = 'lockspace area cluster-a at /dev/vg0/leases:1048576';
const SECTOR_SIZES: SectorSize[] = [512, 4096];

function lockspaceSpec(sectorSize: SectorSize, over: Partial<LockspaceSpec> = {}): LockspaceSpec {
  return { kind: 'lockspace', lockspaceName: 'cluster-a', hostsMax: HOSTS, sectorSize, ioTimeoutMs: 10_000, ...over };
}

function resourceSpec(sectorSize: SectorSize, over: Partial<ResourceSpec> = {}): ResourceSpec {
  return { kind: 'resource', lockspaceName: 'cluster-a', resourceName: 'vm-web01', hostsMax: HOSTS, sectorSize, ...over };
}

interface Parsed {
  readonly leader?: Checked<unknown>;
  readonly hosts: readonly Checked<unknown>[];
}

function parse(bytes: Uint8Array, spec: AreaSpec): Parsed {
  return spec.kind === 'lockspace' ? parseLockspaceArea(bytes, spec, LABEL) : parseResourceArea(bytes, spec, LABEL);
}

/** The area kinds, each with where host id h's block lives and a u64 field of its host records. */
const AREAS = [
  { kind: 'lockspace' as const, spec: lockspaceSpec, sector: (h: number) => h - 1, u64: { offset: 128, name: 'generation' } },
  { kind: 'resource' as const, spec: resourceSpec, sector: (h: number) => h, u64: { offset: 128, name: 'mbal' } },
];

function blockName(kind: 'lockspace' | 'resource', h: number): string {
  return `host id ${h} (sector ${kind === 'lockspace' ? h - 1 : h})`;
}

/** Host id `bad` fails with `code`, named in the message; every other record of the area is valid. */
function expectOnlyHostFails(parsed: Parsed, kind: 'lockspace' | 'resource', bad: number, code: Code, reason?: RegExp): void {
  expectNamedError(failure(parsed.hosts[bad - 1]), code, LABEL, blockName(kind, bad), reason);
  parsed.hosts.forEach((checked, i) => {
    if (i !== bad - 1) value(checked);
  });
  if (parsed.leader) value(parsed.leader);
}

describe.each(SECTOR_SIZES)('%i-byte sectors', (sectorSize) => {
  describe.each(AREAS)('$kind area, host id 3', ({ kind, spec: specOf, sector, u64 }) => {
    const spec = specOf(sectorSize);
    const fresh = (): Uint8Array => initialAreaBytes(spec);
    const block3 = (area: Uint8Array): Uint8Array => sectorOf(area, sectorSize, sector(3));

    it.each([
      ['the checksum field', 13],
      ['the lockspace name', 33],
      ['a u64 field', 130],
      ['the last covered byte', 511],
    ])('a flipped byte in %s (offset %i) -> FORMAT_CHECKSUM', (_what, offset) => {
      const area = fresh();
      block3(area)[offset]! ^= 0x40;
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.checksum, /checksum 0x[0-9a-f]{8} does not match contents 0x[0-9a-f]{8}/);
    });

    it('bad magic -> FORMAT_MAGIC (before the checksum is looked at)', () => {
      const area = fresh();
      block3(area).set(Buffer.from('XXXX', 'latin1'), 0);
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.magic, /bad magic 0x58585858/);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.magic);
    });

    it('version 2 with a recomputed checksum -> FORMAT_VERSION', () => {
      const area = fresh();
      dv(block3(area)).setUint16(4, 2, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.version, /format version 2, this build reads version 1/);
    });

    it('version 2 with a checksum by another rule -> FORMAT_VERSION (the version is checked before the checksum)', () => {
      const area = fresh();
      dv(block3(area)).setUint16(4, 2, true);
      dv(block3(area)).setUint32(12, 0xdeadbeef, true);
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.version);
    });

    it('a sector-size field of another valid size (resealed) -> FORMAT_SECTOR_SIZE', () => {
      const area = fresh();
      dv(block3(area)).setUint32(8, sectorSize === 512 ? 4096 : 512, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.sectorSize, new RegExp(`the area is read with ${sectorSize}`));
    });

    it('a sector-size field that is neither 512 nor 4096 (resealed) -> FORMAT_SECTOR_SIZE', () => {
      const area = fresh();
      dv(block3(area)).setUint32(8, 1024, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.sectorSize, /sector size 1024 is not 512 or 4096/);
    });

    it('a record of another lockspace (resealed) -> FORMAT_LOCKSPACE_NAME', () => {
      const area = fresh();
      block3(area).set(Buffer.from('cluster-b', 'latin1'), 32);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.lockspaceName, /belongs to lockspace "cluster-b", expected "cluster-a"/);
    });

    it('an all-zero sector -> FORMAT_UNINITIALISED', () => {
      const area = fresh();
      block3(area).fill(0);
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.uninitialised, /all zero/);
    });

    it("another host's record copied into host id 3's sector -> FORMAT_BLOCK_HOST_ID", () => {
      const area = fresh();
      block3(area).set(sectorOf(area, sectorSize, sector(5)));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.blockHostId, /belongs to host id 5, found in the block of host id 3/);
    });

    it('a record with another host-id count (resealed) -> FORMAT_HOSTS', () => {
      const area = fresh();
      dv(block3(area)).setUint16(6, HOSTS + 1, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.hosts, /record serves 6 host ids, the area serves 5/);
    });

    it('an unknown incompat feature bit (resealed) -> FORMAT_FEATURES', () => {
      const area = fresh();
      dv(block3(area)).setUint32(16, 0x0000_0100, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.features, /feature bits 0x00000100/);
    });

    it('an unknown compat feature bit (resealed) is ignored', () => {
      const area = fresh();
      dv(block3(area)).setUint32(20, 0x8000_0000, true);
      reseal(block3(area));
      const parsed = parse(area, spec);
      parsed.hosts.forEach((checked) => value(checked));
    });

    it('a u64 field at 2^53 (resealed) -> FORMAT_FIELD_RANGE; 2^53-1 is accepted', () => {
      const area = fresh();
      dv(block3(area)).setBigUint64(u64.offset, 2n ** 53n - 1n, true);
      reseal(block3(area));
      parse(area, spec).hosts.forEach((checked) => value(checked));
      for (const tooBig of [2n ** 53n, 2n ** 64n - 1n]) {
        dv(block3(area)).setBigUint64(u64.offset, tooBig, true);
        reseal(block3(area));
        expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.fieldRange, new RegExp(`${u64.name} is above 2\\^53`));
      }
    });

    it('a host-id count of 0 in the header (resealed) -> FORMAT_FIELD_RANGE', () => {
      const area = fresh();
      dv(block3(area)).setUint16(6, 0, true);
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.fieldRange, /host-id count 0 is outside 1\.\.2000/);
    });

    it('bytes after the NUL of the lockspace name (resealed) -> FORMAT_FIELD_RANGE', () => {
      const area = fresh();
      block3(area)[32 + 47] = 0x41;
      reseal(block3(area));
      expectOnlyHostFails(parse(area, spec), kind, 3, FormatErrorCode.fieldRange, /lockspace name field is not NUL-padded UTF-8/);
    });

    it('the area read with a different host-id count -> FORMAT_HOSTS for every present block, FORMAT_TRUNCATED past the end', () => {
      const area = fresh();
      const wider = parse(area, specOf(sectorSize, { hostsMax: HOSTS + 2 }));
      for (let h = 1; h <= HOSTS; h++) expectNamedError(failure(wider.hosts[h - 1]), FormatErrorCode.hosts, LABEL, blockName(kind, h));
      for (let h = HOSTS + 1; h <= HOSTS + 2; h++) expectNamedError(failure(wider.hosts[h - 1]), FormatErrorCode.truncated, LABEL, blockName(kind, h));
      const narrower = parse(area, specOf(sectorSize, { hostsMax: HOSTS - 1 }));
      expect(narrower.hosts).toHaveLength(HOSTS - 1);
      for (let h = 1; h < HOSTS; h++) expectNamedError(failure(narrower.hosts[h - 1]), FormatErrorCode.hosts, LABEL, blockName(kind, h));
    });

    it('the area read with another lockspace name -> FORMAT_LOCKSPACE_NAME for every block', () => {
      const parsed = parse(fresh(), specOf(sectorSize, { lockspaceName: 'cluster-b' }));
      for (let h = 1; h <= HOSTS; h++) expectNamedError(failure(parsed.hosts[h - 1]), FormatErrorCode.lockspaceName, LABEL, blockName(kind, h));
      if (parsed.leader) expectNamedError(failure(parsed.leader), FormatErrorCode.lockspaceName, LABEL, 'leader (sector 0)');
    });

    it('the area read with the other sector size -> FORMAT_SECTOR_SIZE for host id 1', () => {
      const other: SectorSize = sectorSize === 512 ? 4096 : 512;
      // What a reader using the other sector size reads: as many bytes as it expects, the area at their start.
      const bytes = new Uint8Array(Math.max(specBytes(specOf(other)), specBytes(spec)));
      bytes.set(fresh());
      const parsed = parse(bytes, specOf(other));
      const first = parsed.leader ?? parsed.hosts[0];
      const firstBlock = kind === 'lockspace' ? blockName(kind, 1) : 'leader (sector 0)';
      expectNamedError(failure(first), FormatErrorCode.sectorSize, LABEL, firstBlock, new RegExp(`record says sector size ${sectorSize}, the area is read with ${other}`));
    });

    it.each([
      ['one byte short', 1],
      ['one record and one byte short', 512 + 1],
      ['two sectors short', 'two sectors'],
    ] as const)('the area cut %s -> FORMAT_TRUNCATED for exactly the sectors not wholly present', (_what, cut) => {
      const full = fresh();
      const missing = cut === 'two sectors' ? 2 * sectorSize : cut;
      const bytes = full.subarray(0, full.byteLength - missing);
      const parsed = parse(bytes, spec);
      const sectorsPresent = Math.floor(bytes.byteLength / sectorSize);
      for (let h = 1; h <= HOSTS; h++) {
        const checked = parsed.hosts[h - 1];
        if (sector(h) < sectorsPresent) value(checked);
        else expectNamedError(failure(checked), FormatErrorCode.truncated, LABEL, blockName(kind, h), new RegExp(`storage ends at byte ${bytes.byteLength} of the area`));
      }
      const truncatedCount = parsed.hosts.filter((c) => !c.ok).length;
      expect(truncatedCount).toBe(Math.ceil(missing / sectorSize));
      if (parsed.leader) value(parsed.leader);
    });
  });
});

describe('lockspace-only corruptions', () => {
  const LS = lockspaceSpec(512);

  it('a resource leader where a delta record is expected -> FORMAT_KIND', () => {
    const area = initialAreaBytes(LS);
    const resource = initialAreaBytes(resourceSpec(512));
    area.set(sectorOf(resource, 512, 0), 2 * 512);
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.kind, /found a resource leader record where a lockspace delta lease record belongs/);
  });

  it('a resource area read as a lockspace -> FORMAT_KIND for every block', () => {
    const parsed = parse(initialAreaBytes(resourceSpec(512)), LS);
    expectNamedError(failure(parsed.hosts[0]), FormatErrorCode.kind, LABEL, 'host id 1 (sector 0)', /resource leader/);
    for (let h = 2; h <= HOSTS; h++) expectNamedError(failure(parsed.hosts[h - 1]), FormatErrorCode.kind, LABEL, blockName('lockspace', h), /resource host block/);
  });

  it('a request bit for a host id beyond the area (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(LS);
    area[2 * 512 + 256] = 1 << 5; // bit 5 = host id 6
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.fieldRange, /request bit set for host id 6, the area serves 5/);
  });

  it('a lockspace io timeout of 0 (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(LS);
    dv(area).setUint32(2 * 512 + 152, 0, true);
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.fieldRange, /io timeout 0 ms is outside 1\.\.600000/);
  });

  it('a lockspace io timeout above 600000 ms (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(LS);
    dv(area).setUint32(2 * 512 + 152, 600_001, true);
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.fieldRange, /io timeout 600001 ms is outside/);
  });

  it('a record whose lockspace io timeout differs from the area\'s (resealed) -> FORMAT_IO_TIMEOUT', () => {
    const area = initialAreaBytes(LS);
    dv(area).setUint32(2 * 512 + 152, 5_000, true);
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.ioTimeout, /record says the lockspace io timeout is 5000 ms, the area's is 10000 ms/);
  });

  it('a lockspace name with a control character (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(LS);
    area[2 * 512 + 32 + 2] = 0x0a; // "cl\nster-a"
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.fieldRange, /lockspace name has a character outside printable ASCII \(code 10\)/);
  });

  it('an owner host name that is not UTF-8 (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(LS);
    area.set([0x68, 0xff, 0x68], 2 * 512 + 160);
    reseal(sectorOf(area, 512, 2));
    expectOnlyHostFails(parse(area, LS), 'lockspace', 3, FormatErrorCode.fieldRange, /owner host name/);
  });

  it('a record shorter than 512 bytes given to the decoder -> FORMAT_TRUNCATED', () => {
    const record = initialAreaBytes(LS).subarray(0, 511);
    const place = { area: LABEL, block: 'host id 1 (sector 0)' };
    const error = thrownFormatError(() => decodeDeltaRecord(record, { ...LS, kind: 'delta', blockHostId: 1, resourceName: '' }, place));
    expectNamedError(error, FormatErrorCode.truncated, LABEL, 'host id 1 (sector 0)', /only 511 of 512 record bytes/);
  });
});

describe('resource-only corruptions', () => {
  const RS = resourceSpec(4096);
  const LEADER = 'leader (sector 0)';

  it('the area read with another resource name -> FORMAT_RESOURCE_NAME for the leader and every block', () => {
    const parsed = parse(initialAreaBytes(RS), resourceSpec(4096, { resourceName: 'vm-web02' }));
    expectNamedError(failure(parsed.leader), FormatErrorCode.resourceName, LABEL, LEADER, /belongs to resource "vm-web01", expected "vm-web02"/);
    for (let h = 1; h <= HOSTS; h++) expectNamedError(failure(parsed.hosts[h - 1]), FormatErrorCode.resourceName, LABEL, blockName('resource', h));
  });

  it('one block of another resource (resealed) -> FORMAT_RESOURCE_NAME for that block only', () => {
    const area = initialAreaBytes(RS);
    const block = sectorOf(area, 4096, 3);
    block.set(Buffer.from('vm-web02', 'latin1'), 80);
    reseal(block);
    expectOnlyHostFails(parse(area, RS), 'resource', 3, FormatErrorCode.resourceName, /belongs to resource "vm-web02", expected "vm-web01"/);
  });

  it('a lockspace delta record in the leader sector -> FORMAT_KIND naming the leader', () => {
    const area = initialAreaBytes(RS);
    area.set(sectorOf(initialAreaBytes(lockspaceSpec(4096)), 4096, 0), 0);
    const parsed = parse(area, RS);
    expectNamedError(failure(parsed.leader), FormatErrorCode.kind, LABEL, LEADER, /found a lockspace delta lease record where a resource leader record belongs/);
    parsed.hosts.forEach((checked) => value(checked));
  });

  it('the leader copied into a host block -> FORMAT_KIND', () => {
    const area = initialAreaBytes(RS);
    area.set(sectorOf(area, 4096, 0), 3 * 4096);
    expectOnlyHostFails(parse(area, RS), 'resource', 3, FormatErrorCode.kind, /found a resource leader record where a resource host block record belongs/);
  });

  it('a flipped byte in the leader -> FORMAT_CHECKSUM naming the leader', () => {
    const area = initialAreaBytes(RS);
    area[129]! ^= 1;
    const parsed = parse(area, RS);
    expectNamedError(failure(parsed.leader), FormatErrorCode.checksum, LABEL, LEADER);
    parsed.hosts.forEach((checked) => value(checked));
  });

  it('bytes past the first 512 of a 4096-byte sector are not covered by the checksum', () => {
    const area = initialAreaBytes(RS);
    area[3 * 4096 + 1000] = 0xff;
    parse(area, RS).hosts.forEach((checked) => value(checked));
  });

  it('a leader lver at 2^53 (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(RS);
    dv(area).setBigUint64(128, 2n ** 53n, true);
    reseal(sectorOf(area, 4096, 0));
    expectNamedError(failure(parse(area, RS).leader), FormatErrorCode.fieldRange, LABEL, LEADER, /lver is above 2\^53/);
  });

  it('a leader owner host id beyond the area (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(RS);
    dv(area).setUint16(136, HOSTS + 1, true);
    reseal(sectorOf(area, 4096, 0));
    expectNamedError(failure(parse(area, RS).leader), FormatErrorCode.fieldRange, LABEL, LEADER, /owner host id 6 is outside 0\.\.5/);
  });

  it('a proposed owner beyond the area or an unknown mode flag in a host block (resealed) -> FORMAT_FIELD_RANGE', () => {
    const area = initialAreaBytes(RS);
    const block = sectorOf(area, 4096, 3);
    dv(block).setUint16(144, HOSTS + 1, true);
    reseal(block);
    expectOnlyHostFails(parse(area, RS), 'resource', 3, FormatErrorCode.fieldRange, /proposed owner host id 6 is outside 0\.\.5/);
    dv(block).setUint16(144, 0, true);
    dv(block).setUint32(184, 4, true);
    reseal(block);
    expectOnlyHostFails(parse(area, RS), 'resource', 3, FormatErrorCode.fieldRange, /mode flags has unknown bits 0x4/);
  });

  it('a resource area cut inside the leader -> FORMAT_TRUNCATED for every record', () => {
    const parsed = parse(initialAreaBytes(RS).subarray(0, 4095), RS);
    expectNamedError(failure(parsed.leader), FormatErrorCode.truncated, LABEL, LEADER);
    for (let h = 1; h <= HOSTS; h++) expectNamedError(failure(parsed.hosts[h - 1]), FormatErrorCode.truncated, LABEL, blockName('resource', h));
  });
});

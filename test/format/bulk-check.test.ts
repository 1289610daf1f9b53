/**
 * parseResourceArea checks host blocks in bulk (helper/format/host-block-scan.ts):
 * header words against a per-area template, and a block equal to the block
 * before it but for its host id and checksum is taken as that block with
 * another host id. These tests hold the bulk path to the full decode
 * (decodeHostBlock, block by block): same values, and for a block that differs
 * in one byte, the same refusal with the same code and message. The blocks
 * tampered with sit in long runs of identical blocks, where the shortcut
 * applies.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeHostBlock,
  emptyHostBlock,
  encodeHostBlock,
  FormatError,
  FormatErrorCode,
  identityOf,
  initialAreaBytes,
  parseResourceArea,
  type Checked,
  type HostBlock,
  type ResourceSpec,
  type SectorSize,
} from '../../dist/helper/format/index.js';
import { checksumWithHostId, recordChecksum } from '../../dist/helper/format/checksum.js';
import { dv, independentChecksum, reseal, sectorOf } from './support.js';

const LABEL = 'resource vm-web01 at /dev/vg0/leases:4194304';
const HOSTS = 2000;

function spec(sectorSize: SectorSize, over: Partial<ResourceSpec> = {}): ResourceSpec {
  return { kind: 'resource', lockspaceName: 'cluster-a', resourceName: 'vm-web01', hostsMax: HOSTS, sectorSize, ...over };
}

/** The full decode of every host block, one by one, as the reference. */
function reference(bytes: Uint8Array, s: ResourceSpec): Checked<HostBlock>[] {
  const out: Checked<HostBlock>[] = [];
  for (let h = 1; h <= s.hostsMax; h++) {
    const start = h * s.sectorSize;
    const place = { area: LABEL, block: `host id ${h} (sector ${h})` };
    if (start + s.sectorSize > bytes.byteLength) {
      out.push({ ok: false, error: new FormatError(FormatErrorCode.truncated, place, `the storage ends at byte ${bytes.byteLength} of the area, before this sector`) });
      continue;
    }
    try {
      out.push({ ok: true, value: decodeHostBlock(bytes.subarray(start, start + s.sectorSize), { ...identityOf(s), kind: 'hostBlock', blockHostId: h }, place) });
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      out.push({ ok: false, error });
    }
  }
  return out;
}

/** Compares results by value, and errors by code, place and message. */
function comparable(checked: readonly Checked<HostBlock>[]): unknown[] {
  return checked.map((c) => (c.ok ? { ok: true, value: c.value } : { ok: false, code: c.error.code, place: c.error.place, message: c.error.message }));
}

function expectSameAsFullDecode(bytes: Uint8Array, s: ResourceSpec): Checked<HostBlock>[] {
  const hosts = parseResourceArea(bytes, s, LABEL).hosts;
  expect(comparable(hosts)).toEqual(comparable(reference(bytes, s)));
  return [...hosts];
}

/** An area where hosts 10..19 wrote distinct blocks, 500..502 one and the same value, the rest never wrote. */
function usedArea(s: ResourceSpec): Uint8Array {
  const area = initialAreaBytes(s);
  const identity = identityOf(s);
  const put = (block: HostBlock): void => area.set(encodeHostBlock(identity, block), block.hostId * s.sectorSize);
  for (let h = 10; h < 20; h++) {
    put({ ...emptyHostBlock(h), mbal: h * 2000 + h, bal: h * 2000 + h, inp: { hostId: h, generation: 3, lver: 7, timestampMs: 2 ** 40 + h }, writerGeneration: 3, released: h % 2 === 0, shared: h === 13, sharedGeneration: h === 13 ? 3 : 0 });
  }
  for (let h = 500; h <= 502; h++) {
    put({ ...emptyHostBlock(h), mbal: 4001, bal: 4001, inp: { hostId: 1, generation: 9, lver: 8, timestampMs: 5 }, writerGeneration: 2, request: { lver: 8, generation: 10, nonce: '00ff00ff00ff00ff', flags: 0 } });
  }
  return area;
}

describe.each([512, 4096] as const)('%i-byte sectors, 2000 host ids', (sectorSize) => {
  const s = spec(sectorSize);

  it('a fresh area and a used one read exactly as the full decode reads them', () => {
    const fresh = expectSameAsFullDecode(initialAreaBytes(s), s);
    expect(fresh.every((c) => c.ok)).toBe(true);
    const used = expectSameAsFullDecode(usedArea(s), s);
    expect(used.map((c) => (c.ok ? c.value.hostId : 0))).toEqual(Array.from({ length: HOSTS }, (_, i) => i + 1));
    expect(used[500]!.ok && used[500]!.value.request.nonce).toBe('00ff00ff00ff00ff');
    expect(used[11]!.ok && used[11]!.value.inp.timestampMs).toBe(2 ** 40 + 12);
  });

  // Host 1000 sits in a run of blocks that differ only in host id and checksum.
  const H = 1000;
  const block = (area: Uint8Array): Uint8Array => sectorOf(area, sectorSize, H);
  const cases: [string, (b: Uint8Array, area: Uint8Array) => void, string][] = [
    ['a flipped byte of the resource name', (b) => (b[81]! ^= 0x01), FormatErrorCode.checksum],
    ['a resource name one byte off, resealed', (b) => { b[81]! ^= 0x01; reseal(b); }, FormatErrorCode.resourceName],
    ['a lockspace name one byte off, resealed', (b) => { b[33]! ^= 0x01; reseal(b); }, FormatErrorCode.lockspaceName],
    ['a flipped byte of the block host id', (b) => (b[24]! ^= 0x01), FormatErrorCode.checksum],
    ['the block host id of the next host, resealed', (b) => { dv(b).setUint16(24, H + 1, true); reseal(b); }, FormatErrorCode.blockHostId],
    ['the checksum of the previous block', (b, area) => dv(b).setUint32(12, dv(sectorOf(area, sectorSize, H - 1)).getUint32(12, true), true), FormatErrorCode.checksum],
    ['a flipped checksum bit', (b) => (b[15]! ^= 0x80), FormatErrorCode.checksum],
    ['a flipped reserved byte next to the host id', (b) => (b[26]! ^= 0x04), FormatErrorCode.checksum],
    ['a flipped last covered byte', (b) => (b[511]! ^= 0x01), FormatErrorCode.checksum],
    ['an mbal above 2^53, resealed', (b) => { dv(b).setUint32(128 + 4, 0x00200000, true); reseal(b); }, FormatErrorCode.fieldRange],
    ['an unknown mode flag, resealed', (b) => { dv(b).setUint32(184, 4, true); reseal(b); }, FormatErrorCode.fieldRange],
    ['a proposed owner past the host ids, resealed', (b) => { dv(b).setUint16(144, HOSTS + 1, true); reseal(b); }, FormatErrorCode.fieldRange],
    ['another version, resealed', (b) => { dv(b).setUint16(4, 2, true); reseal(b); }, FormatErrorCode.version],
    ['another magic', (b) => b.set(Buffer.from('VMLR', 'latin1'), 0), FormatErrorCode.checksum],
    ['another kind, resealed', (b) => { b.set(Buffer.from('VMLR', 'latin1'), 0); reseal(b); }, FormatErrorCode.kind],
  ];

  it.each(cases)('%s: refused as the full decode refuses it, its neighbours still read', (_what, tamper, code) => {
    for (const make of [() => initialAreaBytes(s), () => usedArea(s)]) {
      const area = make();
      tamper(block(area), area);
      const hosts = expectSameAsFullDecode(area, s);
      const bad = hosts[H - 1]!;
      expect(!bad.ok && bad.error.code).toBe(code);
      expect(hosts.filter((c) => !c.ok)).toHaveLength(1);
    }
  });

  it('a reserved byte that is not zero (resealed) is accepted, as the full decode accepts it', () => {
    const area = initialAreaBytes(s);
    block(area)[27] = 0x11;
    reseal(block(area));
    const hosts = expectSameAsFullDecode(area, s);
    expect(hosts.every((c) => c.ok)).toBe(true);
  });

  it('a compat feature bit (resealed) is accepted, as the full decode accepts it', () => {
    const area = initialAreaBytes(s);
    for (const h of [H, H + 1]) {
      dv(sectorOf(area, sectorSize, h)).setUint32(20, 0x10, true);
      reseal(sectorOf(area, sectorSize, h));
    }
    expect(expectSameAsFullDecode(area, s).every((c) => c.ok)).toBe(true);
  });

  it('an area read with another resource name refuses every block as the full decode does', () => {
    expect(expectSameAsFullDecode(initialAreaBytes(s), spec(sectorSize, { resourceName: 'vm-web02' })).every((c) => !c.ok && c.error.code === FormatErrorCode.resourceName)).toBe(true);
  });

  it('a buffer that is not word aligned or ends early reads the same', () => {
    const area = usedArea(s);
    block(area)[81]! ^= 0x01;
    const shifted = new Uint8Array(area.byteLength + 1).subarray(1);
    shifted.set(area);
    expectSameAsFullDecode(shifted, s);
    const short = area.subarray(0, area.byteLength - sectorSize - 100);
    const hosts = expectSameAsFullDecode(short, s);
    expect(hosts.slice(-2).map((c) => !c.ok && c.error.code)).toEqual([FormatErrorCode.truncated, FormatErrorCode.truncated]);
  });
});

describe('checksum by table', () => {
  it('recordChecksum is the format rule (CRC-32 with the checksum field as zero) for any stored checksum', () => {
    const record = new Uint8Array(512);
    let seed = 7;
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < record.length; i++) record[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      expect(recordChecksum(record)).toBe(independentChecksum(record));
      const sector = new Uint8Array(4096 + 512);
      sector.set(record, 1024);
      expect(recordChecksum(sector, 1024)).toBe(independentChecksum(record));
    }
  });

  it('checksumWithHostId gives the checksum of the record with another block host id', () => {
    const s = spec(512, { hostsMax: 40 });
    const area = initialAreaBytes(s);
    for (const [from, to] of [[1, 2], [3, 40], [40, 1], [7, 7], [2, 0x1234]]) {
      const a = sectorOf(area, 512, from!);
      const b = Buffer.from(a);
      dv(b).setUint16(24, to!, true);
      expect(checksumWithHostId(dv(a).getUint32(12, true), from!, to!)).toBe(independentChecksum(b));
    }
  });
});

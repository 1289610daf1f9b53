/**
 * Golden bytes: the on-disk format is frozen. These hex strings were produced
 * once by the codec, checked by hand against helper/format/layout.ts (offsets
 * in the comments) and their checksums recomputed outside Node (Python
 * zlib.crc32). If one of these tests fails, the on-disk format changed: that
 * needs a new format version or a feature bit (docs/format.md), not a new
 * golden string.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeDeltaRecord,
  decodeHostBlock,
  decodeLeaderRecord,
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  type AreaIdentity,
  type DeltaRecord,
  type HostBlock,
  type LeaderRecord,
} from '../../dist/helper/format/index.js';
import { dv, hexLiteral, independentChecksum, RECORD, toHex } from './support.js';

const place = { area: 'golden', block: 'test' };

// ---------------------------------------------------------------- delta record
const DELTA_IDENTITY: AreaIdentity = { sectorSize: 512, hostsMax: 2000, lockspaceName: 'cluster-a', resourceName: '', featuresIncompat: 0, featuresCompat: 0 };
const DELTA_RECORD: DeltaRecord = {
  hostId: 3,
  generation: 0x11_2233_4455,
  timestampMs: 0x0a0b_0c0d_0e0f,
  ownerIoTimeoutMs: 10_000,
  ownerWatchdogFireTimeoutMs: 60_000,
  areaIoTimeoutMs: 10_000,
  ownerFeatures: 0,
  owner: { hostName: 'node-a.example', bootId: '00112233445566778899aabbccddeeff', nonce: '0123456789abcdef' },
  requests: [1, 10, 2000],
};
const DELTA_GOLDEN = hexLiteral(`
  564d4c440100d007000200008f8673c500000000000000000300000000000000
  636c75737465722d610000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  55443322110000000f0e0d0c0b0a00001027000060ea00001027000000000000
  6e6f64652d612e6578616d706c65000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  00112233445566778899aabbccddeeffefcdab89674523010000000000000000
  0102000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0000000000000000000000000000000000000000000000000080000000000000
`);

// --------------------------------------------------------------- leader record
const RESOURCE_IDENTITY: AreaIdentity = { sectorSize: 4096, hostsMax: 16, lockspaceName: 'cluster-a', resourceName: 'vm-web01', featuresIncompat: 0, featuresCompat: 0 };
const LEADER_RECORD: LeaderRecord = {
  lver: 7,
  ownerHostId: 3,
  writerHostId: 5,
  flags: 0,
  ownerGeneration: 0x11_2233_4455,
  timestampMs: 0x0a0b_0c0d_0e0f,
  writerGeneration: 42,
};
const LEADER_GOLDEN = hexLiteral(`
  564d4c5201001000001000003c6137d500000000000000000000000000000000
  636c75737465722d610000000000000000000000000000000000000000000000
  00000000000000000000000000000000766d2d77656230310000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0700000000000000030005000000000055443322110000000f0e0d0c0b0a0000
  2a00000000000000000000000000000000000000000000000000000000000000
  ${'0'.repeat(64 * 10)}
`);

// ------------------------------------------------------------------ host block
const HOST_BLOCK: HostBlock = {
  hostId: 16,
  mbal: 0x1_0003,
  bal: 0x1_0002,
  inp: { hostId: 3, generation: 0x11_2233_4455, lver: 8, timestampMs: 0x0a0b_0c0d_0e0f },
  writerGeneration: 9,
  shared: true,
  sharedGeneration: 9,
  released: false,
  request: { lver: 7, generation: 0x66, nonce: 'fedcba9876543210', flags: 0 },
};
const HOST_BLOCK_GOLDEN = hexLiteral(`
  564d4c42010010000010000043fd307900000000000000001000000000000000
  636c75737465722d610000000000000000000000000000000000000000000000
  00000000000000000000000000000000766d2d77656230310000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0300010000000000020001000000000003000000000000005544332211000000
  08000000000000000f0e0d0c0b0a000009000000000000000100000000000000
  0900000000000000070000000000000066000000000000001032547698badcfe
  ${'0'.repeat(64 * 9)}
`);

// The same block marked released: modeFlags (offset 184) is 3 (MODE_SHARED | MODE_RELEASED), and
// the checksum (offset 12) changes with it (recomputed with Python zlib.crc32).
const RELEASED_HOST_BLOCK: HostBlock = { ...HOST_BLOCK, released: true };
const RELEASED_HOST_BLOCK_GOLDEN = hexLiteral(`
  564d4c420100100000100000b5b1f64100000000000000001000000000000000
  636c75737465722d610000000000000000000000000000000000000000000000
  00000000000000000000000000000000766d2d77656230310000000000000000
  0000000000000000000000000000000000000000000000000000000000000000
  0300010000000000020001000000000003000000000000005544332211000000
  08000000000000000f0e0d0c0b0a000009000000000000000300000000000000
  0900000000000000070000000000000066000000000000001032547698badcfe
  ${'0'.repeat(64 * 9)}
`);

describe('golden bytes', () => {
  it('the golden strings are whole records with valid checksums', () => {
    for (const golden of [DELTA_GOLDEN, LEADER_GOLDEN, HOST_BLOCK_GOLDEN, RELEASED_HOST_BLOCK_GOLDEN]) {
      const bytes = Buffer.from(golden, 'hex');
      expect(bytes.byteLength).toBe(RECORD);
      expect(bytes.readUInt32LE(12)).toBe(independentChecksum(bytes));
    }
  });

  it('delta record encodes to the frozen bytes and decodes from them', () => {
    const sector = encodeDeltaRecord(DELTA_IDENTITY, DELTA_RECORD);
    expect(sector.byteLength).toBe(512);
    expect(toHex(sector.subarray(0, RECORD))).toBe(DELTA_GOLDEN);
    const fromGolden = new Uint8Array(Buffer.from(DELTA_GOLDEN, 'hex'));
    expect(decodeDeltaRecord(fromGolden, { ...DELTA_IDENTITY, kind: 'delta', blockHostId: 3 }, place)).toEqual(DELTA_RECORD);
  });

  it('leader record encodes to the frozen bytes (then 3584 zero bytes) and decodes from them', () => {
    const sector = encodeLeaderRecord(RESOURCE_IDENTITY, LEADER_RECORD);
    expect(sector.byteLength).toBe(4096);
    expect(toHex(sector.subarray(0, RECORD))).toBe(LEADER_GOLDEN);
    expect(sector.subarray(RECORD).every((b) => b === 0)).toBe(true);
    const fromGolden = new Uint8Array(4096);
    fromGolden.set(Buffer.from(LEADER_GOLDEN, 'hex'));
    expect(decodeLeaderRecord(fromGolden, { ...RESOURCE_IDENTITY, kind: 'leader', blockHostId: 0 }, place)).toEqual(LEADER_RECORD);
  });

  it('host block encodes to the frozen bytes (then 3584 zero bytes) and decodes from them', () => {
    const sector = encodeHostBlock(RESOURCE_IDENTITY, HOST_BLOCK);
    expect(sector.byteLength).toBe(4096);
    expect(toHex(sector.subarray(0, RECORD))).toBe(HOST_BLOCK_GOLDEN);
    expect(sector.subarray(RECORD).every((b) => b === 0)).toBe(true);
    const fromGolden = new Uint8Array(4096);
    fromGolden.set(Buffer.from(HOST_BLOCK_GOLDEN, 'hex'));
    expect(decodeHostBlock(fromGolden, { ...RESOURCE_IDENTITY, kind: 'hostBlock', blockHostId: 16 }, place)).toEqual(HOST_BLOCK);
  });

  it('a host block marked released encodes to the frozen bytes (mode flags 3) and decodes from them', () => {
    const sector = encodeHostBlock(RESOURCE_IDENTITY, RELEASED_HOST_BLOCK);
    expect(toHex(sector.subarray(0, RECORD))).toBe(RELEASED_HOST_BLOCK_GOLDEN);
    expect(dv(sector).getUint32(184, true)).toBe(3);
    const fromGolden = new Uint8Array(4096);
    fromGolden.set(Buffer.from(RELEASED_HOST_BLOCK_GOLDEN, 'hex'));
    expect(decodeHostBlock(fromGolden, { ...RESOURCE_IDENTITY, kind: 'hostBlock', blockHostId: 16 }, place)).toEqual(RELEASED_HOST_BLOCK);
  });
});

/** Reads fields with DataView at the offsets docs/format.md gives, without the codec. */
describe('field offsets, read independently of the codec', () => {
  it('common header', () => {
    const sector = encodeDeltaRecord(DELTA_IDENTITY, DELTA_RECORD);
    const v = dv(sector);
    expect(Buffer.from(sector.subarray(0, 4)).toString('latin1')).toBe('VMLD');
    expect(v.getUint32(0, true)).toBe(0x444c4d56);
    expect(v.getUint16(4, true)).toBe(1); // version
    expect(v.getUint16(6, true)).toBe(2000); // hostsMax
    expect(v.getUint32(8, true)).toBe(512); // sector size
    expect(v.getUint32(12, true)).toBe(independentChecksum(sector));
    expect(v.getUint32(16, true)).toBe(0); // incompat features
    expect(v.getUint32(20, true)).toBe(0); // compat features
    expect(v.getUint16(24, true)).toBe(3); // block host id
    expect(sector.subarray(26, 32).every((b) => b === 0)).toBe(true);
    expect(Buffer.from(sector.subarray(32, 41)).toString('latin1')).toBe('cluster-a');
    expect(sector.subarray(41, 128).every((b) => b === 0)).toBe(true); // name padding and empty resource name
  });

  it('delta record body', () => {
    const sector = encodeDeltaRecord(DELTA_IDENTITY, DELTA_RECORD);
    const v = dv(sector);
    expect(v.getBigUint64(128, true)).toBe(0x11_2233_4455n); // generation
    expect(v.getBigUint64(136, true)).toBe(0x0a0b_0c0d_0e0fn); // timestamp
    expect(v.getUint32(144, true)).toBe(10_000); // owner io timeout
    expect(v.getUint32(148, true)).toBe(60_000); // owner watchdog fire timeout
    expect(v.getUint32(152, true)).toBe(10_000); // area io timeout
    expect(v.getUint32(156, true)).toBe(0); // owner features
    expect(Buffer.from(sector.subarray(160, 174)).toString('utf8')).toBe('node-a.example');
    expect(toHex(sector.subarray(224, 240))).toBe('00112233445566778899aabbccddeeff'); // boot id, raw bytes in order
    expect(v.getBigUint64(240, true)).toBe(0x0123456789abcdefn); // nonce, a u64
    expect(sector[256]).toBe(0b0000_0001); // host id 1 = bit 0
    expect(sector[257]).toBe(0b0000_0010); // host id 10 = bit 9
    expect(sector[256 + 249]).toBe(0b1000_0000); // host id 2000 = bit 1999
  });

  it('leader record body', () => {
    const sector = encodeLeaderRecord(RESOURCE_IDENTITY, LEADER_RECORD);
    const v = dv(sector);
    expect(Buffer.from(sector.subarray(0, 4)).toString('latin1')).toBe('VMLR');
    expect(v.getUint32(8, true)).toBe(4096);
    expect(v.getUint16(24, true)).toBe(0);
    expect(Buffer.from(sector.subarray(80, 88)).toString('latin1')).toBe('vm-web01');
    expect(v.getBigUint64(128, true)).toBe(7n); // lver
    expect(v.getUint16(136, true)).toBe(3); // owner host id
    expect(v.getUint16(138, true)).toBe(5); // writer host id
    expect(v.getUint32(140, true)).toBe(0); // flags
    expect(v.getBigUint64(144, true)).toBe(0x11_2233_4455n); // owner generation
    expect(v.getBigUint64(152, true)).toBe(0x0a0b_0c0d_0e0fn); // timestamp
    expect(v.getBigUint64(160, true)).toBe(42n); // writer generation
    expect(sector.subarray(168, 512).every((b) => b === 0)).toBe(true);
  });

  it('host block body', () => {
    const sector = encodeHostBlock(RESOURCE_IDENTITY, HOST_BLOCK);
    const v = dv(sector);
    expect(Buffer.from(sector.subarray(0, 4)).toString('latin1')).toBe('VMLB');
    expect(v.getUint16(24, true)).toBe(16);
    expect(v.getBigUint64(128, true)).toBe(0x1_0003n); // mbal
    expect(v.getBigUint64(136, true)).toBe(0x1_0002n); // bal
    expect(v.getUint16(144, true)).toBe(3); // inp host id
    expect(v.getBigUint64(152, true)).toBe(0x11_2233_4455n); // inp generation
    expect(v.getBigUint64(160, true)).toBe(8n); // inp lver
    expect(v.getBigUint64(168, true)).toBe(0x0a0b_0c0d_0e0fn); // inp timestamp
    expect(v.getBigUint64(176, true)).toBe(9n); // writer generation
    expect(v.getUint32(184, true)).toBe(1); // mode flags: shared
    expect(v.getBigUint64(192, true)).toBe(9n); // shared generation
    expect(v.getBigUint64(200, true)).toBe(7n); // request lver
    expect(v.getBigUint64(208, true)).toBe(0x66n); // request generation
    expect(v.getBigUint64(216, true)).toBe(0xfedcba9876543210n); // request nonce
    expect(v.getUint32(224, true)).toBe(0); // request flags
    expect(sector.subarray(228, 512).every((b) => b === 0)).toBe(true);
  });
});

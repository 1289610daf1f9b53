/**
 * The on-disk layout, in one place. docs/format.md explains it for operators;
 * every number the codecs use comes from here.
 *
 * Every record is RECORD_BYTES long and sits at the start of its own sector;
 * the rest of a 4096-byte sector is written as zeros. All integers are
 * little-endian. A lockspace area is `hostsMax` sectors (host id h in sector
 * h-1); a resource area is `1 + hostsMax` sectors (leader in sector 0, host
 * id h in sector h).
 */

export const FORMAT_VERSION = 1;
export const RECORD_BYTES = 512;
export const SECTOR_SIZES = [512, 4096] as const;
export type SectorSize = (typeof SECTOR_SIZES)[number];
export const HOSTS_MAX_LIMIT = 2000;
/** Range of a lockspace's io timeout. */
export const IO_TIMEOUT_MS_MIN = 1;
export const IO_TIMEOUT_MS_MAX = 600_000;
export const NAME_BYTES_MAX = 48;
export const HOST_NAME_BYTES_MAX = 64;
export const BOOT_ID_BYTES = 16;
/** 2048 bits: one per host id, enough for HOSTS_MAX_LIMIT. */
export const REQUEST_BITMAP_BYTES = 256;

/** Four ASCII letters read as a little-endian u32, so a hex dump shows the letters. */
function magicOf(letters: string): number {
  return Buffer.from(letters, 'latin1').readUInt32LE(0);
}

export const MAGIC = {
  delta: magicOf('VMLD'),
  leader: magicOf('VMLR'),
  hostBlock: magicOf('VMLB'),
} as const;

export type RecordKind = keyof typeof MAGIC;

/** Feature bits. Unknown incompat bits make a reader refuse; unknown compat bits are ignored. */
export const FEATURES_INCOMPAT_KNOWN = 0;
export const FEATURES_COMPAT_KNOWN = 0;

/** Byte offsets of the header every record starts with. */
export const HEADER = {
  magic: 0, // u32
  version: 4, // u16
  hostsMax: 6, // u16
  sectorSize: 8, // u32
  checksum: 12, // u32, CRC-32 of bytes 0..RECORD_BYTES-1 with this field read as zero
  featuresIncompat: 16, // u32
  featuresCompat: 20, // u32
  blockHostId: 24, // u16, 0 for a resource leader
  reserved: 26, // 6 bytes, zero
  lockspaceName: 32, // NAME_BYTES_MAX bytes, NUL padded
  resourceName: 80, // NAME_BYTES_MAX bytes, NUL padded; zero in lockspace records
  end: 128,
} as const;

/** Delta lease (one per host id in a lockspace). */
export const DELTA = {
  generation: 128, // u64
  timestampMs: 136, // u64, owner's monotonic clock; 0 = free
  ownerIoTimeoutMs: 144, // u32, published by the owner
  ownerWatchdogFireTimeoutMs: 148, // u32, 0 = no watchdog
  areaIoTimeoutMs: 152, // u32, fixed at init, authoritative
  ownerFeatures: 156, // u32, feature bits the owner's software supports
  ownerHostName: 160, // HOST_NAME_BYTES_MAX bytes, UTF-8, NUL padded
  ownerBootId: 224, // BOOT_ID_BYTES raw bytes
  ownerNonce: 240, // u64, random per helper incarnation
  reserved: 248, // 8 bytes, zero
  requestBitmap: 256, // REQUEST_BITMAP_BYTES, bit (h-1) asks host h to read its requests
  end: 512,
} as const;

/** Resource leader (sector 0 of a resource area). */
export const LEADER = {
  lver: 128, // u64, lease version; 0 = never acquired
  ownerHostId: 136, // u16, 0 = free
  writerHostId: 138, // u16, host id that wrote this leader
  flags: 140, // u32
  ownerGeneration: 144, // u64
  timestampMs: 152, // u64, writer's monotonic clock at commit (information only)
  writerGeneration: 160, // u64
  end: 168,
} as const;

/** Disk Paxos block of one host id in a resource area. */
export const HOST_BLOCK = {
  mbal: 128, // u64
  bal: 136, // u64
  inpHostId: 144, // u16, proposed owner; 0 = none
  reserved0: 146, // 6 bytes, zero
  inpGeneration: 152, // u64
  inpLver: 160, // u64
  inpTimestampMs: 168, // u64
  writerGeneration: 176, // u64, the block owner's generation when it wrote the block
  modeFlags: 184, // u32, MODE_SHARED
  reserved1: 188, // 4 bytes, zero
  sharedGeneration: 192, // u64, generation holding the shared lease
  requestLver: 200, // u64, migration: lver to follow; 0 = no request
  requestGeneration: 208, // u64
  requestNonce: 216, // u64
  requestFlags: 224, // u32
  end: 228,
} as const;

export const MODE_SHARED = 1;
/** The host released the lease its block's proposal describes (like sanlock's DBLOCK_FL_RELEASED). */
export const MODE_RELEASED = 2;
export const MODE_FLAGS_KNOWN = MODE_SHARED | MODE_RELEASED;
export const LEADER_FLAGS_KNOWN = 0;
export const REQUEST_FLAGS_KNOWN = 0;

export type AreaKind = 'lockspace' | 'resource';

export function isSectorSize(n: number): n is SectorSize {
  return n === 512 || n === 4096;
}

export function areaSectors(kind: AreaKind, hostsMax: number): number {
  return kind === 'lockspace' ? hostsMax : 1 + hostsMax;
}

export function areaBytes(kind: AreaKind, hostsMax: number, sectorSize: SectorSize): number {
  return areaSectors(kind, hostsMax) * sectorSize;
}

/** Sector index, within its area, of host id `hostId`'s record. */
export function hostSector(kind: AreaKind, hostId: number): number {
  return kind === 'lockspace' ? hostId - 1 : hostId;
}

/** The sector 0 record kind of an area, by which `dump` recognises it. */
export function firstRecordKind(kind: AreaKind): RecordKind {
  return kind === 'lockspace' ? 'delta' : 'leader';
}

/** Non-trivial record values shared by the format tests. */
import type { AreaIdentity, DeltaRecord, HostBlock, LeaderRecord, SectorSize } from '../../dist/helper/format/index.js';
import { asciiName } from './support.js';

export const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

/** 48 bytes: the longest lockspace / resource name. */
export const LOCKSPACE_NAME_48 = asciiName('lockspace:', 48);
export const RESOURCE_NAME_48 = asciiName('vm-disk/', 48);

/** 64 bytes of UTF-8 with 1-, 2-, 3- and 4-byte characters. */
export const HOST_NAME_64 = 'hôst-節点-🖥️-' + 'x'.repeat(64 - Buffer.byteLength('hôst-節点-🖥️-', 'utf8'));

export function lockspaceIdentity(sectorSize: SectorSize, hostsMax = 2000): AreaIdentity {
  return { sectorSize, hostsMax, lockspaceName: LOCKSPACE_NAME_48, resourceName: '', featuresIncompat: 0, featuresCompat: 0 };
}

export function resourceIdentity(sectorSize: SectorSize, hostsMax = 2000): AreaIdentity {
  return { sectorSize, hostsMax, lockspaceName: LOCKSPACE_NAME_48, resourceName: RESOURCE_NAME_48, featuresIncompat: 0, featuresCompat: 0 };
}

export function busyDelta(hostId: number): DeltaRecord {
  return {
    hostId,
    generation: MAX_SAFE,
    timestampMs: MAX_SAFE - 1,
    ownerIoTimeoutMs: 0xffffffff,
    ownerWatchdogFireTimeoutMs: 60_000,
    areaIoTimeoutMs: 10_000,
    ownerFeatures: 0x8000_0001,
    owner: { hostName: HOST_NAME_64, bootId: '0123456789abcdeffedcba9876543210', nonce: 'ffffffffffffffff' },
    requests: [1, 2, 8, 9, 255, 256, 1024, 1999, 2000],
  };
}

export function busyLeader(): LeaderRecord {
  return {
    lver: MAX_SAFE,
    ownerHostId: 2000,
    ownerGeneration: MAX_SAFE - 2,
    timestampMs: 2 ** 52 + 1,
    writerHostId: 1999,
    writerGeneration: MAX_SAFE - 3,
    flags: 0,
  };
}

export function busyHostBlock(hostId: number): HostBlock {
  return {
    hostId,
    mbal: MAX_SAFE,
    bal: MAX_SAFE - 2000,
    inp: { hostId: 2000, generation: MAX_SAFE - 1, lver: MAX_SAFE - 4, timestampMs: 2 ** 53 - 5 },
    writerGeneration: 2 ** 40 + 7,
    shared: true,
    sharedGeneration: MAX_SAFE - 6,
    released: true,
    request: { lver: MAX_SAFE - 7, generation: 123_456_789_012_345, nonce: '8000000000000001', flags: 0 },
  };
}

import type { BlockIdentity } from './disk-facts.js';
import { identified, unidentified, type IdentityResult } from './identity-result.js';
import { shown } from './refusal.js';

/**
 * A block device's identity from the stable names the shell found. The
 * kinds are ranked here rather than trusted in the order given, so two hosts
 * whose tools list the same names differently still agree: an LVM volume's
 * uuids first (the volume moves with its VG), then the WWN, then the serial;
 * a loop device is its backing file; a partition is its disk's identity with
 * `-partN`. The device's path (/dev/dm-3, /dev/sdb) is never used: it
 * differs between hosts and between boots.
 */

const RANK: Readonly<Record<BlockIdentity['kind'], number>> = { lvm: 0, wwn: 1, serial: 2, partition: 3, loop: 4 };
const LVM_UUID = /^[A-Za-z0-9]{32}$/;
/** Longest WWN or serial, in bytes after normalisation (the shell reads at most this many; WWNs are a few dozen characters). */
export const DEVICE_NAME_BYTES_MAX = 256;

/**
 * A WWN or serial written one way, the one place it is normalised (the shell
 * keeps what this accepts, the policy names what it returns): trimmed, each
 * run of whitespace inside made one `_` (`t10.ATA     QEMU HARDDISK` is
 * `t10.ATA_QEMU_HARDDISK`), then 1..DEVICE_NAME_BYTES_MAX printable ASCII
 * characters; undefined when it is not.
 */
export function deviceNameValue(raw: string): string | undefined {
  const value = raw.trim().replace(/\s+/g, '_');
  return value.length >= 1 && value.length <= DEVICE_NAME_BYTES_MAX && /^[\x21-\x7e]+$/.test(value) ? value : undefined;
}
const PARTITIONS_MAX = 4096;
/** A partition of a partition does not exist; two levels allow for a loop-backed partitioned file. */
const NESTING_LEVELS_MAX = 2;

export type BackingFile = (resolvedPath: string) => IdentityResult;

function deviceName(prefix: string, value: string): IdentityResult {
  const name = deviceNameValue(value);
  if (name === undefined) return unidentified(`its ${prefix} ${shown(value)} is not 1..${DEVICE_NAME_BYTES_MAX} printable characters`);
  // WWNs are hexadecimal and written in either case; serials are compared as the device reports them.
  return identified(`${prefix}:${prefix === 'wwn' ? name.toLowerCase() : name}`);
}

function named(id: BlockIdentity, backingFile: BackingFile, depth: number): IdentityResult {
  switch (id.kind) {
    case 'lvm':
      if (!LVM_UUID.test(id.vgUuid) || !LVM_UUID.test(id.lvUuid)) return unidentified(`its LVM uuids ${shown(id.vgUuid)}/${shown(id.lvUuid)} are not 32 letters and digits each`);
      return identified(`lvm:${id.vgUuid}/${id.lvUuid}`);
    case 'wwn':
    case 'serial':
      return deviceName(id.kind, id.value);
    case 'loop':
      return backingFile(id.backingFile);
    case 'partition': {
      if (!Number.isInteger(id.number) || id.number < 1 || id.number > PARTITIONS_MAX) return unidentified(`its partition number ${id.number} is not 1..${PARTITIONS_MAX}`);
      if (depth >= NESTING_LEVELS_MAX) return unidentified('its partition nesting is deeper than any real device');
      const whole = named(id.of, backingFile, depth + 1);
      return whole.ok ? identified(`${whole.identity}-part${id.number}`, whole.wholeDisk ?? whole.identity) : whole;
    }
  }
}

export function blockIdentity(resolvedPath: string, identities: readonly BlockIdentity[], backingFile: BackingFile): IdentityResult {
  const ranked = [...identities].sort((a, b) => RANK[a.kind] - RANK[b.kind]);
  const reasons: string[] = [];
  for (const id of ranked) {
    const result = named(id, backingFile, 0);
    if (result.ok) return result;
    reasons.push(result.reason);
  }
  if (reasons.length > 0) return unidentified(reasons.join('; '));
  return unidentified(`block device ${shown(resolvedPath)} has no stable name (no LVM uuid, WWN or serial), and its device name differs between hosts`);
}

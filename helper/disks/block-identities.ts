import { DEVICE_NAME_BYTES_MAX, deviceNameValue } from '../../policy/block-identity.js';
import type { BlockIdentity } from '../../policy/disk-facts.js';
import { errnoCode } from './errors.js';

/**
 * The stable names of a block device, read from sysfs: what every host of the
 * cluster calls the same device, unlike /dev/dm-3 or /dev/sdb. Best first:
 * LVM uuids (the volume itself, whatever carries it), then the device's world
 * wide name, then its serial, then a loop device's backing file. A
 * device-mapper map that is not an LVM volume (multipath) is named by the
 * devices it is stacked on, when they all agree.
 *
 * An attribute that is absent (ENOENT) just means "no such name". Any other
 * failure is thrown: listing fewer names than another host lists could make
 * two hosts pick different names for one disk, so the caller reports the
 * path as missing rather than guessing.
 */

/** Reads sysfs and resolves paths, each call with the caller's deadline. */
export interface SysfsAccess {
  /** The attribute's text, at most `bytesMax` + 1 bytes of it (more means: too long), or undefined when it does not exist. */
  text(path: string, bytesMax: number): Promise<string | undefined>;
  /** realpath(); undefined when the path does not exist. */
  realpath(path: string): Promise<string | undefined>;
  /** The names in a directory; undefined when it does not exist. */
  list(path: string): Promise<readonly string[] | undefined>;
}

/** Longest attribute value read: the policy's limit on a device name, plus room for whitespace around it. */
export const SYSFS_VALUE_BYTES_MAX = DEVICE_NAME_BYTES_MAX + 64;
/** Longest loop backing file name (PATH_MAX): a cut-off name could be another file's. */
export const BACKING_FILE_BYTES_MAX = 4096;

/** `LVM-` then the VG uuid and the LV uuid, 32 characters each. Layer devices (`-real`, `-cow`, `-tpool`) carry a suffix and are not volumes anyone names. */
const LVM_DM_UUID = /^LVM-([A-Za-z0-9]{32})([A-Za-z0-9]{32})$/;

/** A name as the policy normalises it (policy/block-identity.ts), or undefined when the policy would not take it. */
function nameValue(text: string | undefined): string | undefined {
  return text === undefined || Buffer.byteLength(text) > SYSFS_VALUE_BYTES_MAX ? undefined : deviceNameValue(text);
}

async function firstName(sysfs: SysfsAccess, paths: readonly string[]): Promise<string | undefined> {
  for (const path of paths) {
    const value = nameValue(await sysfs.text(path, SYSFS_VALUE_BYTES_MAX));
    if (value !== undefined) return value;
  }
  return undefined;
}

/** Names of the device whose sysfs directory is `base` (not looking at partitions). */
async function deviceIdentities(sysfs: SysfsAccess, base: string): Promise<BlockIdentity[]> {
  const identities: BlockIdentity[] = [];
  const lvm = LVM_DM_UUID.exec((await sysfs.text(`${base}/dm/uuid`, SYSFS_VALUE_BYTES_MAX))?.trim() ?? '');
  if (lvm) identities.push({ kind: 'lvm', vgUuid: lvm[1]!, lvUuid: lvm[2]! });
  // A namespace's own `wwid` (NVMe) is more specific than its parent device's (SCSI has only device/wwid).
  const wwn = await firstName(sysfs, [`${base}/wwid`, `${base}/device/wwid`]);
  if (wwn !== undefined) identities.push({ kind: 'wwn', value: wwn });
  // `serial` is virtio-blk's own; device/serial of an NVMe namespace is its controller's, shared
  // by every namespace of it, which is why a WWN (above) ranks first.
  const serial = await firstName(sysfs, [`${base}/serial`, `${base}/device/serial`]);
  if (serial !== undefined) identities.push({ kind: 'serial', value: serial });
  const backing = (await sysfs.text(`${base}/loop/backing_file`, BACKING_FILE_BYTES_MAX))?.replace(/\n$/, '');
  if (backing !== undefined && Buffer.byteLength(backing) > BACKING_FILE_BYTES_MAX) throw new Error(`${base}/loop/backing_file is longer than ${BACKING_FILE_BYTES_MAX} bytes`);
  // "(deleted)": the file is gone, and its name may already belong to another file.
  if (backing !== undefined && backing.startsWith('/') && !backing.endsWith(' (deleted)')) {
    const backingFile = await sysfs.realpath(backing);
    if (backingFile !== undefined) identities.push({ kind: 'loop', backingFile });
  }
  return identities;
}

/** Devices a device-mapper device is stacked on that are looked at; a map over more has no identity from them. */
export const DM_SLAVES_MAX = 64;
/** device-mapper devices stacked on device-mapper devices (a partition map on a multipath map): levels followed. */
const DM_LEVELS_MAX = 3;

/**
 * A device-mapper device that is not an LVM volume (a multipath map
 * `mpath-<wwid>`, a partition or crypt map over a disk) writes to the devices
 * in its `slaves/`: it is named by their names when every one of them has the
 * same names (the paths of one multipath LUN), and has none otherwise.
 */
async function slaveIdentities(sysfs: SysfsAccess, base: string, own: readonly BlockIdentity[], depth: number): Promise<BlockIdentity[]> {
  if (own.some((id) => id.kind === 'lvm') || depth >= DM_LEVELS_MAX) return [];
  const uuid = await sysfs.text(`${base}/dm/uuid`, SYSFS_VALUE_BYTES_MAX);
  if (uuid === undefined) return [];
  const slaves = await sysfs.list(`${base}/slaves`);
  if (slaves === undefined || slaves.length === 0) return [];
  if (slaves.length > DM_SLAVES_MAX) throw new Error(`${base}/slaves lists ${slaves.length} devices, more than the ${DM_SLAVES_MAX} looked at`);
  let agreed: BlockIdentity[] | undefined;
  for (const slave of [...slaves].sort()) {
    const names = await identitiesAt(sysfs, `${base}/slaves/${slave}`, depth + 1);
    if (names.length === 0) return [];
    if (agreed !== undefined && JSON.stringify(agreed) !== JSON.stringify(names)) return [];
    agreed = names;
  }
  // kpartx names a partition map `part<N>-<map uuid>`: partition N of what it is stacked on.
  const partition = /^part([0-9]{1,4})-/.exec(uuid.trim());
  if (partition && agreed !== undefined) return agreed.map((of): BlockIdentity => ({ kind: 'partition', of, number: Number(partition[1]) }));
  return agreed ?? [];
}

/** Every stable name of the block device whose sysfs directory is `base`, partitions and device-mapper maps followed. */
async function identitiesAt(sysfs: SysfsAccess, base: string, depth: number): Promise<BlockIdentity[]> {
  const own = await deviceIdentities(sysfs, base);
  const stacked = await slaveIdentities(sysfs, base, own, depth);
  if (stacked.length > 0) return [...own, ...stacked];
  const partition = await sysfs.text(`${base}/partition`, SYSFS_VALUE_BYTES_MAX);
  if (partition === undefined) return own;
  const number = Number(partition.trim());
  if (!Number.isSafeInteger(number) || number < 1) throw new Error(`${base}/partition holds ${JSON.stringify(partition)}, not a partition number`);
  // dev/block/M:m is a symlink into /sys/devices/.../disk/partition: its `..` is the whole disk.
  const parent = await deviceIdentities(sysfs, `${base}/..`);
  return [...own, ...parent.map((of): BlockIdentity => ({ kind: 'partition', of, number }))];
}

/** Every stable name of block device `device` ("major:minor"), best first; empty when it has none. */
export async function blockIdentities(sysfs: SysfsAccess, sysfsRoot: string, device: string): Promise<BlockIdentity[]> {
  return identitiesAt(sysfs, `${sysfsRoot}/dev/block/${device}`, 0);
}

/** Wraps a call so that ENOENT becomes undefined and everything else passes through. */
export async function absentAsUndefined<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

import { existsSync, readFileSync } from 'node:fs';

/**
 * Block-device facts from sysfs (Node has no ioctl). Called only from I/O
 * worker threads: sysfs does not hang, but the callers' neighbours (stat of a
 * file on NFS) can, so all of it stays off the main thread.
 */

/** Linux dev_t (as fstat reports it with bigint: true) to "major:minor". */
export function deviceNumber(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function readSysfsInteger(path: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The sysfs directory holding `queue/` for a device: itself, or its parent disk for a partition. */
function queueDirectory(device: string): string | undefined {
  const base = `/sys/dev/block/${device}`;
  if (existsSync(`${base}/queue`)) return base;
  if (existsSync(`${base}/partition`) && existsSync(`${base}/../queue`)) return `${base}/..`;
  return undefined;
}

/** Logical block size of a block device, or undefined when the device is not a block device (tmpfs, NFS). */
export function logicalBlockSize(device: string): number | undefined {
  const dir = queueDirectory(device);
  return dir === undefined ? undefined : readSysfsInteger(`${dir}/queue/logical_block_size`);
}

/** Size in bytes of a block device (sysfs counts 512-byte units whatever the sector size). */
export function blockDeviceBytes(device: string): number | undefined {
  const sectors = readSysfsInteger(`/sys/dev/block/${device}/size`);
  return sectors === undefined ? undefined : sectors * 512;
}

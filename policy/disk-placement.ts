import { posix } from 'node:path';
import type { DiskFacts } from './disk-facts.js';
import { diskLabel, sourcePath, type DomainDisk } from './domain-disk.js';
import { PolicyRule, refuse, shown } from './refusal.js';

/**
 * Lease roots and disks are disjoint (SPEC section 1): qemu runs guest code
 * and must never open lease storage, even read-only. A disk is refused when
 * its path as written or its path resolved on this host lies in a lease root
 * as written or as resolved on this host, or when it is one of the block
 * devices a lease root holds (the same device node under another name:
 * /dev/mapper/vg_leases-cluster, /dev/dm-4), or when a directory above it is
 * a lease root's directory (device and inode): the root bind-mounted
 * elsewhere.
 */

function below(path: string, root: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

export function checkDiskPlacement(disk: DomainDisk, leaseRoots: readonly string[], facts: DiskFacts): void {
  const path = sourcePath(disk);
  if (path === undefined) return;
  const label = diskLabel(disk.target);
  const found = facts.paths.get(path);
  const resolved = found !== undefined && 'resolvedPath' in found ? found.resolvedPath : undefined;
  const written = posix.normalize(path);
  const writtenIn = leaseRoots.find((root) => below(written, root));
  if (writtenIn !== undefined) refuse(PolicyRule.diskInLeaseRoot, label, `has source ${shown(path)} in lease root ${writtenIn}: qemu must never open lease storage`);
  if (found?.kind === 'unknown') refuse(PolicyRule.diskFacts, label, `has source ${shown(path)}, which could not be inspected on this host, so it cannot be kept out of the lease roots: ${found.reason}`);
  for (const root of leaseRoots) {
    const rootFacts = facts.leaseRoots.get(root);
    if (rootFacts === undefined) refuse(PolicyRule.diskFacts, label, `cannot be checked against lease root ${root}: no facts were gathered for the root`);
    if (rootFacts.unknown !== undefined) refuse(PolicyRule.diskFacts, label, `cannot be checked against lease root ${root}: ${rootFacts.unknown}`);
    const roots = [root, ...(rootFacts.resolvedPath !== undefined && rootFacts.resolvedPath !== root ? [rootFacts.resolvedPath] : [])];
    for (const at of roots) {
      if (resolved !== undefined && below(resolved, at)) {
        const via = at === root ? '' : ` (which resolves on this host to ${at})`;
        refuse(PolicyRule.diskInLeaseRoot, label, `has source ${shown(path)} (resolved on this host to ${shown(resolved)}) in lease root ${root}${via}: qemu must never open lease storage`);
      }
    }
    if (found?.kind === 'file' && rootFacts.directory !== undefined && found.directories.includes(rootFacts.directory)) {
      refuse(PolicyRule.diskInLeaseRoot, label, `has source ${shown(path)}, resolved on this host to ${shown(found.resolvedPath)}, below directory ${rootFacts.directory}, which is lease root ${root} mounted elsewhere (a bind mount): qemu must never open lease storage`);
    }
    if (found?.kind === 'block' && rootFacts.blockDevices.includes(found.rdev)) {
      refuse(PolicyRule.diskInLeaseRoot, label, `has source ${shown(path)}, block device ${found.rdev}, which lease root ${root} holds: qemu must never open lease storage`);
    }
  }
}

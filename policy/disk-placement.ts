import { posix } from 'node:path';
import type { DiskFacts } from './disk-facts.js';
import { diskLabel, sourcePath, type DomainDisk } from './domain-disk.js';
import { PolicyRule, refuse, shown } from './refusal.js';

/**
 * Lease roots and disks are disjoint (SPEC section 1): qemu runs guest code
 * and must never open lease storage, even read-only. A disk is refused when
 * its path as written or its path resolved on this host lies in a lease root.
 */

function rootHolding(path: string, leaseRoots: readonly string[]): string | undefined {
  return leaseRoots.find((root) => path === root || path.startsWith(`${root}/`));
}

export function checkDiskPlacement(disk: DomainDisk, leaseRoots: readonly string[], facts: DiskFacts): void {
  const path = sourcePath(disk);
  if (path === undefined) return;
  const found = facts.paths.get(path);
  const resolved = found !== undefined && found.kind !== 'missing' ? found.resolvedPath : undefined;
  const candidates = [{ at: posix.normalize(path), via: '' }];
  if (resolved !== undefined) candidates.push({ at: resolved, via: ` (resolved on this host to ${shown(resolved)})` });
  for (const { at, via } of candidates) {
    const root = rootHolding(at, leaseRoots);
    if (root !== undefined) refuse(PolicyRule.diskInLeaseRoot, diskLabel(disk.target), `has source ${shown(path)}${via} in lease root ${root}: qemu must never open lease storage`);
  }
}

import { posix } from 'node:path';
import type { DiskFacts, PathFacts } from './disk-facts.js';
import { sourcePath, type DomainDisk } from './domain-disk.js';
import { leaseLabel, type DomainLease } from './domain-lease.js';
import type { PolicyLease } from './policy-lease.js';
import { PolicyRule, refuse, shown } from './refusal.js';

/**
 * The leases a domain names itself with `<lease>`: each exclusive, each
 * strictly below a lease root, none on one of the VM's own disks (a domain
 * whose "lease" is its disk image would have the helper write lease records
 * over the guest's data).
 */

/** What makes two paths the same object on this host: device and inode of a file, device number of a block device. */
function objectOf(facts: PathFacts | undefined): string | undefined {
  if (facts?.kind === 'file') return `file ${facts.device}:${facts.inode}`;
  if (facts?.kind === 'block') return `block device ${facts.rdev}`;
  return undefined;
}

function checkNotOnDisk(lease: DomainLease, disks: readonly DomainDisk[], facts: DiskFacts): void {
  const leaseObject = objectOf(facts.paths.get(lease.path));
  for (const disk of disks) {
    const path = sourcePath(disk);
    if (path === undefined) continue;
    if (posix.normalize(path) === lease.path) refuse(PolicyRule.leaseOnDisk, leaseLabel(lease.key), `targets ${shown(lease.path)}, the source of disk ${disk.target}`);
    if (leaseObject !== undefined && objectOf(facts.paths.get(path)) === leaseObject) {
      refuse(PolicyRule.leaseOnDisk, leaseLabel(lease.key), `targets ${shown(lease.path)}, the same ${leaseObject} as disk ${disk.target}'s source ${shown(path)}`);
    }
  }
}

function checkInLeaseRoot(lease: DomainLease, leaseRoots: readonly string[]): void {
  if (leaseRoots.some((root) => lease.path.startsWith(`${root}/`))) return;
  refuse(PolicyRule.leaseOutsideRoots, leaseLabel(lease.key), `targets ${shown(lease.path)}, which is not below a lease root (${leaseRoots.join(', ')})`);
}

function checkNotRepeated(lease: DomainLease, earlier: readonly DomainLease[]): void {
  for (const other of earlier) {
    if (other.lockspace === lease.lockspace && other.key === lease.key) refuse(PolicyRule.leaseDuplicate, leaseLabel(lease.key), `names lockspace ${lease.lockspace} resource ${lease.key} a second time`);
    if (other.path === lease.path && other.offset === lease.offset) refuse(PolicyRule.leaseDuplicate, leaseLabel(lease.key), `targets ${shown(lease.path)} offset ${lease.offset}, the area of ${leaseLabel(other.key)}`);
  }
}

export function explicitLeases(leases: readonly DomainLease[], disks: readonly DomainDisk[], leaseRoots: readonly string[], facts: DiskFacts): PolicyLease[] {
  return leases.map((lease, i) => {
    checkInLeaseRoot(lease, leaseRoots);
    checkNotOnDisk(lease, disks, facts);
    checkNotRepeated(lease, leases.slice(0, i));
    return {
      lockspace: lease.lockspace,
      resource: lease.key,
      path: lease.path,
      offset: lease.offset,
      mode: 'exclusive',
      reason: `${leaseLabel(lease.key)} of the domain (lockspace ${lease.lockspace})`,
      origin: { kind: 'lease-element', index: lease.index },
    };
  });
}

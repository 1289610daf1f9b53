import type { DiskFacts } from './disk-facts.js';
import { diskIdentity } from './disk-identity.js';
import { diskLabel, isWritable, sourcePath, type DomainDisk } from './domain-disk.js';
import type { AutoDiskLeases } from './host-policy.js';
import type { PolicyLease, UnleasedDisk } from './policy-lease.js';
import { PolicyRule, refuse, shown } from './refusal.js';
import { diskResourceName } from './resource-name.js';

/**
 * Disk leases derived from a domain's disks: one per writable disk,
 * exclusive, shared for `<shareable/>` disks, none for read-only disks and
 * cdroms. A disk named twice in one domain gets one lease: shared when every
 * one of its elements is `<shareable/>`, refused otherwise (one qemu writing
 * one image through two drives without coordination corrupts it just as two
 * VMs would).
 *
 * A partition's disk also takes a shared lease on its whole disk's identity:
 * a VM on the whole disk (exclusive) and a VM on one of its partitions then
 * exclude each other, while VMs on different partitions of one disk share
 * it. One domain naming a disk and a partition of it is refused like a disk
 * named twice.
 */

/** Cache modes that bypass the host page cache: a write the guest saw completed is on the storage, not in this host's memory when the lease is lost. */
const DIRECT_CACHE_MODES: readonly string[] = ['none', 'directsync'];

export interface AutoLeaseSet {
  readonly leases: PolicyLease[];
  readonly unleased: UnleasedDisk[];
}

function checkCache(disk: DomainDisk): void {
  if (disk.cache !== undefined && DIRECT_CACHE_MODES.includes(disk.cache)) return;
  const mode = disk.cache === undefined ? "writeback (libvirt's default: no cache attribute)" : disk.cache;
  refuse(PolicyRule.pageCache, diskLabel(disk.target), `is writable and leased but its cache mode ${mode} uses the host page cache: writes could reach the disk after the lease is lost; use cache='none' or cache='directsync'`);
}

function leaseFor(identity: string, group: readonly DomainDisk[], auto: AutoDiskLeases): PolicyLease {
  const [first, second] = group;
  if (first === undefined) throw new Error('a disk group is never empty');
  const exclusive = group.some((d) => !d.shareable);
  if (second !== undefined && exclusive) {
    refuse(PolicyRule.diskDuplicate, diskLabel(second.target), `is the same disk as ${first.target} (identity ${shown(identity)}), and not every one of its disks is <shareable/>`);
  }
  const resource = diskResourceName(identity);
  const shared = !exclusive;
  const targets = group.map((d) => d.target).join(', ');
  return {
    lockspace: auto.lockspace,
    resource,
    path: `${auto.directory}/${resource}.lease`,
    offset: 0,
    mode: shared ? 'shared' : 'exclusive',
    reason: `${shared ? 'shareable' : 'writable'} disk ${targets} (identity ${shown(identity)})`,
    origin: { kind: 'auto-disk', target: first.target, identity },
  };
}

/** The file (device:inode) or block device (rdev) on this host a disk's source is, whatever name led to it. */
function objectOf(disk: DomainDisk, facts: DiskFacts): string | undefined {
  const path = sourcePath(disk);
  const found = path === undefined ? undefined : facts.paths.get(path);
  if (found?.kind === 'file') return `file ${found.device}:${found.inode}`;
  if (found?.kind === 'block') return `block device ${found.rdev}`;
  return undefined;
}

/** DISKS must come sorted by target: the result, and which refusal comes first, then do not depend on the XML's order. */
export function autoLeases(disks: readonly DomainDisk[], auto: AutoDiskLeases, facts: DiskFacts): AutoLeaseSet {
  const groups = new Map<string, DomainDisk[]>();
  /** Identity of each file or device already seen: one object named by two identities (a bind mount) is still one disk. */
  const objects = new Map<string, string>();
  /** Partition disks by the identity of their whole disk. */
  const wholes = new Map<string, DomainDisk[]>();
  const unleased: UnleasedDisk[] = [];
  for (const disk of disks.filter(isWritable)) {
    if (!auto.enabled) {
      unleased.push({ target: disk.target, reason: 'auto disk leases are off in the host policy' });
      continue;
    }
    const found = diskIdentity(disk, auto, facts);
    if (!found.ok) {
      // A deadline or an I/O error is not "this disk has no identity": leaving it unleased would let a second writer in.
      if (found.undetermined === true) refuse(PolicyRule.diskFacts, diskLabel(disk.target), `is writable and its identity could not be determined: ${found.reason}`);
      if (auto.requireForWritableDisks) refuse(PolicyRule.diskUnleased, diskLabel(disk.target), `is writable but gets no lease: ${found.reason}`);
      unleased.push({ target: disk.target, reason: found.reason });
      continue;
    }
    checkCache(disk);
    const object = objectOf(disk, facts);
    const identity = (object === undefined ? undefined : objects.get(object)) ?? found.identity;
    if (object !== undefined) objects.set(object, identity);
    groups.set(identity, [...(groups.get(identity) ?? []), disk]);
    if (found.ok && found.wholeDisk !== undefined) wholes.set(found.wholeDisk, [...(wholes.get(found.wholeDisk) ?? []), disk]);
  }
  const leases = [...groups].map(([identity, group]) => leaseFor(identity, group, auto));
  for (const [whole, parts] of wholes) {
    const same = groups.get(whole);
    if (same !== undefined) {
      const [first] = same;
      if ([...same, ...parts].every((d) => d.shareable)) continue;
      refuse(PolicyRule.diskDuplicate, diskLabel(parts[0]!.target), `is a partition of disk ${first!.target}'s disk (identity ${shown(whole)}), and not every one of them is <shareable/>`);
    }
    leases.push(wholeDiskLease(whole, parts, auto));
  }
  return { leases, unleased };
}

/** The shared lease a partition's disk takes on its whole disk. */
function wholeDiskLease(whole: string, parts: readonly DomainDisk[], auto: AutoDiskLeases): PolicyLease {
  const resource = diskResourceName(whole);
  return {
    lockspace: auto.lockspace,
    resource,
    path: `${auto.directory}/${resource}.lease`,
    offset: 0,
    mode: 'shared',
    reason: `partition disk ${parts.map((d) => d.target).join(', ')} on whole disk (identity ${shown(whole)}): shared, so the whole disk cannot be leased exclusively meanwhile`,
    origin: { kind: 'auto-disk', target: parts[0]!.target, identity: whole },
  };
}

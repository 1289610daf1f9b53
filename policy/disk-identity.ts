import { blockIdentity } from './block-identity.js';
import type { DiskFacts } from './disk-facts.js';
import type { DomainDisk } from './domain-disk.js';
import { backingFileIdentity, fileIdentity } from './file-identity.js';
import type { AutoDiskLeases } from './host-policy.js';
import { undetermined, unidentified, type IdentityResult } from './identity-result.js';
import { networkIdentity } from './network-identity.js';
import { shown } from './refusal.js';

/**
 * The cluster-wide identity of a disk (SPEC section 6): the same disk gets
 * the same identity on every host and from every domain, whatever path or
 * device name leads to it, so its lease is the same lease everywhere. The
 * facts say what the source path is on this host; the disk element says how
 * the domain names it.
 */

function pathIdentity(path: string, auto: AutoDiskLeases, facts: DiskFacts): IdentityResult {
  const found = facts.paths.get(path);
  const roots = auto.sharedFileRoots;
  switch (found?.kind) {
    case undefined:
      return undetermined(`no facts were gathered for ${shown(path)}`);
    case 'unknown':
      return undetermined(`${shown(path)} could not be inspected on this host: ${found.reason}`);
    case 'missing':
      return unidentified(`${shown(path)} does not exist on this host: ${found.reason}`);
    case 'other':
      return unidentified(`${shown(path)} is a ${found.what}, not a disk image`);
    case 'file':
      // Each name of a hard-linked file would be an identity of its own, each with its own lease.
      if (found.links !== 1) return unidentified(`${shown(path)} has ${found.links} hard links: each of its names would get a lease of its own`);
      return fileIdentity(path, found.resolvedPath, found.device, roots, facts);
    case 'block':
      return blockIdentity(found.resolvedPath, found.identities, (backing) => backingFileIdentity(backing, roots, facts));
  }
}

export function diskIdentity(disk: DomainDisk, auto: AutoDiskLeases, facts: DiskFacts): IdentityResult {
  const source = disk.source;
  switch (source.kind) {
    case 'empty':
      return unidentified('it has no source');
    case 'unsupported':
      return unidentified(`it is a ${disk.type} disk (${source.what}), for which the policy derives no identity`);
    case 'network':
      return networkIdentity(source.protocol, source.name, source.hosts);
    case 'path':
      return pathIdentity(source.path, auto, facts);
  }
}

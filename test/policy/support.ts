import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseHostPolicy, parseDomainXml, type DiskFacts, type DomainDescription, type HostPolicy, type LeaseRootFacts, type PathFacts, type SharedRootFacts, type PolicyRefusal } from '../../dist/policy/index.js';

export const SHIM = '/usr/local/libexec/vmlease/qemu-shim';

/** The host policy most tests decide under: NFS-shared file roots, a file and an LVM lease root, leases required. */
export function hostPolicy(overrides: { enabled?: boolean; requireForWritableDisks?: boolean } = {}): HostPolicy {
  const enabled = overrides.enabled ?? true;
  return parseHostPolicy('/etc/vmlease/policy.json', {
    leaseRoots: ['/var/lib/vmlease/leases', '/dev/vg_leases'],
    autoDiskLeases: {
      enabled,
      lockspace: 'cluster',
      directory: '/var/lib/vmlease/leases/disks',
      requireForWritableDisks: overrides.requireForWritableDisks ?? enabled,
      sharedFileRoots: [
        { name: 'vmstore', path: '/srv/nfs/vms' },
        { name: 'iso', path: '/srv/nfs/iso' },
      ],
    },
    onLockFailure: 'kill',
  });
}

export function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/${name}.xml`, import.meta.url), 'utf8');
}

export function domainOf(xml: string): DomainDescription {
  const result = parseDomainXml(xml);
  if (!result.ok) throw new Error(`fixture refused: ${result.refusal.message}`);
  return result.domain;
}

export function refusalOf(xml: string | Uint8Array): PolicyRefusal {
  const result = parseDomainXml(xml);
  if (result.ok) throw new Error('the domain XML was accepted');
  return result.refusal;
}

/** A refusal, checked in full: rule, element, and the whole message (which starts with both). */
export function expectRefusal(refusal: PolicyRefusal, rule: string, element: string, why: string): void {
  expect(refusal).toEqual({ rule, element, message: `${rule}: ${element} ${why}` });
}

/** The shares are mounted where the policy says on this host unless a test says otherwise. */
export const SHARED_ROOTS: Readonly<Record<string, string | undefined>> = { '/srv/nfs/vms': '/srv/nfs/vms', '/srv/nfs/iso': '/srv/nfs/iso' };

/** The lease roots are where the policy says, and hold no block device, unless a test says otherwise. */
export const LEASE_ROOTS: Readonly<Record<string, LeaseRootFacts>> = {
  '/var/lib/vmlease/leases': { resolvedPath: '/var/lib/vmlease/leases', blockDevices: [] },
  '/dev/vg_leases': { resolvedPath: '/dev/vg_leases', blockDevices: [] },
};

/** The device shared roots (and, by default, files in them: see file()) are on. */
export const SHARE_DEVICE = '0:52';

/** A shared root given as a path is resolved there and on SHARE_DEVICE; undefined: it cannot be resolved. */
export function factsOf(
  paths: Record<string, PathFacts>,
  sharedRoots: Readonly<Record<string, string | undefined | SharedRootFacts>> = SHARED_ROOTS,
  leaseRoots: Readonly<Record<string, LeaseRootFacts>> = LEASE_ROOTS,
): DiskFacts {
  const rootFacts = (at: string | undefined | SharedRootFacts): SharedRootFacts => (at === undefined ? {} : typeof at === 'string' ? { resolvedPath: at, device: SHARE_DEVICE } : at);
  const shared = Object.entries(sharedRoots).map(([root, at]): [string, SharedRootFacts] => [root, rootFacts(at)]);
  return { paths: new Map(Object.entries(paths)), sharedRoots: new Map(shared), leaseRoots: new Map(Object.entries(leaseRoots)) };
}

let inode = 1000;
/** A regular file that is its own path on this host, on the NFS device unless said otherwise. */
export function file(resolvedPath: string, identity: { device?: string; inode?: string; links?: number; directories?: readonly string[] } = {}): PathFacts {
  inode += 1;
  return { kind: 'file', resolvedPath, device: identity.device ?? '0:52', inode: identity.inode ?? String(inode), links: identity.links ?? 1, directories: identity.directories ?? [] };
}

export const VG_UUID = 'Xk3pQ9vL2mN8rT5wY7zA1bC4dE6fG0hJ';
export const LV_UUID = 'Lm2nP4qR6sT8uV0wX2yZ4aB6cD8eF0gH';

import { ADMIN_LEASES_MAX } from '../protocol/admin-messages.js';
import { autoLeases } from './auto-leases.js';
import type { DiskFacts } from './disk-facts.js';
import { checkDiskPlacement } from './disk-placement.js';
import { sourcePath } from './domain-disk.js';
import { leaseLabel } from './domain-lease.js';
import type { DomainDescription } from './domain-xml.js';
import { explicitLeases } from './explicit-leases.js';
import { checkSharedRootsApart } from './file-identity.js';
import type { HostPolicy } from './host-policy.js';
import type { PolicyDecision, PolicyLease } from './policy-lease.js';
import { PolicyRefused, PolicyRule, refuse, shown } from './refusal.js';

/**
 * The leases a VM must hold on this host, decided from the host policy, the
 * domain and the facts the shell gathered about the paths it names. Pure:
 * the same inputs give the same decision, whatever order the disks are
 * written in.
 */

/**
 * Every path whose facts the shell must gather before decideLeases: each
 * disk source (for its identity, and to keep disks out of lease roots) and
 * each `<lease>` target (to tell whether it is one of the disks). The policy
 * is taken so that what is inspected can follow it; today every path is
 * needed whatever it says.
 */
/**
 * The roots whose facts the shell gathers with those paths: the shared file
 * roots (a file disk's identity is relative to one) and the lease roots (no
 * disk may lie in one, however it is reached).
 */
export function rootsToInspect(policy: HostPolicy): { readonly shared: readonly string[]; readonly lease: readonly string[] } {
  return { shared: policy.autoDiskLeases.sharedFileRoots.map((r) => r.path), lease: policy.leaseRoots };
}

export function pathsToInspect(domain: DomainDescription, policy: HostPolicy): string[] {
  void policy;
  const disks = domain.disks.map(sourcePath).filter((p): p is string => p !== undefined);
  return [...new Set([...disks, ...domain.leases.map((l) => l.path)])];
}

function checkNoSharedArea(explicit: readonly PolicyLease[], auto: readonly PolicyLease[]): void {
  for (const lease of explicit) {
    const other = auto.find((a) => (a.lockspace === lease.lockspace && a.resource === lease.resource) || (a.path === lease.path && a.offset === lease.offset));
    if (other === undefined || other.origin.kind !== 'auto-disk') continue;
    refuse(PolicyRule.leaseDuplicate, leaseLabel(lease.resource), `names the lease of disk ${other.origin.target} (${other.lockspace}:${other.resource} at ${shown(other.path)}), which the policy derives itself`);
  }
}

function checkEmulator(domain: DomainDescription, policy: HostPolicy, leases: readonly PolicyLease[]): void {
  if (leases.length === 0 && !policy.autoDiskLeases.requireForWritableDisks) return;
  if (domain.emulator === policy.emulatorShim) return;
  const actual = domain.emulator === undefined ? "is missing (libvirt would start its default emulator)" : `is ${shown(domain.emulator)}`;
  refuse(PolicyRule.emulator, '<emulator>', `${actual}, not the vmlease shim ${policy.emulatorShim}: only the shim starts qemu under a supervisor that holds the VM's leases`);
}

function checkNoPassthrough(domain: DomainDescription, policy: HostPolicy): void {
  if (domain.qemuPassthrough === undefined || !policy.autoDiskLeases.requireForWritableDisks) return;
  refuse(PolicyRule.qemuPassthrough, domain.qemuPassthrough, 'passes arguments straight to qemu, which can open drives no <disk> shows, while the host policy requires a lease for every writable disk');
}

function decided(policy: HostPolicy, domain: DomainDescription, facts: DiskFacts): PolicyDecision {
  // Sorted by target (unique per domain) so neither the leases nor the first refusal depend on the XML's order.
  const disks = [...domain.disks].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  // Leases first: a <lease> on a disk image in a lease root is named for what it is, not as a misplaced disk.
  const explicit = explicitLeases(domain.leases, disks, policy.leaseRoots, facts);
  for (const disk of disks) checkDiskPlacement(disk, policy.leaseRoots, facts);
  if (policy.autoDiskLeases.enabled) checkSharedRootsApart(policy.autoDiskLeases.sharedFileRoots, facts);
  const auto = autoLeases(disks, policy.autoDiskLeases, facts);
  checkNoSharedArea(explicit, auto.leases);
  const leases = [...explicit, ...auto.leases];
  if (leases.length > ADMIN_LEASES_MAX) refuse(PolicyRule.tooManyLeases, '<devices>', `needs ${leases.length} leases (${explicit.length} from <lease> elements, ${auto.leases.length} for disks), at most ${ADMIN_LEASES_MAX} fit one register request`);
  checkEmulator(domain, policy, leases);
  checkNoPassthrough(domain, policy);
  return { ok: true, vm: { uuid: domain.uuid, name: domain.name }, leases, unleasedDisks: auto.unleased };
}

export function decideLeases(policy: HostPolicy, domain: DomainDescription, facts: DiskFacts): PolicyDecision {
  try {
    return decided(policy, domain, facts);
  } catch (error) {
    if (error instanceof PolicyRefused) return { ok: false, refusal: error.refusal };
    throw error;
  }
}

import type { AutoLeaseFile, AutoLeaseFileOptions, RootsToGather } from '../disks/index.js';
import type { SectorSize } from '../format/index.js';
import { HelperError } from '../daemon/helper-error.js';
import { decideLeases, parseDomainXml, pathsToInspect, rootsToInspect, type DiskFacts, type DomainDescription, type HostPolicy, type PolicyLease, type UnleasedDisk } from '../../policy/index.js';
import type { LeaseLocation } from './lease-location.js';

/**
 * `register --domain-xml`: the helper turns a libvirt domain into the leases
 * its VM must hold. The pure policy decides; this shell gathers the disk
 * facts it needs (with deadlines) and creates missing automatic disk lease
 * files race-free in the policy's lease directory. The leases then go through
 * the same checks as leases named one by one (lease-location.ts).
 */

export interface LockspaceGeometry {
  readonly hostsMax: number;
  readonly sectorSize: SectorSize;
  readonly ioTimeoutMs: number;
}

export interface DomainLeasesDeps {
  readonly policy: () => HostPolicy;
  /** A joined lockspace's geometry: auto lease files serve the same host ids with the same sector size. */
  readonly lockspaceGeometry: (name: string) => LockspaceGeometry | undefined;
  readonly gatherFacts: (paths: readonly string[], roots: RootsToGather) => Promise<DiskFacts>;
  readonly ensureAutoLeaseFile: (options: AutoLeaseFileOptions) => Promise<AutoLeaseFile>;
}

export interface DomainRegistration {
  readonly request: { readonly vm: string; readonly uid: number; readonly libvirtDomain: string | null };
  readonly xml: string;
}

export interface DomainLeases {
  readonly leases: readonly LeaseLocation[];
  /** Why each lease (same order as `leases`). */
  readonly reasons: readonly string[];
  readonly unleasedDisks: readonly UnleasedDisk[];
  /** Auto lease files this call created. */
  readonly created: readonly string[];
}

function refused(code: string, message: string): never {
  throw new HelperError(code, 'refused', message);
}

/** The domain must be the VM named in the request, run as its uid, under its libvirt name. */
function checkMatchesRequest(domain: DomainDescription, request: DomainRegistration['request']): void {
  if (domain.uuid !== request.vm) refused('POLICY_VM_MISMATCH', `the domain XML is VM ${domain.uuid}, not ${request.vm}`);
  if (request.libvirtDomain !== null && domain.name !== request.libvirtDomain) refused('POLICY_VM_MISMATCH', `the domain XML is domain ${JSON.stringify(domain.name)}, not ${JSON.stringify(request.libvirtDomain)}`);
  if (domain.dac?.kind === 'ids' && domain.dac.uid !== request.uid) refused('POLICY_VM_MISMATCH', `the domain's DAC label runs it as uid ${domain.dac.uid}, not ${request.uid}`);
}

async function ensureAutoFile(deps: DomainLeasesDeps, policy: HostPolicy, lease: PolicyLease): Promise<AutoLeaseFile> {
  const geometry = deps.lockspaceGeometry(lease.lockspace);
  if (!geometry) refused('LOCKSPACE_UNKNOWN', `lockspace ${JSON.stringify(lease.lockspace)} of the automatic disk leases is not joined on this host`);
  const file = await deps.ensureAutoLeaseFile({ directory: policy.autoDiskLeases.directory, lockspace: lease.lockspace, resource: lease.resource, hostsMax: geometry.hostsMax, sectorSize: geometry.sectorSize, ioTimeoutMs: geometry.ioTimeoutMs, allowLocalFileSystem: policy.autoDiskLeases.allowLocalDirectory });
  if (file.path !== lease.path) throw new HelperError('AUTO_LEASE_PATH', 'error', `the automatic lease file for ${lease.resource} is ${file.path}, the policy named ${lease.path}`);
  return file;
}

export async function leasesFromDomain(deps: DomainLeasesDeps, registration: DomainRegistration): Promise<DomainLeases> {
  const parsed = parseDomainXml(registration.xml);
  if (!parsed.ok) refused(parsed.refusal.rule, parsed.refusal.message);
  checkMatchesRequest(parsed.domain, registration.request);
  const policy = deps.policy();
  const facts = await deps.gatherFacts(pathsToInspect(parsed.domain, policy), rootsToInspect(policy));
  const decision = decideLeases(policy, parsed.domain, facts);
  if (!decision.ok) refused(decision.refusal.rule, decision.refusal.message);
  const created: string[] = [];
  for (const lease of decision.leases) {
    if (lease.origin.kind !== 'auto-disk') continue;
    const file = await ensureAutoFile(deps, policy, lease);
    if (file.created) created.push(file.path);
  }
  return {
    leases: decision.leases.map(({ lockspace, resource, path, offset, mode }) => ({ lockspace, resource, path, offset, mode })),
    reasons: decision.leases.map((l) => l.reason),
    unleasedDisks: decision.unleasedDisks,
    created,
  };
}

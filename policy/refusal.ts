/**
 * A policy refusal: a stable rule code, the XML element it is about, and one
 * line an operator can act on. libvirt shows the hook's message in virsh's
 * error, so the line names the rule and the element itself.
 */

export const PolicyRule = {
  /** Not well-formed XML, too large, not UTF-8, a DOCTYPE, too many elements, a duplicate singleton element, or a namespace-prefixed attribute or element the policy would read differently from libvirt. */
  xml: 'POLICY_XML',
  /** The root element is not <domain>. */
  notDomain: 'POLICY_NOT_DOMAIN',
  /** The domain has no <uuid>. */
  noUuid: 'POLICY_NO_UUID',
  /** The <uuid> is not lowercase canonical (libvirt writes it so). */
  uuid: 'POLICY_UUID',
  /** The <name> is missing or not a libvirt domain name. */
  name: 'POLICY_NAME',
  /** A DAC <seclabel> whose label is not USER:GROUP. */
  seclabel: 'POLICY_SECLABEL',
  /** A <disk> the policy cannot read: unknown type or device, no target, a source that is not an absolute path, a target used twice. */
  disk: 'POLICY_DISK',
  /** A <lease> the policy cannot read: no lockspace, a bad key or path, an offset that is not a number. */
  lease: 'POLICY_LEASE',
  /** A <lease> offset that is not a multiple of the area alignment (4096 bytes). */
  leaseOffset: 'POLICY_LEASE_OFFSET',
  /** A <lease> target not strictly below a lease root. */
  leaseOutsideRoots: 'POLICY_LEASE_OUTSIDE_ROOTS',
  /** A <lease> target that is one of the VM's disks. */
  leaseOnDisk: 'POLICY_LEASE_ON_DISK',
  /** Two leases name the same resource or the same place. */
  leaseDuplicate: 'POLICY_LEASE_DUPLICATE',
  /** A disk whose source lies below a lease root (qemu must never see lease storage). */
  diskInLeaseRoot: 'POLICY_DISK_IN_LEASE_ROOT',
  /** What the policy must know about a disk or a root could not be found out on this host (a deadline, an I/O error): it cannot decide safely. */
  diskFacts: 'POLICY_DISK_FACTS',
  /** Two shared file roots resolve on this host to one directory, or one inside the other. */
  sharedRoots: 'POLICY_SHARED_ROOTS',
  /** Two disks of one domain are the same disk and not all of them <shareable/>. */
  diskDuplicate: 'POLICY_DISK_DUPLICATE',
  /** A writable disk that gets no lease while requireForWritableDisks is on. */
  diskUnleased: 'POLICY_DISK_UNLEASED',
  /** A writable leased disk whose cache mode uses the host page cache. */
  pageCache: 'POLICY_PAGE_CACHE',
  /** The <emulator> is not the vmlease shim although the VM needs leases. */
  emulator: 'POLICY_EMULATOR',
  /** A qemu passthrough element (`<qemu:commandline>`) while every writable disk must be leased: its drives would be unseen. */
  qemuPassthrough: 'POLICY_QEMU_PASSTHROUGH',
  /** More <disk> elements than the policy reads. */
  tooManyDisks: 'POLICY_TOO_MANY_DISKS',
  /** More leases than one register request carries. */
  tooManyLeases: 'POLICY_TOO_MANY_LEASES',
} as const;

export type PolicyRuleCode = (typeof PolicyRule)[keyof typeof PolicyRule];

export interface PolicyRefusal {
  readonly rule: PolicyRuleCode;
  /** The element, e.g. `<disk target='vdb'>` or `<lease key='res1'>`. */
  readonly element: string;
  /** One line: `RULE: ELEMENT WHY`. */
  readonly message: string;
}

/** Thrown inside the policy's parsers only, caught at their public edge and returned as a value. */
export class PolicyRefused extends Error {
  constructor(readonly refusal: PolicyRefusal) {
    super(refusal.message);
  }
}

export function refusalOf(rule: PolicyRuleCode, element: string, why: string): PolicyRefusal {
  return { rule, element, message: `${rule}: ${element} ${why}` };
}

export function refuse(rule: PolicyRuleCode, element: string, why: string): never {
  throw new PolicyRefused(refusalOf(rule, element, why));
}

const SHOWN_CHARS_MAX = 160;

/**
 * A value from the XML or the facts, quoted for a message: JSON escapes keep
 * the message on one line whatever the XML held, and a cut keeps it short.
 */
export function shown(value: string): string {
  const cut = value.length > SHOWN_CHARS_MAX ? `${value.slice(0, SHOWN_CHARS_MAX)}...` : value;
  return JSON.stringify(cut);
}

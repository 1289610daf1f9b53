export * from './host-policy.js';
export type { BlockIdentity, DiskFacts, PathFacts } from './disk-facts.js';
export { PolicyRule, type PolicyRefusal, type PolicyRuleCode } from './refusal.js';
export { XML_BYTES_MAX, XML_DEPTH_MAX, XML_ELEMENTS_MAX } from './xml-tree.js';
export { parseDomainXml, DOMAIN_DISKS_MAX, DOMAIN_LEASES_MAX, type DacLabel, type DomainDescription, type DomainXmlResult } from './domain-xml.js';
export { DISK_DEVICES, DISK_TYPES, NETWORK_HOSTS_MAX, type DiskDevice, type DiskSource, type DiskType, type DomainDisk, type NetworkHost } from './domain-disk.js';
export type { DomainLease } from './domain-lease.js';
export { diskIdentity } from './disk-identity.js';
export type { IdentityResult } from './identity-result.js';

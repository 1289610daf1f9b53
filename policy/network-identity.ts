import type { NetworkHost } from './domain-disk.js';
import { identified, unidentified, type IdentityResult } from './identity-result.js';
import { shown } from './refusal.js';

/**
 * A network disk's identity: `net:PROTOCOL:HOSTS:NAME`.
 *
 * For protocols whose name is unique whatever server is asked (an iSCSI
 * IQN is world-unique; an RBD pool/image, a Gluster volume/path or a
 * Sheepdog vdi is one per cluster, and any monitor or server of the cluster
 * serves it) HOSTS is `*`: two domains that list different monitors of one
 * cluster still share the lease. Two clusters with the same image name then
 * share a lease too, which can only refuse a start, never let two writers in.
 *
 * For the other protocols the server picks the data, so HOSTS is the host
 * list normalised: names lowercased, the default port spelled out, sorted,
 * duplicates dropped. A server named by address in one domain and by name in
 * another still gets two identities: name servers alike in every domain.
 */

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  iscsi: 3260,
  rbd: 6789,
  gluster: 24007,
  sheepdog: 7000,
  nbd: 10809,
  nfs: 2049,
  vxhs: 9999,
  http: 80,
  https: 443,
  ftp: 21,
  ftps: 990,
  tftp: 69,
  ssh: 22,
};

const CLUSTER_NAMED = new Set(['iscsi', 'rbd', 'gluster', 'sheepdog']);

function hostPart(host: NetworkHost, defaultPort: number): string {
  const name = host.name.toLowerCase();
  // An IPv6 address is bracketed so its colons cannot be read as the port's.
  return `${name.includes(':') ? `[${name}]` : name}:${host.port === undefined ? defaultPort : Number(host.port)}`;
}

function hostsPart(protocol: string, hosts: readonly NetworkHost[], defaultPort: number): IdentityResult {
  const local = hosts.find((h) => h.transport === 'unix');
  if (local !== undefined) return unidentified(`it reaches its server through the Unix socket ${shown(local.socket ?? '')}, a name local to this host`);
  if (CLUSTER_NAMED.has(protocol)) return identified('*');
  if (hosts.length === 0) return unidentified(`its ${protocol} source names no host`);
  return identified([...new Set(hosts.map((h) => hostPart(h, defaultPort)))].sort().join(','));
}

export function networkIdentity(protocol: string, name: string, hosts: readonly NetworkHost[]): IdentityResult {
  const defaultPort = Object.hasOwn(DEFAULT_PORTS, protocol) ? DEFAULT_PORTS[protocol] : undefined;
  if (defaultPort === undefined) return unidentified(`its network protocol ${shown(protocol)} is not one the policy knows`);
  if (CLUSTER_NAMED.has(protocol) && name === '') return unidentified(`its ${protocol} source has no name, and the name is what identifies it`);
  const hostList = hostsPart(protocol, hosts, defaultPort);
  return hostList.ok ? identified(`net:${protocol}:${hostList.identity}:${name}`) : hostList;
}

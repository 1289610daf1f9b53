import { isIP } from 'node:net';
import { posix } from 'node:path';
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
 * An IPv6 address is written in its canonical form (RFC 5952: lowercase,
 * the longest zero run compressed), brackets or not, so `FD00:0::5` and
 * `[fd00::5]` are one server.
 *
 * Names are canonicalised as libvirt reads them: an iSCSI `IQN[/LUN]` has its
 * IQN lowercased (iSCSI names are case-insensitive) and LUN 0 spelled out
 * when none is given (libvirt's default); a Gluster `VOLUME/PATH` and an NFS
 * path are normalised as paths (`vol//img`, `vol/./img` are `vol/img`; an NFS
 * path with or without its leading `/` is one path). A Gluster name starting
 * with `/` is refused by libvirt, and gets no identity.
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

/** A host name lowercased; an IPv6 address (bracketed or not) in its canonical form. */
function hostName(written: string): string {
  const bare = written.startsWith('[') && written.endsWith(']') ? written.slice(1, -1) : written;
  if (isIP(bare) === 6) {
    try {
      // The WHATWG URL parser writes an IPv6 host in its canonical (RFC 5952) form, bracketed.
      return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    } catch {
      // A zone index (fe80::1%eth0) is not a URL host: kept as written, lowercased.
    }
    return bare.toLowerCase();
  }
  return written.toLowerCase();
}

const LUN = /^[0-9]{1,5}$/;

/** The name libvirt means, written one way. */
function canonicalName(protocol: string, name: string): IdentityResult {
  switch (protocol) {
    case 'iscsi': {
      const slash = name.indexOf('/');
      const iqn = (slash < 0 ? name : name.slice(0, slash)).toLowerCase();
      const lun = slash < 0 ? '0' : name.slice(slash + 1);
      if (iqn === '' || !LUN.test(lun)) return unidentified(`its iscsi name ${shown(name)} is not IQN or IQN/LUN with a decimal LUN`);
      return identified(`${iqn}/${Number(lun)}`);
    }
    case 'gluster': {
      const slash = name.indexOf('/');
      if (slash <= 0) return unidentified(`its gluster name ${shown(name)} is not VOLUME/PATH (libvirt refuses it)`);
      return identified(`${name.slice(0, slash)}${posix.normalize(`/${name.slice(slash + 1)}`)}`);
    }
    case 'nfs':
      return identified(posix.normalize(`/${name}`));
    default:
      return identified(name);
  }
}

function hostPart(host: NetworkHost, defaultPort: number): string {
  const name = hostName(host.name);
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
  if (!hostList.ok) return hostList;
  const canonical = canonicalName(protocol, name);
  return canonical.ok ? identified(`net:${protocol}:${hostList.identity}:${canonical.identity}`) : canonical;
}

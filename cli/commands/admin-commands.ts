import { resolve } from 'node:path';
import type { LeaseLocationWire } from '../../protocol/admin-messages.js';
import { uuidProblem, UID_MAX } from '../../protocol/admin-messages.js';
import { adminRequest, RUN_DIR_DEFAULT } from '../admin-client.js';
import { parseCommandArgs, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { nonEmpty, parseByteCount, splitLeaseString } from '../lease-string.js';
import { renderTable } from '../render/table.js';
import { readDomainXml } from '../domain-xml-input.js';

/**
 * The admin commands: talk to the running helper over its admin socket
 * (root only). Human tables by default, one JSON document with --json.
 */

function vmOption(value: string | boolean | undefined): string {
  if (typeof value !== 'string') throw new UsageError('--vm UUID is required');
  const problem = uuidProblem(value);
  if (problem !== undefined) throw new UsageError(`--vm: ${problem}`);
  return value;
}

function idOption(value: string | boolean | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || Number(value) > UID_MAX) throw new UsageError(`${what} must be a number 0..${UID_MAX}`);
  return Number(value);
}

/** LS:RES:PATH:OFFSET[:shared]; a relative PATH is taken from the current directory. */
export function parseLeaseOption(text: string): LeaseLocationWire {
  const fields = splitLeaseString(text, '--lease');
  const shared = fields.length === 5 && fields[4] === 'shared';
  if (!(fields.length === 4 || shared)) throw new UsageError(`--lease ${JSON.stringify(text)}: expected LS:RES:PATH:OFFSET[:shared] (write ':' inside a path as '\\:')`);
  const [lockspace, resource, path, offset] = fields as [string, string, string, string];
  return { lockspace: nonEmpty(lockspace, 'LS'), resource: nonEmpty(resource, 'RES'), path: resolve(nonEmpty(path, 'PATH')), offset: parseByteCount(offset, 'OFFSET'), mode: shared ? 'shared' : 'exclusive' };
}

function print(json: boolean, result: Record<string, unknown>, human: () => string): number {
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${human()}\n`);
  return ExitStatus.ok;
}

interface VmView {
  uuid: string;
  uid: number;
  state: string;
  supervisorPid: number | null;
  childPid: number | null;
  lostReason: string | null;
  leases: { lockspace: string; resource: string; path: string; offset: number; mode: string; state: string; lver: number | null }[];
}

function leaseRows(vm: VmView): string[][] {
  return vm.leases.map((l) => [vm.uuid, `${l.lockspace}:${l.resource}`, l.mode, l.state, l.lver === null ? '-' : String(l.lver), `${l.path}:${l.offset}`]);
}

const RUN_DIR_HELP = `  --run-dir DIR   the helper's run directory (default ${RUN_DIR_DEFAULT})`;

export const registerCommand: Command = {
  name: 'register',
  summary: 'register a VM and its leases with the helper (root)',
  usage: [
    'usage: vmlease register --vm UUID --uid UID [--gid GID] (--lease LS:RES:PATH:OFFSET[:shared] ... | --domain-xml FILE|-)',
    '                        [--acquire] [--libvirt-domain NAME] [--run-dir DIR] [--json]',
    '',
    'Tells the running helper which leases VM UUID must hold and which uid its supervisor runs as.',
    'With --domain-xml the helper derives them from the libvirt domain XML by its host policy',
    '(`vmlease policy check` shows what it would derive) and creates missing automatic disk lease',
    'files; refused by policy: exit 4. The helper checks every lease: below a lease root of its',
    'policy, no symlink, an initialised resource area of that lockspace and name. With --acquire it',
    'acquires them now (as the libvirt start hook does); otherwise the supervisor acquires them when',
    'it starts.',
    'Without libvirt, the supervisor proves it is the VM\'s with a one-time secret the helper writes',
    'to RUN/vms/UUID.secret, readable only by UID (weaker than libvirt\'s recorded pid: any process',
    'of that uid could read it first).',
    '',
    '  --vm UUID        the VM (lowercase canonical UUID)',
    '  --uid UID        the uid its supervisor and qemu run as (never 0)',
    '  --gid GID        their gid (default: the same number as UID)',
    '  --lease L        LS:RES:PATH:OFFSET, ":shared" appended for a shared lease; repeat for more',
    '  --domain-xml F   the libvirt domain XML (a file, or - for standard input); its <uuid> must be UUID',
    '  --acquire        acquire the leases now; exit 3 if one is busy, naming its holder',
    '  --libvirt-domain NAME  the supervisor is the process libvirt records in /run/libvirt/qemu/NAME.pid',
    '                   (the libvirt hook gives this; no secret is issued then)',
    RUN_DIR_HELP,
    '  --json           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      vm: { type: 'string' },
      uid: { type: 'string' },
      gid: { type: 'string' },
      lease: { type: 'string', multiple: true },
      'domain-xml': { type: 'string' },
      acquire: { type: 'boolean' },
      'libvirt-domain': { type: 'string' },
      'run-dir': { type: 'string' },
      json: { type: 'boolean' },
    }) as { values: Record<string, string | boolean | string[] | undefined> };
    const leases = ((values.lease as string[] | undefined) ?? []).map(parseLeaseOption);
    const xmlSource = values['domain-xml'] as string | undefined;
    if (leases.length > 0 && xmlSource !== undefined) throw new UsageError('give --lease or --domain-xml, not both');
    if (leases.length === 0 && xmlSource === undefined) throw new UsageError('at least one --lease, or --domain-xml, is required');
    const uid = idOption(values.uid as string | undefined, '--uid');
    if (uid === undefined) throw new UsageError('--uid UID is required');
    const gid = idOption(values.gid as string | undefined, '--gid') ?? uid;
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, {
      type: 'register',
      vm: vmOption(values.vm as string),
      uid,
      gid,
      leases,
      domainXml: xmlSource === undefined ? null : readDomainXml(xmlSource),
      acquire: values.acquire === true,
      libvirtDomain: typeof values['libvirt-domain'] === 'string' ? values['libvirt-domain'] : null,
    });
    return print(values.json === true, result, () => {
      const vm = result.vm as VmView;
      const identity = result.secretFile === null ? `its supervisor is the pid libvirt records for domain ${String((result.vm as { libvirtDomain: string }).libvirtDomain)}` : `supervisor secret in ${String(result.secretFile)}`;
      const policy = result.policy as { createdLeaseFiles: string[]; unleasedDisks: { target: string; reason: string }[] } | null;
      const notes = policy === null ? [] : [...policy.createdLeaseFiles.map((f) => `created automatic lease file ${f}`), ...policy.unleasedDisks.map((d) => `no lease for disk ${d.target}: ${d.reason}`)];
      return [`registered VM ${vm.uuid} (uid ${vm.uid}); ${identity}`, renderTable(['VM', 'LEASE', 'MODE', 'STATE', 'LVER', 'AREA'], leaseRows(vm)), ...notes].join('\n');
    });
  },
};

export const unregisterCommand: Command = {
  name: 'unregister',
  summary: "release a VM's leases (after its processes are gone) and forget it (root)",
  usage: [
    'usage: vmlease unregister --vm UUID [--run-dir DIR] [--json]',
    '',
    "Fence first, then release: the helper stops any process of the VM still alive (SIGTERM, then",
    'SIGKILL), waits until the kernel shows them gone, then releases the leases and forgets the VM.',
    'If a process cannot be proven gone (stuck in D state) the leases stay held and this fails.',
    '',
    RUN_DIR_HELP,
    '  --json           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { vm: { type: 'string' }, 'run-dir': { type: 'string' }, json: { type: 'boolean' } });
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, { type: 'unregister', vm: vmOption(values.vm) });
    return print(values.json === true, result, () => `unregistered VM ${String(result.vm)}; released: ${((result.released as string[]) ?? []).join(', ') || 'nothing held'}`);
  },
};

interface LockspaceView {
  name: string;
  state: string;
  generation: number | null;
  renewedAgoMs: number | null;
  validForMs: number | null;
  renewalLatenciesMs: number[];
  path: string;
  offset: number;
}

export const statusCommand: Command = {
  name: 'status',
  summary: "the helper's lockspaces, VMs and leases",
  usage: ['usage: vmlease status [--json] [--run-dir DIR]', '', "Shows this host's helper: its lockspaces (renewal age and latencies) and every registered VM with its leases.", '', RUN_DIR_HELP, '  --json           print the status as JSON'].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { 'run-dir': { type: 'string' }, json: { type: 'boolean' } });
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, { type: 'status' });
    return print(values.json === true, result, () => {
      const lockspaces = result.lockspaces as LockspaceView[];
      const vms = result.vms as VmView[];
      const last = (l: LockspaceView) => l.renewalLatenciesMs.slice(-5).join(',') || '-';
      return [
        `host ${String(result.hostId)} (${String(result.hostName)}), incarnation ${String(result.incarnation)}, watchdog ${result.watchdog ? JSON.stringify(result.watchdog) : 'none'}`,
        '',
        renderTable(
          ['LOCKSPACE', 'STATE', 'GEN', 'RENEWED', 'VALID FOR', 'LATENCY MS (LAST 5)', 'AREA'],
          lockspaces.map((l) => [l.name, l.state, String(l.generation ?? '-'), l.renewedAgoMs === null ? '-' : `${l.renewedAgoMs} ms ago`, l.validForMs === null ? '-' : `${l.validForMs} ms`, last(l), `${l.path}:${l.offset}`]),
        ),
        '',
        vms.length === 0 ? 'no VMs registered' : renderTable(['VM', 'LEASE', 'MODE', 'STATE', 'LVER', 'AREA'], vms.flatMap(leaseRows)),
        ...vms.map((vm) => `VM ${vm.uuid}: ${vm.state}, uid ${vm.uid}, supervisor ${vm.supervisorPid ?? '-'}, child ${vm.childPid ?? '-'}${vm.lostReason ? `, lost: ${vm.lostReason}` : ''}`),
      ].join('\n');
    });
  },
};

interface HostView {
  hostId: number;
  state: string;
  hostName: string | null;
  generation: number | null;
  sinceAgoMs: number | null;
  deadInMs: number | null;
  self: boolean;
  problem: string | null;
}

export const hostsCommand: Command = {
  name: 'hosts',
  summary: 'the host table of a lockspace as this helper sees it',
  usage: ['usage: vmlease hosts LS [--json] [--run-dir DIR]', '', 'Every host id with a record in lockspace LS: its state (UNKNOWN, LIVE, FAIL, DEAD, FREE), owner, generation and since when.', '', RUN_DIR_HELP, '  --json           print the table as JSON'].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { 'run-dir': { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('give exactly one lockspace name');
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, { type: 'hosts', lockspace: positionals[0]! });
    return print(values.json === true, result, () =>
      renderTable(
        ['HOST', 'STATE', 'NAME', 'GEN', 'SINCE', 'DEAD IN', ''],
        (result.hosts as HostView[]).map((h) => [String(h.hostId), h.state, h.hostName ?? '-', String(h.generation ?? '-'), h.sinceAgoMs === null ? '-' : `${h.sinceAgoMs} ms ago`, h.deadInMs === null ? '-' : `${h.deadInMs} ms`, [h.self ? 'this host' : '', h.problem ?? ''].filter(Boolean).join('; ')]),
      ),
    );
  },
};

export const addLockspaceCommand: Command = {
  name: 'add-lockspace',
  summary: 'join one more lockspace at runtime (root)',
  usage: [
    'usage: vmlease add-lockspace LS:PATH:OFFSET [--run-dir DIR] [--json]',
    '',
    'Tells the running helper to join lockspace LS at PATH:OFFSET now, as if it were in its config',
    "(its recorded io timeout must equal the helper's). Add it to the config file as well to keep it",
    'after a restart. Returns when joined (2N to 3N when free; longer if this host id\'s old record',
    'must age out first).',
    '',
    RUN_DIR_HELP,
    '  --json           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { 'run-dir': { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('give exactly one LS:PATH:OFFSET');
    const fields = splitLeaseString(positionals[0]!, 'LS:PATH:OFFSET');
    if (fields.length !== 3) throw new UsageError(`${JSON.stringify(positionals[0])}: expected LS:PATH:OFFSET (write ':' inside a path as '\\:')`);
    const [lockspace, path, offset] = fields as [string, string, string];
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, { type: 'add-lockspace', lockspace: nonEmpty(lockspace, 'LS'), path: resolve(nonEmpty(path, 'PATH')), offset: parseByteCount(offset, 'OFFSET') });
    return print(values.json === true, result, () => `joined lockspace ${lockspace} (generation ${String(result.generation)})`);
  },
};

export const removeLockspaceCommand: Command = {
  name: 'remove-lockspace',
  summary: 'leave a lockspace at runtime, when no VM holds a lease of it (root)',
  usage: ['usage: vmlease remove-lockspace LS [--run-dir DIR] [--json]', '', 'Writes this host\'s delta lease of LS free and forgets it. Refused while a VM of this host holds a lease of LS.', '', RUN_DIR_HELP, '  --json           print the result as JSON'].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { 'run-dir': { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('give exactly one lockspace name');
    const result = await adminRequest((values['run-dir'] as string | undefined) ?? RUN_DIR_DEFAULT, { type: 'remove-lockspace', lockspace: positionals[0]! });
    return print(values.json === true, result, () => `left lockspace ${positionals[0]!}`);
  },
};

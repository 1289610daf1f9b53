import { LIBVIRT_DOMAIN_PATTERN } from '../../protocol/admin-messages.js';
import { parseDomainXml } from '../../policy/index.js';
import { AdminRequestError, HelperUnreachable, adminRequest } from '../admin-client.js';
import { parseCommandArgs, positiveInteger, type Command } from '../command.js';
import { readDomainXml } from '../domain-xml-input.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { RUN_DIR_DEFAULT } from '../run-dir-default.js';
import { hookAction } from '../libvirt/hook-operation.js';
import { vmAccount } from '../libvirt/hook-account.js';
import { LibvirtError } from '../libvirt/libvirt-error.js';
import { QEMU_CONF_DEFAULT } from '../libvirt/qemu-conf.js';
import { checkDomainPolicy, POLICY_FILE_DEFAULT } from './policy-check.js';

/**
 * `vmlease libvirt-hook`: what /etc/libvirt/hooks/qemu runs (internal; the
 * hook installed by install-libvirt gives the arguments). libvirtd waits for
 * it with no timeout and holds the domain's job meanwhile, so every request
 * to the helper has a deadline: a dead or stopped helper fails the start
 * rather than hanging libvirtd. It never calls back into libvirt (libvirtd
 * is blocked on this very hook).
 */

/** Long enough for an acquire that must wait a few io timeouts; short enough that an operator sees a hung helper. */
export const HOOK_DEADLINE_MS_DEFAULT = 120_000;
const HOOK_DEADLINE_MS_MAX = 3_600_000;

function say(line: string): void {
  process.stderr.write(`vmlease: ${line}\n`);
}

/** One line virsh shows: "lease busy: held by host 2 (b), LIVE since ...; ... (lease LS:RES)". */
export function busyLine(message: string): string {
  const match = /^lease (\S+) is (held .*)$/s.exec(message);
  return match ? `lease busy: ${match[2]} (lease ${match[1]})` : `lease busy: ${message}`;
}

function helperFailure(error: unknown, what: string): number {
  if (error instanceof AdminRequestError) {
    const { code, kind, message } = error.wire;
    if (kind === 'busy') {
      say(busyLine(message));
      return ExitStatus.busy;
    }
    say(`${what} refused: ${code}: ${message}`);
    return { refused: ExitStatus.refused, storage: ExitStatus.storage, error: ExitStatus.error }[kind] ?? ExitStatus.error;
  }
  if (error instanceof HelperUnreachable) {
    say(`${what} failed: ${error.message}`);
    return ExitStatus.error;
  }
  throw error;
}

interface HookOptions {
  readonly runDir: string;
  readonly policy: string;
  readonly qemuConf: string;
  readonly deadlineMs: number;
}

async function checkPolicy(options: HookOptions): Promise<number> {
  const checked = await checkDomainPolicy(readDomainXml('-'), options.policy);
  if (checked.ok) return ExitStatus.ok;
  say(`refused by policy: ${checked.refusal.message}`);
  return ExitStatus.refused;
}

async function register(domain: string, options: HookOptions): Promise<number> {
  const xml = readDomainXml('-');
  const parsed = parseDomainXml(xml);
  if (!parsed.ok) {
    say(`refused by policy: ${parsed.refusal.message}`);
    return ExitStatus.refused;
  }
  const account = vmAccount(parsed.domain.dac, options.qemuConf);
  try {
    const result = await adminRequest(options.runDir, { type: 'register', vm: parsed.domain.uuid, uid: account.uid, gid: account.gid, leases: [], domainXml: xml, acquire: true, libvirtDomain: domain }, options.deadlineMs);
    const leases = (result.vm as { leases: { lockspace: string; resource: string }[] }).leases;
    process.stdout.write(`vmlease: VM ${parsed.domain.uuid} (${domain}) registered as uid ${account.uid} gid ${account.gid} (from ${account.from}); holds ${leases.map((l) => `${l.lockspace}:${l.resource}`).join(', ') || 'no leases'}\n`);
    return ExitStatus.ok;
  } catch (error) {
    return helperFailure(error, `registering VM ${parsed.domain.uuid} (${domain})`);
  }
}

async function unregister(domain: string, options: HookOptions): Promise<number> {
  const parsed = parseDomainXml(readDomainXml('-'));
  if (!parsed.ok) {
    // The XML libvirt hands back is the one it started; if it does not parse, nothing was registered from it.
    say(`unregister: the domain XML of ${domain} does not parse (${parsed.refusal.message}); nothing to do`);
    return ExitStatus.ok;
  }
  try {
    const result = await adminRequest(options.runDir, { type: 'unregister', vm: parsed.domain.uuid }, options.deadlineMs);
    process.stdout.write(`vmlease: VM ${parsed.domain.uuid} (${domain}) unregistered; released ${((result.released as string[] | undefined) ?? []).join(', ') || 'nothing'}\n`);
    return ExitStatus.ok;
  } catch (error) {
    // stopped end and release end both come here, and a refused start still gets both: not registered is done.
    if (error instanceof AdminRequestError && error.wire.code === 'VM_UNKNOWN') return ExitStatus.ok;
    return helperFailure(error, `unregistering VM ${parsed.domain.uuid} (${domain})`);
  }
}

export const libvirtHookCommand: Command = {
  name: 'libvirt-hook',
  summary: "(internal) libvirt's qemu hook: policy at prepare, register+acquire at start, unregister at stop",
  usage: [
    'usage: vmlease libvirt-hook [--run-dir DIR] [--policy FILE] [--qemu-conf FILE] [--deadline-ms N] -- DOMAIN OPERATION SUB-OPERATION [EXTRA...]',
    '',
    'Run by /etc/libvirt/hooks/qemu (installed by `vmlease install-libvirt`) with the domain XML on',
    'standard input. prepare begin: checks the domain against the host policy (as `policy check`).',
    'start begin: registers the VM with the helper (uid/gid from the DAC <seclabel>, else qemu.conf\'s',
    'user/group; its supervisor is the pid libvirt records for DOMAIN) and acquires its leases.',
    'stopped end, release end: unregisters it (the helper stops what is left of the VM, then',
    'releases). Every other operation: exit 0 at once. It never calls libvirt.',
    '',
    `  --run-dir DIR     the helper's run directory (default ${RUN_DIR_DEFAULT})`,
    `  --policy FILE     the host policy for prepare (default ${POLICY_FILE_DEFAULT})`,
    `  --qemu-conf FILE  libvirt's qemu.conf (default ${QEMU_CONF_DEFAULT})`,
    `  --deadline-ms N   deadline of each request to the helper (default ${HOOK_DEADLINE_MS_DEFAULT})`,
    '',
    'Exit status: 0 ok (libvirt goes on), 1 error (helper unreachable or no reply in time), 2 usage,',
    '3 a lease is busy ("lease busy: held by host ..."), 4 refused by policy or the helper, 5 storage',
    'error. Anything but 0 at prepare or start aborts the start and virsh shows the line on stderr.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { 'run-dir': { type: 'string' }, policy: { type: 'string' }, 'qemu-conf': { type: 'string' }, 'deadline-ms': { type: 'string' } });
    if (positionals.length < 3) throw new UsageError('expected DOMAIN OPERATION SUB-OPERATION [EXTRA...] (as libvirt calls the hook)');
    const [domain, operation, subOperation] = positionals as [string, string, string];
    const action = hookAction(operation, subOperation);
    if (action === 'nothing') return ExitStatus.ok;
    if (!LIBVIRT_DOMAIN_PATTERN.test(domain)) throw new UsageError(`${JSON.stringify(domain.slice(0, 64))} is not a libvirt domain name`);
    const options: HookOptions = {
      runDir: values['run-dir'] as string | undefined ?? RUN_DIR_DEFAULT,
      policy: values.policy as string | undefined ?? POLICY_FILE_DEFAULT,
      qemuConf: values['qemu-conf'] as string | undefined ?? QEMU_CONF_DEFAULT,
      deadlineMs: typeof values['deadline-ms'] === 'string' ? positiveInteger(values['deadline-ms'], '--deadline-ms', HOOK_DEADLINE_MS_MAX) : HOOK_DEADLINE_MS_DEFAULT,
    };
    try {
      if (action === 'check-policy') return await checkPolicy(options);
      if (action === 'register') return await register(domain, options);
      return await unregister(domain, options);
    } catch (error) {
      if (error instanceof LibvirtError) {
        say(`${operation} ${subOperation} of ${domain}: ${error.code}: ${error.message}`);
        return error.kind === 'refused' ? ExitStatus.refused : ExitStatus.error;
      }
      throw error;
    }
  },
};

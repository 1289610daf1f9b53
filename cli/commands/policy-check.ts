import { checkLeaseDirectory, gatherDiskFacts, DiskError, type DiskErrorCode, leaseFileExists, sharedStuckCalls, stepsOf, type Step } from '../../helper/disks/index.js';
import { decideLeases, loadHostPolicy, parseDomainXml, pathsToInspect, rootsToInspect, type HostPolicy, type PolicyDecision, type PolicyRefusal } from '../../policy/index.js';
import { parseCommandArgs, TOOL_IO_TIMEOUT_MS, type Command } from '../command.js';
import { readDomainXml } from '../domain-xml-input.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { renderTable } from '../render/table.js';

/**
 * `vmlease policy check`: what the helper would make of a domain at
 * `register --domain-xml`, without a helper and without writing anything.
 * Operators try their XML with it before they start a VM.
 */

export const POLICY_FILE_DEFAULT = '/etc/vmlease/policy.json';

type Decided = Extract<PolicyDecision, { ok: true }>;

interface CheckedLease {
  readonly lockspace: string;
  readonly resource: string;
  readonly path: string;
  readonly offset: number;
  readonly mode: string;
  readonly reason: string;
  /** Auto lease files only: it exists already (false: register creates it). */
  readonly exists: boolean | null;
}

function refusal(json: boolean, found: CheckRefusal): number {
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, refusal: found }, null, 2)}\n`);
  process.stderr.write(`vmlease policy check: refused: ${found.message}\n`);
  return ExitStatus.refused;
}

/** The auto lease directory must carry its lockspace's marker, as register will require. */
async function directoryRefusal(policy: HostPolicy, decision: Decided): Promise<CheckRefusal | undefined> {
  if (!decision.leases.some((l) => l.origin.kind === 'auto-disk')) return undefined;
  const { directory, lockspace, allowLocalDirectory } = policy.autoDiskLeases;
  try {
    await checkLeaseDirectory(directory, lockspace, { stepTimeoutMs: TOOL_IO_TIMEOUT_MS, allowLocalFileSystem: allowLocalDirectory });
    return undefined;
  } catch (error) {
    if (!(error instanceof DiskError) || error.kind !== 'refused') throw error;
    return { rule: error.code, element: `autoDiskLeases.directory`, message: `${error.code}: ${error.message}` };
  }
}

/** Each auto lease file's presence, one lstat at a time with its deadline: a hung lease directory fails the check (exit 5), it never hangs it. */
async function checkedLeases(decision: Decided, step: Step): Promise<CheckedLease[]> {
  const checked: CheckedLease[] = [];
  for (const l of decision.leases) {
    const exists = l.origin.kind === 'auto-disk' ? await leaseFileExists(l.path, step) : null;
    checked.push({ lockspace: l.lockspace, resource: l.resource, path: l.path, offset: l.offset, mode: l.mode, reason: l.reason, exists });
  }
  return checked;
}

function human(decision: Decided, leases: readonly CheckedLease[]): string {
  const lines = [`VM ${decision.vm.uuid} (${decision.vm.name}): ${leases.length} lease${leases.length === 1 ? '' : 's'}`];
  if (leases.length > 0) {
    const rows = leases.map((l) => [`${l.lockspace}:${l.resource}`, l.mode, `${l.path}:${l.offset}${l.exists === false ? ' (created at register)' : ''}`, l.reason]);
    lines.push(renderTable(['LEASE', 'MODE', 'AREA', 'WHY'], rows));
  }
  for (const disk of decision.unleasedDisks) lines.push(`no lease for disk ${disk.target}: ${disk.reason}`);
  return lines.join('\n');
}

async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'check') throw new UsageError(sub === undefined ? 'expected a subcommand: check' : `unknown subcommand ${JSON.stringify(sub)}: expected check`);
  const { values, positionals } = parseCommandArgs(rest, { 'domain-xml': { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const source = values['domain-xml'];
  if (typeof source !== 'string') throw new UsageError('--domain-xml FILE|- is required');
  const json = values.json === true;
  const checked = await checkDomainPolicy(readDomainXml(source), typeof values.policy === 'string' ? values.policy : POLICY_FILE_DEFAULT);
  if (!checked.ok) return refusal(json, checked.refusal);
  const { decision, leases } = checked;
  process.stdout.write(json ? `${JSON.stringify({ ok: true, vm: decision.vm, leases, unleasedDisks: decision.unleasedDisks }, null, 2)}\n` : `${human(decision, leases)}\n`);
  return ExitStatus.ok;
}

/** A policy refusal, or the lease directory's (its rule is then the DiskError code, e.g. LEASE_DIR_NO_MARKER). */
export type CheckRefusal = Omit<PolicyRefusal, 'rule'> & { readonly rule: PolicyRefusal['rule'] | DiskErrorCode };

export type PolicyCheckResult = { readonly ok: true; readonly decision: Decided; readonly leases: readonly CheckedLease[] } | { readonly ok: false; readonly refusal: CheckRefusal };

/**
 * What `policy check` decides for a domain's XML under a policy file, without
 * printing: the libvirt prepare hook asks the same question. Every call on
 * the disks, the lease directory and the lease files has a deadline
 * (libvirtd waits for the hook without one). Throws DiskError when the lease
 * directory or a lease file cannot be checked (a storage error: a call failed
 * or did not answer in time).
 */
export async function checkDomainPolicy(xml: string, policyPath: string): Promise<PolicyCheckResult> {
  const policy = loadHostPolicy(policyPath);
  const parsed = parseDomainXml(xml);
  if (!parsed.ok) return parsed;
  const facts = await gatherDiskFacts(pathsToInspect(parsed.domain, policy), rootsToInspect(policy), { stepTimeoutMs: TOOL_IO_TIMEOUT_MS });
  const decision = decideLeases(policy, parsed.domain, facts);
  if (!decision.ok) return decision;
  const directory = await directoryRefusal(policy, decision);
  if (directory) return { ok: false, refusal: directory };
  return { ok: true, decision, leases: await checkedLeases(decision, stepsOf(sharedStuckCalls, TOOL_IO_TIMEOUT_MS)) };
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'check which leases a libvirt domain gets by the host policy (no helper needed)',
  usage: `usage: vmlease policy check --domain-xml FILE|- [--policy FILE] [--json]

Reads the libvirt domain XML (a file, or - for standard input) and the host
policy (default ${POLICY_FILE_DEFAULT}), looks at the domain's disks on this
host, and prints the leases \`vmlease register --domain-xml\` would register:
each with its lockspace, resource, area and why; automatic disk lease files
that do not exist yet are marked (register creates them). Writable disks that
get no lease (allowed when the policy does not require one) are listed.
Nothing is written and no helper is needed. Each file-system call has a
${TOOL_IO_TIMEOUT_MS / 1000} s deadline.

A disk path that cannot be inspected (it does not exist, a call on it fails,
or it does not answer within the deadline) gets no disk identity, so no
automatic lease: the reason is shown in the refusal when the policy requires
leases for writable disks (exit 4), else in the list of disks without a
lease (not an error in itself). The lease directory and the automatic
lease files are different: a refused directory (missing, no marker, on a local file system,
...) exits 4, and a call on the directory or on a lease file that fails
otherwise (a lease file that does not exist yet is fine) or does not answer
in time is a storage error naming the path (exit 5).

A refusal prints one line naming the rule, the element and why
(docs/policy.md lists the rules) and exits 4.

  --domain-xml F  the domain XML
  --policy F      the host policy file (default ${POLICY_FILE_DEFAULT})
  --json          print one JSON document: {ok, vm, leases, unleasedDisks}
                  or {ok: false, refusal: {rule, element, message}}

Exit status: 0 accepted, 1 error (e.g. a bad policy file), 2 usage, 4 refused,
5 storage error (the lease directory or a lease file could not be checked:
a call failed or did not answer in time, or too many earlier calls still
hang).`,
  run,
};

import {
  HOSTS_MAX_LIMIT,
  IO_TIMEOUT_MS_MAX,
  specBytes,
  specProblems,
  type AreaSpec,
  type SectorSize,
} from '../../helper/format/index.js';
import { initialiseArea } from '../../helper/areas/index.js';
import { DirectStorage } from '../../helper/storage/index.js';
import { parseCommandArgs, positiveInteger, TOOL_IO_TIMEOUT_MS, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { nonEmpty, parseByteCount, splitLeaseString } from '../lease-string.js';

const HOSTS_DEFAULT: Record<SectorSize, number> = { 512: 2000, 4096: 250 };
const IO_TIMEOUT_MS_DEFAULT = 10_000;

interface Target {
  readonly lockspaceName: string;
  readonly resourceName: string | undefined;
  readonly path: string;
  readonly offset: number;
}

function parseTarget(kind: AreaSpec['kind'], text: string): Target {
  const fields = splitLeaseString(text, kind === 'lockspace' ? 'LS:PATH:OFFSET' : 'LS:RES:PATH:OFFSET');
  const expected = kind === 'lockspace' ? 3 : 4;
  if (fields.length !== expected) {
    throw new UsageError(`${JSON.stringify(text)} has ${fields.length} fields, expected ${kind === 'lockspace' ? 'LS:PATH:OFFSET' : 'LS:RES:PATH:OFFSET'} (write ':' inside a path as '\\:')`);
  }
  const [lockspaceName, ...rest] = fields as [string, ...string[]];
  const resourceName = kind === 'resource' ? rest.shift()! : undefined;
  const [path, offset] = rest as [string, string];
  return { lockspaceName, resourceName, path: nonEmpty(path, 'PATH'), offset: parseByteCount(offset, 'OFFSET') };
}

function sectorSizeOption(text: string | undefined): SectorSize | undefined {
  if (text === undefined) return undefined;
  if (text !== '512' && text !== '4096') throw new UsageError(`--sector-size must be 512 or 4096, not ${JSON.stringify(text)}`);
  return Number(text) as SectorSize;
}

function makeSpec(kind: AreaSpec['kind'], target: Target, hostsMax: number, sectorSize: SectorSize, ioTimeoutMs: number): AreaSpec {
  const spec: AreaSpec =
    kind === 'lockspace'
      ? { kind, lockspaceName: target.lockspaceName, hostsMax, sectorSize, ioTimeoutMs }
      : { kind, lockspaceName: target.lockspaceName, resourceName: target.resourceName!, hostsMax, sectorSize };
  const problems = specProblems(spec);
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  return spec;
}

async function run(kind: AreaSpec['kind'], args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    hosts: { type: 'string' },
    'sector-size': { type: 'string' },
    ...(kind === 'lockspace' ? { 'io-timeout-ms': { type: 'string' } } : {}),
    force: { type: 'boolean', default: false },
  } as const);
  if (positionals.length !== 1) throw new UsageError(`expected one ${kind === 'lockspace' ? 'LS:PATH:OFFSET' : 'LS:RES:PATH:OFFSET'}, got ${positionals.length} arguments`);
  const target = parseTarget(kind, positionals[0]!);
  const requestedSectorSize = sectorSizeOption(values['sector-size'] as string | undefined);
  const hostsText = values.hosts as string | undefined;
  const hostsRequested = hostsText === undefined ? undefined : positiveInteger(hostsText, '--hosts', HOSTS_MAX_LIMIT);
  const ioText = values['io-timeout-ms'] as string | undefined;
  const ioTimeoutMs = ioText === undefined ? IO_TIMEOUT_MS_DEFAULT : positiveInteger(ioText, '--io-timeout-ms', IO_TIMEOUT_MS_MAX);
  // Names are checked before anything is opened or created.
  makeSpec(kind, target, hostsRequested ?? 1, requestedSectorSize ?? 4096, ioTimeoutMs);

  const storage = await DirectStorage.open(target.path, { writable: true, create: true, ioTimeoutMs: TOOL_IO_TIMEOUT_MS });
  try {
    // Default sector size: the device's logical block size, or 4096 (always safe) when unknown.
    const sectorSize = requestedSectorSize ?? ((storage.info.logicalBlockSize === 512 ? 512 : 4096) as SectorSize);
    if (sectorSize % storage.alignment !== 0) {
      throw new UsageError(`--sector-size ${sectorSize} is smaller than the logical block size ${storage.alignment} of ${target.path}`);
    }
    if (target.offset % sectorSize !== 0) throw new UsageError(`OFFSET ${target.offset} is not a multiple of the sector size ${sectorSize}`);
    const spec = makeSpec(kind, target, hostsRequested ?? HOSTS_DEFAULT[sectorSize], sectorSize, ioTimeoutMs);
    const outcome = await initialiseArea(storage, target.offset, spec, values.force === true);
    if (outcome.overwrote) process.stderr.write(`vmlease: --force: overwrote what was there: ${outcome.overwrote.message}\n`);
    const what = spec.kind === 'lockspace' ? `lockspace ${spec.lockspaceName}` : `resource ${spec.resourceName} of lockspace ${spec.lockspaceName}`;
    const timeout = spec.kind === 'lockspace' ? `, io timeout ${spec.ioTimeoutMs} ms` : '';
    process.stdout.write(`initialised ${what} at ${target.path}:${target.offset}: ${spec.hostsMax} host ids, ${spec.sectorSize}-byte sectors, ${specBytes(spec)} bytes${timeout}\n`);
    return ExitStatus.ok;
  } finally {
    await storage.close();
  }
}

export const initLockspaceCommand: Command = {
  name: 'init-lockspace',
  summary: 'initialise a lockspace area (one delta lease per host id)',
  usage: `usage: vmlease init-lockspace LS:PATH:OFFSET [--hosts N] [--sector-size 512|4096] [--io-timeout-ms N] [--force]

Writes a lockspace named LS at byte OFFSET of PATH (a regular file, created
if missing, or a block device), with every host id's delta lease free, and
reads it back to check it.

  --hosts N            host ids the area serves, 1..${HOSTS_MAX_LIMIT}; fixed for the area's life.
                       Default ${HOSTS_DEFAULT[512]} with 512-byte sectors, ${HOSTS_DEFAULT[4096]} with 4096. Keep it small for
                       small clusters: every ballot reads a block per host id.
  --sector-size S      512 or 4096. Default: the device's logical block size,
                       4096 when unknown (tmpfs, NFS).
  --io-timeout-ms N    the lockspace's io timeout, recorded in the area and
                       authoritative for every host (default ${IO_TIMEOUT_MS_DEFAULT}).
  --force              overwrite an initialised area or non-zero data.

A ':' inside PATH is written '\\:', a backslash '\\\\'. OFFSET is in bytes and a
multiple of the sector size.
Exit status: 0 ok, 1 refused to overwrite (use --force), 2 usage, 5 storage error.`,
  run: (args) => run('lockspace', args),
};

export const initResourceCommand: Command = {
  name: 'init-resource',
  summary: 'initialise a resource lease area (leader + one Disk Paxos block per host id)',
  usage: `usage: vmlease init-resource LS:RES:PATH:OFFSET [--hosts N] [--sector-size 512|4096] [--force]

Writes resource RES of lockspace LS at byte OFFSET of PATH (a regular file,
created if missing, or a block device): a free leader record and an empty
block for every host id, then reads it back to check it.

  --hosts N            host ids the area serves, 1..${HOSTS_MAX_LIMIT}; use the lockspace's count.
                       Default ${HOSTS_DEFAULT[512]} with 512-byte sectors, ${HOSTS_DEFAULT[4096]} with 4096.
  --sector-size S      512 or 4096. Default: the device's logical block size,
                       4096 when unknown (tmpfs, NFS).
  --force              overwrite an initialised area or non-zero data.

A ':' inside PATH is written '\\:', a backslash '\\\\'. OFFSET is in bytes and a
multiple of the sector size.
Exit status: 0 ok, 1 refused to overwrite (use --force), 2 usage, 5 storage error.`,
  run: (args) => run('resource', args),
};

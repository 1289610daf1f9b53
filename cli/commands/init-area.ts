import {
  HOSTS_MAX_LIMIT,
  IO_TIMEOUT_MS_MAX,
  specBytes,
  specProblems,
  type AreaSpec,
  type SectorSize,
} from '../../helper/format/index.js';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { AREA_ALIGNMENT_BYTES, initialiseArea } from '../../helper/areas/index.js';
import { StorageError, StorageErrorCode } from '../../helper/storage/index.js';
import { parseCommandArgs, positiveInteger, TOOL_IO_TIMEOUT_MS, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { escapeLeaseField, nonEmpty, parseByteCount, splitLeaseString } from '../lease-string.js';
import { withStorage } from '../storage-session.js';

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

/** Turns "no such file" into advice: lease files are created only on request. */
function explainMissing(error: unknown, path: string): unknown {
  if (error instanceof StorageError && error.code === StorageErrorCode.open && /ENOENT/.test(error.message)) {
    return new StorageError(StorageErrorCode.open, path, 'does not exist (give --create to create a new lease file; a missing shared mount is never replaced by a local file)');
  }
  if (error instanceof StorageError && error.code === StorageErrorCode.open && /EEXIST/.test(error.message)) {
    return new UsageError(`--create: ${path} already exists; leave out --create to initialise an existing file or device`);
  }
  if (error instanceof StorageError && error.code === StorageErrorCode.open && /EBUSY/.test(error.message)) {
    return new StorageError(StorageErrorCode.open, path, 'the block device is in use (mounted, or held by device-mapper, md or another exclusive opener)');
  }
  return error;
}

async function run(kind: AreaSpec['kind'], args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    hosts: { type: 'string' },
    'sector-size': { type: 'string' },
    ...(kind === 'lockspace' ? { 'io-timeout-ms': { type: 'string' } } : {}),
    create: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
  } as const);
  if (positionals.length !== 1) throw new UsageError(`expected one ${kind === 'lockspace' ? 'LS:PATH:OFFSET' : 'LS:RES:PATH:OFFSET'}, got ${positionals.length} arguments`);
  const target = parseTarget(kind, positionals[0]!);
  const requestedSectorSize = sectorSizeOption(values['sector-size'] as string | undefined);
  const hostsText = values.hosts as string | undefined;
  const hostsRequested = hostsText === undefined ? undefined : positiveInteger(hostsText, '--hosts', HOSTS_MAX_LIMIT);
  const ioText = values['io-timeout-ms'] as string | undefined;
  const ioTimeoutMs = ioText === undefined ? IO_TIMEOUT_MS_DEFAULT : positiveInteger(ioText, '--io-timeout-ms', IO_TIMEOUT_MS_MAX);
  const create = values.create === true;
  // Everything that can be checked without the storage is checked before it is opened or created.
  makeSpec(kind, target, hostsRequested ?? 1, requestedSectorSize ?? 4096, ioTimeoutMs);
  if (target.offset % AREA_ALIGNMENT_BYTES !== 0) throw new UsageError(`OFFSET ${target.offset} is not a multiple of ${AREA_ALIGNMENT_BYTES} (areas start on 4096-byte boundaries)`);
  if (create && resolve(target.path).startsWith('/dev/')) throw new UsageError(`--create: will not create a regular file under /dev (${target.path}); is the device name right?`);

  const path = escapeLeaseField(target.path);
  try {
    return await withStorage(target.path, { writable: true, create, exclusiveBlockDevice: true, ioTimeoutMs: TOOL_IO_TIMEOUT_MS }, async (storage) => {
      // Default sector size: the device's logical block size, or 4096 (always safe) when unknown.
      const sectorSize = requestedSectorSize ?? ((storage.info.logicalBlockSize === 512 ? 512 : 4096) as SectorSize);
      if (sectorSize % storage.alignment !== 0) {
        throw new UsageError(`--sector-size ${sectorSize} is smaller than the logical block size ${storage.alignment} of ${target.path}`);
      }
      const spec = makeSpec(kind, target, hostsRequested ?? HOSTS_DEFAULT[sectorSize], sectorSize, ioTimeoutMs);
      const outcome = await initialiseArea(storage, target.offset, spec, values.force === true);
      if (outcome.overwrote) process.stderr.write(`vmlease: --force: overwrote what was there: ${outcome.overwrote.message}\n`);
      const what = spec.kind === 'lockspace' ? `lockspace ${spec.lockspaceName}` : `resource ${spec.resourceName} of lockspace ${spec.lockspaceName}`;
      const timeout = spec.kind === 'lockspace' ? `, io timeout ${spec.ioTimeoutMs} ms` : '';
      process.stdout.write(`initialised ${what} at ${path}:${target.offset}: ${spec.hostsMax} host ids, ${spec.sectorSize}-byte sectors, ${specBytes(spec)} bytes${timeout}\n`);
      return ExitStatus.ok;
    });
  } catch (error) {
    // A file this run created and could not initialise is removed, not left behind empty.
    if (create && !(error instanceof StorageError && error.code === StorageErrorCode.open)) rmSync(target.path, { force: true });
    throw explainMissing(error, target.path);
  }
}

const SECTOR_SIZE_HELP = `  --sector-size S      512 or 4096. Default: the device's logical block size,
                       4096 when unknown (tmpfs, NFS).`;

const HELP_TAIL = `  --create             create PATH as a new regular file (refused if it exists,
                       and under /dev). Without it PATH must exist, so an
                       unmounted shared directory is never silently replaced.
  --force              overwrite an initialised area or non-zero data (checked
                       up to the next 4096-byte boundary after the area).

A block device is opened exclusively: a mounted or otherwise held device is
refused. A ':' inside PATH is written '\\:', a backslash '\\\\'. OFFSET is in
bytes and a multiple of 4096.
Exit status: 0 ok, 1 refused to overwrite (use --force), 2 usage, 5 storage error.`;

export const initLockspaceCommand: Command = {
  name: 'init-lockspace',
  summary: 'initialise a lockspace area (one delta lease per host id)',
  usage: `usage: vmlease init-lockspace LS:PATH:OFFSET [--hosts N] [--sector-size 512|4096] [--io-timeout-ms N] [--create] [--force]

Writes a lockspace named LS at byte OFFSET of PATH (an existing regular file
or block device, or a new file with --create), with every host id's delta
lease free, and reads it back to check it.

  --hosts N            host ids the area serves, 1..${HOSTS_MAX_LIMIT}; fixed for the area's life.
                       Default ${HOSTS_DEFAULT[512]} with 512-byte sectors, ${HOSTS_DEFAULT[4096]} with 4096. Keep it small for
                       small clusters: every ballot reads a block per host id.
${SECTOR_SIZE_HELP}
  --io-timeout-ms N    the lockspace's io timeout, recorded in the area and
                       authoritative for every host (default ${IO_TIMEOUT_MS_DEFAULT}).
${HELP_TAIL}`,
  run: (args) => run('lockspace', args),
};

export const initResourceCommand: Command = {
  name: 'init-resource',
  summary: 'initialise a resource lease area (leader + one Disk Paxos block per host id)',
  usage: `usage: vmlease init-resource LS:RES:PATH:OFFSET [--hosts N] [--sector-size 512|4096] [--create] [--force]

Writes resource RES of lockspace LS at byte OFFSET of PATH (an existing
regular file or block device, or a new file with --create): a free leader
record and an empty block for every host id, then reads it back to check it.

  --hosts N            host ids the area serves, 1..${HOSTS_MAX_LIMIT}; use the lockspace's count.
                       Default ${HOSTS_DEFAULT[512]} with 512-byte sectors, ${HOSTS_DEFAULT[4096]} with 4096.
${SECTOR_SIZE_HELP}
${HELP_TAIL}`,
  run: (args) => run('resource', args),
};

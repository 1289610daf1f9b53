import { FormatError, identifyArea, RECORD_BYTES, specBytes } from '../../helper/format/index.js';
import { readAreaAt } from '../../helper/areas/index.js';
import type { DirectStorage } from '../../helper/storage/index.js';
import { parseCommandArgs, TOOL_IO_TIMEOUT_MS, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { nonEmpty, parseByteCount, splitLeaseString } from '../lease-string.js';
import { dumpText } from '../render/dump-human.js';
import { dumpJson, reportErrorCount, type DumpReport } from '../render/dump-report.js';
import { withStorage } from '../storage-session.js';

/** Bytes read at a time while scanning a range for areas. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

interface Target {
  readonly path: string;
  readonly offset: number;
  /** undefined: just the area at offset. */
  readonly length: number | undefined;
}

function parseTarget(text: string): Target {
  const fields = splitLeaseString(text, 'PATH[:OFFSET[:LENGTH]]');
  if (fields.length > 3) throw new UsageError(`${JSON.stringify(text)} has ${fields.length} fields, expected PATH[:OFFSET[:LENGTH]] (write ':' inside a path as '\\:')`);
  const [path, offset, length] = fields as [string, string?, string?];
  return {
    path: nonEmpty(path, 'PATH'),
    offset: offset === undefined ? 0 : parseByteCount(offset, 'OFFSET'),
    length: length === undefined ? undefined : parseByteCount(length, 'LENGTH'),
  };
}

async function dumpOne(storage: DirectStorage, offset: number): Promise<DumpReport> {
  try {
    return { path: storage.path, areas: [{ offset, area: await readAreaAt(storage, offset) }], problems: [] };
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    return { path: storage.path, areas: [], problems: [{ offset, error }] };
  }
}

/**
 * Walks [offset, offset+length) a sector at a time, skipping zeros, dumping
 * every area that starts there and reporting any other non-zero sector.
 */
async function dumpRange(storage: DirectStorage, offset: number, length: number): Promise<DumpReport> {
  const report = { path: storage.path, areas: [] as DumpReport['areas'][number][], problems: [] as DumpReport['problems'][number][] };
  const step = storage.alignment;
  const end = offset + length;
  let chunkStart = -1;
  let chunk: Uint8Array = new Uint8Array(0);
  let at = offset;
  while (at < end) {
    if (at < chunkStart || at + step > chunkStart + chunk.byteLength) {
      chunkStart = at;
      chunk = await storage.read(at, Math.min(SCAN_CHUNK_BYTES, Math.ceil((end - at) / step) * step));
      if (chunk.byteLength < RECORD_BYTES) break; // end of the file
    }
    const sector = chunk.subarray(at - chunkStart, at - chunkStart + step);
    if (sector.every((b) => b === 0)) {
      at += step;
      continue;
    }
    try {
      const spec = identifyArea(sector, `area at ${storage.path}:${at}`);
      report.areas.push({ offset: at, area: await readAreaAt(storage, at) });
      at += specBytes(spec);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      report.problems.push({ offset: at, error });
      at += step;
    }
  }
  return report;
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean', default: false } });
  if (positionals.length !== 1) throw new UsageError(`expected one PATH[:OFFSET[:LENGTH]], got ${positionals.length} arguments`);
  const target = parseTarget(positionals[0]!);
  return withStorage(target.path, { writable: false, ioTimeoutMs: TOOL_IO_TIMEOUT_MS }, async (storage) => {
    if (target.offset % storage.alignment !== 0) throw new UsageError(`OFFSET ${target.offset} is not a multiple of ${storage.alignment}, the logical block size of ${target.path}`);
    const report = target.length === undefined ? await dumpOne(storage, target.offset) : await dumpRange(storage, target.offset, target.length);
    process.stdout.write(values.json === true ? `${JSON.stringify(dumpJson(report), null, 2)}\n` : dumpText(report));
    const errors = reportErrorCount(report);
    if (errors > 0) {
      process.stderr.write(`vmlease dump: ${errors} record(s) in ${target.path} failed their checks (listed above)\n`);
      return ExitStatus.storage;
    }
    return ExitStatus.ok;
  });
}

export const dumpCommand: Command = {
  name: 'dump',
  summary: 'show the lease areas in a file or device (direct reads, no daemon needed)',
  usage: `usage: vmlease dump PATH[:OFFSET[:LENGTH]] [--json]

Reads lease storage with O_DIRECT, without any daemon, and shows each area:
for a lockspace every used host id's delta lease (owner incarnation,
generation, timestamp, timeouts, request bits); for a resource its leader
(owner, generation, lver) and every used host block. Never-used records are
summarised in one line.

  PATH                 a lease file or block device (':' inside written '\\:')
  OFFSET               where an area starts (bytes, default 0)
  LENGTH               scan [OFFSET, OFFSET+LENGTH) for areas instead of
                       dumping the single area at OFFSET
  --json               one JSON document listing every record

A record that fails its check is shown with its error code and reason.
Exit status: 0 all records valid, 2 usage, 5 storage error or a record failed
its check (or no area at OFFSET).`,
  run,
};

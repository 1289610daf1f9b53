import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

/**
 * The fault harness's "VM": run under `vmlease supervise` as the VM's uid, it
 * keeps one 4096-byte block of its VM's data device busy and detects any
 * other writer of that block (docs/chaos.md):
 *
 *   node writer.js --device PATH --offset BYTES --host ID --vm UUID --violations FILE [--interval-ms N]
 *
 * The block holds one record {vm, host, incarnation, seq}. At start the
 * writer reads it (whoever wrote last) and writes its own with seq+1; then,
 * every interval, it reads the block and checks that it still holds exactly
 * the record it wrote last before writing the next one (seq+1). A second
 * writer on another host, or a write of a fenced writer that lands late,
 * breaks that: the writer appends one JSON line to the violations file
 * (O_APPEND, then fsync by closing) and exits 99. All I/O is O_DIRECT|O_DSYNC
 * (the "hosts" share one page cache, which would hide nothing but also
 * escape the per-host I/O throttling), from a page-aligned buffer.
 *
 * Its first line on stdout, {"event":"writing",...}, tells the harness that
 * the VM runs (after its first write landed).
 */

const BLOCK_BYTES = 4096;
const RECORD_BYTES_MAX = 1024;
export const WRITER_VIOLATION_EXIT = 99;
const INTERVAL_MS_DEFAULT = 50;
const INTERVAL_MS_MAX = 10_000;

interface WriterRecord {
  readonly vm: string;
  readonly host: number;
  readonly incarnation: string;
  readonly seq: number;
}

function fail(message: string): never {
  process.stderr.write(`chaos writer: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    device: { type: 'string' },
    offset: { type: 'string' },
    host: { type: 'string' },
    vm: { type: 'string' },
    violations: { type: 'string' },
    'interval-ms': { type: 'string' },
  },
  strict: true,
});
const device = values.device ?? fail('--device is required');
const offset = Number(values.offset ?? fail('--offset is required'));
if (!Number.isSafeInteger(offset) || offset < 0 || offset % BLOCK_BYTES !== 0) fail(`--offset ${values.offset}: a multiple of ${BLOCK_BYTES}`);
const host = Number(values.host ?? fail('--host is required'));
const vm = values.vm ?? fail('--vm is required');
const violationsFile = values.violations ?? fail('--violations is required');
const intervalMs = Number(values['interval-ms'] ?? INTERVAL_MS_DEFAULT);
if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > INTERVAL_MS_MAX) fail(`--interval-ms ${values['interval-ms']}: 1..${INTERVAL_MS_MAX}`);

const incarnation = randomBytes(8).toString('hex');
const fd = openSync(device, constants.O_RDWR | constants.O_DIRECT | constants.O_DSYNC);
// Page-aligned: WebAssembly memory starts on a page (O_DIRECT needs aligned buffer addresses).
const block = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer, 0, BLOCK_BYTES);

function readRecord(): WriterRecord | undefined {
  const n = readSync(fd, block, 0, BLOCK_BYTES, offset);
  if (n !== BLOCK_BYTES) throw new Error(`short read ${n}`);
  const end = block.indexOf(0);
  const text = Buffer.from(block.buffer, 0, end < 0 ? RECORD_BYTES_MAX : Math.min(end, RECORD_BYTES_MAX)).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as WriterRecord;
  } catch {
    return { vm: '?', host: -1, incarnation: `unparsable:${text.slice(0, 80)}`, seq: -1 };
  }
}

function writeRecord(record: WriterRecord): void {
  block.fill(0);
  const bytes = Buffer.from(JSON.stringify(record));
  block.set(bytes, 0);
  const n = writeSync(fd, block, 0, BLOCK_BYTES, offset);
  if (n !== BLOCK_BYTES) throw new Error(`short write ${n}`);
}

function same(a: WriterRecord | undefined, b: WriterRecord): boolean {
  return a !== undefined && a.incarnation === b.incarnation && a.seq === b.seq && a.host === b.host;
}

function reportViolation(expected: WriterRecord, found: WriterRecord | undefined): never {
  const line = JSON.stringify({ kind: 'concurrent-writer', vm, host, incarnation, pid: process.pid, atMs: Date.now(), expected, found: found ?? null });
  const v = openSync(violationsFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o666);
  writeSync(v, `${line}\n`);
  closeSync(v);
  process.stderr.write(`chaos writer: VIOLATION ${line}\n`);
  process.exit(WRITER_VIOLATION_EXIT);
}

const first = readRecord();
let last: WriterRecord = { vm, host, incarnation, seq: (first?.seq ?? 0) + 1 };
writeRecord(last);
process.stdout.write(`${JSON.stringify({ event: 'writing', vm, host, incarnation, pid: process.pid, seq: last.seq, previous: first ?? null })}\n`);

setInterval(() => {
  const found = readRecord();
  if (!same(found, last)) reportViolation(last, found);
  last = { vm, host, incarnation, seq: last.seq + 1 };
  writeRecord(last);
}, intervalMs);

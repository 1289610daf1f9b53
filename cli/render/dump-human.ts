import type { Checked, DeltaRecord, HostBlock, LeaderRecord, LockspaceArea, ResourceArea } from '../../helper/format/index.js';
import { specBytes } from '../../helper/format/index.js';
import type { DumpReport } from './dump-report.js';
import { renderTable } from './table.js';

/**
 * `dump` for people: one table per area. Records that were never used are
 * summarised in one line; every record that fails its check gets its own row
 * with the error code and reason.
 */

/** Host names come from storage: anything but printable ASCII is shown escaped, never raw. */
function printable(text: string): string {
  return /^[\x21-\x7e]*$/.test(text) ? text : JSON.stringify(text);
}

function owner(record: DeltaRecord): string {
  if (record.owner.hostName === '' && /^0+$/.test(record.owner.bootId)) return '-';
  return `${printable(record.owner.hostName)} (boot ${record.owner.bootId.slice(0, 8)}, nonce ${record.owner.nonce.slice(0, 8)})`;
}

function pristineDelta(record: DeltaRecord): boolean {
  return record.generation === 0 && record.timestampMs === 0 && owner(record) === '-' && record.requests.length === 0;
}

function pristineBlock(block: HostBlock): boolean {
  return block.mbal === 0 && block.bal === 0 && block.inp.hostId === 0 && block.writerGeneration === 0 && !block.shared && !block.released && block.request.lver === 0;
}

/** The summary line for never-used records: "16 host ids: ..." alone, "14 more host ids: ..." after rows. */
function remainder(count: number, shownRows: number, what: string): string[] {
  if (count === 0) return [];
  return [`${count} ${shownRows > 0 ? 'more ' : ''}${what}`];
}

/**
 * Rows for the records of an area: one per record that is used or fails its
 * check; never-used records are only counted.
 */
function recordRows<T>(records: readonly Checked<T>[], pristine: (record: T) => boolean, cells: (record: T) => string[]): { rows: string[][]; untouched: number } {
  const rows: string[][] = [];
  let untouched = 0;
  records.forEach((checked, index) => {
    const hostId = String(index + 1);
    if (!checked.ok) rows.push([hostId, 'ERROR', `${checked.error.code}: ${checked.error.reason}`]);
    else if (pristine(checked.value)) untouched++;
    else rows.push([hostId, ...cells(checked.value)]);
  });
  return { rows, untouched };
}

function lockspaceText(offset: number, area: LockspaceArea, path: string): string {
  const spec = area.spec;
  const { rows, untouched } = recordRows(area.hosts, pristineDelta, (r) => [
    r.timestampMs === 0 ? 'free' : 'held',
    String(r.generation),
    String(r.timestampMs),
    owner(r),
    String(r.ownerIoTimeoutMs),
    r.ownerWatchdogFireTimeoutMs === 0 ? 'none' : String(r.ownerWatchdogFireTimeoutMs),
    r.requests.length === 0 ? '-' : r.requests.join(','),
  ]);
  return [
    `lockspace ${JSON.stringify(spec.lockspaceName)} at ${path}:${offset}: ${spec.hostsMax} host ids, ${spec.sectorSize}-byte sectors, ${specBytes(spec)} bytes, io timeout ${spec.ioTimeoutMs} ms`,
    ...(rows.length > 0 ? [renderTable(['HOST', 'STATE', 'GENERATION', 'TIMESTAMP_MS', 'OWNER', 'IO_TIMEOUT_MS', 'WATCHDOG_MS', 'REQUESTS'], rows)] : []),
    ...remainder(untouched, rows.length, 'host ids: free, never joined'),
  ].join('\n');
}

function leaderText(leader: LeaderRecord): string {
  const writer = leader.writerHostId === 0 ? 'written at init' : `written by host ${leader.writerHostId} (generation ${leader.writerGeneration}) at ${leader.timestampMs} ms`;
  const state = leader.ownerHostId === 0 ? 'free' : `owner host ${leader.ownerHostId} generation ${leader.ownerGeneration}`;
  return `leader: ${state}, lver ${leader.lver}, ${writer}`;
}

function resourceText(offset: number, area: ResourceArea, path: string): string {
  const spec = area.spec;
  const { rows, untouched } = recordRows(area.hosts, pristineBlock, (b) => [
    String(b.mbal),
    String(b.bal),
    (b.inp.hostId === 0 ? '-' : `host ${b.inp.hostId} gen ${b.inp.generation} lver ${b.inp.lver}`) + (b.released ? ' (released)' : ''),
    String(b.writerGeneration),
    b.shared ? `yes (gen ${b.sharedGeneration})` : 'no',
    b.request.lver === 0 ? '-' : `lver ${b.request.lver} gen ${b.request.generation}`,
  ]);
  const leader = area.leader.ok ? leaderText(area.leader.value) : `leader: ERROR ${area.leader.error.code}: ${area.leader.error.reason}`;
  return [
    `resource ${JSON.stringify(spec.resourceName)} of lockspace ${JSON.stringify(spec.lockspaceName)} at ${path}:${offset}: ${spec.hostsMax} host ids, ${spec.sectorSize}-byte sectors, ${specBytes(spec)} bytes`,
    leader,
    ...(rows.length > 0 ? [renderTable(['HOST', 'MBAL', 'BAL', 'PROPOSAL', 'WRITER_GEN', 'SHARED', 'REQUEST'], rows)] : []),
    ...remainder(untouched, rows.length, 'host blocks: empty'),
  ].join('\n');
}

export function dumpText(report: DumpReport): string {
  const sections = report.areas.map(({ offset, area }) => ('leader' in area ? resourceText(offset, area, report.path) : lockspaceText(offset, area, report.path)));
  for (const { error } of report.problems) sections.push(`ERROR ${error.code}: ${error.message}`);
  if (sections.length === 0) sections.push(`no lease areas found in ${report.path}`);
  return `${sections.join('\n\n')}\n`;
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderTable } from '../cli/render/table.js';
import { measureTarget, type IoCase } from './io-latency.js';
import { measureAcquireRelease, measureJoin, measureRenewalIo, type JoinCase, type OpCase, type RenewalCase } from './lease-ops.js';
import { attachLoopDevice } from './support/loop-device.js';
import { measureSupervisor, type SupervisorFootprint } from './supervisor-footprint.js';

/**
 * `npm run bench`: numbers and ratios, never pass/fail. Prints a table, or
 * with --json one JSON document. Suites are added here as the project grows.
 */

const usage = `usage: npm run bench [-- --json]

Measures aligned O_DIRECT|O_DSYNC read and write latency (p50, p99) of one
sector and of whole 16- and 2000-host resource areas, on a file on the work
disk (512-byte sectors) and on a 4096-byte-sector loop device (needs root),
through vmlease's storage layer and as a synchronous floor; lease operations
against sanlock's figures (a 16-host acquire also with the threads' brief
spinning off, SPIN off: both sleep between I/Os); and (as root) the supervisor's resident memory and
time from start to its child's exec under a real helper.`;

async function ioSuite(): Promise<{ cases: IoCase[]; notes: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'vmlease-bench-'));
  const notes: string[] = [];
  try {
    const cases = await measureTarget('file (work disk)', join(dir, 'bench.img'), 512, true);
    if (process.getuid?.() === 0) {
      const loop = attachLoopDevice(join(dir, 'loop4k.img'), 64 * 1024 * 1024, 4096);
      try {
        cases.push(...(await measureTarget(`loop device (${loop.path})`, loop.path, 4096, false)));
      } finally {
        loop.detach();
      }
    } else {
      notes.push('4096-byte-sector loop device not measured: needs root');
    }
    return { cases, notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ratio(a: number, b: number): string {
  return b === 0 ? '-' : `${(a / b).toFixed(2)}x`;
}

function ioTable(cases: readonly IoCase[]): string {
  return renderTable(
    ['TARGET', 'SECTOR', 'OP', 'WHAT', 'BYTES', 'P50_MS', 'P99_MS', 'IN_PLACE_P50_MS', 'IN_PLACE_P99_MS', 'SYNC_P50_MS', 'SYNC_P99_MS', 'BEST_P50_VS_SYNC'],
    cases.map((c) => {
      const best = c.storageInPlace ?? c.storage;
      return [
        c.target, String(c.sectorSize), c.op, c.what, String(c.bytes),
        c.storage.p50Ms.toFixed(3), c.storage.p99Ms.toFixed(3),
        c.storageInPlace?.p50Ms.toFixed(3) ?? '-', c.storageInPlace?.p99Ms.toFixed(3) ?? '-',
        c.syncFloor.p50Ms.toFixed(3), c.syncFloor.p99Ms.toFixed(3), ratio(best.p50Ms, c.syncFloor.p50Ms),
      ];
    }),
  );
}

function areaRatios(cases: readonly IoCase[]): string[] {
  const lines: string[] = [];
  for (const target of new Set(cases.map((c) => c.target))) {
    const read = (what: string): IoCase | undefined => cases.find((c) => c.target === target && c.op === 'read' && c.what === what);
    const sector = read('one sector');
    const small = read('resource area, 16 hosts');
    const large = read('resource area, 2000 hosts');
    if (sector && small && large) {
      const p50 = (c: IoCase): number => (c.storageInPlace ?? c.storage).p50Ms;
      lines.push(`${target}: in-place read p50 of a 16-host area is ${ratio(p50(small), p50(sector))} one sector's; a 2000-host area's is ${ratio(p50(large), p50(small))} a 16-host area's`);
    }
  }
  return lines;
}

/** sanlock 3.8.5 on this kind of machine (SPEC section 11): the reference our numbers are compared with. */
const SANLOCK = { acquireP50Ms: { 512: 4.6, 4096: 31 }, acquireIos: 6, releaseP50Ms: 0.2, releaseIos: 3, joinMsAtIoTimeout1s: 3000 } as const;

async function leaseSuite(): Promise<{ ops: OpCase[]; joins: JoinCase[]; renewals: RenewalCase[]; notes: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'vmlease-bench-'));
  const notes: string[] = [];
  try {
    const file = join(dir, 'leases.img');
    const ops: OpCase[] = [];
    for (const hosts of [16, 2000]) ops.push(...(await measureAcquireRelease('file (work disk)', file, 512, hosts, hosts === 16 ? 1000 : 100)));
    // The same with both threads sleeping between I/Os: what the spinning buys on this machine.
    ops.push(...(await measureAcquireRelease('file (work disk)', file, 512, 16, 1000, false)));
    if (process.getuid?.() === 0) {
      const loop = attachLoopDevice(join(dir, 'loop4k.img'), 64 * 1024 * 1024, 4096);
      try {
        for (const hosts of [16, 2000]) ops.push(...(await measureAcquireRelease(`loop device (${loop.path})`, loop.path, 4096, hosts, hosts === 16 ? 300 : 50)));
      } finally {
        loop.detach();
      }
    } else {
      notes.push('lease operations on the 4096-byte-sector loop device not measured: needs root');
    }
    const joins = [await measureJoin(join(dir, 'join.img'), 100, 5), await measureJoin(join(dir, 'join1s.img'), 1000, 2)];
    const renewals = [await measureRenewalIo(join(dir, 'renew1.img'), 1, 20), await measureRenewalIo(join(dir, 'renew1000.img'), 1000, 20)];
    return { ops, joins, renewals, notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function leaseTables(suite: Awaited<ReturnType<typeof leaseSuite>>): string {
  const ops = renderTable(
    ['TARGET', 'SECTOR', 'HOSTS', 'SPIN', 'IO_SEEN_SPINNING', 'OP', 'P50_MS', 'P99_MS', 'SYNC_FLOOR_P50_MS', 'P50_VS_FLOOR', 'READS', 'WRITES', 'BYTES_READ', 'SANLOCK_P50_MS', 'SANLOCK_IOS', 'SANLOCK_P50_VS_OURS'],
    suite.ops.map((c) => {
      const sanlockMs = c.op === 'acquire' ? SANLOCK.acquireP50Ms[c.sectorSize] : SANLOCK.releaseP50Ms;
      return [c.target, String(c.sectorSize), String(c.hostsMax), c.spinning ? 'on' : 'off', `${Math.round(c.spinShare * 100)}%`, c.op, c.latency.p50Ms.toFixed(3), c.latency.p99Ms.toFixed(3), c.syncFloor.p50Ms.toFixed(3), ratio(c.latency.p50Ms, c.syncFloor.p50Ms), c.readsPerOp.toFixed(1), c.writesPerOp.toFixed(1), String(Math.round(c.bytesReadPerOp)), sanlockMs.toFixed(1), String(c.op === 'acquire' ? SANLOCK.acquireIos : SANLOCK.releaseIos), ratio(sanlockMs, c.latency.p50Ms)];
    }),
  );
  const joins = renderTable(
    ['IO_TIMEOUT_MS', 'JOIN_P50_MS', 'JOIN_MAX_MS', 'SANLOCK_MS'],
    suite.joins.map((j) => [String(j.ioTimeoutMs), j.joinMs.p50Ms.toFixed(1), j.joinMs.maxMs.toFixed(1), j.ioTimeoutMs === 1000 ? String(SANLOCK.joinMsAtIoTimeout1s) : '-']),
  );
  const renewals = renderTable(
    ['LEASES_HELD', 'INTERVALS', 'LOCKSPACE_IO_PER_INTERVAL', 'RESOURCE_IO_DURING_RENEWALS'],
    suite.renewals.map((r) => [String(r.leasesHeld), String(r.intervals), r.lockspaceIoPerInterval.toFixed(2), String(r.resourceIoDuringRenewals)]),
  );
  return `Lease operations (uncontended; sanlock columns: sanlock 3.8.5 measured on this machine kind, SPEC section 11)\n${ops}\n\nJoin a free 16-host lockspace\n${joins}\n\nRenewal I/O (io timeout 50 ms, renewal every 100 ms)\n${renewals}`;
}

const SUPERVISOR_RUNS = 5;

function supervisorTable(footprint: SupervisorFootprint | undefined): string {
  if (!footprint) return 'Supervisor footprint not measured: needs root (it runs as uid 65534 under a real helper)';
  const table = renderTable(
    ['RUNS', 'RSS_P50_MIB', 'RSS_MAX_MIB', 'START_TO_EXEC_P50_MS', 'START_TO_EXEC_MAX_MS'],
    [[String(footprint.runs), (footprint.rssKiB.p50 / 1024).toFixed(1), (footprint.rssKiB.max / 1024).toFixed(1), String(footprint.startToExecMs.p50), String(footprint.startToExecMs.max)]],
  );
  return `Supervisor (node --jitless, uid 65534; start to exec: spawn until the child runs, wall clock ms)\n${table}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } }, strict: true });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const io = await ioSuite();
  const leases = await leaseSuite();
  // The supervisor runs as uid 65534 under a real helper: root only.
  const supervisor = process.getuid?.() === 0 ? await measureSupervisor(SUPERVISOR_RUNS) : undefined;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ node: process.version, date: new Date().toISOString(), io, leases, supervisor, sanlockReference: SANLOCK }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`Direct I/O latency (${process.version})\n${ioTable(io.cases)}\n\n${areaRatios(io.cases).join('\n')}\n\n${leaseTables(leases)}\n\n${supervisorTable(supervisor)}\n`);
  for (const note of [...io.notes, ...leases.notes]) process.stdout.write(`note: ${note}\n`);
}

await main();

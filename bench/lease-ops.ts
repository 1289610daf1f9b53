import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { areaBytes, initialAreaBytes, type LockspaceSpec, type ResourceSpec, type SectorSize } from '../helper/format/index.js';
import { fileBallotFloor, Lockspace, monotonicClock, Resource } from '../helper/leases/index.js';
import { DirectStorage, type IoCounts } from '../helper/storage/index.js';
import { summarise, type LatencySummary } from './support/stats.js';

/**
 * Lease operations on real storage: uncontended acquire and release latency
 * with the I/Os and bytes each takes, time to join a free lockspace, and the
 * renewal I/O per interval with 1 and with 1,000 leases held.
 */

export interface OpCase {
  readonly target: string;
  readonly sectorSize: SectorSize;
  readonly hostsMax: number;
  readonly op: 'acquire' | 'release';
  readonly latency: LatencySummary;
  /** The same reads and writes done synchronously, one after another, on the calling thread: the storage's own time. */
  readonly syncFloor: LatencySummary;
  readonly readsPerOp: number;
  readonly writesPerOp: number;
  readonly bytesReadPerOp: number;
  /** Whether the main thread and the I/O worker spin briefly instead of sleeping (DirectStorage's default). */
  readonly spinning: boolean;
  /** Of the operation's I/Os, the share the main thread saw finish in place (the rest by message). */
  readonly spinShare: number;
}

const AREA_ALIGN = 4096;

/** Bench storage is a fresh file (or a loop device): make sure the path exists. */
function ensureExists(path: string): void {
  closeSync(openSync(path, 'a'));
}
const align = (n: number): number => Math.ceil(n / AREA_ALIGN) * AREA_ALIGN;

function lockspaceSpec(hostsMax: number, sectorSize: SectorSize, ioTimeoutMs: number): LockspaceSpec {
  return { kind: 'lockspace', lockspaceName: 'bench', hostsMax, sectorSize, ioTimeoutMs };
}

function resourceSpec(name: string, hostsMax: number, sectorSize: SectorSize): ResourceSpec {
  return { kind: 'resource', lockspaceName: 'bench', resourceName: name, hostsMax, sectorSize };
}

function incarnation() {
  return { hostName: 'bench', bootId: '0'.repeat(32), nonce: Math.floor(Math.random() * 2 ** 48).toString(16).padStart(16, '0') };
}

async function joinedLockspace(storage: DirectStorage, spec: LockspaceSpec): Promise<Lockspace> {
  const ls = new Lockspace({ lockspace: spec, hostId: 1, incarnation: incarnation(), watchdogFireTimeoutMs: 0, takeoverWithoutWatchdog: false, ownerFeatures: 0 }, storage, 0, monotonicClock);
  await ls.join();
  return ls;
}

function delta(after: IoCounts, before: IoCounts): IoCounts {
  return { reads: after.reads - before.reads, writes: after.writes - before.writes, bytesRead: after.bytesRead - before.bytesRead, bytesWritten: after.bytesWritten - before.bytesWritten };
}

/** Acquire and release one resource `iterations` times; lockspace and resource I/O go through separate storage objects so they are counted apart. */
export async function measureAcquireRelease(target: string, path: string, sectorSize: SectorSize, hostsMax: number, iterations: number, spinning = true): Promise<OpCase[]> {
  const wakeups = spinning ? {} : { completionSpinUs: 0, requestPollUs: 0 };
  const ls = lockspaceSpec(hostsMax, sectorSize, 1_000);
  const res = resourceSpec('vm', hostsMax, sectorSize);
  const resourceOffset = align(areaBytes('lockspace', hostsMax, sectorSize));
  ensureExists(path);
  const lsStorage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 10_000, ...wakeups });
  await lsStorage.write(0, initialAreaBytes(ls));
  await lsStorage.write(resourceOffset, initialAreaBytes(res));
  const resStorage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 10_000, ...wakeups });
  const lockspace = await joinedLockspace(lsStorage, ls);
  // The helper's ballot floor: a durable file in its run directory, as the helper keeps it.
  const floorDir = mkdtempSync(join(tmpdir(), 'vmlease-bench-floor-'));
  const resource = new Resource({ resource: res, hostId: 1, retryDelayMs: 1_000, ballotAttemptsMax: 3 }, resStorage, resourceOffset, lockspace, monotonicClock, fileBallotFloor(join(floorDir, 'vm.floor')));
  const acquire: number[] = [];
  const release: number[] = [];
  const acquireIo: IoCounts = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 };
  const releaseIo: IoCounts = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 };
  const add = (sum: IoCounts, d: IoCounts): void => {
    sum.reads += d.reads;
    sum.writes += d.writes;
    sum.bytesRead += d.bytesRead;
    sum.bytesWritten += d.bytesWritten;
  };
  let acquireSpun = 0;
  let releaseSpun = 0;
  // Each operation starts on a fresh event-loop turn, as the helper's do (each answers a request).
  const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < iterations; i++) {
    await nextTurn();
    let before = { ...resStorage.counts };
    let spunBefore = resStorage.completions.seenSpinning;
    let start = performance.now();
    const got = await resource.acquire('exclusive');
    if (got.type !== 'acquired') throw new Error(`bench acquire failed: ${JSON.stringify(got)}`);
    acquire.push(performance.now() - start);
    add(acquireIo, delta(resStorage.counts, before));
    acquireSpun += resStorage.completions.seenSpinning - spunBefore;
    await nextTurn();
    before = { ...resStorage.counts };
    spunBefore = resStorage.completions.seenSpinning;
    start = performance.now();
    const released = await resource.release();
    if (released.type !== 'released') throw new Error(`bench release failed: ${JSON.stringify(released)}`);
    release.push(performance.now() - start);
    add(releaseIo, delta(resStorage.counts, before));
    releaseSpun += resStorage.completions.seenSpinning - spunBefore;
  }
  await lockspace.leave();
  await resStorage.close();
  await lsStorage.close();
  rmSync(floorDir, { recursive: true, force: true });
  const floors = syncFloors(path, resourceOffset, res, iterations);
  const base = { target, sectorSize, hostsMax, spinning };
  const share = (seen: number, io: IoCounts): number => seen / Math.max(1, io.reads + io.writes);
  return [
    { ...base, op: 'acquire', latency: summarise(acquire), syncFloor: floors.acquire, readsPerOp: acquireIo.reads / iterations, writesPerOp: acquireIo.writes / iterations, bytesReadPerOp: acquireIo.bytesRead / iterations, spinShare: share(acquireSpun, acquireIo) },
    { ...base, op: 'release', latency: summarise(release), syncFloor: floors.release, readsPerOp: releaseIo.reads / iterations, writesPerOp: releaseIo.writes / iterations, bytesReadPerOp: releaseIo.bytesRead / iterations, spinShare: share(releaseSpun, releaseIo) },
  ];
}

/**
 * An acquire's I/Os (area read, own block write, area read, own block write,
 * area read, leader write) and a release's (leader sector read, leader write,
 * own block write), done synchronously with O_DIRECT|O_DSYNC on the calling
 * thread: what the storage itself takes, without threads, deadlines or the engine.
 */
function syncFloors(path: string, areaOffset: number, spec: ResourceSpec, iterations: number): { acquire: LatencySummary; release: LatencySummary } {
  const area = areaBytes('resource', spec.hostsMax, spec.sectorSize);
  const pages = Math.ceil(area / 65536);
  const buffer = new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, area);
  const fd = openSync(path, constants.O_RDWR | constants.O_DIRECT | constants.O_DSYNC);
  const sector = spec.sectorSize;
  // Bytes are written back as read: the area stays valid.
  const ownBlock = areaOffset + sector;
  const acquire: number[] = [];
  const release: number[] = [];
  try {
    for (let i = 0; i < iterations; i++) {
      let start = performance.now();
      for (let phase = 0; phase < 3; phase++) {
        readSync(fd, buffer, 0, area, areaOffset);
        const at = phase < 2 ? ownBlock : areaOffset;
        writeSync(fd, buffer, at - areaOffset, sector, at);
      }
      acquire.push(performance.now() - start);
      start = performance.now();
      readSync(fd, buffer, 0, sector, areaOffset);
      writeSync(fd, buffer, 0, sector, areaOffset);
      writeSync(fd, buffer, sector, sector, ownBlock);
      release.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
  }
  return { acquire: summarise(acquire), release: summarise(release) };
}

export interface JoinCase {
  readonly ioTimeoutMs: number;
  readonly joinMs: LatencySummary;
}

export async function measureJoin(path: string, ioTimeoutMs: number, runs: number): Promise<JoinCase> {
  const spec = lockspaceSpec(16, 512, ioTimeoutMs);
  ensureExists(path);
  const storage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 10_000 });
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    // The first renewal is written as the join is confirmed: let it land before starting over.
    while (storage.stats.unfinished > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await storage.write(0, initialAreaBytes(spec));
    const start = performance.now();
    const ls = await joinedLockspace(storage, spec);
    samples.push(performance.now() - start);
    await ls.leave();
  }
  await storage.close();
  return { ioTimeoutMs, joinMs: summarise(samples) };
}

export interface RenewalCase {
  readonly leasesHeld: number;
  readonly intervals: number;
  readonly lockspaceIoPerInterval: number;
  readonly resourceIoDuringRenewals: number;
}

/** Holds `leases` resource leases, then counts all I/O over `intervals` renewal intervals. */
export async function measureRenewalIo(path: string, leases: number, intervals: number): Promise<RenewalCase> {
  const ioTimeoutMs = 50;
  const ls = lockspaceSpec(16, 512, ioTimeoutMs);
  const stride = align(areaBytes('resource', 16, 512));
  ensureExists(path);
  const lsStorage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 10_000 });
  const resStorage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 10_000, queueDepthMax: 64 });
  await lsStorage.write(0, initialAreaBytes(ls));
  const lockspace = await joinedLockspace(lsStorage, ls);
  const resources: Resource[] = [];
  for (let i = 0; i < leases; i++) {
    const offset = stride * (i + 1);
    const spec = resourceSpec(`vm${i}`, 16, 512);
    await resStorage.write(offset, initialAreaBytes(spec));
    const resource = new Resource({ resource: spec, hostId: 1, retryDelayMs: ioTimeoutMs, ballotAttemptsMax: 3 }, resStorage, offset, lockspace, monotonicClock);
    const got = await resource.acquire('exclusive');
    if (got.type !== 'acquired') throw new Error(`bench acquire ${i} failed: ${JSON.stringify(got)}`);
    resources.push(resource);
  }
  const lsBefore = { ...lsStorage.counts };
  const resBefore = { ...resStorage.counts };
  await new Promise((resolve) => setTimeout(resolve, intervals * lockspace.engine.timing.renewIntervalMs));
  const lsIo = delta(lsStorage.counts, lsBefore);
  const resIo = delta(resStorage.counts, resBefore);
  for (const r of resources) await r.release();
  await lockspace.leave();
  await resStorage.close();
  await lsStorage.close();
  return { leasesHeld: leases, intervals, lockspaceIoPerInterval: (lsIo.reads + lsIo.writes) / intervals, resourceIoDuringRenewals: resIo.reads + resIo.writes };
}

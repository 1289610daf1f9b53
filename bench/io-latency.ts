import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { areaBytes, type SectorSize } from '../helper/format/index.js';
import { DirectStorage } from '../helper/storage/index.js';
import { timeOp, type LatencySummary } from './support/stats.js';

/**
 * Raw aligned O_DIRECT|O_DSYNC latency: one sector, and a whole resource area
 * of 16 and of 2000 host ids, read and written. Each is measured twice:
 * through DirectStorage (worker thread, deadline, copy: what the lease engine
 * pays) and as a synchronous pread/pwrite on the calling thread (the floor),
 * so the ratio shows the cost of isolation.
 */

export interface IoCase {
  readonly target: string;
  readonly sectorSize: SectorSize;
  readonly op: 'read' | 'write';
  readonly what: string;
  readonly bytes: number;
  readonly storage: LatencySummary;
  /** Reads only: DirectStorage.readWith, parsing in place instead of copying out. */
  readonly storageInPlace: LatencySummary | undefined;
  readonly syncFloor: LatencySummary;
}

const IO_TIMEOUT_MS = 10_000;

function sizes(sectorSize: SectorSize): { what: string; bytes: number; iterations: number }[] {
  return [
    { what: 'one sector', bytes: sectorSize, iterations: 400 },
    { what: 'resource area, 16 hosts', bytes: areaBytes('resource', 16, sectorSize), iterations: 200 },
    { what: 'resource area, 2000 hosts', bytes: areaBytes('resource', 2000, sectorSize), iterations: sectorSize === 4096 ? 30 : 100 },
  ];
}

/** A page-aligned buffer outside the storage layer, for the synchronous floor. */
function alignedBuffer(bytes: number): Uint8Array {
  const pages = Math.ceil(bytes / 65536);
  return new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

export async function measureTarget(target: string, path: string, sectorSize: SectorSize, create: boolean): Promise<IoCase[]> {
  const storage = await DirectStorage.open(path, { writable: true, create, ioTimeoutMs: IO_TIMEOUT_MS });
  const fd = openSync(path, constants.O_RDWR | constants.O_DIRECT | constants.O_DSYNC);
  const results: IoCase[] = [];
  try {
    for (const { what, bytes, iterations } of sizes(sectorSize)) {
      const data = new Uint8Array(bytes).fill(0x5a);
      const floor = alignedBuffer(bytes);
      floor.set(data);
      const warmup = Math.max(3, iterations / 20);
      results.push({
        target, sectorSize, op: 'write', what, bytes,
        storage: await timeOp(() => storage.write(0, data), iterations, warmup),
        storageInPlace: undefined,
        syncFloor: await timeOp(() => writeSync(fd, floor, 0, bytes, 0), iterations, warmup),
      });
      results.push({
        target, sectorSize, op: 'read', what, bytes,
        storage: await timeOp(() => storage.read(0, bytes), iterations, warmup),
        storageInPlace: await timeOp(() => storage.readWith(0, bytes, (view) => view[bytes - 1]), iterations, warmup),
        syncFloor: await timeOp(() => readSync(fd, floor, 0, bytes, 0), iterations, warmup),
      });
    }
  } finally {
    closeSync(fd);
    await storage.close();
  }
  return results;
}

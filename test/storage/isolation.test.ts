import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectStorage, StorageError } from '../../dist/helper/storage/index.js';
import { attachLoopDevice, type LoopDevice } from '../../dist/bench/support/loop-device.js';
import { throttleThisProcess, type BlkioThrottle } from '../../dist/bench/support/blkio-throttle.js';
import { threadStates, workDir } from '../support/tmp.js';

/**
 * A device whose I/O hangs must delay neither I/O to another lease file nor
 * the rest of the process. The hang is real: cgroup throttling at 1 byte/s
 * keeps a direct read of a 4 KiB sector asleep in the kernel (thread state D)
 * until the limit is lifted.
 */

const HUNG_IO_TIMEOUT_MS = 300;
const HEALTHY_IO_TIMEOUT_MS = 5_000;

async function expectStorageError(promise: Promise<unknown>, code: string): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  expect((error as StorageError).code).toBe(code);
  return error as StorageError;
}

async function fdsOpenOn(path: string): Promise<number> {
  const fds = await fsp.readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === path).length;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a hung device is isolated', () => {
  const dir = workDir('isolation');
  let loop: LoopDevice;
  let throttle: BlkioThrottle;
  let hung: DirectStorage;
  let healthy: DirectStorage;

  beforeAll(async () => {
    loop = attachLoopDevice(join(dir.path, 'hung.img'), 16 * 1024 * 1024, 4096);
    throttle = throttleThisProcess(`vmlease-test-${process.pid}`);
    hung = await DirectStorage.open(loop.path, { writable: true, ioTimeoutMs: HUNG_IO_TIMEOUT_MS, queueDepthMax: 4 });
    healthy = await DirectStorage.open(join(dir.path, 'healthy.img'), { writable: true, create: true, ioTimeoutMs: HEALTHY_IO_TIMEOUT_MS });
  });

  afterAll(async () => {
    throttle?.lift(loop.device);
    await waitFor(() => hung.stats.unfinished === 0, 30_000);
    await hung?.close();
    await healthy?.close();
    throttle?.dispose();
    loop?.detach();
    dir.remove();
  });

  it('times out the stalled I/O while other storage, timers and the threadpool go on', async () => {
    expect(hung.alignment).toBe(4096);
    await hung.write(0, new Uint8Array(4096).fill(1)); // unthrottled: lands at once
    throttle.limit(loop.device, 1);

    const started = performance.now();
    const stalledWrite = hung.write(0, new Uint8Array(4096).fill(2));
    // Measure the main thread's timer lag while the device hangs.
    let lagMaxMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      lagMaxMs = Math.max(lagMaxMs, now - last - 10);
      last = now;
    }, 10);

    // Another lease file keeps working while the hung write is in the kernel.
    for (let i = 0; i < 20; i++) {
      await healthy.write(i * 512, new Uint8Array(512).fill(i));
      expect((await healthy.read(i * 512, 512))[0]).toBe(i);
    }
    // The libuv threadpool is not taken by the hung I/O.
    await Promise.all(Array.from({ length: 8 }, () => fsp.stat(dir.path)));

    const timeout = await expectStorageError(stalledWrite, 'STORAGE_IO_TIMEOUT');
    const elapsedMs = performance.now() - started;
    expect(timeout.message).toMatch(/may still land/);
    expect(elapsedMs).toBeGreaterThanOrEqual(HUNG_IO_TIMEOUT_MS - 5);
    expect(elapsedMs).toBeLessThan(HUNG_IO_TIMEOUT_MS + 2_000);

    // The system call is really blocked: one of our threads sleeps uninterruptibly in it.
    expect(await threadStates()).toContain('D');
    clearInterval(ticker);
    expect(lagMaxMs).toBeLessThan(250);

    // While the timed-out write may still land, its sector takes no new write...
    await expectStorageError(hung.write(0, new Uint8Array(4096)), 'STORAGE_WRITE_OUTSTANDING');
    // ...another sector's write queues behind it, times out and is cancelled before it starts...
    const queued = await expectStorageError(hung.write(4096, new Uint8Array(4096)), 'STORAGE_IO_TIMEOUT');
    expect(queued.message).toMatch(/cancelled/);
    // ...and the buffer of the I/O in the kernel stays pinned; the cancelled one's is free at once
    // (the worker skips a cancelled I/O without touching its buffer).
    expect(hung.stats.unfinished).toBe(2);
    expect(hung.stats.overdue).toBe(2);
    expect(hung.stats.buffersInUse).toBe(1);

    // Lifting the stall lets the late write land; only then are its buffer and sector free.
    throttle.lift(loop.device);
    await waitFor(() => hung.stats.unfinished === 0, 30_000);
    expect(hung.stats.buffersInUse).toBe(0);
    const after = await hung.read(0, 8192);
    expect(after[0]).toBe(2); // the timed-out write landed late
    expect(after[4096]).toBe(0); // the cancelled one never ran
    await hung.write(0, new Uint8Array(4096).fill(3));
  });

  it('bounds the queue on a hung device', async () => {
    throttle.limit(loop.device, 1);
    const stuck = [hung.read(0, 4096), hung.read(4096, 4096), hung.read(8192, 4096), hung.read(12288, 4096)];
    await expectStorageError(hung.read(16384, 4096), 'STORAGE_QUEUE_FULL');
    for (const io of stuck) await expectStorageError(io, 'STORAGE_IO_TIMEOUT');
    throttle.lift(loop.device);
    await waitFor(() => hung.stats.unfinished === 0, 30_000);
  });

  it('keeps a timed-out write outstanding for every DirectStorage of the process', async () => {
    const first = await DirectStorage.open(loop.path, { writable: true, ioTimeoutMs: HUNG_IO_TIMEOUT_MS });
    throttle.limit(loop.device, 1);
    await expectStorageError(first.write(8192, new Uint8Array(4096).fill(5)), 'STORAGE_IO_TIMEOUT');
    await expectStorageError(first.close(), 'STORAGE_IO_TIMEOUT');
    // Reopened while the old write may still land: the same sector takes no write.
    const second = await DirectStorage.open(loop.path, { writable: true, ioTimeoutMs: HUNG_IO_TIMEOUT_MS });
    await expectStorageError(second.write(8192, new Uint8Array(4096).fill(6)), 'STORAGE_WRITE_OUTSTANDING');
    throttle.lift(loop.device);
    await waitFor(() => first.stats.unfinished === 0, 30_000);
    await second.write(8192, new Uint8Array(4096).fill(6));
    expect((await second.read(8192, 4096))[0]).toBe(6);
    await second.close();
  });

  it('never closes the fd under a running I/O', async () => {
    const second = await DirectStorage.open(loop.path, { writable: false, ioTimeoutMs: HUNG_IO_TIMEOUT_MS });
    expect(await fdsOpenOn(loop.path)).toBe(2);
    throttle.limit(loop.device, 1);
    const stuck = expectStorageError(second.read(0, 4096), 'STORAGE_IO_TIMEOUT');
    const close = await expectStorageError(second.close(), 'STORAGE_IO_TIMEOUT');
    expect(close.message).toMatch(/unfinished I\/O/);
    await stuck;
    expect(await fdsOpenOn(loop.path)).toBe(2); // still open: the read is in the kernel
    throttle.lift(loop.device);
    await waitFor(async () => (await fdsOpenOn(loop.path)) === 1, 30_000); // closed once it finished
  });
});

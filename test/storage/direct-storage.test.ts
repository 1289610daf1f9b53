import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectStorage, StorageError } from '../../dist/helper/storage/index.js';
import { attachLoopDevice } from '../../dist/bench/support/loop-device.js';
import { workDir } from '../support/tmp.js';

async function storageError(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

const dir = workDir('storage');
afterAll(() => dir.remove());

describe('direct storage on a regular file', () => {
  it('writes and reads back sectors, and reads short at the end of the file', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'a.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
    expect(storage.info.kind).toBe('file');
    expect(storage.info.logicalBlockSize).toBe(512); // the work disk's logical block size, from sysfs
    const data = new Uint8Array(1024).map((_, i) => i & 0xff);
    await storage.write(512, data);
    expect(Array.from(await storage.read(512, 1024))).toEqual(Array.from(data));
    const tail = await storage.read(0, 4096);
    expect(tail.byteLength).toBe(1536);
    expect(storage.stats).toEqual({ unfinished: 0, overdue: 0, buffersInUse: 0 });
    await storage.close();
    await expect(storage.read(0, 512)).rejects.toMatchObject({ code: 'STORAGE_CLOSED' });
  });

  it('opens with O_DIRECT and O_DSYNC', async () => {
    const path = join(dir.path, 'flags.img');
    const storage = await DirectStorage.open(path, { writable: true, create: true, ioTimeoutMs: 5000 });
    const fds = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
    expect(fds).toHaveLength(1);
    const flags = Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fds[0]}`, 'utf8'))![1]!, 8);
    expect(flags & constants.O_DIRECT).toBe(constants.O_DIRECT);
    expect(flags & constants.O_DSYNC).toBe(constants.O_DSYNC);
    expect(flags & 0o3).toBe(constants.O_RDWR); // O_ACCMODE
    await storage.close();
  });

  it('lends a read buffer to a consumer without copying, and reclaims it even if the consumer throws', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'lend.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
    await storage.write(0, new Uint8Array(4096).fill(7));
    expect(await storage.readWith(0, 4096, (bytes) => bytes.reduce((a, b) => a + b, 0))).toBe(7 * 4096);
    expect(storage.stats.buffersInUse).toBe(0);
    await expect(
      storage.readWith(0, 512, () => {
        throw new Error('parse failed');
      }),
    ).rejects.toThrow('parse failed');
    expect(storage.stats.buffersInUse).toBe(0);
    await storage.close();
  });

  it('refuses a readWith consumer that would keep the buffer', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'keep.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
    await storage.write(0, new Uint8Array(512));
    await expect(storage.readWith(0, 512, (bytes) => bytes.subarray(0, 16))).rejects.toThrow(/returned a view of the I\/O buffer/);
    await expect(storage.readWith(0, 512, async (bytes) => bytes[0])).rejects.toThrow(/must be synchronous/);
    expect(await storage.readWith(0, 512, (bytes) => bytes.slice(0, 16))).toHaveLength(16);
    expect(storage.stats.buffersInUse).toBe(0);
    await storage.close();
  });

  it('queues a read right behind a write: it sees the write, and is held until consumed or dropped', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'then-read.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
    await storage.write(0, new Uint8Array(2048));
    const block = new Uint8Array(512).fill(0x5c);
    const { written, read } = storage.writeThenRead(512, block, 0, 2048);
    await written;
    const held = await read!;
    expect(storage.stats.buffersInUse).toBe(1);
    expect(held.consume((bytes) => [bytes[511], bytes[512], bytes[1023], bytes[1024]])).toEqual([0, 0x5c, 0x5c, 0]);
    expect(storage.stats.buffersInUse).toBe(0);
    const again = storage.writeThenRead(512, block, 0, 2048);
    await again.written;
    (await again.read!).drop();
    expect(storage.stats).toEqual({ unfinished: 0, overdue: 0, buffersInUse: 0 });
    await storage.close();
  });

  it('queues neither I/O when the write is refused, and the write alone when only the read is', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'then-read-refused.img'), { writable: true, create: true, ioTimeoutMs: 5000, queueDepthMax: 1 });
    const before = { ...storage.counts };
    const refused = storage.writeThenRead(100, new Uint8Array(512), 0, 512);
    expect(refused.read).toBe(undefined);
    expect((await storageError(refused.written)).code).toBe('STORAGE_MISALIGNED');
    expect(storage.counts).toEqual(before);
    // One queue slot: the write takes it, the read behind it is not queued (and rejects nothing).
    const alone = storage.writeThenRead(0, new Uint8Array(512).fill(1), 0, 512);
    expect(alone.read).toBe(undefined);
    await alone.written;
    expect(storage.counts).toMatchObject({ reads: 0, writes: 1 });
    await storage.close();
  });

  it('creates only new files', async () => {
    const path = join(dir.path, 'once.img');
    await (await DirectStorage.open(path, { writable: true, create: true, ioTimeoutMs: 5000 })).close();
    const again = await storageError(DirectStorage.open(path, { writable: true, create: true, ioTimeoutMs: 5000 }));
    expect(again.message).toMatch(/EEXIST/);
  });

  it('refuses misaligned offsets and lengths before any I/O', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'b.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
    expect((await storageError(storage.read(100, 512))).code).toBe('STORAGE_MISALIGNED');
    expect((await storageError(storage.write(0, new Uint8Array(100)))).code).toBe('STORAGE_MISALIGNED');
    await storage.close();
  });

  it('reports open failures with their cause', async () => {
    const missing = await storageError(DirectStorage.open(join(dir.path, 'missing.img'), { writable: false, ioTimeoutMs: 5000 }));
    expect(missing.code).toBe('STORAGE_OPEN');
    expect(missing.message).toMatch(/ENOENT/);
    mkdirSync(join(dir.path, 'adir'));
    const directory = await storageError(DirectStorage.open(join(dir.path, 'adir'), { writable: false, ioTimeoutMs: 5000 }));
    expect(['STORAGE_OPEN', 'STORAGE_NOT_FILE_OR_DEVICE']).toContain(directory.code);
    writeFileSync(join(dir.path, 'target.img'), '');
    symlinkSync(join(dir.path, 'target.img'), join(dir.path, 'link.img'));
    const link = await storageError(DirectStorage.open(join(dir.path, 'link.img'), { writable: false, noFollow: true, ioTimeoutMs: 5000 }));
    expect(link.message).toMatch(/ELOOP/);
  });

  it('gives an open that blocks (a FIFO without writer) a deadline', async () => {
    const fifo = join(dir.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    const error = await storageError(DirectStorage.open(fifo, { writable: false, ioTimeoutMs: 200 }));
    expect(error.code).toBe('STORAGE_IO_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(3000);
    await releaseFifoReader(fifo);
  });

  it('bounds aligned buffer memory', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'c.img'), { writable: true, create: true, ioTimeoutMs: 5000, arenaBytes: 65536 });
    expect((await storageError(storage.read(0, 131072))).code).toBe('STORAGE_BUFFERS_EXHAUSTED');
    await storage.close();
  });
});

describe('direct storage on block devices', () => {
  it('takes the alignment of a 4096-byte-sector loop device from sysfs', async () => {
    const loop = attachLoopDevice(join(dir.path, 'loop4k.img'), 8 * 1024 * 1024, 4096);
    try {
      const storage = await DirectStorage.open(loop.path, { writable: true, ioTimeoutMs: 5000 });
      expect(storage.info).toMatchObject({ kind: 'block', logicalBlockSize: 4096, sizeBytes: 8 * 1024 * 1024, device: loop.device });
      expect(storage.alignment).toBe(4096);
      expect((await storageError(storage.read(512, 512))).code).toBe('STORAGE_MISALIGNED');
      await storage.write(4096, new Uint8Array(4096).fill(0xab));
      expect((await storage.read(4096, 4096))[4095]).toBe(0xab);
      await storage.close();
    } finally {
      loop.detach();
    }
  });

  it('opens a block device exclusively on request', async () => {
    const loop = attachLoopDevice(join(dir.path, 'excl.img'), 1024 * 1024, 512);
    try {
      const holder = await DirectStorage.open(loop.path, { writable: false, exclusiveBlockDevice: true, ioTimeoutMs: 5000 });
      const busy = await storageError(DirectStorage.open(loop.path, { writable: true, exclusiveBlockDevice: true, ioTimeoutMs: 5000 }));
      expect(busy.message).toMatch(/EBUSY/);
      // Shared opens, as the helper and dump make, are not affected.
      await (await DirectStorage.open(loop.path, { writable: false, ioTimeoutMs: 5000 })).close();
      await holder.close();
    } finally {
      loop.detach();
    }
  });

  it('takes 512 from a 512-byte-sector loop device', async () => {
    const loop = attachLoopDevice(join(dir.path, 'loop512.img'), 1024 * 1024, 512);
    try {
      const storage = await DirectStorage.open(loop.path, { writable: false, ioTimeoutMs: 5000 });
      expect(storage.info.logicalBlockSize).toBe(512);
      expect((await storage.read(512, 512)).byteLength).toBe(512);
      await storage.close();
    } finally {
      loop.detach();
    }
  });

  it('knows no logical block size for tmpfs and aligns to 512 there', async () => {
    const shm = workDirOnShm();
    try {
      const storage = await DirectStorage.open(join(shm, 'x.img'), { writable: true, create: true, ioTimeoutMs: 5000 });
      expect(storage.info.logicalBlockSize).toBeUndefined();
      expect(storage.alignment).toBe(512);
      await storage.close();
    } finally {
      execFileSync('rm', ['-rf', shm]);
    }
  });
});

describe('the I/O worker', () => {
  it('asserts buffer alignment itself, whatever the caller sends', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const control = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('../../dist/helper/storage/io-worker.js', import.meta.url), {
      workerData: { path: join(dir.path, 'w.img'), writable: true, create: true, noFollow: false, memory, control, results: new SharedArrayBuffer(4), requestPollUs: 0 },
    });
    const messages: { type: string }[] = [];
    const opened = await new Promise<{ type: string }>((resolve) =>
      worker.on('message', (m: { type: string }) => {
        messages.push(m);
        if (m.type !== 'started') resolve(m);
      }),
    );
    expect(messages.map((m) => m.type)).toEqual(['started', 'opened']);
    expect(opened.type).toBe('opened');
    new Int32Array(control)[0] = 1; // queued
    const failure = new Promise<Error>((resolve) => worker.once('error', resolve));
    worker.postMessage({ type: 'io', id: 1, op: 'read', position: 0, byteOffset: 512, length: 4096, controlIndex: 0, alignment: 4096 });
    expect((await failure).message).toMatch(/buffer not aligned to 4096/);
  });
});

/**
 * Lets a worker stuck opening the FIFO go, by opening its write end without
 * blocking (ENXIO while no reader waits: the worker may not have reached open()
 * yet, or was terminated before it did).
 */
async function releaseFifoReader(fifo: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function workDirOnShm(): string {
  return execFileSync('mktemp', ['-d', '/dev/shm/vmlease-test-XXXXXX'], { encoding: 'utf8' }).trim();
}

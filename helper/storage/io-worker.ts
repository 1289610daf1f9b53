import assert from 'node:assert/strict';
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../native/native.js';
import { SlotState, type FromWorker, type IoRequest, type StorageInfo, type ToWorker, type WorkerSetup } from './io-messages.js';
import { blockDeviceBytes, deviceNumber, logicalBlockSize } from './sysfs.js';

/**
 * One thread per lease storage, doing synchronous direct I/O. A system call
 * that hangs (a stalled SAN path, a dead NFS server) blocks this thread only:
 * never the main thread, never libuv's shared threadpool, never another
 * storage's worker. I/Os run one at a time in arrival order, so the fd is
 * closed only after every I/O queued before the close has finished.
 */

const setup = workerData as WorkerSetup;
const port = parentPort!;
const control = new Int32Array(setup.control);
const memory = setup.memory.buffer;
let fd: number | undefined;

function post(message: FromWorker): void {
  port.postMessage(message);
}

function open(): void {
  const flags =
    (setup.writable ? constants.O_RDWR : constants.O_RDONLY) |
    constants.O_DIRECT |
    constants.O_DSYNC |
    (setup.create ? constants.O_CREAT : 0) |
    (setup.noFollow ? constants.O_NOFOLLOW : 0);
  let opened: number;
  try {
    opened = openSync(setup.path, flags, 0o600);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    post({ type: 'open-failed', code: e.code ?? 'EIO', message: e.message, notStorage: false });
    return;
  }
  const stat = fstatSync(opened, { bigint: true });
  if (!stat.isFile() && !stat.isBlockDevice()) {
    closeSync(opened);
    post({ type: 'open-failed', code: 'EINVAL', message: 'not a regular file or block device', notStorage: true });
    return;
  }
  fd = opened;
  post({ type: 'opened', info: describe(stat.isBlockDevice(), stat.isBlockDevice() ? stat.rdev : stat.dev, Number(stat.size)) });
}

function describe(isBlock: boolean, dev: bigint, statSize: number): StorageInfo {
  const device = deviceNumber(dev);
  return {
    kind: isBlock ? 'block' : 'file',
    sizeBytes: isBlock ? (blockDeviceBytes(device) ?? 0) : statSize,
    logicalBlockSize: logicalBlockSize(device),
    device,
  };
}

function runIo(request: IoRequest): void {
  if (Atomics.compareExchange(control, request.controlIndex, SlotState.queued, SlotState.running) !== SlotState.queued) {
    post({ type: 'skipped', id: request.id });
    return;
  }
  const buffer = new Uint8Array(memory, request.byteOffset, request.length);
  const alignment = BigInt(request.alignment);
  // Production kernels refuse misaligned O_DIRECT that this one may accept: check it here, always.
  assert.equal(native().bufferAddress(buffer) % alignment, 0n, `direct I/O buffer not aligned to ${request.alignment}`);
  assert.equal(request.position % request.alignment, 0, `direct I/O offset ${request.position} not aligned`);
  assert.equal(request.length % request.alignment, 0, `direct I/O length ${request.length} not aligned`);
  assert.ok(fd !== undefined, 'I/O on a storage that is not open');
  try {
    const bytes = request.op === 'read' ? readSync(fd, buffer, 0, request.length, request.position) : writeSync(fd, buffer, 0, request.length, request.position);
    post({ type: 'done', id: request.id, bytes });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    post({ type: 'failed', id: request.id, code: e.code ?? 'EIO', message: e.message });
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'io') {
    runIo(message);
    return;
  }
  if (fd !== undefined) closeSync(fd);
  fd = undefined;
  post({ type: 'closed' });
  port.close();
});

open();

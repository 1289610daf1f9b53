import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { native } from '../native/native.js';
import { SpinBackoff } from './spin-backoff.js';
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
const results = new Int32Array(setup.results);
const mainSpinning = new Int32Array(setup.mainSpinning);
const memory = setup.memory.buffer;
let fd: number | undefined;

function post(message: FromWorker): void {
  port.postMessage(message);
}

function openFlags(extra: number): number {
  return (
    (setup.writable ? constants.O_RDWR : constants.O_RDONLY) |
    constants.O_DIRECT |
    constants.O_DSYNC |
    (setup.create ? constants.O_CREAT | constants.O_EXCL : 0) |
    (setup.noFollow ? constants.O_NOFOLLOW : 0) |
    extra
  );
}

function openFailed(error: unknown, notStorage = false): void {
  const e = error as NodeJS.ErrnoException;
  post({ type: 'open-failed', code: e.code ?? 'EIO', message: e.message, notStorage });
}

function open(): void {
  let opened: number;
  try {
    opened = openSync(setup.path, openFlags(0), 0o600);
  } catch (error) {
    openFailed(error);
    return;
  }
  let stat = fstatSync(opened, { bigint: true });
  if (!stat.isFile() && !stat.isBlockDevice()) {
    closeSync(opened);
    openFailed({ code: 'EINVAL', message: 'not a regular file or block device' }, true);
    return;
  }
  if (stat.isBlockDevice() && setup.exclusiveBlockDevice) {
    // O_EXCL on a block device fails with EBUSY while it is mounted or held by dm/md.
    closeSync(opened);
    try {
      opened = openSync(setup.path, openFlags(constants.O_EXCL));
    } catch (error) {
      openFailed(error);
      return;
    }
    stat = fstatSync(opened, { bigint: true });
  }
  fd = opened;
  post({ type: 'opened', info: describe(stat.isBlockDevice(), stat.isBlockDevice() ? stat.rdev : stat.dev, stat.ino, Number(stat.size)) });
}

function describe(isBlock: boolean, dev: bigint, ino: bigint, statSize: number): StorageInfo {
  const device = deviceNumber(dev);
  return {
    kind: isBlock ? 'block' : 'file',
    sizeBytes: isBlock ? (blockDeviceBytes(device) ?? 0) : statSize,
    logicalBlockSize: logicalBlockSize(device),
    device,
    identity: isBlock ? `block:${device}` : `file:${device}:${ino}`,
  };
}

/** Runs one I/O; true when it succeeded while the main thread was spinning for it (see WorkerSetup.mainSpinning). */
function runIo(request: IoRequest, polled: boolean): boolean {
  if (Atomics.compareExchange(control, request.controlIndex, SlotState.queued, SlotState.running) !== SlotState.queued) {
    post({ type: 'skipped', id: request.id });
    return false;
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
    // Read before publishing: a main thread spinning for this I/O stops the moment it sees it.
    const mainWasSpinning = Atomics.load(mainSpinning, 0) === 1;
    // Published in shared memory first: a main thread waiting for this I/O sees it without a wake-up.
    Atomics.store(results, request.controlIndex, bytes);
    Atomics.store(control, request.controlIndex, SlotState.done);
    post({ type: 'done', id: request.id, bytes, polled });
    return mainWasSpinning;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    Atomics.store(control, request.controlIndex, SlotState.failed);
    post({ type: 'failed', id: request.id, code: e.code ?? 'EIO', message: e.message });
    return false;
  }
}

const POLL_MS = setup.requestPollUs / 1000;
/** After polls that found nothing, this many later ones at most are skipped (doubling from 1). */
const POLL_BACKOFF_MAX = 64;
const pollBackoff = new SpinBackoff(POLL_BACKOFF_MAX);

/**
 * After an I/O the main thread was spinning for, look for the next request
 * for a moment before sleeping: an acquire's next I/O follows within
 * microseconds, and waking a sleeping thread costs more than that I/O. Not
 * after other I/Os: with no operation waiting nothing follows, and on busy
 * CPUs (where the main thread's spins back off) a polling worker holds the
 * CPU the main thread needs to send the request. A poll that finds nothing
 * makes the next ones rarer.
 */
function pollForNext(mainWasSpinning: boolean): void {
  if (POLL_MS === 0 || !mainWasSpinning || !pollBackoff.shouldSpin()) return;
  // performance.now(), a double: process.hrtime.bigint() would allocate on every turn of the loop.
  let since = performance.now();
  let found = false;
  while (performance.now() - since < POLL_MS) {
    const next = receiveMessageOnPort(port as unknown as MessagePort);
    if (next === undefined) continue;
    found = true;
    const message = next.message as ToWorker;
    if (message.type !== 'io') return handle(message);
    if (!runIo(message, true)) break;
    since = performance.now();
  }
  if (found) pollBackoff.paid();
  else pollBackoff.missed();
}

function handle(message: ToWorker): void {
  if (message.type === 'io') {
    pollForNext(runIo(message, false));
    return;
  }
  let error: string | undefined;
  try {
    if (fd !== undefined) closeSync(fd);
  } catch (e) {
    error = (e as Error).message;
  }
  fd = undefined;
  post({ type: 'closed', error });
  port.close();
}

port.on('message', handle);

post({ type: 'started' });
open();

import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { AlignedArena, type Slot } from './aligned-arena.js';
import { StorageError, StorageErrorCode } from './errors.js';
import { SlotState, type FromWorker, type IoOp, type StorageInfo, type ToWorker, type WorkerSetup } from './io-messages.js';
import { SpinBackoff } from './spin-backoff.js';
import { turnLeftMs } from './loop-turn.js';
import { addOutstandingWrite, overlapsOutstandingWrite, removeOutstandingWrite, type WriteRange } from './outstanding-writes.js';

/**
 * Direct I/O (O_DIRECT | O_DSYNC) to one lease file or block device, with a
 * deadline on every I/O and the rules for I/O that cannot be cancelled:
 *
 * - the I/O runs in this storage's own worker thread, so a hung device delays
 *   nothing else in the process;
 * - past its deadline an I/O has failed for the caller but may still land, so
 *   its buffer is not reused and its sectors accept no new write, through this
 *   or any other DirectStorage of the process, until the worker reports it
 *   finished (one outstanding write per sector);
 * - close is queued behind every earlier I/O, so the fd is never closed under
 *   a queued or running I/O.
 */

export interface OpenOptions {
  /** Open read-write (init, the helper) or read-only (dump). */
  readonly writable: boolean;
  /** Create a new regular file (mode 0600); fails with EEXIST if the path exists. */
  readonly create?: boolean;
  /** For a block device, open it O_EXCL: fails (EBUSY) while it is mounted or held by dm/md. */
  readonly exclusiveBlockDevice?: boolean;
  /** Refuse a symlink as the last path component. */
  readonly noFollow?: boolean;
  /** Deadline of every I/O, the open and the close. */
  readonly ioTimeoutMs: number;
  /** I/Os queued or running at once; beyond it an I/O fails with STORAGE_QUEUE_FULL. */
  readonly queueDepthMax?: number;
  /** Bytes of aligned buffer memory; bounds what hung I/Os can pin. */
  readonly arenaBytes?: number;
  /**
   * How long the main thread watches a lone operation's I/O (at most two
   * unfinished) for completion before it returns to the event loop; 0: never.
   * Waking a sleeping thread costs about as much as a small I/O on an idle
   * machine, so an acquire's four round trips go faster awake. Bounded per
   * event-loop turn (loop-turn.ts) and backed off after misses.
   */
  readonly completionSpinUs?: number;
  /** After an I/O, how long the worker looks for the next request before it sleeps; 0: never. Backed off after misses. */
  readonly requestPollUs?: number;
}

export const QUEUE_DEPTH_MAX_DEFAULT = 64;
/** Room for two 2000-host areas with 4096-byte sectors (2001 sectors each), rounded up. */
export const ARENA_BYTES_DEFAULT = 32 * 1024 * 1024;
export const IO_TIMEOUT_MS_LIMIT = 600_000;
export const COMPLETION_SPIN_US_DEFAULT = 300;
export const REQUEST_POLL_US_DEFAULT = 250;
/** Either wait above this is a thread kept busy for nothing: a slower I/O is better awaited asleep. */
export const SPIN_US_LIMIT = 100_000;
/** Spinning is for one operation's I/O on an otherwise idle storage (a write and its read), never for a busy queue. */
const SPIN_PENDING_MAX = 2;
/** After spins that did not pay off, this many later ones at most are skipped (doubling from 1). */
export const SPIN_BACKOFF_MAX = 64;
/** A worker thread that has not even started its open after this is given up (start-up is not storage I/O, so not bound by N). */
export const WORKER_START_TIMEOUT_MS = 10_000;
/** The smallest sector size; alignment when the device does not tell (tmpfs, NFS). */
const ALIGNMENT_MIN = 512;

interface Pending {
  readonly op: IoOp;
  readonly slot: Slot;
  readonly controlIndex: number;
  /** Byte range written, while the write may still land. */
  range: WriteRange | undefined;
  readonly resolve: (bytes: number) => void;
  readonly reject: (error: StorageError) => void;
  /** The deadline passed: the caller has its error, the worker has not finished yet. */
  overdue: boolean;
  /** Cancelled before the worker took it: its buffer went back to the arena then. */
  bufferFreed: boolean;
  readonly timer: NodeJS.Timeout;
  /** performance.now() of the deadline the timer enforces. */
  readonly deadlineAtMs: number;
}

export interface StorageStats {
  /** I/Os the worker has not finished, including those whose deadline passed. */
  readonly unfinished: number;
  /** Of those, how many are past their deadline. */
  readonly overdue: number;
  /** Aligned buffers pinned by unfinished I/Os. */
  readonly buffersInUse: number;
}

/** How the I/Os' completions were seen: by the main thread spinning for them, or (the rest) by message. */
export interface CompletionCounts {
  /** I/Os the spinning main thread saw finish and completed without waiting for the worker's message. */
  seenSpinning: number;
  /** Spins that ended at their time limit with an I/O unfinished. */
  spinsMissed: number;
  /** Requests the worker took while polling for them after an earlier I/O (not woken by a message). */
  takenPolling: number;
}

/** I/Os submitted to the kernel since open (for benchmarks and the helper's status). */
export interface IoCounts {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
}

export class DirectStorage {
  private readonly pending = new Map<number, Pending>();
  private readonly control: Int32Array;
  private readonly results: Int32Array;
  /** Told to the worker: whether this thread spins for an I/O now (see WorkerSetup.mainSpinning). */
  private readonly mainSpinning: Int32Array;
  /** I/Os completed from shared memory whose worker message has not arrived yet. */
  private readonly completedEarly = new Set<number>();
  private spinScheduled = false;
  private readonly spinBackoff = new SpinBackoff(SPIN_BACKOFF_MAX);
  private nextId = 1;
  /** Counted when an I/O is handed to the worker. */
  readonly counts: IoCounts = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 };
  readonly completions: CompletionCounts = { seenSpinning: 0, spinsMissed: 0, takenPolling: 0 };
  private closing = false;
  private failure: StorageError | undefined;
  private onClosed: ((error?: string) => void) | undefined;

  private constructor(
    readonly path: string,
    readonly info: StorageInfo,
    /** Offsets and lengths of every I/O must be multiples of this. */
    readonly alignment: number,
    private readonly worker: Worker,
    private readonly arena: AlignedArena,
    controlBuffer: SharedArrayBuffer,
    resultsBuffer: SharedArrayBuffer,
    mainSpinning: SharedArrayBuffer,
    private readonly options: Required<OpenOptions>,
  ) {
    this.control = new Int32Array(controlBuffer);
    this.results = new Int32Array(resultsBuffer);
    this.mainSpinning = new Int32Array(mainSpinning);
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (error) => this.onWorkerGone(`I/O worker failed: ${error.message}`));
    worker.on('exit', (code) => this.onWorkerGone(`I/O worker exited (code ${code})`));
  }

  static async open(path: string, options: OpenOptions): Promise<DirectStorage> {
    const full: Required<OpenOptions> = {
      create: false,
      noFollow: false,
      exclusiveBlockDevice: false,
      queueDepthMax: QUEUE_DEPTH_MAX_DEFAULT,
      arenaBytes: ARENA_BYTES_DEFAULT,
      completionSpinUs: COMPLETION_SPIN_US_DEFAULT,
      requestPollUs: REQUEST_POLL_US_DEFAULT,
      ...options,
    };
    assert.ok(Number.isInteger(full.ioTimeoutMs) && full.ioTimeoutMs >= 1 && full.ioTimeoutMs <= IO_TIMEOUT_MS_LIMIT, `ioTimeoutMs ${full.ioTimeoutMs} outside 1..${IO_TIMEOUT_MS_LIMIT}`);
    assert.ok(Number.isInteger(full.queueDepthMax) && full.queueDepthMax >= 1 && full.queueDepthMax <= 4096, `queueDepthMax ${full.queueDepthMax} outside 1..4096`);
    assert.ok(Number.isInteger(full.completionSpinUs) && full.completionSpinUs >= 0 && full.completionSpinUs <= SPIN_US_LIMIT, `completionSpinUs ${full.completionSpinUs} outside 0..${SPIN_US_LIMIT}`);
    assert.ok(Number.isInteger(full.requestPollUs) && full.requestPollUs >= 0 && full.requestPollUs <= SPIN_US_LIMIT, `requestPollUs ${full.requestPollUs} outside 0..${SPIN_US_LIMIT}`);
    const arena = new AlignedArena(full.arenaBytes);
    const controlBuffer = new SharedArrayBuffer(full.queueDepthMax * Int32Array.BYTES_PER_ELEMENT);
    const resultsBuffer = new SharedArrayBuffer(full.queueDepthMax * Int32Array.BYTES_PER_ELEMENT);
    const mainSpinning = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    const setup: WorkerSetup = {
      path,
      writable: full.writable,
      create: full.create,
      noFollow: full.noFollow,
      exclusiveBlockDevice: full.exclusiveBlockDevice,
      memory: arena.memory,
      control: controlBuffer,
      results: resultsBuffer,
      requestPollUs: full.requestPollUs,
      mainSpinning,
    };
    const worker = new Worker(new URL('./io-worker.js', import.meta.url), { workerData: setup });
    const info = await DirectStorage.awaitOpen(path, worker, full.ioTimeoutMs);
    const alignment = Math.max(ALIGNMENT_MIN, info.logicalBlockSize ?? ALIGNMENT_MIN);
    return new DirectStorage(path, info, alignment, worker, arena, controlBuffer, resultsBuffer, mainSpinning, full);
  }

  private static awaitOpen(path: string, worker: Worker, ioTimeoutMs: number): Promise<StorageInfo> {
    return new Promise((resolve, reject) => {
      const stopListening = (): void => {
        clearTimeout(timer);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
      };
      const give = (error: StorageError): void => {
        stopListening();
        // A worker stuck in open() cannot be stopped; unref it so it does not hold the process.
        worker.unref();
        void worker.terminate();
        reject(error);
      };
      const onError = (error: Error): void => give(new StorageError(StorageErrorCode.workerDied, path, `I/O worker failed while opening: ${error.message}`));
      const onExit = (code: number): void => give(new StorageError(StorageErrorCode.workerDied, path, `I/O worker exited while opening (code ${code})`));
      const onMessage = (message: FromWorker): void => {
        if (message.type === 'started') {
          // Thread start-up is not storage I/O (it can take longer than a test-sized N on a busy
          // machine): the io deadline covers the open itself, from the worker's word that it begins.
          clearTimeout(timer);
          timer = setTimeout(() => give(new StorageError(StorageErrorCode.ioTimeout, path, `open did not complete within ${ioTimeoutMs} ms`)), ioTimeoutMs);
        } else if (message.type === 'opened') {
          stopListening();
          resolve(message.info);
        } else if (message.type === 'open-failed') {
          give(new StorageError(message.notStorage ? StorageErrorCode.notStorage : StorageErrorCode.open, path, message.notStorage ? message.message : `cannot open: ${message.code}: ${message.message}`));
        } else {
          give(new StorageError(StorageErrorCode.workerDied, path, `unexpected message ${message.type} while opening`));
        }
      };
      let timer = setTimeout(
        () => give(new StorageError(StorageErrorCode.workerDied, path, `I/O worker did not start within ${Math.max(ioTimeoutMs, WORKER_START_TIMEOUT_MS)} ms`)),
        Math.max(ioTimeoutMs, WORKER_START_TIMEOUT_MS),
      );
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.on('message', onMessage);
    });
  }

  /** Reads `length` bytes at `position` into a new array. Fewer only at the end of a regular file. */
  read(position: number, length: number): Promise<Uint8Array> {
    return this.readWith(position, length, (bytes) => Uint8Array.prototype.slice.call(bytes));
  }

  /**
   * Reads `length` bytes at `position` and hands them to `consume` without a
   * copy (a 2000-host area with 4096-byte sectors is 8 MiB per ballot read).
   * The view is valid only during the call: its buffer is reused afterwards.
   */
  async readWith<T>(position: number, length: number, consume: (bytes: Uint8Array) => T): Promise<T> {
    return (await this.readHeld(position, length)).consume(consume);
  }

  /**
   * Reads `length` bytes at `position` into an I/O buffer that stays lent
   * until the returned read is consumed or dropped, so a read queued ahead of
   * need (the ballot read behind its write) costs no copy. The caller must
   * do one of the two, or the buffer stays pinned.
   */
  async readHeld(position: number, length: number): Promise<HeldRead> {
    const { slot, bytes } = await this.submit('read', position, length, undefined);
    return new HeldRead(this.arena, slot, bytes);
  }

  write(position: number, data: Uint8Array): Promise<void> {
    return this.written(this.submit('write', position, data.byteLength, data), position, data.byteLength);
  }

  /**
   * Queues a write and, right behind it, a read. The worker runs I/Os one at
   * a time in queue order, so the read starts only after the write has
   * completed (Disk Paxos reads every block only after its own write). If
   * the write cannot be queued, neither is; if only the read cannot, `read`
   * is undefined. The read's buffer is held as by readHeld.
   */
  writeThenRead(position: number, data: Uint8Array, readPosition: number, readLength: number): { written: Promise<void>; read: Promise<HeldRead> | undefined } {
    const write = this.queue('write', position, data.byteLength, data);
    if (write instanceof StorageError) return { written: Promise.reject(write), read: undefined };
    const read = this.queue('read', readPosition, readLength, undefined);
    return {
      written: this.written(write, position, data.byteLength),
      read: read instanceof StorageError ? undefined : read.then(({ slot, bytes }) => new HeldRead(this.arena, slot, bytes)),
    };
  }

  private async written(queued: Promise<{ slot: Slot; bytes: number }>, position: number, length: number): Promise<void> {
    const { slot, bytes } = await queued;
    this.arena.release(slot);
    if (bytes !== length) {
      throw new StorageError(StorageErrorCode.shortWrite, this.path, `write at ${position} transferred ${bytes} of ${length} bytes`);
    }
  }

  /**
   * Closes after every queued I/O has finished. If that takes longer than the
   * io timeout (the device is hung), rejects with STORAGE_IO_TIMEOUT and lets
   * the worker close the fd whenever the I/Os complete, without holding the
   * process open.
   */
  close(): Promise<void> {
    if (this.closing) return Promise.reject(new StorageError(StorageErrorCode.closed, this.path, 'already closed'));
    this.closing = true;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.worker.unref();
        reject(new StorageError(StorageErrorCode.ioTimeout, this.path, `close waits for ${this.stats.unfinished} unfinished I/O(s) past ${this.options.ioTimeoutMs} ms`));
      }, this.options.ioTimeoutMs);
      this.onClosed = (error) => {
        clearTimeout(timer);
        if (error) reject(new StorageError(StorageErrorCode.ioError, this.path, `close failed: ${error}`));
        else resolve();
      };
      if (this.failure) this.onClosed();
      else this.post({ type: 'close' });
    });
  }

  /**
   * Gives the storage up without waiting: queues the close behind any
   * unfinished I/O and stops the worker from holding the process open. For
   * tools that must report an error and exit while an I/O hangs; the kernel
   * still keeps the process until the I/O completes or fails.
   */
  abandon(): void {
    if (!this.closing) {
      this.closing = true;
      if (!this.failure) this.post({ type: 'close' });
    }
    this.worker.unref();
  }

  get stats(): StorageStats {
    let overdue = 0;
    for (const p of this.pending.values()) if (p.overdue) overdue++;
    return { unfinished: this.pending.size, overdue, buffersInUse: this.arena.slotsInUse };
  }

  private submit(op: IoOp, position: number, length: number, data: Uint8Array | undefined): Promise<{ slot: Slot; bytes: number }> {
    const queued = this.queue(op, position, length, data);
    return queued instanceof StorageError ? Promise.reject(queued) : queued;
  }

  /** Queues one I/O to the worker, or says at once why it cannot be queued. */
  private queue(op: IoOp, position: number, length: number, data: Uint8Array | undefined): Promise<{ slot: Slot; bytes: number }> | StorageError {
    const refuse = (code: StorageErrorCode, reason: string): StorageError => new StorageError(code, this.path, reason);
    if (this.closing) return refuse(StorageErrorCode.closed, `${op} after close`);
    if (this.failure) return this.failure;
    if (!Number.isSafeInteger(position) || position < 0 || position % this.alignment !== 0) return refuse(StorageErrorCode.misaligned, `${op} offset ${position} is not a multiple of ${this.alignment}`);
    if (!Number.isSafeInteger(length) || length <= 0 || length % this.alignment !== 0) return refuse(StorageErrorCode.misaligned, `${op} length ${length} is not a positive multiple of ${this.alignment}`);
    if (op === 'write' && overlapsOutstandingWrite(this.info.identity, position, position + length)) {
      return refuse(StorageErrorCode.writeOutstanding, `write at ${position}+${length} overlaps a write that has not finished`);
    }
    const controlIndex = this.control.findIndex((state) => state === SlotState.free);
    if (controlIndex === -1) return refuse(StorageErrorCode.queueFull, `${this.options.queueDepthMax} I/Os are unfinished`);
    const slot = this.arena.allocate(length);
    if (!slot) return refuse(StorageErrorCode.buffersExhausted, `no free ${length}-byte aligned buffer (${this.arena.slotsInUse} pinned by unfinished I/O)`);
    if (data) this.arena.bytes(slot).set(data);
    const id = this.nextId++;
    if (op === 'read') {
      this.counts.reads++;
      this.counts.bytesRead += length;
    } else {
      this.counts.writes++;
      this.counts.bytesWritten += length;
    }
    const range = op === 'write' ? addOutstandingWrite(this.info.identity, position, position + length) : undefined;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.onDeadline(id), this.options.ioTimeoutMs);
      const deadlineAtMs = performance.now() + this.options.ioTimeoutMs;
      this.pending.set(id, { op, slot, controlIndex, range, resolve: (bytes) => resolve({ slot, bytes }), reject, overdue: false, bufferFreed: false, timer, deadlineAtMs });
      Atomics.store(this.control, controlIndex, SlotState.queued);
      this.post({ type: 'io', id, op, position, byteOffset: slot.byteOffset, length, controlIndex, alignment: this.alignment });
      this.scheduleSpin();
    });
  }

  /** Once the caller has queued what it queues together (a write and its read), wait for them in place. */
  private scheduleSpin(): void {
    if (this.options.completionSpinUs === 0 || this.spinScheduled) return;
    this.spinScheduled = true;
    queueMicrotask(() => {
      this.spinScheduled = false;
      this.spin();
    });
  }

  /**
   * Waits up to completionSpinUs for the I/Os in flight to finish, watching
   * the shared slot states, and completes each one that does at once: an
   * uncontended acquire's next step starts without waiting for the event
   * loop to be woken. Only for a lone operation, within the turn's budget,
   * and less often after misses (slow storage, or busy CPUs, where a
   * spinning thread takes the CPU the worker needs).
   */
  private spin(): void {
    if (this.pending.size === 0 || this.pending.size > SPIN_PENDING_MAX) return;
    if (!this.spinBackoff.shouldSpin()) return;
    const startedMs = performance.now();
    const ownMs = this.options.completionSpinUs / 1000;
    const limitMs = Math.min(ownMs, turnLeftMs(startedMs));
    if (limitMs <= 0) return;
    Atomics.store(this.mainSpinning, 0, 1);
    const outcome = this.watchInPlace(startedMs + limitMs);
    Atomics.store(this.mainSpinning, 0, 0);
    // A spin cut short by the turn's budget says nothing about the storage or the CPUs.
    if (outcome === 'missed' && limitMs === ownMs) {
      this.completions.spinsMissed++;
      this.spinBackoff.missed();
    } else if (outcome === 'done') {
      this.spinBackoff.paid();
    }
  }

  /** Completes in place what finishes before `spinUntilMs`; 'failed' leaves a failed I/O to its message, which carries the error. */
  private watchInPlace(spinUntilMs: number): 'done' | 'failed' | 'missed' {
    for (;;) {
      let waiting = false;
      const nowMs = performance.now();
      for (const [id, p] of this.pending) {
        if (p.overdue) continue;
        const state = Atomics.load(this.control, p.controlIndex);
        if (state === SlotState.done) {
          this.completions.seenSpinning++;
          this.complete(id, p, Atomics.load(this.results, p.controlIndex), true);
        } else if (state === SlotState.failed) {
          return 'failed';
        } else {
          waiting = true;
        }
      }
      if (!waiting) return 'done';
      if (nowMs >= spinUntilMs) return 'missed';
    }
  }

  private onDeadline(id: number): void {
    const p = this.pending.get(id);
    if (!p || p.overdue) return;
    p.overdue = true;
    const cancelled = Atomics.compareExchange(this.control, p.controlIndex, SlotState.queued, SlotState.cancelled) === SlotState.queued;
    // A cancelled I/O never reaches the kernel: its sectors are free again at once, and so is its
    // buffer (the worker skips a cancelled slot without touching it). Its queue slot stays taken
    // until the worker acknowledges.
    if (cancelled) {
      this.releaseRange(p);
      this.arena.release(p.slot);
      p.bufferFreed = true;
    }
    const finished = !cancelled && Atomics.load(this.control, p.controlIndex) === SlotState.done;
    const where = cancelled ? 'it was still queued behind an unfinished I/O and is cancelled' : finished ? 'it finished only after its deadline' : 'it is in the kernel and may still land';
    p.reject(new StorageError(StorageErrorCode.ioTimeout, this.path, `${p.op} did not complete within ${this.options.ioTimeoutMs} ms; ${where}`));
  }

  private onMessage(message: FromWorker): void {
    if (message.type === 'closed') {
      this.onClosed?.(message.error);
      return;
    }
    if (message.type !== 'done' && message.type !== 'failed' && message.type !== 'skipped') return;
    // After the worker failed every pending I/O was given up; a message it sent before it died is moot.
    if (this.failure) return;
    if (message.type === 'done' && message.polled) this.completions.takenPolling++;
    if (this.completedEarly.delete(message.id)) {
      assert.equal(message.type, 'done', `I/O ${message.id} completed from shared memory, then reported ${message.type}`);
      return;
    }
    const p = this.pending.get(message.id);
    assert.ok(p, `I/O worker reported unknown request ${message.id}`);
    if (message.type === 'done') {
      this.complete(message.id, p, message.bytes, false);
      return;
    }
    this.finish(message.id, p);
    if (p.overdue) {
      // The caller has its timeout already; only now, with the I/O finished, may the buffer be reused.
      if (!p.bufferFreed) this.arena.release(p.slot);
      return;
    }
    if (message.type === 'skipped') assert.fail('I/O skipped although its deadline has not passed');
    this.arena.release(p.slot);
    p.reject(new StorageError(StorageErrorCode.ioError, this.path, `${p.op} failed: ${message.code}: ${message.message}`));
  }

  /** The worker is done with this I/O: its deadline, written range and queue slot are no longer needed. */
  private finish(id: number, p: Pending): void {
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.releaseRange(p);
    Atomics.store(this.control, p.controlIndex, SlotState.free);
  }

  private complete(id: number, p: Pending, bytes: number, early: boolean): void {
    // Seen finished only after its deadline (the loop was busy, its timer has not run yet): it
    // failed, as if the timer had run first, whether a spin or the worker's message saw it.
    if (!p.overdue && performance.now() >= p.deadlineAtMs) this.onDeadline(id);
    this.finish(id, p);
    if (early) this.completedEarly.add(id);
    if (p.overdue) {
      // The caller has its timeout already; only now, with the I/O finished, may the buffer be reused.
      if (!p.bufferFreed) this.arena.release(p.slot);
      return;
    }
    // The caller copies out and releases the slot. In a turn the storages have held long enough,
    // it hears at the check phase, so that timers run before the next step of its chain.
    if (turnLeftMs(performance.now()) > 0) p.resolve(bytes);
    else setImmediate(() => p.resolve(bytes));
  }

  private onWorkerGone(reason: string): void {
    if (this.failure) return;
    // After close the worker exits by design; before it, its exit is a failure.
    this.failure = this.closing ? new StorageError(StorageErrorCode.closed, this.path, 'closed') : new StorageError(StorageErrorCode.workerDied, this.path, reason);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      this.releaseRange(p);
      if (!p.overdue) p.reject(this.failure);
    }
    // The worker is gone, and with it every I/O it could still have issued.
    this.pending.clear();
    this.completedEarly.clear();
    this.onClosed?.();
  }

  private releaseRange(p: Pending): void {
    if (p.range) removeOutstandingWrite(p.range);
    p.range = undefined;
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }
}

/** A finished read whose bytes stay in the I/O buffer until consumed or dropped (once). */
export class HeldRead {
  private held = true;

  constructor(
    private readonly arena: AlignedArena,
    private readonly slot: Slot,
    /** Bytes read: fewer than asked only at the end of a regular file. */
    readonly bytes: number,
  ) {}

  /** Hands the bytes to `consume`, then returns the buffer; nothing may keep a view of it. */
  consume<T>(consume: (bytes: Uint8Array) => T): T {
    assert.ok(this.held, 'a held read consumed after it was given back');
    try {
      const result = consume(this.arena.bytes(this.slot).subarray(0, this.bytes));
      assert.ok(!(result instanceof Promise), 'readWith consumer must be synchronous');
      assert.ok(!(ArrayBuffer.isView(result) && result.buffer === this.arena.memory.buffer), 'readWith consumer returned a view of the I/O buffer');
      return result;
    } finally {
      this.drop();
    }
  }

  /** Gives the buffer back unread. */
  drop(): void {
    if (!this.held) return;
    this.held = false;
    this.arena.release(this.slot);
  }
}

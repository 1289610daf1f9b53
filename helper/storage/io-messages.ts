/**
 * Messages between a DirectStorage (main thread) and its I/O worker. The
 * worker owns the file descriptor; buffers live in the shared arena and are
 * named by offset; each queued I/O has a slot in the shared control array
 * whose state lets the main thread cancel an I/O that has not started.
 */

export const SlotState = {
  free: 0,
  queued: 1,
  running: 2,
  cancelled: 3,
  /** The worker finished the I/O and stored its byte count in `results` (before it posts 'done'). */
  done: 4,
  /** The I/O failed; the error travels in the 'failed' message. */
  failed: 5,
} as const;

export interface WorkerSetup {
  readonly path: string;
  readonly writable: boolean;
  readonly create: boolean;
  readonly noFollow: boolean;
  /** For a block device, open it O_EXCL: fails with EBUSY if mounted or held by dm/md. */
  readonly exclusiveBlockDevice: boolean;
  readonly memory: WebAssembly.Memory;
  /** Int32Array over this: one SlotState per queue slot. */
  readonly control: SharedArrayBuffer;
  /** Int32Array over this: the bytes transferred by each slot's finished I/O. */
  readonly results: SharedArrayBuffer;
  /** After an I/O, how long the worker looks for the next request before it sleeps (0: not at all). */
  readonly requestPollUs: number;
  /**
   * Int32Array(1) over this: 1 while the main thread spins for an I/O of this storage. The worker
   * polls for the next request only after an I/O the main thread was spinning for: then the main
   * thread has a CPU and the next request follows at once. Otherwise (no operation waiting, or busy
   * CPUs, where the main thread's spins back off) a polling worker would only hold a CPU the main
   * thread needs.
   */
  readonly mainSpinning: SharedArrayBuffer;
}

export interface StorageInfo {
  readonly kind: 'file' | 'block';
  readonly sizeBytes: number;
  /** The device's logical block size from sysfs; undefined when unknown (tmpfs, NFS). */
  readonly logicalBlockSize: number | undefined;
  /** "major:minor" of the device holding the data. */
  readonly device: string;
  /** What the kernel says this storage is: "block:MAJ:MIN" or "file:MAJ:MIN:INODE". */
  readonly identity: string;
}

export type IoOp = 'read' | 'write';

export interface IoRequest {
  readonly type: 'io';
  readonly id: number;
  readonly op: IoOp;
  readonly position: number;
  readonly byteOffset: number;
  readonly length: number;
  readonly controlIndex: number;
  /** Alignment the worker asserts for position, length and buffer address. */
  readonly alignment: number;
}

export type ToWorker = IoRequest | { readonly type: 'close' };

export type FromWorker =
  /** The worker has loaded and is about to open: the open's io deadline starts here, not at thread start-up. */
  | { readonly type: 'started' }
  | { readonly type: 'opened'; readonly info: StorageInfo }
  | { readonly type: 'open-failed'; readonly code: string; readonly message: string; readonly notStorage: boolean }
  /** `polled`: the worker took the request while polling after an earlier I/O, not woken by its message. */
  | { readonly type: 'done'; readonly id: number; readonly bytes: number; readonly polled: boolean }
  | { readonly type: 'failed'; readonly id: number; readonly code: string; readonly message: string }
  | { readonly type: 'skipped'; readonly id: number }
  | { readonly type: 'closed'; readonly error: string | undefined };

import type { Effects, IoRequest, IoResult, ReadRequest, WriteRequest } from '../engine/io.js';
import { StorageError, StorageErrorCode, type DirectStorage, type HeldRead } from '../storage/index.js';
import type { Clock } from './clock.js';

/**
 * The thin shell around one pure engine: performs the reads and writes it
 * asks for on real storage (at its area's offset), arms its wake-up timer,
 * persists its ballot floor before any of its writes, and hands its outcomes
 * on. Reads are lent to the engine without a copy: it parses them at once.
 *
 * A write that names the read to follow it (a ballot's write, then the read
 * of every host block) gets that read queued right behind it: the storage
 * runs I/Os one at a time in submission order, so the read still starts only
 * after the write completed, and the engine's request for it, made once it
 * learns the write succeeded, is answered without another round trip to the
 * I/O thread. Only the step that learns the write succeeded may take it; a
 * read that step does not ask for, or one behind a failed write, is dropped;
 * a prefetched read that failed is issued again, with its own full deadline.
 */

export interface EngineHooks<Event, Outcome> {
  step(event: Event): Effects<Outcome>;
  ioEvent(result: IoResult, nowMs: number): Event;
  tickEvent(nowMs: number): Event;
  onOutcome(outcome: Outcome): void;
  /** Must be durable before it returns (the helper writes it to its run dir). */
  persistBallotFloor?(floor: number): void;
}

/** How a storage failure looks to an engine. */
function failureOf(id: number, error: unknown): IoResult {
  if (!(error instanceof StorageError)) throw error;
  const busy: string[] = [StorageErrorCode.writeOutstanding, StorageErrorCode.queueFull, StorageErrorCode.buffersExhausted, StorageErrorCode.closed];
  const reason = error.code === StorageErrorCode.ioTimeout ? 'timeout' : busy.includes(error.code) ? 'busy' : 'error';
  return { id, ok: false, reason, detail: error.message };
}

/** A read queued behind the write that names it. */
interface Prefetch {
  readonly offset: number;
  readonly length: number;
  readonly read: Promise<HeldRead>;
  /** The write succeeded: the step the engine is told so in asks for the read, or it never will. */
  writeSettled: boolean;
}

export class EngineDriver<Event, Outcome> {
  private timer: unknown;
  private prefetch: Prefetch | undefined;
  /** Reads answered from a prefetch, and prefetches dropped unused (for tests and the bench). */
  readonly prefetchCounts = { used: 0, dropped: 0 };

  constructor(
    private readonly hooks: EngineHooks<Event, Outcome>,
    private readonly storage: DirectStorage,
    private readonly areaOffset: number,
    private readonly clock: Clock,
  ) {}

  send(event: Event): void {
    this.apply(this.hooks.step(event));
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private apply(effects: Effects<Outcome>): void {
    if (effects.persistBallotFloor !== undefined) this.hooks.persistBallotFloor?.(effects.persistBallotFloor);
    for (const request of effects.ios) this.issue(request);
    // The step that learnt the write's fate did not ask for the read: it never will.
    if (this.prefetch?.writeSettled) this.dropPrefetch();
    this.stop();
    if (effects.wakeAtMs !== undefined) this.timer = this.clock.setTimer(effects.wakeAtMs, () => this.send(this.hooks.tickEvent(this.clock.nowMs())));
    for (const outcome of effects.outcomes) this.hooks.onOutcome(outcome);
  }

  private issue(request: IoRequest): void {
    if (request.kind === 'read') this.issueRead(request, this.takePrefetch(request));
    else this.issueWrite(request);
  }

  private issueRead(request: ReadRequest, prefetched: Promise<HeldRead> | undefined): void {
    const offset = this.areaOffset + request.offset;
    const read = prefetched ?? this.storage.readHeld(offset, request.length);
    read.then(
      (held) => {
        // The engine parses the buffer during this call; it is reused afterwards.
        const effects = held.consume((data) => this.hooks.step(this.hooks.ioEvent(this.readResult(request, data), this.clock.nowMs())));
        this.apply(effects);
      },
      (error: unknown) => {
        // A prefetched read's deadline ran from behind its write: give the engine a read of its own.
        if (prefetched) this.issueRead(request, undefined);
        else this.send(this.hooks.ioEvent(failureOf(request.id, error), this.clock.nowMs()));
      },
    );
  }

  private readResult(request: ReadRequest, data: Uint8Array): IoResult {
    if (data.byteLength < request.length) return { id: request.id, ok: false, reason: 'error', detail: `short read: ${data.byteLength} of ${request.length} bytes (truncated area)` };
    return { id: request.id, ok: true, data };
  }

  private issueWrite(request: WriteRequest): void {
    // One prefetch at a time: an engine has one ballot write in flight.
    if (this.prefetch) this.dropPrefetch();
    const { write, prefetch } = this.submitWrite(request);
    write.then(
      () => {
        if (prefetch) prefetch.writeSettled = true;
        this.send(this.hooks.ioEvent({ id: request.id, ok: true }, this.clock.nowMs()));
      },
      (error: unknown) => {
        // The hint names the read that follows a write that succeeded: after a failure, none does.
        if (prefetch && this.prefetch === prefetch) this.dropPrefetch();
        this.send(this.hooks.ioEvent(failureOf(request.id, error), this.clock.nowMs()));
      },
    );
  }

  /** The write, and the read it names queued right behind it on the same storage when there is room. */
  private submitWrite(request: WriteRequest): { write: Promise<void>; prefetch: Prefetch | undefined } {
    const at = this.areaOffset + request.offset;
    if (!request.thenRead) return { write: this.storage.write(at, request.data), prefetch: undefined };
    const { offset, length } = request.thenRead;
    const { written, read } = this.storage.writeThenRead(at, request.data, this.areaOffset + offset, length);
    if (!read) return { write: written, prefetch: undefined };
    // Its failure is handled where it is taken (issued again) or dropped; until then it must not count as unhandled.
    read.catch(() => undefined);
    this.prefetch = { offset, length, read, writeSettled: false };
    return { write: written, prefetch: this.prefetch };
  }

  /** The prefetched read if it is the one `request` asks for, once its write has completed. */
  private takePrefetch(request: ReadRequest): Promise<HeldRead> | undefined {
    const p = this.prefetch;
    if (!p || !p.writeSettled || p.offset !== request.offset || p.length !== request.length) return undefined;
    this.prefetch = undefined;
    this.prefetchCounts.used++;
    return p.read;
  }

  private dropPrefetch(): void {
    const p = this.prefetch!;
    this.prefetch = undefined;
    this.prefetchCounts.dropped++;
    p.read.then(
      (held) => held.drop(),
      () => undefined, // a failed read holds no buffer
    );
  }
}

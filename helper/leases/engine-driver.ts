import type { Effects, IoRequest, IoResult } from '../engine/io.js';
import { StorageError, StorageErrorCode, type DirectStorage } from '../storage/index.js';
import type { Clock } from './clock.js';

/**
 * The thin shell around one pure engine: performs the reads and writes it
 * asks for on real storage (at its area's offset), arms its wake-up timer,
 * persists its ballot floor before any of its writes, and hands its outcomes
 * on. Reads are lent to the engine without a copy: it parses them at once.
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

export class EngineDriver<Event, Outcome> {
  private timer: unknown;

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
    this.stop();
    if (effects.wakeAtMs !== undefined) this.timer = this.clock.setTimer(effects.wakeAtMs, () => this.send(this.hooks.tickEvent(this.clock.nowMs())));
    for (const outcome of effects.outcomes) this.hooks.onOutcome(outcome);
  }

  private issue(request: IoRequest): void {
    const offset = this.areaOffset + request.offset;
    if (request.kind === 'read') {
      this.storage
        .readWith(offset, request.length, (data) => {
          const short = data.byteLength < request.length;
          const result: IoResult = short ? { id: request.id, ok: false, reason: 'error', detail: `short read: ${data.byteLength} of ${request.length} bytes (truncated area)` } : { id: request.id, ok: true, data };
          // The engine parses the buffer during this call; it is reused afterwards.
          return this.hooks.step(this.hooks.ioEvent(result, this.clock.nowMs()));
        })
        .then(
          (effects) => this.apply(effects),
          (error: unknown) => this.send(this.hooks.ioEvent(failureOf(request.id, error), this.clock.nowMs())),
        );
      return;
    }
    this.storage.write(offset, request.data).then(
      () => this.send(this.hooks.ioEvent({ id: request.id, ok: true }, this.clock.nowMs())),
      (error: unknown) => this.send(this.hooks.ioEvent(failureOf(request.id, error), this.clock.nowMs())),
    );
  }
}

import { DeltaEngine, type DeltaConfig, type DeltaEvent, type DeltaOutcome } from '../engine/delta-engine.js';
import type { HostStatus } from '../engine/host-table.js';
import type { Incarnation } from '../format/index.js';
import type { DirectStorage } from '../storage/index.js';
import type { Clock } from './clock.js';
import { EngineDriver } from './engine-driver.js';

/**
 * A lockspace joined by this host: the delta engine on real storage. Join
 * and leave are promises; renewals run on their own; every outcome (renewed,
 * warning, lost) is passed to `onOutcome`, which the helper uses to fence.
 */

export class JoinError extends Error {
  override readonly name = 'JoinError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Lockspace {
  readonly engine: DeltaEngine;
  private readonly driver: EngineDriver<DeltaEvent, DeltaOutcome>;
  private pendingJoin: { resolve: (generation: number) => void; reject: (error: JoinError) => void } | undefined;
  private pendingLeave: ((clean: boolean) => void) | undefined;

  constructor(
    config: DeltaConfig,
    storage: DirectStorage,
    areaOffset: number,
    private readonly clock: Clock,
    private readonly onOutcome: (outcome: DeltaOutcome) => void = () => undefined,
  ) {
    this.engine = new DeltaEngine(config);
    this.driver = new EngineDriver(
      {
        step: (event) => this.engine.step(event),
        ioEvent: (result, nowMs) => ({ type: 'io', result, nowMs }),
        tickEvent: (nowMs) => ({ type: 'tick', nowMs }),
        onOutcome: (outcome) => this.dispatch(outcome),
      },
      storage,
      areaOffset,
      clock,
    );
  }

  join(previousIncarnationGone?: Incarnation): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pendingJoin = { resolve, reject };
      const nowMs = this.clock.nowMs();
      this.driver.send(previousIncarnationGone ? { type: 'join', nowMs, previousIncarnationGone } : { type: 'join', nowMs });
    });
  }

  /**
   * Adopts our record at `generation` as a previous helper of this same
   * incarnation left it: the engine reads it back, takes its timestamp as
   * the last successful renewal, and renews at once. Resolves with the
   * generation, or rejects (the record is not ours, or past its deadline).
   */
  resume(generation: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pendingJoin = { resolve, reject };
      this.driver.send({ type: 'resume', nowMs: this.clock.nowMs(), generation });
    });
  }

  /** Writes our record free. Only with no lease of this lockspace held (the caller's rule). */
  leave(): Promise<boolean> {
    return new Promise((resolve) => {
      this.pendingLeave = resolve;
      this.driver.send({ type: 'leave', nowMs: this.clock.nowMs() });
    });
  }

  hostStatus(hostId: number): HostStatus {
    return this.engine.hostStatus(hostId, this.clock.nowMs());
  }

  stop(): void {
    this.driver.stop();
  }

  private dispatch(outcome: DeltaOutcome): void {
    if (outcome.type === 'joined') this.pendingJoin?.resolve(outcome.generation);
    if (outcome.type === 'join-failed') this.pendingJoin?.reject(new JoinError(outcome.code, outcome.reason));
    if (outcome.type === 'joined' || outcome.type === 'join-failed') this.pendingJoin = undefined;
    if (outcome.type === 'left') {
      this.driver.stop();
      this.pendingLeave?.(outcome.clean);
      this.pendingLeave = undefined;
    }
    if (outcome.type === 'lost') this.driver.stop();
    this.onOutcome(outcome);
  }
}

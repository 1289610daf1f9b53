import { FormatError, type Incarnation, type LockspaceSpec } from '../format/index.js';
import { areaLabel, identifyAreaAt } from '../areas/index.js';
import type { DeltaOutcome } from '../engine/delta-engine.js';
import type { HostStatus } from '../engine/host-table.js';
import type { BrokenRules } from '../engine/broken-rules.js';
import { deriveTiming, type Timing } from '../engine/timing.js';
import type { LockspaceConfig } from '../config/index.js';
import { Lockspace, type Clock } from '../leases/index.js';
import type { DirectStorage } from '../storage/index.js';
import { HelperError } from './helper-error.js';
import { LatencyHistory } from './latency-history.js';
import type { StoragePool } from './storage-pool.js';
import type { Logger } from './log.js';

/**
 * One lockspace of this helper: its storage, its delta lease (renewed on its
 * own schedule by its own engine and timer, so a hung device here delays no
 * other lockspace), the renewal latency history and what the helper must
 * know to fence: until when its leases are valid, and whether it was lost.
 */

export const LATENCY_HISTORY_ENTRIES = 32;

export type LockspaceState = 'joining' | 'joined' | 'lost' | 'left';

export interface LockspaceIdentity {
  readonly hostId: number;
  readonly incarnation: Incarnation;
  readonly ioTimeoutMs: number;
  readonly watchdogFireTimeoutMs: number;
  readonly takeoverWithoutWatchdog: boolean;
  /** Test-only (the fault harness's unsafe switch): a rule broken on purpose. */
  readonly brokenRules?: BrokenRules;
}

export interface LockspaceEvents {
  renewed(lockspace: JoinedLockspace): void;
  lost(lockspace: JoinedLockspace, reason: string): void;
}

export class JoinedLockspace {
  state: LockspaceState = 'joining';
  readonly latencies = new LatencyHistory(LATENCY_HISTORY_ENTRIES);
  lastRenewedAtMs: number | undefined;
  joinStartedAtMs: number | undefined;
  private shell: Lockspace | undefined;

  private constructor(
    readonly config: LockspaceConfig,
    readonly spec: LockspaceSpec,
    readonly timing: Timing,
    private readonly storage: DirectStorage,
    private readonly pool: StoragePool,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Opens the area and checks it is the lockspace the config names, with the io timeout it records. */
  static async open(config: LockspaceConfig, identity: LockspaceIdentity, pool: StoragePool, clock: Clock, log: Logger): Promise<JoinedLockspace> {
    const storage = await pool.acquire(config.path);
    try {
      const spec = await identifyAreaAt(storage, config.offset);
      const label = `lockspace ${JSON.stringify(config.name)} at ${config.path}:${config.offset}`;
      if (spec.kind !== 'lockspace') throw new HelperError('LOCKSPACE_NOT_AREA', 'storage', `${label}: the area there is ${areaLabel(spec, config.path, config.offset)}, not a lockspace`);
      if (spec.lockspaceName !== config.name) throw new HelperError('LOCKSPACE_NAME_MISMATCH', 'refused', `${label}: the area there is lockspace ${JSON.stringify(spec.lockspaceName)}`);
      if (spec.ioTimeoutMs !== identity.ioTimeoutMs) {
        throw new HelperError('LOCKSPACE_IO_TIMEOUT_MISMATCH', 'refused', `${label}: the lockspace was initialised with an io timeout of ${spec.ioTimeoutMs} ms, the config says ${identity.ioTimeoutMs} ms (the lockspace's value is authoritative: fix ioTimeoutMs)`);
      }
      if (identity.hostId > spec.hostsMax) throw new HelperError('LOCKSPACE_HOST_ID', 'refused', `${label}: host id ${identity.hostId} is outside the lockspace's 1..${spec.hostsMax}`);
      const timing = deriveTiming(spec.ioTimeoutMs, identity.watchdogFireTimeoutMs);
      return new JoinedLockspace(config, spec, timing, storage, pool, clock, log);
    } catch (error) {
      await pool.release(storage);
      if (error instanceof FormatError) throw new HelperError('LOCKSPACE_NOT_AREA', 'storage', `lockspace ${JSON.stringify(config.name)} at ${config.path}:${config.offset}: ${error.message}`);
      throw error;
    }
  }

  get name(): string {
    return this.config.name;
  }

  get generation(): number | undefined {
    return this.shell?.engine.generation;
  }

  get lockspace(): Lockspace {
    if (!this.shell) throw new HelperError('LOCKSPACE_NOT_JOINED', 'error', `lockspace ${JSON.stringify(this.name)} is not joined`);
    return this.shell;
  }

  /** When the join should be done, as far as the engine knows (its own old record may have to age out first). */
  joinEtaMs(): number | undefined {
    if (this.state !== 'joining' || this.joinStartedAtMs === undefined) return undefined;
    return this.shell?.engine.joinEtaMs(this.clock.nowMs()) ?? this.joinStartedAtMs + 3 * this.timing.ioTimeoutMs + this.timing.joinSettleMs;
  }

  /** Until when leases of this lockspace are valid (T + 8N), while joined. */
  get validUntilMs(): number | undefined {
    return this.state === 'joined' ? this.shell?.engine.validUntilMs : undefined;
  }

  async join(identity: LockspaceIdentity, events: LockspaceEvents, previousIncarnationGone?: Incarnation): Promise<number> {
    this.joinStartedAtMs = this.clock.nowMs();
    this.shell = this.makeShell(identity, events);
    try {
      const generation = await this.shell.join(previousIncarnationGone);
      this.state = 'joined';
      return generation;
    } catch (error) {
      this.state = 'left';
      throw new HelperError('LOCKSPACE_JOIN_FAILED', 'storage', `lockspace ${JSON.stringify(this.name)}: join failed: ${(error as Error).message}`, { code: (error as { code?: string }).code });
    }
  }

  /** Adopts our own delta lease at `generation` as the previous helper of this incarnation left it. */
  async resume(identity: LockspaceIdentity, events: LockspaceEvents, generation: number): Promise<number> {
    this.joinStartedAtMs = this.clock.nowMs();
    this.shell = this.makeShell(identity, events);
    try {
      await this.shell.resume(generation);
      this.state = 'joined';
      return generation;
    } catch (error) {
      this.state = 'left';
      throw new HelperError('LOCKSPACE_RESUME_FAILED', 'storage', `lockspace ${JSON.stringify(this.name)}: resume failed: ${(error as Error).message}`);
    }
  }

  hostStatuses(): HostStatus[] {
    const statuses: HostStatus[] = [];
    for (let hostId = 1; hostId <= this.spec.hostsMax; hostId++) statuses.push(this.lockspace.hostStatus(hostId));
    return statuses;
  }

  private makeShell(identity: LockspaceIdentity, events: LockspaceEvents): Lockspace {
    return new Lockspace(
      { lockspace: this.spec, hostId: identity.hostId, incarnation: identity.incarnation, watchdogFireTimeoutMs: identity.watchdogFireTimeoutMs, takeoverWithoutWatchdog: identity.takeoverWithoutWatchdog, ownerFeatures: 0, ...(identity.brokenRules ? { brokenRules: identity.brokenRules } : {}) },
      this.storage,
      this.config.offset,
      this.clock,
      (outcome) => this.onOutcome(outcome, events),
    );
  }

  /** Writes our record free: the caller has proven no process holding a lease of it is alive. */
  async leave(): Promise<boolean> {
    if (this.state !== 'joined') return false;
    const clean = await this.lockspace.leave();
    this.state = 'left';
    return clean;
  }

  async close(): Promise<void> {
    this.shell?.stop();
    await this.pool.release(this.storage);
  }

  private onOutcome(outcome: DeltaOutcome, events: LockspaceEvents): void {
    const log = this.log;
    switch (outcome.type) {
      case 'renewed':
        this.lastRenewedAtMs = outcome.renewedAtMs;
        this.latencies.add(outcome.latencyMs);
        events.renewed(this);
        break;
      case 'renew-error':
        log.warn({ msg: 'lockspace.renew-error', lockspace: this.name, reason: outcome.reason });
        break;
      case 'renew-warning':
        log.warn({ msg: 'lockspace.renew-late', lockspace: this.name, lastRenewedAgoMs: this.clock.nowMs() - outcome.lastRenewedAtMs });
        break;
      case 'lost':
        this.state = 'lost';
        log.error({ msg: 'lockspace.lost', lockspace: this.name, code: outcome.code, reason: outcome.reason });
        events.lost(this, `${outcome.code}: ${outcome.reason}`);
        break;
      case 'joined':
        // T of the join write (read before submitting it), not the time the join was confirmed
        // (2N + 1 and a read later): every fence deadline and watchdog pet is measured from it.
        this.lastRenewedAtMs = outcome.validUntilMs - this.timing.failMs;
        log.info({ msg: 'lockspace.joined', lockspace: this.name, generation: outcome.generation, tookMs: this.clock.nowMs() - (this.joinStartedAtMs ?? 0) });
        break;
      case 'join-failed':
        log.error({ msg: 'lockspace.join-failed', lockspace: this.name, code: outcome.code, reason: outcome.reason });
        break;
      case 'left':
        log.info({ msg: 'lockspace.left', lockspace: this.name, clean: outcome.clean, reason: outcome.reason });
        break;
    }
  }
}

/**
 * A small synchronous, in-memory harness for the pure lease engines.
 *
 * A World holds one byte array (the "disk") with areas laid out on it by
 * initialAreaBytes, one monotonic clock the test controls, and drivers. A
 * Driver wraps one engine: it sends it events stamped with the clock, executes
 * the I/O requests the engine returns against the engine's area (at once by
 * default; a test can fail, time out, hold or delay a chosen one), feeds the
 * results back, keeps the latest wakeAtMs and follows it with tick events when
 * the world's time advances, and logs every I/O, step and outcome.
 */
import type { Effects, IoRequest, IoResult } from '../../../dist/helper/engine/io.js';
import { DeltaEngine, type DeltaConfig, type DeltaEvent, type DeltaOutcome } from '../../../dist/helper/engine/delta-engine.js';
import type { HostState, HostStatus } from '../../../dist/helper/engine/host-table.js';
import { ResourceEngine, type Liveness, type ResourceConfig, type ResourceEvent, type ResourceOutcome } from '../../../dist/helper/engine/resource-engine.js';
import {
  encodeDeltaRecord,
  encodeHostBlock,
  encodeLeaderRecord,
  hostSector,
  identityOf,
  initialAreaBytes,
  parseLockspaceArea,
  parseResourceArea,
  specBytes,
  type AreaSpec,
  type DeltaRecord,
  type HostBlock,
  type Incarnation,
  type LeaderRecord,
  type LockspaceSpec,
  type ResourceSpec,
} from '../../../dist/helper/format/index.js';

/** Areas start on 4096-byte boundaries, as on real storage. */
const AREA_ALIGN = 4096;

export class Clock {
  constructor(public now: number) {}
}

// ---- the disk and its areas ----

export class Area<S extends AreaSpec = AreaSpec> {
  constructor(
    readonly disk: Uint8Array,
    readonly spec: S,
    readonly base: number,
  ) {}

  get bytes(): Uint8Array {
    return this.disk.subarray(this.base, this.base + specBytes(this.spec));
  }

  get size(): number {
    return specBytes(this.spec);
  }

  read(offset: number, length: number): Uint8Array {
    return this.disk.slice(this.base + offset, this.base + offset + length);
  }

  write(offset: number, data: Uint8Array): void {
    this.disk.set(data, this.base + offset);
  }

  /** The sector index within the area of a byte offset. */
  sectorOf(offset: number): number {
    return Math.floor(offset / this.spec.sectorSize);
  }
}

export class LockspaceArea extends Area<LockspaceSpec> {
  record(hostId: number): DeltaRecord {
    const checked = parseLockspaceArea(this.bytes, this.spec, 'test lockspace').hosts[hostId - 1]!;
    if (!checked.ok) throw checked.error;
    return checked.value;
  }

  setRecord(record: DeltaRecord): void {
    this.write(hostSector('lockspace', record.hostId) * this.spec.sectorSize, encodeDeltaRecord(identityOf(this.spec), record));
  }

  /** Flips one byte of a host's record so that it fails its checksum. */
  corrupt(hostId: number): void {
    const at = this.base + hostSector('lockspace', hostId) * this.spec.sectorSize + 200;
    this.disk[at] = this.disk[at]! ^ 0xff;
  }
}

export class ResourceArea extends Area<ResourceSpec> {
  leader(): LeaderRecord {
    const checked = parseResourceArea(this.bytes, this.spec, 'test resource').leader;
    if (!checked.ok) throw checked.error;
    return checked.value;
  }

  block(hostId: number): HostBlock {
    const checked = parseResourceArea(this.bytes, this.spec, 'test resource').hosts[hostId - 1]!;
    if (!checked.ok) throw checked.error;
    return checked.value;
  }

  setLeader(leader: LeaderRecord): void {
    this.write(0, encodeLeaderRecord(identityOf(this.spec), leader));
  }

  setBlock(block: HostBlock): void {
    this.write(hostSector('resource', block.hostId) * this.spec.sectorSize, encodeHostBlock(identityOf(this.spec), block));
  }
}

// ---- I/O control ----

export type Completion = { readonly ok: true } | { readonly ok: false; readonly reason: 'timeout' | 'error' | 'busy'; /** A failed write reaches the disk anyway. */ readonly land?: boolean };

/** What the harness does with one I/O request. */
export type Decision =
  | Completion
  /** Keep it pending until the test calls complete(). */
  | { readonly hold: true }
  /** Complete it this much later (when the world's time gets there). */
  | { readonly delayMs: number; readonly then?: Completion };

export const OK: Completion = { ok: true };
export const TIMEOUT: Completion = { ok: false, reason: 'timeout' };
export const TIMEOUT_LANDED: Completion = { ok: false, reason: 'timeout', land: true };
export const EIO: Completion = { ok: false, reason: 'error' };
export const HOLD: Decision = { hold: true };

export interface IoMatch {
  readonly kind?: 'read' | 'write';
  /** Byte offset within the area. */
  readonly offset?: number;
  /** Position in the driver's I/O log (0 = the first I/O the engine ever asked for). */
  readonly seq?: number;
  readonly where?: (io: IoRequest) => boolean;
}

interface Rule {
  readonly match: IoMatch;
  readonly decision: Decision;
  remaining: number;
}

export interface IoLogEntry {
  /** Position in this driver's I/O log. */
  readonly seq: number;
  readonly id: number;
  readonly kind: 'read' | 'write';
  /** Byte offset within the area. */
  readonly offset: number;
  readonly length: number;
  readonly submittedAtMs: number;
  /** The data of a write. */
  readonly data: Uint8Array | undefined;
  completedAtMs: number | undefined;
  result: 'ok' | 'timeout' | 'error' | 'busy' | undefined;
  /** Whether a write reached the disk. */
  landed: boolean;
}

export interface LoggedOutcome<O> {
  readonly atMs: number;
  readonly outcome: O;
  /** How many I/Os had been submitted before the step that produced it returned. */
  readonly ioCountBefore: number;
}

export interface LoggedStep<E, O> {
  readonly event: E;
  readonly effects: Effects<O>;
  /** The I/O log entries of the requests this step returned. */
  readonly ios: readonly IoLogEntry[];
}

interface Pending {
  readonly request: IoRequest;
  readonly entry: IoLogEntry;
  readonly dueAtMs: number | undefined;
  readonly then: Completion;
}

type WithoutNow<E> = E extends unknown ? Omit<E, 'nowMs'> : never;

interface SteppingEngine<E, O> {
  step(event: E): Effects<O>;
}

export class Driver<E extends { readonly type: string; readonly nowMs: number }, O extends { readonly type: string }, S extends AreaSpec = AreaSpec> {
  readonly ioLog: IoLogEntry[] = [];
  readonly steps: LoggedStep<E, O>[] = [];
  readonly outcomes: LoggedOutcome<O>[] = [];
  /** Writes submitted while an earlier write of this driver to the same sector was still pending. */
  readonly overlappingWrites: IoLogEntry[] = [];
  wakeAtMs: number | undefined;
  private readonly rules: Rule[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly ready: IoResult[] = [];
  private draining = false;

  constructor(
    readonly name: string,
    readonly engine: SteppingEngine<E, O>,
    readonly area: Area<S>,
    readonly clock: Clock,
  ) {}

  get now(): number {
    return this.clock.now;
  }

  // ---- control of I/O ----

  /** Applies `decision` to the next `times` I/Os matching `match` (default: the next one). */
  on(match: IoMatch, decision: Decision, times = 1): this {
    this.rules.push({ match, decision, remaining: times });
    return this;
  }

  /** Applies `decision` to every I/O matching `match` until clearRules(). */
  always(match: IoMatch, decision: Decision): this {
    return this.on(match, decision, Infinity);
  }

  clearRules(): void {
    this.rules.length = 0;
  }

  pendingIos(): IoLogEntry[] {
    return [...this.pending.values()].map((p) => p.entry);
  }

  /** Completes a held I/O now (the only one when `id` is omitted). */
  complete(id?: number, completion: Completion = OK): void {
    const key = id ?? this.onlyPendingId();
    const p = this.pending.get(key);
    if (!p) throw new Error(`${this.name}: no pending I/O ${key}`);
    this.pending.delete(key);
    this.ready.push(this.finish(p.request, p.entry, completion));
    this.drain();
  }

  private onlyPendingId(): number {
    const ids = [...this.pending.keys()];
    if (ids.length !== 1) throw new Error(`${this.name}: ${ids.length} I/Os pending, name one`);
    return ids[0]!;
  }

  // ---- events ----

  send(event: WithoutNow<E>): Effects<O> {
    const effects = this.deliver({ ...event, nowMs: this.clock.now } as unknown as E);
    this.drain();
    return effects;
  }

  tick(): Effects<O> {
    return this.send({ type: 'tick' } as WithoutNow<E>);
  }

  /** The earliest time this driver has something to do: a wake-up or a delayed completion. */
  nextEventAt(): number | undefined {
    const times: number[] = [];
    if (this.wakeAtMs !== undefined) times.push(this.wakeAtMs);
    for (const p of this.pending.values()) if (p.dueAtMs !== undefined) times.push(p.dueAtMs);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** Does what is due at the current time: delayed completions first, then a tick. */
  fire(): void {
    const now = this.clock.now;
    const due = [...this.pending.values()].filter((p) => p.dueAtMs !== undefined && p.dueAtMs <= now).sort((a, b) => a.dueAtMs! - b.dueAtMs! || a.entry.seq - b.entry.seq);
    if (due.length > 0) {
      for (const p of due) {
        this.pending.delete(p.request.id);
        this.ready.push(this.finish(p.request, p.entry, p.then));
      }
      this.drain();
      return;
    }
    if (this.wakeAtMs !== undefined && this.wakeAtMs <= now) {
      this.wakeAtMs = undefined;
      this.tick();
    }
  }

  // ---- views of the logs ----

  outcomesOf<T extends O['type']>(type: T): (LoggedOutcome<Extract<O, { type: T }>>)[] {
    return this.outcomes.filter((o) => o.outcome.type === type) as LoggedOutcome<Extract<O, { type: T }>>[];
  }

  lastOutcome(): O | undefined {
    return this.outcomes.at(-1)?.outcome;
  }

  reads(from = 0): IoLogEntry[] {
    return this.ioLog.slice(from).filter((e) => e.kind === 'read');
  }

  writes(from = 0): IoLogEntry[] {
    return this.ioLog.slice(from).filter((e) => e.kind === 'write');
  }

  bytesRead(from = 0): number {
    return this.reads(from).reduce((sum, e) => sum + e.length, 0);
  }

  /** The steps whose effects carried `persistBallotFloor`. */
  persistedFloors(): { floor: number; ios: readonly IoLogEntry[] }[] {
    return this.steps.filter((s) => s.effects.persistBallotFloor !== undefined).map((s) => ({ floor: s.effects.persistBallotFloor!, ios: s.ios }));
  }

  // ---- plumbing ----

  private deliver(event: E): Effects<O> {
    const effects = this.engine.step(event);
    this.wakeAtMs = effects.wakeAtMs;
    const ioCountBefore = this.ioLog.length;
    const entries = effects.ios.map((io) => this.submit(io));
    this.steps.push({ event, effects, ios: entries });
    for (const outcome of effects.outcomes) this.outcomes.push({ atMs: event.nowMs, outcome, ioCountBefore });
    return effects;
  }

  private submit(io: IoRequest): IoLogEntry {
    const length = io.kind === 'read' ? io.length : io.data.byteLength;
    const sector = this.area.spec.sectorSize;
    if (io.offset < 0 || io.offset % sector !== 0 || length % sector !== 0 || length === 0 || io.offset + length > this.area.size) {
      throw new Error(`${this.name}: ${io.kind} at ${io.offset} length ${length} is not sector-aligned inside the area (${this.area.size} bytes)`);
    }
    const entry: IoLogEntry = {
      seq: this.ioLog.length,
      id: io.id,
      kind: io.kind,
      offset: io.offset,
      length,
      submittedAtMs: this.clock.now,
      data: io.kind === 'write' ? io.data.slice() : undefined,
      completedAtMs: undefined,
      result: undefined,
      landed: false,
    };
    if (io.kind === 'write') {
      const first = io.offset / sector;
      const last = first + length / sector;
      const overlaps = [...this.pending.values()].some((p) => p.entry.kind === 'write' && p.entry.offset / sector < last && (p.entry.offset + p.entry.length) / sector > first);
      if (overlaps) this.overlappingWrites.push(entry);
    }
    this.ioLog.push(entry);
    const decision = this.decide(io, entry.seq);
    if ('hold' in decision) {
      this.pending.set(io.id, { request: io, entry, dueAtMs: undefined, then: OK });
    } else if ('delayMs' in decision) {
      this.pending.set(io.id, { request: io, entry, dueAtMs: this.clock.now + decision.delayMs, then: decision.then ?? OK });
    } else {
      this.ready.push(this.finish(io, entry, decision));
    }
    return entry;
  }

  private decide(io: IoRequest, seq: number): Decision {
    for (const rule of this.rules) {
      if (rule.remaining <= 0) continue;
      const m = rule.match;
      if (m.kind !== undefined && m.kind !== io.kind) continue;
      if (m.offset !== undefined && m.offset !== io.offset) continue;
      if (m.seq !== undefined && m.seq !== seq) continue;
      if (m.where && !m.where(io)) continue;
      rule.remaining--;
      return rule.decision;
    }
    return OK;
  }

  /** Executes an I/O against the disk as it ends, and builds its result. */
  private finish(io: IoRequest, entry: IoLogEntry, completion: Completion): IoResult {
    entry.completedAtMs = this.clock.now;
    entry.result = completion.ok ? 'ok' : completion.reason;
    if (io.kind === 'write' && (completion.ok || completion.land === true)) {
      this.area.write(io.offset, io.data);
      entry.landed = true;
    }
    if (!completion.ok) return { id: io.id, ok: false, reason: completion.reason, detail: `test harness: ${completion.reason}` };
    if (io.kind === 'read') return { id: io.id, ok: true, data: this.area.read(io.offset, io.length) };
    return { id: io.id, ok: true };
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      let guard = 0;
      while (this.ready.length > 0) {
        if (++guard > 1_000) throw new Error(`${this.name}: more than 1000 I/O results in one instant: the engine is looping`);
        const result = this.ready.shift()!;
        this.deliver({ type: 'io', nowMs: this.clock.now, result } as unknown as E);
      }
    } finally {
      this.draining = false;
    }
  }
}

export type DeltaDriver = Driver<DeltaEvent, DeltaOutcome, LockspaceSpec> & { readonly engine: DeltaEngine; readonly area: LockspaceArea };
export type ResourceDriver = Driver<ResourceEvent, ResourceOutcome, ResourceSpec> & { readonly engine: ResourceEngine; readonly area: ResourceArea };

// ---- the world ----

/** What the world needs of a driver to move time. */
export interface Schedulable {
  readonly name: string;
  nextEventAt(): number | undefined;
  fire(): void;
}

export class World {
  readonly clock: Clock;
  readonly disk: Uint8Array;
  private used = 0;
  private readonly drivers: Schedulable[] = [];

  constructor(diskBytes = 1 << 20, startMs = 10_000) {
    this.clock = new Clock(startMs);
    this.disk = new Uint8Array(diskBytes);
  }

  get now(): number {
    return this.clock.now;
  }

  private place(spec: AreaSpec): number {
    const base = this.used;
    const size = specBytes(spec);
    if (base + size > this.disk.byteLength) throw new Error(`disk of ${this.disk.byteLength} bytes too small for another area of ${size}`);
    this.disk.set(initialAreaBytes(spec), base);
    this.used = Math.ceil((base + size) / AREA_ALIGN) * AREA_ALIGN;
    return base;
  }

  lockspace(spec: LockspaceSpec): LockspaceArea {
    return new LockspaceArea(this.disk, spec, this.place(spec));
  }

  resource(spec: ResourceSpec): ResourceArea {
    return new ResourceArea(this.disk, spec, this.place(spec));
  }

  delta(area: LockspaceArea, config: Omit<DeltaConfig, 'lockspace'>, name = `delta host ${config.hostId}`): DeltaDriver {
    const engine = new DeltaEngine({ ...config, lockspace: area.spec });
    return this.add(new Driver<DeltaEvent, DeltaOutcome, LockspaceSpec>(name, engine, area, this.clock)) as DeltaDriver;
  }

  resourceEngine(area: ResourceArea, config: Omit<ResourceConfig, 'resource'>, liveness: Liveness, name = `resource host ${config.hostId}`): ResourceDriver {
    const engine = new ResourceEngine({ ...config, resource: area.spec }, liveness);
    return this.add(new Driver<ResourceEvent, ResourceOutcome, ResourceSpec>(name, engine, area, this.clock)) as ResourceDriver;
  }

  add<D extends Schedulable>(driver: D): D {
    this.drivers.push(driver);
    return driver;
  }

  /** Moves time forward to `t`, delivering every wake-up and delayed completion due on the way, in time order. */
  advanceTo(t: number): void {
    let guard = 0;
    for (;;) {
      let best: { at: number; driver: Schedulable } | undefined;
      for (const driver of this.drivers) {
        const at = driver.nextEventAt();
        if (at !== undefined && at <= t && (!best || at < best.at)) best = { at, driver };
      }
      if (!best) break;
      if (++guard > 1_000_000) throw new Error(`no progress at ${this.clock.now} ms: ${best.driver.name} keeps asking to be woken at ${best.at} ms`);
      this.clock.now = Math.max(this.clock.now, best.at);
      best.driver.fire();
    }
    this.clock.now = Math.max(this.clock.now, t);
  }

  advance(ms: number): void {
    this.advanceTo(this.clock.now + ms);
  }

  /** Advances event by event until `done()` holds; fails past `limitMs`. */
  runUntil(done: () => boolean, limitMs: number): void {
    const end = this.clock.now + limitMs;
    let guard = 0;
    while (!done()) {
      if (++guard > 1_000_000) throw new Error('runUntil: no progress');
      let next: number | undefined;
      for (const driver of this.drivers) {
        const at = driver.nextEventAt();
        if (at !== undefined && (next === undefined || at < next)) next = at;
      }
      if (next === undefined || next > end) throw new Error(`runUntil: condition not met by ${end} ms (next event ${next ?? 'none'})`);
      this.advanceTo(Math.max(next, this.clock.now));
    }
  }
}

// ---- fixtures ----

export function incarnation(hostName: string, seed: number): Incarnation {
  const hex = (n: number, digits: number) => (n.toString(16).repeat(digits)).slice(0, digits).padStart(digits, '0');
  return { hostName, bootId: hex(0xb0 + seed, 32), nonce: hex(0xc0 + seed, 16) };
}

/** A delta record of another incarnation holding `hostId`. */
export function heldRecord(spec: LockspaceSpec, hostId: number, owner: Incarnation, fields: Partial<DeltaRecord> = {}): DeltaRecord {
  return {
    hostId,
    generation: 5,
    timestampMs: 4_321,
    ownerIoTimeoutMs: spec.ioTimeoutMs,
    ownerWatchdogFireTimeoutMs: 300,
    areaIoTimeoutMs: spec.ioTimeoutMs,
    ownerFeatures: 0,
    owner,
    requests: [],
    ...fields,
  };
}

/** A Liveness the test sets by hand; records what the engine asked. */
export class StubLiveness implements Liveness {
  /** `${hostId}:${generation}` pairs that count as gone. */
  readonly gone = new Set<string>();
  readonly states = new Map<number, HostState>();
  readonly asked: { hostId: number; generation: number; nowMs: number }[] = [];
  /** Generations of our own delta lease that have expired. */
  readonly ownExpired = new Set<number>();

  setGone(hostId: number, generation: number, gone = true): void {
    if (gone) this.gone.add(`${hostId}:${generation}`);
    else this.gone.delete(`${hostId}:${generation}`);
  }

  ownerGone(hostId: number, generation: number, nowMs: number): boolean {
    this.asked.push({ hostId, generation, nowMs });
    return this.gone.has(`${hostId}:${generation}`);
  }

  hostStatus(hostId: number, nowMs: number): HostStatus {
    return { hostId, state: this.states.get(hostId) ?? 'LIVE', record: undefined, sinceMs: nowMs - 1, deadAtMs: undefined, problem: undefined };
  }

  ownLeaseValid(generation: number, _nowMs: number): boolean {
    return !this.ownExpired.has(generation);
  }
}

import { describe, expect, it } from 'vitest';
import type { Effects, IoRequest, IoResult } from '../../dist/helper/engine/io.js';
import { EngineDriver, monotonicClock } from '../../dist/helper/leases/index.js';
import { StorageError, type DirectStorage } from '../../dist/helper/storage/index.js';

/**
 * The shell queues the read a ballot write names right behind it and answers
 * the engine's request for it from there. These tests pin the rules that keep
 * that safe: the read is submitted after the write, it is used only by the
 * step that learns the write succeeded and only for the read named, and a
 * failed prefetch is issued again.
 */

interface Submitted {
  readonly op: 'read' | 'write';
  readonly position: number;
  readonly length: number;
  settle(outcome: 'ok' | 'fail'): void;
  dropped: boolean;
}

/** A storage that records submissions in order and settles them when the test says. */
class ScriptedStorage {
  readonly submitted: Submitted[] = [];

  write(position: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.submitted.push({ op: 'write', position, length: data.byteLength, dropped: false, settle: (o) => (o === 'ok' ? resolve() : reject(new StorageError('STORAGE_IO_ERROR', 'scripted', 'write failed: EIO'))) });
    });
  }

  /** As DirectStorage's: nothing is queued when the write is refused (a misaligned position here). */
  writeThenRead(position: number, data: Uint8Array, readPosition: number, readLength: number) {
    if (position % 512 !== 0) return { written: Promise.reject(new StorageError('STORAGE_MISALIGNED', 'scripted', 'misaligned')), read: undefined };
    return { written: this.write(position, data), read: this.readHeld(readPosition, readLength) };
  }

  readHeld(position: number, length: number): Promise<{ bytes: number; consume<T>(f: (b: Uint8Array) => T): T; drop(): void }> {
    return new Promise((resolve, reject) => {
      const entry: Submitted = {
        op: 'read',
        position,
        length,
        dropped: false,
        settle: (o) => {
          if (o === 'fail') return reject(new StorageError('STORAGE_IO_TIMEOUT', 'scripted', 'read did not complete'));
          const data = new Uint8Array(length).fill(this.submitted.indexOf(entry) + 1);
          resolve({ bytes: length, consume: (f) => f(data), drop: () => void (entry.dropped = true) });
        },
      };
      this.submitted.push(entry);
    });
  }
}

type Event = { type: 'start' } | { type: 'io'; result: IoResult };

/** An engine scripted per event: what it asks for next, and what it was told. */
function harness(plan: (event: Event, seen: Event[]) => IoRequest[]) {
  const storage = new ScriptedStorage();
  const seen: Event[] = [];
  const driver = new EngineDriver<Event, never>(
    {
      step(event): Effects<never> {
        // Copy read data out: the driver lends it only during this call.
        const kept: Event = event.type === 'io' && event.result.ok && event.result.data ? { type: 'io', result: { ...event.result, data: event.result.data.slice() } } : event;
        seen.push(kept);
        return { ios: plan(event, seen), wakeAtMs: undefined, outcomes: [] };
      },
      ioEvent: (result) => ({ type: 'io', result }),
      tickEvent: () => ({ type: 'start' }),
      onOutcome: () => undefined,
    },
    storage as unknown as DirectStorage,
    4096,
    monotonicClock,
  );
  return { storage, seen, driver };
}

/** The events the engine heard: 'start', or [io id, ok, first data byte or failure reason]. */
function trail(seen: readonly Event[]): unknown[] {
  return seen.map((e) => (e.type === 'io' ? [e.result.id, e.result.ok, e.result.ok ? e.result.data?.[0] : e.result.reason] : e.type));
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const WRITE = { kind: 'write', id: 1, offset: 512, data: new Uint8Array(512), thenRead: { offset: 0, length: 8704 } } as const;
const BALLOT_READ = { kind: 'read', id: 2, offset: 0, length: 8704 } as const;

describe('the ballot read queued behind its write', () => {
  it('is submitted right after the write and answers the read the engine asks for once the write succeeded', async () => {
    const { storage, seen, driver } = harness((event) => (event.type === 'start' ? [WRITE] : event.type === 'io' && event.result.id === 1 ? [BALLOT_READ] : []));
    driver.send({ type: 'start' });
    expect(storage.submitted.map((s) => [s.op, s.position, s.length])).toEqual([['write', 4096 + 512, 512], ['read', 4096, 8704]]);
    storage.submitted[1]!.settle('ok'); // the read finished (behind the write, as the storage runs them in order)
    storage.submitted[0]!.settle('ok');
    await tick();
    await tick();
    // No second read: the engine's request was answered with the queued one, its bytes intact.
    expect(storage.submitted).toHaveLength(2);
    expect(trail(seen)).toEqual(['start', [1, true, undefined], [2, true, 2]]);
    expect(driver.prefetchCounts).toEqual({ used: 1, dropped: 0 });
  });

  it('is dropped when the write fails, and a read asked for afterwards is a new one', async () => {
    const { storage, seen, driver } = harness((event) => (event.type === 'start' ? [WRITE] : event.type === 'io' && event.result.id === 1 ? [BALLOT_READ] : []));
    driver.send({ type: 'start' });
    storage.submitted[1]!.settle('ok');
    storage.submitted[0]!.settle('fail');
    await tick();
    expect(storage.submitted[1]!.dropped).toBe(true);
    expect(storage.submitted.map((s) => s.op)).toEqual(['write', 'read', 'read']);
    storage.submitted[2]!.settle('ok');
    await tick();
    expect(trail(seen)).toEqual(['start', [1, false, 'error'], [2, true, 3]]);
    expect(driver.prefetchCounts).toEqual({ used: 0, dropped: 1 });
  });

  it('is dropped when the step that learns of the write asks for something else, and never used later', async () => {
    const other = { kind: 'read', id: 3, offset: 0, length: 512 } as const;
    const { storage, driver } = harness((event, seen) => {
      if (event.type === 'start') return seen.length === 1 ? [WRITE] : [BALLOT_READ];
      return event.result.id === 1 ? [other] : [];
    });
    driver.send({ type: 'start' });
    storage.submitted[0]!.settle('ok');
    storage.submitted[1]!.settle('ok');
    await tick();
    expect(storage.submitted[1]!.dropped).toBe(true);
    // A later step's read of the same bytes is read again: a prefetch serves only the step after its write.
    driver.send({ type: 'start' });
    expect(storage.submitted.map((s) => [s.op, s.length])).toEqual([['write', 512], ['read', 8704], ['read', 512], ['read', 8704]]);
    expect(driver.prefetchCounts).toEqual({ used: 0, dropped: 1 });
  });

  it('is not used for a read asked for before the write is known to have succeeded', async () => {
    const { storage, seen, driver } = harness((event, seen) => (event.type === 'start' ? (seen.length === 1 ? [WRITE] : [BALLOT_READ]) : []));
    driver.send({ type: 'start' });
    driver.send({ type: 'start' }); // a step while the write is in flight asks for the same bytes
    expect(storage.submitted.map((s) => s.op)).toEqual(['write', 'read', 'read']);
    storage.submitted[0]!.settle('ok');
    storage.submitted[1]!.settle('ok');
    storage.submitted[2]!.settle('ok');
    await tick();
    await tick();
    expect(seen.map((e) => (e.type === 'io' ? [e.result.id, e.result.ok ? e.result.data?.[0] : e.result.reason] : e.type))).toEqual(['start', 'start', [1, undefined], [2, 3]]);
    expect(storage.submitted[1]!.dropped).toBe(true);
    expect(driver.prefetchCounts).toEqual({ used: 0, dropped: 1 });
  });

  it('is issued again with its own deadline when the queued read failed', async () => {
    const { storage, seen, driver } = harness((event) => (event.type === 'start' ? [WRITE] : event.type === 'io' && event.result.id === 1 ? [BALLOT_READ] : []));
    driver.send({ type: 'start' });
    storage.submitted[0]!.settle('ok');
    storage.submitted[1]!.settle('fail');
    await tick();
    await tick();
    expect(storage.submitted.map((s) => s.op)).toEqual(['write', 'read', 'read']);
    storage.submitted[2]!.settle('ok');
    await tick();
    expect(trail(seen)).toEqual(['start', [1, true, undefined], [2, true, 3]]);
  });

  it('may fail before its write settles without an unhandled rejection, and is then issued again', async () => {
    const { storage, seen, driver } = harness((event) => (event.type === 'start' ? [WRITE] : event.type === 'io' && event.result.id === 1 ? [BALLOT_READ] : []));
    driver.send({ type: 'start' });
    storage.submitted[1]!.settle('fail'); // nothing has taken the read yet
    await tick();
    await tick();
    storage.submitted[0]!.settle('ok');
    await tick();
    await tick();
    expect(storage.submitted.map((s) => s.op)).toEqual(['write', 'read', 'read']);
    storage.submitted[2]!.settle('ok');
    await tick();
    expect(seen.map((e) => (e.type === 'io' ? [e.result.id, e.result.ok] : e.type))).toEqual(['start', [1, true], [2, true]]);
  });

  it('queues nothing behind a write the storage refuses', async () => {
    const { storage, seen, driver } = harness((event) => (event.type === 'start' ? [{ ...WRITE, offset: 100 }] : []));
    driver.send({ type: 'start' });
    await tick();
    expect(storage.submitted).toEqual([]);
    expect(seen.map((e) => (e.type === 'io' ? [e.result.id, e.result.ok ? 'ok' : e.result.reason] : e.type))).toEqual(['start', [1, 'error']]);
    expect(driver.prefetchCounts).toEqual({ used: 0, dropped: 0 });
  });

  it('is not queued for a write that names no read', async () => {
    const { storage, driver } = harness((event) => (event.type === 'start' ? [{ kind: 'write', id: 1, offset: 0, data: new Uint8Array(512) }] : []));
    driver.send({ type: 'start' });
    expect(storage.submitted.map((s) => s.op)).toEqual(['write']);
    storage.submitted[0]!.settle('ok');
    await tick();
    expect(driver.prefetchCounts).toEqual({ used: 0, dropped: 0 });
  });
});

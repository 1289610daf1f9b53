import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectStorage, SpinBackoff, SPIN_US_LIMIT, StorageError } from '../../dist/helper/storage/index.js';
import { workDir } from '../support/tmp.js';

/**
 * The main thread may watch a lone operation's I/O in place instead of
 * waiting for the worker's message (DirectStorage's completionSpinUs). The
 * results must be the same either way; the event loop must not be held past
 * the per-turn budget however many I/Os complete in place one after another;
 * and slow storage must turn the spinning down.
 */

const dir = workDir('completion-spin');
afterAll(() => dir.remove());

function sector(value: number): Uint8Array {
  return new Uint8Array(512).fill(value);
}

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Runs `step` `count` times in a row and says how many steps ran in the busiest event-loop turn, and how many before a 0 ms timer ran. */
async function readsPerTurn(count: number, step: () => Promise<void>): Promise<{ readsInTurnMax: number; readsDoneWhenTimerRan: number }> {
  let readsDone = 0;
  let readsDoneWhenTimerRan = Number.POSITIVE_INFINITY;
  setTimeout(() => void (readsDoneWhenTimerRan = readsDone), 0);
  // A counter of event-loop turns: each check phase bumps it once.
  let turn = 0;
  let counting = true;
  const tick = (): void => {
    turn++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  const inTurn = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    await step();
    readsDone++;
    inTurn.set(turn, (inTurn.get(turn) ?? 0) + 1);
  }
  counting = false;
  return { readsInTurnMax: Math.max(...inTurn.values()), readsDoneWhenTimerRan };
}

describe('completion seen by spinning', () => {
  it('gives the same results as completion by message, and is used when enabled', async () => {
    for (const spinning of [true, false]) {
      const wakeups = spinning ? { completionSpinUs: SPIN_US_LIMIT, requestPollUs: SPIN_US_LIMIT } : { completionSpinUs: 0, requestPollUs: 0 };
      const storage = await DirectStorage.open(join(dir.path, `same-${spinning}.img`), { writable: true, create: true, ioTimeoutMs: 10_000, ...wakeups });
      for (let i = 0; i < 200; i++) {
        await storage.write((i % 8) * 512, sector(i % 251));
        const back = await storage.read((i % 8) * 512, 512);
        expect(back[0]).toBe(i % 251);
        expect(back[511]).toBe(i % 251);
      }
      // A write and its read queued together: both complete, in order.
      const { written, read } = storage.writeThenRead(4096, sector(7), 4096, 512);
      await written;
      expect((await read!).consume((bytes) => bytes[100])).toBe(7);
      expect(storage.counts).toMatchObject({ reads: 201, writes: 201 });
      if (spinning) {
        expect(storage.completions.seenSpinning).toBeGreaterThan(0);
        // The read queued behind its write is always there when the worker polls after the write.
        expect(storage.completions.takenPolling).toBeGreaterThan(0);
      } else {
        expect(storage.completions).toEqual({ seenSpinning: 0, spinsMissed: 0, takenPolling: 0 });
      }
      expect(storage.stats).toEqual({ unfinished: 0, overdue: 0, buffersInUse: 0 });
      await storage.close();
    }
  });

  it('has the worker poll for the next request only after an I/O the main thread was spinning for', async () => {
    // The main thread never spins: on busy CPUs its spins back off the same way, and a worker that
    // polled anyway would hold a CPU the main thread needs.
    const storage = await DirectStorage.open(join(dir.path, 'no-poll.img'), { writable: true, create: true, ioTimeoutMs: 10_000, completionSpinUs: 0, requestPollUs: SPIN_US_LIMIT });
    for (let i = 0; i < 100; i++) {
      const { written, read } = storage.writeThenRead(0, sector(i), 0, 512);
      await written;
      expect((await read!).consume((bytes) => bytes[0])).toBe(i);
    }
    expect(storage.completions).toEqual({ seenSpinning: 0, spinsMissed: 0, takenPolling: 0 });
    await storage.close();
  });

  it('fails an I/O seen finished only past its deadline, before its timer ran', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'late.img'), { writable: true, create: true, ioTimeoutMs: 20, completionSpinUs: SPIN_US_LIMIT });
    await storage.write(0, sector(5));
    // The spin runs once this synchronous code ends; keep the thread busy past the deadline meanwhile,
    // so the read is done (the worker finished it) and overdue (its timer has not run yet) at once.
    const read = storage.read(0, 512).then(
      () => 'resolved',
      (e: unknown) => (e as StorageError).code,
    );
    busyFor(60);
    expect(await read).toBe('STORAGE_IO_TIMEOUT');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the worker's message, if it comes last
    expect(storage.stats).toEqual({ unfinished: 0, overdue: 0, buffersInUse: 0 });
    await storage.close();
  });

  it('reports a failed I/O with its error while spinning, and goes on', async () => {
    const path = join(dir.path, 'readonly.img');
    const writer = await DirectStorage.open(path, { writable: true, create: true, ioTimeoutMs: 10_000 });
    await writer.write(0, sector(3));
    await writer.close();
    const storage = await DirectStorage.open(path, { writable: false, ioTimeoutMs: 10_000, completionSpinUs: SPIN_US_LIMIT });
    const error = await storage.write(0, sector(4)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('STORAGE_IO_ERROR');
    expect((error as StorageError).message).toMatch(/EBADF/);
    expect((await storage.read(0, 512))[0]).toBe(3);
    await storage.close();
  });

  it('never holds the event loop past its per-turn window, however many I/Os complete in place in a row', async () => {
    const storage = await DirectStorage.open(join(dir.path, 'turn.img'), { writable: true, create: true, ioTimeoutMs: 10_000, completionSpinUs: SPIN_US_LIMIT });
    await storage.write(0, sector(1));
    // Each read's completion, seen spinning, resolves the next await without a return to the event
    // loop; the work done after each read counts against the window as much as the spinning does.
    const turns = await readsPerTurn(300, async () => {
      await storage.read(0, 512);
      busyFor(0.5);
    });
    expect(storage.completions.seenSpinning).toBeGreaterThan(0);
    expect(turns.readsDoneWhenTimerRan).toBeLessThan(75);
    // Spins start only in the first 1 ms of a turn and each read is followed by 0.5 ms of work: at
    // most three reads are seen spinning in a turn, plus the one whose message began it.
    expect(turns.readsInTurnMax).toBeLessThanOrEqual(4);
    await storage.close();
  });

  it('hands on completions that arrive late in a long turn at its end, so a chain of messages cannot hold the loop', async () => {
    // No spinning: the next read is in flight while the caller works, so its message is queued when
    // the handler returns, and Node would deliver it (and the next, up to 1000) in the same callback.
    const storage = await DirectStorage.open(join(dir.path, 'drain.img'), { writable: true, create: true, ioTimeoutMs: 10_000, completionSpinUs: 0 });
    await storage.write(0, sector(1));
    let next = storage.read(0, 512);
    const turns = await readsPerTurn(300, async () => {
      await next;
      next = storage.read(0, 512);
      busyFor(0.5);
    });
    await next;
    expect(turns.readsDoneWhenTimerRan).toBeLessThan(75);
    expect(turns.readsInTurnMax).toBeLessThanOrEqual(4);
    await storage.close();
  });

  it('spins less and less while its spins miss (slow storage, busy CPUs)', async () => {
    // A 1 µs spin never sees an I/O finish (the worker takes longer than that to even start it):
    // every spin misses, as every spin on storage slower than the spin limit does.
    // The worker sleeps between requests (no polling), so it cannot finish one within the spin.
    const storage = await DirectStorage.open(join(dir.path, 'miss.img'), { writable: true, create: true, ioTimeoutMs: 10_000, completionSpinUs: 1, requestPollUs: 0 });
    const reads = 40;
    for (let i = 0; i < reads; i++) await storage.read(0, 512);
    // Backing off doubles the skips after each miss: spins at reads 1, 3, 6, 11, 20, 37 when all miss.
    expect(storage.completions.spinsMissed).toBeGreaterThanOrEqual(3);
    expect(storage.completions.spinsMissed).toBeLessThanOrEqual(12);
    await storage.close();
  });
});

describe('spin backoff', () => {
  it('skips 1, 2, 4 ... chances after consecutive misses, up to its limit, and none after a paid spin', () => {
    const backoff = new SpinBackoff(8);
    const pattern: boolean[] = [];
    for (let chance = 0; chance < 30; chance++) {
      const spin = backoff.shouldSpin();
      pattern.push(spin);
      if (spin) backoff.missed();
    }
    const spinsAt = pattern.flatMap((spin, i) => (spin ? [i] : []));
    expect(spinsAt).toEqual([0, 2, 5, 10, 19, 28]);
    backoff.paid();
    // The skips already counted down run out; then every chance spins again.
    while (!backoff.shouldSpin());
    expect([backoff.shouldSpin(), backoff.shouldSpin()]).toEqual([true, true]);
  });

  it('refuses a limit that is not a positive whole number', () => {
    expect(() => new SpinBackoff(0)).toThrow(RangeError);
    expect(() => new SpinBackoff(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

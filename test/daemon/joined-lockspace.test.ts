import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JoinedLockspace, LATENCY_HISTORY_ENTRIES, type LockspaceEvents } from '../../dist/helper/daemon/joined-lockspace.js';
import { memoryLogger } from '../../dist/helper/daemon/log.js';
import { StoragePool } from '../../dist/helper/daemon/storage-pool.js';
import { deriveFenceTiming } from '../../dist/helper/engine/timing.js';
import { vmlease } from '../support/cli.js';
import { ManualClock } from '../support/manual-clock.js';
import { workDir } from '../support/tmp.js';

/**
 * A lockspace joined on a real file (direct I/O) with the manual clock: the
 * time the helper fences from (lastRenewedAtMs) must be the engine's T, the
 * time read before submitting the write that succeeded, or every deadline
 * derived from it (supervisor validUntil, SIGTERM, SIGKILL, watchdog pets)
 * lands after fail = T + 8N.
 */
describe('JoinedLockspace after join', () => {
  const N = 100;
  let dir: ReturnType<typeof workDir>;
  let pool: StoragePool;
  beforeEach(() => {
    dir = workDir('joined-lockspace');
    pool = new StoragePool(N);
  });
  afterEach(async () => {
    await pool.closeAll();
    dir.remove();
  });

  it('fences from the join write: lastRenewedAtMs + 8N is the engine\'s validUntil, and the supervisor deadline is before it', async () => {
    const path = join(dir.path, 'cluster.ls');
    const init = vmlease(['init-lockspace', `cluster:${path}:0`, '--hosts', '4', '--io-timeout-ms', String(N), '--create']);
    expect(init.status).toBe(0);

    const clock = new ManualClock(50_000);
    const identity = { hostId: 2, incarnation: { hostName: 'host-a', bootId: '0123456789abcdef0123456789abcdef', nonce: 'fedcba9876543210' }, ioTimeoutMs: N, watchdogFireTimeoutMs: 600, takeoverWithoutWatchdog: false };
    const ls = await JoinedLockspace.open({ name: 'cluster', path, offset: 0 }, identity, pool, clock, memoryLogger());
    expect(ls.timing.failMs).toBe(8 * N);
    const events: LockspaceEvents = { renewed: () => undefined, lost: () => undefined };

    let joined = false;
    let generation: number | undefined;
    let snapshot: { lastRenewedAtMs: number | undefined; validUntilMs: number | undefined; nowMs: number } | undefined;
    void ls.join(identity, events).then((g) => {
      // Right when the join resolves, before the first renewal can complete (its I/O is a worker round trip away).
      joined = true;
      generation = g;
      snapshot = { lastRenewedAtMs: ls.lastRenewedAtMs, validUntilMs: ls.validUntilMs, nowMs: clock.nowMs() };
    });
    // Time moves only between I/Os: 1 ms of clock per 1 ms of real time, until joined.
    for (let i = 0; i < 5_000 && !joined; i++) {
      clock.advance(1);
      await sleep(1);
    }
    expect(joined).toBe(true);
    expect(generation).toBe(1);
    const { lastRenewedAtMs, validUntilMs, nowMs } = snapshot!;
    // The join waited at least 2N + 1 after its write: T is well before the join completed.
    expect(nowMs - 50_000).toBeGreaterThan(2 * N);
    expect(validUntilMs! - 8 * N).toBeLessThan(nowMs - 2 * N);
    expect(lastRenewedAtMs).toBe(validUntilMs! - ls.timing.failMs);
    expect(lastRenewedAtMs! + deriveFenceTiming(ls.timing).supervisorValidForMs).toBeLessThan(validUntilMs!);
    expect(ls.latencies.recent().length).toBeLessThanOrEqual(LATENCY_HISTORY_ENTRIES);
    ls.lockspace.stop();
  });
});

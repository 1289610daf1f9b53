import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initialAreaBytes, specBytes, type LockspaceSpec, type ResourceSpec } from '../../dist/helper/format/index.js';
import { Lockspace, monotonicClock, Resource } from '../../dist/helper/leases/index.js';
import { DirectStorage } from '../../dist/helper/storage/index.js';
import { workDir } from '../support/tmp.js';

/**
 * The engines on real storage: two hosts (two helpers' worth of state in one
 * process, each with its own DirectStorage) share one O_DIRECT lease file.
 */

const dir = workDir('shell');
afterAll(() => dir.remove());

const IO_TIMEOUT_MS = 50;
const RESOURCE_OFFSET = 1 << 20;
const lockspace: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'shell', hostsMax: 16, sectorSize: 512, ioTimeoutMs: IO_TIMEOUT_MS };
const resource: ResourceSpec = { kind: 'resource', lockspaceName: 'shell', resourceName: 'vm1', hostsMax: 16, sectorSize: 512 };

/** A new lease file holding the lockspace area and, at RESOURCE_OFFSET, the resource's. */
async function initialise(path: string): Promise<void> {
  const setup = await DirectStorage.open(path, { writable: true, create: true, ioTimeoutMs: 1000 });
  await setup.write(0, initialAreaBytes(lockspace));
  await setup.write(RESOURCE_OFFSET, initialAreaBytes(resource));
  await setup.close();
}

async function host(path: string, hostId: number) {
  const storage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 1000 });
  const ls = new Lockspace(
    {
      lockspace,
      hostId,
      incarnation: { hostName: `host-${hostId}`, bootId: '0'.repeat(31) + String(hostId), nonce: '0'.repeat(15) + String(hostId) },
      watchdogFireTimeoutMs: 0,
      takeoverWithoutWatchdog: false,
      ownerFeatures: 0,
    },
    storage,
    0,
    monotonicClock,
  );
  const res = new Resource({ resource, hostId, retryDelayMs: IO_TIMEOUT_MS, ballotAttemptsMax: 3 }, storage, RESOURCE_OFFSET, ls, monotonicClock);
  return { storage, ls, res };
}

describe('lockspace and resource shells on an O_DIRECT file', () => {
  it('join, acquire, busy for the other host, release, then the other host acquires', async () => {
    const path = join(dir.path, 'leases.img');
    await initialise(path);

    const a = await host(path, 1);
    const b = await host(path, 2);
    const started = monotonicClock.nowMs();
    expect(await Promise.all([a.ls.join(), b.ls.join()])).toEqual([1, 1]);
    // Join = read, write, settle 2N, verify read.
    expect(monotonicClock.nowMs() - started).toBeGreaterThanOrEqual(2 * IO_TIMEOUT_MS);

    const before = { ...a.storage.counts };
    expect(await a.res.acquire('exclusive')).toEqual({ type: 'acquired', lver: 1, mode: 'exclusive' });
    const acquireIo = { reads: a.storage.counts.reads - before.reads, writes: a.storage.counts.writes - before.writes };
    // Renewals may interleave; the acquire itself is 3 reads + 3 writes, so allow only renewal I/O on top.
    expect(acquireIo.writes).toBeGreaterThanOrEqual(3);
    expect(acquireIo.reads).toBeGreaterThanOrEqual(3);
    // Both ballot reads (phase 1 and 2) were queued behind their writes and used.
    expect(a.res.prefetchCounts).toEqual({ used: 2, dropped: 0 });

    const busy = await b.res.acquire('exclusive');
    expect(busy.type).toBe('busy');
    if (busy.type === 'busy') {
      expect(busy.holder.hostId).toBe(1);
      expect(busy.holder.generation).toBe(1);
      expect(busy.holder.status.record?.owner.hostName).toBe('host-1');
    }
    expect(await a.res.release()).toEqual({ type: 'released', lver: 1, note: undefined });
    expect(await b.res.acquire('exclusive')).toEqual({ type: 'acquired', lver: 2, mode: 'exclusive' });
    expect(await b.res.release()).toMatchObject({ type: 'released', lver: 2 });
    expect(await a.ls.leave()).toBe(true);
    expect(await b.ls.leave()).toBe(true);
    const check = await DirectStorage.open(path, { writable: false, ioTimeoutMs: 1000 });
    const area = await check.read(0, specBytes(lockspace));
    expect(area.byteLength).toBe(specBytes(lockspace));
    for (const s of [a, b, { storage: check }]) await s.storage.close();
  });

  it('acquires with a plain ballot read when the storage has no room to queue it behind the write', async () => {
    const path = join(dir.path, 'narrow.img');
    await initialise(path);
    const a = await host(path, 1);
    expect(await a.ls.join()).toBe(1);
    // One I/O at a time: the read behind each ballot write cannot be queued, and is read after it.
    const narrow = await DirectStorage.open(path, { writable: true, ioTimeoutMs: 1000, queueDepthMax: 1 });
    const res = new Resource({ resource, hostId: 1, retryDelayMs: IO_TIMEOUT_MS, ballotAttemptsMax: 3 }, narrow, RESOURCE_OFFSET, a.ls, monotonicClock);
    expect(await res.acquire('exclusive')).toEqual({ type: 'acquired', lver: 1, mode: 'exclusive' });
    expect(res.prefetchCounts).toEqual({ used: 0, dropped: 0 });
    expect(narrow.counts).toMatchObject({ reads: 3, writes: 3 });
    expect(await res.release()).toMatchObject({ type: 'released', lver: 1 });
    expect(await a.ls.leave()).toBe(true);
    await narrow.close();
    await a.storage.close();
  });
});

/**
 * leaseFileExists, as policy check and the libvirt prepare hook use it: only
 * "no such file" is "not created yet"; a failing or hung lstat is a storage
 * error naming the path, by its deadline.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { leaseFileExists, stepsOf, StuckCalls, type Step } from '../../dist/helper/disks/index.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('disks-presence');
afterAll(() => dir.remove());

async function failure(promise: Promise<unknown>): Promise<{ name: string; code: string; kind: string; subject: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: 'DiskError' });
  return error as { name: string; code: string; kind: string; subject: string; message: string };
}

describe('leaseFileExists', () => {
  it('is true for an existing name and false for one that does not exist', async () => {
    const step = stepsOf(new StuckCalls(4), 5000);
    const present = join(dir.path, 'present.lease');
    writeFileSync(present, 'x');
    expect(await leaseFileExists(present, step)).toBe(true);
    expect(await leaseFileExists(join(dir.path, 'absent.lease'), step)).toBe(false);
    mkdirSync(join(dir.path, 'sub'));
    expect(await leaseFileExists(join(dir.path, 'sub', 'absent.lease'), step)).toBe(false);
  });

  it('reports any other failure (EACCES, EIO, ENOTDIR) as a storage error naming the path, never as absent', async () => {
    for (const code of ['EACCES', 'EIO']) {
      const failing: Step = () => Promise.reject(Object.assign(new Error(`${code}: it failed, lstat '/leases/disk.lease'`), { code }));
      expect(await failure(leaseFileExists('/leases/disk.lease', failing))).toMatchObject({
        code: 'DISK_IO',
        kind: 'storage',
        subject: '/leases/disk.lease',
        message: `/leases/disk.lease: lstat of lease file failed: ${code}: it failed, lstat '/leases/disk.lease'`,
      });
    }
    const file = join(dir.path, 'plain');
    writeFileSync(file, 'x');
    const error = await failure(leaseFileExists(join(file, 'disk.lease'), stepsOf(new StuckCalls(4), 5000)));
    expect(error).toMatchObject({ code: 'DISK_IO', kind: 'storage', subject: join(file, 'disk.lease') });
    expect(error.message).toContain('ENOTDIR');
  });

  it('gives up on an lstat that does not answer by the deadline, and starts none while too many hang', async () => {
    const stuckCalls = new StuckCalls(1);
    let answer: () => void = () => undefined;
    // A hung NFS server: the call never answers until we say so.
    const hung: Step = (subject, what) => stuckCalls.run(subject, `${what} ${subject}`, 20, () => new Promise<void>((resolve) => (answer = resolve)) as never);
    const started = Date.now();
    expect(await failure(leaseFileExists('/leases/hung.lease', hung))).toMatchObject({
      code: 'DISK_STEP_TIMEOUT',
      kind: 'storage',
      subject: '/leases/hung.lease',
      message: '/leases/hung.lease: lstat /leases/hung.lease did not answer within 20 ms (it may still complete)',
    });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(stuckCalls.outstanding).toBe(1);
    expect(await failure(leaseFileExists(join(dir.path, 'absent.lease'), stepsOf(stuckCalls, 5000)))).toMatchObject({ code: 'DISK_CALLS_STUCK', kind: 'storage' });
    answer();
    await new Promise((resolve) => setImmediate(resolve));
    expect(stuckCalls.outstanding).toBe(0);
  });
});

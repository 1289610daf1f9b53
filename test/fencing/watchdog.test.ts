import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readdirSync, readlinkSync, readSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWatchdog, WatchdogError, WatchdogPetter, type PetOutcome, type WatchdogFs } from '../../dist/helper/fencing/index.js';
import type { LockspaceRenewal } from '../../dist/helper/fencing/pet-policy.js';
import { ManualClock } from '../support/manual-clock.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('watchdog');
afterAll(() => dir.remove());
let serial = 0;
const fresh = (name: string): string => join(dir.path, `${name}-${++serial}`);

function mkfifo(path: string): void {
  execFileSync('mkfifo', ['-m', '0600', path]);
}

/** A FIFO and a non-blocking reader standing in for the emulator. */
function fifoWithReader(): { path: string; reader: number; read(): string | 'EAGAIN' } {
  const path = fresh('fifo');
  mkfifo(path);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return {
    path,
    reader,
    read() {
      const buffer = Buffer.alloc(64);
      try {
        return buffer.subarray(0, readSync(reader, buffer)).toString('latin1');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return 'EAGAIN';
        throw error;
      }
    },
  };
}

/** A character device node with /dev/null's numbers (1:3) and a fake sysfs naming it as watchdogN. */
function fakeDevice(opts: { major?: number; minor?: number; name?: string; timeoutSeconds?: string; nowayout?: string }) {
  const root = fresh('sys');
  const name = opts.name ?? 'watchdog3';
  const major = opts.major ?? 1;
  const minor = opts.minor ?? 3;
  mkdirSync(join(root, 'class', 'watchdog', name), { recursive: true });
  mkdirSync(join(root, 'class', 'watchdog', 'watchdog9'), { recursive: true });
  writeFileSync(join(root, 'class', 'watchdog', 'watchdog9', 'dev'), '250:9\n');
  writeFileSync(join(root, 'class', 'watchdog', name, 'dev'), `${major}:${minor}\n`);
  if (opts.timeoutSeconds !== undefined) writeFileSync(join(root, 'class', 'watchdog', name, 'timeout'), `${opts.timeoutSeconds}\n`);
  if (opts.nowayout !== undefined) writeFileSync(join(root, 'class', 'watchdog', name, 'nowayout'), `${opts.nowayout}\n`);
  const device = fresh('dev-watchdog');
  execFileSync('mknod', [device, 'c', String(major), String(minor)]);
  return { root, device };
}

function openFdsOf(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

function watchdogError(run: () => unknown): WatchdogError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WatchdogError);
    return error as WatchdogError;
  }
  throw new Error('expected a WatchdogError');
}

/** node:fs, counting opens, with open() replaceable. */
function countingFs(openSync: WatchdogFs['openSync'] = (path, flags) => fs.openSync(path, flags)): WatchdogFs & { opens: number } {
  const wrapped = {
    opens: 0,
    statSync: (path: string, options: { bigint: true }) => fs.statSync(path, options),
    fstatSync: (fd: number, options: { bigint: true }) => fs.fstatSync(fd, options),
    openSync: (path: string, flags: number) => {
      wrapped.opens += 1;
      return openSync(path, flags);
    },
    writeSync: (fd: number, buffer: Uint8Array) => fs.writeSync(fd, buffer),
    closeSync: (fd: number) => fs.closeSync(fd),
    readFileSync: (path: string, encoding: 'utf8') => fs.readFileSync(path, encoding),
    readdirSync: (path: string) => fs.readdirSync(path),
  };
  return wrapped;
}

describe('watchdog on a FIFO (the emulator)', () => {
  it('says it is the emulator, pets with one byte before the deadline, and writes nothing at or after it', () => {
    const clock = new ManualClock(1_000);
    const fifo = fifoWithReader();
    const watchdog = openWatchdog({ device: fifo.path, fireTimeoutMs: 500 }, { clock });
    expect(watchdog.kind).toBe('emulator');
    expect(watchdog.sysfsName).toBeUndefined();
    expect(watchdog.pet(1_001)).toBe(true);
    expect(fifo.read()).toBe('.');
    expect(watchdog.pet(1_000)).toBe(false);
    clock.advance(5);
    expect(watchdog.pet(1_004)).toBe(false);
    expect(fifo.read()).toBe('EAGAIN');
    expect(watchdog.pet(Number.POSITIVE_INFINITY)).toBe(true);
    expect(fifo.read()).toBe('.');
    watchdog.closeWithoutDisarm();
    closeSync(fifo.reader);
  });

  it('re-reads the clock inside pet(), not before it', () => {
    let now = 100;
    const clock = { nowMs: () => now, setTimer: () => undefined, clearTimer: () => undefined };
    const fifo = fifoWithReader();
    const watchdog = openWatchdog({ device: fifo.path, fireTimeoutMs: 500 }, { clock });
    now = 200; // the event loop stalled after the decision was taken with a deadline of 150
    expect(watchdog.pet(150)).toBe(false);
    expect(fifo.read()).toBe('EAGAIN');
    watchdog.closeWithoutDisarm();
    closeSync(fifo.reader);
  });

  it('closeClean writes V then closes; closeWithoutDisarm closes without V', () => {
    const clock = new ManualClock();
    const clean = fifoWithReader();
    const a = openWatchdog({ device: clean.path, fireTimeoutMs: 500 }, { clock });
    a.closeClean();
    expect(a.closed).toBe(true);
    expect(clean.read()).toBe('V');
    expect(clean.read()).toBe(''); // EOF: no writer left
    expect(() => a.pet(Number.POSITIVE_INFINITY)).toThrow(/closed/);

    const fenced = fifoWithReader();
    const b = openWatchdog({ device: fenced.path, fireTimeoutMs: 500 }, { clock });
    expect(b.pet(1)).toBe(true);
    b.closeWithoutDisarm();
    expect(fenced.read()).toBe('.');
    expect(fenced.read()).toBe('');
    expect(openFdsOf(fenced.path)).toBe(1); // only the reader
    closeSync(clean.reader);
    closeSync(fenced.reader);
  });

  it('reports a failed write (the emulator went away) as not petted, with the errno code', () => {
    const fifo = fifoWithReader();
    const watchdog = openWatchdog({ device: fifo.path, fireTimeoutMs: 500 }, { clock: new ManualClock() });
    closeSync(fifo.reader);
    expect(watchdog.pet(Number.POSITIVE_INFINITY)).toBe(false);
    expect(watchdog.lastWriteError).toBe('EPIPE');
    watchdog.closeWithoutDisarm();
  });

  it('refuses a FIFO nobody reads: WATCHDOG_NO_READER, without blocking', () => {
    const path = fresh('lonely');
    mkfifo(path);
    expect(watchdogError(() => openWatchdog({ device: path, fireTimeoutMs: 500 }, { clock: new ManualClock() })).code).toBe('WATCHDOG_NO_READER');
  });
});

describe('watchdog on a character device', () => {
  it('reads the timeout of its sysfs entry, opens write-only and pets', () => {
    const { root, device } = fakeDevice({ timeoutSeconds: '60', nowayout: '0' });
    const watchdog = openWatchdog({ device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: root });
    expect(watchdog).toMatchObject({ kind: 'device', sysfsName: 'watchdog3', nowayout: false, fireTimeoutMs: 60_000 });
    const fd = readdirSync('/proc/self/fd').find((n) => {
      try {
        return readlinkSync(`/proc/self/fd/${n}`) === device;
      } catch {
        return false;
      }
    });
    const flags = Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    expect(flags & 0o3).toBe(constants.O_WRONLY);
    expect(flags & constants.O_NONBLOCK).toBe(0);
    expect(watchdog.pet(1)).toBe(true);
    watchdog.closeClean();
    expect(openFdsOf(device)).toBe(0);
  });

  it('refuses a timeout mismatch without ever opening (opening would arm it)', () => {
    const { root, device } = fakeDevice({ timeoutSeconds: '30', nowayout: '1' });
    const counting = countingFs();
    const error = watchdogError(() => openWatchdog({ device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: root, fs: counting }));
    expect(error.code).toBe('WATCHDOG_TIMEOUT_MISMATCH');
    expect(error.message).toMatch(/watchdog3 fires after 30000 ms.*60000 ms/);
    expect(counting.opens).toBe(0);
    // A fire timeout that is not a whole number of seconds can never match a device.
    expect(watchdogError(() => openWatchdog({ device, fireTimeoutMs: 30_500 }, { clock: new ManualClock(), sysfsRoot: root })).code).toBe('WATCHDOG_TIMEOUT_MISMATCH');
  });

  it('maps the legacy /dev/watchdog (misc 10:130) to watchdog0', () => {
    const { root, device } = fakeDevice({ major: 10, minor: 130, name: 'watchdog0', timeoutSeconds: '15' });
    const counting = countingFs();
    const error = watchdogError(() => openWatchdog({ device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: root, fs: counting }));
    expect(error.code).toBe('WATCHDOG_TIMEOUT_MISMATCH');
    expect(error.message).toMatch(/watchdog0 fires after 15000 ms/);
    expect(counting.opens).toBe(0);
  });

  it('refuses a device without a sysfs entry or timeout: WATCHDOG_SYSFS', () => {
    const noTimeout = fakeDevice({});
    expect(watchdogError(() => openWatchdog({ device: noTimeout.device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: noTimeout.root })).code).toBe('WATCHDOG_SYSFS');
    const garbage = fakeDevice({ timeoutSeconds: 'sixty' });
    expect(watchdogError(() => openWatchdog({ device: garbage.device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: garbage.root })).message).toMatch(/not a number/);
    const other = fakeDevice({ timeoutSeconds: '60' });
    const error = watchdogError(() => openWatchdog({ device: other.device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: fresh('empty-sys') }));
    expect(error.code).toBe('WATCHDOG_SYSFS');
  });

  it('maps EBUSY to WATCHDOG_BUSY, a missing path to WATCHDOG_MISSING, a regular file to WATCHDOG_NOT_DEVICE', () => {
    const { root, device } = fakeDevice({ timeoutSeconds: '60' });
    const busy = countingFs(() => {
      throw Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' });
    });
    expect(watchdogError(() => openWatchdog({ device, fireTimeoutMs: 60_000 }, { clock: new ManualClock(), sysfsRoot: root, fs: busy })).code).toBe('WATCHDOG_BUSY');
    expect(watchdogError(() => openWatchdog({ device: fresh('absent'), fireTimeoutMs: 60_000 }, { clock: new ManualClock() })).code).toBe('WATCHDOG_MISSING');
    const file = fresh('file');
    writeFileSync(file, '');
    expect(watchdogError(() => openWatchdog({ device: file, fireTimeoutMs: 60_000 }, { clock: new ManualClock() })).code).toBe('WATCHDOG_NOT_DEVICE');
  });
});

describe('watchdog petter', () => {
  function setup(lockspaces: () => readonly LockspaceRenewal[], petIntervalMs = 100) {
    const clock = new ManualClock(10_000);
    const pets: { atMs: number; deadlineMs: number }[] = [];
    const outcomes: PetOutcome[] = [];
    const watchdog = {
      lastWriteError: undefined,
      pet(deadlineMs: number) {
        if (!(clock.nowMs() < deadlineMs)) return false;
        pets.push({ atMs: clock.nowMs(), deadlineMs });
        return true;
      },
    };
    const petter = new WatchdogPetter({ watchdog, clock, petIntervalMs, lockspaces, onOutcome: (o) => outcomes.push(o) });
    return { clock, pets, outcomes, petter };
  }

  it('pets at start and then every interval while nothing holds leases', () => {
    const { clock, pets, petter } = setup(() => []);
    petter.start();
    clock.advance(1_000);
    expect(pets.map((p) => p.atMs)).toEqual([10_000, 10_100, 10_200, 10_300, 10_400, 10_500, 10_600, 10_700, 10_800, 10_900, 11_000]);
    expect(pets.every((p) => p.deadlineMs === Number.POSITIVE_INFINITY)).toBe(true);
    petter.stop();
    clock.advance(1_000);
    expect(pets).toHaveLength(11);
    expect(clock.pendingTimers).toBe(0);
  });

  it('stops petting when a lockspace with holders stops renewing; the last pet is before T + fail - interval', () => {
    const t = 10_000;
    const state = { lastRenewalMs: t, liveHolders: 1 };
    const { clock, pets, outcomes, petter } = setup(() => [{ name: 'cluster', failMs: 800, ...state }]);
    petter.start();
    clock.advance(2_000);
    const last = pets.at(-1)!;
    expect(last.atMs).toBeLessThan(t + 800 - 100);
    expect(last.atMs).toBeGreaterThanOrEqual(t + 800 - 200);
    expect(pets.every((p) => p.deadlineMs === t + 700)).toBe(true);
    expect(outcomes.at(-1)).toEqual({ kind: 'refused', atMs: 12_000, lockspace: 'cluster', petAllowedUntilMs: 10_700 });
    // Its holders fenced (none left): pets resume at the next tick.
    state.liveHolders = 0;
    clock.advance(100);
    expect(pets.at(-1)).toEqual({ atMs: 12_100, deadlineMs: Number.POSITIVE_INFINITY });
    petter.stop();
  });

  it('keeps petting while renewals succeed, and pets only on its own ticks, not when a renewal completes', () => {
    const state = { lastRenewalMs: 10_000 };
    const { clock, pets, petter } = setup(() => [{ name: 'cluster', failMs: 800, liveHolders: 3, ...state }]);
    petter.start();
    for (let i = 0; i < 20; i += 1) {
      clock.advance(150);
      const count = pets.length;
      state.lastRenewalMs = clock.nowMs(); // a renewal completes: only state changes
      expect(pets).toHaveLength(count);
    }
    expect(pets.map((p) => p.atMs)).toEqual(Array.from({ length: 31 }, (_, i) => 10_000 + 100 * i));
    petter.stop();
  });

  it('counts pets the deadline or the device refused', () => {
    const clock = new ManualClock(0);
    const outcomes: PetOutcome[] = [];
    const petter = new WatchdogPetter({
      watchdog: { lastWriteError: 'EAGAIN', pet: () => false },
      clock,
      petIntervalMs: 50,
      lockspaces: () => [],
      onOutcome: (o) => outcomes.push(o),
    });
    petter.start();
    clock.advance(100);
    petter.stop();
    expect(petter.stats).toEqual({ petted: 0, refused: 0, notPetted: 3 });
    expect(outcomes[0]).toEqual({ kind: 'not-petted', atMs: 0, writeError: 'EAGAIN' });
  });
});

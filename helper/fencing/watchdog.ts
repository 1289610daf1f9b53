import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../leases/clock.js';
import { WatchdogError, WatchdogErrorCode } from './errors.js';
import { decidePet, type LockspaceRenewal, type PetDecision } from './pet-policy.js';

/**
 * The watchdog device (SPEC section 3, fencing layer 4): Linux /dev/watchdog,
 * or a FIFO read by the test emulator (watchdog-emulator.ts).
 *
 * The fd is opened once at start. Opening a real watchdog arms it, so every
 * check that can refuse (the timeout in sysfs) happens before the open. Each
 * pet is one `writeSync` of one byte, preceded by a re-check of its deadline:
 * a pet that comes late (the event loop stalled between the decision and the
 * write) is dropped, never written.
 */

/** The file operations the watchdog needs; node:fs unless a test passes others. */
export interface WatchdogFs {
  statSync(path: string, options: { bigint: true }): nodeFs.BigIntStats;
  fstatSync(fd: number, options: { bigint: true }): nodeFs.BigIntStats;
  openSync(path: string, flags: number): number;
  writeSync(fd: number, buffer: Uint8Array): number;
  closeSync(fd: number): void;
  readFileSync(path: string, encoding: 'utf8'): string;
  readdirSync(path: string): string[];
}

const realFs: WatchdogFs = {
  statSync: (path, options) => nodeFs.statSync(path, options),
  fstatSync: (fd, options) => nodeFs.fstatSync(fd, options),
  openSync: (path, flags) => nodeFs.openSync(path, flags),
  writeSync: (fd, buffer) => nodeFs.writeSync(fd, buffer),
  closeSync: (fd) => nodeFs.closeSync(fd),
  readFileSync: (path, encoding) => nodeFs.readFileSync(path, encoding),
  readdirSync: (path) => nodeFs.readdirSync(path),
};

export interface WatchdogConfig {
  readonly device: string;
  readonly fireTimeoutMs: number;
}

export interface WatchdogDeps {
  readonly clock: Clock;
  /** Where sysfs is mounted ('/sys'); tests point it at a directory of their own. */
  readonly sysfsRoot?: string;
  readonly fs?: WatchdogFs;
}

export interface Watchdog {
  readonly device: string;
  /** 'emulator' when the device is a FIFO (the test watchdog emulator): the helper logs it. */
  readonly kind: 'device' | 'emulator';
  readonly fireTimeoutMs: number;
  /** The sysfs name ('watchdog0') of a real device. */
  readonly sysfsName: string | undefined;
  /** A real device's nowayout flag from sysfs, when readable: with it, closeClean() does not disarm. */
  readonly nowayout: boolean | undefined;
  /** The errno code of the last failed pet write (EAGAIN: emulator not reading; EPIPE: emulator gone). */
  readonly lastWriteError: string | undefined;
  readonly closed: boolean;
  /** Writes one byte if clock.nowMs() < deadlineMs, checked just before the write. False: not petted. */
  pet(deadlineMs: number): boolean;
  /** Magic close: writes 'V', then closes, so the watchdog stops (unless nowayout). Only on a clean shutdown. */
  closeClean(): void;
  /** Closes without 'V': the watchdog keeps running and resets the host. The fencing path. */
  closeWithoutDisarm(): void;
}

/** Any byte but 'V' pets; 'V' as the last byte before close disarms. */
const PET_BYTE = Uint8Array.of(0x2e); // '.'
const MAGIC_CLOSE = Uint8Array.of(0x56); // 'V'
/** The legacy /dev/watchdog misc device is always the first registered watchdog, watchdog0. */
const MISC_MAJOR = 10n;
const WATCHDOG_MINOR = 130n;
/** Bounds reading sysfs: no host has this many watchdogs. */
const MAX_SYSFS_WATCHDOGS = 256;

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function devMajor(rdev: bigint): bigint {
  return ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
}

function devMinor(rdev: bigint): bigint {
  return (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
}

interface SysfsWatchdog {
  readonly name: string;
  readonly timeoutMs: number;
  readonly nowayout: boolean | undefined;
}

/** Finds the /sys/class/watchdog entry of a character device and reads its timeout (seconds). */
export function readSysfsWatchdog(device: string, rdev: bigint, sysfsRoot: string, fs: WatchdogFs = realFs): SysfsWatchdog {
  const classDir = join(sysfsRoot, 'class', 'watchdog');
  const major = devMajor(rdev);
  const minor = devMinor(rdev);
  let name: string | undefined;
  if (major === MISC_MAJOR && minor === WATCHDOG_MINOR) {
    name = 'watchdog0';
  } else {
    let entries: string[];
    try {
      entries = fs.readdirSync(classDir);
    } catch (error) {
      throw new WatchdogError(WatchdogErrorCode.sysfs, device, `cannot list ${classDir}: ${errnoCode(error) ?? String(error)}`);
    }
    for (const entry of entries.slice(0, MAX_SYSFS_WATCHDOGS)) {
      try {
        if (fs.readFileSync(join(classDir, entry, 'dev'), 'utf8').trim() === `${major}:${minor}`) {
          name = entry;
          break;
        }
      } catch {
        // An entry without a readable dev file is not ours.
      }
    }
  }
  if (name === undefined) throw new WatchdogError(WatchdogErrorCode.sysfs, device, `no entry in ${classDir} for character device ${major}:${minor}`);
  const timeoutPath = join(classDir, name, 'timeout');
  let text: string;
  try {
    text = fs.readFileSync(timeoutPath, 'utf8').trim();
  } catch (error) {
    throw new WatchdogError(WatchdogErrorCode.sysfs, device, `cannot read ${timeoutPath}: ${errnoCode(error) ?? String(error)}`);
  }
  if (!/^\d{1,6}$/.test(text)) throw new WatchdogError(WatchdogErrorCode.sysfs, device, `${timeoutPath} holds '${text.slice(0, 40)}', not a number of seconds`);
  let nowayout: boolean | undefined;
  try {
    const value = fs.readFileSync(join(classDir, name, 'nowayout'), 'utf8').trim();
    nowayout = value === '1' ? true : value === '0' ? false : undefined;
  } catch {
    nowayout = undefined;
  }
  return { name, timeoutMs: Number(text) * 1000, nowayout };
}

/**
 * Opens the watchdog at start. Throws WatchdogError (WATCHDOG_MISSING,
 * WATCHDOG_BUSY, WATCHDOG_TIMEOUT_MISMATCH, ...) when it cannot be used; a
 * real device whose sysfs timeout differs from fireTimeoutMs is never opened
 * (opening would arm it).
 */
export function openWatchdog(config: WatchdogConfig, deps: WatchdogDeps): Watchdog {
  assert.ok(Number.isInteger(config.fireTimeoutMs) && config.fireTimeoutMs > 0, `watchdog fire timeout ${config.fireTimeoutMs} must be a positive integer of ms`);
  const fs = deps.fs ?? realFs;
  const { device } = config;
  let before: nodeFs.BigIntStats;
  try {
    before = fs.statSync(device, { bigint: true });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') throw new WatchdogError(WatchdogErrorCode.missing, device, 'no such device');
    throw new WatchdogError(WatchdogErrorCode.open, device, `cannot stat: ${code ?? String(error)}`);
  }
  const kind = before.isCharacterDevice() ? 'device' : before.isFIFO() ? 'emulator' : undefined;
  if (kind === undefined) throw new WatchdogError(WatchdogErrorCode.notDevice, device, 'neither a character device nor a FIFO (the watchdog emulator)');
  const sysfs = kind === 'device' ? readSysfsWatchdog(device, before.rdev, deps.sysfsRoot ?? '/sys', fs) : undefined;
  if (sysfs !== undefined && sysfs.timeoutMs !== config.fireTimeoutMs) {
    throw new WatchdogError(
      WatchdogErrorCode.timeoutMismatch,
      device,
      `${sysfs.name} fires after ${sysfs.timeoutMs} ms (sysfs timeout) but the configured fire timeout is ${config.fireTimeoutMs} ms`,
    );
  }

  // A FIFO opened for writing without O_NONBLOCK blocks until a reader comes; with it, it fails
  // at once (ENXIO) when the emulator is not running, and a pet never blocks on a full pipe.
  // (libuv adds O_CLOEXEC to every open: the fd does not leak into children.)
  const flags = nodeFs.constants.O_WRONLY | (kind === 'emulator' ? nodeFs.constants.O_NONBLOCK : 0);
  let fd: number;
  try {
    fd = fs.openSync(device, flags);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') throw new WatchdogError(WatchdogErrorCode.missing, device, 'no such device');
    if (code === 'EBUSY') throw new WatchdogError(WatchdogErrorCode.busy, device, 'already open in another process (wdmd? another helper?)');
    if (code === 'ENXIO' && kind === 'emulator') throw new WatchdogError(WatchdogErrorCode.noReader, device, 'FIFO without a reader: the watchdog emulator is not running');
    throw new WatchdogError(WatchdogErrorCode.open, device, `cannot open for writing: ${code ?? String(error)}`);
  }

  let closed = false;
  let lastWriteError: string | undefined;
  const closeFd = (): void => {
    closed = true;
    try {
      fs.closeSync(fd);
    } catch {
      // Closing a character device or pipe fails only for a bad fd: nothing left to do.
    }
  };

  const after = fs.fstatSync(fd, { bigint: true });
  if (after.dev !== before.dev || after.ino !== before.ino || after.rdev !== before.rdev) {
    // Replaced between the check and the open: disarm what we opened and refuse.
    try {
      fs.writeSync(fd, MAGIC_CLOSE);
    } catch {
      // Best effort.
    }
    closeFd();
    throw new WatchdogError(WatchdogErrorCode.changed, device, 'the file opened is not the one checked (replaced during start-up)');
  }

  return {
    device,
    kind,
    fireTimeoutMs: config.fireTimeoutMs,
    sysfsName: sysfs?.name,
    nowayout: sysfs?.nowayout,
    get lastWriteError() {
      return lastWriteError;
    },
    get closed() {
      return closed;
    },
    pet(deadlineMs: number): boolean {
      assert.ok(!closed, 'pet after the watchdog was closed');
      if (!(deps.clock.nowMs() < deadlineMs)) return false;
      try {
        const written = fs.writeSync(fd, PET_BYTE);
        if (written !== 1) {
          lastWriteError = 'SHORT_WRITE';
          return false;
        }
        lastWriteError = undefined;
        return true;
      } catch (error) {
        lastWriteError = errnoCode(error) ?? String(error);
        return false;
      }
    },
    closeClean(): void {
      assert.ok(!closed, 'watchdog closed twice');
      try {
        fs.writeSync(fd, MAGIC_CLOSE);
      } catch (error) {
        lastWriteError = errnoCode(error) ?? String(error);
      }
      closeFd();
    },
    closeWithoutDisarm(): void {
      assert.ok(!closed, 'watchdog closed twice');
      closeFd();
    },
  };
}

export type PetOutcome =
  | { readonly kind: 'petted'; readonly atMs: number; readonly petAllowedUntilMs: number }
  /** The policy forbids a pet: `lockspace` has not renewed in time. The watchdog will fire. */
  | { readonly kind: 'refused'; readonly atMs: number; readonly lockspace: string; readonly petAllowedUntilMs: number }
  /** The policy allowed it, but the deadline passed before the write or the write failed. */
  | { readonly kind: 'not-petted'; readonly atMs: number; readonly writeError: string | undefined };

export interface WatchdogPetterOptions {
  readonly watchdog: Pick<Watchdog, 'pet' | 'lastWriteError'>;
  readonly clock: Clock;
  /** Timing.watchdogPetIntervalMs. */
  readonly petIntervalMs: number;
  /** Each lockspace's renewal state, read at each tick (never pushed by an I/O completion). */
  readonly lockspaces: () => readonly LockspaceRenewal[];
  /** For logs and tests; called synchronously after each tick's decision. */
  readonly onOutcome?: (outcome: PetOutcome) => void;
}

/**
 * Pets the watchdog from its own timer every petIntervalMs under the pet
 * policy. Renewal completions only update the state the `lockspaces` callback
 * returns; they never pet, so a pet always rests on a fresh decision made on
 * the petter's tick, with the deadline re-checked just before the write.
 */
export class WatchdogPetter {
  private timer: unknown;
  private running = false;
  private counts = { petted: 0, refused: 0, notPetted: 0 };

  constructor(private readonly options: WatchdogPetterOptions) {
    assert.ok(Number.isFinite(options.petIntervalMs) && options.petIntervalMs >= 1, `pet interval ${options.petIntervalMs} must be at least 1 ms`);
  }

  get stats(): { readonly petted: number; readonly refused: number; readonly notPetted: number } {
    return { ...this.counts };
  }

  /** Ticks at once (the open armed the watchdog), then every petIntervalMs. */
  start(): void {
    assert.ok(!this.running, 'petter started twice');
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.options.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const { clock, watchdog } = this.options;
    const nowMs = clock.nowMs();
    const decision: PetDecision = decidePet({ nowMs, petIntervalMs: this.options.petIntervalMs, lockspaces: this.options.lockspaces() });
    let outcome: PetOutcome;
    if (!decision.allowed) {
      this.counts.refused += 1;
      outcome = { kind: 'refused', atMs: nowMs, lockspace: decision.limitedBy, petAllowedUntilMs: decision.petAllowedUntilMs };
    } else if (watchdog.pet(decision.petAllowedUntilMs)) {
      this.counts.petted += 1;
      outcome = { kind: 'petted', atMs: nowMs, petAllowedUntilMs: decision.petAllowedUntilMs };
    } else {
      this.counts.notPetted += 1;
      outcome = { kind: 'not-petted', atMs: nowMs, writeError: watchdog.lastWriteError };
    }
    this.timer = clock.setTimer(nowMs + this.options.petIntervalMs, () => this.tick());
    this.options.onOutcome?.(outcome);
  }
}

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, lstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../leases/clock.js';

/**
 * A watchdog for tests, where there is no /dev/watchdog (SPEC section 3): a
 * FIFO that the helper opens as its watchdog device, read by this emulator.
 * If no byte arrives for fireTimeoutMs it "resets the host": it SIGKILLs every
 * process of the simulated host (a cgroup, or a process group) and reports.
 *
 * Behaviour, after Linux's watchdog core with nowayout off:
 * - not running until a writer opens the FIFO (a real watchdog starts on open);
 * - each open and each byte written restarts the countdown;
 * - 'V' as the last byte before the writer closes (EOF) stops it: magic close;
 * - EOF without that 'V' leaves it running ("watchdog did not stop!"), so a
 *   helper that crashes or is killed gets its host reset, like on real hardware.
 *   A new writer (a restarted helper) pets it again by opening.
 * - after a reset the emulator is done: the host is gone.
 */

export type EmulatorPhase = 'idle' | 'armed' | 'disarmed' | 'reset';

export interface EmulatorState {
  readonly phase: EmulatorPhase;
  /** When armed: the countdown ends here (monotonic ms). */
  readonly firesAtMs: number | undefined;
  /** The last byte written so far was 'V': an EOF now disarms. */
  readonly magicPending: boolean;
  readonly lastPetMs: number | undefined;
}

export type EmulatorEvent =
  | { readonly kind: 'open'; readonly nowMs: number }
  | { readonly kind: 'data'; readonly nowMs: number; readonly lastByte: number }
  | { readonly kind: 'eof'; readonly nowMs: number }
  | { readonly kind: 'tick'; readonly nowMs: number };

export const EMULATOR_INITIAL_STATE: EmulatorState = { phase: 'idle', firesAtMs: undefined, magicPending: false, lastPetMs: undefined };

const MAGIC = 0x56; // 'V'

/** Pure transition of the emulated watchdog. `reset: true` means the countdown ran out now. */
export function stepEmulator(state: EmulatorState, event: EmulatorEvent, fireTimeoutMs: number): { state: EmulatorState; reset: boolean } {
  if (state.phase === 'reset') return { state, reset: false };
  switch (event.kind) {
    case 'open':
      return { state: { phase: 'armed', firesAtMs: event.nowMs + fireTimeoutMs, magicPending: false, lastPetMs: event.nowMs }, reset: false };
    case 'data':
      return {
        state: { phase: 'armed', firesAtMs: event.nowMs + fireTimeoutMs, magicPending: event.lastByte === MAGIC, lastPetMs: event.nowMs },
        reset: false,
      };
    case 'eof':
      if (state.phase === 'armed' && state.magicPending) return { state: { ...state, phase: 'disarmed', firesAtMs: undefined, magicPending: false }, reset: false };
      return { state: { ...state, magicPending: false }, reset: false };
    case 'tick':
      if (state.phase === 'armed' && state.firesAtMs !== undefined && event.nowMs >= state.firesAtMs) {
        return { state: { ...state, phase: 'reset', firesAtMs: undefined }, reset: true };
      }
      return { state, reset: false };
  }
}

/** The simulated host's processes. */
export type EmulatorVictims =
  /** Every process listed in DIR/cgroup.procs (v1 or v2), re-read until empty: descendants cannot escape by setsid. */
  | { readonly kind: 'cgroup'; readonly path: string }
  /** kill(-pgid, SIGKILL): one atomic signal, but a process that called setsid/setpgid has left the group. */
  | { readonly kind: 'process-group'; readonly pgid: number };

export type EmulatorReport =
  | { readonly event: 'ready'; readonly fifo: string; readonly fireTimeoutMs: number }
  | { readonly event: 'open'; readonly atMs: number }
  | { readonly event: 'eof'; readonly atMs: number; readonly disarmed: boolean }
  | {
      readonly event: 'reset';
      readonly atMs: number;
      readonly lastPetMs: number | undefined;
      readonly killed: readonly number[];
      readonly signalledGroups: readonly number[];
      /** Processes still listed in a victim cgroup when the emulator gave up (0 = all gone). */
      readonly remaining: number;
    }
  | { readonly event: 'stopped'; readonly atMs: number };

export interface EmulatorOptions {
  /** Created (mode 0600) if missing; an existing FIFO is reused. */
  readonly fifoPath: string;
  readonly fireTimeoutMs: number;
  readonly victims: readonly EmulatorVictims[];
}

export interface EmulatorDeps {
  readonly clock: Clock;
  readonly report: (report: EmulatorReport) => void;
  /** process.kill unless a test passes another. */
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
}

export interface RunningEmulator {
  readonly state: EmulatorState;
  /** Resolves 'reset' after a reset (victims killed), or 'stopped' after stop(). */
  readonly done: Promise<'reset' | 'stopped'>;
  stop(): Promise<void>;
}

/** Rounds of read-cgroup.procs-and-kill before giving up (a fork bomb outrunning us). */
const MAX_KILL_ROUNDS = 100;
const KILL_ROUND_PAUSE_MS = 10;
const MAX_VICTIM_PIDS = 100_000;
const MAX_FIRE_TIMEOUT_MS = 3_600_000;

function ownProcessGroup(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]); // state, ppid, pgrp
}

function readCgroupPids(path: string): number[] {
  const text = readFileSync(join(path, 'cgroup.procs'), 'utf8');
  const pids = text.split('\n').filter((line) => line !== '').map(Number);
  assert.ok(pids.length <= MAX_VICTIM_PIDS, `${path}: ${pids.length} processes`);
  return pids;
}

function ensureFifo(path: string): void {
  try {
    const stats = lstatSync(path);
    if (!stats.isFIFO()) throw new Error(`${path} exists and is not a FIFO`);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  execFileSync('mkfifo', ['-m', '0600', '--', path]); // Node has no mkfifo
}

export function startWatchdogEmulator(options: EmulatorOptions, deps: EmulatorDeps): RunningEmulator {
  assert.ok(Number.isInteger(options.fireTimeoutMs) && options.fireTimeoutMs >= 1 && options.fireTimeoutMs <= MAX_FIRE_TIMEOUT_MS, `fire timeout ${options.fireTimeoutMs} ms`);
  assert.ok(options.victims.length >= 1, 'the emulator needs a set of processes to kill');
  const ownGroup = ownProcessGroup();
  for (const victim of options.victims) {
    if (victim.kind === 'process-group') {
      assert.ok(Number.isInteger(victim.pgid) && victim.pgid > 1, `process group ${victim.pgid}`);
      if (victim.pgid === ownGroup) throw new Error(`the emulator is itself in process group ${victim.pgid}: start it in a group of its own`);
    } else {
      readCgroupPids(victim.path); // fails now, not at reset time, if the cgroup is missing
    }
  }
  const { clock } = deps;
  const kill = deps.kill ?? ((pid: number, signal: NodeJS.Signals) => process.kill(pid, signal));
  ensureFifo(options.fifoPath);
  // A reader that never reads: while it is open, a writer's O_NONBLOCK open succeeds at any
  // time (not only while the reading loop waits in open), and EOF still comes when writers close.
  const presenceFd = openSync(options.fifoPath, constants.O_RDONLY | constants.O_NONBLOCK);

  let state = EMULATOR_INITIAL_STATE;
  let timer: unknown;
  let stopping = false;
  let resolveDone: (how: 'reset' | 'stopped') => void = () => undefined;
  const done = new Promise<'reset' | 'stopped'>((resolve) => {
    resolveDone = resolve;
  });

  const schedule = (): void => {
    if (timer !== undefined) clock.clearTimer(timer);
    timer = undefined;
    if (state.phase === 'armed' && state.firesAtMs !== undefined) timer = clock.setTimer(state.firesAtMs, () => apply({ kind: 'tick', nowMs: clock.nowMs() }));
  };

  const apply = (event: EmulatorEvent): void => {
    const step = stepEmulator(state, event, options.fireTimeoutMs);
    state = step.state;
    if (event.kind === 'open') deps.report({ event: 'open', atMs: event.nowMs });
    if (event.kind === 'eof') deps.report({ event: 'eof', atMs: event.nowMs, disarmed: state.phase === 'disarmed' });
    if (step.reset) {
      timer = undefined;
      void resetHost(event.nowMs);
      return;
    }
    schedule();
  };

  const resetHost = async (atMs: number): Promise<void> => {
    const killed = new Set<number>();
    const signalledGroups: number[] = [];
    for (const victim of options.victims) {
      if (victim.kind !== 'process-group') continue;
      try {
        kill(-victim.pgid, 'SIGKILL');
        signalledGroups.push(victim.pgid);
      } catch {
        // ESRCH: the group is already empty.
      }
    }
    let remaining = 0;
    for (let round = 0; round < MAX_KILL_ROUNDS; round += 1) {
      remaining = 0;
      for (const victim of options.victims) {
        if (victim.kind !== 'cgroup') continue;
        let pids: number[];
        try {
          pids = readCgroupPids(victim.path);
        } catch {
          continue; // the cgroup was removed: nothing left in it
        }
        for (const pid of pids) {
          if (pid === process.pid) continue;
          remaining += 1;
          try {
            kill(pid, 'SIGKILL');
            killed.add(pid);
          } catch {
            // ESRCH: it exited between the read and the kill.
          }
        }
      }
      if (remaining === 0) break;
      await new Promise<void>((resolve) => clock.setTimer(clock.nowMs() + KILL_ROUND_PAUSE_MS, resolve));
    }
    deps.report({ event: 'reset', atMs, lastPetMs: state.lastPetMs, killed: [...killed].sort((a, b) => a - b), signalledGroups, remaining });
    await shutDown();
    resolveDone('reset');
  };

  const readerLoop = async (): Promise<void> => {
    const buffer = Buffer.alloc(4096);
    while (!stopping) {
      // Blocks (in a libuv pool thread) until a writer opens the FIFO.
      const handle = await open(options.fifoPath, constants.O_RDONLY);
      try {
        if (stopping) break;
        apply({ kind: 'open', nowMs: clock.nowMs() });
        for (;;) {
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (stopping) break;
          if (bytesRead === 0) {
            apply({ kind: 'eof', nowMs: clock.nowMs() });
            break;
          }
          apply({ kind: 'data', nowMs: clock.nowMs(), lastByte: buffer[bytesRead - 1]! });
        }
      } finally {
        await handle.close();
      }
    }
  };

  let loopDone: Promise<void> = Promise.resolve();

  const shutDown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (timer !== undefined) clock.clearTimer(timer);
    timer = undefined;
    // Wake the reading loop out of a blocking open() or read(): open as a writer (the presence
    // reader makes that succeed), write one byte, close.
    try {
      const wake = openSync(options.fifoPath, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        writeSync(wake, Uint8Array.of(0));
      } catch {
        // EAGAIN: the pipe is full, so the loop is not blocked in read.
      }
      closeSync(wake);
    } catch {
      // The FIFO is gone: the loop's open or read fails on its own.
    }
    await loopDone.catch(() => undefined);
    closeSync(presenceFd);
  };

  loopDone = readerLoop();
  loopDone.catch(() => undefined);
  deps.report({ event: 'ready', fifo: options.fifoPath, fireTimeoutMs: options.fireTimeoutMs });

  return {
    get state() {
      return state;
    },
    done,
    async stop() {
      if (state.phase === 'reset') {
        await done;
        return;
      }
      await shutDown();
      deps.report({ event: 'stopped', atMs: clock.nowMs() });
      resolveDone('stopped');
    },
  };
}

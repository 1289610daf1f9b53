import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EMULATOR_INITIAL_STATE, openWatchdog, stepEmulator, WatchdogPetter, type EmulatorState, type Watchdog } from '../../dist/helper/fencing/index.js';
import { monotonicClock } from '../../dist/helper/leases/clock.js';
import { workDir } from '../support/tmp.js';

const EMULATOR = fileURLToPath(new URL('../../dist/scripts/watchdog-emulator.js', import.meta.url));
/** Generous bound on top of the fire timeout: this machine is shared and slow at times. */
const SLACK_MS = 4_000;

const dir = workDir('wd-emulator');
const cgroups: string[] = [];
const children: ChildProcess[] = [];
let serial = 0;

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  for (const cgroup of cgroups) {
    for (let i = 0; i < 100 && existsSync(cgroup); i += 1) {
      for (const pid of pidsOf(cgroup)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      try {
        rmdirSync(cgroup);
      } catch {
        await sleep(20);
      }
    }
  }
  dir.remove();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function pidsOf(cgroup: string): number[] {
  return readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A simulated host in a cgroup of its own (cgroup v1 pids hierarchy): a process and a setsid'd one. */
async function simulatedHost(): Promise<{ cgroup: string; pids: number[] }> {
  const cgroup = `/sys/fs/cgroup/pids/vmlease-test-${process.pid}-${++serial}`;
  mkdirSync(cgroup);
  cgroups.push(cgroup);
  const script = `echo $$ > ${cgroup}/cgroup.procs || exit 1; setsid sleep 600 & exec sleep 600`;
  children.push(spawn('sh', ['-c', script], { stdio: 'ignore' }));
  const pids = await until('the host processes', () => (pidsOf(cgroup).length >= 2 ? pidsOf(cgroup) : undefined), 5_000);
  return { cgroup, pids };
}

interface Emulator {
  readonly fifo: string;
  readonly lines: Record<string, unknown>[];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  event(name: string, timeoutMs: number): Promise<Record<string, unknown>>;
}

async function startEmulator(fireTimeoutMs: number, victimArgs: string[]): Promise<Emulator> {
  const fifo = join(dir.path, `watchdog-${++serial}`);
  const child = spawn(process.execPath, [EMULATOR, '--fifo', fifo, '--fire-timeout-ms', String(fireTimeoutMs), ...victimArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const emulator: Emulator = {
    fifo,
    lines,
    child,
    exited,
    event: (name, timeoutMs) => until(`emulator event ${name}`, () => lines.find((line) => line.event === name), timeoutMs),
  };
  await emulator.event('ready', 10_000);
  return emulator;
}

function openOn(emulator: Emulator, fireTimeoutMs: number): Watchdog {
  return openWatchdog({ device: emulator.fifo, fireTimeoutMs }, { clock: monotonicClock });
}

describe('watchdog emulator state machine', () => {
  const W = 100;
  const run = (events: Parameters<typeof stepEmulator>[1][]): { state: EmulatorState; resets: number } => {
    let state = EMULATOR_INITIAL_STATE;
    let resets = 0;
    for (const event of events) {
      const step = stepEmulator(state, event, W);
      state = step.state;
      if (step.reset) resets += 1;
    }
    return { state, resets };
  };

  it('is not running before the first open, and fires W after the last pet', () => {
    expect(run([{ kind: 'tick', nowMs: 10_000 }]).resets).toBe(0);
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'tick', nowMs: 99 }]).resets).toBe(0);
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'tick', nowMs: 100 }])).toMatchObject({ resets: 1, state: { phase: 'reset' } });
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'data', nowMs: 50, lastByte: 0x2e }, { kind: 'tick', nowMs: 149 }]).resets).toBe(0);
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'data', nowMs: 50, lastByte: 0x2e }, { kind: 'tick', nowMs: 150 }]).resets).toBe(1);
  });

  it('disarms only on V as the last byte before EOF; EOF otherwise keeps it running', () => {
    const v = 0x56;
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'data', nowMs: 1, lastByte: v }, { kind: 'eof', nowMs: 2 }, { kind: 'tick', nowMs: 1_000 }])).toMatchObject({ resets: 0, state: { phase: 'disarmed' } });
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'eof', nowMs: 2 }, { kind: 'tick', nowMs: 1_000 }]).resets).toBe(1);
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'data', nowMs: 1, lastByte: v }, { kind: 'data', nowMs: 2, lastByte: 0x2e }, { kind: 'eof', nowMs: 3 }, { kind: 'tick', nowMs: 1_000 }]).resets).toBe(1);
    // A new writer re-arms a disarmed watchdog; one reset only.
    expect(run([{ kind: 'open', nowMs: 0 }, { kind: 'data', nowMs: 1, lastByte: v }, { kind: 'eof', nowMs: 2 }, { kind: 'open', nowMs: 500 }, { kind: 'tick', nowMs: 600 }, { kind: 'tick', nowMs: 700 }]).resets).toBe(1);
  });
});

describe('watchdog emulator process', () => {
  it('keeps the host alive while petted, and magic close disarms it', async () => {
    const fireTimeoutMs = 300;
    const host = await simulatedHost();
    const emulator = await startEmulator(fireTimeoutMs, ['--cgroup', host.cgroup]);
    const watchdog = openOn(emulator, fireTimeoutMs);
    expect(watchdog.kind).toBe('emulator');
    const petter = new WatchdogPetter({ watchdog, clock: monotonicClock, petIntervalMs: 50, lockspaces: () => [] });
    petter.start();
    await sleep(4 * fireTimeoutMs);
    petter.stop();
    expect(petter.stats.petted).toBeGreaterThan(5);
    expect(host.pids.filter((pid) => !alive(pid))).toEqual([]);
    expect(emulator.lines.some((line) => line.event === 'reset')).toBe(false);
    watchdog.closeClean();
    expect(await emulator.event('eof', 5_000)).toMatchObject({ disarmed: true });
    await sleep(3 * fireTimeoutMs);
    expect(host.pids.filter((pid) => !alive(pid))).toEqual([]);
    expect(emulator.lines.some((line) => line.event === 'reset')).toBe(false);
    emulator.child.kill('SIGTERM');
    expect(await emulator.exited).toBe(0);
    expect(host.pids.filter((pid) => !alive(pid))).toEqual([]);
  });

  it('resets the host (kills every process of its cgroup, setsid or not) when the pets stop', async () => {
    const fireTimeoutMs = 300;
    const host = await simulatedHost();
    const emulator = await startEmulator(fireTimeoutMs, ['--cgroup', host.cgroup]);
    const watchdog = openOn(emulator, fireTimeoutMs);
    expect(watchdog.pet(Number.POSITIVE_INFINITY)).toBe(true);
    const lastPetMs = Date.now();
    const reset = await emulator.event('reset', fireTimeoutMs + SLACK_MS);
    const elapsedMs = Date.now() - lastPetMs;
    expect(elapsedMs).toBeGreaterThanOrEqual(fireTimeoutMs - 20);
    expect(elapsedMs).toBeLessThan(fireTimeoutMs + SLACK_MS);
    expect(reset).toMatchObject({ remaining: 0 });
    expect([...(reset.killed as number[])].sort()).toEqual([...host.pids].sort());
    expect(pidsOf(host.cgroup)).toEqual([]);
    await until('the host processes to die', () => (host.pids.some(alive) ? undefined : true), 2_000);
    expect(await emulator.exited).toBe(0);
    watchdog.closeWithoutDisarm();
  });

  it('a helper that closes without V (crash) still gets its host reset', async () => {
    const fireTimeoutMs = 200;
    const host = await simulatedHost();
    const emulator = await startEmulator(fireTimeoutMs, ['--cgroup', host.cgroup]);
    const watchdog = openOn(emulator, fireTimeoutMs);
    watchdog.pet(Number.POSITIVE_INFINITY);
    watchdog.closeWithoutDisarm();
    await emulator.event('reset', fireTimeoutMs + SLACK_MS);
    // It read the close without V first, unless a stall past W let its timer fire before it read
    // the close (seen under heavy load): either way the host is reset, never disarmed.
    expect(emulator.lines.filter((line) => line.event === 'eof').map((line) => line.disarmed)).not.toContain(true);
    await until('the host processes to die', () => (host.pids.some(alive) ? undefined : true), 2_000);
  });

  it('resets when the pet policy stops the pets: a lockspace with holders stopped renewing', async () => {
    const fireTimeoutMs = 300;
    const failMs = 400;
    const petIntervalMs = 50;
    const host = await simulatedHost();
    const emulator = await startEmulator(fireTimeoutMs, ['--cgroup', host.cgroup]);
    const watchdog = openOn(emulator, fireTimeoutMs);
    const lastRenewalMs = monotonicClock.nowMs(); // the renewals stop here
    const petted: number[] = [];
    const petter = new WatchdogPetter({
      watchdog,
      clock: monotonicClock,
      petIntervalMs,
      lockspaces: () => [{ name: 'cluster', liveHolders: 1, lastRenewalMs, failMs }],
      onOutcome: (outcome) => {
        if (outcome.kind === 'petted') petted.push(outcome.atMs);
      },
    });
    petter.start();
    await emulator.event('reset', failMs + fireTimeoutMs + SLACK_MS);
    petter.stop();
    expect(petted.length).toBeGreaterThan(0);
    expect(Math.max(...petted)).toBeLessThan(lastRenewalMs + failMs - petIntervalMs);
    await until('the host processes to die', () => (host.pids.some(alive) ? undefined : true), 2_000);
    watchdog.closeWithoutDisarm();
  });

  it('resets a host given as a process group', async () => {
    const fireTimeoutMs = 200;
    const leader = spawn('sh', ['-c', 'sleep 600 & exec sleep 600'], { stdio: 'ignore', detached: true });
    children.push(leader);
    const pgid = leader.pid!;
    const emulator = await startEmulator(fireTimeoutMs, ['--pgid', String(pgid)]);
    const watchdog = openOn(emulator, fireTimeoutMs);
    watchdog.pet(Number.POSITIVE_INFINITY);
    expect(await emulator.event('reset', fireTimeoutMs + SLACK_MS)).toMatchObject({ signalledGroups: [pgid] });
    const exit = await new Promise<NodeJS.Signals | null>((resolve) => (leader.signalCode !== null ? resolve(leader.signalCode) : leader.on('exit', (_code, signal) => resolve(signal))));
    expect(exit).toBe('SIGKILL');
    watchdog.closeWithoutDisarm();
  });

  it('refuses to start inside the process group it would kill', async () => {
    // Its own new group (detached), named by the shell's pid that exec keeps: the test's own
    // group may be 0 when its leader is outside our pid namespace.
    const emulator = spawn('/bin/sh', ['-c', 'exec "$0" "$@" --pgid $$', process.execPath, EMULATOR, '--fifo', join(dir.path, 'self'), '--fire-timeout-ms', '100'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const ownGroup = String(emulator.pid);
    let stderr = '';
    emulator.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const status = await new Promise<number | null>((resolve) => emulator.on('exit', resolve));
    expect(status).toBe(1);
    expect(stderr).toMatch(new RegExp(`itself in process group ${ownGroup}`));
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { UNSAFE_TEST_SWITCHES_ENV, UNSAFE_TEST_SWITCHES_FLAG } from '../../protocol/unsafe-test-switches.js';
import type { HostCgroup } from './host-cgroup.js';
import { LOCKSPACE_NAME, type SharedStorage } from './shared-storage.js';
import { onJsonLines } from './json-lines.js';
import { runAsync, type TimedResult } from '../support/run-async.js';

/**
 * One simulated host of the fault harness: a cgroup (its processes), a
 * watchdog emulator process outside it that resets the host (SIGKILLs the
 * cgroup) when the helper stops petting, and a real `vmlease helper` with its
 * own host id, run directory and config, on the shared lease storage. VMs'
 * supervisors are started into the same cgroup, in sessions of their own.
 * Every process is started with a parent-death signal, so nothing outlives
 * the harness.
 */

export const VM_UID = 65534;
export const HELPER_READY_TIMEOUT_MS = 60_000;
/** The emulator's fire timeout when the watchdog is "disabled": the helper still publishes W, nothing is ever reset. */
export const DISABLED_WATCHDOG_FIRE_MS = 3_600_000;
export const SETPRIV = '/usr/bin/setpriv';
export const HELPER_STOP_TIMEOUT_MS = 30_000;

export type HostPhase = 'down' | 'starting' | 'up';

export interface HostSettings {
  readonly cli: string;
  readonly emulatorScript: string;
  readonly dir: string;
  readonly ioTimeoutMs: number;
  readonly watchdogFireTimeoutMs: number;
  readonly watchdogResets: boolean;
  /** Switch names for the helper (and supervisors) of this host, or empty. */
  readonly helperSwitches: readonly string[];
  readonly supervisorSwitches: readonly string[];
}

export interface ResetReport {
  readonly atMs: number;
  readonly killed: number;
}

export class ChaosHost {
  phase: HostPhase = 'down';
  stopped = false;
  stalled: 'stall' | 'slow' | undefined;
  /** The fault running on this host (the harness's bookkeeping): no VM is started here meanwhile. */
  fault: string | undefined;
  helper: ChildProcess | undefined;
  emulator: ChildProcess | undefined;
  /** Helper generations started (a restart or host restart adds one). */
  starts = 0;
  readonly runDir: string;
  readonly configPath: string;
  private readonly fifo: string;
  private readonly log: WriteStream;
  onReset: (report: ResetReport) => void = () => undefined;

  constructor(
    readonly id: number,
    readonly cgroup: HostCgroup,
    private readonly storage: SharedStorage,
    private readonly settings: HostSettings,
  ) {
    const home = join(settings.dir, `host-${id}`);
    mkdirSync(home, { recursive: true });
    this.runDir = join(home, 'run');
    this.configPath = join(home, 'helper.json');
    this.fifo = join(home, 'watchdog.fifo');
    this.log = createWriteStream(join(home, 'host.log'), { flags: 'a' });
    writeFileSync(
      this.configPath,
      JSON.stringify({
        hostId: id,
        hostName: `chaos-host-${id}`,
        runDir: this.runDir,
        ioTimeoutMs: settings.ioTimeoutMs,
        watchdog: { device: this.fifo, fireTimeoutMs: settings.watchdogFireTimeoutMs },
        takeoverWithoutWatchdog: false,
        lockspaces: [{ name: LOCKSPACE_NAME, path: storage.leaseNode, offset: storage.lockspaceOffset }],
        policy: storage.policyPath,
      }),
    );
  }

  note(line: string): void {
    this.log.write(`${new Date().toISOString()} harness: ${line}\n`);
  }

  /** Starts the emulator (when it is not running) and a helper; resolves when the helper is ready. */
  async start(): Promise<void> {
    this.phase = 'starting';
    if (!this.emulator) await this.startEmulator();
    await this.startHelper();
    this.phase = 'up';
  }

  private startEmulator(): Promise<void> {
    rmSync(this.fifo, { force: true });
    const fireMs = this.settings.watchdogResets ? this.settings.watchdogFireTimeoutMs : DISABLED_WATCHDOG_FIRE_MS;
    const child = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', process.execPath, this.settings.emulatorScript, '--fifo', this.fifo, '--fire-timeout-ms', String(fireMs), '--cgroup', this.cgroup.path], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.emulator = child;
    return new Promise((resolve, reject) => {
      onJsonLines<{ event: string; killed: unknown[] }>(
        child.stdout!,
        (event) => {
          if (event.event === 'ready') resolve();
          if (event.event === 'reset') {
            this.phase = 'down';
            this.onReset({ atMs: Date.now(), killed: Array.isArray(event.killed) ? event.killed.length : 0 });
          }
        },
        (line) => this.log.write(`${new Date().toISOString()} emulator: ${line}\n`),
      );
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void this.log.write(`emulator stderr: ${chunk}`));
      child.once('exit', (code, signal) => {
        this.log.write(`${new Date().toISOString()} emulator exited ${code ?? signal}\n`);
        if (this.emulator === child) this.emulator = undefined;
        reject(new Error(`host ${this.id}: watchdog emulator exited (${code ?? signal}) before it was ready`));
      });
    });
  }

  private startHelper(): Promise<void> {
    this.starts += 1;
    const unsafe = this.settings.helperSwitches.length > 0;
    const command = [SETPRIV, '--pdeathsig', 'KILL', '--', process.execPath, this.settings.cli, 'helper', '--config', this.configPath, ...(unsafe ? [`--${UNSAFE_TEST_SWITCHES_FLAG}`] : [])];
    const env: NodeJS.ProcessEnv = { ...process.env, ...(unsafe ? { [UNSAFE_TEST_SWITCHES_ENV]: this.settings.helperSwitches.join(',') } : {}) };
    delete env.NODE_OPTIONS;
    const child = spawn(this.cgroup.enterCommand(command)[0]!, this.cgroup.enterCommand(command).slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.helper = child;
    this.stopped = false;
    let buffered = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host ${this.id}: helper not ready within ${HELPER_READY_TIMEOUT_MS} ms`)), HELPER_READY_TIMEOUT_MS);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        this.log.write(chunk);
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.includes('"msg":"helper.ready"')) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void this.log.write(`helper stderr: ${chunk}`));
      child.once('exit', (code, signal) => {
        this.log.write(`${new Date().toISOString()} helper pid ${child.pid} exited ${code ?? signal}\n`);
        if (this.helper === child) this.helper = undefined;
        clearTimeout(timer);
        reject(new Error(`host ${this.id}: helper exited (${code ?? signal}) before it was ready`));
      });
    });
  }

  /** Kills the helper (SIGKILL, or SIGQUIT: exit leaving VMs for the next start) and starts another; the emulator stays. */
  async restartHelper(signal: 'SIGKILL' | 'SIGQUIT' | 'SIGTERM'): Promise<void> {
    const old = this.helper;
    if (old) {
      const exited = new Promise<void>((resolve) => (old.exitCode !== null || old.signalCode !== null ? resolve() : old.once('exit', () => resolve())));
      signalPid(old.pid, 'SIGCONT');
      signalPid(old.pid, signal);
      // A fencing stop (SIGTERM) waits for the VMs' processes; it gets a bound, then SIGKILL.
      const timer = setTimeout(() => signalPid(old.pid, 'SIGKILL'), HELPER_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.phase = 'starting';
    await this.startHelper();
    this.phase = 'up';
  }

  /** SIGSTOP / SIGCONT of the helper. */
  pauseHelper(paused: boolean): void {
    if (!this.helper) return;
    signalPid(this.helper.pid, paused ? 'SIGSTOP' : 'SIGCONT');
    this.stopped = paused;
  }

  /** The host's storage: stalled (1 byte/s), slowed, or normal, on both shared devices. */
  setStorage(mode: 'stall' | 'slow' | undefined, slowBytesPerSecond: number): void {
    for (const device of this.storage.devices) this.cgroup.throttle(device, mode === 'stall' ? 1 : mode === 'slow' ? slowBytesPerSecond : undefined);
    this.stalled = mode;
  }

  /** SIGKILLs the emulator and every process of the host ("power off"). Returns at once; see drained(). */
  powerOff(): void {
    this.phase = 'down';
    const emulator = this.emulator;
    this.emulator = undefined;
    if (emulator) {
      emulator.removeAllListeners('exit');
      signalPid(emulator.pid, 'SIGKILL');
    }
    this.cgroup.killAll();
    this.stopped = false;
  }

  /**
   * Resolves with Date.now() when the host's cgroup is empty: no process of
   * it is left, not even one in D state with a write still in the kernel.
   * SIGKILLs again on every poll (a process may have forked meanwhile).
   */
  async drained(pollMs = 20, timeoutMs = 600_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.cgroup.killAll() === 0) return Date.now();
      if (Date.now() > deadline) throw new Error(`host ${this.id}: processes ${this.cgroup.pids().join(', ')} still alive ${timeoutMs} ms after the reset`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** `vmlease ARGS --run-dir RUN`, async, with a deadline. */
  cli(args: readonly string[], timeoutMs: number): Promise<TimedResult> {
    return runAsync(process.execPath, [this.settings.cli, ...args, '--run-dir', this.runDir], timeoutMs);
  }

  /** `vmlease supervise` as the VM's uid under node --jitless, in this host's cgroup, leading a session of its own. */
  startSupervisor(vm: string, command: readonly string[]): ChildProcess {
    const unsafe = this.settings.supervisorSwitches.length > 0;
    const inner = [SETPRIV, '--pdeathsig', 'KILL', '--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups', '--', process.execPath, '--jitless', this.settings.cli, 'supervise', '--vm', vm, '--run-dir', this.runDir, ...(unsafe ? [`--${UNSAFE_TEST_SWITCHES_FLAG}`] : []), '--', ...command];
    const env: NodeJS.ProcessEnv = { ...process.env, ...(unsafe ? { [UNSAFE_TEST_SWITCHES_ENV]: this.settings.supervisorSwitches.join(',') } : {}) };
    delete env.NODE_OPTIONS;
    const wrapped = this.cgroup.enterCommand(inner);
    return spawn(wrapped[0]!, wrapped.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  }

  close(): void {
    this.log.end();
  }
}

/** process.kill that tolerates ESRCH (a reaping pid 1 may take the process first). */
export function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vmlease, type CliResult } from '../support/cli.js';
import { startHelper, type Cluster, type HelperOptions, type HelperProcess } from '../support/helper-harness.js';
import { runAsync, type TimedResult } from '../support/two-hosts.js';

/**
 * One "host" of the libvirt end-to-end suite: a vmlease helper (its own host
 * id) and a libvirtd in its own mount namespace with its own state
 * directories, with vmlease's hook and shim installed for that helper. Two of
 * them on one machine are two hosts sharing the cluster's lease storage.
 *
 * Each host's libvirtd runs under a subreaper of its own (`setup.sh host`:
 * `tini -s`, a child of this test process, which reaps it) that outlives
 * libvirtd restarts: the VMs libvirt daemonizes are its descendants, so
 * their exits are reaped whatever pid 1 of the test's pid namespace does.
 */
export const SETUP = fileURLToPath(new URL('./setup.sh', import.meta.url));
const VIRSH_TIMEOUT_MS = 60_000;

export interface LibvirtHostOptions {
  /** The helper's watchdog (default none). */
  readonly watchdog?: HelperOptions['watchdog'];
  /** The host's policy file (default the cluster's). */
  readonly policyPath?: string;
}

export interface LibvirtHost {
  readonly hostId: number;
  /** The helper running now (a new one after restartHelper). */
  readonly helper: HelperProcess;
  readonly stateDir: string;
  readonly shim: string;
  /** libvirt's NAME.pid files, as the helper reads them. */
  readonly libvirtRunDir: string;
  /** libvirt's per-domain log (the emulator's stderr: the supervisor's last words). */
  qemuLog(domain: string): string;
  virsh(args: readonly string[]): CliResult;
  /** virsh without blocking the event loop (timers of the test keep running). */
  virshAsync(args: readonly string[]): Promise<TimedResult>;
  /** Stops the helper with `signal` (waiting for its exit) and starts it again with the same configuration. */
  restartHelper(signal: NodeJS.Signals): Promise<HelperProcess>;
  /** Stops libvirtd alone (running VMs stay, under the host's reaper) and starts the next one on the same state. */
  restartLibvirtd(): void;
  /** The host's subreaper (`tini -s`), the ancestor of its libvirtd and of every VM process libvirt started. */
  readonly reaper: ChildProcess;
  stop(): Promise<void>;
}

/** Packages, the libvirt-qemu user and qemu.conf (idempotent; apt only when something is missing). */
export function setupMachine(): void {
  execFileSync('sh', [SETUP, 'install'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 900_000 });
}

export async function startLibvirtHost(cluster: Cluster, hostId: number, prefix: string, options: LibvirtHostOptions = {}): Promise<LibvirtHost> {
  const stateDir = join(cluster.dir, `libvirt-${hostId}`);
  mkdirSync(stateDir, { recursive: true });
  const libvirtRunDir = join(stateDir, 'run', 'qemu');
  const policyPath = options.policyPath ?? cluster.policyPath;
  const helperOptions: HelperOptions = { libvirtRunDir, policyPath, watchdog: options.watchdog ?? null };
  let helper = await startHelper(cluster, hostId, helperOptions);
  // The hook must exist before libvirtd starts: libvirtd looks for hooks only at start-up.
  const installed = vmlease(['install-libvirt', '--prefix', prefix, '--hooks-dir', join(stateDir, 'etc-hooks'), '--run-dir', helper.runDir, '--policy', policyPath]);
  if (installed.status !== 0) throw new Error(`install-libvirt failed: ${installed.stderr}`);
  const reaper = spawn('sh', [SETUP, 'host', stateDir], { stdio: 'ignore', detached: true });
  const reaperExit = new Promise<void>((resolve) => reaper.once('exit', () => resolve()));
  execFileSync('sh', [SETUP, 'wait', stateDir], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
  const uri = `qemu:///system?socket=${join(stateDir, 'run', 'libvirt-sock')}`;
  return {
    hostId,
    get helper() {
      return helper;
    },
    stateDir,
    shim: join(prefix, 'libexec/vmlease/qemu-shim'),
    libvirtRunDir,
    reaper,
    qemuLog: (domain) => readFileSync(join(stateDir, 'log', 'qemu', `${domain}.log`), 'utf8'),
    virsh(args) {
      const result = spawnSync('virsh', ['-c', uri, ...args], { encoding: 'utf8', timeout: VIRSH_TIMEOUT_MS });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    },
    virshAsync: (args) => runAsync('virsh', ['-c', uri, ...args], VIRSH_TIMEOUT_MS),
    async restartHelper(signal) {
      await helper.stop(signal);
      helper = await startHelper(cluster, hostId, helperOptions, 60_000);
      return helper;
    },
    restartLibvirtd() {
      execFileSync('sh', [SETUP, 'restart-libvirtd', stateDir], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
    },
    async stop() {
      // Domains first (their supervisors talk to the helper), then libvirtd, then the helper.
      const running = spawnSync('virsh', ['-c', uri, 'list', '--name'], { encoding: 'utf8', timeout: VIRSH_TIMEOUT_MS }).stdout ?? '';
      for (const name of running.split('\n').filter(Boolean)) spawnSync('virsh', ['-c', uri, 'destroy', name], { timeout: VIRSH_TIMEOUT_MS });
      execFileSync('sh', [SETUP, 'stop', stateDir], { stdio: 'ignore', timeout: 60_000 });
      await reaperExit;
      await helper.stop('SIGTERM');
    },
  };
}

/** The first number of a /proc/PID/status field, or undefined when the process is gone. */
function statusField(pid: number, field: string): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
    return line === undefined ? undefined : Number(line.split(/\s+/)[1]);
  } catch {
    return undefined;
  }
}

/** uid from /proc/PID/status (real uid), or undefined when the process is gone. */
export const processUid = (pid: number): number | undefined => statusField(pid, 'Uid');

/** The parent pid from /proc/PID/status, or undefined when the process is gone. */
export const parentPid = (pid: number): number | undefined => statusField(pid, 'PPid');

export function userId(name: string): number {
  return Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
}

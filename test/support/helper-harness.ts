import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, vmlease, type CliResult } from './cli.js';
import { workDir } from './tmp.js';

/**
 * Real helper processes for tests: a "cluster" directory with lease storage
 * (one lockspace, resources on demand) and a policy, helpers started as
 * `vmlease helper --config` child processes (each its own run dir, host id
 * and config), and supervisors started as an unprivileged uid under
 * `node --jitless`, exactly as an operator would.
 */

export const VM_UID = 65534;
export const VM_GID = 65534;

export interface Cluster {
  readonly dir: string;
  readonly leasesDir: string;
  readonly lockspace: string;
  readonly lockspacePath: string;
  readonly policyPath: string;
  readonly ioTimeoutMs: number;
  readonly hostsMax: number;
  /** Creates (once) a resource area in its own file; returns its lease string LS:RES:PATH:0. */
  resource(name: string): string;
  remove(): void;
}

export function makeCluster(options: { ioTimeoutMs: number; hostsMax?: number; lockspace?: string }): Cluster {
  const work = workDir('cluster');
  // The lease directory is walked by uid 65534 in some tests (it must not be able to open the files).
  chmodSync(work.path, 0o755);
  const leasesDir = join(work.path, 'leases');
  mkdirSync(leasesDir, { mode: 0o700 });
  const lockspace = options.lockspace ?? 'cluster';
  const hostsMax = options.hostsMax ?? 8;
  const lockspacePath = join(leasesDir, `${lockspace}.ls`);
  must(vmlease(['init-lockspace', `${lockspace}:${lockspacePath}:0`, '--hosts', String(hostsMax), '--io-timeout-ms', String(options.ioTimeoutMs), '--create']));
  const policyPath = join(work.path, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ leaseRoots: [leasesDir] }));
  const made = new Set<string>();
  return {
    dir: work.path,
    leasesDir,
    lockspace,
    lockspacePath,
    policyPath,
    ioTimeoutMs: options.ioTimeoutMs,
    hostsMax,
    resource(name) {
      const path = join(leasesDir, `${name}.res`);
      if (!made.has(name)) {
        must(vmlease(['init-resource', `${lockspace}:${name}:${path}:0`, '--hosts', String(hostsMax), '--create']));
        made.add(name);
      }
      return `${lockspace}:${name}:${path}:0`;
    },
    remove: () => work.remove(),
  };
}

/** Automatic disk leases on, as the policy tests and the libvirt tests use them. */
export interface AutoLeasePolicy {
  /** The marked lease directory. */
  readonly directory: string;
  /** The shared file root named `images`. */
  readonly imagesDir: string;
  readonly emulatorShim: string;
  /** The tests' directories are on a local file system (default true). */
  readonly allowLocalDirectory?: boolean;
  /** Where to write it (default the cluster's policy file; a host with its own shim path has its own). */
  readonly policyPath?: string;
}

/** Writes the cluster's host policy with automatic disk leases required for writable disks. */
export function writeAutoLeasePolicy(cluster: Cluster, o: AutoLeasePolicy): void {
  writeFileSync(
    o.policyPath ?? cluster.policyPath,
    JSON.stringify({
      leaseRoots: [cluster.leasesDir],
      autoDiskLeases: { enabled: true, lockspace: cluster.lockspace, directory: o.directory, requireForWritableDisks: true, sharedFileRoots: [{ name: 'images', path: o.imagesDir }], allowLocalDirectory: o.allowLocalDirectory ?? true },
      onLockFailure: 'kill',
      emulatorShim: o.emulatorShim,
    }),
  );
}

function must(result: CliResult): CliResult {
  if (result.status !== 0) throw new Error(`vmlease failed (${result.status}): ${result.stderr}`);
  return result;
}

export interface HelperOptions {
  readonly watchdog?: { device: string; fireTimeoutMs: number } | null;
  readonly takeoverWithoutWatchdog?: boolean;
  readonly hostName?: string;
  /** Where the helper looks for libvirt's NAME.pid files. */
  readonly libvirtRunDir?: string;
  /** The host policy file (default the cluster's). */
  readonly policyPath?: string;
}

export interface HelperProcess {
  readonly hostId: number;
  readonly runDir: string;
  readonly configPath: string;
  readonly process: ChildProcess;
  /** Every log line so far, parsed. */
  readonly lines: Record<string, unknown>[];
  waitForLog(msg: string, timeoutMs?: number, match?: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  cli(args: readonly string[]): CliResult;
}

export function writeHelperConfig(cluster: Cluster, hostId: number, options: HelperOptions = {}): { runDir: string; configPath: string } {
  const runDir = join(cluster.dir, `host-${hostId}`, 'run');
  mkdirSync(join(cluster.dir, `host-${hostId}`), { recursive: true });
  const configPath = join(cluster.dir, `host-${hostId}`, 'helper.json');
  const config = {
    hostId,
    hostName: options.hostName ?? `host-${hostId}`,
    runDir,
    ioTimeoutMs: cluster.ioTimeoutMs,
    watchdog: options.watchdog ?? null,
    takeoverWithoutWatchdog: options.takeoverWithoutWatchdog ?? false,
    lockspaces: [{ name: cluster.lockspace, path: cluster.lockspacePath, offset: 0 }],
    policy: options.policyPath ?? cluster.policyPath,
    ...(options.libvirtRunDir ? { libvirtRunDir: options.libvirtRunDir } : {}),
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { runDir, configPath };
}

/** Starts `vmlease helper` and resolves once it logged helper.ready (or rejects with its output). */
export async function startHelper(cluster: Cluster, hostId: number, options: HelperOptions = {}, readyTimeoutMs = 30_000): Promise<HelperProcess> {
  const { runDir, configPath } = writeHelperConfig(cluster, hostId, options);
  const child = spawn(process.execPath, [CLI, 'helper', '--config', configPath, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (line.msg === w.msg && w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const helper: HelperProcess = {
    hostId,
    runDir,
    configPath,
    process: child,
    lines,
    waitForLog(msg, timeoutMs = 30_000, match = () => true) {
      const seen = lines.find((l) => l.msg === msg && match(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`host ${hostId}: no log ${msg} within ${timeoutMs} ms; stderr: ${stderr}; last lines: ${JSON.stringify(lines.slice(-5))}`)), timeoutMs);
        waiters.push({ msg, match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
    cli: (args) => vmlease([...args, '--run-dir', runDir]),
  };
  await Promise.race([
    helper.waitForLog('helper.ready', readyTimeoutMs),
    exited.then((code) => {
      throw new Error(`helper ${hostId} exited (${code}) before it was ready: ${stderr}`);
    }),
  ]);
  return helper;
}

/** `vmlease supervise` as uid 65534 under node --jitless, as libvirt would run it. */
export function startSupervisor(runDir: string, vm: string, command: readonly string[], uid = VM_UID, extraStdio: readonly StdioEntry[] = []): ChildProcess & { output: () => string } {
  const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, '--jitless', CLI, 'supervise', '--vm', vm, '--run-dir', runDir, '--', ...command], {
    // Entries past stderr become the supervisor's fds 3, 4, ... (at those numbers), as libvirt passes qemu's.
    stdio: ['ignore', 'pipe', 'pipe', ...extraStdio],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => void (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => void (output += c));
  return Object.assign(child, { output: () => output });
}

/** One fd for a spawned process: an open fd of ours, a pipe to us, or nothing at that number. */
export type StdioEntry = number | 'pipe' | 'ignore';

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Whether a pid is alive (not a zombie), from /proc. */
export function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The supervisor's footprint, as libvirt would see it: a real helper, a
 * supervisor as uid 65534 under `node --jitless`, and a child that records
 * when it was exec'd. Resident memory (VmRSS) of the supervisor while its
 * child runs, and the time from spawning the supervisor to the child's exec
 * (libvirt waits for qemu's monitor: start-up work delays every VM start).
 */

export interface Spread {
  readonly p50: number;
  readonly max: number;
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.ceil(sorted.length / 2) - 1]!, max: sorted[sorted.length - 1]! };
}

export interface SupervisorFootprint {
  readonly runs: number;
  readonly rssKiB: Spread;
  readonly startToExecMs: Spread;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const VM_UID = 65534;
const IO_TIMEOUT_MS = 500;

function vmlease(args: string[]): void {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`vmlease ${args[0]} failed: ${result.stderr}`);
}

function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() > until) return reject(new Error(`bench: ${what} did not happen within ${timeoutMs} ms`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/[^0-9]/g, ''));
}

async function startHelper(dir: string): Promise<{ helper: ChildProcess; runDir: string; lease: (name: string) => string }> {
  const leases = join(dir, 'leases');
  mkdirSync(leases, { mode: 0o700 });
  const lockspace = join(leases, 'bench.ls');
  vmlease(['init-lockspace', `bench:${lockspace}:0`, '--hosts', '4', '--io-timeout-ms', String(IO_TIMEOUT_MS), '--create']);
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ leaseRoots: [leases] }));
  const runDir = join(dir, 'run');
  writeFileSync(join(dir, 'helper.json'), JSON.stringify({ hostId: 1, runDir, ioTimeoutMs: IO_TIMEOUT_MS, watchdog: null, lockspaces: [{ name: 'bench', path: lockspace, offset: 0 }], policy: join(dir, 'policy.json') }));
  const helper = spawn(process.execPath, [CLI, 'helper', '--config', join(dir, 'helper.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  helper.stdout!.on('data', (chunk: Buffer) => void (log += chunk.toString()));
  await waitFor('helper.ready', () => (log.includes('"helper.ready"') ? true : undefined), 30_000);
  const lease = (name: string) => {
    const path = join(leases, `${name}.res`);
    vmlease(['init-resource', `bench:${name}:${path}:0`, '--hosts', '4', '--create']);
    return `bench:${name}:${path}:0`;
  };
  return { helper, runDir, lease };
}

async function oneRun(runDir: string, lease: string, vm: string, markers: string): Promise<{ rss: number; startToExec: number }> {
  vmlease(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', lease, '--run-dir', runDir]);
  const marker = join(markers, `${vm}.exec`);
  const spawnedAtMs = Date.now();
  const supervisor = spawn('setpriv', ['--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups', process.execPath, '--jitless', CLI, 'supervise', '--vm', vm, '--run-dir', runDir, '--', 'sh', '-c', `date +%s%3N > ${marker}; exec sleep 30`], { stdio: 'ignore' });
  const execAtMs = await waitFor('the child', () => (existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '' ? Number(readFileSync(marker, 'utf8').trim()) : undefined), 30_000);
  const rss = rssKiB(supervisor.pid!);
  supervisor.kill('SIGTERM');
  await new Promise((resolve) => supervisor.once('exit', resolve));
  vmlease(['unregister', '--vm', vm, '--run-dir', runDir]);
  return { rss, startToExec: execAtMs - spawnedAtMs };
}

export async function measureSupervisor(runs: number): Promise<SupervisorFootprint> {
  const dir = mkdtempSync(join(tmpdir(), 'vmlease-bench-supervisor-'));
  chmodSync(dir, 0o755);
  const markers = join(dir, 'markers');
  mkdirSync(markers);
  chmodSync(markers, 0o777);
  const { helper, runDir, lease } = await startHelper(dir);
  try {
    const rss: number[] = [];
    const startToExec: number[] = [];
    for (let i = 0; i < runs; i++) {
      const vm = `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;
      const run = await oneRun(runDir, lease(`vm${i}`), vm, markers);
      rss.push(run.rss);
      startToExec.push(run.startToExec);
    }
    return { runs, rssKiB: spread(rss), startToExecMs: spread(startToExec) };
  } finally {
    helper.kill('SIGTERM');
    await new Promise((resolve) => helper.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { alive, VM_UID } from './helper-harness.js';

/**
 * Checks the supervisor tests share: the supervisor really runs as the VM's
 * uid under `node --jitless`, the lease file is closed to it, and waiting on
 * processes with generous bounds.
 */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A directory (made if missing) uid 65534 may write into: marker files of the child. */
export function openToVm(dir: string): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  return dir;
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim() ?? '';
}

/** The process runs with every uid the VM's (not root) and V8 without its JIT. */
export function expectUnprivilegedJitless(pid: number): void {
  expect(statusField(pid, 'Uid').split(/\s+/)).toEqual(Array(4).fill(String(VM_UID)));
  expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--jitless');
}

/** The VM's uid cannot open the lease file (the supervisor never sees lease storage). */
export function expectLeaseUnreadable(lease: string): void {
  const path = lease.split(':')[2]!;
  const probe = spawnSync('setpriv', ['--reuid', String(VM_UID), '--regid', String(VM_UID), '--clear-groups', 'cat', path], { encoding: 'utf8' });
  expect(probe.status).not.toBe(0);
  expect(probe.stderr).toContain('Permission denied');
}

/** Resolves when the predicate holds, or rejects after timeoutMs naming what was awaited. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number, pollMs = 10): Promise<number> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(pollMs);
  }
  return Date.now();
}

/** Resolves with the time the pid was first seen gone (polled every 5 ms). */
export function deathOf(pid: number, timeoutMs: number): Promise<number> {
  return waitFor(`pid ${pid} gone`, () => !alive(pid), timeoutMs, 5);
}

/** Socket inodes of a process's open fds. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(join(`/proc/${pid}/fd`, fd)));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed while we looked
    }
  }
  return inodes;
}

/** Inodes of every listening TCP socket in the process's network namespace (state 0A in /proc/net/tcp{,6}). */
function listeningTcpInodes(pid: number): Map<string, string> {
  const listening = new Map<string, string>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') listening.set(f[9]!, `${table} ${f[1]}`);
    }
  }
  return listening;
}

/** The listening TCP sockets (local address) the process holds. */
export function listeningSocketsOf(pid: number): string[] {
  const listening = listeningTcpInodes(pid);
  return [...socketInodes(pid)].flatMap((inode) => (listening.has(inode) ? [listening.get(inode)!] : []));
}

/** Every listening TCP address in the namespace (to see a debugger port appear anywhere). */
export function listeningAddresses(pid: number): string[] {
  return [...listeningTcpInodes(pid).values()].sort();
}

/** Fds 3 and up this test process holds without close-on-exec: every process it spawns inherits them too. */
export function leakedIntoSpawns(): number[] {
  return readdirSync('/proc/self/fd').flatMap((name) => {
    try {
      const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'))![1]!;
      return Number(name) > 2 && (parseInt(flags, 8) & 0o2000000) === 0 ? [Number(name)] : [];
    } catch {
      return [];
    }
  });
}

/** A process's open fds, ascending. */
export function fdsOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
}

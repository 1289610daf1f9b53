import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { VM_UID } from './helper-harness.js';

/**
 * Tools for the threat tests: a raw WebSocket client on the supervisor socket
 * (in this process, as root) and a scriptable peer process running as an
 * unprivileged uid in its own session (raw-peer.mjs), each with a queue of
 * what the helper sent; and processes to report as "children".
 */

const RAW_PEER = fileURLToPath(new URL('./raw-peer.mjs', import.meta.url));

export type Received = { kind: 'message'; text: string | null; json: Record<string, unknown> | undefined } | { kind: 'close'; code: number; reason: string };

/** A queue of frames and the close, awaited one at a time. */
class Inbox {
  private readonly items: Received[] = [];
  private readonly waiters: ((r: Received) => void)[] = [];

  push(item: Received): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(timeoutMs: number, what: string): Promise<Received> {
    const item = this.items.shift();
    if (item) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1);
        reject(new Error(`nothing received on ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (r: Received) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(done);
    });
  }

  /** Everything up to and including the close. */
  async untilClose(timeoutMs: number, what: string): Promise<Received[]> {
    const seen: Received[] = [];
    for (;;) {
      const r = await this.next(timeoutMs, what);
      seen.push(r);
      if (r.kind === 'close') return seen;
    }
  }
}

function received(text: string | null): Received {
  let json: Record<string, unknown> | undefined;
  try {
    json = text === null ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    json = undefined;
  }
  return { kind: 'message', text, json };
}

export function supervisorSocket(runDir: string): string {
  return join(runDir, 'supervisor', 'supervisor.sock');
}

export function adminSocket(runDir: string): string {
  return join(runDir, 'admin', 'admin.sock');
}

export function helloText(seq = 1): string {
  return JSON.stringify({ type: 'hello', seq, protocol: 1, nonce: randomBytes(32).toString('base64') });
}

/** A raw ws client in this process (uid 0): for frame-level misbehaviour that needs no particular uid. */
export class RawClient {
  readonly inbox = new Inbox();
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => this.inbox.push(received(isBinary ? null : (data as Buffer).toString('utf8'))));
    ws.on('close', (code, reason) => this.inbox.push({ kind: 'close', code, reason: reason.toString() }));
    ws.on('error', () => undefined);
  }

  static connect(socketPath: string, options: { maxPayload?: number } = {}): Promise<RawClient> {
    const ws = new WebSocket(`ws+unix://${socketPath}:/`, { perMessageDeflate: false, maxPayload: options.maxPayload ?? 1 << 20, handshakeTimeout: 10_000 });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`closed (${code}) before open`)));
    });
  }

  send(frame: string | object): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  next(timeoutMs = 10_000): Promise<Received> {
    return this.inbox.next(timeoutMs, 'raw client');
  }

  untilClose(timeoutMs = 10_000): Promise<Received[]> {
    return this.inbox.untilClose(timeoutMs, 'raw client');
  }

  close(): void {
    this.ws.terminate();
  }
}

/** The goodbye in a list of received frames (the session's last words), or undefined. */
export function goodbyeOf(frames: readonly Received[]): Record<string, unknown> | undefined {
  return frames.flatMap((f) => (f.kind === 'message' && f.json?.type === 'goodbye' ? [f.json] : []))[0];
}

/** The close code reported for a peer connection when the peer process itself exited. */
export const PEER_EXITED = -2;

/** A peer process of another uid, in its own session, speaking raw frames on command. */
export class Peer {
  readonly inboxes = new Map<string, Inbox>();
  private readonly spawned = new Map<string, { resolve: (pid: number) => void; reject: (e: Error) => void }>();
  private readonly opened = new Map<string, (r: Received | { kind: 'open' }) => void>();
  private stdoutBuffer = '';
  readonly ready: Promise<number>;
  stderr = '';

  private constructor(readonly process: ChildProcess) {
    let ready!: (pid: number) => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdoutBuffer += chunk;
      let newline: number;
      while ((newline = this.stdoutBuffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(this.stdoutBuffer.slice(0, newline)) as Record<string, unknown>;
        this.stdoutBuffer = this.stdoutBuffer.slice(newline + 1);
        if (event.ev === 'ready') ready(event.pid as number);
        else if (event.ev === 'spawned') this.spawned.get(event.tag as string)?.resolve(event.pid as number);
        else if (event.ev === 'spawn-error') this.spawned.get(event.tag as string)?.reject(new Error(event.message as string));
        else if (event.ev === 'open') this.settleOpen(event.id as string, { kind: 'open' });
        else if (event.ev === 'message') this.inbox(event.id as string).push(received(event.text as string | null));
        else if (event.ev === 'close') this.closed(event.id as string, { kind: 'close', code: event.code as number, reason: event.reason as string });
        else if (event.ev === 'error') this.closed(event.id as string, { kind: 'close', code: -1, reason: event.message as string });
      }
    });
    process.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (this.stderr += chunk));
    // A peer the helper stopped (SIGTERM) may die before it reports its closes: its exit closes every connection.
    process.once('exit', () => {
      for (const id of this.inboxes.keys()) this.closed(id, { kind: 'close', code: PEER_EXITED, reason: 'the peer process exited' });
    });
  }

  /** Starts the peer as `uid` in a new session (detached: setsid), so the helper's session sweep of this VM reaches nothing of ours. */
  static async start(runDir: string, uid = VM_UID): Promise<Peer> {
    const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', globalThis.process.execPath, RAW_PEER, supervisorSocket(runDir)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const peer = new Peer(child);
    await peer.ready;
    return peer;
  }

  get pid(): number {
    return this.process.pid!;
  }

  private settleOpen(id: string, r: Received | { kind: 'open' }): void {
    const waiter = this.opened.get(id);
    this.opened.delete(id);
    waiter?.(r);
  }

  private closed(id: string, r: Received): void {
    this.settleOpen(id, r);
    this.inbox(id).push(r);
  }

  private inbox(id: string): Inbox {
    let inbox = this.inboxes.get(id);
    if (!inbox) this.inboxes.set(id, (inbox = new Inbox()));
    return inbox;
  }

  private command(c: object): void {
    this.process.stdin!.write(`${JSON.stringify(c)}\n`);
  }

  /** Opens connection `id`; resolves with 'open' or the close that came instead. */
  async open(id: string): Promise<Received | { kind: 'open' }> {
    this.inbox(id);
    const opened = new Promise<Received | { kind: 'open' }>((resolve) => this.opened.set(id, resolve));
    this.command({ op: 'open', id });
    return opened;
  }

  send(id: string, frame: string | object): void {
    this.command({ op: 'send', id, text: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  flood(id: string, frame: string, count: number): void {
    this.command({ op: 'flood', id, text: frame, count });
  }

  next(id: string, timeoutMs = 15_000): Promise<Received> {
    return this.inbox(id).next(timeoutMs, `peer connection ${id}`);
  }

  untilClose(id: string, timeoutMs = 15_000): Promise<Received[]> {
    return this.inbox(id).untilClose(timeoutMs, `peer connection ${id}`);
  }

  /** Starts a child of the peer (its ppid is the peer's pid); resolves with its pid. */
  spawnChild(tag: string, file: string, args: readonly string[], stdin?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.spawned.set(tag, { resolve, reject });
      this.command({ op: 'spawn', tag, file, args, ...(stdin === undefined ? {} : { stdin }) });
    });
  }

  /** A message frame's JSON, or a failure naming what came instead. */
  async nextJson(id: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const r = await this.next(id, timeoutMs);
    if (r.kind !== 'message' || r.json === undefined) throw new Error(`expected a JSON frame on ${id}, got ${JSON.stringify(r)}; peer stderr: ${this.stderr}`);
    return r.json;
  }

  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

/** Starts `file args` as `uid` in its own session; resolves with its pid (setpriv execs, so it is the same pid). */
export async function startVictim(file: string, args: readonly string[], uid: number): Promise<ChildProcess> {
  const child = uid === 0 ? spawn(file, args, { stdio: 'ignore', detached: true }) : spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', file, ...args], { stdio: 'ignore', detached: true });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  // setpriv has exec'd the program once /proc shows it under its own name.
  const name = file.slice(file.lastIndexOf('/') + 1).slice(0, 15);
  for (let i = 0; i < 200 && commOf(child.pid!) !== name; i++) await new Promise((r) => setTimeout(r, 10));
  if (commOf(child.pid!) !== name) throw new Error(`pid ${child.pid} never became ${name} (it is ${commOf(child.pid!)})`);
  return child;
}

function statOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}

export function commOf(pid: number): string | undefined {
  const stat = statOf(pid);
  return stat === undefined ? undefined : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
}

/** /proc/PID/stat field 22, read after the last ')' (fields 3.. follow it). */
export function startTimeOf(pid: number): string {
  const stat = statOf(pid);
  if (stat === undefined) throw new Error(`pid ${pid} is gone`);
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]!;
}

/** The real uid of a process (the Uid: line of /proc/PID/status). */
export function realUidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split('\t')[1]);
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { expectReplyResult, parseHelperMessage, type HelperMessage, type Holder, type ReplyResults } from '../protocol/helper-messages.js';
import { SUPERVISOR_FRAME_BYTES_MAX, NONCE_BYTES, PROTOCOL_VERSION } from '../protocol/limits.js';
import { parsePublicKeyFile, type PublicKeyFile } from '../protocol/public-key-file.js';
import { StatementSequence } from '../protocol/statement-sequence.js';
import { ed25519PublicKey, verifyStatement } from '../protocol/statement-verifier.js';
import type { GrantedStatement, Signed } from '../protocol/statements.js';
import { encodeSupervisorRequest, type SupervisorRequest } from '../protocol/supervisor-requests.js';

/**
 * The supervisor's end of the channel to its host's helper. It trusts only
 * statements signed by the incarnation whose public key root published in the
 * run directory, about its own VM, in its own session, newer than the last.
 * Imports only node: built-ins, ws and protocol/ files without libsodium: it
 * runs under `node --jitless`.
 *
 * Events: 'valid-until' (ms), 'lost' (reason), 'closed' (code, reason).
 */

export const CONNECT_TIMEOUT_MS = 10_000;
export const REPLY_TIMEOUT_MS = 120_000;

export class HelperRequestError extends Error {
  override readonly name = 'HelperRequestError';

  constructor(
    readonly code: string,
    message: string,
    readonly holder: Holder | undefined,
  ) {
    super(message);
  }
}

export class ChannelError extends Error {
  override readonly name = 'ChannelError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The helper's public key file: root-owned and not writable by others, or refused. */
export function readHelperKey(runDir: string): PublicKeyFile {
  const path = join(runDir, 'helper.pub');
  const info = lstatSync(path);
  if (!info.isFile() || info.uid !== 0 || (info.mode & 0o022) !== 0) throw new ChannelError('CHANNEL_KEY_FILE', `${path} must be a regular file owned by root and writable only by it`);
  return parsePublicKeyFile(readFileSync(path));
}

export function supervisorSocketPath(runDir: string): string {
  return join(runDir, 'supervisor', 'supervisor.sock');
}

interface Pending {
  readonly type: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
  readonly timer: NodeJS.Timeout;
}

export class HelperChannel extends EventEmitter {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private sequence: StatementSequence | undefined;
  private vm: string | undefined;
  private closedReason: string | undefined;

  private constructor(
    private readonly ws: WebSocket,
    readonly key: PublicKeyFile,
  ) {
    super();
  }

  /** Connects, proves the helper's identity (signed welcome echoing our nonce, naming our pid) and returns the channel. */
  static async open(runDir: string): Promise<HelperChannel> {
    const key = readHelperKey(runDir);
    const ws = new WebSocket(`ws+unix://${supervisorSocketPath(runDir)}:/`, { maxPayload: SUPERVISOR_FRAME_BYTES_MAX, perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (error) => reject(new ChannelError('CHANNEL_CONNECT', `cannot reach the helper: ${error.message}`)));
    });
    const channel = new HelperChannel(ws, key);
    await channel.hello();
    return channel;
  }

  get incarnation(): string {
    return this.key.incarnation;
  }

  async bind(vm: string, secret?: string): Promise<void> {
    const result = await this.request({ type: 'bind', seq: 0, vm, ...(secret === undefined ? {} : { secret }) }, 'bind');
    if (result.vm !== vm) throw new ChannelError('CHANNEL_WRONG_VM', `the helper bound this session to VM ${result.vm}, not ${vm}`);
    this.vm = vm;
  }

  acquire(): Promise<GrantedStatement> {
    return this.grant('acquire');
  }

  claim(): Promise<GrantedStatement> {
    return this.grant('claim');
  }

  async reportChild(pid: number, startTime: string): Promise<void> {
    await this.request({ type: 'report-child', seq: 0, pid, startTime }, 'report-child');
  }

  async release(): Promise<void> {
    await this.request({ type: 'release', seq: 0 }, 'release');
  }

  close(): void {
    this.ws.close(1000);
  }

  // ---- internals ----

  private async hello(): Promise<void> {
    const nonce = randomBytes(NONCE_BYTES).toString('base64');
    const welcome = new Promise<Signed>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ChannelError('CHANNEL_TIMEOUT', 'no welcome from the helper')), CONNECT_TIMEOUT_MS);
      this.ws.once('message', (data, isBinary) => {
        clearTimeout(timer);
        try {
          const message = parseHelperMessage(data as Buffer, isBinary);
          if (message.type !== 'welcome') throw new ChannelError('CHANNEL_NO_WELCOME', `expected welcome, got ${message.type}${message.type === 'goodbye' ? ` (${message.code}: ${message.reason})` : ''}`);
          resolve(message.statement);
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    this.seq = 1;
    this.ws.send(encodeSupervisorRequest({ type: 'hello', seq: 1, protocol: PROTOCOL_VERSION, nonce }));
    const body = verifyStatement(ed25519PublicKey(this.key.publicKey), await welcome, { incarnation: this.key.incarnation, kinds: ['welcome'] });
    if (body.peerPid !== process.pid) throw new ChannelError('CHANNEL_WRONG_PEER', `the welcome names pid ${body.peerPid}, we are ${process.pid}`);
    this.sequence = StatementSequence.fromWelcome(body, { incarnation: this.key.incarnation, nonce });
    this.ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    this.ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
  }

  private async grant(type: 'acquire' | 'claim'): Promise<GrantedStatement> {
    const result = await this.request({ type, seq: 0 }, type);
    return this.verified(result.statement, 'granted');
  }

  private verified<K extends 'granted' | 'valid-until' | 'lost'>(signed: Signed, kind: K) {
    const body = verifyStatement(ed25519PublicKey(this.key.publicKey), signed, { incarnation: this.key.incarnation, kinds: [kind] });
    this.sequence!.accept(body, this.vm ?? '');
    return body;
  }

  private request<T extends keyof ReplyResults>(request: SupervisorRequest, type: T): Promise<ReplyResults[T]> {
    if (this.closedReason !== undefined) return Promise.reject(new ChannelError('CHANNEL_CLOSED', this.closedReason));
    this.seq += 1;
    const seq = this.seq;
    const wire = encodeSupervisorRequest({ ...request, seq } as SupervisorRequest);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new ChannelError('CHANNEL_TIMEOUT', `no reply to ${type} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.pending.set(seq, { type, resolve: (result) => resolve(expectReplyResult(type, result as never)), reject, timer });
      this.ws.send(wire);
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    let message: HelperMessage;
    try {
      message = parseHelperMessage(data, isBinary);
      this.dispatch(message);
    } catch (error) {
      // A helper that breaks the contract is not trusted further: close, and let the caller fence.
      this.failAll(`protocol error from the helper: ${(error as Error).message}`);
      this.ws.terminate();
    }
  }

  private dispatch(message: HelperMessage): void {
    switch (message.type) {
      case 'reply': {
        const pending = this.pending.get(message.seq);
        if (!pending) throw new ChannelError('CHANNEL_UNEXPECTED_REPLY', `reply to unknown request ${message.seq}`);
        this.pending.delete(message.seq);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new HelperRequestError(message.error.code, message.error.message, message.error.holder));
        return;
      }
      case 'statement': {
        const body = verifyStatement(ed25519PublicKey(this.key.publicKey), message.statement, { incarnation: this.key.incarnation, kinds: ['valid-until', 'lost'] });
        this.sequence!.accept(body, this.vm ?? '');
        if (body.kind === 'valid-until') this.emit('valid-until', body.validUntilMs);
        else if (body.kind === 'lost') this.emit('lost', body.reason);
        return;
      }
      case 'goodbye':
        this.closedReason = `${message.code}: ${message.reason}`;
        return;
      case 'welcome':
        throw new ChannelError('CHANNEL_SECOND_WELCOME', 'a second welcome');
    }
  }

  private onClose(code: number, reason: string): void {
    const why = this.closedReason ?? `closed (${code}${reason ? ` ${reason}` : ''})`;
    this.closedReason = why;
    this.failAll(why);
    this.emit('closed', why);
  }

  private failAll(reason: string): void {
    for (const [seq, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ChannelError('CHANNEL_CLOSED', reason));
      this.pending.delete(seq);
    }
  }
}

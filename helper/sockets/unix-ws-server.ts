import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../daemon/log.js';

/**
 * A WebSocket server on a Unix socket whose peers are identified by the
 * kernel (SO_PEERCRED) the moment they connect, before a byte of theirs is
 * parsed. Connections are capped in total and per uid, the upgrade must
 * finish within a deadline, frames are capped (`maxPayload`) and never
 * compressed. A refused peer loses its connection, never the daemon.
 */

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface UnixWsServerOptions {
  readonly name: string;
  readonly path: string;
  /** Mode of the socket file; the directory's mode is what really guards it. */
  readonly socketMode: number;
  readonly frameBytesMax: number;
  readonly connectionsMax: number;
  readonly connectionsPerUidMax: number;
  readonly handshakeTimeoutMs: number;
  peerOf(socket: Socket): PeerCredentials;
  /** Returns why the peer is refused, or undefined to let it in. */
  admit(peer: PeerCredentials): string | undefined;
  onSession(ws: WebSocket, peer: PeerCredentials): void;
  readonly log: Logger;
}

export class UnixWsServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly peers = new Map<Socket, PeerCredentials>();
  private readonly perUid = new Map<number, number>();

  constructor(private readonly options: UnixWsServerOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.frameBytesMax, perMessageDeflate: false, clientTracking: true });
    this.http = createServer((_request, response) => {
      response.writeHead(426, { connection: 'close' }).end('WebSocket only\n');
    });
    this.http.maxHeadersCount = 32;
    this.http.headersTimeout = options.handshakeTimeoutMs;
    this.http.requestTimeout = options.handshakeTimeoutMs;
    this.http.on('connection', (socket: Socket) => this.onConnection(socket));
    this.http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(request, socket, head));
    this.http.on('clientError', (_error, socket: Socket) => socket.destroy());
  }

  get connections(): number {
    return this.peers.size;
  }

  listen(): Promise<void> {
    removeStaleSocket(this.options.path);
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.path, () => {
        this.http.off('error', reject);
        chmodSync(this.options.path, this.options.socketMode);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    for (const socket of this.peers.keys()) socket.destroy();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    let peer: PeerCredentials;
    try {
      peer = this.options.peerOf(socket);
    } catch (error) {
      this.options.log.warn({ msg: 'socket.peer-unknown', socket: this.options.name, reason: (error as Error).message });
      socket.destroy();
      return;
    }
    const refusal = this.capacityRefusal(peer) ?? this.options.admit(peer);
    if (refusal !== undefined) {
      this.options.log.warn({ msg: 'socket.refused', socket: this.options.name, peer, reason: refusal });
      socket.destroy();
      return;
    }
    this.peers.set(socket, peer);
    this.perUid.set(peer.uid, (this.perUid.get(peer.uid) ?? 0) + 1);
    const deadline = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs);
    socket.once('close', () => {
      clearTimeout(deadline);
      this.peers.delete(socket);
      const left = (this.perUid.get(peer.uid) ?? 1) - 1;
      if (left > 0) this.perUid.set(peer.uid, left);
      else this.perUid.delete(peer.uid);
    });
    (socket as Socket & { vmleaseDeadline?: NodeJS.Timeout }).vmleaseDeadline = deadline;
  }

  private capacityRefusal(peer: PeerCredentials): string | undefined {
    if (this.peers.size >= this.options.connectionsMax) return `too many connections (${this.options.connectionsMax})`;
    if ((this.perUid.get(peer.uid) ?? 0) >= this.options.connectionsPerUidMax) return `too many connections for uid ${peer.uid} (${this.options.connectionsPerUidMax})`;
    return undefined;
  }

  private onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const peer = this.peers.get(socket);
    if (!peer) {
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      clearTimeout((socket as Socket & { vmleaseDeadline?: NodeJS.Timeout }).vmleaseDeadline);
      this.options.onSession(ws, peer);
    });
  }
}

/** A socket file left by a helper that is gone; anything else in its place is an error. */
function removeStaleSocket(path: string): void {
  let info;
  try {
    info = lstatSync(path);
  } catch {
    return;
  }
  if (!info.isSocket()) throw new Error(`${path} exists and is not a socket`);
  unlinkSync(path);
}

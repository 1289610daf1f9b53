import { AssertionError } from 'node:assert';
import type { WebSocket } from 'ws';
import { parseAdminRequest, type AdminReply, type AdminRequest } from '../../protocol/admin-messages.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { Logger } from '../daemon/log.js';
import { asHelperError, HelperError } from '../daemon/helper-error.js';
import { RateLimit } from './rate-limit.js';
import type { PeerCredentials } from './unix-ws-server.js';

/**
 * One admin connection: requests in order (seq 1, 2, ...), one at a time,
 * each answered with a reply. A malformed request ends the connection with
 * the reason; a failing request is answered with its error.
 */

export type AdminHandler = (request: AdminRequest, peer: PeerCredentials) => Promise<Record<string, unknown>>;

export const ADMIN_MESSAGES_PER_SECOND = 20;
export const ADMIN_MESSAGES_BURST = 40;

export function serveAdminSession(ws: WebSocket, peer: PeerCredentials, handle: AdminHandler, log: Logger, nowMs: () => number): void {
  let expectedSeq = 1;
  let busy = false;
  const limit = new RateLimit(ADMIN_MESSAGES_PER_SECOND, ADMIN_MESSAGES_BURST, nowMs());
  const send = (reply: AdminReply) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
  };
  const end = (code: string, reason: string) => {
    log.warn({ msg: 'admin.session-closed', peer, code, reason });
    ws.close(1008, `${code}: ${reason}`.slice(0, 120));
  };
  ws.on('message', (data, isBinary) => {
    if (!limit.take(nowMs())) return end('ADMIN_RATE', 'too many requests');
    let request: AdminRequest;
    try {
      request = parseAdminRequest(data as Buffer, isBinary);
    } catch (error) {
      if (error instanceof ProtocolError) return end(error.code, error.message);
      throw error;
    }
    if (request.seq !== expectedSeq) return end('ADMIN_BAD_SEQ', `expected seq ${expectedSeq}, got ${request.seq}`);
    if (busy) return end('ADMIN_BUSY', 'one request at a time');
    expectedSeq += 1;
    busy = true;
    handle(request, peer).then(
      (result) => send({ type: 'reply', seq: request.seq, ok: true, result }),
      (thrown: unknown) => {
        const error = asHelperError(thrown);
        // A broken assertion is a bug: crash loudly rather than serve on in an unknown state.
        if (error instanceof AssertionError) setImmediate(() => { throw error; });
        if (!(error instanceof HelperError)) log.error({ msg: 'admin.request-crashed', type: request.type, reason: (error as Error).stack ?? String(error) });
        const wire = error instanceof HelperError ? { code: error.code, kind: error.kind, message: error.message, details: error.details } : { code: 'INTERNAL', kind: 'error' as const, message: (error as Error).message };
        send({ type: 'reply', seq: request.seq, ok: false, error: wire });
      },
    ).finally(() => {
      busy = false;
    });
  });
  ws.on('error', (error) => log.warn({ msg: 'admin.socket-error', peer, reason: error.message }));
}

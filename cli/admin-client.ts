import { WebSocket } from 'ws';
import { ADMIN_FRAME_BYTES_MAX, parseAdminReply, type AdminErrorWire, type AdminRequest } from '../protocol/admin-messages.js';
import { runDirLayout } from '../helper/daemon/run-dir.js';

/**
 * One request to the helper's admin socket and its reply. A helper that is
 * not running, or a reply that does not come in time, is a clear error.
 */

export { RUN_DIR_DEFAULT } from './run-dir-default.js';
import { RUN_DIR_DEFAULT } from './run-dir-default.js';
export const ADMIN_REPLY_TIMEOUT_MS = 120_000;

/** The helper answered with an error: its code, kind (busy, refused, storage, error) and message. */
export class AdminRequestError extends Error {
  override readonly name = 'AdminRequestError';

  constructor(readonly wire: AdminErrorWire) {
    super(wire.message);
  }
}

export class HelperUnreachable extends Error {
  override readonly name = 'HelperUnreachable';
}

type RequestBody = AdminRequest extends infer R ? (R extends AdminRequest ? Omit<R, 'seq'> : never) : never;

export function adminRequest(runDir: string, body: RequestBody, timeoutMs = ADMIN_REPLY_TIMEOUT_MS): Promise<Record<string, unknown>> {
  const socket = runDirLayout(runDir).adminSocket;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws+unix://${socket}:/`, { maxPayload: ADMIN_FRAME_BYTES_MAX, perMessageDeflate: false, handshakeTimeout: 10_000 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new HelperUnreachable(`no reply from the helper at ${socket} within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (action: () => void) => {
      clearTimeout(timer);
      ws.close();
      action();
    };
    ws.on('open', () => ws.send(JSON.stringify({ ...body, seq: 1 })));
    ws.on('message', (data, isBinary) => {
      try {
        const reply = parseAdminReply(data as Buffer, isBinary);
        finish(() => (reply.ok ? resolve(reply.result as Record<string, unknown>) : reject(new AdminRequestError(reply.error))));
      } catch (error) {
        finish(() => reject(error));
      }
    });
    ws.on('error', (error) => finish(() => reject(new HelperUnreachable(`cannot reach the helper at ${socket}: ${error.message} (is 'vmlease helper' running, and are you root?)`))));
    ws.on('close', (code, reason) => finish(() => reject(new HelperUnreachable(`the helper closed the connection (${code} ${reason.toString()})`))));
  });
}

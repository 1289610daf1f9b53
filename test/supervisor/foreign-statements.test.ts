import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { peerCredentialsOf } from '../../dist/helper/procs/index.js';
import { encodeHelperMessage } from '../../dist/protocol/helper-messages.js';
import { createIncarnationKey, signStatement, type IncarnationKey } from '../../dist/protocol/incarnation-key.js';
import { encodePublicKeyFile } from '../../dist/protocol/public-key-file.js';
import { parseSupervisorRequest } from '../../dist/protocol/supervisor-requests.js';
import { exitOf, startSupervisor } from '../support/helper-harness.js';
import { workDir } from '../support/tmp.js';

/**
 * A fake helper whose welcome and grant are signed by the incarnation the
 * supervisor trusts (its key is in the run directory), but whose later
 * deadlines are signed by another key. The supervisor must not believe them:
 * the child is killed at the deadline of the genuine grant.
 */

const dir = workDir('foreign-statements');
afterAll(() => dir.remove());

const VM = '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d';
const GRANT_VALID_FOR_MS = 1_500;

function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Serves one supervisor session; every later connection is refused, so no genuine deadline ever comes again. */
function fakeHelper(runDir: string, genuine: IncarnationKey, foreign: IncarnationKey): { server: Server; grantedUntil: () => number } {
  mkdirSync(join(runDir, 'supervisor'), { recursive: true, mode: 0o711 });
  chmodSync(dir.path, 0o755);
  chmodSync(runDir, 0o755);
  chmodSync(join(runDir, 'supervisor'), 0o711);
  writeFileSync(join(runDir, 'helper.pub'), encodePublicKeyFile({ incarnation: genuine.incarnation, publicKey: genuine.publicKey }), { mode: 0o644 });
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  let sessions = 0;
  let grantedUntil = 0;
  server.on('upgrade', (request, socket, head) => {
    if (sessions++ > 0) return socket.destroy();
    const peer = peerCredentialsOf(socket as never);
    wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      const sessionId = 'fake-session';
      let seq = 0;
      const statement = (key: IncarnationKey, body: Record<string, unknown>) => signStatement(key, { incarnation: genuine.incarnation, sessionId, statementSeq: ++seq, ...body } as never);
      ws.on('message', (data, isBinary) => {
        const request = parseSupervisorRequest(data as Buffer, isBinary);
        if (request.type === 'hello') {
          const welcome = signStatement(genuine, { kind: 'welcome', incarnation: genuine.incarnation, sessionId, statementSeq: 0, nonce: request.nonce, peerPid: peer.pid, peerUid: peer.uid, peerGid: peer.gid });
          return ws.send(encodeHelperMessage({ type: 'welcome', statement: welcome }));
        }
        if (request.type === 'bind') return ws.send(encodeHelperMessage({ type: 'reply', seq: request.seq, ok: true, result: { vm: VM } }));
        if (request.type === 'claim') {
          grantedUntil = monotonicMs() + GRANT_VALID_FOR_MS;
          const granted = statement(genuine, { kind: 'granted', vm: VM, leases: [{ lockspace: 'cluster', resource: 'vm', mode: 'exclusive', lver: 1 }], validUntilMs: grantedUntil });
          return ws.send(encodeHelperMessage({ type: 'reply', seq: request.seq, ok: true, result: { statement: granted } }));
        }
        if (request.type === 'report-child') {
          ws.send(encodeHelperMessage({ type: 'reply', seq: request.seq, ok: true, result: {} }));
          // From now on, deadlines far in the future, signed by a key the supervisor does not trust.
          const timer = setInterval(() => {
            if (ws.readyState !== ws.OPEN) return clearInterval(timer);
            const forged = statement(foreign, { kind: 'valid-until', vm: VM, validUntilMs: monotonicMs() + 60_000 });
            ws.send(encodeHelperMessage({ type: 'statement', statement: forged }));
          }, 100);
          return;
        }
        ws.send(encodeHelperMessage({ type: 'reply', seq: request.seq, ok: true, result: {} }));
      });
    });
  });
  server.listen(join(runDir, 'supervisor', 'supervisor.sock'), () => chmodSync(join(runDir, 'supervisor', 'supervisor.sock'), 0o666));
  return { server, grantedUntil: () => grantedUntil };
}

describe('statements not signed by the granting incarnation', () => {
  it('are ignored: the child is killed at the genuine deadline and the supervisor exits 6', async () => {
    const genuine = await createIncarnationKey('genuine.0000000000000001');
    // Same incarnation name, another key pair: what a forger (or a confused helper) would send.
    const foreign = await createIncarnationKey('genuine.0000000000000001');
    const runDir = join(dir.path, 'run');
    const { server, grantedUntil } = fakeHelper(runDir, genuine, foreign);
    try {
      const supervisor = startSupervisor(runDir, VM, ['sleep', '30']);
      const exit = await exitOf(supervisor);
      const exitedAt = monotonicMs();
      expect(grantedUntil(), supervisor.output()).toBeGreaterThan(0);
      expect(exit).toEqual({ code: 6, signal: null });
      // Not before the genuine deadline, and well before any forged one (60 s later).
      expect(exitedAt).toBeGreaterThanOrEqual(grantedUntil());
      expect(exitedAt - grantedUntil()).toBeLessThan(10_000);
      expect(supervisor.output().trim().split('\n').at(-1)).toContain('no fresh lease deadline');
    } finally {
      server.close();
    }
  }, 60_000);
});

import { chmodSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { AssertionError } from 'node:assert';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { peerCredentialsOf, ProcsError } from '../../dist/helper/procs/index.js';
import { asNobody, killAll, NOBODY, pidOf, procfs, sharedTempDir, start, waitForExit } from './support.js';

const dir = sharedTempDir('procs-peer');
afterAll(() => dir.remove());
afterEach(() => killAll());

let serial = 0;

/** A Unix socket server in this process that anyone may connect to; resolves each accepted socket in turn. */
async function server(): Promise<{ path: string; accepted: () => Promise<net.Socket>; close(): void }> {
  const path = join(dir.path, `s${++serial}.sock`);
  const queue: net.Socket[] = [];
  const waiters: ((s: net.Socket) => void)[] = [];
  // Paused: nothing is read, so a peer's exit does not close our end behind the test's back.
  const srv = net.createServer({ pauseOnConnect: true }, (socket) => {
    const waiter = waiters.shift();
    if (waiter) waiter(socket);
    else queue.push(socket);
  });
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  chmodSync(path, 0o777);
  return {
    path,
    accepted: () => new Promise((resolve) => {
      const ready = queue.shift();
      if (ready) resolve(ready);
      else waiters.push(resolve);
    }),
    close: () => srv.close(),
  };
}

/** `node -e` as uid/gid 65534 connecting to `path`; it stays until the server hangs up unless `exitAtOnce`. */
function nobodyClient(path: string, exitAtOnce = false): ReturnType<typeof start> {
  const script = `const c = require('node:net').connect(${JSON.stringify(path)}, () => { ${exitAtOnce ? 'process.exit(0);' : ''} }); c.on('data', () => {}); c.on('close', () => process.exit(0)); c.on('error', () => process.exit(2));`;
  const [command, args] = asNobody(process.execPath, ['-e', script]);
  return start(command, args);
}

describe('peerCredentialsOf', () => {
  it('names the pid, uid and gid of a client running as another user', async () => {
    const srv = await server();
    try {
      const client = nobodyClient(srv.path);
      const socket = await srv.accepted();
      const credentials = peerCredentialsOf(socket);
      expect(credentials).toEqual({ pid: pidOf(client), uid: NOBODY, gid: NOBODY });
      // The same process, seen from /proc (setpriv exec'd node at the same pid).
      expect(procfs.read(credentials.pid)?.uid).toBe(NOBODY);
      socket.end();
      expect(await waitForExit(client)).toEqual({ code: 0, signal: null });
    } finally {
      srv.close();
    }
  });

  it('keeps reporting the pid recorded at connect() after that process has exited', async () => {
    const srv = await server();
    try {
      const client = nobodyClient(srv.path, true);
      const socket = await srv.accepted();
      await waitForExit(client);
      // Kernel fact: SO_PEERCRED is a snapshot. The pid may be free or reused now; /proc must be checked.
      expect(peerCredentialsOf(socket)).toEqual({ pid: pidOf(client), uid: NOBODY, gid: NOBODY });
      expect(procfs.read(pidOf(client))).toBeUndefined();
      socket.destroy();
    } finally {
      srv.close();
    }
  });

  it('refuses a destroyed socket with PROCS_PEER_GONE', async () => {
    const srv = await server();
    try {
      const client = nobodyClient(srv.path);
      const socket = await srv.accepted();
      socket.destroy();
      expect(() => peerCredentialsOf(socket)).toThrow(expect.objectContaining({ code: 'PROCS_PEER_GONE' }));
      await waitForExit(client);
    } finally {
      srv.close();
    }
  });

  it('refuses a TCP socket: the kernel reports pid 0 for a peer it cannot vouch for', async () => {
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((resolve) => tcp.once('connection', resolve));
    const client = net.connect(port, '127.0.0.1');
    const socket = await accepted;
    try {
      expect(() => peerCredentialsOf(socket)).toThrow(expect.objectContaining({ code: 'PROCS_PEER_CREDENTIALS' }));
    } finally {
      client.destroy();
      socket.destroy();
      tcp.close();
    }
  });

  it('turns a failing getsockopt into PROCS_PEER_CREDENTIALS with the kernel text', async () => {
    const srv = await server();
    try {
      const client = net.connect(srv.path);
      const socket = await srv.accepted();
      const fail = (): never => {
        throw Object.assign(new Error('getsockopt(5, SO_PEERCRED) failed: Bad file descriptor'), { code: 'VMLEASE_PEERCRED', errno: 9 });
      };
      let error: unknown;
      try {
        peerCredentialsOf(socket, fail);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ProcsError);
      expect((error as ProcsError).code).toBe('PROCS_PEER_CREDENTIALS');
      expect((error as ProcsError).reason).toBe('getsockopt(5, SO_PEERCRED) failed: Bad file descriptor');
      client.destroy();
      socket.destroy();
    } finally {
      srv.close();
    }
  });

  it('asserts the handle carries a descriptor (a changed Node internal is a bug, not a peer)', () => {
    const fake = { _handle: { fd: -1 }, destroyed: false } as unknown as net.Socket;
    expect(() => peerCredentialsOf(fake, () => ({ pid: 1, uid: 0, gid: 0 }))).toThrow(AssertionError);
  });
});

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { native, type NativePeerCredentials } from '../native/native.js';
import { ProcsError, ProcsErrorCode } from './errors.js';

/**
 * Who is at the other end of a Unix socket, as the kernel recorded it when
 * the peer called connect() (SO_PEERCRED): the pid, uid and gid of the
 * connecting process at that moment. Later setuid()/exit of the peer does not
 * change them, so the pid must still be checked against /proc (start time,
 * uid) before it is trusted for anything.
 */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The kernel call, passed in so tests can fake it; the default is the native addon. */
export type PeerCredentialsSource = (fd: number) => NativePeerCredentials;

function nativeSource(fd: number): NativePeerCredentials {
  return native().peerCredentials(fd);
}

/**
 * The peer credentials of a connected Unix-domain socket.
 * Node keeps the descriptor on the socket's libuv handle (`_handle.fd`, an
 * internal field): it is null once the socket is closed (PROCS_PEER_GONE).
 */
export function peerCredentialsOf(socket: Socket, source: PeerCredentialsSource = nativeSource): PeerCredentials {
  const handle = (socket as any)._handle as { fd?: unknown } | null | undefined;
  if (handle === null || handle === undefined || socket.destroyed) {
    throw new ProcsError(ProcsErrorCode.peerGone, 'socket', 'closed: its peer is unknown');
  }
  const fd = handle.fd;
  assert.ok(typeof fd === 'number' && Number.isInteger(fd) && fd >= 0, `socket handle fd ${String(fd)} is not a descriptor (not a Unix socket, or Node changed)`);
  let credentials: NativePeerCredentials;
  try {
    credentials = source(fd);
  } catch (error) {
    throw new ProcsError(ProcsErrorCode.peerCredentials, `socket fd ${fd}`, (error as Error).message);
  }
  const { pid, uid, gid } = credentials;
  // A peer in another pid namespace (or none) shows as pid 0.
  if (pid === 0) throw new ProcsError(ProcsErrorCode.peerCredentials, `socket fd ${fd}`, 'the peer has no pid in the helper\'s pid namespace');
  assert.ok(Number.isSafeInteger(pid) && pid > 0, `SO_PEERCRED pid ${pid}`);
  return { pid, uid, gid };
}

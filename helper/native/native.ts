import { createRequire } from 'node:module';

/** The native addon built by node-gyp at install (helper/native/vmlease_native.c). */
export interface NativeAddon {
  /** Address of a typed array's first byte. */
  bufferAddress(view: ArrayBufferView): bigint;
  /**
   * The peer of a connected Unix socket as the kernel recorded it at connect()
   * (getsockopt SO_PEERCRED). Throws an Error with code 'VMLEASE_PEERCRED' and
   * a numeric `errno` when the kernel refuses (e.g. EBADF, ENOTSOCK).
   */
  peerCredentials(fd: number): NativePeerCredentials;
  /**
   * pidfd_open(pid, 0): a descriptor (O_CLOEXEC) naming the process that holds
   * `pid` now, even after the pid is reused. The caller closes it. Throws an
   * Error with code 'VMLEASE_PIDFD' and `errno` (ESRCH: no such process).
   */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(pidfd, signo, NULL, 0). Throws like pidfdOpen (ESRCH: the process has exited). */
  pidfdSendSignal(pidfd: number, signo: number): void;
}

/** struct ucred as the kernel fills it. */
export interface NativePeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

let loaded: NativeAddon | undefined;

/**
 * Loads the addon from build/Release at the project root (dist/helper/native
 * is three levels below it). A missing addon is an installation error, never
 * a reason to skip the checks it makes possible.
 */
export function native(): NativeAddon {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  try {
    loaded = require('../../../build/Release/vmlease_native.node') as NativeAddon;
  } catch (error) {
    throw new Error(`vmlease native addon is missing or broken (run 'npm ci' to build it): ${(error as Error).message}`);
  }
  return loaded;
}

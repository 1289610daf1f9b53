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

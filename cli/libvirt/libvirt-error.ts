/**
 * An expected failure of the libvirt integration (the hook, install-libvirt),
 * with a stable code tests and scripts match on and the kind that picks the
 * exit status (SPEC section 9): refused 4, error 1. docs/libvirt.md lists them.
 */
export type LibvirtErrorKind = 'refused' | 'error';

export const LibvirtErrorCode = {
  /** A user or group (DAC label, qemu.conf) that is not in /etc/passwd or /etc/group, or an id out of range. */
  account: 'LIBVIRT_ACCOUNT',
  /** qemu.conf exists but cannot be read. */
  qemuConf: 'LIBVIRT_QEMU_CONF',
  /** --qemu is not an executable file. */
  qemuMissing: 'LIBVIRT_QEMU_MISSING',
  /** --qemu is a vmlease shim (the shim would run itself). */
  qemuIsShim: 'LIBVIRT_QEMU_IS_SHIM',
  /** A hook vmlease did not write is in the way. */
  hookForeign: 'LIBVIRT_HOOK_FOREIGN',
  /** A file vmlease did not write is where the shim goes. */
  shimForeign: 'LIBVIRT_SHIM_FOREIGN',
  /** Reading or writing an installed file failed. */
  installIo: 'LIBVIRT_INSTALL_IO',
} as const;

export type LibvirtErrorCode = (typeof LibvirtErrorCode)[keyof typeof LibvirtErrorCode];

export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';

  constructor(
    readonly code: LibvirtErrorCode,
    readonly kind: LibvirtErrorKind,
    message: string,
  ) {
    super(message);
  }
}

import { readFileSync } from 'node:fs';
import { LibvirtError } from './libvirt-error.js';

/**
 * The `user` and `group` settings of libvirt's qemu.conf: whom qemu runs as
 * when a domain's XML carries no DAC label. Only these two keys are read;
 * libvirt's own parser is not needed for `key = "value"` lines.
 */
export const QEMU_CONF_DEFAULT = '/etc/libvirt/qemu.conf';
const QEMU_CONF_BYTES_MAX = 1024 * 1024;

/** Debian's build of libvirt runs qemu as libvirt-qemu:kvm when qemu.conf says nothing. */
export const QEMU_USER_BUILD_DEFAULT = 'libvirt-qemu';
export const QEMU_GROUP_BUILD_DEFAULT = 'kvm';

export interface QemuAccount {
  readonly user: string;
  readonly group: string;
}

export function readQemuAccount(path: string): QemuAccount {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.byteLength > QEMU_CONF_BYTES_MAX) throw new Error(`more than ${QEMU_CONF_BYTES_MAX} bytes`);
    text = bytes.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { user: QEMU_USER_BUILD_DEFAULT, group: QEMU_GROUP_BUILD_DEFAULT };
    throw new LibvirtError('LIBVIRT_QEMU_CONF', 'error', `cannot read ${path}: ${(error as Error).message}`);
  }
  const setting = (key: string): string | undefined => {
    let found: string | undefined;
    // The last assignment wins, as in libvirt's parser.
    for (const match of text.matchAll(new RegExp(`^[ \\t]*${key}[ \\t]*=[ \\t]*"([^"\\n]*)"[ \\t]*(#.*)?$`, 'gm'))) found = match[1];
    return found;
  };
  return { user: setting('user') ?? QEMU_USER_BUILD_DEFAULT, group: setting('group') ?? QEMU_GROUP_BUILD_DEFAULT };
}

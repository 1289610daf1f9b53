import { readFileSync } from 'node:fs';
import { ID_MAX } from '../../protocol/limits.js';
import { LibvirtError } from './libvirt-error.js';

/**
 * User and group names to numeric ids from /etc/passwd and /etc/group, as
 * libvirt resolves qemu.conf's user/group and a DAC label's names. "+N" is a
 * number (libvirt's syntax). Read directly: no NSS module may run in the hook.
 */
const ACCOUNT_FILE_BYTES_MAX = 16 * 1024 * 1024;

function idFromFile(file: string, name: string, what: string): number {
  if (/^\+[0-9]{1,10}$/.test(name)) {
    const id = Number(name.slice(1));
    if (id > ID_MAX) throw new LibvirtError('LIBVIRT_ACCOUNT', 'refused', `${what} ${name} is above ${ID_MAX}`);
    return id;
  }
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.byteLength > ACCOUNT_FILE_BYTES_MAX) throw new Error(`more than ${ACCOUNT_FILE_BYTES_MAX} bytes`);
    text = bytes.toString('utf8');
  } catch (error) {
    throw new LibvirtError('LIBVIRT_ACCOUNT', 'error', `cannot read ${file}: ${(error as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3 && /^[0-9]{1,10}$/.test(fields[2]!)) return Number(fields[2]);
  }
  throw new LibvirtError('LIBVIRT_ACCOUNT', 'refused', `${what} ${JSON.stringify(name)} is not in ${file}`);
}

export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
}

export const ACCOUNT_FILES: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

export function uidOf(user: string, files: AccountFiles = ACCOUNT_FILES): number {
  return idFromFile(files.passwd, user, 'user');
}

export function gidOf(group: string, files: AccountFiles = ACCOUNT_FILES): number {
  return idFromFile(files.group, group, 'group');
}

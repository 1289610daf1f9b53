import type { DacLabel } from '../../policy/index.js';
import { ACCOUNT_FILES, gidOf, uidOf, type AccountFiles } from './account-ids.js';
import { readQemuAccount } from './qemu-conf.js';

/**
 * The uid/gid the VM's emulator (so its supervisor) runs as, decided at the
 * start hook. Measured with libvirt 9.0 and security_driver="none": the DAC
 * driver still runs, and the XML given to `start begin` carries
 * `<seclabel type='dynamic' model='dac'><label>+UID:+GID</label>`; that is
 * what libvirt will use, so it wins. Without one (not seen with libvirt 9.0,
 * kept for other builds) qemu.conf's user/group are what libvirt applies.
 */
export interface VmAccount {
  readonly uid: number;
  readonly gid: number;
  readonly from: 'seclabel' | 'qemu.conf';
}

export function vmAccount(dac: DacLabel | undefined, qemuConfPath: string, files: AccountFiles = ACCOUNT_FILES): VmAccount {
  if (dac?.kind === 'ids') return { uid: dac.uid, gid: dac.gid, from: 'seclabel' };
  if (dac?.kind === 'names') return { uid: uidOf(dac.user, files), gid: gidOf(dac.group, files), from: 'seclabel' };
  const conf = readQemuAccount(qemuConfPath);
  return { uid: uidOf(conf.user, files), gid: gidOf(conf.group, files), from: 'qemu.conf' };
}

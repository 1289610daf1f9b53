/**
 * What the libvirt qemu hook does for each call libvirt makes
 * (`qemu DOMAIN OPERATION SUB-OPERATION EXTRA`). Measured with libvirt 9.0
 * (docs/libvirt.md): start runs prepare begin, start begin, started begin;
 * stop (and a start that failed after prepare) runs stopped end, release end.
 *
 * - prepare begin: the policy only (the DAC label is not in the XML yet);
 * - start begin: register and acquire, the emulator has not run yet;
 * - stopped end, release end: unregister, fence first (the helper stops any
 *   process of the VM still alive before it releases); both, because a
 *   failed start may skip one and unregistering twice is harmless;
 * - anything else exits 0: at reconnect a failure would make libvirt kill a
 *   running VM, and migration is not built yet (an incoming VM still has to
 *   pass start begin, which refuses a lease held by the source).
 */
export type HookAction = 'check-policy' | 'register' | 'unregister' | 'nothing';

export function hookAction(operation: string, subOperation: string): HookAction {
  if (operation === 'prepare' && subOperation === 'begin') return 'check-policy';
  if (operation === 'start' && subOperation === 'begin') return 'register';
  if ((operation === 'stopped' || operation === 'release') && subOperation === 'end') return 'unregister';
  return 'nothing';
}

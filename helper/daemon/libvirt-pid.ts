import { readFileSync } from 'node:fs';

/**
 * The pid libvirt recorded for a domain's emulator in /run/libvirt/qemu/
 * NAME.pid (root only; written before the emulator is exec'd). With the
 * vmlease emulator shim, that process is our supervisor. Undefined when the
 * file is missing or does not hold one pid.
 */
export const LIBVIRT_PID_FILE_BYTES_MAX = 64;

export function readLibvirtPid(path: string): number | undefined {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.byteLength > LIBVIRT_PID_FILE_BYTES_MAX) return undefined;
    text = bytes.toString('utf8').trim();
  } catch {
    return undefined;
  }
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  return Number(text);
}

import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMULATOR_SHIM_DEFAULT } from '../../policy/host-policy.js';
import { LibvirtError } from './libvirt-error.js';

/**
 * The two files `vmlease install-libvirt` puts on a host: libvirt's qemu hook
 * and the emulator shim, made from the templates in deploy/libvirt/ with the
 * real paths filled in. Each carries a marker line, so uninstall (and a
 * reinstall) touches only files vmlease wrote, never an operator's own hook.
 */
export const PREFIX_DEFAULT = '/usr/local';
export const HOOKS_DIR_DEFAULT = '/etc/libvirt/hooks';
export const QEMU_DEFAULT = '/usr/bin/qemu-system-x86_64';
export const SHIM_RELATIVE = 'libexec/vmlease/qemu-shim';
export const HOOK_NAME = 'qemu';

const MARKER = { hook: '# vmlease-installed: qemu-hook', shim: '# vmlease-installed: qemu-shim' } as const;
/** Enough of a file to find the marker on its second line, without reading a large foreign binary. */
const HEAD_BYTES = 512;

export function shimPath(prefix: string): string {
  return join(prefix, SHIM_RELATIVE);
}

export function hookPath(hooksDir: string): string {
  return join(hooksDir, HOOK_NAME);
}

/** The default prefix must put the shim where the host policy expects it by default. */
if (shimPath(PREFIX_DEFAULT) !== EMULATOR_SHIM_DEFAULT) throw new Error(`install prefix ${PREFIX_DEFAULT} disagrees with the policy's shim ${EMULATOR_SHIM_DEFAULT}`);

/** A value inside single quotes for sh: ' becomes '\''. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

const TEMPLATES_DIR = fileURLToPath(new URL('../../../deploy/libvirt/', import.meta.url));
/** The built command line this module belongs to: dist/cli/main.js. */
export const CLI_PATH = fileURLToPath(new URL('../main.js', import.meta.url));

export interface InstallSettings {
  readonly node: string;
  readonly cli: string;
  readonly qemu: string;
  readonly runDir: string;
  readonly policy: string;
}

export function renderTemplate(name: 'qemu-hook' | 'qemu-shim', settings: InstallSettings): string {
  const template = readFileSync(join(TEMPLATES_DIR, `${name}.in`), 'utf8');
  const values: Record<string, string> = { NODE: settings.node, CLI: settings.cli, QEMU: settings.qemu, RUN_DIR: settings.runDir, POLICY: settings.policy };
  return template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${name}.in: unknown placeholder ${whole}`);
    return shellQuote(value);
  });
}

export type FileState = 'absent' | 'ours' | 'foreign';

export function fileState(path: string, kind: keyof typeof MARKER): FileState {
  let fd: number;
  try {
    const stat = lstatSync(path);
    if (!stat.isFile()) return 'foreign';
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new LibvirtError('LIBVIRT_INSTALL_IO', 'error', `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, head, 0, HEAD_BYTES, 0);
    return head.subarray(0, n).toString('latin1').split('\n').slice(0, 3).some((line) => line.startsWith(MARKER[kind])) ? 'ours' : 'foreign';
  } finally {
    closeSync(fd);
  }
}

/** The real qemu: an executable regular file, and not one of our shims (that would loop). */
export function checkRealQemu(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch (error) {
    throw new LibvirtError('LIBVIRT_QEMU_MISSING', 'error', `--qemu ${path}: not an executable file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (fileState(path, 'shim') === 'ours') throw new LibvirtError('LIBVIRT_QEMU_IS_SHIM', 'error', `--qemu ${path} is a vmlease shim, not the real qemu`);
}

export type Change = 'created' | 'replaced' | 'unchanged';

/**
 * Writes a file atomically (a temporary file renamed over it): libvirtd may
 * run the hook or shim at any moment and must never see half a script. The
 * times are set to now even when unchanged: libvirt caches the emulator's
 * capabilities by its change time, and a reinstall must make it re-probe.
 */
export function installFile(path: string, content: string): Change {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let before: string | undefined;
  try {
    before = readFileSync(path, 'utf8');
  } catch {
    before = undefined;
  }
  const temporary = `${path}.vmlease-new`;
  writeFileSync(temporary, content, { mode: 0o755 });
  renameSync(temporary, path);
  const now = new Date();
  utimesSync(path, now, now);
  return before === undefined ? 'created' : before === content ? 'unchanged' : 'replaced';
}

/** Removes a file vmlease wrote; an absent file is fine; a foreign one is left alone and reported. */
export function removeFile(path: string, kind: keyof typeof MARKER): 'removed' | 'absent' | 'foreign' {
  const state = fileState(path, kind);
  if (state !== 'ours') return state;
  unlinkSync(path);
  return 'removed';
}

/** Removes the shim's own directory (PREFIX/libexec/vmlease) when nothing else is in it. */
export function removeEmptyShimDir(prefix: string): boolean {
  try {
    rmdirSync(dirname(shimPath(prefix)));
    return true;
  } catch {
    return false;
  }
}

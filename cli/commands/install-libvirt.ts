import { isAbsolute, resolve } from 'node:path';
import { EMULATOR_SHIM_DEFAULT } from '../../policy/host-policy.js';
import { parseCommandArgs, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { RUN_DIR_DEFAULT } from '../run-dir-default.js';
import { LibvirtError } from '../libvirt/libvirt-error.js';
import { checkRealQemu, CLI_PATH, fileState, hookPath, HOOKS_DIR_DEFAULT, installFile, PREFIX_DEFAULT, QEMU_DEFAULT, removeEmptyShimDir, removeFile, renderTemplate, shimPath } from '../libvirt/installed-files.js';
import { POLICY_FILE_DEFAULT } from './policy-check.js';

/**
 * `vmlease install-libvirt` and `vmlease uninstall-libvirt`: put the qemu
 * hook and the emulator shim on a libvirt host (and take them away again),
 * touching nothing that vmlease did not write.
 */

function absolute(value: string | boolean | undefined, fallback: string, what: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') throw new UsageError(`${what} needs a path`);
  return isAbsolute(value) ? value : resolve(value);
}

function report(json: boolean, result: Record<string, unknown>, lines: readonly string[]): number {
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${lines.join('\n')}\n`);
  return ExitStatus.ok;
}

export const installLibvirtCommand: Command = {
  name: 'install-libvirt',
  summary: "install libvirt's qemu hook and the emulator shim (root)",
  usage: [
    'usage: vmlease install-libvirt [--prefix DIR] [--qemu PATH] [--hooks-dir DIR] [--run-dir DIR] [--policy FILE] [--json]',
    '',
    'Installs two small sh scripts that run this vmlease (this node binary and this build):',
    `  HOOKS-DIR/qemu            libvirt's qemu hook (vmlease libvirt-hook): prepare checks the policy,`,
    '                            start registers the VM and acquires its leases, stop releases them',
    `  PREFIX/libexec/vmlease/qemu-shim   the <emulator> for protected domains: runs the real qemu under`,
    '                            `vmlease supervise` (capability probes go straight to qemu)',
    'and sets the shim\'s times to now, so libvirt probes its capabilities again. An existing hook that',
    'vmlease did not write is never replaced: the command fails and says so (merge it by hand, or move',
    'it to HOOKS-DIR/qemu.d/). libvirtd reads its hooks only when it starts: restart it after the first',
    'install. Domains use the shim as <emulator>; the policy refuses other emulators.',
    '',
    `  --prefix DIR     where the shim goes (default ${PREFIX_DEFAULT}: ${EMULATOR_SHIM_DEFAULT}, the policy's`,
    '                   default emulatorShim; another prefix needs emulatorShim in the policy)',
    `  --qemu PATH      the real qemu the shim runs (default ${QEMU_DEFAULT})`,
    `  --hooks-dir DIR  libvirt's hooks directory (default ${HOOKS_DIR_DEFAULT})`,
    `  --run-dir DIR    the helper's run directory the hook and shim use (default ${RUN_DIR_DEFAULT})`,
    `  --policy FILE    the host policy the prepare hook checks (default ${POLICY_FILE_DEFAULT})`,
    '  --json           print what changed as JSON',
    '',
    'Exit status: 0 installed, 1 error (a foreign hook, no real qemu, a file not writable), 2 usage.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { prefix: { type: 'string' }, qemu: { type: 'string' }, 'hooks-dir': { type: 'string' }, 'run-dir': { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const prefix = absolute(values.prefix, PREFIX_DEFAULT, '--prefix');
    const hooksDir = absolute(values['hooks-dir'], HOOKS_DIR_DEFAULT, '--hooks-dir');
    const settings = {
      node: process.execPath,
      cli: CLI_PATH,
      qemu: absolute(values.qemu, QEMU_DEFAULT, '--qemu'),
      runDir: absolute(values['run-dir'], RUN_DIR_DEFAULT, '--run-dir'),
      policy: absolute(values.policy, POLICY_FILE_DEFAULT, '--policy'),
    };
    const hook = hookPath(hooksDir);
    const shim = shimPath(prefix);
    // Every check before any write: a refusal leaves the host as it was.
    checkRealQemu(settings.qemu);
    if (fileState(hook, 'hook') === 'foreign') throw new LibvirtError('LIBVIRT_HOOK_FOREIGN', 'error', `${hook} exists and was not installed by vmlease; not replacing it (merge it by hand, or move it to ${hooksDir}/qemu.d/ where libvirt also runs hooks)`);
    if (fileState(shim, 'shim') === 'foreign') throw new LibvirtError('LIBVIRT_SHIM_FOREIGN', 'error', `${shim} exists and was not installed by vmlease; not replacing it`);
    const hookContent = renderTemplate('qemu-hook', settings);
    const shimContent = renderTemplate('qemu-shim', settings);
    let shimChange;
    let hookChange;
    try {
      shimChange = installFile(shim, shimContent);
      hookChange = installFile(hook, hookContent);
    } catch (error) {
      throw new LibvirtError('LIBVIRT_INSTALL_IO', 'error', (error as Error).message);
    }
    const notes = [
      ...(hookChange === 'created' ? ['libvirtd reads hooks only when it starts: restart libvirtd now'] : []),
      ...(shim !== EMULATOR_SHIM_DEFAULT ? [`the shim is not at the policy's default: set "emulatorShim": ${JSON.stringify(shim)} in ${settings.policy}`] : []),
    ];
    return report(values.json === true, { hook: { path: hook, change: hookChange }, shim: { path: shim, change: shimChange }, ...settings, notes }, [
      `hook ${hook}: ${hookChange}`,
      `shim ${shim}: ${shimChange} (times set to now: libvirt re-probes its capabilities)`,
      `they run ${settings.node} ${settings.cli}; real qemu ${settings.qemu}; helper run dir ${settings.runDir}; policy ${settings.policy}`,
      ...notes,
    ]);
  },
};

export const uninstallLibvirtCommand: Command = {
  name: 'uninstall-libvirt',
  summary: 'remove the qemu hook and emulator shim that install-libvirt wrote (root)',
  usage: [
    'usage: vmlease uninstall-libvirt [--prefix DIR] [--hooks-dir DIR] [--json]',
    '',
    'Removes HOOKS-DIR/qemu and PREFIX/libexec/vmlease/qemu-shim if vmlease wrote them (each carries a',
    'marker line), and PREFIX/libexec/vmlease if that is then empty. A file vmlease did not write is',
    'left alone and reported. Domains whose <emulator> is the shim cannot start afterwards; running',
    'ones keep running (their supervisors are already running).',
    '',
    `  --prefix DIR     as given to install-libvirt (default ${PREFIX_DEFAULT})`,
    `  --hooks-dir DIR  as given to install-libvirt (default ${HOOKS_DIR_DEFAULT})`,
    '  --json           print what changed as JSON',
    '',
    'Exit status: 0 done (also when nothing was installed), 1 error, 2 usage.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { prefix: { type: 'string' }, 'hooks-dir': { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const prefix = absolute(values.prefix, PREFIX_DEFAULT, '--prefix');
    const hook = hookPath(absolute(values['hooks-dir'], HOOKS_DIR_DEFAULT, '--hooks-dir'));
    const shim = shimPath(prefix);
    let hookChange;
    let shimChange;
    try {
      hookChange = removeFile(hook, 'hook');
      shimChange = removeFile(shim, 'shim');
    } catch (error) {
      if (error instanceof LibvirtError) throw error;
      throw new LibvirtError('LIBVIRT_INSTALL_IO', 'error', (error as Error).message);
    }
    const shimDirRemoved = shimChange === 'removed' && removeEmptyShimDir(prefix);
    const say = (path: string, change: string) => `${path}: ${change === 'foreign' ? 'left alone (not written by vmlease)' : change === 'absent' ? 'not installed' : 'removed'}`;
    return report(values.json === true, { hook: { path: hook, change: hookChange }, shim: { path: shim, change: shimChange }, shimDirRemoved }, [say(`hook ${hook}`, hookChange), say(`shim ${shim}`, shimChange)]);
  },
};

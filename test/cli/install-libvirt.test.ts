/**
 * `vmlease install-libvirt` / `uninstall-libvirt` into a temporary prefix and
 * hooks directory: the files carry the real paths, a reinstall sets the shim's
 * times (libvirt re-probes capabilities by them), a hook vmlease did not write
 * is never replaced or removed, and the shim passes capability probes straight
 * to the real qemu in the same process.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

let dir: ReturnType<typeof workDir>;
let prefix: string;
let hooks: string;
let fakeQemu: string;

beforeEach(() => {
  dir = workDir('install-libvirt');
  prefix = join(dir.path, 'prefix');
  hooks = join(dir.path, 'hooks');
  // A stand-in for qemu that shows the pid it runs as and its arguments.
  fakeQemu = join(dir.path, "fake qemu's");
  writeFileSync(fakeQemu, '#!/bin/sh\necho "qemu pid $$ args $*"\n', { mode: 0o755 });
});
afterEach(() => dir.remove());

const shim = () => join(prefix, 'libexec/vmlease/qemu-shim');
const hook = () => join(hooks, 'qemu');
const install = (...extra: string[]) => vmlease(['install-libvirt', '--prefix', prefix, '--hooks-dir', hooks, '--qemu', fakeQemu, '--run-dir', '/run/test-vmlease', '--policy', '/etc/test/policy.json', ...extra]);
const uninstall = (...extra: string[]) => vmlease(['uninstall-libvirt', '--prefix', prefix, '--hooks-dir', hooks, ...extra]);

describe('vmlease install-libvirt', () => {
  it('installs the hook and the shim, executable, with this node, this CLI, the real qemu, run dir and policy filled in', () => {
    const result = install('--json');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ hook: { path: hook(), change: 'created' }, shim: { path: shim(), change: 'created' }, node: process.execPath, cli: CLI, qemu: fakeQemu, runDir: '/run/test-vmlease', policy: '/etc/test/policy.json' });
    expect(report.notes).toEqual(['libvirtd reads hooks only when it starts: restart libvirtd now', `the shim is not at the policy's default: set "emulatorShim": ${JSON.stringify(shim())} in /etc/test/policy.json`]);
    expect(statSync(hook()).mode & 0o777).toBe(0o755);
    expect(statSync(shim()).mode & 0o777).toBe(0o755);
    const hookText = readFileSync(hook(), 'utf8');
    expect(hookText.split('\n').at(-2)).toBe(`exec '${process.execPath}' '${CLI}' libvirt-hook --run-dir '/run/test-vmlease' --policy '/etc/test/policy.json' -- "$@"`);
    const shimText = readFileSync(shim(), 'utf8');
    // A quote in a path is quoted for sh, not a way out of the string.
    expect(shimText).toContain(`REAL_QEMU='${fakeQemu.replace("'", "'\\''")}'\n`);
    expect(shimText).toContain(`exec '${process.execPath}' --jitless '${CLI}' supervise --vm "$uuid" --run-dir '/run/test-vmlease' -- "$REAL_QEMU" "$@"`);
  });

  it('the shim runs a capability probe (no -name guest=) as the real qemu, in its own process, with every argument', () => {
    expect(install().status).toBe(0);
    const probe = spawnSync('sh', ['-c', `echo "shell $$"; exec '${shim()}' -S -no-user-config -machine 'none,accel=tcg' -qmp unix:/x,server=on,wait=off -daemonize`], { encoding: 'utf8', timeout: 10_000 });
    const [shell, qemu] = probe.stdout.trim().split('\n') as [string, string];
    expect(qemu).toBe(`qemu pid ${shell.split(' ')[1]} args -S -no-user-config -machine none,accel=tcg -qmp unix:/x,server=on,wait=off -daemonize`);
    expect(probe.status).toBe(0);
  });

  it('the shim refuses a domain start without -uuid instead of running qemu without its leases', () => {
    expect(install().status).toBe(0);
    const start = spawnSync(shim(), ['-name', 'guest=web,debug-threads=on', '-S'], { encoding: 'utf8', timeout: 10_000 });
    expect([start.status, start.stdout, start.stderr]).toEqual([1, '', 'vmlease qemu-shim: a domain start without -uuid; refusing to run qemu without its leases\n']);
  });

  it('a reinstall reports unchanged files and sets the shim times to now (libvirt re-probes capabilities)', () => {
    expect(install().status).toBe(0);
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(shim(), past, past);
    const result = install();
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n').slice(0, 2)).toEqual([`hook ${hook()}: unchanged`, `shim ${shim()}: unchanged (times set to now: libvirt re-probes its capabilities)`]);
    expect(Math.abs(statSync(shim()).mtimeMs - Date.now())).toBeLessThan(60_000);
    expect(result.stdout).not.toContain('restart libvirtd');
  });

  it('refuses to replace a hook vmlease did not write, names it, and writes nothing (exit 1)', () => {
    mkdirSync(hooks);
    writeFileSync(hook(), '#!/bin/sh\n# the operator\'s own hook\nexit 0\n', { mode: 0o755 });
    const result = install();
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`vmlease install-libvirt: LIBVIRT_HOOK_FOREIGN: ${hook()} exists and was not installed by vmlease; not replacing it (merge it by hand, or move it to ${hooks}/qemu.d/ where libvirt also runs hooks)\n`);
    expect(readFileSync(hook(), 'utf8')).toBe("#!/bin/sh\n# the operator's own hook\nexit 0\n");
    expect(existsSync(shim())).toBe(false);
  });

  it('refuses a --qemu that is not executable, or that is a vmlease shim (it would run itself)', () => {
    chmodSync(fakeQemu, 0o644);
    const missing = install();
    expect([missing.status, missing.stderr]).toEqual([1, `vmlease install-libvirt: LIBVIRT_QEMU_MISSING: --qemu ${fakeQemu}: not an executable file (EACCES)\n`]);
    chmodSync(fakeQemu, 0o755);
    expect(install().status).toBe(0);
    const loop = vmlease(['install-libvirt', '--prefix', prefix, '--hooks-dir', hooks, '--qemu', shim()]);
    expect([loop.status, loop.stderr]).toEqual([1, `vmlease install-libvirt: LIBVIRT_QEMU_IS_SHIM: --qemu ${shim()} is a vmlease shim, not the real qemu\n`]);
  });

  it('uninstall removes only what install wrote, and the then empty libexec/vmlease; a foreign hook stays', () => {
    expect(install().status).toBe(0);
    writeFileSync(join(prefix, 'libexec', 'other-tool'), 'x');
    const removed = uninstall('--json');
    expect(removed.status).toBe(0);
    expect(JSON.parse(removed.stdout)).toEqual({ hook: { path: hook(), change: 'removed' }, shim: { path: shim(), change: 'removed' }, shimDirRemoved: true });
    expect(existsSync(join(prefix, 'libexec', 'vmlease'))).toBe(false);
    expect(existsSync(join(prefix, 'libexec', 'other-tool'))).toBe(true);
    writeFileSync(hook(), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const again = uninstall();
    expect([again.status, again.stdout]).toEqual([0, `hook ${hook()}: left alone (not written by vmlease)\nshim ${shim()}: not installed\n`]);
    expect(existsSync(hook())).toBe(true);
  });

  it('tells its options in --help, and refuses stray arguments as usage errors (exit 2)', () => {
    const help = vmlease(['install-libvirt', '--help']);
    expect(help.status).toBe(0);
    for (const option of ['--prefix DIR', '--qemu PATH', '--hooks-dir DIR', '--run-dir DIR', '--policy FILE', '--json']) expect(help.stdout).toContain(option);
    expect(help.stdout).toContain('/usr/local/libexec/vmlease/qemu-shim');
    const stray = vmlease(['install-libvirt', 'now']);
    expect([stray.status, stray.stderr]).toEqual([2, `vmlease install-libvirt: unexpected argument "now" (see 'vmlease install-libvirt --help')\n`]);
    const unknown = vmlease(['uninstall-libvirt', '--qemu', '/x']);
    expect(unknown.status).toBe(2);
  });
});

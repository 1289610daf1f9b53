/** The command-line tool proper, loaded by main.ts once the start-up guards ran. */
import { AssertionError } from 'node:assert';
import { FormatError } from '../helper/format/index.js';
import { InitRefusal } from '../helper/areas/index.js';
import { StorageError } from '../helper/storage/index.js';
import type { Command } from './command.js';
import { dumpCommand } from './commands/dump.js';
import { initLockspaceCommand, initResourceCommand } from './commands/init-area.js';
import { initLeaseDirectoryCommand } from './commands/init-lease-directory.js';
import { helperCommand } from './commands/helper.js';
import { addLockspaceCommand, hostsCommand, registerCommand, removeLockspaceCommand, statusCommand, unregisterCommand } from './commands/admin-commands.js';
import { superviseCommand } from './commands/supervise.js';
import { policyCommand } from './commands/policy-check.js';
import { libvirtHookCommand } from './commands/libvirt-hook.js';
import { installLibvirtCommand, uninstallLibvirtCommand } from './commands/install-libvirt.js';
import { LibvirtError } from './libvirt/libvirt-error.js';
import { AdminRequestError, HelperUnreachable } from './admin-client.js';
import { ConfigError } from '../helper/config/index.js';
import { HelperError } from '../helper/daemon/helper-error.js';
import { DiskError } from '../helper/disks/index.js';
import { ExitStatus, UsageError } from './exit-status.js';

const commands: readonly Command[] = [initLockspaceCommand, initResourceCommand, initLeaseDirectoryCommand, dumpCommand, helperCommand, registerCommand, unregisterCommand, statusCommand, hostsCommand, addLockspaceCommand, removeLockspaceCommand, superviseCommand, policyCommand, installLibvirtCommand, uninstallLibvirtCommand, libvirtHookCommand];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: vmlease COMMAND [ARGS...]        vmlease COMMAND --help',
    '',
    'vmlease keeps virtual machines on shared storage exclusive with leases on that storage.',
    'Commands available in this build:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit status: 0 ok, 1 error, 2 usage, 3 lease busy, 4 refused, 5 storage error, 6 lease lost.',
  ].join('\n');
}

/** One line on stderr naming what failed and why; the exit status says what kind of failure. */
function fail(name: string, error: unknown): number {
  const line = (text: string): void => void process.stderr.write(`vmlease ${name}: ${text}\n`);
  if (error instanceof UsageError) {
    line(`${error.message} (see 'vmlease ${name} --help')`);
    return ExitStatus.usage;
  }
  if (error instanceof StorageError) {
    line(`storage error: ${error.code}: ${error.message}`);
    return ExitStatus.storage;
  }
  if (error instanceof FormatError) {
    line(`bad lease record: ${error.code}: ${error.message}`);
    return ExitStatus.storage;
  }
  if (error instanceof InitRefusal) {
    line(`refused: ${error.message}; use --force to overwrite it`);
    return ExitStatus.error;
  }
  if (error instanceof AdminRequestError || error instanceof HelperError) {
    const wire = error instanceof AdminRequestError ? error.wire : error;
    line(`${wire.code}: ${wire.message}`);
    return { busy: ExitStatus.busy, refused: ExitStatus.refused, storage: ExitStatus.storage, error: ExitStatus.error }[wire.kind] ?? ExitStatus.error;
  }
  if (error instanceof DiskError) {
    line(`${error.code}: ${error.message}`);
    return { refused: ExitStatus.refused, storage: ExitStatus.storage, error: ExitStatus.error }[error.kind];
  }
  if (error instanceof LibvirtError) {
    line(`${error.code}: ${error.message}`);
    return error.kind === 'refused' ? ExitStatus.refused : ExitStatus.error;
  }
  if (error instanceof ConfigError) {
    line(`bad configuration: ${error.message}`);
    return ExitStatus.error;
  }
  if (error instanceof HelperUnreachable) {
    line(error.message);
    return ExitStatus.error;
  }
  if (error instanceof AssertionError) throw error; // a bug: crash loudly with the stack
  line(`error: ${(error as Error).message}`);
  return ExitStatus.error;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    process.stderr.write(`${overview()}\n`);
    return ExitStatus.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${overview()}\n`);
    return ExitStatus.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`vmlease: unknown command ${JSON.stringify(name)}\n${overview()}\n`);
    return ExitStatus.usage;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return ExitStatus.ok;
  }
  try {
    return await command.run(args);
  } catch (error) {
    return fail(name, error);
  }
}

/** Resolves once everything written so far has left the process (stdout to a pipe is asynchronous). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

// Exit explicitly, after flushing: worker threads must not keep the tool
// alive. A thread stuck in a hung system call still holds the process (even
// SIGKILL waits for it) until the kernel completes or fails that I/O; the
// error has been printed by then.
async function exit(status: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(status);
}

main(process.argv.slice(2)).then(exit, (error: unknown) => {
  process.stderr.write(`vmlease: internal error: ${(error as Error).stack ?? String(error)}\n`);
  return exit(ExitStatus.error);
});

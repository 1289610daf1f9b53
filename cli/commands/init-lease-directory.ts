import { resolve } from 'node:path';
import { nameProblem } from '../../helper/format/index.js';
import { initLeaseDirectory, LEASE_DIRECTORY_MARKER, markerText } from '../../helper/disks/index.js';
import { parseCommandArgs, TOOL_IO_TIMEOUT_MS, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { nonEmpty, splitLeaseString } from '../lease-string.js';

/** `vmlease init-lease-directory LS:DIR`: marks a directory (normally on the shared file system) for auto lease files of lockspace LS. */

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { 'allow-local-fs': { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError(`expected one LS:DIR, got ${positionals.length} arguments`);
  const fields = splitLeaseString(positionals[0]!, 'LS:DIR');
  if (fields.length !== 2) throw new UsageError(`${JSON.stringify(positionals[0])} has ${fields.length} fields, expected LS:DIR (write ':' inside a path as '\\:')`);
  const [lockspace, dirText] = fields as [string, string];
  const problem = nameProblem(lockspace);
  if (problem !== undefined) throw new UsageError(`lockspace name ${JSON.stringify(lockspace)} ${problem}`);
  const dir = resolve(nonEmpty(dirText, 'DIR'));
  const outcome = await initLeaseDirectory(dir, lockspace, { stepTimeoutMs: TOOL_IO_TIMEOUT_MS, allowLocalFileSystem: values['allow-local-fs'] === true });
  process.stdout.write(
    outcome.created
      ? `marked ${dir} as a lease directory of lockspace ${lockspace} (${outcome.markerPath})\n`
      : `${dir} already is a lease directory of lockspace ${lockspace}; nothing written\n`,
  );
  return ExitStatus.ok;
}

export const initLeaseDirectoryCommand: Command = {
  name: 'init-lease-directory',
  summary: 'mark a directory as the home of auto lease files of a lockspace',
  usage: `usage: vmlease init-lease-directory [--allow-local-fs] LS:DIR

Writes the marker ${LEASE_DIRECTORY_MARKER} into the existing directory DIR,
naming lockspace LS: one line, exactly
  ${markerText('LS').trim()}
(mode 0644, fsynced, then linked into place so no host ever sees half of it).
Run it once, on one host, with the shared file system mounted. Auto disk
lease files are created only in a directory whose marker names their
lockspace, so an unmounted mount point (an empty local directory) is never
used as if it were the shared one.

DIR must be on a shared file system: one statfs(2) reports as a local type
(ext2/3/4, xfs, btrfs, tmpfs, overlayfs, ramfs, f2fs, zfs, ...) is refused,
because that is what an unmounted mount point is; a marker there would be
trusted by this host whenever the mount is missing. Types not known to be
local (NFS, CIFS, cluster file systems, FUSE) are accepted.

  --allow-local-fs  accept DIR on a local file system. Only for a single
                    host: its lease files are seen by no other host. The
                    host policy must then set
                    autoDiskLeases.allowLocalDirectory too, or the helper
                    refuses the directory all the same.

DIR is never created, and a symbolic link as DIR is refused. Running the
command again for the same lockspace changes nothing; a marker of another
lockspace, or a marker that is not exactly the format above, is refused and
left as it is. A ':' inside DIR is written '\\:', a backslash '\\\\'.
Each file-system call has a ${TOOL_IO_TIMEOUT_MS / 1000} s deadline (a hung NFS server).

Exit status: 0 ok (marked, or already marked for LS), 1 error, 2 usage,
4 refused (DIR missing, a symlink, not a directory, on a local file system
without --allow-local-fs, marked for another
lockspace or with a malformed marker), 5 storage error (a call failed or did
not answer in time).`,
  run,
};

import { readdirSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { readBounded } from './bounded-read.js';
import { ProcsError, ProcsErrorCode } from './errors.js';

/** Limits of a v1 walk (libvirt makes a few child groups per VM: emulator, vcpuN, iothreadN). */
export const CGROUP_MAX_GROUPS = 4096;
export const CGROUP_MAX_DEPTH = 16;
const EVENTS_MAX_BYTES = 4096;
/** One byte tells an empty list from a non-empty one. */
const LIST_PROBE_BYTES = 64;

/**
 * Whether no process runs in the cgroup at `path` or any cgroup below it.
 * Zombies do not count (measured on 6.18: an exited, unreaped process is not
 * listed in a v1 `tasks`; v2 counts it out of `populated`).
 *
 * - cgroup v2 (a `cgroup.events` file): its `populated` line, which covers
 *   the whole subtree;
 * - cgroup v1 (`tasks`, no `cgroup.events`): `tasks` of the group and of every
 *   group below it (at most CGROUP_MAX_GROUPS groups, CGROUP_MAX_DEPTH deep),
 *   since v1 lists a group's own threads only.
 *
 * A path that is not a cgroup directory is a ProcsError (PROCS_NOT_CGROUP),
 * never "empty": a mistyped path must not release a lease.
 */
export function cgroupEmpty(path: string): boolean {
  const events = readBounded(join(path, 'cgroup.events'), EVENTS_MAX_BYTES);
  if (events !== undefined) return !populated(join(path, 'cgroup.events'), events.bytes.toString('utf8'), events.truncated);
  const budget = { groups: 0 };
  const own = listHasEntries(path);
  if (own === undefined) {
    throw new ProcsError(ProcsErrorCode.notCgroup, path, 'has neither cgroup.events, cgroup.procs nor tasks');
  }
  return !own && !v1SubtreePopulated(path, 0, budget);
}

/** Parses cgroup.events ("populated 0|1\nfrozen 0|1\n"). */
export function populated(path: string, text: string, truncated: boolean): boolean {
  if (truncated) throw new ProcsError(ProcsErrorCode.cgroupEventsMalformed, path, `longer than ${EVENTS_MAX_BYTES} bytes`);
  const lines = text.split('\n').filter((line) => line.startsWith('populated'));
  if (lines.length !== 1) throw new ProcsError(ProcsErrorCode.cgroupEventsMalformed, path, `${lines.length} 'populated' lines`);
  const line = lines[0];
  if (line === 'populated 0') return false;
  if (line === 'populated 1') return true;
  throw new ProcsError(ProcsErrorCode.cgroupEventsMalformed, path, `bad line '${String(line).slice(0, 80)}'`);
}

/** Whether tasks (v1) or cgroup.procs lists anything; undefined when neither file exists. */
function listHasEntries(dir: string): boolean | undefined {
  for (const name of ['tasks', 'cgroup.procs']) {
    const read = readBounded(join(dir, name), LIST_PROBE_BYTES);
    if (read !== undefined) return read.bytes.length > 0;
  }
  return undefined;
}

function v1SubtreePopulated(dir: string, depth: number, budget: { groups: number }): boolean {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    // A child group removed during the walk was empty: rmdir of a cgroup needs that.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ProcsError(ProcsErrorCode.readFailed, dir, (error as Error).message);
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const child = join(dir, entry.name);
    budget.groups += 1;
    if (budget.groups > CGROUP_MAX_GROUPS) throw new ProcsError(ProcsErrorCode.readFailed, child, `more than ${CGROUP_MAX_GROUPS} cgroups below the VM's`);
    if (depth + 1 > CGROUP_MAX_DEPTH) throw new ProcsError(ProcsErrorCode.readFailed, child, `cgroups nested deeper than ${CGROUP_MAX_DEPTH}`);
    if (listHasEntries(child) === true) return true;
    if (v1SubtreePopulated(child, depth + 1, budget)) return true;
  }
  return false;
}

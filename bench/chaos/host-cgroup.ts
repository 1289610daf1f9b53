import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One simulated host's processes, as a cgroup in the blkio hierarchy (v1
 * `blkio`, or v2 with the `io` controller): every process the harness
 * starts "on" the host joins it before it execs (descendants follow), so the
 * cgroup is the host. It serves three purposes: the watchdog emulator and a
 * host kill SIGKILL everything listed in cgroup.procs; the host's storage is
 * stalled or slowed by I/O throttling of this cgroup on the shared devices;
 * and a reset is complete only when cgroup.procs is empty (a process in D
 * state, with a write still in the kernel, is still listed).
 */

const V1_ROOT = '/sys/fs/cgroup/blkio';
const V2_ROOTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
/** A cgroup.procs this long means something is forking out of control. */
const PIDS_MAX = 100_000;

export type CgroupFlavour = 'v1' | 'v2';

export interface CgroupRoot {
  readonly flavour: CgroupFlavour;
  /** The harness's own directory (removed at the end). */
  readonly path: string;
}

/** Creates the harness's parent cgroup, named after it (`name` must be unique to this run). */
export function makeCgroupRoot(name: string): CgroupRoot {
  if (existsSync(join(V1_ROOT, 'blkio.throttle.read_bps_device'))) {
    const path = join(V1_ROOT, name);
    mkdirSync(path);
    return { flavour: 'v1', path };
  }
  const v2 = V2_ROOTS.find((root) => existsSync(join(root, 'cgroup.controllers')) && readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io'));
  if (!v2) throw new Error('no cgroup I/O throttling here: neither cgroup v1 blkio nor cgroup v2 io is available');
  writeFileSync(join(v2, 'cgroup.subtree_control'), '+io');
  const path = join(v2, name);
  mkdirSync(path);
  writeFileSync(join(path, 'cgroup.subtree_control'), '+io');
  return { flavour: 'v2', path };
}

export class HostCgroup {
  readonly path: string;

  constructor(
    private readonly root: CgroupRoot,
    name: string,
  ) {
    this.path = join(root.path, name);
    mkdirSync(this.path, { recursive: true });
  }

  pids(): number[] {
    let text: string;
    try {
      text = readFileSync(join(this.path, 'cgroup.procs'), 'utf8');
    } catch {
      return [];
    }
    const pids = text.split('\n').filter((l) => l !== '').map(Number);
    if (pids.length > PIDS_MAX) throw new Error(`${this.path}: ${pids.length} processes`);
    return pids;
  }

  /** SIGKILLs every listed process once; returns how many were listed. ESRCH is fine (pid 1 of a namespace may reap first). */
  killAll(): number {
    const pids = this.pids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    return pids.length;
  }

  /** Limits (bytes/s) or unlimits (undefined) this host's reads and writes on a device "major:minor". */
  throttle(device: string, bytesPerSecond: number | undefined): void {
    if (this.root.flavour === 'v1') {
      const value = `${device} ${bytesPerSecond ?? 0}`;
      writeFileSync(join(this.path, 'blkio.throttle.read_bps_device'), value);
      writeFileSync(join(this.path, 'blkio.throttle.write_bps_device'), value);
      return;
    }
    const limit = bytesPerSecond === undefined ? 'max' : String(bytesPerSecond);
    writeFileSync(join(this.path, 'io.max'), `${device} rbps=${limit} wbps=${limit}`);
  }

  /** The shell prefix that moves a process into this cgroup before it execs the command. */
  enterCommand(command: readonly string[]): string[] {
    return ['/bin/sh', '-c', `echo $$ > ${JSON.stringify(join(this.path, 'cgroup.procs'))} && exec "$@"`, 'chaos-host', ...command];
  }

  /** Removes the (empty) cgroup; false when processes are still in it. */
  remove(): boolean {
    try {
      rmdirSync(this.path);
      return true;
    } catch {
      return false;
    }
  }
}

export function removeCgroupRoot(root: CgroupRoot): boolean {
  try {
    rmdirSync(root.path);
    return true;
  } catch {
    return false;
  }
}

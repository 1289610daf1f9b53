import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';

/**
 * Stalls or slows block I/O of this process to one device with cgroup I/O
 * throttling (v1 blkio, or v2 io.max), so tests can hang a real system call:
 * a direct read at 1 byte/s on a 4 KiB sector sleeps in the kernel (state D)
 * for an hour, until `lift()` removes the limit and it completes.
 */
export interface BlkioThrottle {
  /** Limit reads and writes to `bytesPerSecond` on `device` ("major:minor"). */
  limit(device: string, bytesPerSecond: number): void;
  /** Remove the limit on `device`; throttled I/O then completes. */
  lift(device: string): void;
  /** Move the process back to the root group and remove the group. */
  dispose(): void;
}

const V1_ROOT = '/sys/fs/cgroup/blkio';
const V2_ROOTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];

export function throttleThisProcess(groupName: string): BlkioThrottle {
  if (existsSync(`${V1_ROOT}/blkio.throttle.read_bps_device`)) return v1(groupName);
  const v2Root = V2_ROOTS.find((root) => existsSync(`${root}/cgroup.controllers`) && readFileSync(`${root}/cgroup.controllers`, 'utf8').includes('io'));
  if (v2Root) return v2(v2Root, groupName);
  throw new Error('no cgroup I/O throttling here: neither cgroup v1 blkio nor cgroup v2 io.max is available');
}

function v1(groupName: string): BlkioThrottle {
  const group = `${V1_ROOT}/${groupName}`;
  mkdirSync(group, { recursive: true });
  writeFileSync(`${group}/cgroup.procs`, String(process.pid));
  const set = (device: string, value: number): void => {
    writeFileSync(`${group}/blkio.throttle.read_bps_device`, `${device} ${value}`);
    writeFileSync(`${group}/blkio.throttle.write_bps_device`, `${device} ${value}`);
  };
  return {
    limit: (device, bytesPerSecond) => set(device, bytesPerSecond),
    lift: (device) => set(device, 0),
    dispose() {
      writeFileSync(`${V1_ROOT}/cgroup.procs`, String(process.pid));
      rmdirSync(group);
    },
  };
}

function v2(root: string, groupName: string): BlkioThrottle {
  const group = `${root}/${groupName}`;
  writeFileSync(`${root}/cgroup.subtree_control`, '+io');
  mkdirSync(group, { recursive: true });
  writeFileSync(`${group}/cgroup.procs`, String(process.pid));
  return {
    limit: (device, bytesPerSecond) => writeFileSync(`${group}/io.max`, `${device} rbps=${bytesPerSecond} wbps=${bytesPerSecond}`),
    lift: (device) => writeFileSync(`${group}/io.max`, `${device} rbps=max wbps=max`),
    dispose() {
      writeFileSync(`${root}/cgroup.procs`, String(process.pid));
      rmdirSync(group);
    },
  };
}

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachLoopDevice, type LoopDevice } from '../support/loop-device.js';

/**
 * The storage every simulated host shares: two loop devices with one
 * logical sector size (512 or 4096), one for the lease areas (a lockspace at
 * 0 and one resource per VM, each at its own MiB) and one for the VMs' data
 * blocks (4096 bytes each). Both are reached through device nodes made with
 * mknod in the harness's directory: the lease node in a 0700 lease root the
 * helpers' policy names, the data node (0666) where the VMs' uid can open it.
 * Two devices, so that a writer bug can never touch a lease area.
 */

export const AREA_STRIDE_BYTES = 1024 * 1024;
export const DATA_BLOCK_BYTES = 4096;
export const LOCKSPACE_NAME = 'chaos';
/** Host ids the areas serve: a few more than the hosts (a restarted host keeps its id). */
export const AREA_HOSTS_MIN = 4;

export interface SharedStorage {
  readonly sectorSize: 512 | 4096;
  readonly leaseNode: string;
  readonly dataNode: string;
  /** "major:minor" of the two devices: what a host's storage stall throttles. */
  readonly devices: readonly string[];
  readonly policyPath: string;
  readonly hostsMax: number;
  readonly lockspaceOffset: number;
  /** LS:RES:PATH:OFFSET of VM i's lease. */
  lease(vmIndex: number): string;
  dataOffset(vmIndex: number): number;
  detach(): void;
}

function mknod(path: string, loop: LoopDevice, mode: string): void {
  const [major, minor] = loop.device.split(':');
  execFileSync('mknod', ['-m', mode, path, 'b', major!, minor!]);
}

export function makeSharedStorage(options: { dir: string; cli: string; sectorSize: 512 | 4096; hosts: number; vms: number; ioTimeoutMs: number }): SharedStorage {
  const hostsMax = Math.max(AREA_HOSTS_MIN, options.hosts);
  const leaseRoot = join(options.dir, 'leases');
  mkdirSync(leaseRoot, { mode: 0o700 });
  const dataDir = join(options.dir, 'data');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o755);
  const attached: LoopDevice[] = [];
  try {
    const leases = attachLoopDevice(join(options.dir, 'leases.img'), (options.vms + 2) * AREA_STRIDE_BYTES, options.sectorSize);
    attached.push(leases);
    const data = attachLoopDevice(join(options.dir, 'data.img'), Math.max(AREA_STRIDE_BYTES, options.vms * DATA_BLOCK_BYTES), options.sectorSize);
    attached.push(data);
    const leaseNode = join(leaseRoot, 'leases.dev');
    mknod(leaseNode, leases, '0600');
    const dataNode = join(dataDir, 'data.dev');
    mknod(dataNode, data, '0666');
    const vmlease = (args: string[]) => execFileSync(process.execPath, [options.cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sector = ['--sector-size', String(options.sectorSize), '--hosts', String(hostsMax)];
    vmlease(['init-lockspace', `${LOCKSPACE_NAME}:${leaseNode}:0`, ...sector, '--io-timeout-ms', String(options.ioTimeoutMs)]);
    const lease = (i: number) => `${LOCKSPACE_NAME}:vm-${i}:${leaseNode}:${(i + 1) * AREA_STRIDE_BYTES}`;
    for (let i = 0; i < options.vms; i++) vmlease(['init-resource', lease(i), ...sector]);
    const policyPath = join(options.dir, 'policy.json');
    writeFileSync(policyPath, JSON.stringify({ leaseRoots: [leaseRoot] }));
    return {
      sectorSize: options.sectorSize,
      leaseNode,
      dataNode,
      devices: [leases.device, data.device],
      policyPath,
      hostsMax,
      lockspaceOffset: 0,
      lease,
      dataOffset: (i) => i * DATA_BLOCK_BYTES,
      detach() {
        for (const loop of attached.splice(0)) loop.detach();
      },
    };
  } catch (error) {
    for (const loop of attached) loop.detach();
    throw error;
  }
}

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `npm start`: the main job on an embedded default. The lease helper daemon
 * is not built yet, so this initialises demo lease storage under ./var (a
 * 16-host lockspace and one resource, unless already there) and dumps it
 * with the real command line, reading with O_DIRECT.
 */

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const leases = 'var/leases';
const file = `${leases}/demo.leases`;

function vmlease(args: string[]): number {
  process.stdout.write(`$ vmlease ${args.join(' ')}\n`);
  return spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' }).status ?? 1;
}

function quiet(args: string[]): number {
  return spawnSync(process.execPath, [cli, ...args], { stdio: 'ignore' }).status ?? 1;
}

mkdirSync(leases, { recursive: true });
process.stdout.write('vmlease: the lease helper daemon is not built yet; this sets up demo lease storage and shows it.\n\n');
if (quiet(['dump', `${file}:0`]) !== 0) {
  const steps = [
    ['init-lockspace', `demo:${file}:0`, '--hosts', '16', '--io-timeout-ms', '1000', ...(existsSync(file) ? [] : ['--create'])],
    ['init-resource', `demo:vm-example:${file}:1048576`, '--hosts', '16'],
  ];
  for (const step of steps) {
    const status = vmlease(step);
    if (status !== 0) process.exit(status);
  }
}
process.exit(vmlease(['dump', `${file}:0:2097152`]));

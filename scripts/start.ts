import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm start`: the lease helper on embedded defaults, in the foreground.
 * Lease storage lives under ./var/leases (initialised on first start: a
 * 16-host lockspace "demo" and one resource "vm-demo"), host id 1, no
 * watchdog (the helper warns), run directory /run/vmlease. Stop it with
 * Ctrl-C (it fences first and writes its delta lease free).
 */

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const leases = resolve('var/leases');
const file = `${leases}/demo.leases`;
const configPath = resolve('var/helper.json');
const policyPath = resolve('var/policy.json');
const RESOURCE_OFFSET = 1048576;
const DEMO_VM = '5e1d3c2b-7a9f-4b6e-8d0c-1f2a3b4c5d6e';

function vmlease(args: string[]): number {
  process.stdout.write(`$ vmlease ${args.join(' ')}\n`);
  return spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' }).status ?? 1;
}

function quiet(args: string[]): number {
  return spawnSync(process.execPath, [cli, ...args], { stdio: 'ignore' }).status ?? 1;
}

if (process.getuid?.() !== 0) {
  process.stderr.write('npm start: the lease helper runs as root (it opens lease storage with O_DIRECT, signals VM processes and owns /run/vmlease)\n');
  process.exit(1);
}
mkdirSync(leases, { recursive: true });
// VM uids must never open lease storage: the directory is root's alone.
chmodSync(leases, 0o700);
if (quiet(['dump', `${file}:0`]) !== 0) {
  const steps = [
    ['init-lockspace', `demo:${file}:0`, '--hosts', '16', '--io-timeout-ms', '1000', ...(existsSync(file) ? [] : ['--create'])],
    ['init-resource', `demo:vm-demo:${file}:${RESOURCE_OFFSET}`, '--hosts', '16'],
  ];
  for (const step of steps) {
    const status = vmlease(step);
    if (status !== 0) process.exit(status);
  }
}
writeFileSync(policyPath, `${JSON.stringify({ leaseRoots: [leases] }, null, 2)}\n`);
writeFileSync(
  configPath,
  `${JSON.stringify({ hostId: 1, runDir: '/run/vmlease', ioTimeoutMs: 1000, watchdog: null, lockspaces: [{ name: 'demo', path: file, offset: 0 }], policy: policyPath }, null, 2)}\n`,
);

process.stdout.write(`
vmlease helper starting with ${configPath} (lease storage ${file}, run dir /run/vmlease).
In a second terminal, as root:

  npx vmlease register --vm ${DEMO_VM} --uid 65534 --lease 'demo:vm-demo:${file}:${RESOURCE_OFFSET}'
  setpriv --reuid 65534 --regid 65534 --clear-groups node --jitless ${cli} supervise --vm ${DEMO_VM} -- sleep 60
  npx vmlease status          # (a third terminal, while sleep runs) the VM, its lease and lver
  npx vmlease dump ${file}:${RESOURCE_OFFSET}
  npx vmlease unregister --vm ${DEMO_VM}

Ctrl-C stops the helper (fence first: VMs stopped, leases released, delta lease written free).

`);
const helper = spawn(process.execPath, [cli, 'helper', '--config', configPath], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.on(signal, () => helper.kill(signal));
helper.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

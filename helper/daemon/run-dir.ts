import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The helper's run directory (SPEC section 1): sockets in directories whose
 * modes decide who may connect, so no socket file is ever exposed by a race
 * between bind() and chmod().
 *
 *   RUN/               0755 root
 *   RUN/admin/         0700 root   admin.sock (the hook, the admin CLI)
 *   RUN/supervisor/    0711 root   supervisor.sock (0666; VM uids connect)
 *   RUN/vms/           0711 root   UUID.secret (0400, owned by the VM's uid)
 *   RUN/ballots/       0700 root   ballot floors, one file per lease area
 *   RUN/state.json     0600 root   incarnation, generations, VM processes
 *   RUN/helper.pub     0644 root   the incarnation's public key
 *   RUN/helper.key     0600 root   its secret key (to resume the incarnation)
 */

export interface RunDirLayout {
  readonly root: string;
  readonly adminDir: string;
  readonly adminSocket: string;
  readonly supervisorDir: string;
  readonly supervisorSocket: string;
  readonly vmsDir: string;
  readonly ballotsDir: string;
  readonly stateFile: string;
  readonly publicKeyFile: string;
  readonly secretKeyFile: string;
}

export function runDirLayout(root: string): RunDirLayout {
  return {
    root,
    adminDir: join(root, 'admin'),
    adminSocket: join(root, 'admin', 'admin.sock'),
    supervisorDir: join(root, 'supervisor'),
    supervisorSocket: join(root, 'supervisor', 'supervisor.sock'),
    vmsDir: join(root, 'vms'),
    ballotsDir: join(root, 'ballots'),
    stateFile: join(root, 'state.json'),
    publicKeyFile: join(root, 'helper.pub'),
    secretKeyFile: join(root, 'helper.key'),
  };
}

export class RunDirError extends Error {
  override readonly name = 'RunDirError';
}

/** Creates a directory with its mode, or checks an existing one is a real directory owned by us; sets the mode. */
function ensureDirectory(path: string, mode: number, uid: number): void {
  mkdirSync(path, { recursive: true, mode });
  const info = lstatSync(path);
  if (!info.isDirectory()) throw new RunDirError(`${path} is not a directory (a symlink or file is in the way)`);
  if (info.uid !== uid) throw new RunDirError(`${path} is owned by uid ${info.uid}, not ${uid}: refusing a directory someone else prepared`);
  chmodSync(path, mode);
}

export function prepareRunDir(layout: RunDirLayout, uid: number = process.getuid?.() ?? 0): void {
  ensureDirectory(layout.root, 0o755, uid);
  ensureDirectory(layout.adminDir, 0o700, uid);
  ensureDirectory(layout.supervisorDir, 0o711, uid);
  ensureDirectory(layout.vmsDir, 0o711, uid);
  ensureDirectory(layout.ballotsDir, 0o700, uid);
}

import { posix } from 'node:path';
import type { DiskFacts } from './disk-facts.js';
import type { SharedFileRoot } from './host-policy.js';
import { identified, unidentified, type IdentityResult } from './identity-result.js';
import { shown } from './refusal.js';

/**
 * A file's identity: `file:ROOT/RELATIVE`, ROOT the name of the declared
 * shared root it lies in and RELATIVE its resolved path below that root's
 * resolved path. Every host mounts a share where it likes but the path
 * within the share is the same, so every host derives the same identity; a
 * symlink inside the share leads to the file it names, and a symlink that
 * leaves the share is refused (the file behind it could be local).
 */

function below(path: string, directory: string): string | undefined {
  const prefix = directory === '/' ? '/' : `${directory}/`;
  return path.startsWith(prefix) && path.length > prefix.length ? path.slice(prefix.length) : undefined;
}

function identityIn(root: SharedFileRoot, resolvedRoot: string | undefined, resolvedPath: string): IdentityResult {
  if (resolvedRoot === undefined) return unidentified(`shared file root ${root.name} (${root.path}) cannot be resolved on this host`);
  const relative = below(resolvedPath, resolvedRoot);
  if (relative === undefined) return unidentified(`it resolves to ${shown(resolvedPath)}, outside shared file root ${root.name} (${resolvedRoot})`);
  return identified(`file:${root.name}/${relative}`);
}

/**
 * A file disk's identity. The root is chosen lexically from the path as
 * written (normalised, symlinks not followed: the domain XML says which
 * share it means); the identity comes from the path resolved on this host.
 */
export function fileIdentity(written: string, resolvedPath: string, roots: readonly SharedFileRoot[], facts: DiskFacts): IdentityResult {
  const normalised = posix.normalize(written);
  const root = roots.find((r) => below(normalised, r.path) !== undefined);
  if (root === undefined) {
    const declared = roots.length === 0 ? 'none is declared' : roots.map((r) => `${r.name} ${r.path}`).join(', ');
    return unidentified(`${shown(written)} is not below a shared file root (${declared}): a local path names different files on different hosts`);
  }
  return identityIn(root, facts.sharedRoots.get(root.path), resolvedPath);
}

/** The file behind a loop device: already resolved on this host, so its root is found by its resolved path. */
export function backingFileIdentity(resolvedPath: string, roots: readonly SharedFileRoot[], facts: DiskFacts): IdentityResult {
  const root = roots.find((r) => {
    const resolvedRoot = facts.sharedRoots.get(r.path);
    return resolvedRoot !== undefined && below(resolvedPath, resolvedRoot) !== undefined;
  });
  if (root === undefined) return unidentified(`it is a loop device backed by ${shown(resolvedPath)}, which is not below a shared file root`);
  return identityIn(root, facts.sharedRoots.get(root.path), resolvedPath);
}

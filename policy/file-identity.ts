import { posix } from 'node:path';
import type { DiskFacts } from './disk-facts.js';
import type { SharedFileRoot } from './host-policy.js';
import { identified, undetermined, unidentified, type IdentityResult } from './identity-result.js';
import { PolicyRule, refuse, shown } from './refusal.js';

/**
 * A file's identity: `file:ROOT/RELATIVE`, ROOT the name of the declared
 * shared root it lies in and RELATIVE its resolved path below that root's
 * resolved path. Every host mounts a share where it likes but the path
 * within the share is the same, so every host derives the same identity; a
 * symlink inside the share leads to the file it names, and a symlink that
 * leaves the share is refused (the file behind it could be local), and so is
 * a file on another file system than its root's (one mounted inside the
 * share on this host only).
 */

function below(path: string, directory: string): string | undefined {
  const prefix = directory === '/' ? '/' : `${directory}/`;
  return path.startsWith(prefix) && path.length > prefix.length ? path.slice(prefix.length) : undefined;
}

function identityIn(root: SharedFileRoot, facts: DiskFacts, resolvedPath: string, device: string | undefined): IdentityResult {
  const rootFacts = facts.sharedRoots.get(root.path);
  if (rootFacts === undefined) return undetermined(`no facts were gathered for shared file root ${root.name} (${root.path})`);
  if (rootFacts.unknown !== undefined) return undetermined(`shared file root ${root.name} (${root.path}) could not be looked at on this host: ${rootFacts.unknown}`);
  const resolvedRoot = rootFacts.resolvedPath;
  if (resolvedRoot === undefined) return unidentified(`shared file root ${root.name} (${root.path}) cannot be resolved on this host`);
  const relative = below(resolvedPath, resolvedRoot);
  if (relative === undefined) return unidentified(`it resolves to ${shown(resolvedPath)}, outside shared file root ${root.name} (${resolvedRoot})`);
  if (device !== undefined && device !== rootFacts.device) {
    return unidentified(`it lies on device ${device}, not on shared file root ${root.name}'s device ${rootFacts.device ?? '(unknown)'}: a file system mounted inside the share is local to this host`);
  }
  return identified(`file:${root.name}/${relative}`);
}

/**
 * A file disk's identity. The root is chosen lexically from the path as
 * written (normalised, symlinks not followed: the domain XML says which
 * share it means); the identity comes from the path resolved on this host.
 */
export function fileIdentity(written: string, resolvedPath: string, device: string, roots: readonly SharedFileRoot[], facts: DiskFacts): IdentityResult {
  const normalised = posix.normalize(written);
  const root = roots.find((r) => below(normalised, r.path) !== undefined);
  if (root === undefined) {
    const declared = roots.length === 0 ? 'none is declared' : roots.map((r) => `${r.name} ${r.path}`).join(', ');
    return unidentified(`${shown(written)} is not below a shared file root (${declared}): a local path names different files on different hosts`);
  }
  return identityIn(root, facts, resolvedPath, device);
}

/** The file behind a loop device: already resolved on this host, so its root is found by its resolved path. */
export function backingFileIdentity(resolvedPath: string, roots: readonly SharedFileRoot[], facts: DiskFacts): IdentityResult {
  const root = roots.find((r) => {
    const resolvedRoot = facts.sharedRoots.get(r.path)?.resolvedPath;
    return resolvedRoot !== undefined && below(resolvedPath, resolvedRoot) !== undefined;
  });
  if (root === undefined) return unidentified(`it is a loop device backed by ${shown(resolvedPath)}, which is not below a shared file root`);
  return identityIn(root, facts, resolvedPath, undefined);
}

/**
 * Shared roots must not overlap as resolved on this host (the policy file
 * already keeps them apart as written): a file in two roots would have two
 * identities, one per root name, and so two leases.
 */
export function checkSharedRootsApart(roots: readonly SharedFileRoot[], facts: DiskFacts): void {
  const resolved = roots.flatMap((r) => {
    const at = facts.sharedRoots.get(r.path)?.resolvedPath;
    return at === undefined ? [] : [{ root: r, at }];
  });
  for (const a of resolved) {
    for (const b of resolved) {
      if (a === b) continue;
      if (a.at === b.at || below(a.at, b.at) !== undefined) {
        const how = a.at === b.at ? 'the same directory as' : 'inside';
        refuse(PolicyRule.sharedRoots, `sharedFileRoots ${a.root.name}`, `(${a.root.path}) resolves on this host to ${shown(a.at)}, ${how} shared file root ${b.root.name} (${b.root.path}, resolved to ${shown(b.at)}): a file there would have two identities`);
      }
    }
  }
}

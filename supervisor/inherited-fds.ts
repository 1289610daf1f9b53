import { readdirSync, readlinkSync } from 'node:fs';

/**
 * The file descriptors this process inherited, recorded at start-up so the
 * child gets them at the same numbers (libvirt names them on qemu's command
 * line as `fd=N`). Spawning with stdio 'inherit' is not enough: at start-up
 * Node (libuv's uv_disable_stdio_inheritance) marks fds 0..15, and onwards to
 * the first gap, close-on-exec, so an inherited fd 3 would never reach qemu.
 *
 * By the time JavaScript runs Node has opened its own descriptors too (event
 * loops: epoll, eventfd, and pipe pairs). They are told apart by kind: an
 * epoll or eventfd instance, or a pipe whose both ends this process holds,
 * is Node's. A caller that passes either (libvirt passes sockets, tap and
 * vhost devices, files and single pipe ends) would lose it: documented in
 * docs/supervisor.md.
 */

/** More inherited fds than this, or a number above the cap, refuses the start rather than drop one. */
export const INHERITED_FDS_MAX = 1024;
export const INHERITED_FD_NUMBER_MAX = 65_535;

export class InheritedFdsError extends Error {
  override readonly name = 'InheritedFdsError';
}

const NODE_OWN_KINDS = new Set(['anon_inode:[eventpoll]', 'anon_inode:[eventfd]']);

let recorded: readonly number[] | undefined;
let refusal: string | undefined;

/** Lists fds 3 and up of a /proc/PID/fd directory that Node did not open itself, ascending. */
export function listInheritedFds(fdDir = '/proc/self/fd'): number[] {
  const targets = new Map<number, string>();
  for (const name of readdirSync(fdDir)) {
    try {
      targets.set(Number(name), readlinkSync(`${fdDir}/${name}`));
    } catch {
      // Gone since the listing: readdir's own descriptor.
    }
  }
  const pipeEnds = new Map<string, number>();
  for (const target of targets.values()) if (target.startsWith('pipe:')) pipeEnds.set(target, (pipeEnds.get(target) ?? 0) + 1);
  return [...targets]
    .filter(([fd, target]) => fd > 2 && !NODE_OWN_KINDS.has(target) && !(target.startsWith('pipe:') && pipeEnds.get(target)! > 1))
    .map(([fd]) => fd)
    .sort((a, b) => a - b);
}

/** Records the inherited fds; call it before this process opens anything that lives on. */
export function recordInheritedFds(): void {
  if (recorded !== undefined) return;
  try {
    recorded = listInheritedFds();
  } catch (error) {
    refusal = `cannot list inherited file descriptors: ${(error as Error).message}`;
    recorded = [];
  }
  if (recorded.length > INHERITED_FDS_MAX) refusal = `${recorded.length} inherited file descriptors, more than ${INHERITED_FDS_MAX}`;
  else if (recorded.some((fd) => fd > INHERITED_FD_NUMBER_MAX)) refusal = `an inherited file descriptor above ${INHERITED_FD_NUMBER_MAX}`;
}

/** The fds recorded at start-up (3 and up). Throws when they could not all be passed on. */
export function inheritedFds(): readonly number[] {
  if (recorded === undefined) throw new InheritedFdsError('inherited file descriptors were not recorded at start-up');
  if (refusal !== undefined) throw new InheritedFdsError(refusal);
  return recorded;
}

/** spawn's stdio: 0..2 inherited as they are, each recorded fd at its own number, nothing else. */
export function childStdio(fds: readonly number[]): ('inherit' | 'ignore' | number)[] {
  const top = fds.length === 0 ? 2 : Math.max(2, fds[fds.length - 1]!);
  const wanted = new Set(fds);
  return Array.from({ length: top + 1 }, (_, i) => (i <= 2 ? 'inherit' : wanted.has(i) ? i : 'ignore'));
}

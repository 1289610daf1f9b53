/**
 * A disk's cluster-wide identity, or why none can be derived. The reason is
 * a clause that completes "disk vdb gets no lease: ...". `undetermined`
 * marks a reason that is not the disk's (a deadline, an I/O error): another
 * attempt could find an identity, so the disk must not be taken as one that
 * has none.
 */
export type IdentityResult =
  /** `wholeDisk`: for a partition, the identity of the disk it is part of. */
  | { readonly ok: true; readonly identity: string; readonly wholeDisk?: string }
  | { readonly ok: false; readonly reason: string; readonly undetermined?: true };

export function identified(identity: string, wholeDisk?: string): IdentityResult {
  return wholeDisk === undefined ? { ok: true, identity } : { ok: true, identity, wholeDisk };
}

export function unidentified(reason: string): IdentityResult {
  return { ok: false, reason };
}

/** The facts needed to tell were not found out on this host. */
export function undetermined(reason: string): IdentityResult {
  return { ok: false, reason, undetermined: true };
}

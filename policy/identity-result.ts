/**
 * A disk's cluster-wide identity, or why none can be derived. The reason is
 * a clause that completes "disk vdb gets no lease: ...".
 */
export type IdentityResult = { readonly ok: true; readonly identity: string } | { readonly ok: false; readonly reason: string };

export function identified(identity: string): IdentityResult {
  return { ok: true, identity };
}

export function unidentified(reason: string): IdentityResult {
  return { ok: false, reason };
}

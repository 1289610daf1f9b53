import type { PolicyRefusal } from './refusal.js';

/** A lease the policy decided a VM must hold: what `register` sends the helper, and why. */
export interface PolicyLease {
  readonly lockspace: string;
  readonly resource: string;
  readonly path: string;
  readonly offset: number;
  readonly mode: 'exclusive' | 'shared';
  /** One line saying where the lease comes from. */
  readonly reason: string;
  readonly origin: { readonly kind: 'lease-element'; readonly index: number } | { readonly kind: 'auto-disk'; readonly target: string; readonly identity: string };
}

/** A writable disk left without a lease (allowed only when the policy does not require one). */
export interface UnleasedDisk {
  readonly target: string;
  readonly reason: string;
}

export type PolicyDecision =
  | { readonly ok: true; readonly vm: { readonly uuid: string; readonly name: string }; readonly leases: readonly PolicyLease[]; readonly unleasedDisks: readonly UnleasedDisk[] }
  | { readonly ok: false; readonly refusal: PolicyRefusal };

import assert from 'node:assert/strict';

/**
 * When may the helper pet the watchdog? (SPEC section 3, fencing layer 4.)
 *
 * Pure: no clock, no device. For each lockspace, T is the monotonic time read
 * just before submitting the renewal write that succeeded last; everything
 * holding that lockspace's leases must be stopped by T + failMs. The last pet
 * must come no later than that fail time minus the pet interval, so that a
 * helper that stops renewing is reset by the watchdog by T + failMs + W.
 *
 *   petAllowedUntilMs = min over lockspaces with live holders of (T + failMs - petIntervalMs)
 *
 * A pet is allowed at `nowMs` only while nowMs < petAllowedUntilMs (strictly:
 * at the boundary itself it is already too late). Lockspaces without live
 * holders do not count: nothing would need fencing if they failed. With no
 * such lockspace the watchdog is petted freely (petAllowedUntilMs = +Infinity).
 */

/** One lockspace's renewal state, as the helper's lockspace shell knows it. */
export interface LockspaceRenewal {
  readonly name: string;
  /** Processes (VMs) currently holding leases of this lockspace on this host. */
  readonly liveHolders: number;
  /** T of the last successful renewal (or of the join write), monotonic ms. */
  readonly lastRenewalMs: number;
  /** From T, everything holding the lockspace's leases is stopped by T + failMs (8N). */
  readonly failMs: number;
}

export interface PetPolicyInput {
  readonly nowMs: number;
  /** The petter's interval (Timing.watchdogPetIntervalMs). */
  readonly petIntervalMs: number;
  readonly lockspaces: readonly LockspaceRenewal[];
}

export type PetDecision =
  /** Pet now; the pet must still be refused at or after petAllowedUntilMs (re-checked just before the write). */
  | { readonly allowed: true; readonly petAllowedUntilMs: number; readonly limitedBy: string | undefined }
  /** Do not pet: `limitedBy` is the lockspace whose renewal is too old. */
  | { readonly allowed: false; readonly petAllowedUntilMs: number; readonly limitedBy: string };

/** More lockspaces than any host joins; a longer list is a bug upstream. */
export const PET_POLICY_MAX_LOCKSPACES = 4096;

export function decidePet(input: PetPolicyInput): PetDecision {
  assert.ok(Number.isFinite(input.nowMs), `now ${input.nowMs} must be finite`);
  assert.ok(Number.isFinite(input.petIntervalMs) && input.petIntervalMs > 0, `pet interval ${input.petIntervalMs} must be positive`);
  assert.ok(input.lockspaces.length <= PET_POLICY_MAX_LOCKSPACES, `${input.lockspaces.length} lockspaces exceed ${PET_POLICY_MAX_LOCKSPACES}`);
  let untilMs = Number.POSITIVE_INFINITY;
  let limitedBy: string | undefined;
  for (const lockspace of input.lockspaces) {
    assert.ok(Number.isInteger(lockspace.liveHolders) && lockspace.liveHolders >= 0, `${lockspace.name}: live holders ${lockspace.liveHolders}`);
    if (lockspace.liveHolders === 0) continue;
    assert.ok(Number.isFinite(lockspace.lastRenewalMs), `${lockspace.name}: last renewal ${lockspace.lastRenewalMs} must be finite`);
    assert.ok(lockspace.failMs > input.petIntervalMs, `${lockspace.name}: fail ${lockspace.failMs} ms must exceed the pet interval ${input.petIntervalMs} ms`);
    const lastPetMs = lockspace.lastRenewalMs + lockspace.failMs - input.petIntervalMs;
    if (lastPetMs < untilMs) {
      untilMs = lastPetMs;
      limitedBy = lockspace.name;
    }
  }
  if (input.nowMs < untilMs) return { allowed: true, petAllowedUntilMs: untilMs, limitedBy };
  assert.ok(limitedBy !== undefined, 'only a lockspace with holders can forbid a pet');
  return { allowed: false, petAllowedUntilMs: untilMs, limitedBy };
}

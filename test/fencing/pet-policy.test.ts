import { describe, expect, it } from 'vitest';
import { decidePet, type LockspaceRenewal } from '../../dist/helper/fencing/pet-policy.js';
import { deriveTiming } from '../../dist/helper/engine/timing.js';

const timing = deriveTiming(100, 600); // N = 100 ms: fail 800 ms, pet interval 100 ms
const ls = (name: string, lastRenewalMs: number, liveHolders = 1): LockspaceRenewal => ({ name, liveHolders, lastRenewalMs, failMs: timing.failMs });
const decide = (nowMs: number, lockspaces: LockspaceRenewal[]) => decidePet({ nowMs, petIntervalMs: timing.watchdogPetIntervalMs, lockspaces });

describe('pet policy', () => {
  it('pets freely with no lockspace, or none with live holders', () => {
    expect(decide(1_000_000, [])).toEqual({ allowed: true, petAllowedUntilMs: Number.POSITIVE_INFINITY, limitedBy: undefined });
    // A lockspace without holders never renewed for ages does not stop the pets.
    expect(decide(1_000_000, [ls('idle', 0, 0)])).toMatchObject({ allowed: true, petAllowedUntilMs: Number.POSITIVE_INFINITY });
  });

  it('allows pets until T + fail - pet interval of the one lockspace', () => {
    const t = 5_000;
    const until = t + timing.failMs - timing.watchdogPetIntervalMs; // 5700
    expect(decide(t, [ls('a', t)])).toEqual({ allowed: true, petAllowedUntilMs: until, limitedBy: 'a' });
    expect(decide(until - 1, [ls('a', t)])).toMatchObject({ allowed: true, petAllowedUntilMs: until });
  });

  it('refuses at the boundary itself and after it', () => {
    const t = 5_000;
    expect(decide(5_700, [ls('a', t)])).toEqual({ allowed: false, petAllowedUntilMs: 5_700, limitedBy: 'a' });
    expect(decide(5_701, [ls('a', t)])).toMatchObject({ allowed: false, limitedBy: 'a' });
    expect(decide(5_699.999, [ls('a', t)])).toMatchObject({ allowed: true });
  });

  it('takes the minimum over lockspaces with holders and names the one that limits', () => {
    const lockspaces = [ls('fresh', 9_000), ls('stale', 8_000), ls('older-but-empty', 1_000, 0)];
    expect(decide(8_000, lockspaces)).toEqual({ allowed: true, petAllowedUntilMs: 8_700, limitedBy: 'stale' });
    expect(decide(8_700, lockspaces)).toEqual({ allowed: false, petAllowedUntilMs: 8_700, limitedBy: 'stale' });
    // Once the stale lockspace loses its holders (they were fenced), pets may resume on the fresh one.
    expect(decide(8_700, [ls('fresh', 9_000), ls('stale', 8_000, 0)])).toEqual({ allowed: true, petAllowedUntilMs: 9_700, limitedBy: 'fresh' });
  });

  it('uses each lockspace\'s own fail time', () => {
    const slow = { name: 'slow', liveHolders: 2, lastRenewalMs: 0, failMs: 80_000 };
    const quick = { name: 'quick', liveHolders: 1, lastRenewalMs: 0, failMs: 8_000 };
    expect(decidePet({ nowMs: 7_000, petIntervalMs: 1_000, lockspaces: [slow, quick] })).toEqual({ allowed: false, petAllowedUntilMs: 7_000, limitedBy: 'quick' });
    expect(decidePet({ nowMs: 7_000, petIntervalMs: 1_000, lockspaces: [slow] })).toEqual({ allowed: true, petAllowedUntilMs: 79_000, limitedBy: 'slow' });
  });

  it('asserts on impossible inputs (bugs, not expected failures)', () => {
    expect(() => decidePet({ nowMs: 0, petIntervalMs: 1_000, lockspaces: [{ name: 'x', liveHolders: 1, lastRenewalMs: 0, failMs: 1_000 }] })).toThrow(/must exceed the pet interval/);
    expect(() => decidePet({ nowMs: 0, petIntervalMs: 100, lockspaces: [{ name: 'x', liveHolders: -1, lastRenewalMs: 0, failMs: 800 }] })).toThrow(/live holders/);
    expect(() => decidePet({ nowMs: 0, petIntervalMs: 100, lockspaces: [{ name: 'x', liveHolders: 1, lastRenewalMs: Number.NaN, failMs: 800 }] })).toThrow(/finite/);
  });
});

import { describe, expect, it } from 'vitest';
import { compareClockSamples, parseUptimeMs, readBootTimeMs, SuspendDetector } from '../../dist/helper/fencing/index.js';

describe('suspend detection', () => {
  it('sees no gap while both clocks advance together, within the threshold', () => {
    expect(compareClockSamples({ bootMs: 1_000, monotonicMs: 500 }, { bootMs: 3_000, monotonicMs: 2_500 }, 100)).toEqual({ suspended: false, gapMs: 0 });
    expect(compareClockSamples({ bootMs: 1_000, monotonicMs: 500 }, { bootMs: 3_100, monotonicMs: 2_500 }, 100)).toEqual({ suspended: false, gapMs: 100 });
    // Boot time behind (10 ms resolution, read skew) is no suspend.
    expect(compareClockSamples({ bootMs: 1_000, monotonicMs: 500 }, { bootMs: 2_990, monotonicMs: 2_500 }, 100)).toEqual({ suspended: false, gapMs: 0 });
  });

  it('reports a suspend when boot time advanced more than monotonic time plus the threshold', () => {
    expect(compareClockSamples({ bootMs: 1_000, monotonicMs: 500 }, { bootMs: 3_101, monotonicMs: 2_500 }, 100)).toEqual({ suspended: true, gapMs: 101 });
    expect(compareClockSamples({ bootMs: 1_000, monotonicMs: 500 }, { bootMs: 61_000, monotonicMs: 501 }, 100)).toEqual({ suspended: true, gapMs: 59_999 });
  });

  it('compares each check with the one before, on injected clocks', () => {
    let boot = 100_000;
    let mono = 7_000;
    const detector = new SuspendDetector({ bootTimeMs: () => boot, monotonicMs: () => mono, thresholdMs: 500 });
    boot += 1_000;
    mono += 1_000;
    expect(detector.check()).toEqual({ suspended: false, gapMs: 0 });
    boot += 30_000; // suspended 29 s during the next second
    mono += 1_000;
    expect(detector.check()).toEqual({ suspended: true, gapMs: 29_000 });
    boot += 1_000;
    mono += 1_000;
    expect(detector.check()).toEqual({ suspended: false, gapMs: 0 }); // the gap is reported once
  });

  it('parses /proc/uptime and reads the real one', () => {
    expect(parseUptimeMs('12345.67 54321.00\n')).toBe(12_345_670);
    expect(() => parseUptimeMs('garbage')).toThrow(/unexpected \/proc\/uptime/);
    expect(readBootTimeMs(() => '1.05 0.50\n')).toBe(1_050);
    const before = readBootTimeMs();
    const after = readBootTimeMs();
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThanOrEqual(before);
  });

  it('sees no suspend on this host across real clocks', async () => {
    const detector = new SuspendDetector({ bootTimeMs: () => readBootTimeMs(), monotonicMs: () => Number(process.hrtime.bigint() / 1_000_000n), thresholdMs: 250 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(detector.check().suspended).toBe(false);
  });
});

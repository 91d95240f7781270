import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/pipeline/clock.js';

describe('systemClock', () => {
  it('gives whole ms from a recent origin (a Smi on the data path), monotonic, with the wall time of its origin', () => {
    let prev = systemClock.now();
    const end = Date.now() + 30;
    let n = 0;
    while (Date.now() < end && n < 1e6) {
      const t = systemClock.now();
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(prev);
      prev = t;
      n++;
    }
    expect(prev).toBeGreaterThan(0);
    expect(prev).toBeLessThan(2 ** 31);
    // now() + epochMs is wall-clock time.
    expect(Math.abs(systemClock.now() + systemClock.epochMs! - Date.now())).toBeLessThan(1000);
  });
});

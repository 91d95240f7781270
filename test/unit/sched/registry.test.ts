import { describe, expect, it } from 'vitest';
import { DEFAULT_SCHEDULER, getScheduler, registerScheduler, schedulerNames } from '../../../src/sched/registry.js';
import { createLblcFactory } from '../../../src/sched/lblc.js';

describe('scheduler registry', () => {
  it('registers the fourteen kernel schedulers on import; wlc is the default', () => {
    expect(schedulerNames().sort()).toEqual(
      ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr'],
    );
    expect(DEFAULT_SCHEDULER).toBe('wlc');
    expect(getScheduler('wlc')!.name).toBe('wlc');
    expect(getScheduler('nope')).toBeUndefined();
    expect(getScheduler('sh')!.flagNames).toEqual(['sh-fallback', 'sh-port']);
    expect(getScheduler('rr')!.flagNames).toBeUndefined();
  });

  it('registerScheduler replaces a factory by name (e.g. lblc with another expiration)', () => {
    const before = getScheduler('lblc')!;
    const f = createLblcFactory({ expirationMs: 1000 });
    registerScheduler(f);
    expect(getScheduler('lblc')).toBe(f);
    registerScheduler(before);
    expect(schedulerNames().length).toBe(14);
  });
});

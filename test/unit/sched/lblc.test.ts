import { describe, expect, it } from 'vitest';
import { createLblcFactory, type LblcScheduler } from '../../../src/sched/lblc.js';
import { LBLC_MAX_SIZE } from '../../../src/sched/locality.js';
import { DEST_F_AVAILABLE } from '../../../src/model/constants.js';
import { conns, lab, overload } from './helpers.js';

const MIN = 60_000;

function cache(l: ReturnType<typeof lab>) {
  return (l.sched as LblcScheduler).cache;
}

function setup(expirationMs?: number) {
  const l = lab(createLblcFactory(expirationMs === undefined ? {} : { expirationMs }));
  const a = l.add('10.0.0.1', 2);
  const b = l.add('10.0.0.2', 2); // [B, A]
  return { l, a, b };
}

describe('lblc (reference §1.9)', () => {
  it('miss: wlc pick is cached by destination address; hit keeps it while wlc would differ', () => {
    const { l, a, b } = setup();
    expect(l.pick('198.51.100.1', 0, '203.0.113.10')).toBe(b);
    conns(b, 1); // wlc would now pick A
    expect(l.pick('198.51.100.2', 5000, '203.0.113.10')).toBe(b);
    expect(cache(l).get(0xcb00710a)!.lastuse).toBe(5000);
    expect(l.pick('198.51.100.2', 6000, '203.0.113.11')).toBe(a);
  });

  it('overloaded cached dest (active > weight while another is under half) → reschedule and replace', () => {
    const { l, a, b } = setup();
    expect(l.pick('198.51.100.1', 0, '203.0.113.10')).toBe(b);
    conns(b, 3); // 3 > 2, and A: 0*2 < 2
    expect(l.pick('198.51.100.1', 10, '203.0.113.10')).toBe(a);
    expect(cache(l).get(0xcb00710a)!.dest).toBe(a);
    // Kernel quirk: the replace path does not decrement `entries`.
    expect(cache(l).map.size).toBe(1);
    expect(cache(l).entries).toBe(2);
  });

  it('active > weight alone is not overloaded when nobody is under half its weight', () => {
    const { l, a, b } = setup();
    expect(l.pick('198.51.100.1', 0, '203.0.113.10')).toBe(b);
    conns(b, 3);
    conns(a, 1); // 2*1 < 2 is false
    expect(l.pick('198.51.100.1', 10, '203.0.113.10')).toBe(b);
  });

  it('the OVERLOAD flag of a cached dest is ignored (quirk); weight 0 or removal reschedules', () => {
    const { l, a, b } = setup();
    expect(l.pick('198.51.100.1', 0, '203.0.113.10')).toBe(b);
    overload(b);
    expect(l.pick('198.51.100.1', 1, '203.0.113.10')).toBe(b);
    overload(b, false);
    l.edit(b, 0);
    expect(l.pick('198.51.100.1', 2, '203.0.113.10')).toBe(a);
    l.edit(b, 2);
    expect(l.pick('198.51.100.1', 3, '203.0.113.11')).toBe(b);
    l.del(b);
    expect(b.flags & DEST_F_AVAILABLE).toBe(0);
    expect(l.pick('198.51.100.1', 4, '203.0.113.11')).toBe(a);
  });

  it('expiry: only the full pass (every 30th timer run) drops entries idle >= expiration', () => {
    const { l } = setup(10 * MIN);
    l.pick('198.51.100.1', 0, '203.0.113.10'); // arms the 60 s timer
    l.pick('198.51.100.1', 0, '203.0.113.11');
    l.sched.sweep(29 * MIN); // runs 1..29: counter 2..30, no deletion
    expect(cache(l).map.size).toBe(2);
    l.pick('198.51.100.1', 25 * MIN, '203.0.113.11'); // keeps .11 fresh
    l.sched.sweep(30 * MIN - 1);
    expect(cache(l).map.size).toBe(2);
    l.sched.sweep(30 * MIN); // run 30: full pass
    expect(cache(l).get(0xcb00710a)).toBeUndefined();
    expect(cache(l).get(0xcb00710b)).toBeDefined();
    expect(cache(l).counter).toBe(1);
    expect(cache(l).entries).toBe(1);
  });

  it('default expiration is 24 h', () => {
    const { l } = setup();
    expect(cache(l).expirationMs).toBe(24 * 60 * MIN);
  });

  it('size GC above 16384 entries: idle >= 6 min, goal (entries - max)*4/3, from the rover', () => {
    const { l } = setup();
    const extra = 300;
    const n = LBLC_MAX_SIZE + extra;
    for (let i = 0; i < n; i++) {
      const d = 0x0a010000 + i;
      const s = `${d >>> 24}.${(d >>> 16) & 255}.${(d >>> 8) & 255}.${d & 255}`;
      l.pick('198.51.100.1', 0, s);
    }
    expect(cache(l).entries).toBe(n);
    l.sched.sweep(5 * MIN); // runs at 1..5 min: oversize, nothing idle 6 min yet
    expect(cache(l).map.size).toBe(n);
    expect(cache(l).counter).toBe(1); // counter does not advance while oversize
    l.sched.sweep(6 * MIN);
    const left = cache(l).map.size;
    expect(left).toBeLessThanOrEqual(n - 400);
    expect(left).toBeGreaterThan(n - 600); // whole buckets (~16 entries each) past the goal
    expect(cache(l).entries).toBe(left);
    expect(cache(l).rover).not.toBe(0);
  });
});

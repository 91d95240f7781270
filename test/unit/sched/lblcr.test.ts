import { describe, expect, it } from 'vitest';
import { createLblcrFactory, destSetMax, destSetMin, type LblcrScheduler } from '../../../src/sched/lblcr.js';
import { conns, lab, overload } from './helpers.js';

const MIN = 60_000;

function cache(l: ReturnType<typeof lab>) {
  return (l.sched as LblcrScheduler).cache;
}
const DADDR = 0xcb00710a; // 203.0.113.10

function setup(expirationMs = 10 * MIN) {
  const l = lab(createLblcrFactory({ expirationMs }));
  const a = l.add('10.0.0.1', 2);
  const b = l.add('10.0.0.2', 2); // [B, A]
  return { l, a, b };
}

describe('lblcr (reference §1.10)', () => {
  it('miss creates a one-member set; hit returns the set minimum', () => {
    const { l, b } = setup();
    expect(l.pick('198.51.100.1', 0, '203.0.113.10')).toBe(b);
    expect(cache(l).get(DADDR)!.set).toEqual([b]);
    conns(b, 1);
    expect(l.pick('198.51.100.1', 1, '203.0.113.10')).toBe(b);
    expect(cache(l).get(DADDR)!.lastuse).toBe(1);
  });

  it('overloaded minimum → wlc pick joins the set at its head (lastmod = now)', () => {
    const { l, a, b } = setup();
    l.pick('198.51.100.1', 0, '203.0.113.10');
    conns(b, 3);
    expect(l.pick('198.51.100.1', 100, '203.0.113.10')).toBe(a);
    const en = cache(l).get(DADDR)!;
    expect(en.set).toEqual([a, b]);
    expect(en.lastmod).toBe(100);
    // Now the set minimum is A.
    expect(l.pick('198.51.100.1', 200, '203.0.113.10')).toBe(a);
    expect(en.lastmod).toBe(100);
  });

  it('shrinks on the packet path: after expiration since lastmod the most loaded member leaves', () => {
    const { l, a, b } = setup();
    l.pick('198.51.100.1', 0, '203.0.113.10');
    conns(b, 3);
    l.pick('198.51.100.1', 100, '203.0.113.10'); // set [A, B]
    conns(a, 1);
    expect(l.pick('198.51.100.1', 100 + 10 * MIN, '203.0.113.10')).toBe(a); // not yet: strict >
    expect(cache(l).get(DADDR)!.set.length).toBe(2);
    expect(l.pick('198.51.100.1', 101 + 10 * MIN, '203.0.113.10')).toBe(a);
    const en = cache(l).get(DADDR)!;
    expect(en.set).toEqual([a]); // B (768/2) was the most loaded
    expect(en.lastmod).toBe(101 + 10 * MIN);
  });

  it('the returned minimum may be the member just removed', () => {
    const { l, a, b } = setup();
    l.pick('198.51.100.1', 0, '203.0.113.10');
    conns(b, 3);
    l.pick('198.51.100.1', 100, '203.0.113.10'); // set [A, B]
    // min skips OVERLOAD A → B; max ignores OVERLOAD: A 0/2 vs B 256/2 → B. B is removed yet returned.
    overload(a);
    conns(a, 0);
    conns(b, 1);
    expect(l.pick('198.51.100.1', 200 + 10 * MIN, '203.0.113.10')).toBe(b);
    expect(cache(l).get(DADDR)!.set).toEqual([a]);
  });

  it('set min/max rules: OVERLOAD and unavailable members', () => {
    const { a, b } = setup();
    overload(b);
    expect(destSetMin([b, a])).toBe(a);
    expect(destSetMax([b, a])).toBe(b); // max ignores OVERLOAD
    overload(b, false);
    conns(a, 0, 10);
    expect(destSetMax([b, a])).toBe(a);
    expect(destSetMin([b, a])).toBe(b);
  });

  it('expiry by the full pass', () => {
    const { l } = setup(10 * MIN);
    l.pick('198.51.100.1', 0, '203.0.113.10');
    l.sched.sweep(29 * MIN);
    expect(cache(l).map.size).toBe(1);
    l.sched.sweep(30 * MIN);
    expect(cache(l).map.size).toBe(0);
    expect(cache(l).entries).toBe(0);
  });
});

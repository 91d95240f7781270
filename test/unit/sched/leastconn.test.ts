/** lc, wlc, sed, nq: the tie examples of reference §1.4 and their edge rules. */
import { describe, expect, it } from 'vitest';
import { conns, lab, overload } from './helpers.js';

function abc(name: string, wa = 1, wb = 1, wc = 1) {
  const l = lab(name);
  const a = l.add('10.0.0.1', wa);
  const b = l.add('10.0.0.2', wb);
  const c = l.add('10.0.0.3', wc); // list [C, B, A]
  return { l, a, b, c };
}

describe('tie example 1: all weight 1, no connections → C (first in list)', () => {
  it.each(['lc', 'wlc', 'sed', 'nq', 'fo'])('%s', (name) => {
    const { l, c } = abc(name);
    expect(l.pick()).toBe(c);
  });
});

describe('tie example 2: weights A=1 B=2 C=1, actives A=1 B=2 C=1', () => {
  const cases: [string, 'a' | 'b' | 'c'][] = [['lc', 'c'], ['wlc', 'c'], ['sed', 'b'], ['nq', 'b']];
  it.each(cases)('%s → %s', (name, want) => {
    const t = abc(name, 1, 2, 1);
    conns(t.a, 1);
    conns(t.b, 2);
    conns(t.c, 1);
    expect(t.l.pick()).toBe(t[want]);
  });
});

describe('tie example 3: nq takes the first idle dest in list order', () => {
  it('A: 0 active + 5 inactive, B: 0 active, C: 1 active → B', () => {
    const { l, a, b, c } = abc('nq');
    conns(a, 0, 5);
    conns(b, 0, 0);
    conns(c, 1, 0);
    expect(l.pick()).toBe(b);
  });
  it('idle means no ACTIVE conns: A (inactive only) is idle before busier C', () => {
    const { l, a, b, c } = abc('nq');
    conns(a, 0, 9);
    conns(b, 3);
    conns(c, 1);
    expect(l.pick()).toBe(a);
  });
});

describe('lc', () => {
  it('inactive conns count 1/256 of an active one; weights other than 0 are ignored', () => {
    const { l, a, b, c } = abc('lc', 1, 100, 1);
    conns(c, 1, 0); // 256
    conns(b, 0, 300); // 300
    conns(a, 0, 255); // 255
    expect(l.pick()).toBe(a);
    conns(a, 0, 256); // tie with C: C first in list
    expect(l.pick()).toBe(c);
  });
  it('skips weight 0 and OVERLOAD', () => {
    const { l, a, b, c } = abc('lc');
    conns(a, 5);
    l.edit(c, 0);
    overload(b);
    expect(l.pick()).toBe(a);
  });
});

describe('wlc', () => {
  it('overhead/weight by cross multiplication: 256/1 vs 512/2 tie → earliest; 767/3 wins', () => {
    const { l, a, b, c } = abc('wlc', 3, 2, 1);
    conns(c, 1); // 256/1
    conns(b, 2); // 512/2
    conns(a, 3); // 768/3
    expect(l.pick()).toBe(c);
    conns(a, 2, 255); // 767/3 < 256
    expect(l.pick()).toBe(a);
  });
  it('starts from the first dest with weight > 0; weight 0 never replaces it', () => {
    const { l, a, b, c } = abc('wlc', 1, 0, 0);
    conns(a, 100);
    expect(l.pick()).toBe(a);
    overload(a);
    expect(l.pick()).toBeNull();
    void b; void c;
  });
});

describe('sed', () => {
  it('ignores inactive conns: cost (active + 1)/weight', () => {
    const { l, a, b, c } = abc('sed', 2, 1, 1);
    conns(b, 5);
    conns(c, 0, 1000); // 1/1
    conns(a, 1, 0); // 2/2 → tie with C → C (earlier)
    expect(l.pick()).toBe(c);
    conns(c, 1, 0); // 2/1 > 2/2
    expect(l.pick()).toBe(a);
  });
});

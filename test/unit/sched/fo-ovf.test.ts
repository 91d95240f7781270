import { describe, expect, it } from 'vitest';
import { conns, lab, overload } from './helpers.js';

describe('fo (reference §1.5)', () => {
  it('highest weight wins, ties to the earliest in list, connections ignored', () => {
    const l = lab('fo');
    const a = l.add('10.0.0.1', 5);
    const b = l.add('10.0.0.2', 3);
    const c = l.add('10.0.0.3', 5); // [C, B, A]
    conns(c, 1000);
    expect(l.pick()).toBe(c);
    overload(c);
    expect(l.pick()).toBe(a);
    l.edit(a, 0);
    expect(l.pick()).toBe(b);
    l.edit(b, 0);
    expect(l.pick()).toBeNull();
  });
});

describe('ovf (reference §1.5)', () => {
  it('fills the highest weight until it holds weight + 1 active conns, then overflows', () => {
    const l = lab('ovf');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 2); // [B, A]
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const d = l.pick();
      picks.push(d === a ? 'A' : d === b ? 'B' : '-');
      if (d) d.activeConns++;
    }
    // B takes 3 (active 0,1,2 <= 2), A takes 2 (active 0,1 <= 1), then nothing.
    expect(picks.join(',')).toBe('B,B,B,A,A,-');
  });
  it('ignores inactive conns; ties to the earliest; skips OVERLOAD and weight 0', () => {
    const l = lab('ovf');
    const a = l.add('10.0.0.1', 2);
    const b = l.add('10.0.0.2', 2);
    conns(b, 0, 500);
    expect(l.pick()).toBe(b);
    overload(b);
    expect(l.pick()).toBe(a);
    l.edit(a, 0);
    expect(l.pick()).toBeNull();
  });
});

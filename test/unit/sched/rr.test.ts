import { describe, expect, it } from 'vitest';
import type { Dest } from '../../../src/model/dest.js';
import { lab, overload } from './helpers.js';

describe('rr (reference §1.2)', () => {
  it('fresh service starts at the most recently added dest, then list order', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1');
    const b = l.add('10.0.0.2');
    const c = l.add('10.0.0.3');
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B'], [c, 'C']]);
    expect(l.seq(7, names).join(',')).toBe('C,B,A,C,B,A,C');
  });

  it('a dest added later sits at the head and is reached at the next wrap', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1');
    const b = l.add('10.0.0.2');
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B']]);
    expect(l.seq(1, names)).toEqual(['B']);
    const c = l.add('10.0.0.3');
    names.set(c, 'C');
    expect(l.seq(5, names).join(',')).toBe('A,C,B,A,C');
  });

  it('deleting the cursor dest resumes at its old successor', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1');
    const b = l.add('10.0.0.2');
    const c = l.add('10.0.0.3');
    const d = l.add('10.0.0.4'); // list [D, C, B, A]
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B'], [c, 'C'], [d, 'D']]);
    expect(l.seq(2, names).join(',')).toBe('D,C');
    l.del(c); // cursor was C → its predecessor D
    expect(l.seq(3, names).join(',')).toBe('B,A,D');
  });

  it('deleting the head cursor goes back to the list head; deleting another dest keeps the cursor', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1');
    const b = l.add('10.0.0.2');
    const c = l.add('10.0.0.3'); // [C, B, A]
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B'], [c, 'C']]);
    expect(l.seq(1, names)).toEqual(['C']);
    l.del(c);
    expect(l.seq(1, names)).toEqual(['B']);
    l.del(a);
    expect(l.seq(2, names).join(',')).toBe('B,B');
  });

  it('the previous pick is eligible again only if nothing else is', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1');
    const b = l.add('10.0.0.2');
    expect(l.pick()).toBe(b);
    overload(a);
    expect(l.pick()).toBe(b);
    l.edit(b, 0);
    expect(l.pick()).toBeNull();
  });
});

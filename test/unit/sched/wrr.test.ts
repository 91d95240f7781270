import { describe, expect, it } from 'vitest';
import type { WrrScheduler } from '../../../src/sched/wrr.js';
import type { Dest } from '../../../src/model/dest.js';
import { lab, overload } from './helpers.js';
import { getScheduler } from '../../../src/sched/registry.js';

function mark(l: ReturnType<typeof lab>): { cl: number; cw: number; mw: number; di: number } {
  const s = l.sched as WrrScheduler;
  return { cl: s.cl, cw: s.cw, mw: s.mw, di: s.di };
}

describe('wrr (reference §1.3)', () => {
  it('A=1 then B=3 → list [B, A] → B,A,B,B,B,A,B,B,B,A', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 1);
    expect(mark(l)).toMatchObject({ di: 1, mw: 1, cw: 1 });
    const b = l.add('10.0.0.2', 3);
    expect(mark(l)).toMatchObject({ di: 1, mw: 3, cw: 1, cl: -1 });
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B']]);
    expect(l.seq(10, names).join(',')).toBe('B,A,B,B,B,A,B,B,B,A');
  });

  it('B=3 then A=1 → list [A, B] → A,B,B,B,A,B,B,B', () => {
    const l = lab('wrr');
    const b = l.add('10.0.0.2', 3);
    expect(mark(l)).toMatchObject({ di: 3, mw: 1, cw: 1 });
    const a = l.add('10.0.0.1', 1);
    expect(mark(l)).toMatchObject({ di: 1, mw: 3, cw: 1 });
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B']]);
    expect(l.seq(8, names).join(',')).toBe('A,B,B,B,A,B,B,B');
  });

  it('weights 2 and 4 (A then B): di=2, mw=3 → B,A,B,B,A,B,B,A', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 2);
    const b = l.add('10.0.0.2', 4);
    expect(mark(l)).toMatchObject({ di: 2, mw: 3 });
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B']]);
    expect(l.seq(8, names).join(',')).toBe('B,A,B,B,A,B,B,A');
  });

  it('edit resets cl to the head and adjusts cw: cw > mw → mw; di > 1 → (cw/di)*di + 1', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 5);
    l.pick(); // B at cw=1 (transient) ...
    l.pick(); // A, end of round → next
    l.pick(); // cw=5 → B
    expect(mark(l)).toMatchObject({ cw: 5, cl: 0 });
    l.edit(b, 2); // mw=2 < cw=5 → cw = mw
    expect(mark(l)).toMatchObject({ cw: 2, mw: 2, di: 1, cl: -1 });
    l.edit(a, 4); // weights 4,2: di=2, mw=3; cw=2 ≤ mw and di>1 → (2/2)*2+1 = 3
    expect(mark(l)).toMatchObject({ di: 2, mw: 3, cw: 3, cl: -1 });
  });

  it('delete resets cl to the head; removing the max weight lowers mw', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 3);
    const c = l.add('10.0.0.3', 2);
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B'], [c, 'C']]);
    // list [C, B, A], cw starts 1 (from A alone, kept on adds) → transient C,B,A then rounds.
    expect(l.seq(9, names).join(',')).toBe('C,B,A,B,C,B,C,B,A');
    l.del(b);
    expect(mark(l)).toMatchObject({ mw: 2, di: 1, cl: -1 });
    expect(l.seq(6, names).join(',')).toBe('C,A,C,C,A,C');
  });

  it('all weights 0 → mw = 0 → null; OVERLOAD everywhere → null and cw back to mw', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 0);
    expect(mark(l).mw).toBe(0);
    expect(l.pick()).toBeNull();
    l.edit(a, 2);
    const b = l.add('10.0.0.2', 4);
    overload(a);
    overload(b);
    expect(l.pick()).toBeNull();
    overload(a, false);
    expect(l.pick()).toBe(a);
  });

  it('skips an OVERLOAD dest within the rounds', () => {
    const l = lab('wrr');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    const c = l.add('10.0.0.3', 1);
    overload(b);
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B'], [c, 'C']]);
    expect(l.seq(4, names).join(',')).toBe('C,A,C,A');
  });

  it('a scheduler created on a service that already has dests starts a full round (cw = mw)', () => {
    const l = lab('rr');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 3);
    l.svc.sched = getScheduler('wrr')!.create(l.svc); // ipvsadm -E -s wrr
    expect(mark(l)).toMatchObject({ di: 1, mw: 3, cw: 3, cl: -1 });
    const names = new Map<Dest, string>([[a, 'A'], [b, 'B']]);
    expect(l.seq(8, names).join(',')).toBe('B,B,B,A,B,B,B,A');
  });
});

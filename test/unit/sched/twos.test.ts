import { afterEach, describe, expect, it } from 'vitest';
import { createTwosFactory, setTwosRandom } from '../../../src/sched/twos.js';
import { conns, lab, overload } from './helpers.js';

function scripted(values: number[], seen: number[]): (max: number) => number {
  let i = 0;
  return (max) => {
    seen.push(max);
    return values[i++ % values.length]!;
  };
}

afterEach(() => setTwosRandom(null));

describe('twos (reference §1.5)', () => {
  it('draws twice in [0, W] and walks eligible dests subtracting weights', () => {
    const seen: number[] = [];
    const l = lab(createTwosFactory({ random: scripted([0, 3, 6, 6, 1, 2], seen) }));
    const a = l.add('10.0.0.1', 3);
    const b = l.add('10.0.0.2', 2);
    const c = l.add('10.0.0.3', 1); // [C(1), B(2), A(3)], W = 6
    // r1=0 → C, r2=3 → B (3-1-2 = 0); equal overhead 0 → choice1 C.
    expect(l.pick()).toBe(c);
    expect(seen).toEqual([6, 6]);
    // r1=6, r2=6 → A both.
    expect(l.pick()).toBe(a);
    // r1=1 → C (1-1 = 0), r2=2 → B; C busier (256/1 vs 0/2) → B.
    conns(c, 1);
    expect(l.pick()).toBe(b);
  });

  it('returns choice2 only when strictly less loaded per weight', () => {
    const l = lab(createTwosFactory({ random: scripted([0, 6], []) }));
    const a = l.add('10.0.0.1', 3);
    const c = l.add('10.0.0.3', 3); // [C(3), A(3)], W=6: r1=0 → C, r2=6 → A
    conns(c, 1);
    conns(a, 1);
    expect(l.pick()).toBe(c); // 3*256 > 3*256 is false
    conns(a, 0, 255);
    expect(l.pick()).toBe(a);
  });

  it('skips OVERLOAD and weight 0 in both the sum and the walk; module random source', () => {
    const seen: number[] = [];
    setTwosRandom(scripted([2, 2], seen));
    const l = lab('twos');
    const a = l.add('10.0.0.1', 2);
    const b = l.add('10.0.0.2', 5);
    const c = l.add('10.0.0.3', 0);
    overload(b);
    expect(l.pick()).toBe(a);
    expect(seen).toEqual([2, 2]);
    void c;
  });
});

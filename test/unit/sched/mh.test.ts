import { describe, expect, it } from 'vitest';
import { MH_KEY1, MH_KEY2, MH_TAB_BITS, MH_TAB_SIZE, MhScheduler, mhHash } from '../../../src/sched/mh.js';
import { getScheduler } from '../../../src/sched/registry.js';
import { SVC_F_SCHED1, SVC_F_SCHED2 } from '../../../src/model/constants.js';
import type { Dest } from '../../../src/model/dest.js';
import { ip, lab, overload } from './helpers.js';

function offsetSkip(addr: string, port: number): [number, number] {
  const a = ip(addr);
  return [mhHash(MH_KEY1, a, port, 0) % MH_TAB_SIZE, (mhHash(MH_KEY2, a, port, 0) % (MH_TAB_SIZE - 1)) + 1];
}

function table(l: ReturnType<typeof lab>): (Dest | null)[] {
  return (l.sched as MhScheduler).table;
}

describe('mh (reference §1.8 vectors)', () => {
  it('has M = 4093 and MH_TAB_BITS = 6', () => {
    expect(MH_TAB_SIZE).toBe(4093);
    expect(MH_TAB_BITS).toBe(6);
    expect(getScheduler('mh')!.flagNames).toEqual(['mh-fallback', 'mh-port']);
  });

  it('dest offsets and skips', () => {
    expect(mhHash(MH_KEY1, ip('10.0.0.1'), 80, 0)).toBe(0x439c0cbe);
    expect(offsetSkip('10.0.0.1', 80)).toEqual([3167, 700]);
    expect(offsetSkip('10.0.0.2', 80)).toEqual([1231, 3544]);
    expect(offsetSkip('10.0.0.3', 80)).toEqual([1631, 3453]);
  });

  it('client slots', () => {
    expect(mhHash(MH_KEY1, ip('203.0.113.7'), 0, 0) % MH_TAB_SIZE).toBe(1705);
    expect(mhHash(MH_KEY1, ip('198.51.100.23'), 0, 0) % MH_TAB_SIZE).toBe(1748);
  });

  it('table for [B=10.0.0.2:80 w1, A=10.0.0.1:80 w1]: 2047/2046 split, first slots, two clients', () => {
    const l = lab('mh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    const t = table(l);
    expect(t.filter((d) => d === b).length).toBe(2047);
    expect(t.filter((d) => d === a).length).toBe(2046);
    expect(t.slice(0, 10).map((d) => (d === a ? 'A' : 'B')).join(',')).toBe('A,B,B,B,A,A,B,B,B,A');
    expect(l.pick('203.0.113.7')).toBe(b);
    expect(l.pick('198.51.100.23')).toBe(a);
  });

  it('weights: a w2 dest gets about twice the slots', () => {
    const l = lab('mh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 2);
    const t = table(l);
    const nb = t.filter((d) => d === b).length;
    expect(nb + t.filter((d) => d === a).length).toBe(MH_TAB_SIZE);
    expect(nb).toBe(Math.ceil((MH_TAB_SIZE * 2) / 3)); // rounds of 3 slots (B,B,A), B starts each
  });

  it('quiescing to weight 0 keeps the table (last_weight unchanged); lookups fail without fallback', () => {
    const l = lab('mh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    const before = table(l).slice();
    l.edit(b, 0);
    expect(table(l)).toEqual(before);
    expect(l.pick('203.0.113.7')).toBeNull();
    expect(l.pick('198.51.100.23')).toBe(a);
  });

  it('mh-fallback probes h(addr, port, (k + slot) % M) and finds an available dest', () => {
    const l = lab('mh', SVC_F_SCHED1);
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    overload(b);
    expect(l.pick('203.0.113.7')).toBe(a);
    // The exact probe: first k whose slot holds A.
    const t = table(l);
    const addr = ip('203.0.113.7');
    let want: Dest | null = null;
    for (let k = 0; k < MH_TAB_SIZE; k++) {
      const s = mhHash(MH_KEY1, addr, 0, (k + 1705) % MH_TAB_SIZE) % MH_TAB_SIZE;
      if (t[s] === a) { want = a; break; }
    }
    expect(want).toBe(a);
  });

  it('deleting a dest rebuilds: every slot goes to the survivor', () => {
    const l = lab('mh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    l.del(b);
    expect(table(l).every((d) => d === a)).toBe(true);
  });

  it('mh-port hashes the source port', () => {
    const l = lab('mh', SVC_F_SCHED2);
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    const t = table(l);
    for (const sport of [1000, 40000, 55555]) {
      const slot = mhHash(MH_KEY1, ip('203.0.113.7'), sport, 0) % MH_TAB_SIZE;
      expect(l.pick('203.0.113.7', 0, '192.0.2.1', sport)).toBe(t[slot]);
    }
    expect([a, b]).toContain(l.pick());
  });

  it('all last_weights 0 → empty table → null', () => {
    const l = lab('mh');
    l.add('10.0.0.1', 0);
    expect(table(l).every((d) => d === null)).toBe(true);
    expect(l.pick()).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { ShScheduler, shBucket } from '../../../src/sched/sh.js';
import { getScheduler } from '../../../src/sched/registry.js';
import { SVC_F_SCHED1, SVC_F_SCHED2 } from '../../../src/model/constants.js';
import type { Dest } from '../../../src/model/dest.js';
import { ip, lab, overload } from './helpers.js';

function table(l: ReturnType<typeof lab>): (Dest | null)[] {
  return (l.sched as ShScheduler).table;
}

describe('sh (reference §1.6)', () => {
  it('bucket numbers: 203.0.113.7 → 124; with port 40000 → 32', () => {
    expect(shBucket(ip('203.0.113.7'), 0, 0)).toBe(124);
    expect(shBucket(ip('203.0.113.7'), 40000, 0)).toBe(32);
    expect(getScheduler('sh')!.flagNames).toEqual(['sh-fallback', 'sh-port']);
  });

  it('bucket map for list [B(w3), A(w1)]: bucket i → A iff i mod 4 = 3', () => {
    const l = lab('sh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 3);
    const t = table(l);
    for (let i = 0; i < 256; i++) expect(t[i]).toBe(i % 4 === 3 ? a : b);
    expect(l.pick('203.0.113.7')).toBe(b); // bucket 124
  });

  it('empty service: every bucket empty', () => {
    const l = lab('sh');
    expect(table(l).every((d) => d === null)).toBe(true);
  });

  it('weight 0 or 1 takes one bucket; quiescing rebuilds the table (every bucket shifts)', () => {
    const l = lab('sh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 3);
    l.edit(b, 0);
    const t = table(l);
    for (let i = 0; i < 256; i++) expect(t[i]).toBe(i % 2 === 0 ? b : a);
    expect(l.pick('203.0.113.7')).toBeNull(); // bucket 124 → B, weight 0, no fallback
  });

  it('sh-port hashes the source port (TCP): 203.0.113.7:40000 → bucket 32', () => {
    const l = lab('sh', SVC_F_SCHED2);
    const ds: Dest[] = [];
    for (let i = 1; i <= 5; i++) ds.unshift(l.add(`10.0.0.${i}`, 1)); // ds in list order
    expect(l.pick('203.0.113.7', 0, '192.0.2.1', 40000)).toBe(ds[32 % 5]);
    const without = lab('sh');
    const ws: Dest[] = [];
    for (let i = 1; i <= 5; i++) ws.unshift(without.add(`10.0.0.${i}`, 1));
    expect(without.pick('203.0.113.7', 0, '192.0.2.1', 40000)).toBe(ws[124 % 5]);
  });

  it('sh-fallback probes buckets 2*home + k (kernel quirk), not home + 1', () => {
    const l = lab('sh', SVC_F_SCHED1);
    const ds: Dest[] = [];
    for (let i = 1; i <= 5; i++) ds.unshift(l.add(`10.0.0.${i}`, 1)); // bucket i → ds[i % 5]
    expect(l.pick('203.0.113.7')).toBe(ds[124 % 5]);
    overload(ds[124 % 5]!);
    // probe k=0 → bucket 248 → ds[3]; a "home + 1" probe would have given ds[0].
    expect(l.pick('203.0.113.7')).toBe(ds[248 % 5]);
    overload(ds[248 % 5]!);
    // k=1 → bucket 249 → ds[4], the overloaded home dest; k=2 → bucket 250 → ds[0].
    expect(l.pick('203.0.113.7')).toBe(ds[250 % 5]);
  });

  it('without fallback an unavailable home dest gives null', () => {
    const l = lab('sh');
    const a = l.add('10.0.0.1', 1);
    overload(a);
    expect(l.pick()).toBeNull();
  });

  it('ICMP errors hash the destination address', () => {
    const l = lab('sh');
    const ds: Dest[] = [];
    for (let i = 1; i <= 5; i++) ds.unshift(l.add(`10.0.0.${i}`, 1));
    const k = { proto: 6, saddr: ip('192.0.2.1'), sport: 80, daddr: ip('203.0.113.7'), dport: 40000, icmpError: true };
    expect(l.sched.pick(k, 0, null)).toBe(ds[124 % 5]);
  });
});

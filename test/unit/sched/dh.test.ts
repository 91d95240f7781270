import { describe, expect, it } from 'vitest';
import { DhScheduler, dhBucket } from '../../../src/sched/dh.js';
import type { Dest } from '../../../src/model/dest.js';
import { DEST_F_AVAILABLE } from '../../../src/model/constants.js';
import { ip, lab, overload } from './helpers.js';

function table(l: ReturnType<typeof lab>): (Dest | null)[] {
  return (l.sched as DhScheduler).table;
}

describe('dh (reference §1.7)', () => {
  it('one bucket per dest round robin over the list, weights ignored; bucket = hash_32(daddr, 8)', () => {
    const l = lab('dh');
    const ds: Dest[] = [];
    ds.unshift(l.add('10.0.0.1', 1));
    ds.unshift(l.add('10.0.0.2', 5));
    ds.unshift(l.add('10.0.0.3', 2)); // list order
    const t = table(l);
    for (let i = 0; i < 256; i++) expect(t[i]).toBe(ds[i % 3]);
    expect(dhBucket(ip('203.0.113.7'))).toBe(124);
    expect(l.pick('198.51.100.1', 0, '203.0.113.7')).toBe(ds[124 % 3]);
  });

  it('rebuilds on add and delete, not on weight edits', () => {
    const l = lab('dh');
    const a = l.add('10.0.0.1', 1);
    const b = l.add('10.0.0.2', 1);
    const before = table(l).slice();
    l.edit(a, 7);
    expect(table(l)).toEqual(before);
    l.del(b);
    expect(table(l).every((d) => d === a)).toBe(true);
  });

  it('null when the bucket dest has weight 0, OVERLOAD or is not AVAILABLE', () => {
    const l = lab('dh');
    const a = l.add('10.0.0.1', 1);
    expect(l.pick()).toBe(a);
    overload(a);
    expect(l.pick()).toBeNull();
    overload(a, false);
    a.flags &= ~DEST_F_AVAILABLE;
    expect(l.pick()).toBeNull();
    a.flags |= DEST_F_AVAILABLE;
    l.edit(a, 0);
    expect(l.pick()).toBeNull();
  });
});

/**
 * Properties every registered scheduler must have (issue 3 acceptance): never a weight-0 dest,
 * never an OVERLOAD dest, null when nothing is eligible, works on an empty service, deterministic
 * for the same inputs, clock and random source. Runs over schedulerNames(), so a new scheduler is
 * covered by registering it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { schedulerNames } from '../../../src/sched/registry.js';
import { setTwosRandom } from '../../../src/sched/twos.js';
import { SchedKey, SchedNote } from '../../../src/sched/scheduler.js';
import type { Dest } from '../../../src/model/dest.js';
import { SVC_F_SCHED1 } from '../../../src/model/constants.js';
import { conns, lab, overload, type Lab } from './helpers.js';

/** A small deterministic LCG: uniform-ish integers in [0, max]. */
function seeded(seed: number): (max: number) => number {
  let s = seed >>> 0;
  return (max) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % (max + 1);
  };
}

function clients(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`198.51.${(i * 7) & 255}.${(i * 13 + 1) & 255}`);
  return out;
}

/** Picks for many clients/destinations (sh/mh/dh/lblc key on them) at advancing times. */
function sweepPicks(l: Lab, n = 200): (Dest | null)[] {
  const out: (Dest | null)[] = [];
  const cs = clients(n);
  for (let i = 0; i < n; i++) out.push(l.pick(cs[i]!, i * 1000, cs[(i * 3) % n]!, 1024 + i));
  return out;
}

afterEach(() => setTwosRandom(null));

describe.each(schedulerNames())('conformance: %s', (name) => {
  it('is registered with its own name', () => {
    expect(lab(name).sched.name).toBe(name);
  });

  it('returns null on an empty service, and sweep() is harmless', () => {
    const l = lab(name);
    expect(l.pick()).toBeNull();
    l.sched.sweep(0);
    l.sched.sweep(3_600_000);
    expect(l.pick('203.0.113.9', 3_600_000)).toBeNull();
  });

  it('never picks a weight-0 dest', () => {
    const l = lab(name);
    const a = l.add('10.0.0.1', 0);
    const b = l.add('10.0.0.2', 2);
    const c = l.add('10.0.0.3', 0);
    l.add('10.0.0.4', 1);
    conns(b, 5, 3);
    for (const d of sweepPicks(l)) {
      expect(d).not.toBe(a);
      expect(d).not.toBe(c);
    }
  });

  it('never picks a weight-0 dest after quiescing (edit to 0), with fallback flags set', () => {
    const l = lab(name, SVC_F_SCHED1);
    const a = l.add('10.0.0.1', 3);
    l.add('10.0.0.2', 1);
    sweepPicks(l, 50);
    l.edit(a, 0);
    for (const d of sweepPicks(l)) expect(d).not.toBe(a);
  });

  it('skips OVERLOAD dests', () => {
    const l = lab(name);
    const a = l.add('10.0.0.1', 5);
    l.add('10.0.0.2', 1);
    const c = l.add('10.0.0.3', 2);
    overload(a);
    overload(c);
    for (const d of sweepPicks(l)) {
      expect(d).not.toBe(a);
      expect(d).not.toBe(c);
    }
  });

  it('returns null when no dest is eligible', () => {
    const l = lab(name, SVC_F_SCHED1);
    const a = l.add('10.0.0.1', 0);
    const b = l.add('10.0.0.2', 4);
    overload(b);
    for (const d of sweepPicks(l, 50)) expect(d).toBeNull();
    l.del(b);
    l.del(a);
    expect(l.pick()).toBeNull();
  });

  it('is deterministic for the same inputs, clock and random source', () => {
    const run = (): string[] => {
      setTwosRandom(seeded(42));
      const l = lab(name);
      const ds = [l.add('10.0.0.1', 1), l.add('10.0.0.2', 3), l.add('10.0.0.3', 2)];
      const out: string[] = [];
      let i = 0;
      for (const d of sweepPicks(l, 100)) {
        out.push(d === null ? '-' : String(ds.indexOf(d)));
        if (d !== null) d.activeConns++;
        if (++i === 50) l.edit(ds[1]!, 1);
      }
      return out;
    };
    expect(run()).toEqual(run());
  });

  it('writes one line of reasoning when a note is given', () => {
    const l = lab(name);
    l.add('10.0.0.1', 1);
    const key = new SchedKey();
    key.saddr = 0xcb007107;
    key.daddr = 0xc0000201;
    const note = new SchedNote();
    const d = l.sched.pick(key, 0, note);
    expect(d).not.toBeNull();
    expect(note.text.startsWith(`${name}: `)).toBe(true);
    expect(note.text).toContain('10.0.0.1:80');
    expect(note.text).not.toContain('\n');
  });
});

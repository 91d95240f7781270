import { describe, expect, it } from 'vitest';
import { TimerWheel, type DueHandler } from '../../../src/conn/timer-wheel.js';

class Collect implements DueHandler {
  due: Array<[number, number]> = [];
  onDue(idx: number, now: number): void {
    this.due.push([idx, now]);
  }
}

describe('TimerWheel', () => {
  it('fires exactly at expiry, re-slots lazily refreshed items, honours relink to earlier', () => {
    const exp = new Float64Array(4);
    const w = new TimerWheel(4, exp, 0, 0, 0, 100, 8); // span 800 ms
    const h = new Collect();
    exp[0] = 250; w.insert(0, 250);
    exp[1] = 5_000; w.insert(1, 5_000); // beyond the span: parked in the farthest slot
    exp[2] = 700; w.insert(2, 700);
    w.advance(249, 100, h);
    expect(h.due).toEqual([]);
    w.advance(250, 100, h);
    expect(h.due).toEqual([[0, 250]]);
    exp[2] = 1_500; // lazy refresh: only the field moves
    w.advance(1_499, 100, h);
    expect(h.due.length).toBe(1);
    exp[1] = 1_600; w.relink(1, 1_600); // earlier than before
    w.advance(1_600, 100, h);
    expect(h.due.slice(1).sort((a, b) => a[0] - b[0])).toEqual([[1, 1_600], [2, 1_600]]);
    expect(w.isLinked(0) || w.isLinked(1) || w.isLinked(2)).toBe(false);
  });

  it('survives a clock jump far beyond the span', () => {
    const exp = new Float64Array(3);
    const w = new TimerWheel(3, exp, 0, 0, 0, 64, 16);
    const h = new Collect();
    exp[0] = 10_000; w.insert(0, 10_000);
    exp[1] = 50_000_000; w.insert(1, 50_000_000);
    exp[2] = 20_000_000; w.insert(2, 20_000_000);
    w.advance(30_000_000, 1000, h);
    expect(h.due.map((d) => d[0]).sort()).toEqual([0, 2]);
    w.advance(49_999_999, 1000, h);
    expect(h.due.length).toBe(2);
    w.advance(50_000_000, 1000, h);
    expect(h.due.map((d) => d[0]).sort()).toEqual([0, 1, 2]);
  });

  it('budget stops mid-slot and resumes without losing items (incl. ones re-linked into the same slot)', () => {
    const n = 1000;
    const exp = new Float64Array(n);
    const w = new TimerWheel(n, exp, 0, 0, 0, 1000, 4);
    for (let i = 0; i < n; i++) {
      exp[i] = i % 2 === 0 ? 500 : 900; // same slot [0, 1000)
      w.insert(i, exp[i]!);
    }
    const h = new Collect();
    let calls = 0;
    do {
      w.advance(600, 37, h);
      calls++;
    } while (w.pending);
    expect(h.due.length).toBe(500);
    expect(calls).toBeGreaterThan(10);
    do w.advance(900, 37, h); while (w.pending);
    expect(h.due.length).toBe(1000);
    expect(new Set(h.due.map((d) => d[0])).size).toBe(1000);
  });
});

/**
 * The rate estimator against numbers computed by hand from the kernel's ip_vs_est.c:
 *   rate = (counter - last) << 9 (cps/pps: ×2^10 per second over a 2 s period),
 *          (bytes - last) << 4 (bps: ×2^5 per second over 2 s);
 *   est += (s64)(rate - est) >> 2      (EWMA 1/4, arithmetic shift: floors negatives);
 *   read: cps/pps (est + 0x1FF) >> 10, bps (est + 0xF) >> 5.
 */
import { describe, expect, it } from 'vitest';
import { Stats } from '../../../src/model/stats.js';
import { estimate, ESTIMATOR_PERIOD_MS } from '../../../src/model/estimator.js';
import { snapRates } from '../../../src/control/ops.js';

function period(s: Stats, conns: number, pkts: number, bytes: number, outPkts = 0, outBytes = 0): void {
  s.conns += conns;
  s.inpkts += pkts;
  s.inbytes += bytes;
  s.outpkts += outPkts;
  s.outbytes += outBytes;
  estimate(s);
}

describe('estimator (K ip_vs_est.c)', () => {
  it('runs every 2 s', () => {
    expect(ESTIMATOR_PERIOD_MS).toBe(2000);
  });

  it('first periods of 100 conns / 2 s: scaled values and displayed rates as the kernel computes them', () => {
    const s = new Stats();
    // Period 1: rate = 100 << 9 = 51200; cps = 0 + (51200 >> 2) = 12800; shown (12800+511)>>10 = 12.
    period(s, 100, 1000, 60000, 800, 400000);
    expect(s.cps).toBe(12800);
    // inpps: 1000 << 9 = 512000 → 128000 → (128000+511)>>10 = 125
    expect(s.inpps).toBe(128000);
    // inbps: 60000 << 4 = 960000 → 240000 → (240000+15)>>5 = 7500
    expect(s.inbps).toBe(240000);
    // outpps: 800 << 9 = 409600 → 102400 → 100; outbps: 400000 << 4 = 6400000 → 1600000 → 50000
    expect(snapRates(s)).toEqual({ cps: 12, inpps: 125, outpps: 100, inbps: 7500, outbps: 50000 });
    // Period 2: cps = 12800 + ((51200 - 12800) >> 2) = 22400 → (22400+511)>>10 = 22
    period(s, 100, 1000, 60000, 800, 400000);
    expect(s.cps).toBe(22400);
    expect(snapRates(s).cps).toBe(22);
    // Period 3: 22400 + (28800 >> 2) = 29600 → 29
    period(s, 100, 1000, 60000, 800, 400000);
    expect(s.cps).toBe(29600);
    expect(snapRates(s)).toEqual({ cps: 29, inpps: 289, outpps: 231, inbps: 17344, outbps: 115625 });
  });

  it('converges on the offered rate: 50 conn/s, 500 pkt/s, 30000 B/s', () => {
    const s = new Stats();
    for (let i = 0; i < 60; i++) period(s, 100, 1000, 60000);
    // The integer EWMA stops 3 short of the rate: (51200 - 51197) >> 2 = 0 — as in the kernel.
    expect(s.cps).toBe(51197);
    expect(snapRates(s)).toMatchObject({ cps: 50, inpps: 500, inbps: 30000, outpps: 0, outbps: 0 });
  });

  it('decays with an arithmetic (flooring) shift when traffic stops', () => {
    const s = new Stats();
    period(s, 100, 0, 0); // cps 12800
    period(s, 0, 0, 0); // 12800 + (-12800 >> 2) = 9600
    expect(s.cps).toBe(9600);
    s.cps = 3;
    period(s, 0, 0, 0); // 3 + (-3 >> 2) = 3 - 1 = 2 (s64 >> floors)
    expect(s.cps).toBe(2);
    s.inbps = 5;
    period(s, 0, 0, 0); // 5 + (-5 >> 2) = 5 - 2 = 3
    expect(s.inbps).toBe(3);
    for (let i = 0; i < 100; i++) period(s, 0, 0, 0);
    expect(snapRates(s)).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
    expect(s.cps).toBe(0);
  });

  it('rounds as ip_vs_read_estimator: (x + 0x1FF) >> 10 and (x + 0xF) >> 5', () => {
    const s = new Stats();
    const at = (cps: number, inbps: number) => { s.cps = cps; s.inbps = inbps; return snapRates(s); };
    expect(at(512, 16)).toMatchObject({ cps: 0, inbps: 0 }); // exactly one half rounds down
    expect(at(513, 17)).toMatchObject({ cps: 1, inbps: 1 });
    expect(at(1535, 47)).toMatchObject({ cps: 1, inbps: 1 });
    expect(at(1536, 48)).toMatchObject({ cps: 1, inbps: 1 });
    expect(at(1537, 49)).toMatchObject({ cps: 2, inbps: 2 });
  });

  it('zero() restarts from the current counters: no spike on the next period', () => {
    const s = new Stats();
    for (let i = 0; i < 10; i++) period(s, 100, 1000, 60000);
    s.zero();
    expect(snapRates(s)).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
    period(s, 10, 0, 0); // 10 << 9 = 5120 → 1280 → (1280+511)>>10 = 1
    expect(s.cps).toBe(1280);
    expect(snapRates(s).cps).toBe(1);
  });
});

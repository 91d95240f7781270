/**
 * The kernel's rate estimator (K ip_vs_est.c), run every 2 s over every Stats: per-second rates
 * smoothed with an EWMA of weight 1/4, kept scaled as the kernel keeps them (cps/pps ×2^10,
 * bps ×2^5) so listings round exactly as ipvsadm shows them.
 */
import type { Stats } from './stats.js';

export const ESTIMATOR_PERIOD_MS = 2000;

/** Arithmetic shift right by 2 of a possibly negative integer (s64 >> 2 floors). */
function ewma(cur: number, rate: number): number {
  return cur + Math.floor((rate - cur) / 4);
}

export function estimate(s: Stats): void {
  let rate = (s.conns - s.lastConns) * 512; // << 9: ×2^10 per second over a 2 s period
  s.lastConns = s.conns;
  s.cps = ewma(s.cps, rate);
  rate = (s.inpkts - s.lastInpkts) * 512;
  s.lastInpkts = s.inpkts;
  s.inpps = ewma(s.inpps, rate);
  rate = (s.outpkts - s.lastOutpkts) * 512;
  s.lastOutpkts = s.outpkts;
  s.outpps = ewma(s.outpps, rate);
  rate = (s.inbytes - s.lastInbytes) * 16; // << 4: ×2^5 per second over 2 s
  s.lastInbytes = s.inbytes;
  s.inbps = ewma(s.inbps, rate);
  rate = (s.outbytes - s.lastOutbytes) * 16;
  s.lastOutbytes = s.outbytes;
  s.outbps = ewma(s.outbps, rate);
}

/**
 * Connection-overhead formulas and the weighted least-connection selection shared by the
 * IPVS schedulers (K include/net/ip_vs.h ip_vs_dest_conn_overhead, ip_vs_wlc.c, ip_vs_lblc.c).
 *
 *   overhead(d)     = activeconns * 256 + inactconns          lc, wlc, lblc, lblcr, twos
 *   sedOverhead(d)  = activeconns + 1                         sed, nq
 *
 * "h1/w1 > h2/w2" is never divided: the kernel compares cross products in s64,
 * `(s64)h1 * w2 > (s64)h2 * w1`. JS numbers are exact integers up to 2^53; with ipvsadm weights
 * (<= 65535, 2^16) and overheads below 2^37 (2^29 active conns) the products stay exact.
 * (The kernel's overhead is an `int`, so it would itself wrap long before that.)
 */
import type { Dest } from '../model/dest.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';

/** ip_vs_dest_conn_overhead: active << 8 + inactive. */
export function destOverhead(d: Dest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** sed/nq cost: active + 1 (inactive connections are ignored). */
export function sedOverhead(d: Dest): number {
  return d.activeConns + 1;
}

/**
 * The wlc pick over a whole dest list (K ip_vs_wlc.c, __ip_vs_lblc_schedule,
 * __ip_vs_lblcr_schedule): the first !OVERLOAD dest with weight > 0 is the candidate; each later
 * !OVERLOAD dest replaces it iff overhead_best * w_d > overhead_d * w_best (strict, so ties go to
 * the earliest in list order and a weight-0 dest can never win). Null when nothing is eligible.
 */
export function wlcSelect(dests: readonly Dest[]): Dest | null {
  const n = dests.length;
  let i = 0;
  let least: Dest | null = null;
  for (; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight > 0) {
      least = d;
      break;
    }
  }
  if (least === null) return null;
  let loh = destOverhead(least);
  for (i++; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
    const doh = destOverhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * lblc/lblcr "is_overloaded" (not the OVERLOAD flag): the dest holds more active connections than
 * its weight AND some dest of the service (any, in list order, weight 0 and OVERLOAD included) is
 * below half of its weight (2 * active < weight).
 */
export function lblcOverloaded(d: Dest, dests: readonly Dest[]): boolean {
  if (d.activeConns > d.weight) {
    for (let i = 0; i < dests.length; i++) {
      const x = dests[i]!;
      if (x.activeConns * 2 < x.weight) return true;
    }
  }
  return false;
}

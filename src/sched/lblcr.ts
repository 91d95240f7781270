/**
 * lblcr — locality-based least connection with replication (K net/netfilter/ipvs/ip_vs_lblcr.c).
 *
 * Like lblc, but a destination address maps to a SET of dests (new members at the set's head).
 *
 *   en = cache[daddr]
 *   if en:
 *     en.lastuse = now
 *     m = set_min(en.set)      first member !OVERLOAD, weight > 0, AVAILABLE; later members that
 *                              are !OVERLOAD and AVAILABLE replace it on strictly smaller
 *                              overhead/weight (cross products)
 *     if |set| > 1 and now > set.lastmod + expiration:           (shrink, on the packet path)
 *       x = set_max(en.set)    first member with weight > 0; later ones with weight > 0 replace it
 *                              when x_oh * w_d < d_oh * w_x
 *       remove x from the set; set.lastmod = now                  (m may be x: still returned)
 *     if m and not overloaded(m): return m
 *     d = wlc(service dests)                                     (none: NULL)
 *     add d to the set if absent (then set.lastmod = now); return d
 *   d = wlc(service dests)                                       (none: NULL)
 *   cache[daddr] = {set = [d], lastmod = now, lastuse = now}; return d
 *
 * overloaded() is lblc's test (active > weight while some dest is under half its weight); the
 * OVERLOAD flag of m is checked by set_min itself. Removed dests (not AVAILABLE) stay in sets
 * until shrunk or expired, as in the kernel. Cache GC (lblcr_expiration, default 24 h, factory
 * option expirationMs) runs from sweep(now): see locality.ts.
 */
import type { Expiration } from '../model/sysctl.js';
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destOverhead, lblcOverloaded, wlcSelect } from './overhead.js';
import { DEFAULT_EXPIRATION_MS, LocalityTable, type LocalityEntry } from './locality.js';
import { destName } from './note.js';
import { ipToString } from '../model/addr.js';

export class LblcrEntry implements LocalityEntry {
  readonly addr: number;
  /** The dest set, head first. */
  readonly set: Dest[];
  lastmod: number;
  lastuse: number;

  constructor(addr: number, dest: Dest, now: number) {
    this.addr = addr;
    this.set = [dest];
    this.lastmod = now;
    this.lastuse = now;
  }
}

/** ip_vs_dest_set_min: weighted least-loaded member, or null. */
export function destSetMin(set: readonly Dest[]): Dest | null {
  const n = set.length;
  let i = 0;
  let least: Dest | null = null;
  for (; i < n; i++) {
    const d = set[i]!;
    if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
    if (d.weight > 0 && (d.flags & DEST_F_AVAILABLE) !== 0) {
      least = d;
      break;
    }
  }
  if (least === null) return null;
  let loh = destOverhead(least);
  for (i++; i < n; i++) {
    const d = set[i]!;
    if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
    const doh = destOverhead(d);
    if (loh * d.weight > doh * least.weight && (d.flags & DEST_F_AVAILABLE) !== 0) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_dest_set_max: weighted most-loaded member with weight > 0, or null. */
export function destSetMax(set: readonly Dest[]): Dest | null {
  const n = set.length;
  let i = 0;
  let most: Dest | null = null;
  for (; i < n; i++) {
    if (set[i]!.weight > 0) {
      most = set[i]!;
      break;
    }
  }
  if (most === null) return null;
  let moh = destOverhead(most);
  for (i++; i < n; i++) {
    const d = set[i]!;
    const doh = destOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export class LblcrScheduler implements Scheduler {
  readonly name = 'lblcr';
  private readonly svc: Service;
  readonly cache: LocalityTable<LblcrEntry>;

  constructor(svc: Service, expiration: Expiration) {
    this.svc = svc;
    this.cache = new LocalityTable<LblcrEntry>(expiration);
  }

  pick(key: SchedKey, now: number, note: SchedNote | null): Dest | null {
    const cache = this.cache;
    if (cache.nextCheck < 0) cache.arm(now);
    const dests = this.svc.dests;
    const daddr = key.daddr;
    const en = cache.get(daddr);
    if (en === undefined) {
      const d = wlcSelect(dests);
      if (d === null) {
        if (note !== null) note.text = `lblcr: ${ipToString(daddr)} not cached, no dest for wlc → no destination available`;
        return null;
      }
      cache.insert(new LblcrEntry(daddr, d, now));
      if (note !== null) note.text = `lblcr: ${ipToString(daddr)} not cached, wlc overhead/weight ${destOverhead(d)}/${d.weight} → ${destName(d)} (new set)`;
      return d;
    }
    en.lastuse = now;
    const set = en.set;
    const m = destSetMin(set);
    let shrunk: Dest | null = null;
    if (set.length > 1 && now > en.lastmod + cache.expirationMs) {
      const x = destSetMax(set);
      if (x !== null) {
        set.splice(set.indexOf(x), 1);
        en.lastmod = now;
        shrunk = x;
      }
    }
    if (m !== null && !lblcOverloaded(m, dests)) {
      if (note !== null) note.text = `lblcr: ${ipToString(daddr)} set least loaded → ${destName(m)}${shrunk ? ` (set shrunk: ${destName(shrunk)} removed)` : ''}`;
      return m;
    }
    const d = wlcSelect(dests);
    if (d === null) {
      if (note !== null) note.text = `lblcr: ${ipToString(daddr)} set has no usable dest, no dest for wlc → no destination available`;
      return null;
    }
    if (set.indexOf(d) < 0) {
      set.unshift(d);
      en.lastmod = now;
    }
    if (note !== null) note.text = `lblcr: ${ipToString(daddr)} set ${m ? `least ${destName(m)} overloaded` : 'has no usable dest'}, wlc → ${destName(d)} (added to set of ${set.length})`;
    return d;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}

  sweep(now: number): void {
    this.cache.sweep(now);
  }
}

export interface LblcrOptions {
  /** The lblcr_expiration sysctl in ms (default 24 h). */
  expirationMs?: number;
}

export function createLblcrFactory(opts: LblcrOptions = {}): SchedulerFactory {
  // An explicit expirationMs is fixed; otherwise the director's lblcr_expiration sysctl (env),
  // or the default when created without one.
  const own = opts.expirationMs !== undefined ? { ms: opts.expirationMs } : undefined;
  return { name: 'lblcr', create: (svc, env) => new LblcrScheduler(svc, own ?? env?.lblcrExpiration ?? { ms: DEFAULT_EXPIRATION_MS }) };
}

export const lblcrFactory: SchedulerFactory = createLblcrFactory();

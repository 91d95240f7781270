/**
 * lblc — locality-based least connection (K net/netfilter/ipvs/ip_vs_lblc.c).
 *
 * For "web cache clusters": requests for one destination address go to the same server while it is
 * not overloaded. The key is the packet's DESTINATION address.
 *
 *   en = cache[daddr]
 *   if en:
 *     en.lastuse = now
 *     d = en.dest
 *     if d is AVAILABLE and d.weight > 0 and not overloaded(d): return d
 *   d = wlc(service dests)                            (none: NULL, "no destination available")
 *   cache[daddr] = {d, lastuse = now}                 (an entry for another dest is replaced)
 *   return d
 *
 *   overloaded(d) = d.active > d.weight and some dest x of the service (any, list order, weight-0
 *                   and OVERLOAD ones included) has 2 * x.active < x.weight
 *
 * Quirks: the OVERLOAD flag of a cached dest is NOT checked (only the wlc path skips OVERLOAD);
 * there are no add/del hooks — a deleted dest (not AVAILABLE) just forces rescheduling on its next
 * lookup. Cache GC (expiration default 24 h, factory option expirationMs) runs from sweep(now):
 * see locality.ts.
 */
import type { Expiration } from '../model/sysctl.js';
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_AVAILABLE } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destOverhead, lblcOverloaded, wlcSelect } from './overhead.js';
import { DEFAULT_EXPIRATION_MS, LocalityTable, type LocalityEntry } from './locality.js';
import { destName } from './note.js';
import { ipToString } from '../model/addr.js';

export class LblcEntry implements LocalityEntry {
  readonly addr: number;
  readonly dest: Dest;
  lastuse: number;

  constructor(addr: number, dest: Dest, now: number) {
    this.addr = addr;
    this.dest = dest;
    this.lastuse = now;
  }
}

export class LblcScheduler implements Scheduler {
  readonly name = 'lblc';
  private readonly svc: Service;
  readonly cache: LocalityTable<LblcEntry>;

  constructor(svc: Service, expiration: Expiration) {
    this.svc = svc;
    this.cache = new LocalityTable<LblcEntry>(expiration);
  }

  pick(key: SchedKey, now: number, note: SchedNote | null): Dest | null {
    const cache = this.cache;
    if (cache.nextCheck < 0) cache.arm(now);
    const dests = this.svc.dests;
    const daddr = key.daddr;
    const en = cache.get(daddr);
    if (en !== undefined) {
      en.lastuse = now;
      const d = en.dest;
      if ((d.flags & DEST_F_AVAILABLE) !== 0 && d.weight > 0 && !lblcOverloaded(d, dests)) {
        if (note !== null) note.text = `lblc: ${ipToString(daddr)} cached → ${destName(d)}`;
        return d;
      }
    }
    const d = wlcSelect(dests);
    if (d === null) {
      if (note !== null) note.text = `lblc: ${ipToString(daddr)} ${en ? 'cached dest unusable' : 'not cached'}, no dest for wlc → no destination available`;
      return null;
    }
    if (en === undefined || en.dest !== d) cache.insert(new LblcEntry(daddr, d, now));
    if (note !== null) {
      note.text = `lblc: ${ipToString(daddr)} ${en ? `cached ${destName(en.dest)} unusable` : 'not cached'}, wlc overhead/weight ${destOverhead(d)}/${d.weight} → ${destName(d)}`;
    }
    return d;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}

  sweep(now: number): void {
    this.cache.sweep(now);
  }
}

export interface LblcOptions {
  /** The lblc_expiration sysctl in ms (default 24 h). */
  expirationMs?: number;
}

export function createLblcFactory(opts: LblcOptions = {}): SchedulerFactory {
  // An explicit expirationMs is fixed; otherwise the director's lblc_expiration sysctl (env),
  // or the default when created without one.
  const own = opts.expirationMs !== undefined ? { ms: opts.expirationMs } : undefined;
  return { name: 'lblc', create: (svc, env) => new LblcScheduler(svc, own ?? env?.lblcExpiration ?? { ms: DEFAULT_EXPIRATION_MS }) };
}

export const lblcFactory: SchedulerFactory = createLblcFactory();

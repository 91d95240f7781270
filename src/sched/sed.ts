/**
 * sed — shortest expected delay (K net/netfilter/ipvs/ip_vs_sed.c).
 *
 *   least = first dest (list order) with !OVERLOAD and weight > 0      (none: NULL)
 *   for each later dest d with !OVERLOAD:
 *     if (least.active + 1) * d.weight > (d.active + 1) * least.weight: least = d
 *   return least
 *
 * Exactly wlc with cost = activeconns + 1: inactive connections are ignored. Ties go to the
 * earliest dest in list order; weight 0 never wins.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { sedOverhead } from './overhead.js';
import { destName } from './note.js';

export class SedScheduler implements Scheduler {
  readonly name = 'sed';
  private readonly svc: Service;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
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
    if (least === null) {
      if (note !== null) note.text = 'sed: no dest with weight > 0 and no OVERLOAD → no destination available';
      return null;
    }
    let loh = sedOverhead(least);
    for (i++; i < n; i++) {
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
      const doh = sedOverhead(d);
      if (loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    if (note !== null) note.text = `sed: least (active+1)/weight ${loh}/${least.weight} → ${destName(least)}`;
    return least;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const sedFactory: SchedulerFactory = {
  name: 'sed',
  create: (svc) => new SedScheduler(svc),
};

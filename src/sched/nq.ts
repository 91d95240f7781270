/**
 * nq — never queue (K net/netfilter/ipvs/ip_vs_nq.c).
 *
 *   least = NULL
 *   for d in list:
 *     if OVERLOAD or weight == 0: skip
 *     if d.active == 0: return d                       (idle server: taken at once)
 *     if least == NULL or (least.active+1) * d.weight > (d.active+1) * least.weight: least = d
 *   return least                                       (NULL: "no destination available")
 *
 * "Idle" looks at active connections only: a dest with inactive connections but no active one is
 * still idle. The first idle dest in list order wins; otherwise it is sed, ties to the earliest.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { sedOverhead } from './overhead.js';
import { destName } from './note.js';

export class NqScheduler implements Scheduler {
  readonly name = 'nq';
  private readonly svc: Service;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    let least: Dest | null = null;
    let loh = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) !== 0 || d.weight === 0) continue;
      const doh = sedOverhead(d);
      if (d.activeConns === 0) {
        if (note !== null) note.text = `nq: idle (0 active) → ${destName(d)}`;
        return d;
      }
      if (least === null || loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    if (note !== null) {
      note.text = least === null
        ? 'nq: no dest with weight > 0 and no OVERLOAD → no destination available'
        : `nq: nobody idle, least (active+1)/weight ${loh}/${least.weight} → ${destName(least)}`;
    }
    return least;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const nqFactory: SchedulerFactory = {
  name: 'nq',
  create: (svc) => new NqScheduler(svc),
};

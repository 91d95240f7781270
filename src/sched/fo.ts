/**
 * fo — weighted fail-over (K net/netfilter/ipvs/ip_vs_fo.c).
 *
 *   best = NULL; hw = 0
 *   for d in list:
 *     if !OVERLOAD and d.weight > hw: best = d; hw = d.weight
 *   return best                                         (NULL: "no destination available")
 *
 * All traffic goes to the available dest with the highest weight; strict ">" starting from 0, so
 * weight 0 is never chosen and ties go to the earliest dest in list order (the newest added).
 * Connection counts are ignored.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destName } from './note.js';

export class FoScheduler implements Scheduler {
  readonly name = 'fo';
  private readonly svc: Service;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    let best: Dest | null = null;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight > hw) {
        best = d;
        hw = d.weight;
      }
    }
    if (note !== null) {
      note.text = best === null
        ? 'fo: no dest with weight > 0 and no OVERLOAD → no destination available'
        : `fo: highest weight ${hw} → ${destName(best)}`;
    }
    return best;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const foFactory: SchedulerFactory = {
  name: 'fo',
  create: (svc) => new FoScheduler(svc),
};

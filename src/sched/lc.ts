/**
 * lc — least connection (K net/netfilter/ipvs/ip_vs_lc.c).
 *
 *   least = NULL
 *   for d in list:                          (kernel order, newest first)
 *     if OVERLOAD or weight == 0: skip
 *     if least == NULL or overhead(d) < overhead(least): least = d
 *   return least                            (NULL: "no destination available")
 *
 * overhead = active * 256 + inactive (the source comment's "<<5" is stale). Weights other than 0
 * are ignored. Strict "<": ties go to the earliest dest in list order (the newest added).
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destOverhead } from './overhead.js';
import { destName } from './note.js';

export class LcScheduler implements Scheduler {
  readonly name = 'lc';
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
      const doh = destOverhead(d);
      if (least === null || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    if (note !== null) {
      note.text = least === null
        ? 'lc: no dest with weight > 0 and no OVERLOAD → no destination available'
        : `lc: least overhead ${loh} (active ${least.activeConns}*256 + inactive ${least.inactConns}) → ${destName(least)}`;
    }
    return least;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const lcFactory: SchedulerFactory = {
  name: 'lc',
  create: (svc) => new LcScheduler(svc),
};

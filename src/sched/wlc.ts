/**
 * wlc — weighted least connection, the ipvsadm default (K net/netfilter/ipvs/ip_vs_wlc.c).
 *
 *   least = first dest (list order) with !OVERLOAD and weight > 0      (none: NULL)
 *   for each later dest d with !OVERLOAD:
 *     if overhead(least) * d.weight > overhead(d) * least.weight: least = d
 *   return least
 *
 * overhead = active * 256 + inactive; comparison by cross multiplication (s64 in the kernel).
 * Strict ">": ties go to the earliest dest in list order; a weight-0 dest can never replace the
 * candidate (its left side is 0).
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destOverhead, wlcSelect } from './overhead.js';
import { destName } from './note.js';

export class WlcScheduler implements Scheduler {
  readonly name = 'wlc';
  private readonly svc: Service;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const least = wlcSelect(this.svc.dests);
    if (note !== null) {
      note.text = least === null
        ? 'wlc: no dest with weight > 0 and no OVERLOAD → no destination available'
        : `wlc: least overhead/weight ${destOverhead(least)}/${least.weight} → ${destName(least)}`;
    }
    return least;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const wlcFactory: SchedulerFactory = {
  name: 'wlc',
  create: (svc) => new WlcScheduler(svc),
};

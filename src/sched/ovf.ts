/**
 * ovf — overflow-connection (K net/netfilter/ipvs/ip_vs_ovf.c).
 *
 *   h = NULL
 *   for d in list:
 *     if OVERLOAD or d.active > d.weight or d.weight == 0: skip
 *     if h == NULL or d.weight > h.weight: h = d
 *   return h                                            (NULL: "no destination available")
 *
 * The highest-weight dest takes connections until it holds weight + 1 ACTIVE connections (the
 * test is "active > weight"), then the next highest overflows in. Inactive connections are
 * ignored; ties go to the earliest dest in list order.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destName } from './note.js';

export class OvfScheduler implements Scheduler {
  readonly name = 'ovf';
  private readonly svc: Service;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    let h: Dest | null = null;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      const w = d.weight;
      if ((d.flags & DEST_F_OVERLOAD) !== 0 || d.activeConns > w || w === 0) continue;
      if (h === null || w > h.weight) h = d;
    }
    if (note !== null) {
      note.text = h === null
        ? 'ovf: every dest is OVERLOAD, weight 0 or holds more active conns than its weight → no destination available'
        : `ovf: highest weight ${h.weight} with active ${h.activeConns} <= weight → ${destName(h)}`;
    }
    return h;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export const ovfFactory: SchedulerFactory = {
  name: 'ovf',
  create: (svc) => new OvfScheduler(svc),
};

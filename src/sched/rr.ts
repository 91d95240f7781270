/**
 * rr — round robin (K net/netfilter/ipvs/ip_vs_rr.c).
 *
 * Algorithm (the kernel keeps a cursor = the list node of the last pick, initially the head):
 *
 *   for d in list, starting after the cursor, wrapping once, up to and INCLUDING the cursor:
 *     if d.weight > 0 and !OVERLOAD: cursor = d; return d
 *   return NULL                            ("no destination available")
 *
 * Quirks kept:
 * - The list is in kernel order (newest dest first), so a fresh service first picks the most
 *   recently added dest; a dest added later sits at the head and is reached at the next wrap.
 * - The previous pick is eligible again only after every other dest was refused.
 * - Deleting the cursor's dest moves the cursor to its predecessor (ip_vs_rr_del_dest uses
 *   p->next->prev), so scanning resumes at the deleted entry's old successor.
 * - Adding or editing a dest has no hook in the kernel; here the cursor's index is re-derived
 *   because our list is an array (the cursor still names the same dest).
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destName } from './note.js';

export class RrScheduler implements Scheduler {
  readonly name = 'rr';
  private readonly svc: Service;
  /** Index of the last pick in svc.dests; -1 = list head (nothing picked yet). */
  private cursor = -1;
  private cursorDest: Dest | null = null;

  constructor(svc: Service) {
    this.svc = svc;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    const n = dests.length;
    let i = this.cursor;
    for (let k = 0; k < n; k++) {
      i++;
      if (i === n) i = 0;
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight > 0) {
        if (note !== null) note.text = `rr: after #${this.cursor} → #${i} ${destName(d)}`;
        this.cursor = i;
        this.cursorDest = d;
        return d;
      }
    }
    if (note !== null) note.text = `rr: none of ${n} dests has weight > 0 and no OVERLOAD → no destination available`;
    return null;
  }

  onDestChange(kind: DestChange, dest: Dest): void {
    if (this.cursorDest === null) return;
    if (kind === 'del' && dest === this.cursorDest) {
      // The cursor becomes the deleted entry's predecessor (or the head).
      this.cursor--;
      this.cursorDest = this.cursor >= 0 ? this.svc.dests[this.cursor] ?? null : null;
      if (this.cursorDest === null) this.cursor = -1;
      return;
    }
    this.cursor = this.svc.dests.indexOf(this.cursorDest);
    if (this.cursor < 0) this.cursorDest = null;
  }

  sweep(_now: number): void {}
}

export const rrFactory: SchedulerFactory = {
  name: 'rr',
  create: (svc) => new RrScheduler(svc),
};

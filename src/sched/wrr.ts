/**
 * wrr — weighted round robin (K net/netfilter/ipvs/ip_vs_wrr.c).
 *
 * State mark = {cl, cw, mw, di}:
 *   di = gcd of the weights > 0 (1 if none)       mw = max weight - (di - 1)
 *   cl = last picked dest (initially the list head), cw = current weight level.
 *
 * Pick:
 *   if mw == 0: NULL                              ("no destination available")
 *   scan the list after cl:
 *     first d with !OVERLOAD and d.weight >= cw  → cl = d, return d
 *     at the list end: cw -= di; if cw <= 0 { cw = mw; new round from the list start }
 *   stop with NULL once every dest was checked at the lowest level (cw <= di), i.e. for weight >= 1
 *   ("all destinations are overloaded"); the kernel's last_pass/restarted/stop bookkeeping is
 *   reproduced exactly, including where cl is left on failure.
 *
 * On ANY add / delete / edit (ip_vs_wrr_dest_changed):
 *   cl = head; recompute di, mw;
 *   if cw > mw or cw == 0: cw = mw   else if di > 1: cw = (cw / di) * di + 1   else cw unchanged.
 *
 * Worked example (reference §1.3): add A(w1) then B(w3) → list [B, A] → B,A,B,B,B,A,B,B,B,A,...
 * Weight-0 dests never match (cw >= 1 always).
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { gcd } from './hash.js';
import { destName } from './note.js';

export class WrrScheduler implements Scheduler {
  readonly name = 'wrr';
  private readonly svc: Service;
  /** Index of the last pick in svc.dests; -1 = the list head. */
  cl = -1;
  cw = 0;
  mw = 0;
  di = 1;

  constructor(svc: Service) {
    this.svc = svc;
    this.recompute();
    this.cw = this.mw;
  }

  private recompute(): void {
    const dests = this.svc.dests;
    let g = 0;
    let max = 0;
    for (let i = 0; i < dests.length; i++) {
      const w = dests[i]!.weight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    this.di = g > 0 ? g : 1;
    this.mw = max - (this.di - 1);
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    const n = dests.length;
    if (this.mw === 0) {
      if (note !== null) note.text = 'wrr: every weight is 0 (mw=0) → no destination available';
      return null;
    }
    const last = this.cl;
    let i = last;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    for (;;) {
      for (i++; i < n; i++) {
        const d = dests[i]!;
        if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight >= this.cw) {
          if (note !== null) note.text = `wrr: cw=${this.cw} mw=${this.mw} di=${this.di} → ${destName(d)}`;
          this.cl = i;
          return d;
        }
        if (i === stop) {
          this.cl = i;
          return this.overloaded(note);
        }
      }
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === -1) {
          this.cl = -1;
          return this.overloaded(note);
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
      i = -1;
    }
  }

  private overloaded(note: SchedNote | null): null {
    if (note !== null) note.text = `wrr: cw=${this.cw} mw=${this.mw} di=${this.di}: all destinations are overloaded → no destination available`;
    return null;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {
    this.cl = -1;
    this.recompute();
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  sweep(_now: number): void {}
}

export const wrrFactory: SchedulerFactory = {
  name: 'wrr',
  create: (svc) => new WrrScheduler(svc),
};

/**
 * dh — destination hashing (K net/netfilter/ipvs/ip_vs_dh.c).
 *
 * Table: 256 buckets, one bucket per dest, filled round robin over the list (weights ignored):
 *
 *   for b in 0..255: table[b] = list[b mod n]          (empty list: every bucket empty)
 *
 * Rebuilt on add and delete only — the kernel has no upd_dest hook for dh, so a weight edit does
 * not touch the table.
 *
 * Lookup: d = table[hash_32(daddr, 8)]; NULL if the bucket is empty or d is not AVAILABLE, has
 * weight <= 0 or OVERLOAD. No fallback and no port flag.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { hash32 } from './hash.js';
import { destName } from './note.js';
import { ipToString } from '../model/addr.js';

export const DH_TAB_BITS = 8;
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;

export function dhBucket(daddr: number): number {
  return hash32(daddr, DH_TAB_BITS);
}

export class DhScheduler implements Scheduler {
  readonly name = 'dh';
  private readonly svc: Service;
  readonly table: (Dest | null)[] = new Array<Dest | null>(DH_TAB_SIZE).fill(null);

  constructor(svc: Service) {
    this.svc = svc;
    this.rebuild();
  }

  private rebuild(): void {
    const dests = this.svc.dests;
    const n = dests.length;
    let p = 0;
    for (let b = 0; b < DH_TAB_SIZE; b++) {
      if (n === 0) {
        this.table[b] = null;
        continue;
      }
      this.table[b] = dests[p]!;
      p++;
      if (p === n) p = 0;
    }
  }

  pick(key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const b = dhBucket(key.daddr);
    const d = this.table[b]!;
    if (d === null || (d.flags & DEST_F_AVAILABLE) === 0 || d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0) {
      if (note !== null) note.text = `dh: ${ipToString(key.daddr)} bucket ${b} → ${destName(d)} unavailable → no destination available`;
      return null;
    }
    if (note !== null) note.text = `dh: ${ipToString(key.daddr)} bucket ${b} → ${destName(d)}`;
    return d;
  }

  onDestChange(kind: DestChange, _dest: Dest): void {
    if (kind !== 'edit') this.rebuild();
  }

  sweep(_now: number): void {}
}

export const dhFactory: SchedulerFactory = {
  name: 'dh',
  create: (svc) => new DhScheduler(svc),
};

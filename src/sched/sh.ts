/**
 * sh — source hashing (K net/netfilter/ipvs/ip_vs_sh.c).
 *
 * Table: 256 buckets (CONFIG_IP_VS_SH_TAB_BITS = 8), rebuilt on every add / delete / edit:
 *
 *   p = list start; count = 0
 *   for b in 0..255:
 *     table[b] = p                                (empty list: every bucket empty)
 *     if ++count >= p.weight: p = next(p) cyclically; count = 0     (weight 0 or 1: one bucket)
 *
 *   e.g. list [B(w3), A(w1)] → B,B,B,A,B,B,B,A,...
 *
 * Lookup:
 *   addr = source address (destination address when scheduling for an ICMP error)
 *   port = 0, or the source port (ICMP error: destination port) with sh-port (SVC_F_SCHED2) for
 *          TCP/UDP/SCTP
 *   home = hash_32(port + addr, 8)               (u32 sum of host-order numbers)
 *   d = table[home]; empty, weight <= 0 or OVERLOAD → NULL
 *   with sh-fallback (SVC_F_SCHED1), an unavailable home dest makes it probe, for k = 0..255,
 *   bucket ((k + home) % 256 + hash_32(port + addr, 8)) & 255 — i.e. 2*home + k: the kernel adds
 *   the home bucket twice (quirk kept); the first available dest wins, an empty bucket ends it.
 *
 * Quirks: setting a weight to 0 rebuilds the table (that dest keeps one bucket and every other
 * bucket shifts). Examples: 203.0.113.7 → bucket 124; with sh-port and source port 40000 → 32.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, SVC_F_SCHED1, SVC_F_SCHED2 } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { hash32 } from './hash.js';
import { destName } from './note.js';
import { ipToString } from '../model/addr.js';

export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;

/** The kernel's ip_vs_sh_hashkey: (offset + hash_32(port + addr, 8)) & 255. */
export function shBucket(addr: number, port: number, offset: number): number {
  return (offset + hash32((port + addr) >>> 0, SH_TAB_BITS)) & SH_TAB_MASK;
}

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0;
}

export class ShScheduler implements Scheduler {
  readonly name = 'sh';
  private readonly svc: Service;
  /** Bucket → dest; null = empty. Sized once. */
  readonly table: (Dest | null)[] = new Array<Dest | null>(SH_TAB_SIZE).fill(null);

  constructor(svc: Service) {
    this.svc = svc;
    this.rebuild();
  }

  private rebuild(): void {
    const dests = this.svc.dests;
    const n = dests.length;
    let p = 0;
    let count = 0;
    for (let b = 0; b < SH_TAB_SIZE; b++) {
      if (n === 0) {
        this.table[b] = null;
        continue;
      }
      const d = dests[p]!;
      this.table[b] = d;
      if (++count >= d.weight) {
        p++;
        if (p === n) p = 0;
        count = 0;
      }
    }
  }

  pick(key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const flags = this.svc.flags;
    const addr = key.icmpError ? key.daddr : key.saddr;
    let port = 0;
    if ((flags & SVC_F_SCHED2) !== 0 && (key.proto === IPPROTO_TCP || key.proto === IPPROTO_UDP || key.proto === IPPROTO_SCTP)) {
      port = key.icmpError ? key.dport : key.sport;
    }
    const home = shBucket(addr, port, 0);
    const d = this.table[home]!;
    if (d === null || !unavailable(d)) {
      if (note !== null) note.text = `sh: ${ipToString(addr)}:${port} bucket ${home} → ${destName(d)}`;
      return d;
    }
    if ((flags & SVC_F_SCHED1) === 0) {
      if (note !== null) note.text = `sh: ${ipToString(addr)}:${port} bucket ${home} → ${destName(d)} unavailable (weight ${d.weight}), no fallback → no destination available`;
      return null;
    }
    for (let k = 0; k < SH_TAB_SIZE; k++) {
      const b = shBucket(addr, port, (k + home) % SH_TAB_SIZE);
      const f = this.table[b]!;
      if (f === null) break;
      if (!unavailable(f)) {
        if (note !== null) note.text = `sh: ${ipToString(addr)}:${port} bucket ${home} → ${destName(d)} unavailable, fallback bucket ${b} → ${destName(f)}`;
        return f;
      }
    }
    if (note !== null) note.text = `sh: ${ipToString(addr)}:${port} bucket ${home} unavailable, fallback found nothing → no destination available`;
    return null;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {
    this.rebuild();
  }

  sweep(_now: number): void {}
}

export const shFactory: SchedulerFactory = {
  name: 'sh',
  flagNames: ['sh-fallback', 'sh-port'],
  create: (svc) => new ShScheduler(svc),
};

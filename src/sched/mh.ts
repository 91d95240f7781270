/**
 * mh — Maglev hashing (K net/netfilter/ipvs/ip_vs_mh.c; Eisenbud et al., NSDI'16 §3.4).
 *
 * Table: M = 4093 slots (primes[CONFIG_IP_VS_MH_TAB_INDEX - 8], default index 12), MH_TAB_BITS = 6.
 * h_key(addr, port, offset) = hsiphash(u32 (offset + port + addr), key): SipHash-1-3 on 64-bit
 * kernels, low 32 bits; key1 = (2654435761, 2654435761), key2 = (2654446892, 2654446892).
 *
 * Rebuild (every add / delete / edit; only last_weight matters, so quiescing a dest to weight 0
 * leaves the table as it was — we skip that rebuild since it cannot change anything):
 *
 *   g = gcd of last_weights > 0                       (none: every slot empty)
 *   rshift = max(0, fls(max last_weight / g) - 6)
 *   per dest in list order:
 *     offset = h_key1(d.addr, d.port, 0) % M
 *     skip   = h_key2(d.addr, d.port, 0) % (M - 1) + 1
 *     perm   = offset
 *     turns  = (lw / g) >> rshift, or 1 if that is 0 and lw != 0 (else the dest is left out)
 *   n = 0
 *   repeat rounds over the list until n == M:
 *     for each dest with turns >= 1, turns times:
 *       while slot perm is taken: perm = (perm + skip) % M
 *       table[perm] = dest; n++
 *
 * Lookup: addr = source address (ICMP error: destination address); port = 0, or the source port
 * (ICMP error: destination port) with mh-port (SVC_F_SCHED2) for TCP/UDP/SCTP.
 *   slot = h_key1(addr, port, 0) % M; empty → NULL; weight <= 0 or OVERLOAD → NULL, unless
 *   mh-fallback (SVC_F_SCHED1): for k = 0..M-1 probe slot h_key1(addr, port, (k + slot) % M) % M;
 *   first available wins, an empty slot ends the search.
 *
 * Quirks: more than M dests makes the kernel rebuild fail (-EINVAL); we then keep the old table.
 * 32-bit kernels use HalfSipHash and would build different tables (not modelled).
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, SVC_F_SCHED1, SVC_F_SCHED2 } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { SipKey, fls, gcd, hsiphash32 } from './hash.js';
import { destName } from './note.js';
import { ipToString } from '../model/addr.js';

export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export const MH_TAB_INDEX_CONFIG = 12;
export const MH_TAB_SIZE = MH_PRIMES[MH_TAB_INDEX_CONFIG - 8];
export const MH_TAB_BITS = MH_TAB_INDEX_CONFIG >> 1;

/** generate_hash_secret(): both 64-bit words of each key hold the same 32-bit constant. */
export const MH_KEY1 = new SipKey(0, 2654435761, 0, 2654435761);
export const MH_KEY2 = new SipKey(0, 2654446892, 0, 2654446892);

/** ip_vs_mh_hashkey: hsiphash of the u32 (offset + port + addr). */
export function mhHash(key: SipKey, addr: number, port: number, offset: number): number {
  return hsiphash32(key, (offset + port + addr) >>> 0);
}

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0;
}

export class MhScheduler implements Scheduler {
  readonly name = 'mh';
  private readonly svc: Service;
  /** Slot → dest; null = empty. Sized once. */
  readonly table: (Dest | null)[] = new Array<Dest | null>(MH_TAB_SIZE).fill(null);
  /** The dests and last_weights the table was built from, to skip no-op rebuilds on edit. */
  private builtDests: Dest[] = [];
  private builtLw: number[] = [];

  constructor(svc: Service) {
    this.svc = svc;
    this.rebuild();
  }

  private rebuild(): void {
    const dests = this.svc.dests;
    const n = dests.length;
    if (n > MH_TAB_SIZE) return; // kernel: -EINVAL, table unchanged
    this.builtDests = dests.slice();
    this.builtLw = dests.map((d) => d.lastWeight);
    let g = 0;
    let max = 0;
    for (const d of dests) {
      const lw = d.lastWeight;
      if (lw > 0) g = g > 0 ? gcd(lw, g) : lw;
      if (lw > max) max = lw;
    }
    if (g < 1) {
      this.table.fill(null);
      return;
    }
    const shift = fls(Math.trunc(max / g)) - MH_TAB_BITS;
    const rshift = shift >= 0 ? shift : 0;
    const perm = new Uint32Array(n);
    const skip = new Uint32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      perm[i] = mhHash(MH_KEY1, d.addr, d.port, 0) % MH_TAB_SIZE;
      skip[i] = (mhHash(MH_KEY2, d.addr, d.port, 0) % (MH_TAB_SIZE - 1)) + 1;
      const lw = d.lastWeight;
      const t = Math.trunc(lw / g) >> rshift;
      turns[i] = t !== 0 ? t : lw !== 0 ? 1 : 0;
    }
    const taken = new Uint8Array(MH_TAB_SIZE);
    let filled = 0;
    let count = 0;
    for (;;) {
      for (let i = 0; i < n; ) {
        if (turns[i]! < 1) {
          i++;
          continue;
        }
        let c = perm[i]!;
        while (taken[c] !== 0) {
          c += skip[i]!;
          if (c >= MH_TAB_SIZE) c -= MH_TAB_SIZE;
        }
        perm[i] = c;
        taken[c] = 1;
        this.table[c] = dests[i]!;
        if (++filled === MH_TAB_SIZE) return;
        if (++count >= turns[i]!) {
          count = 0;
          i++;
        }
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
    const slot = mhHash(MH_KEY1, addr, port, 0) % MH_TAB_SIZE;
    const d = this.table[slot]!;
    if (d === null || !unavailable(d)) {
      if (note !== null) note.text = `mh: ${ipToString(addr)}:${port} slot ${slot} → ${destName(d)}`;
      return d;
    }
    if ((flags & SVC_F_SCHED1) === 0) {
      if (note !== null) note.text = `mh: ${ipToString(addr)}:${port} slot ${slot} → ${destName(d)} unavailable (weight ${d.weight}), no fallback → no destination available`;
      return null;
    }
    for (let k = 0; k < MH_TAB_SIZE; k++) {
      const s = mhHash(MH_KEY1, addr, port, (k + slot) % MH_TAB_SIZE) % MH_TAB_SIZE;
      const f = this.table[s]!;
      if (f === null) break;
      if (!unavailable(f)) {
        if (note !== null) note.text = `mh: ${ipToString(addr)}:${port} slot ${slot} → ${destName(d)} unavailable, fallback slot ${s} → ${destName(f)}`;
        return f;
      }
    }
    if (note !== null) note.text = `mh: ${ipToString(addr)}:${port} slot ${slot} unavailable, fallback found nothing → no destination available`;
    return null;
  }

  onDestChange(kind: DestChange, dest: Dest): void {
    if (kind === 'edit') {
      const i = this.builtDests.indexOf(dest);
      if (i >= 0 && this.builtLw[i] === dest.lastWeight && this.builtDests.length === this.svc.dests.length) return;
    }
    this.rebuild();
  }

  sweep(_now: number): void {}
}

export const mhFactory: SchedulerFactory = {
  name: 'mh',
  flagNames: ['mh-fallback', 'mh-port'],
  create: (svc) => new MhScheduler(svc),
};

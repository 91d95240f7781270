/**
 * frag-table — which conn the fragments of an IPv4 datagram belong to, so the fragments after
 * the first (they carry no ports) follow the first one's conn.
 *
 * The kernel reassembles a fragmented datagram before IPVS sees it (ip_vs_gather_frags) and the
 * output path fragments it again where it exceeds the MTU. uvs forwards each fragment as it comes:
 * the first fragment (offset 0, MF set: it has the L4 header) is looked up and scheduled like any
 * packet, and its conn is remembered here under the datagram's identity <proto, saddr, daddr,
 * IP id> (RFC 791); a later fragment with that identity gets the same conn's rewrite (addresses
 * only; the L4 checksum in the first fragment covers the whole datagram and was updated there).
 * The entry counts the payload bytes that went through; once the last fragment (MF clear) has told
 * the datagram's length and every byte of it went through, in whatever order, it is forgotten.
 * A later fragment that arrives before its first one has no entry yet: the director holds a copy
 * (a few, bounded) until the first one comes (pipeline/director.ts holdFragment).
 *
 * Fixed size, no allocation: `capacity` entries (power of two) in typed arrays, each key probed in
 * a window of PROBE slots from its home; an entry lives FRAG_TIMEOUT_MS (the kernel's
 * ipfrag_time, 30 s) unless the whole datagram went through first. A put into a full window replaces
 * the entry that expires first there (`evicted` counts those).
 *
 * Example:
 *     const ft = new FragTable(4096);
 *     ft.put(17, saddr, daddr, ipId, ref, 1480, now);               // first fragment: conn ref, payload bytes
 *     ft.get(17, saddr, daddr, ipId, now);                          // → ref for each later fragment
 *     ft.passed(17, saddr, daddr, ipId, 520, 2000, true, now);       // it went through: complete, forgotten
 */

/** Seconds the kernel keeps an incomplete datagram (net.ipv4.ipfrag_time), in ms. */
export const FRAG_TIMEOUT_MS = 30_000;
/** Slots a key may occupy from its home. */
const PROBE = 8;

export class FragTable {
  readonly capacity: number;
  /** Live entries replaced by a put into a full window. */
  evicted = 0;
  private readonly mask: number;
  /** proto << 16 | id; saddr; daddr (int32 bits); ref; 0 = free. */
  private readonly key0: Int32Array;
  private readonly sa: Int32Array;
  private readonly da: Int32Array;
  private readonly ref: Int32Array;
  /** Payload bytes seen so far, and the datagram's payload length (-1 until the last fragment). */
  private readonly seen: Int32Array;
  private readonly total: Int32Array;
  /** Absolute expiry (ms); 0 = free. */
  private readonly expires: Float64Array;

  constructor(capacity = 4096) {
    if (!Number.isInteger(capacity) || capacity < PROBE || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError('FragTable capacity: a power of two, at least 8');
    }
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.key0 = new Int32Array(capacity);
    this.sa = new Int32Array(capacity);
    this.da = new Int32Array(capacity);
    this.ref = new Int32Array(capacity);
    this.seen = new Int32Array(capacity);
    this.total = new Int32Array(capacity);
    this.expires = new Float64Array(capacity);
  }

  private home(k0: number, saddr: number, daddr: number): number {
    let h = Math.imul(k0 ^ saddr, 0x9e3779b1);
    h = Math.imul(h ^ daddr ^ (h >>> 15), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.mask;
  }

  /** The slot holding this datagram's live entry, or -1. Addresses as int32 bits or u32. */
  private find(k0: number, saddr: number, daddr: number, now: number): number {
    const h = this.home(k0, saddr, daddr);
    for (let i = 0; i < PROBE; i++) {
      const s = (h + i) & this.mask;
      if (this.key0[s] === k0 && this.sa[s] === saddr && this.da[s] === daddr && this.expires[s]! > now) return s;
    }
    return -1;
  }

  /** Remembers the conn ref of datagram <proto, saddr, daddr, id>, whose first fragment carried
   * `bytes` of payload (a repeated first fragment refreshes the entry and counts nothing). */
  put(proto: number, saddr: number, daddr: number, id: number, ref: number, bytes: number, now: number): void {
    saddr |= 0;
    daddr |= 0;
    const k0 = (proto << 16) | id;
    let s = this.find(k0, saddr, daddr, now);
    if (s < 0) {
      const h = this.home(k0, saddr, daddr);
      let oldest = h;
      for (let i = 0; i < PROBE; i++) {
        const t = (h + i) & this.mask;
        if (this.expires[t]! <= now) { s = t; break; }
        if (this.expires[t]! < this.expires[oldest]!) oldest = t;
      }
      if (s < 0) { s = oldest; this.evicted++; }
      this.key0[s] = k0;
      this.sa[s] = saddr;
      this.da[s] = daddr;
      this.seen[s] = bytes;
      this.total[s] = -1;
    }
    this.ref[s] = ref;
    this.expires[s] = now + FRAG_TIMEOUT_MS;
  }

  /** The conn ref remembered for this datagram, or -1. */
  get(proto: number, saddr: number, daddr: number, id: number, now: number): number {
    const s = this.find((proto << 16) | id, saddr | 0, daddr | 0, now);
    return s < 0 ? -1 : this.ref[s]!;
  }

  /**
   * Counts a later fragment of this datagram that went through: `bytes` of payload ending at
   * payload offset `end`, the last one when `last`. Forgets the datagram once all of it went through.
   */
  passed(proto: number, saddr: number, daddr: number, id: number, bytes: number, end: number, last: boolean, now: number): void {
    const s = this.find((proto << 16) | id, saddr | 0, daddr | 0, now);
    if (s < 0) return;
    this.seen[s] = this.seen[s]! + bytes;
    if (last) this.total[s] = end;
    if (this.total[s]! >= 0 && this.seen[s]! >= this.total[s]!) this.expires[s] = 0;
  }

  /** Live entries (walks the table: for listings and tests). */
  size(now: number): number {
    let n = 0;
    for (let s = 0; s < this.capacity; s++) if (this.expires[s]! > now) n++;
    return n;
  }
}

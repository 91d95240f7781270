/**
 * Path MTUs learnt from ICMP fragmentation-needed about uvs's own packets — its TUN (IPIP, GUE,
 * GRE) packets to real servers behind a router with a smaller MTU — as the kernel keeps them:
 * a route exception per destination address (K `__ip_rt_update_pmtu`), that only lowers the
 * route's MTU, never below `ip_rt_min_pmtu` (552), and expires after `ip_rt_mtu_expires` (600 s),
 * when the route's own MTU applies again. Every packet uvs sends to that address then uses it:
 * the TUN forwarder's fragmentation-needed to clients, and egress.
 *
 * Bounded (4096 destinations; the oldest learnt goes first). Looked up only while it holds an
 * entry, so the data path pays one size test when no router ever complained.
 */
export const PMTU_MIN = 552;
export const PMTU_EXPIRES_MS = 600_000;
export const PMTU_MAX_ENTRIES = 4096;

export class PathMtuCache {
  /** int32 bits of the destination → learnt MTU / expiry (ms on the director's clock). */
  private readonly mtus = new Map<number, number>();
  private readonly expires = new Map<number, number>();
  /** Smallest learnt MTU (65535 none), so a caller can tell cheaply that a packet fits every path. */
  private smallest = 65535;
  /** The director's time of the batch being processed (ms), set once per batch while entries exist:
   * get()'s default, so a per-packet MTU test never reads the clock (a fresh number each time). */
  now = 0;

  get size(): number {
    return this.mtus.size;
  }

  get min(): number {
    return this.smallest;
  }

  /**
   * A fragmentation-needed for `addr` quoting `reported` (0 from old routers: taken as the
   * minimum). Returns the path MTU now in force for addr (`routeMtu` when the report does not
   * lower it).
   */
  learn(addr: number, reported: number, routeMtu: number, now: number): number {
    this.now = now;
    const key = addr | 0;
    const cur = this.get(key, routeMtu, now);
    let mtu = reported;
    if (mtu < PMTU_MIN) mtu = Math.min(cur, PMTU_MIN); // K: locked at the minimum
    if (mtu > cur || (mtu === cur && !this.mtus.has(key))) return cur;
    if (!this.mtus.has(key) && this.mtus.size >= PMTU_MAX_ENTRIES) {
      const oldest = this.mtus.keys().next().value as number;
      this.mtus.delete(oldest);
      this.expires.delete(oldest);
    }
    this.mtus.set(key, mtu);
    this.expires.set(key, now + PMTU_EXPIRES_MS);
    if (mtu < this.smallest) this.smallest = mtu;
    return mtu;
  }

  /** The MTU toward addr: the learnt one while it lasts, else routeMtu. */
  get(addr: number, routeMtu: number, now: number = this.now): number {
    if (this.mtus.size === 0) return routeMtu;
    const key = addr | 0;
    const m = this.mtus.get(key);
    if (m === undefined) return routeMtu;
    if (this.expires.get(key)! <= now) {
      this.mtus.delete(key);
      this.expires.delete(key);
      this.recomputeMin();
      return routeMtu;
    }
    return m < routeMtu ? m : routeMtu;
  }

  /** Learnt entries (for listings and tests): address as int32 bits, MTU, ms left. */
  entries(now: number): { addr: number; mtu: number; expiresInMs: number }[] {
    const out: { addr: number; mtu: number; expiresInMs: number }[] = [];
    for (const [k, m] of this.mtus) {
      const left = this.expires.get(k)! - now;
      if (left > 0) out.push({ addr: k >>> 0, mtu: m, expiresInMs: left });
    }
    return out;
  }

  clear(): void {
    this.mtus.clear();
    this.expires.clear();
    this.smallest = 65535;
  }

  private recomputeMin(): void {
    let s = 65535;
    for (const m of this.mtus.values()) if (m < s) s = m;
    this.smallest = s;
  }
}

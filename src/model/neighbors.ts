/**
 * IPv4 neighbour (ARP) cache with a bounded queue of frames waiting for resolution.
 *
 * Entries live in typed arrays indexed by a small integer; a Map gives address → index (a Map
 * lookup per forwarded packet is avoided by callers that cache the index per conn/dest). An entry
 * is REACHABLE until `expires`; after that it is still used but a fresh request is sent (like the
 * kernel's STALE), and it is forgotten when no reply came for PROBE_MS. INCOMPLETE entries queue
 * frames (copied into pending slots by the caller); after MAX_PROBES unanswered requests the
 * queued frames are dropped and counted.
 */
export const NEIGH_REACHABLE_MS = 60_000;
export const NEIGH_RETRANS_MS = 1_000;
export const NEIGH_MAX_PROBES = 3;

export const N_FREE = 0;
export const N_INCOMPLETE = 1;
export const N_REACHABLE = 2;
export const N_STALE = 3;

export class NeighborTable {
  readonly cap: number;
  readonly addr: Uint32Array;
  readonly mac: Uint8Array;
  readonly port: Int32Array;
  readonly state: Uint8Array;
  readonly expires: Float64Array;
  readonly probes: Uint8Array;
  readonly nextProbe: Float64Array;
  /** Address (as int32, `addr | 0`: a Smi, so a lookup never boxes it) → entry index. */
  private readonly index = new Map<number, number>();
  private free: number[] = [];

  constructor(cap = 4096) {
    this.cap = cap;
    this.addr = new Uint32Array(cap);
    this.mac = new Uint8Array(cap * 6);
    this.port = new Int32Array(cap);
    this.state = new Uint8Array(cap);
    this.expires = new Float64Array(cap);
    this.probes = new Uint8Array(cap);
    this.nextProbe = new Float64Array(cap);
    for (let i = cap - 1; i >= 0; i--) this.free.push(i);
  }

  /** Entry index of `addr` (u32 or its int32 bits), -1 none. */
  find(addr: number): number {
    const i = this.index.get(addr | 0);
    return i === undefined ? -1 : i;
  }

  /** Creates an INCOMPLETE entry; -1 when the table is full. */
  create(addr: number, port: number, now: number): number {
    let i = this.free.pop();
    if (i === undefined) {
      // Evict one expired/stale entry rather than grow.
      for (const [a, j] of this.index) {
        if (this.state[j] !== N_INCOMPLETE) { this.remove(a); i = this.free.pop(); break; }
      }
      if (i === undefined) return -1;
    }
    this.index.set(addr | 0, i);
    this.addr[i] = addr;
    this.port[i] = port;
    this.state[i] = N_INCOMPLETE;
    this.probes[i] = 0;
    this.nextProbe[i] = now;
    this.expires[i] = 0;
    return i;
  }

  /** Records a confirmed mapping (ARP reply or a request naming us); returns the index. */
  learn(addr: number, mac: Uint8Array, macOff: number, port: number, now: number, createIfMissing: boolean): number {
    let i = this.find(addr);
    if (i < 0) {
      if (!createIfMissing) return -1;
      i = this.create(addr, port, now);
      if (i < 0) return -1;
    }
    for (let k = 0; k < 6; k++) this.mac[i * 6 + k] = mac[macOff + k]!;
    this.port[i] = port;
    this.state[i] = N_REACHABLE;
    this.expires[i] = now + NEIGH_REACHABLE_MS;
    this.probes[i] = 0;
    return i;
  }

  remove(addr: number): void {
    const k = addr | 0;
    const i = this.index.get(k);
    if (i === undefined) return;
    this.index.delete(k);
    this.state[i] = N_FREE;
    this.free.push(i);
  }

  /** Usable MAC (REACHABLE or STALE). */
  usable(i: number): boolean {
    const s = this.state[i];
    return s === N_REACHABLE || s === N_STALE;
  }

  entries(): { addr: number; index: number }[] {
    return [...this.index].map(([addr, index]) => ({ addr: addr >>> 0, index }));
  }
}

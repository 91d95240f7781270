/**
 * IPv4 reassembly (RFC 791 / RFC 815) for endpoints that must see whole datagrams — `uvs
 * tunnel-endpoint` receives IPIP packets a director fragmented (a kernel IPVS director always
 * fragments the IPIP packet; uvs does with sysctl pmtu_disc=0), and must decapsulate the whole.
 *
 * A fixed set of contexts (default 16, each a 64 KiB buffer and a bitmap of 8-byte units, all
 * allocated once: nothing per packet) keyed by <saddr, daddr, protocol, id>, as the kernel's
 * ipq. Rules as Linux's ip_fragment.c: a fragment that overlaps data already held discards the
 * whole datagram (an exact duplicate is only dropped), a datagram longer than 65535 bytes is
 * discarded, a context not completed within the timeout (30 s, ipfrag_time) is freed, and when
 * every context is busy the oldest is evicted. The first fragment's Ethernet and IP header
 * (options as they came in it) head the reassembled datagram.
 *
 * Example:
 *     const r = new Reassembler();
 *     const n = r.add(bytes, frameOff, now, out, 0);   // > 0: out[0..n) is the whole frame
 */
import { rd16, wr16 } from './bytes.js';
import { ETH_HLEN } from './ethernet.js';
import { IP_F_MF, IP_FRAG, IP_ID, IP_OFFMASK, IP_TOTLEN, ipDaddr, ipFrag, ipIhl, ipProto, ipSaddr, ipTotLen } from './ipv4.js';
import { setIpv4Checksum } from './checksum.js';

/** add() results below 1. */
export const REASM_HELD = 0;
export const REASM_DUPLICATE = -1;
/** Overlap, over 65535 bytes, a non-final fragment not a multiple of 8, or a malformed header: the datagram is discarded. */
export const REASM_DISCARDED = -2;

const MAX_DATAGRAM = 65535;
/** Room per context: Ethernet + the largest IP header + 64 KiB of payload. */
const CTX_BYTES = ETH_HLEN + 60 + 65536;
const UNITS = 8192; // 65536 / 8

export class Reassembler {
  readonly contexts: number;
  readonly timeoutMs: number;
  private readonly buf: Uint8Array;
  private readonly bits: Uint8Array;
  private readonly saddr: Int32Array;
  private readonly daddr: Int32Array;
  /** proto << 16 | id; -1 = free context. */
  private readonly key: Int32Array;
  private readonly since: Float64Array;
  /** Header bytes (Ethernet + IP) of the first fragment, 0 until it came. */
  private readonly hdrLen: Int32Array;
  /** Payload length, known once the last fragment came; -1 before. */
  private readonly total: Int32Array;
  /** Payload bytes held. */
  private readonly got: Int32Array;
  /** Datagrams discarded (overlap, too long, malformed), expired, evicted. */
  discarded = 0;
  expired = 0;
  evicted = 0;
  /** Fragments taken, datagrams completed. */
  fragments = 0;
  completed = 0;

  constructor(contexts = 16, timeoutMs = 30_000) {
    this.contexts = contexts;
    this.timeoutMs = timeoutMs;
    this.buf = new Uint8Array(contexts * CTX_BYTES);
    this.bits = new Uint8Array(contexts * (UNITS >> 3));
    this.saddr = new Int32Array(contexts);
    this.daddr = new Int32Array(contexts);
    this.key = new Int32Array(contexts).fill(-1);
    this.since = new Float64Array(contexts);
    this.hdrLen = new Int32Array(contexts);
    this.total = new Int32Array(contexts);
    this.got = new Int32Array(contexts);
  }

  /** Datagrams in progress. */
  get pending(): number {
    let n = 0;
    for (let i = 0; i < this.contexts; i++) if (this.key[i] !== -1) n++;
    return n;
  }

  /**
   * Takes the fragment in the Ethernet frame at b[f..] (IPv4 header at f + 14, checked by the
   * caller: version 4, header and total length within the frame). Returns the length of the whole
   * frame written at out[outOff..] when this fragment completed the datagram (its context is
   * freed), REASM_HELD when it is kept, REASM_DUPLICATE, or REASM_DISCARDED.
   */
  add(b: Uint8Array, f: number, now: number, out: Uint8Array, outOff: number): number {
    this.expire(now);
    const l3 = f + ETH_HLEN;
    const ihl = ipIhl(b, l3);
    const totLen = ipTotLen(b, l3);
    const frag = ipFrag(b, l3);
    const off = (frag & IP_OFFMASK) << 3;
    const more = (frag & IP_F_MF) !== 0;
    const len = totLen - ihl;
    const sa = ipSaddr(b, l3) | 0;
    const da = ipDaddr(b, l3) | 0;
    const k = (ipProto(b, l3) << 16) | rd16(b, l3 + IP_ID);
    this.fragments++;
    let c = this.find(sa, da, k);
    if (ihl < 20 || len <= 0 || (more && (len & 7) !== 0) || off + len > MAX_DATAGRAM - ihl) {
      if (c >= 0) this.free(c);
      this.discarded++;
      return REASM_DISCARDED;
    }
    if (c < 0) c = this.open(sa, da, k, now);
    const base = c * CTX_BYTES;
    const bm = c * (UNITS >> 3);
    // Units [u0, u1) of this fragment: already all held = duplicate, some held = overlap.
    const u0 = off >> 3;
    const u1 = (off + len + 7) >> 3;
    let held = 0;
    for (let u = u0; u < u1; u++) if ((this.bits[bm + (u >> 3)]! & (1 << (u & 7))) !== 0) held++;
    if (held === u1 - u0) return REASM_DUPLICATE;
    if (held !== 0 || (!more && this.total[c]! >= 0 && off + len !== this.total[c]) ||
      (this.total[c]! >= 0 && off + len > this.total[c]!)) {
      this.free(c);
      this.discarded++;
      return REASM_DISCARDED;
    }
    if (!more) {
      // The end: nothing may lie beyond it.
      for (let u = u1; u < UNITS; u++) {
        if ((this.bits[bm + (u >> 3)]! & (1 << (u & 7))) !== 0) { this.free(c); this.discarded++; return REASM_DISCARDED; }
      }
      this.total[c] = off + len;
    }
    for (let u = u0; u < u1; u++) this.bits[bm + (u >> 3)] = this.bits[bm + (u >> 3)]! | (1 << (u & 7));
    // Payload at base + 74 + off (room for the largest header in front).
    this.buf.set(b.subarray(l3 + ihl, l3 + totLen), base + ETH_HLEN + 60 + off);
    this.got[c] = this.got[c]! + len;
    if (off === 0) {
      // Keep the first fragment's headers just in front of the payload.
      const h = ETH_HLEN + ihl;
      this.buf.set(b.subarray(f, f + h), base + ETH_HLEN + 60 - h);
      this.hdrLen[c] = h;
    }
    if (this.total[c]! < 0 || this.got[c] !== this.total[c] || this.hdrLen[c] === 0) return REASM_HELD;
    const h = this.hdrLen[c]!;
    const start = base + ETH_HLEN + 60 - h;
    const n = h + this.total[c]!;
    out.set(this.buf.subarray(start, start + n), outOff);
    const o3 = outOff + ETH_HLEN;
    wr16(out, o3 + IP_TOTLEN, h - ETH_HLEN + this.total[c]!);
    wr16(out, o3 + IP_FRAG, rd16(out, o3 + IP_FRAG) & ~(IP_F_MF | IP_OFFMASK));
    setIpv4Checksum(out, o3);
    this.free(c);
    this.completed++;
    return n;
  }

  /** Frees contexts older than the timeout. */
  expire(now: number): void {
    for (let i = 0; i < this.contexts; i++) {
      if (this.key[i] !== -1 && now - this.since[i]! >= this.timeoutMs) {
        this.free(i);
        this.expired++;
      }
    }
  }

  private find(sa: number, da: number, k: number): number {
    for (let i = 0; i < this.contexts; i++) if (this.key[i] === k && this.saddr[i] === sa && this.daddr[i] === da) return i;
    return -1;
  }

  private open(sa: number, da: number, k: number, now: number): number {
    let c = -1;
    let oldest = 0;
    for (let i = 0; i < this.contexts; i++) {
      if (this.key[i] === -1) { c = i; break; }
      if (c < 0 || this.since[i]! < oldest) { c = i; oldest = this.since[i]!; }
    }
    if (this.key[c] !== -1) {
      this.free(c);
      this.evicted++;
    }
    this.key[c] = k;
    this.saddr[c] = sa;
    this.daddr[c] = da;
    this.since[c] = now;
    this.total[c] = -1;
    return c;
  }

  private free(c: number): void {
    this.key[c] = -1;
    this.hdrLen[c] = 0;
    this.got[c] = 0;
    this.total[c] = -1;
    this.bits.fill(0, c * (UNITS >> 3), (c + 1) * (UNITS >> 3));
  }
}

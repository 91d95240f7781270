/**
 * The one shared header rewrite every forwarder uses: change the IPv4 source or destination
 * address and the L4 port of a packet in place, keeping the IP header checksum and the TCP/UDP
 * checksum right with RFC 1624 incremental updates — no protocol × mode matrix elsewhere.
 *
 * Partial checksums (CHECKSUM_PARTIAL from local senders, see wire/checksum.ts): the field holds
 * the pseudo-header sum, so address changes are folded in without complement and port changes
 * are left to whoever completes it. A UDP checksum of 0 means "none" and stays 0.
 * Non-first fragments (pkt.l4 === -1) only get the IP header rewritten.
 */
import type { Packet } from '../packet/packet.js';
import { rd16, wr16, wr32 } from '../wire/bytes.js';
import { fold } from '../wire/checksum.js';
import { IP_CSUM, IP_DADDR, IP_SADDR } from '../wire/ipv4.js';
import { TCP_CSUM, UDP_CSUM } from '../wire/l4.js';

/**
 * Rewrites the IPv4 address at l3 + `field` (IP_SADDR or IP_DADDR) a0 → a1 and, when `portAt`
 * >= 0, the 16-bit port at that offset p0 → p1, with both checksums updated (RFC 1624: one
 * read and one write of each field; the address delta is summed once for both). a0 and a1 come
 * as int32 (`| 0`: a u32 above 2^31 passed to a call is boxed in a new HeapNumber); only bit
 * operations and equality between the two touch them.
 */
function rewrite(p: Packet, field: number, a0: number, a1: number, portAt: number, p0: number, p1: number): void {
  const b = p.b;
  const l3 = p.l3;
  // The address's contribution to either checksum: ~a0 + a1 in 16-bit halves.
  const da = a0 !== a1 ? (~(a0 >>> 16) & 0xffff) + (~a0 & 0xffff) + (a1 >>> 16) + (a1 & 0xffff) : 0;
  const l4 = p.l4;
  if (l4 >= 0) {
    const proto = p.proto;
    const at = proto === 6 ? l4 + TCP_CSUM : proto === 17 ? l4 + UDP_CSUM : -1;
    if (at >= 0) {
      const hc = rd16(b, at);
      if (p.csumPartial) {
        // Pseudo-header sum only (not complemented): addresses are in it, ports are not (the
        // completer sums them).
        if (da !== 0) wr16(b, at, fold(hc + da));
      } else if (proto !== 17 || hc !== 0) { // a UDP checksum of 0 means "none" and stays 0
        const dp = portAt >= 0 ? (~p0 & 0xffff) + p1 : 0;
        let c = ~fold((~hc & 0xffff) + da + dp) & 0xffff;
        if (c === 0 && proto === 17) c = 0xffff;
        wr16(b, at, c);
      }
    }
  }
  if (da !== 0) {
    wr16(b, l3 + IP_CSUM, ~fold((~rd16(b, l3 + IP_CSUM) & 0xffff) + da) & 0xffff);
    wr32(b, l3 + field, a1);
  }
  if (portAt >= 0) wr16(b, portAt, p1);
}

/**
 * Rewrites the destination address and port (port ignored when equal or for portless
 * protocols). `addr` may be a u32 or its int32 bits (`| 0`, what the forwarders pass: a u32
 * above 2^31 crossing a call is boxed in a new HeapNumber); p.daddr stays a u32.
 */
export function rewriteDst(p: Packet, addr: number, port: number): void {
  const a0 = p.daddr | 0;
  const a1 = addr | 0;
  const p0 = p.dport;
  const portChange = p0 !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132);
  if (a0 === a1 && !portChange) return;
  rewrite(p, IP_DADDR, a0, a1, portChange ? p.l4 + 2 : -1, p0, port);
  p.daddr = a1 >>> 0;
  if (portChange) p.dport = port;
}

/** Rewrites the source address and port (as rewriteDst). */
export function rewriteSrc(p: Packet, addr: number, port: number): void {
  const a0 = p.saddr | 0;
  const a1 = addr | 0;
  const p0 = p.sport;
  const portChange = p0 !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132);
  if (a0 === a1 && !portChange) return;
  rewrite(p, IP_SADDR, a0, a1, portChange ? p.l4 : -1, p0, port);
  p.saddr = a1 >>> 0;
  if (portChange) p.sport = port;
}

/** Reads the current TCP/UDP checksum field (for the tracer). */
export function l4Checksum(p: Packet): number {
  if (p.l4 < 0) return -1;
  if (p.proto === 6) return rd16(p.b, p.l4 + TCP_CSUM);
  if (p.proto === 17) return rd16(p.b, p.l4 + UDP_CSUM);
  return -1;
}

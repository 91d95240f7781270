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
import { csumReplace4, fold, pseudoReplace4 } from '../wire/checksum.js';
import { IP_CSUM, IP_DADDR, IP_SADDR } from '../wire/ipv4.js';
import { TCP_CSUM, UDP_CSUM } from '../wire/l4.js';

/**
 * One update of the TCP/UDP checksum for an address change a0 → a1 and a port change p0 → p1
 * (either may be "no change": equal values) — one read and one write of the field instead of
 * one per change.
 */
function l4Fix2(p: Packet, a0: number, a1: number, p0: number, p1: number): void {
  const l4 = p.l4;
  if (l4 < 0) return;
  const b = p.b;
  const proto = p.proto;
  let at: number;
  if (proto === 6) at = l4 + TCP_CSUM;
  else if (proto === 17) at = l4 + UDP_CSUM;
  else return;
  const hc = rd16(b, at);
  if (p.csumPartial) {
    // Pseudo-header sum only: addresses are in it, ports are not (the completer sums them).
    if (a0 !== a1) pseudoReplace4(b, at, a0, a1);
    return;
  }
  if (proto === 17 && hc === 0) return; // UDP without checksum stays without
  let s = ~hc & 0xffff;
  if (a0 !== a1) s += (~(a0 >>> 16) & 0xffff) + (~a0 & 0xffff) + (a1 >>> 16) + (a1 & 0xffff);
  if (p0 !== p1) s += (~p0 & 0xffff) + (p1 & 0xffff);
  let c = ~fold(s) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  wr16(b, at, c);
}

/** Rewrites the destination address and port (port ignored when equal or for portless protocols). */
export function rewriteDst(p: Packet, addr: number, port: number): void {
  const b = p.b;
  const l3 = p.l3;
  const a0 = p.daddr;
  const p0 = p.dport;
  const portChange = p0 !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132);
  if (a0 === addr && !portChange) return;
  l4Fix2(p, a0, addr, p0, portChange ? port : p0);
  if (a0 !== addr) {
    csumReplace4(b, l3 + IP_CSUM, a0, addr);
    wr32(b, l3 + IP_DADDR, addr);
    p.daddr = addr;
  }
  if (portChange) {
    wr16(b, p.l4 + 2, port);
    p.dport = port;
  }
}

/** Rewrites the source address and port. */
export function rewriteSrc(p: Packet, addr: number, port: number): void {
  const b = p.b;
  const l3 = p.l3;
  const a0 = p.saddr;
  const p0 = p.sport;
  const portChange = p0 !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132);
  if (a0 === addr && !portChange) return;
  l4Fix2(p, a0, addr, p0, portChange ? port : p0);
  if (a0 !== addr) {
    csumReplace4(b, l3 + IP_CSUM, a0, addr);
    wr32(b, l3 + IP_SADDR, addr);
    p.saddr = addr;
  }
  if (portChange) {
    wr16(b, p.l4, port);
    p.sport = port;
  }
}

/** Reads the current TCP/UDP checksum field (for the tracer). */
export function l4Checksum(p: Packet): number {
  if (p.l4 < 0) return -1;
  if (p.proto === 6) return rd16(p.b, p.l4 + TCP_CSUM);
  if (p.proto === 17) return rd16(p.b, p.l4 + UDP_CSUM);
  return -1;
}

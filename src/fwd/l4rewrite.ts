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
import { csumReplace2, csumReplace4, pseudoReplace4 } from '../wire/checksum.js';
import { IP_CSUM, IP_DADDR, IP_SADDR } from '../wire/ipv4.js';
import { TCP_CSUM, UDP_CSUM } from '../wire/l4.js';

function l4Fix(p: Packet, from: number, to: number, isAddr: boolean): void {
  if (p.l4 < 0) return;
  const b = p.b;
  let at: number;
  if (p.proto === 6) at = p.l4 + TCP_CSUM;
  else if (p.proto === 17) {
    at = p.l4 + UDP_CSUM;
    if (!p.csumPartial && b[at] === 0 && b[at + 1] === 0) return;
  } else return;
  if (p.csumPartial) {
    if (isAddr) pseudoReplace4(b, at, from, to);
    return;
  }
  if (isAddr) csumReplace4(b, at, from, to);
  else csumReplace2(b, at, from, to);
  if (p.proto === 17 && b[at] === 0 && b[at + 1] === 0) wr16(b, at, 0xffff);
}

/** Rewrites the destination address and port (port ignored when equal or for portless protocols). */
export function rewriteDst(p: Packet, addr: number, port: number): void {
  const b = p.b;
  const l3 = p.l3;
  if (p.daddr !== addr) {
    csumReplace4(b, l3 + IP_CSUM, p.daddr, addr);
    l4Fix(p, p.daddr, addr, true);
    wr32(b, l3 + IP_DADDR, addr);
    p.daddr = addr;
  }
  if (p.dport !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132)) {
    l4Fix(p, p.dport, port, false);
    wr16(b, p.l4 + 2, port);
    p.dport = port;
  }
}

/** Rewrites the source address and port. */
export function rewriteSrc(p: Packet, addr: number, port: number): void {
  const b = p.b;
  const l3 = p.l3;
  if (p.saddr !== addr) {
    csumReplace4(b, l3 + IP_CSUM, p.saddr, addr);
    l4Fix(p, p.saddr, addr, true);
    wr32(b, l3 + IP_SADDR, addr);
    p.saddr = addr;
  }
  if (p.sport !== port && p.l4 >= 0 && (p.proto === 6 || p.proto === 17 || p.proto === 132)) {
    l4Fix(p, p.sport, port, false);
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

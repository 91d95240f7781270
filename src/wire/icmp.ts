/**
 * ICMP messages uvs builds itself: errors quoting an offending packet (RFC 792: the original IP
 * header plus at least 8 bytes; like Linux we quote up to 576 bytes of the whole error) and
 * echo replies turned around in place.
 */
import { rd16, wr16 } from './bytes.js';
import { checksum, csumReplace2 } from './checksum.js';
import { ETH_HLEN, ETH_TYPE, ETHERTYPE_IPV4 } from './ethernet.js';
import { writeIpv4, IP_DADDR, IP_SADDR, IP_TTL, IP_CSUM } from './ipv4.js';
import { setIpv4Checksum } from './checksum.js';

export const ICMP_ERR_QUOTE_MAX = 576 - 20 - 8;

/**
 * Writes an ICMP error frame at f (Ethernet header left for egress to fill: only the type is set).
 * Quotes the IPv4 packet at [q, q + qlen). `info` is the second 32-bit word (next-hop MTU for
 * fragmentation-needed in its low 16 bits). Returns the frame length.
 */
export function writeIcmpError(
  b: Uint8Array, f: number, type: number, code: number, info: number,
  saddr: number, daddr: number, src: Uint8Array, q: number, qlen: number,
): number {
  const quote = Math.min(qlen, ICMP_ERR_QUOTE_MAX);
  const l3 = f + ETH_HLEN;
  const l4 = l3 + 20;
  wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
  // Copy the quote first: src may overlap nothing we write before it (different slots).
  if (src === b) b.copyWithin(l4 + 8, q, q + quote);
  else b.set(src.subarray(q, q + quote), l4 + 8);
  b[l4] = type;
  b[l4 + 1] = code;
  b[l4 + 2] = 0;
  b[l4 + 3] = 0;
  wr16(b, l4 + 4, (info >>> 16) & 0xffff);
  wr16(b, l4 + 6, info & 0xffff);
  wr16(b, l4 + 2, checksum(b, l4, 8 + quote));
  writeIpv4(b, l3, 0xc0, 20 + 8 + quote, 0, 0, 64, 1, saddr, daddr);
  return ETH_HLEN + 20 + 8 + quote;
}

/** Turns an ICMP echo request at l3/l4 into the echo reply, in place (addresses swapped, TTL 64). */
export function echoToReply(b: Uint8Array, l3: number, l4: number): void {
  const s0 = b[l3 + IP_SADDR]!, s1 = b[l3 + IP_SADDR + 1]!, s2 = b[l3 + IP_SADDR + 2]!, s3 = b[l3 + IP_SADDR + 3]!;
  b.copyWithin(l3 + IP_SADDR, l3 + IP_DADDR, l3 + IP_DADDR + 4);
  b[l3 + IP_DADDR] = s0;
  b[l3 + IP_DADDR + 1] = s1;
  b[l3 + IP_DADDR + 2] = s2;
  b[l3 + IP_DADDR + 3] = s3;
  b[l3 + IP_TTL] = 64;
  b[l3 + IP_CSUM] = 0;
  b[l3 + IP_CSUM + 1] = 0;
  setIpv4Checksum(b, l3);
  const old = rd16(b, l4);
  b[l4] = 0; // echo reply, same code
  csumReplace2(b, l4 + 2, old, rd16(b, l4));
}

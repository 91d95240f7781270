/**
 * Internet checksums (RFC 1071) and their incremental update (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')).
 *
 * Two kinds of L4 checksum field exist on the data path:
 *  - complete: the field holds the ones' complement of the sum (what is on the wire);
 *  - partial (CHECKSUM_PARTIAL, virtio-net NEEDS_CSUM, from local senders with tx offload): the
 *    field holds the folded pseudo-header sum, NOT complemented; whoever transmits it completes
 *    it over the data from csum_start. Then only pseudo-header fields (addresses, length) may be
 *    folded into it, never ports or payload (the kernel's inet_proto_csum_replace4 does the same).
 */
import { rd16, wr16 } from './bytes.js';

/** Unfolded ones' complement sum of len bytes at off, added to `init`. */
export function sumBytes(b: Uint8Array, off: number, len: number, init: number): number {
  let s = init;
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (len & 1) s += b[end]! << 8;
  // Keep the accumulator small enough to stay a small integer on long buffers.
  return s;
}

/**
 * Folds a sum below 2^32 to 16 bits (no complement), integer operations only. Every sum here is
 * far below that: a 64 KiB segment's words plus a pseudo-header stay under 2^31 + 2^19.
 */
export function fold(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Checksum of a byte range: ~fold(sum). */
export function checksum(b: Uint8Array, off: number, len: number, init = 0): number {
  return ~fold(sumBytes(b, off, len, init)) & 0xffff;
}

/** Pseudo-header sum for IPv4 (unfolded). */
export function pseudoSum(saddr: number, daddr: number, proto: number, l4len: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + l4len;
}

/** Recomputes and writes the IPv4 header checksum (header at l3). */
export function setIpv4Checksum(b: Uint8Array, l3: number): void {
  const ihl = (b[l3]! & 15) * 4;
  b[l3 + 10] = 0;
  b[l3 + 11] = 0;
  wr16(b, l3 + 10, checksum(b, l3, ihl));
}

/** Whether the IPv4 header checksum is correct. */
export function ipv4ChecksumOk(b: Uint8Array, l3: number): boolean {
  const ihl = (b[l3]! & 15) * 4;
  if (ihl !== 20) return fold(sumBytes(b, l3, ihl, 0)) === 0xffff;
  // The common option-less header, unrolled (10 words).
  let s = ((b[l3]! << 8) | b[l3 + 1]!) + ((b[l3 + 2]! << 8) | b[l3 + 3]!) + ((b[l3 + 4]! << 8) | b[l3 + 5]!) +
    ((b[l3 + 6]! << 8) | b[l3 + 7]!) + ((b[l3 + 8]! << 8) | b[l3 + 9]!) + ((b[l3 + 10]! << 8) | b[l3 + 11]!) +
    ((b[l3 + 12]! << 8) | b[l3 + 13]!) + ((b[l3 + 14]! << 8) | b[l3 + 15]!) + ((b[l3 + 16]! << 8) | b[l3 + 17]!) +
    ((b[l3 + 18]! << 8) | b[l3 + 19]!);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/**
 * ipv4ChecksumOk for an option-less header (IHL 5) at an EVEN offset, summing ten 16-bit words of
 * a Uint16Array view of the same memory: the ones'-complement sum does not depend on byte order
 * (RFC 1071), so host-order words verify as well and take half the loads.
 */
export function ipv4Checksum20OkWords(w: Uint16Array, l3: number): boolean {
  const o = l3 >>> 1;
  let s = w[o]! + w[o + 1]! + w[o + 2]! + w[o + 3]! + w[o + 4]! + w[o + 5]! + w[o + 6]! + w[o + 7]! + w[o + 8]! + w[o + 9]!;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/**
 * Full L4 checksum (TCP/UDP/ICMP-less) of the segment at l4 of length l4len, written at
 * l4 + csumOff. For UDP a computed 0 is sent as 0xffff.
 */
export function setL4Checksum(b: Uint8Array, saddr: number, daddr: number, proto: number, l4: number, l4len: number, csumOff: number): void {
  b[l4 + csumOff] = 0;
  b[l4 + csumOff + 1] = 0;
  let c = checksum(b, l4, l4len, pseudoSum(saddr, daddr, proto, l4len));
  if (c === 0 && proto === 17) c = 0xffff;
  wr16(b, l4 + csumOff, c);
}

/** Whether a complete L4 checksum verifies. */
export function l4ChecksumOk(b: Uint8Array, saddr: number, daddr: number, proto: number, l4: number, l4len: number): boolean {
  return fold(sumBytes(b, l4, l4len, pseudoSum(saddr, daddr, proto, l4len))) === 0xffff;
}

/** RFC 1624 update of a complemented 16-bit checksum at `at` for a 16-bit field change. */
export function csumReplace2(b: Uint8Array, at: number, from: number, to: number): void {
  const hc = rd16(b, at);
  const s = (~hc & 0xffff) + (~from & 0xffff) + (to & 0xffff);
  wr16(b, at, ~fold(s) & 0xffff);
}

/** RFC 1624 update of a complemented 16-bit checksum at `at` for a 32-bit field change. */
export function csumReplace4(b: Uint8Array, at: number, from: number, to: number): void {
  const hc = rd16(b, at);
  const s = (~hc & 0xffff) + (~(from >>> 16) & 0xffff) + (~from & 0xffff) + (to >>> 16) + (to & 0xffff);
  wr16(b, at, ~fold(s) & 0xffff);
}


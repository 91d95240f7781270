/**
 * IPv4 header (RFC 791).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version|  IHL  |Type of Service|          Total Length         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Identification        |Flags|      Fragment Offset    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                       Source Address                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Destination Address                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Options                    |    Padding    |
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { checksum } from './checksum.js';

export const IP_HLEN = 20;
export const IP_TOS = 1;
export const IP_TOTLEN = 2;
export const IP_ID = 4;
export const IP_FRAG = 6;
export const IP_TTL = 8;
export const IP_PROTO = 9;
export const IP_CSUM = 10;
export const IP_SADDR = 12;
export const IP_DADDR = 16;
export const IP_F_DF = 0x4000;
export const IP_F_MF = 0x2000;
export const IP_OFFMASK = 0x1fff;

export const ipVersion = (b: Uint8Array, o: number): number => b[o]! >>> 4;
export const ipIhl = (b: Uint8Array, o: number): number => (b[o]! & 15) << 2;
export const ipTotLen = (b: Uint8Array, o: number): number => rd16(b, o + IP_TOTLEN);
export const ipFrag = (b: Uint8Array, o: number): number => rd16(b, o + IP_FRAG);
export const ipTtl = (b: Uint8Array, o: number): number => b[o + IP_TTL]!;
export const ipProto = (b: Uint8Array, o: number): number => b[o + IP_PROTO]!;
export const ipSaddr = (b: Uint8Array, o: number): number => rd32(b, o + IP_SADDR);
export const ipDaddr = (b: Uint8Array, o: number): number => rd32(b, o + IP_DADDR);

/** Writes a 20-byte IPv4 header (no options) at o, checksum included. */
export function writeIpv4(
  b: Uint8Array, o: number, tos: number, totLen: number, id: number, frag: number,
  ttl: number, proto: number, saddr: number, daddr: number,
): void {
  b[o] = 0x45;
  b[o + IP_TOS] = tos;
  wr16(b, o + IP_TOTLEN, totLen);
  wr16(b, o + IP_ID, id);
  wr16(b, o + IP_FRAG, frag);
  b[o + IP_TTL] = ttl;
  b[o + IP_PROTO] = proto;
  b[o + IP_CSUM] = 0;
  b[o + IP_CSUM + 1] = 0;
  wr32(b, o + IP_SADDR, saddr);
  wr32(b, o + IP_DADDR, daddr);
  wr16(b, o + IP_CSUM, checksum(b, o, IP_HLEN));
}

/**
 * Decrements TTL and patches the header checksum incrementally (RFC 1624; TTL is the high byte
 * of the TTL/protocol word). The caller checks TTL > 1 first.
 */
export function decTtl(b: Uint8Array, o: number): void {
  const old = rd16(b, o + IP_TTL);
  b[o + IP_TTL] = b[o + IP_TTL]! - 1;
  const hc = rd16(b, o + IP_CSUM);
  let s = (~hc & 0xffff) + (~old & 0xffff) + rd16(b, o + IP_TTL);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  wr16(b, o + IP_CSUM, ~s & 0xffff);
}

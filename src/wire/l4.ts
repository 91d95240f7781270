/**
 * TCP, UDP and ICMP headers: the offsets the data path touches.
 *
 * TCP (RFC 9293)                          UDP (RFC 768)              ICMP (RFC 792)
 *   0  source port | 2 dest port            0 sport | 2 dport          0 type | 1 code | 2 checksum
 *   4  sequence number                      4 length | 6 checksum      4 rest of header (id/seq,
 *   8  acknowledgment number                                              unused + next-hop MTU)
 *  12  data offset, flags (13)                                         8 data: for errors, the
 *  14  window | 16 checksum | 18 urgent                                  offending IP header + 8 bytes
 */
export const L4_SPORT = 0;
export const L4_DPORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_DOFF = 12;
export const TCP_FLAGS = 13;
export const TCP_CSUM = 16;
export const TCP_MIN_HLEN = 20;

/**
 * Offset of the first TCP option of `kind` in [from, end) — of exactly `len` bytes, or any length
 * with len 0 (SACK) — or -1: none. The walk stops at EOL or a malformed length, as the kernel's
 * tcp_parse_options.
 */
export function tcpOption(b: Uint8Array, from: number, end: number, kind: number, len: number): number {
  let o = from;
  while (o < end) {
    const k = b[o]!;
    if (k === 0) return -1;
    if (k === 1) { o++; continue; }
    if (o + 1 >= end) return -1;
    const l = b[o + 1]!;
    if (l < 2 || o + l > end) return -1;
    if (k === kind && (len === 0 || l === len)) return o;
    o += l;
  }
  return -1;
}
export const UDP_LEN = 4;
export const UDP_CSUM = 6;
export const UDP_HLEN = 8;
export const ICMP_CSUM = 2;
export const ICMP_HLEN = 8;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACKF = 0x10;

export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PORT_UNREACH = 3; // code
export const ICMP_FRAG_NEEDED = 4; // code

/** Offset of the L4 checksum field for a protocol (TCP 16, UDP 6), or -1. */
export function l4CsumOffset(proto: number): number {
  return proto === 6 ? TCP_CSUM : proto === 17 ? UDP_CSUM : -1;
}

/** ICMP types whose payload embeds the offending packet (IPVS treats these as related). */
export function icmpIsError(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_SOURCE_QUENCH || type === ICMP_TIME_EXCEEDED;
}

/**
 * The GRE (RFC 2784/2890) and GUE (draft-ietf-intarea-gue, version 0) headers the TUN forwarder
 * writes and the tunnel endpoint and the tracer read: flags, lengths, and where the inner IPv4
 * packet starts.
 */
import { rd16 } from './bytes.js';

/** GRE flags word: checksum present, key present, sequence number present. */
export const GRE_F_CSUM = 0x8000;
export const GRE_F_KEY = 0x2000;
export const GRE_F_SEQ = 0x1000;
/** Routing present or a version other than 0: not a GRE header uvs reads. */
export const GRE_F_UNSUPPORTED = 0x4007;
export const GRE_PROTO_IPV4 = 0x0800;
/** GRE base header; with GRE_F_CSUM the checksum + reserved words follow. */
export const GRE_HLEN = 4;
/** GUE base header: version/C/hlen, proto_ctype, flags. */
export const GUE_HLEN = 4;
/** GUE proto_ctype of an IPv4 packet inside (IPPROTO_IPIP). */
export const GUE_PROTO_IPV4 = 4;

/** Offset of the inner packet after the GRE header at g, or -1 when it is not IPv4 in GRE version 0 without routing. */
export function greInner(b: Uint8Array, g: number): number {
  const fl = rd16(b, g);
  if ((fl & GRE_F_UNSUPPORTED) !== 0 || rd16(b, g + 2) !== GRE_PROTO_IPV4) return -1;
  return g + GRE_HLEN + (fl & GRE_F_CSUM ? 4 : 0) + (fl & GRE_F_KEY ? 4 : 0) + (fl & GRE_F_SEQ ? 4 : 0);
}

/** Offset of the inner packet after the GUE header at g, or -1 unless it is a version-0 data message carrying IPv4. */
export function gueInner(b: Uint8Array, g: number): number {
  const h = b[g]!;
  if (h >>> 6 !== 0 || (h & 0x20) !== 0 || b[g + 1] !== GUE_PROTO_IPV4) return -1;
  return g + GUE_HLEN + ((h & 0x1f) << 2);
}

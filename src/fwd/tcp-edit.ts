/**
 * Edits of TCP segments that keep the checksums right, shared by the forwarders that move sequence
 * numbers or change a segment's length (the PROXY protocol, the SYN proxy, the FTP helper): a full
 * checksum is updated (RFC 1624) or computed anew; a partial one (a local sender's offload: the
 * pseudo-header sum only) only follows the length, the completer sums the new bytes. Values are
 * int32 bits (no HeapNumbers on the data path).
 */
import type { Packet } from '../packet/packet.js';
import { rd16, wr16, wr32 } from '../wire/bytes.js';
import { fold, setIpv4Checksum, setL4Checksum } from '../wire/checksum.js';
import { TCP_CSUM } from '../wire/l4.js';

/** Sets the 32-bit field at `at` to v (int32 bits), the TCP checksum kept right (not touched when partial). */
export function set32(p: Packet, at: number, v: number): void {
  const b = p.b;
  if (!p.csumPartial) {
    const c = p.l4 + TCP_CSUM;
    const s = (~rd16(b, c) & 0xffff) + (~rd16(b, at) & 0xffff) + (~rd16(b, at + 2) & 0xffff) + (v >>> 16) + (v & 0xffff);
    wr16(b, c, ~fold(s) & 0xffff);
  }
  wr32(b, at, v);
}

/** As set32 for a 16-bit field. */
export function set16(p: Packet, at: number, v: number): void {
  const b = p.b;
  if (!p.csumPartial) {
    const c = p.l4 + TCP_CSUM;
    wr16(b, c, ~fold((~rd16(b, c) & 0xffff) + (~rd16(b, at) & 0xffff) + v) & 0xffff);
  }
  wr16(b, at, v);
}

/**
 * After p's TCP segment changed length (p.ipLen and p.l4len already updated, `oldL4len` the TCP
 * length before): the IP total length and header checksum, and the TCP checksum — a partial one
 * gains the length change in its pseudo-header sum, a full one is computed anew.
 */
export function tcpResized(p: Packet, oldL4len: number): void {
  const b = p.b;
  wr16(b, p.l3 + 2, p.ipLen);
  setIpv4Checksum(b, p.l3);
  const at = p.l4 + TCP_CSUM;
  if (p.csumPartial) wr16(b, at, fold(rd16(b, at) + (~oldL4len & 0xffff) + p.l4len));
  else setL4Checksum(b, p.saddr | 0, p.daddr | 0, 6, p.l4, p.l4len, TCP_CSUM);
}

/**
 * Edits of TCP header fields that keep the TCP checksum right (RFC 1624), shared by the
 * forwarders that move sequence numbers (the PROXY protocol, the SYN proxy): a full checksum is
 * updated; a partial one (a local sender's offload: the pseudo-header sum only) is left alone, the
 * completer sums the new bytes. Values are int32 bits (no HeapNumbers on the data path).
 */
import type { Packet } from '../packet/packet.js';
import { rd16, wr16, wr32 } from '../wire/bytes.js';
import { fold } from '../wire/checksum.js';
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

/**
 * toa — the client's address for FULLNAT real servers in a TCP option (TOA), as the Alibaba
 * FULLNAT kernel (F1 ip_vs_proto_tcp.c tcp_opt_add_toa, tcp_opt_adjust_mss) and DPVS put it: a
 * real server with the TOA module (F1 kernel/net/toa) gets the client's address and port from
 * getpeername() instead of the local address; one without it ignores the unknown option.
 *
 *   kind 254, length 8, client port (2 bytes), client IPv4 (4 bytes) — right after the fixed
 *   20-byte TCP header, the other options moved behind it
 *
 * Which client → server segments of a FULLNAT TCP conn get it (F1 tcp_fnat_in_handler):
 *   - the SYN;
 *   - with net.ipv4.vs.fullnat_toa_entry = 1 (the default), every segment acknowledging exactly
 *     the server's ISN + 1 that is neither SYN, RST nor FIN: the ACK that completes the handshake
 *     (the one the TOA module reads) and the data the client sends before the server's first byte.
 * It is left out — the segment goes on unchanged and the skip is counted — when the TCP header has
 * no 8 bytes of option room left (F1 FULLNAT_ADD_TOA_HEAD_FULL), when the grown packet would not fit
 * the route's MTU toward the real server (FAIL_LEN; a GSO super-frame: its segments), when the
 * segment is an IP fragment, or when the frame has no headroom to grow into.
 * The server's SYN-ACK has its MSS option lowered by 8 (net.ipv4.vs.fullnat_mss_adjust_entry = 1,
 * the default), so the client's full-size segments leave room for the option.
 * A conn with the PROXY protocol (`--proxy-protocol`) carries the address there and gets no TOA
 * (as DPVS). F1 also strips the SYN's timestamp option and moves the ISN; uvs leaves both alone,
 * which TOA does not need (an option takes no sequence space).
 *
 * Checksums: a partial one (local senders) only gains the 8 bytes of length in its pseudo-header
 * sum (the completer sums the option); a full one is updated incrementally (RFC 1624: the option's
 * words, the data-offset word, the pseudo-header length). Nothing here allocates (addresses and
 * sequence numbers cross calls as int32 bits).
 */
import type { Packet } from '../packet/packet.js';
import { rd16, rd32Bits, wr16, wr32 } from '../wire/bytes.js';
import { csumReplace2, fold } from '../wire/checksum.js';
import { IP_CSUM, IP_F_MF, IP_OFFMASK } from '../wire/ipv4.js';
import { TCP_ACK, TCP_ACKF, TCP_CSUM, TCP_FIN, TCP_MIN_HLEN, TCP_RST, TCP_SEQ, TCP_SYN, tcpOption } from '../wire/l4.js';
import { CF_TOA_SEQ } from '../conn/conn-table.js';
import type { FwdContext } from './forwarder.js';
import { AO_ADDED, AO_NOTHING, AO_SKIP_FRAGMENT, AO_SKIP_HEADROOM, AO_SKIP_MTU, AO_SKIP_OPTION_ROOM } from './addr-option.js';

/** TOA option kind (F1 TCPOPT_ADDR) and length (TCPOLEN_ADDR) for IPv4. */
export const TOA_KIND = 254;
export const TOA_LEN = 8;
/** The largest TCP header (data offset 15). */
const TCP_MAX_HLEN = 60;

/** What toaInbound / toaOutbound did (for the tracer and the counters): the AO_* codes (addr-option.ts), and: */
/** toaOutbound: the server's ISN noted (and its MSS lowered, with MSS_LOWERED). */
export const TOA_ISN_NOTED = 6;
export const TOA_MSS_LOWERED = 7;
/** Number of TOA codes (counter array size). */
export const TOA_CODES = 8;

/** The tracer's words for each code. */
export const TOA_TEXT: readonly string[] = [
  '', 'added', 'not added: no option room left in the TCP header', 'not added: the packet would exceed the MTU toward the real server',
  'not added: an IP fragment', 'not added: no headroom in the frame', "server's ISN noted", "server's ISN noted, SYN-ACK MSS lowered by 8",
];

/**
 * A client → server TCP segment of FULLNAT conn c (before the forwarder's rewrite; not a later
 * fragment). Returns an AO_* code; never drops.
 */
export function toaInbound(p: Packet, c: number, ctx: FwdContext): number {
  const t = ctx.conns;
  const fl = p.tcpFlags;
  if ((fl & (TCP_SYN | TCP_ACKF)) === TCP_SYN) {
    t.clearToaSeq(c); // a new handshake on the tuple: its server ISN comes with its SYN-ACK
    return addToa(p, c, ctx);
  }
  if (ctx.sysctl.fullnatToaEntry === 0 || (fl & (TCP_SYN | TCP_RST | TCP_FIN | TCP_ACKF)) !== TCP_ACKF) return AO_NOTHING;
  if ((t.flags(c) & CF_TOA_SEQ) === 0 || rd32Bits(p.b, p.l4 + TCP_ACK) !== t.toaSeq(c)) return AO_NOTHING;
  return addToa(p, c, ctx);
}

/** Puts the option right behind the fixed TCP header of p. */
function addToa(p: Packet, c: number, ctx: FwdContext): number {
  const t = ctx.conns;
  const b = p.b;
  const l4 = p.l4;
  const doff = (b[l4 + 12]! >>> 4) << 2;
  if (doff < TCP_MIN_HLEN || doff > p.l4len) return AO_NOTHING; // not ours to judge: forwarded as it is
  if ((p.frag & (IP_F_MF | IP_OFFMASK)) !== 0) return AO_SKIP_FRAGMENT;
  if (doff + TOA_LEN > TCP_MAX_HLEN) return AO_SKIP_OPTION_ROOM;
  const size = p.gsoType === 0 ? p.ipLen : p.ihl + doff + p.gsoSize;
  const mtu = ctx.routeMtu(t.daddrBits(c));
  if (mtu > 0 && size + TOA_LEN > mtu) return AO_SKIP_MTU;
  const f0 = p.off;
  if (f0 - p.arena.slotStart(p.slot) < TOA_LEN || p.ipLen + TOA_LEN > 0xffff) return AO_SKIP_HEADROOM;
  // Everything up to the end of the fixed TCP header moves 8 bytes toward the front; the option
  // goes into the gap, in front of the other options (which stay where they are).
  const fixedEnd = l4 + TCP_MIN_HLEN;
  b.copyWithin(f0 - TOA_LEN, f0, fixedEnd);
  p.off = f0 - TOA_LEN;
  p.len = p.len + TOA_LEN;
  p.l3 -= TOA_LEN;
  p.l4 -= TOA_LEN;
  const o = fixedEnd - TOA_LEN;
  const cport = t.cport(c);
  const caddr = t.caddrBits(c);
  b[o] = TOA_KIND;
  b[o + 1] = TOA_LEN;
  wr16(b, o + 2, cport);
  wr32(b, o + 4, caddr);
  const nl4 = p.l4;
  const w0 = rd16(b, nl4 + 12); // data offset, flags
  const w1 = (w0 & 0x0fff) | (((doff + TOA_LEN) >>> 2) << 12);
  wr16(b, nl4 + 12, w1);
  const l3 = p.l3;
  csumReplace2(b, l3 + IP_CSUM, p.ipLen, p.ipLen + TOA_LEN);
  p.ipLen += TOA_LEN;
  p.l4len += TOA_LEN;
  wr16(b, l3 + 2, p.ipLen);
  const at = nl4 + TCP_CSUM;
  if (p.csumPartial) {
    wr16(b, at, fold(rd16(b, at) + TOA_LEN)); // pseudo-header sum: the length grew
  } else {
    const s = (~rd16(b, at) & 0xffff) + (~w0 & 0xffff) + w1 + TOA_LEN +
      ((TOA_KIND << 8) | TOA_LEN) + cport + (caddr >>> 16) + (caddr & 0xffff);
    wr16(b, at, ~fold(s) & 0xffff);
  }
  if (p.gsoType !== 0) p.growHdrLen(TOA_LEN);
  return AO_ADDED;
}

/**
 * A server → client TCP segment of FULLNAT conn c: a SYN-ACK's ISN is noted (the client's
 * segments acknowledging ISN + 1 get the option) and its MSS lowered. Returns AO_NOTHING, TOA_ISN_NOTED or TOA_MSS_LOWERED.
 */
export function toaOutbound(p: Packet, c: number, ctx: FwdContext): number {
  if ((p.tcpFlags & (TCP_SYN | TCP_ACKF)) !== (TCP_SYN | TCP_ACKF)) return AO_NOTHING;
  const b = p.b;
  const l4 = p.l4;
  ctx.conns.setToaSeq(c, (rd32Bits(b, l4 + TCP_SEQ) + 1) | 0);
  if (ctx.sysctl.fullnatMssAdjustEntry === 0) return TOA_ISN_NOTED;
  const doff = (b[l4 + 12]! >>> 4) << 2;
  if (doff < TCP_MIN_HLEN || doff > p.l4len) return TOA_ISN_NOTED;
  const o = tcpOption(b, l4 + TCP_MIN_HLEN, l4 + doff, 2, 4);
  if (o < 0) return TOA_ISN_NOTED;
  const mss = rd16(b, o + 2);
  if (mss <= TOA_LEN + 64) return TOA_ISN_NOTED;
  if (!p.csumPartial) csumReplace2(b, l4 + TCP_CSUM, mss, mss - TOA_LEN);
  wr16(b, o + 2, mss - TOA_LEN);
  return TOA_MSS_LOWERED;
}


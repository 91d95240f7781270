/**
 * proxy-proto — the client's address for NAT/FULLNAT real servers in the PROXY protocol
 * (haproxy.org proxy-protocol.txt, v1 text or v2 binary), as DPVS does for FULLNAT
 * (`ipvsadm -A|-E … --proxy-protocol v1|v2`): the header goes in front of the first bytes the
 * client sends, so nginx (`listen … proxy_protocol`), haproxy (`accept-proxy`), envoy and the like
 * read the client's address and the VIP before the request, with no kernel module on the server.
 *
 *   v1  "PROXY TCP4 <client ip> <vip> <client port> <vport>\r\n"  (27–56 bytes)
 *   v2  12-byte signature, 0x21 (v2, PROXY), 0x11 (AF_INET, STREAM), length 12, then client ip,
 *       vip, client port, vport — 28 bytes
 *
 * Inserting n bytes into the stream shifts everything after them, so the conn remembers where the
 * first byte of client data was (ppSeq, ConnTable's side table) and from then on:
 *   client → server  seq += n for every segment at or after ppSeq, except that a segment
 *                    *starting* at ppSeq (the first one, or its retransmission, maybe re-cut
 *                    after ICMP frag-needed) gets the header again and keeps its seq;
 *   server → client  ack and SACK edges −= n (an edge inside the header maps to ppSeq).
 * The server's SYN-ACK has its MSS lowered by n, so the client's first segment plus the header
 * still fits the server's segment size. If it does not fit the path MTU (client ignoring the MSS,
 * a smaller MTU toward the server), a DF segment is refused with ICMP fragmentation-needed
 * quoting (MTU − n) — the client re-sends it smaller and gets the header again; without DF the
 * egress fragments it. The header is never put into an IP fragment (the rest of the datagram
 * could not follow): such a first segment is dropped (`proxy-protocol-fragment`, TCP resends).
 * A new SYN on the tuple (a reused conn, new ISN) starts over.
 *
 * Partial checksums (local senders) stay partial: the pseudo-header sum only gains the length;
 * seq/ack/SACK/MSS changes need nothing (the completer sums the header). Otherwise the segment
 * that gets the header has its TCP checksum recomputed, and the others are updated incrementally
 * (RFC 1624). Nothing here allocates: addresses and sequence numbers cross calls as int32 bits
 * (`| 0`, rd32Bits, caddrBits): a u32 above 2^31 passed to or returned from a call is boxed in a
 * new HeapNumber, and sequence numbers are above 2^31 half the time.
 */
import type { Packet } from '../packet/packet.js';
import { rd16, rd32Bits, wr16, wr32 } from '../wire/bytes.js';
import { IP_F_DF, IP_F_MF } from '../wire/ipv4.js';
import {
  ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, TCP_ACK, TCP_ACKF, TCP_MIN_HLEN, TCP_RST, TCP_SEQ, TCP_SYN, tcpOption,
} from '../wire/l4.js';
import { CF_PP_SENT, CF_PP_V2 } from '../conn/conn-table.js';
import { D_FRAG_NEEDED, D_PP_FRAGMENT, D_PP_NO_ROOM } from '../pipeline/drops.js';
import { PP_V1, PP_V2 } from '../model/constants.js';
import type { FwdContext } from './forwarder.js';
import { set16, set32, tcpResized } from './tcp-edit.js';


/** v2 signature (12 bytes). */
const PP2_SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a] as const;
/** v2 header for TCP over IPv4: 16 fixed + 12 address bytes. */
export const PP2_LEN_INET = 28;
/** The longest v1 header for IPv4 ("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"). */
export const PP1_MAX_LEN_INET = 56;

/** What the last ppInbound/ppOutbound call did (for the tracer). */
export const PP_NOTHING = 0;
export const PP_INSERTED = 1;
export const PP_REINSERTED = 2;
export const PP_SEQ_SHIFTED = 3;
export const PP_ACK_ADJUSTED = 4;
export const PP_MSS_LOWERED = 5;
export let ppLastAction = PP_NOTHING;

function decLen(n: number): number {
  return n >= 10000 ? 5 : n >= 1000 ? 4 : n >= 100 ? 3 : n >= 10 ? 2 : 1;
}

function dottedLen(a: number): number {
  return decLen(a >>> 24) + decLen((a >>> 16) & 0xff) + decLen((a >>> 8) & 0xff) + decLen(a & 0xff) + 3;
}

/** Length of the header `version` writes for this client and VIP (addresses as u32 or int32 bits). */
export function ppHeaderLen(version: number, caddr: number, cport: number, vaddr: number, vport: number): number {
  if (version === PP_V2) return PP2_LEN_INET;
  return 11 + dottedLen(caddr) + 1 + dottedLen(vaddr) + 1 + decLen(cport) + 1 + decLen(vport) + 2;
}

function writeDec(b: Uint8Array, at: number, n: number): number {
  const len = decLen(n);
  for (let i = len - 1; i >= 0; i--) {
    b[at + i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + len;
}

function writeDotted(b: Uint8Array, at: number, a: number): number {
  at = writeDec(b, at, a >>> 24);
  b[at++] = 0x2e;
  at = writeDec(b, at, (a >>> 16) & 0xff);
  b[at++] = 0x2e;
  at = writeDec(b, at, (a >>> 8) & 0xff);
  b[at++] = 0x2e;
  return writeDec(b, at, a & 0xff);
}

/** "PROXY TCP4 " */
const PP1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20, 0x54, 0x43, 0x50, 0x34, 0x20] as const;

/** Writes the header at `at`; returns its length (= ppHeaderLen). Addresses as u32 or int32 bits. */
export function writePpHeader(b: Uint8Array, at: number, version: number, caddr: number, cport: number, vaddr: number, vport: number): number {
  const start = at;
  if (version === PP_V2) {
    for (let i = 0; i < 12; i++) b[at + i] = PP2_SIG[i]!;
    b[at + 12] = 0x21; // version 2, command PROXY
    b[at + 13] = 0x11; // AF_INET, STREAM
    wr16(b, at + 14, 12);
    wr32(b, at + 16, caddr);
    wr32(b, at + 20, vaddr);
    wr16(b, at + 24, cport);
    wr16(b, at + 26, vport);
    return PP2_LEN_INET;
  }
  for (let i = 0; i < 11; i++) b[at + i] = PP1_PREFIX[i]!;
  at = writeDotted(b, at + 11, caddr);
  b[at++] = 0x20;
  at = writeDotted(b, at, vaddr);
  b[at++] = 0x20;
  at = writeDec(b, at, cport);
  b[at++] = 0x20;
  at = writeDec(b, at, vport);
  b[at++] = 0x0d;
  b[at++] = 0x0a;
  return at - start;
}

/** The header length of conn c (0: the conn carries no PROXY header). */
export function connPpLen(ctx: FwdContext, c: number): number {
  const t = ctx.conns;
  return ppHeaderLen((t.flags(c) & CF_PP_V2) !== 0 ? PP_V2 : PP_V1, t.caddrBits(c), t.cport(c), t.vaddrBits(c), t.vport(c));
}

/**
 * A client → server segment of conn c (before the forwarder's rewrite). Returns 0 or a drop
 * reason; sets ppLastAction.
 */
export function ppInbound(p: Packet, c: number, ctx: FwdContext): number {
  ppLastAction = PP_NOTHING;
  const t = ctx.conns;
  const b = p.b;
  const l4 = p.l4;
  const doff = (b[l4 + 12]! >>> 4) << 2;
  if (doff < TCP_MIN_HLEN || doff > p.l4len) return 0; // not ours to judge: forwarded as it is
  const fl = p.tcpFlags;
  const syn = (fl & TCP_SYN) !== 0 ? 1 : 0;
  const seq = rd32Bits(b, l4 + TCP_SEQ);
  const data = p.l4len - doff > 0 && (fl & TCP_RST) === 0;
  let f = t.flags(c);
  if ((f & CF_PP_SENT) !== 0 && syn === 1 && (fl & TCP_ACKF) === 0 && ((seq + 1) | 0) !== t.ppSeq(c)) {
    t.clearPpSent(c); // a new connection on this tuple (new ISN): its own header
    f &= ~CF_PP_SENT;
  }
  if ((f & CF_PP_SENT) === 0) {
    if (!data) return 0;
    const r = insert(p, c, ctx, doff);
    if (r === 0) {
      t.setPpSent(c, (seq + syn) | 0);
      ppLastAction = PP_INSERTED;
    }
    return r;
  }
  const first = t.ppSeq(c);
  if (data && ((seq + syn) | 0) === first) {
    const r = insert(p, c, ctx, doff);
    if (r === 0) ppLastAction = PP_REINSERTED;
    return r;
  }
  if (((seq - first) | 0) >= 0) {
    set32(p, l4 + TCP_SEQ, (seq + connPpLen(ctx, c)) | 0);
    ppLastAction = PP_SEQ_SHIFTED;
  }
  return 0;
}

/** Puts the header between the TCP header and the payload of p. */
function insert(p: Packet, c: number, ctx: FwdContext, doff: number): number {
  const t = ctx.conns;
  const b = p.b;
  if ((p.frag & (IP_F_MF | 0x1fff)) !== 0) return D_PP_FRAGMENT;
  const n = connPpLen(ctx, c);
  if (p.gsoType === 0) {
    const mtu = ctx.routeMtu(t.daddrBits(c));
    if (mtu > 0 && p.ipLen + n > mtu && (p.frag & IP_F_DF) !== 0 && ctx.sysctl.pmtuDisc !== 0) {
      ctx.icmpError(p, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu - n, p.daddr);
      return D_FRAG_NEEDED;
    }
  }
  const f0 = p.off;
  if (f0 - p.arena.slotStart(p.slot) < n || p.ipLen + n > 0xffff) return D_PP_NO_ROOM;
  // Everything up to the end of the TCP header moves n bytes toward the front; the header goes
  // into the gap in front of the payload (which stays where it is).
  const hdrEnd = p.l4 + doff;
  b.copyWithin(f0 - n, f0, hdrEnd);
  p.off = f0 - n;
  p.len = p.len + n;
  p.l3 -= n;
  p.l4 -= n;
  writePpHeader(b, hdrEnd - n, (t.flags(c) & CF_PP_V2) !== 0 ? PP_V2 : PP_V1, t.caddrBits(c), t.cport(c), t.vaddrBits(c), t.vport(c));
  p.ipLen += n;
  p.l4len += n;
  tcpResized(p, p.l4len - n);
  return 0;
}

/** Maps a server-side sequence number (an ack or SACK edge) back into the client's space (int32 bits). */
function back(v: number, first: number, n: number): number {
  const d = (v - first) | 0;
  if (d <= 0) return v;
  return d >= n ? (v - n) | 0 : first;
}

/**
 * A server → client segment of conn c: MSS lowered on the SYN-ACK, ack and SACK edges moved
 * back once the header was sent. Never drops (returns 0).
 */
export function ppOutbound(p: Packet, c: number, ctx: FwdContext): number {
  ppLastAction = PP_NOTHING;
  const t = ctx.conns;
  const b = p.b;
  const l4 = p.l4;
  const doff = (b[l4 + 12]! >>> 4) << 2;
  if (doff < TCP_MIN_HLEN || doff > p.l4len) return 0;
  const fl = p.tcpFlags;
  const synAck = (fl & (TCP_SYN | TCP_ACKF)) === (TCP_SYN | TCP_ACKF);
  const sent = (t.flags(c) & CF_PP_SENT) !== 0;
  if (!synAck && (!sent || (fl & TCP_ACKF) === 0)) return 0;
  const n = connPpLen(ctx, c);
  const first = sent ? t.ppSeq(c) : 0;
  if (sent && (fl & TCP_ACKF) !== 0) {
    const ack = rd32Bits(b, l4 + TCP_ACK);
    const na = back(ack, first, n);
    if (na !== ack) { set32(p, l4 + TCP_ACK, na); ppLastAction = PP_ACK_ADJUSTED; }
  }
  // Options: MSS (SYN-ACK) and SACK blocks.
  const end = l4 + doff;
  if (synAck) {
    const o = tcpOption(b, l4 + TCP_MIN_HLEN, end, 2, 4);
    const mss = o < 0 ? 0 : rd16(b, o + 2);
    if (mss > n + 64) { set16(p, o + 2, mss - n); ppLastAction = PP_MSS_LOWERED; }
  }
  const o = sent ? tcpOption(b, l4 + TCP_MIN_HLEN, end, 5, 0) : -1;
  const len = o < 0 ? 0 : b[o + 1]!;
  if (len >= 10 && ((len - 2) & 7) === 0) {
    for (let e = o + 2; e < o + len; e += 4) {
      const v = rd32Bits(b, e);
      const nv = back(v, first, n);
      if (nv !== v) set32(p, e, nv);
    }
  }
  return 0;
}

/**
 * An ICMP error from the server side about a client → server segment of conn c (p.inL4 is its
 * embedded TCP header): the embedded seq is put back to what the client sent, so the client's
 * stack finds the segment it refers to (Linux checks it against its send window). The caller
 * rewrites the addresses and recomputes the ICMP checksum.
 */
export function ppEmbeddedBack(p: Packet, c: number, ctx: FwdContext): void {
  const t = ctx.conns;
  if (p.inProto !== 6 || p.inL4 < 0 || (t.flags(c) & CF_PP_SENT) === 0) return;
  const at = p.inL4 + TCP_SEQ;
  if (at + 4 > p.l3 + p.ipLen) return;
  const b = p.b;
  const v = rd32Bits(b, at);
  const nv = back(v, t.ppSeq(c), connPpLen(ctx, c));
  if (nv !== v) wr32(b, at, nv);
}

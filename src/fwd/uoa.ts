/**
 * uoa — the client's address for FULLNAT UDP real servers (UOA, "UDP Option of Address"), as
 * DPVS puts it (iqiyi/dpvs include/uoa.h, src/ipvs/ip_vs_proto_udp.c) for real servers running its
 * `uoa` kernel module, which maps LIP:lport back to the client for getpeername()/recvfrom():
 *
 *   the UOA option  kind 31 (IPOPT_UOA), length 8, client port (2 bytes), client IPv4 (4 bytes)
 *
 *   mode 0 "opp" (DPVS's default): a private IP protocol 248 (IPPROTO_OPT) header between the IP and
 *     the UDP header — version 1 (high nibble), the next protocol (17), its length 12 (4 + the
 *     option) — then the option; the IP protocol becomes 248. Switches pass unknown protocols at
 *     full speed; a server without the module drops these datagrams (protocol unreachable).
 *   mode 1 "ipo": the option as an IPv4 option, right after the fixed 20-byte IP header (the IP
 *     header grows by 8). A server without the module ignores it; some switches slow-path IP options.
 *
 * It goes on the first `fullnat_uoa_max_trail` client datagrams of each FULLNAT UDP conn (DPVS
 * `uoa_max_trail`, default 3 there; 0 — uvs's default — turns UOA off, because in opp mode servers
 * without the module lose those datagrams). When there is no room (ipo: the IP header would pass 60
 * bytes) or the grown datagram would not fit the MTU toward the real server, the option goes in a
 * datagram of its own sent just before (DPVS send_standalone_uoa: from LIP:lport to RIP:rport, no
 * payload, UDP checksum 0 — writeUoaDatagram); it is left out, and counted, for IP fragments (the
 * other fragments could not follow a protocol-248 first one) and without headroom in the frame.
 *
 * Checksums: the UDP checksum covers what it did (the module restores the datagram, and an IP option
 * is not in the pseudo-header); the IP header's is recomputed. A partial UDP checksum stays partial,
 * its csum_start moved with the UDP header. Nothing here allocates.
 */
import type { Packet } from '../packet/packet.js';
import { wr16, wr32 } from '../wire/bytes.js';
import { setIpv4Checksum } from '../wire/checksum.js';
import { IP_F_MF, IP_HLEN, IP_OFFMASK, IP_PROTO, writeIpv4 } from '../wire/ipv4.js';
import { ETH_HLEN, ETH_TYPE, ETHERTYPE_IPV4 } from '../wire/ethernet.js';
import type { FwdContext } from './forwarder.js';
import { AO_ADDED, AO_NOTHING, AO_SKIP_FRAGMENT, AO_SKIP_HEADROOM, AO_SKIP_MTU, AO_SKIP_OPTION_ROOM } from './addr-option.js';

/** UOA option kind and length (IPv4), the option-protocol number and its fixed header length. */
export const IPOPT_UOA = 31;
export const IPOLEN_UOA = 8;
export const IPPROTO_OPT = 248;
export const OPPHDR_LEN = 4;
/** fullnat_uoa_mode values (DPVS enum uoa_mode). */
export const UOA_M_OPP = 0;
export const UOA_M_IPO = 1;
/** The largest IPv4 header. */
const IP_MAX_HLEN = 60;

/** What uoaInbound did (counters, tracer): the AO_* codes (addr-option.ts); the director counts
 * UOA_STANDALONE when it sent the option in a datagram of its own instead. */
export const UOA_STANDALONE = 6;
export const UOA_CODES = 7;

export const UOA_TEXT: readonly string[] = [
  '', 'added', 'not added: the IP header has no room for the option', 'not added: the datagram would exceed the MTU toward the real server',
  'not added: an IP fragment', 'not added: no headroom in the frame',
];

/**
 * A client → server datagram of FULLNAT UDP conn c (before the forwarder's rewrite; p.l4 >= 0,
 * its packet already counted in the conn's inPkts). Returns an AO_* code; never drops.
 */
export function uoaInbound(p: Packet, c: number, ctx: FwdContext): number {
  const trail = ctx.sysctl.fullnatUoaMaxTrail;
  const t = ctx.conns;
  if (trail === 0 || t.inPkts(c) > trail) return AO_NOTHING;
  if ((p.frag & (IP_F_MF | IP_OFFMASK)) !== 0) return AO_SKIP_FRAGMENT;
  const ipo = ctx.sysctl.fullnatUoaMode === UOA_M_IPO;
  const n = ipo ? IPOLEN_UOA : OPPHDR_LEN + IPOLEN_UOA;
  if (ipo && p.ihl + n > IP_MAX_HLEN) return AO_SKIP_OPTION_ROOM;
  const mtu = ctx.routeMtu(t.daddrBits(c));
  if (mtu > 0 && p.ipLen + n > mtu) return AO_SKIP_MTU;
  const f0 = p.off;
  if (f0 - p.arena.slotStart(p.slot) < n || p.ipLen + n > 0xffff) return AO_SKIP_HEADROOM;
  const b = p.b;
  // The bytes in front of the insertion point (Ethernet, and the fixed IP header for ipo, the whole
  // IP header for opp) move n toward the front; the UDP header and payload stay where they are.
  const at = ipo ? p.l3 + IP_HLEN : p.l3 + p.ihl;
  b.copyWithin(f0 - n, f0, at);
  p.off = f0 - n;
  p.len = p.len + n;
  p.l3 -= n;
  writeUoa(b, at - n, ipo, c, ctx);
  const l3 = p.l3;
  if (ipo) {
    p.ihl += n;
    b[l3] = 0x40 | (p.ihl >>> 2);
  } else {
    b[l3 + IP_PROTO] = IPPROTO_OPT;
  }
  p.ipLen += n;
  wr16(b, l3 + 2, p.ipLen);
  setIpv4Checksum(b, l3);
  p.shiftCsumStart(n);
  return AO_ADDED;
}

/** Writes the option for conn c at o (opp: behind the protocol-248 header); returns where it ends. */
function writeUoa(b: Uint8Array, o: number, ipo: boolean, c: number, ctx: FwdContext): number {
  if (!ipo) {
    b[o] = 0x10; // version 1 (IPv4), reserved 0
    b[o + 1] = 17; // the next protocol: UDP
    wr16(b, o + 2, OPPHDR_LEN + IPOLEN_UOA);
    o += OPPHDR_LEN;
  }
  b[o] = IPOPT_UOA;
  b[o + 1] = IPOLEN_UOA;
  wr16(b, o + 2, ctx.conns.cport(c));
  wr32(b, o + 4, ctx.conns.caddrBits(c));
  return o + IPOLEN_UOA;
}

/**
 * DPVS's standalone UOA datagram for conn c at frame offset f (Ethernet addresses left for egress):
 * LIP:lport → RIP:rport, the option (opp: behind the protocol-248 header; ipo: as an IP option), an
 * empty UDP payload with checksum 0. Returns the frame length.
 */
export function writeUoaDatagram(b: Uint8Array, f: number, c: number, ctx: FwdContext, ttl: number, tos: number): number {
  const t = ctx.conns;
  const ipo = ctx.sysctl.fullnatUoaMode === UOA_M_IPO;
  const l3 = f + ETH_HLEN;
  const ihl = ipo ? IP_HLEN + IPOLEN_UOA : IP_HLEN;
  const extra = ipo ? 0 : OPPHDR_LEN + IPOLEN_UOA;
  wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
  writeIpv4(b, l3, tos, ihl + extra + 8, ctx.nextIpId(), 0, ttl, ipo ? 17 : IPPROTO_OPT, t.laddrBits(c), t.daddrBits(c));
  const o = writeUoa(b, l3 + IP_HLEN, ipo, c, ctx);
  if (ipo) b[l3] = 0x40 | (ihl >>> 2);
  setIpv4Checksum(b, l3);
  wr16(b, o, t.lport(c));
  wr16(b, o + 2, t.dport(c));
  wr16(b, o + 4, 8);
  wr16(b, o + 6, 0);
  return ETH_HLEN + ihl + extra + 8;
}

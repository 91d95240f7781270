/**
 * TUN (`-i`; K ip_vs_tunnel_xmit): IPIP, GUE or GRE encapsulation (`--tun-type`).
 *
 * in: a new outer IPv4 header is put in front: saddr = the director's source address on the
 * route to the RS, daddr = RIP, TOS = inner DSCP with ECN encapsulated (CE ⇒ ECT(0)), TTL =
 * inner TTL (already decremented), DF copied from the inner header (sysctl pmtu_disc=1, the
 * default; 0 with pmtu_disc=0), ID 0 with DF else a counter; then, by the dest's tunnel type:
 *   ipip  protocol 4, nothing more (20 bytes in all);
 *   gue   protocol 17, a UDP header (source port a hash of the conn in 32768..60998, the local
 *         port range, as K udp_flow_src_port; destination port `--tun-port`; checksum 0 with
 *         `--tun-nocsum`, computed with `--tun-csum` / `--tun-remcsum`) and the 4-byte GUE header
 *         (version 0, hlen 0, proto_ctype 4, flags 0) — 32 bytes;
 *   gre   protocol 47, the base GRE header (protocol 0x0800; with `--tun-csum` the C bit and the
 *         checksum + reserved words) — 24 or 28 bytes.
 * An inner DF packet that would not fit the path MTU after those bytes is refused with ICMP
 * fragmentation-needed (MTU − overhead) to the client, as the kernel does; with pmtu_disc=0 it is
 * encapsulated anyway and the outer packet leaves as fragments (K ensure_mtu_is_adequate).
 * Partial checksums stay partial (csum_start moves with the inner header) unless the outer
 * checksum covers the inner packet (GUE/GRE with a checksum): then the inner one is completed
 * first. `--tun-remcsum` is sent as `--tun-csum`: uvs completes the inner checksum instead of
 * adding GUE's remote-checksum-offload option (the receiver gets the same inner packet).
 * GSO super-frames cannot be handed to the kernel with an outer header (virtio-net has no
 * tunnel GSO type): the director segments TCP ones in software first (segment.ts) and hands
 * each segment here; anything else still marked GSO is refused.
 */
import type { Packet } from '../packet/packet.js';

import { ETH_HLEN } from '../wire/ethernet.js';
import { IP_F_DF, writeIpv4 } from '../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED } from '../wire/l4.js';
import { wr16 } from '../wire/bytes.js';
import { checksum, setL4Checksum } from '../wire/checksum.js';
import { GRE_F_CSUM, GRE_HLEN, GRE_PROTO_IPV4, GUE_HLEN, GUE_PROTO_IPV4, greInner, gueInner } from '../wire/tunnel.js';
import { D_FRAG_NEEDED, D_GSO, D_MTU_SMALL, D_NO_ROUTE, D_TRUNC_L4 } from '../pipeline/drops.js';
import { TUN_F_CSUM, TUN_F_NOCSUM, TUN_TYPE_GRE, TUN_TYPE_GUE } from '../model/constants.js';
import type { Dest } from '../model/dest.js';
import type { Forwarder, FwdContext } from './forwarder.js';

export const IPIP_OVERHEAD = 20;
export const GUE_OVERHEAD = IPIP_OVERHEAD + 8 + GUE_HLEN;
export const GRE_OVERHEAD = IPIP_OVERHEAD + GRE_HLEN;
export const GRE_CSUM_OVERHEAD = GRE_OVERHEAD + 4;
/** K udp_flow_src_port over the default ip_local_port_range: [min, max). */
const GUE_SPORT_MIN = 32768;
const GUE_SPORT_MAX = 60999;

/** What a tunnel needs to know of its dest. */
export type TunParams = Pick<Dest, 'tunType' | 'tunPort' | 'tunFlags'>;

/** Bytes the dest's tunnel adds in front of the inner packet (outer IPv4 header included). */
export function tunOverhead(d: TunParams | undefined): number {
  if (d === undefined) return IPIP_OVERHEAD;
  if (d.tunType === TUN_TYPE_GUE) return GUE_OVERHEAD;
  if (d.tunType === TUN_TYPE_GRE) return d.tunFlags === TUN_F_CSUM ? GRE_CSUM_OVERHEAD : GRE_OVERHEAD;
  return IPIP_OVERHEAD;
}

/**
 * Where the client's packet starts in the quote of an ICMP error about one of uvs's tunnel
 * packets (K ip_vs_in_icmp: IPIP; ipvs_udp_decap for GUE, ipvs_gre_decap for GRE). `t` is the
 * quoted tunnel header right after the quoted outer IPv4 header, `end` the end of the quote,
 * `outerProto` the quoted outer header's protocol (4, 17 or 47). -1 unless the quote holds that
 * tunnel's header and, inside, an IPv4 header with at least 4 bytes after it (the ports).
 */
export function tunnelQuoteInner(b: Uint8Array, t: number, end: number, outerProto: number): number {
  let i: number;
  if (outerProto === 4) i = t;
  else if (outerProto === 17) i = end - t < 8 + GUE_HLEN ? -1 : gueInner(b, t + 8);
  else if (outerProto === 47) i = end - t < GRE_HLEN ? -1 : greInner(b, t);
  else return -1;
  if (i < 0 || end - i < 24 || b[i]! >>> 4 !== 4) return -1;
  const ihl = (b[i]! & 15) << 2;
  return ihl < 20 || end - i < ihl + 4 ? -1 : i;
}

export const tunForwarder: Forwarder = {
  name: 'tun',
  inbound(p: Packet, c: number, ctx: FwdContext): number {
    // int32 across calls (a u32 above 2^31 would be boxed)
    return tunEncap(p, ctx.conns.daddrBits(c), ctx.conns.dest(c), c, ctx);
  },
  outbound(p: Packet, _c: number, _ctx: FwdContext): number {
    p.nextHop = p.daddr;
    return 0;
  },
};

/**
 * Encapsulates p (the inner packet, Ethernet in front) toward `rip` for `dest`'s tunnel type. `c`
 * is p's conn (the GUE source port is a hash of it), or -1 for a packet of uvs's own (a
 * health-check probe: the hash of p's addresses and ports). Returns 0 or a drop reason.
 */
export function tunEncap(p: Packet, rip: number, dest: TunParams | undefined, c: number, ctx: FwdContext): number {
  const conns = ctx.conns;
  const src = ctx.routeSrc(rip);
  if (src === 0) return D_NO_ROUTE;
  const type = dest === undefined ? 0 : dest.tunType;
  const overhead = tunOverhead(dest);
  const mtu = ctx.routeMtu(rip) - overhead;
  if (mtu < 68) return D_MTU_SMALL;
  const b = p.b;
  const inner = p.l3;
  const df = ctx.sysctl.pmtuDisc !== 0 && (p.frag & IP_F_DF) !== 0;
  if (p.gsoType !== 0) return D_GSO;
  if (p.ipLen > mtu) {
    if (df && !(p.proto === 1 && p.inL3 >= 0)) {
      ctx.icmpError(p, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, p.daddr);
      return D_FRAG_NEEDED;
    }
  }
  // An outer checksum over the inner packet needs the inner checksum final first.
  const outerCsum = type === TUN_TYPE_GUE ? dest!.tunFlags !== TUN_F_NOCSUM : type === TUN_TYPE_GRE && dest!.tunFlags === TUN_F_CSUM;
  if (outerCsum && p.csumPartial && !ctx.completePartial(p)) return D_TRUNC_L4;
  // Move the Ethernet header to the front (arena headroom), then write the outer headers.
  const f = p.off;
  const nf = f - overhead;
  b.copyWithin(nf, f, f + ETH_HLEN);
  p.off = nf;
  p.len = p.len + overhead;
  const outer = nf + ETH_HLEN;
  let tos = b[inner + 1]!;
  if ((tos & 3) === 3) tos = (tos & ~3) | 2; // CE inside ⇒ ECT(0) outside
  const proto = type === TUN_TYPE_GUE ? 17 : type === TUN_TYPE_GRE ? 47 : 4;
  writeIpv4(b, outer, tos, p.ipLen + overhead, df ? 0 : ctx.nextIpId(), df ? IP_F_DF : 0, b[inner + 8]!, proto, src, rip);
  const l4 = outer + IPIP_OVERHEAD;
  const l4len = p.ipLen + overhead - IPIP_OVERHEAD;
  if (type === TUN_TYPE_GUE) {
    // K ipvs_gue_encap: UDP (source port from the flow), GUE version 0, proto_ctype IPPROTO_IPIP.
    let h = c >= 0
      ? Math.imul(conns.caddrBits(c) ^ Math.imul(conns.cport(c), 0x9e3779b1), 0x85ebca6b)
      : Math.imul((p.saddr | 0) ^ Math.imul(p.sport, 0x9e3779b1), 0x85ebca6b);
    h ^= c >= 0
      ? Math.imul(conns.vaddrBits(c) ^ (conns.vport(c) << 16) ^ conns.proto(c), 0xc2b2ae35)
      : Math.imul((p.daddr | 0) ^ (p.dport << 16) ^ p.proto, 0xc2b2ae35);
    h ^= h >>> 15;
    wr16(b, l4, GUE_SPORT_MIN + Math.floor(((h >>> 0) * (GUE_SPORT_MAX - GUE_SPORT_MIN)) / 4294967296));
    wr16(b, l4 + 2, dest!.tunPort);
    wr16(b, l4 + 4, l4len);
    wr16(b, l4 + 6, 0);
    b[l4 + 8] = 0; // version 0, C 0, hlen 0
    b[l4 + 9] = GUE_PROTO_IPV4;
    wr16(b, l4 + 10, 0);
    if (outerCsum) setL4Checksum(b, src >>> 0, rip >>> 0, 17, l4, l4len, 6);
  } else if (type === TUN_TYPE_GRE) {
    wr16(b, l4, outerCsum ? GRE_F_CSUM : 0);
    wr16(b, l4 + 2, GRE_PROTO_IPV4);
    if (outerCsum) {
      wr16(b, l4 + 4, 0);
      wr16(b, l4 + 6, 0);
      wr16(b, l4 + 4, checksum(b, l4, l4len));
    }
  }
  p.shiftCsumStart(overhead);
  // The packet's L3 is now the outer header; inner offsets stay valid for the tracer.
  p.l3 = outer;
  p.nextHop = rip >>> 0;
  return 0;
}

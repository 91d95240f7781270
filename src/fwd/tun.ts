/**
 * TUN (IP-IP encapsulation, `-i`; K ip_vs_tunnel_xmit, ipip only).
 *
 * in: a new outer IPv4 header is put in front: saddr = the director's source address on the
 * route to the RS, daddr = RIP, protocol 4, TOS = inner DSCP with ECN encapsulated (CE ⇒
 * ECT(0)), TTL = inner TTL (already decremented), DF copied from the inner header (sysctl
 * pmtu_disc=1, the default; 0 with pmtu_disc=0), ID 0 with DF else a counter. An inner DF packet
 * that would not fit the path MTU after the 20 extra bytes is refused with ICMP
 * fragmentation-needed (MTU − 20) to the client, as the kernel does; with pmtu_disc=0 it is
 * encapsulated anyway and the IPIP packet leaves as fragments (K ensure_mtu_is_adequate). Partial checksums stay partial: csum_start moves with the inner header.
 * GSO super-frames cannot be handed to the kernel with an IPIP header (virtio-net has no
 * IPXIP4 GSO type): the director segments TCP ones in software first (segment.ts) and hands
 * each segment here; anything else still marked GSO is refused.
 */
import type { Packet } from '../packet/packet.js';

import { ETH_HLEN } from '../wire/ethernet.js';
import { IP_F_DF, writeIpv4 } from '../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED } from '../wire/l4.js';
import { D_FRAG_NEEDED, D_GSO, D_MTU_SMALL, D_NO_ROUTE } from '../pipeline/drops.js';
import type { Forwarder, FwdContext } from './forwarder.js';

export const IPIP_OVERHEAD = 20;

export const tunForwarder: Forwarder = {
  name: 'tun',
  inbound(p: Packet, c: number, ctx: FwdContext): number {
    const rip = ctx.conns.daddrBits(c); // int32 across calls (a u32 above 2^31 would be boxed)
    const src = ctx.routeSrc(rip);
    if (src === 0) return D_NO_ROUTE;
    const mtu = ctx.routeMtu(rip) - IPIP_OVERHEAD;
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
    // Move the Ethernet header 20 bytes to the front (arena headroom), then write the outer IP.
    const f = p.off;
    const nf = f - IPIP_OVERHEAD;
    b.copyWithin(nf, f, f + ETH_HLEN);
    p.off = nf;
    p.len = p.len + IPIP_OVERHEAD;
    const outer = nf + ETH_HLEN;
    let tos = b[inner + 1]!;
    if ((tos & 3) === 3) tos = (tos & ~3) | 2; // CE inside ⇒ ECT(0) outside
    writeIpv4(b, outer, tos, p.ipLen + IPIP_OVERHEAD, df ? 0 : ctx.nextIpId(), df ? IP_F_DF : 0, b[inner + 8]!, 4, src, rip);
    p.shiftCsumStart(IPIP_OVERHEAD);
    // The packet's L3 is now the outer header; inner offsets stay valid for the tracer.
    p.l3 = outer;
    p.nextHop = rip >>> 0;
    return 0;
  },
  outbound(p: Packet, _c: number, _ctx: FwdContext): number {
    p.nextHop = p.daddr;
    return 0;
  },
};

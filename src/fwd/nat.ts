/**
 * NAT (masquerading, `-m`; K ip_vs_nat_xmit / handle_response).
 *
 * in:  CIP:cport → VIP:vport   becomes  CIP:cport → RIP:rport   (port mapping allowed)
 * out: RIP:rport → CIP:cport   becomes  VIP:vport → CIP:cport
 * Real servers must route their replies through the director (default gateway = DIP).
 */
import type { Packet } from '../packet/packet.js';
import { rewriteDst, rewriteSrc } from './l4rewrite.js';
import type { Forwarder, FwdContext } from './forwarder.js';

export const natForwarder: Forwarder = {
  name: 'nat',
  inbound(p: Packet, c: number, ctx: FwdContext): number {
    const t = ctx.conns;
    rewriteDst(p, t.daddrBits(c), t.dport(c));
    p.nextHop = p.daddr;
    return 0;
  },
  outbound(p: Packet, c: number, ctx: FwdContext): number {
    const t = ctx.conns;
    rewriteSrc(p, t.vaddrBits(c), t.vport(c));
    p.nextHop = p.daddr;
    return 0;
  },
};

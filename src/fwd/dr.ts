/**
 * DR (direct routing, gatewaying, `-g`; K ip_vs_dr_xmit).
 *
 * in: the frame goes to the real server's MAC; IP header unchanged except TTL (the RS owns the
 * VIP on a non-ARPing interface and answers the client directly). Nothing comes back this way.
 */
import type { Packet } from '../packet/packet.js';
import type { Forwarder, FwdContext } from './forwarder.js';

export const drForwarder: Forwarder = {
  name: 'dr',
  inbound(p: Packet, c: number, ctx: FwdContext): number {
    p.nextHop = ctx.conns.daddrBits(c) >>> 0; // int32 read: never boxed (see ConnTable.daddrBits)
    return 0;
  },
  outbound(p: Packet, _c: number, _ctx: FwdContext): number {
    // Replies of DR conns do not normally reach the director; if one does, pass it on unchanged.
    p.nextHop = p.daddr;
    return 0;
  },
};

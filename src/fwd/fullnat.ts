/**
 * FULLNAT (`-b`; Alibaba LVS / DPVS FNAT): both addresses rewritten, so real servers may sit on
 * any routed network and need no special route back.
 *
 * in:  CIP:cport → VIP:vport   becomes  LIP:lport → RIP:rport
 * out: RIP:rport → LIP:lport   becomes  VIP:vport → CIP:cport
 * LIP:lport comes from the service's local-address pool (laddr-pool.ts) when the conn is created.
 */
import type { Packet } from '../packet/packet.js';
import { rewriteDst, rewriteSrc } from './l4rewrite.js';
import type { Forwarder, FwdContext } from './forwarder.js';

export const fullnatForwarder: Forwarder = {
  name: 'fullnat',
  inbound(p: Packet, c: number, ctx: FwdContext): number {
    const t = ctx.conns;
    rewriteSrc(p, t.laddrBits(c), t.lport(c));
    rewriteDst(p, t.daddrBits(c), t.dport(c));
    p.nextHop = p.daddr;
    return 0;
  },
  outbound(p: Packet, c: number, ctx: FwdContext): number {
    const t = ctx.conns;
    rewriteSrc(p, t.vaddrBits(c), t.vport(c));
    rewriteDst(p, t.caddrBits(c), t.cport(c));
    p.nextHop = p.daddr;
    return 0;
  },
};

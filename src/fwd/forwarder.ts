/**
 * A forwarding method, bound to a conn once when the conn is created (as ip_vs_bind_xmit does):
 * `inbound` handles client→server packets, `outbound` server→client packets (NAT and FULLNAT
 * only: DR and TUN replies never pass the director). Each rewrites the packet in place and sets
 * `pkt.nextHop` to the address to route toward; it returns 0 or a drop reason.
 */
import type { Packet } from '../packet/packet.js';
import type { ConnTable } from '../conn/conn-table.js';

/** What a forwarder may ask of the director (routing facts and ICMP generation). */
export interface FwdContext {
  readonly conns: ConnTable;
  /** Source address of the route toward addr (0 if no route). */
  routeSrc(addr: number): number;
  /** MTU of the egress port toward addr (0 if no route). */
  routeMtu(addr: number): number;
  /** Sends ICMP type/code (info = 2nd word, e.g. MTU) back to the sender of p, from `from`. */
  icmpError(p: Packet, type: number, code: number, info: number, from: number): void;
  /** Next IP ID for outer headers without DF. */
  nextIpId(): number;
  /** Completes a partial L4 checksum of p in software (false: the offsets do not fit the packet). */
  completePartial(p: Packet): boolean;
  /** The IPVS sysctls the forwarders read (pmtu_disc; FULLNAT's TOA and UOA ones). */
  readonly sysctl: {
    readonly pmtuDisc: number; readonly fullnatToaEntry: number; readonly fullnatMssAdjustEntry: number;
    readonly fullnatUoaMaxTrail: number; readonly fullnatUoaMode: number;
  };
}

export interface Forwarder {
  readonly name: string;
  inbound(p: Packet, c: number, ctx: FwdContext): number;
  outbound(p: Packet, c: number, ctx: FwdContext): number;
}

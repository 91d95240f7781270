/**
 * Every reason uvs drops a frame, in one list with a counter each (as VPP's error lists).
 * A stage returns DROP with one of these; the loop counts it. Index 0 means "not dropped".
 * Names are stable: metrics and `uvsadm` listings use them.
 */
export const DROP_REASONS = [
  'none',
  'malformed-ethernet',
  'vlan-unsupported',
  'malformed-arp',
  'malformed-ipv4',
  'ipv4-options-bad',
  'ip-checksum',
  'truncated-l4',
  'fragment-no-conn',
  'not-ipv4',
  'not-for-us',
  'ttl-exceeded',
  'no-service-port',
  'no-dest',
  'conn-table-full',
  'dest-unavailable',
  'non-syn-no-conn',
  'laddr-exhausted',
  'no-laddr',
  'no-route',
  'arp-queue-full',
  'arp-unresolved',
  'frag-needed',
  'mtu-too-small',
  'tx-failed',
  'icmp-no-conn',
  'gso-unsupported',
  'frame-too-big',
  'own-frame',
  'ipv6-unsupported',
  'echo-fragmented',
  'defence-drop-packet',
  'nat-no-conn',
  'proxy-protocol-fragment',
  'proxy-protocol-no-room',
  'icmp-checksum',
  'synproxy-bad-ack',
  'synproxy-null-ack',
  'synproxy-not-ack',
  'synproxy-queue-full',
  'synproxy-aborted',
  'ftp-bad-checksum',
  'synproxy-ack-storm',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

const index = new Map<string, number>(DROP_REASONS.map((n, i) => [n, i]));

export function dropIndex(name: DropReason): number {
  return index.get(name)!;
}

export const D_MALFORMED_ETH = dropIndex('malformed-ethernet');
export const D_VLAN = dropIndex('vlan-unsupported');
export const D_MALFORMED_ARP = dropIndex('malformed-arp');
export const D_MALFORMED_IP = dropIndex('malformed-ipv4');
export const D_IP_OPTIONS = dropIndex('ipv4-options-bad');
export const D_IP_CSUM = dropIndex('ip-checksum');
export const D_TRUNC_L4 = dropIndex('truncated-l4');
export const D_FRAG_NO_CONN = dropIndex('fragment-no-conn');
export const D_NOT_IPV4 = dropIndex('not-ipv4');
export const D_NOT_FOR_US = dropIndex('not-for-us');
export const D_TTL = dropIndex('ttl-exceeded');
export const D_NO_SVC_PORT = dropIndex('no-service-port');
export const D_NO_DEST = dropIndex('no-dest');
export const D_CONN_FULL = dropIndex('conn-table-full');
export const D_DEST_UNAVAIL = dropIndex('dest-unavailable');
export const D_NON_SYN = dropIndex('non-syn-no-conn');
export const D_LADDR_EXHAUSTED = dropIndex('laddr-exhausted');
export const D_NO_LADDR = dropIndex('no-laddr');
export const D_NO_ROUTE = dropIndex('no-route');
export const D_ARP_QUEUE_FULL = dropIndex('arp-queue-full');
export const D_ARP_UNRESOLVED = dropIndex('arp-unresolved');
export const D_FRAG_NEEDED = dropIndex('frag-needed');
export const D_MTU_SMALL = dropIndex('mtu-too-small');
export const D_TX_FAILED = dropIndex('tx-failed');
export const D_ICMP_NO_CONN = dropIndex('icmp-no-conn');
export const D_ICMP_CSUM = dropIndex('icmp-checksum');
export const D_GSO = dropIndex('gso-unsupported');
export const D_TOO_BIG = dropIndex('frame-too-big');
export const D_OWN = dropIndex('own-frame');
export const D_IPV6 = dropIndex('ipv6-unsupported');
export const D_ECHO_FRAG = dropIndex('echo-fragmented');
/** drop_packet (K ip_vs_todrop): a new conn refused under conn-table pressure. */
export const D_DEFENCE = dropIndex('defence-drop-packet');
/** nat_icmp_send=1: a NAT real server's packet without a conn, answered with ICMP port unreachable. */
export const D_NAT_NO_CONN = dropIndex('nat-no-conn');
/** --proxy-protocol: the client's first data came in an IP fragment (no header put into it; TCP resends). */
export const D_PP_FRAGMENT = dropIndex('proxy-protocol-fragment');
/** --proxy-protocol: no room in front of the frame (or past 64 KiB) for the header. */
export const D_PP_NO_ROOM = dropIndex('proxy-protocol-no-room');

/** SYN proxy (fwd/synproxy.ts): an ACK without a conn whose cookie is not valid (F1 SYNPROXY_BAD_ACK). */
export const D_SP_BAD_ACK = dropIndex('synproxy-bad-ack');
/** SYN proxy with synproxy_defer=1: the cookie ACK carried no data (F1 SYNPROXY_NULL_ACK). */
export const D_SP_NULL_ACK = dropIndex('synproxy-null-ack');
/** SYN proxy, awaiting the real server's SYN-ACK: a client segment without ACK, or an unexpected one from the server. */
export const D_SP_NOT_ACK = dropIndex('synproxy-not-ack');
/** SYN proxy, awaiting the real server's SYN-ACK: more client segments than synproxy_skb_store_thresh (F1 SYNPROXY_SYNSEND_QLEN). */
export const D_SP_QUEUE_FULL = dropIndex('synproxy-queue-full');
/** SYN proxy: held client segments of a conn the real server reset or never answered. */
export const D_SP_ABORTED = dropIndex('synproxy-aborted');
/** SYN proxy: a real server's ACK repeating the same seq and ack synproxy_dup_ack_thresh times (F1 SYNPROXY_ACK_STORM). */
export const D_SP_ACK_STORM = dropIndex('synproxy-ack-storm');
/** FTP helper (fwd/ftp.ts): a control-conn segment with data and a wrong TCP checksum (K tcp_csum_check before the helper). */
export const D_FTP_BAD_CSUM = dropIndex('ftp-bad-checksum');

/** Counters, indexed by reason. */
export class DropCounters {
  readonly counts = new Float64Array(DROP_REASONS.length);

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < DROP_REASONS.length; i++) if (this.counts[i]) out[DROP_REASONS[i]!] = this.counts[i]!;
    return out;
  }
}

/**
 * Kernel IPVS constants (include/uapi/linux/ip_vs.h), shared by control, data path and listings.
 * Values are the kernel's so save files, listings and the sync format can use them unchanged.
 */

/** Forwarding method (IP_VS_CONN_F_FWD_MASK values). FULLNAT is the Alibaba/DPVS value. */
export const FWD_MASQ = 0;
export const FWD_LOCAL = 1;
export const FWD_TUNNEL = 2;
export const FWD_DROUTE = 3;
export const FWD_BYPASS = 4;
export const FWD_FULLNAT = 5;
export type FwdMethod = 0 | 1 | 2 | 3 | 4 | 5;

/** Service flags (IP_VS_SVC_F_*). */
export const SVC_F_PERSISTENT = 0x0001;
export const SVC_F_HASHED = 0x0002;
export const SVC_F_ONEPACKET = 0x0004;
export const SVC_F_SCHED1 = 0x0008; // sh-fallback / mh-fallback / flag-1
export const SVC_F_SCHED2 = 0x0010; // sh-port / mh-port / flag-2
export const SVC_F_SCHED3 = 0x0020; // flag-3

/** Dest flags (IP_VS_DEST_F_*). */
export const DEST_F_AVAILABLE = 0x0001;
export const DEST_F_OVERLOAD = 0x0002;

/** IP protocol numbers. IPPROTO_IP (0) is the protocol of fwmark templates. */
export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
/** K FTPPORT and FTPDATA: the FTP control port (persistence templates with port 0, the FTP service lookup, the FTP helper) and active-mode data port. */
export const FTP_PORT = 21, FTP_DATA_PORT = 20;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

/** Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*). */
export const TUN_TYPE_IPIP = 0;
export const TUN_TYPE_GUE = 1;
export const TUN_TYPE_GRE = 2;
/** Tunnel flags (IP_VS_TUNNEL_ENCAP_FLAG_*). */
export const TUN_F_NOCSUM = 0;
export const TUN_F_CSUM = 1;
export const TUN_F_REMCSUM = 2;

/** ipvsadm's default persistence timeout (IPVS_SVC_PERSISTENT_TIMEOUT, 6*60 s). */
export const DEFAULT_PERSISTENT_TIMEOUT = 360;
/** IP_VS_CONN_TAB_BITS default: the `size=` in the listing header. */
export const CONN_TAB_SIZE = 4096;
/** IPVS version shown by listings: 1.2.1. */
export const IPVS_VERSION = 0x010201;

/** FULLNAT local port range and tries (Alibaba fork defaults). */
export const LPORT_MIN = 5000;
export const LPORT_MAX = 65535;
export const LPORT_TRIES = 10000;

export function fwdName(fwd: FwdMethod): string {
  switch (fwd) {
    case FWD_MASQ: return 'Masq';
    case FWD_LOCAL: return 'Local';
    case FWD_TUNNEL: return 'Tunnel';
    case FWD_DROUTE: return 'Route';
    case FWD_BYPASS: return 'Bypass';
    case FWD_FULLNAT: return 'FullNat';
  }
}

export function protoName(proto: number): string {
  switch (proto) {
    case IPPROTO_TCP: return 'TCP';
    case IPPROTO_UDP: return 'UDP';
    case IPPROTO_SCTP: return 'SCTP';
    case IPPROTO_IP: return 'IP';
    case IPPROTO_ICMP: return 'ICMP';
    default: return String(proto);
  }
}

/** `--proxy-protocol` (DPVS): which PROXY protocol header NAT/FULLNAT TCP conns carry. */
export const PP_DISABLE = 0;
export const PP_V1 = 1;
export const PP_V2 = 2;
/** Names as DPVS's ipvsadm spells them, indexed by version. */
export const PP_NAMES = ['disable', 'v1', 'v2'] as const;

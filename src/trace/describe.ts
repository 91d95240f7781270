/**
 * describe — a tcpdump-like view of one frame for the tracer: decodeFrame() turns the bytes of
 * an Ethernet frame into a plain, JSON-ready FrameView (MACs, ARP, IPv4 with TTL, ID, DF and
 * header checksum, the outer and inner header of a tunnel packet (IPIP, GUE, GRE), TCP/UDP/ICMP with ports,
 * flags, sequence numbers and checksum); describeFrame() prints it on one line.
 *
 * Promises:
 * - never throws on short or odd frames: what cannot be decoded is left out;
 * - only used when tracing (it allocates): the data path never calls it.
 *
 * Example:
 *   describeFrame(decodeFrame(bytes, 0, bytes.length))
 *   // 02:00:00:00:00:aa → 02:00:00:00:00:01  192.168.10.6:40000 → 192.168.10.110:80 TCP [S] seq 1000 win 64240 len 0 ttl 64
 *
 * See also: step-tracer.ts (before/after snapshots), filter.ts (matches on a FrameView).
 */
import { GRE_HLEN, GUE_HLEN, greInner, gueInner } from '../wire/tunnel.js';
import { ipToString, macToString } from '../model/addr.js';
import { checksum, ipv4ChecksumOk, l4ChecksumOk } from '../wire/checksum.js';
import { IP_F_MF, IP_OFFMASK } from '../wire/ipv4.js';

export interface EthView {
  src: string;
  dst: string;
  /** Ethertype, e.g. 0x0800. */
  type: number;
}

export interface ArpView {
  op: 'request' | 'reply' | number;
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
}

export interface IpView {
  saddr: string;
  daddr: string;
  /** Numeric (host order) copies for matching. */
  src: number;
  dst: number;
  proto: number;
  ttl: number;
  id: number;
  df: boolean;
  /** Total length. */
  len: number;
  /** Fragment offset in bytes, and whether more fragments follow (MF): a fragment when either is set. */
  fragOff: number;
  mf: boolean;
  tos: number;
  /** Header checksum as "0x1a2b" and whether it verifies. */
  csum: string;
  csumOk: boolean;
}

export interface L4View {
  /** 'TCP' | 'UDP' | 'ICMP' | 'IPIP' | the protocol number. */
  proto: string;
  sport: number;
  dport: number;
  /** TCP: "[S.]" in tcpdump's letters. */
  flags?: string;
  seq?: number;
  ack?: number;
  win?: number;
  icmpType?: number;
  icmpCode?: number;
  /** Payload bytes after the L4 header. */
  payload: number;
  /** L4 checksum ("0x…"), whether it verifies (partial sums from offloading senders do not). */
  csum?: string;
  csumOk?: boolean;
}

export interface FrameView {
  len: number;
  eth: EthView;
  arp?: ArpView;
  /** For a tunnel packet (TUN: IPIP, GUE, GRE): the outer header; `ip`/`l4` are then the inner packet. */
  outer?: IpView;
  /** Which tunnel, with GUE's UDP ports. */
  tunnel?: TunnelView;
  ip?: IpView;
  l4?: L4View;
}

export interface TunnelView {
  kind: 'IPIP' | 'GUE' | 'GRE';
  /** GUE: the outer UDP ports (0 otherwise). */
  sport: number;
  dport: number;
}

/**
 * Where the inner IPv4 packet of a tunnel packet starts (the outer IPv4 header at l3), or -1:
 * IPIP (protocol 4); GRE (47, version 0, no routing, protocol 0x0800, after the optional
 * checksum/key/sequence words); GUE (UDP whose payload is a version-0 data header with
 * proto_ctype 4, then an IPv4 header whose checksum verifies — so ordinary UDP is not mistaken
 * for it). `kind` receives the tunnel's name.
 */
export function tunnelInner(b: Uint8Array, l3: number, end: number, kind?: { v: TunnelView['kind'] }): number {
  const proto = b[l3 + 9]!;
  const l4 = l3 + (b[l3]! & 15) * 4;
  if ((rd16(b, l3 + 6) & 0x3fff) !== 0) return -1; // a fragment: no header to look into
  let inner = -1;
  let k: TunnelView['kind'] = 'IPIP';
  if (proto === 4) inner = l4;
  else if (proto === 47 && l4 + GRE_HLEN <= end) {
    inner = greInner(b, l4);
    k = 'GRE';
  } else if (proto === 17 && l4 + 8 + GUE_HLEN + 20 <= end) {
    const at = gueInner(b, l4 + 8);
    if (at >= 0 && at + 20 <= end && b[at]! >> 4 === 4 && ipv4ChecksumOk(b, at)) { inner = at; k = 'GUE'; }
  }
  if (inner < 0 || inner + 20 > end || b[inner]! >> 4 !== 4) return -1;
  if (kind) kind.v = k;
  return inner;
}

const hex16 = (v: number): string => `0x${v.toString(16).padStart(4, '0')}`;
const rd16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const rd32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

export const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 4: 'IPIP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

/** tcpdump's flag letters: S F R P . (ACK) U E W. */
export function tcpFlagsText(f: number): string {
  let s = '';
  if (f & 0x02) s += 'S';
  if (f & 0x01) s += 'F';
  if (f & 0x04) s += 'R';
  if (f & 0x08) s += 'P';
  if (f & 0x20) s += 'U';
  if (f & 0x40) s += 'E';
  if (f & 0x80) s += 'W';
  if (f & 0x10) s += '.';
  return `[${s || 'none'}]`;
}

function decodeIp(b: Uint8Array, o: number, end: number): IpView | undefined {
  if (o + 20 > end || b[o]! >> 4 !== 4) return undefined;
  const src = rd32(b, o + 12);
  const dst = rd32(b, o + 16);
  return {
    saddr: ipToString(src), daddr: ipToString(dst), src, dst,
    proto: b[o + 9]!, ttl: b[o + 8]!, id: rd16(b, o + 4), df: (rd16(b, o + 6) & 0x4000) !== 0,
    len: rd16(b, o + 2), fragOff: (rd16(b, o + 6) & IP_OFFMASK) * 8, mf: (rd16(b, o + 6) & IP_F_MF) !== 0, tos: b[o + 1]!, csum: hex16(rd16(b, o + 10)), csumOk: ipv4ChecksumOk(b, o),
  };
}

function decodeL4(b: Uint8Array, l3: number, ip: IpView, end: number): L4View | undefined {
  const ihl = (b[l3]! & 15) * 4;
  const l4 = l3 + ihl;
  const l4end = Math.min(end, l3 + ip.len);
  const l4len = l3 + ip.len - l4;
  const frag = rd16(b, l3 + 6) & 0x1fff;
  if (frag !== 0 || l4 >= end) return undefined;
  const proto = PROTO_NAMES[ip.proto] ?? String(ip.proto);
  const whole = l3 + ip.len <= end;
  if (ip.proto === 6 && l4 + 20 <= end) {
    const doff = (b[l4 + 12]! >> 4) * 4;
    return {
      proto, sport: rd16(b, l4), dport: rd16(b, l4 + 2), flags: tcpFlagsText(b[l4 + 13]!),
      seq: rd32(b, l4 + 4), ack: rd32(b, l4 + 8), win: rd16(b, l4 + 14), payload: Math.max(0, l4len - doff),
      csum: hex16(rd16(b, l4 + 16)), csumOk: whole && l4ChecksumOk(b, ip.src, ip.dst, 6, l4, l4len),
    };
  }
  if (ip.proto === 17 && l4 + 8 <= end) {
    const c = rd16(b, l4 + 6);
    return {
      proto, sport: rd16(b, l4), dport: rd16(b, l4 + 2), payload: Math.max(0, l4len - 8),
      csum: hex16(c), csumOk: c === 0 || (whole && l4ChecksumOk(b, ip.src, ip.dst, 17, l4, l4len)),
    };
  }
  if (ip.proto === 1 && l4 + 8 <= end) {
    return {
      proto, sport: 0, dport: 0, icmpType: b[l4]!, icmpCode: b[l4 + 1]!, payload: Math.max(0, l4len - 8),
      csum: hex16(rd16(b, l4 + 2)), csumOk: whole && checksum(b, l4, l4end - l4) === 0,
    };
  }
  return { proto, sport: 0, dport: 0, payload: Math.max(0, l4len) };
}

/** Decodes the frame at b[off, off+len). */
export function decodeFrame(b: Uint8Array, off: number, len: number): FrameView {
  const end = Math.min(b.length, off + len);
  const v: FrameView = { len, eth: { src: '', dst: '', type: 0 } };
  if (off + 14 > end) return v;
  v.eth = { dst: macToString(b, off), src: macToString(b, off + 6), type: rd16(b, off + 12) };
  const l3 = off + 14;
  if (v.eth.type === 0x0806 && l3 + 28 <= end) {
    const op = rd16(b, l3 + 6);
    v.arp = {
      op: op === 1 ? 'request' : op === 2 ? 'reply' : op,
      sha: macToString(b, l3 + 8), spa: ipToString(rd32(b, l3 + 14)),
      tha: macToString(b, l3 + 18), tpa: ipToString(rd32(b, l3 + 24)),
    };
    return v;
  }
  if (v.eth.type !== 0x0800) return v;
  const ip = decodeIp(b, l3, end);
  if (!ip) return v;
  const kind = { v: 'IPIP' as TunnelView['kind'] };
  const inner = tunnelInner(b, l3, end, kind);
  if (inner >= 0) {
    const iip = decodeIp(b, inner, end);
    if (iip) {
      const l4o = l3 + (b[l3]! & 15) * 4;
      v.outer = ip;
      v.tunnel = { kind: kind.v, sport: kind.v === 'GUE' ? rd16(b, l4o) : 0, dport: kind.v === 'GUE' ? rd16(b, l4o + 2) : 0 };
      v.ip = iip;
      const l4 = decodeL4(b, inner, iip, end);
      if (l4) v.l4 = l4;
      return v;
    }
  }
  v.ip = ip;
  const l4 = decodeL4(b, l3, ip, end);
  if (l4) v.l4 = l4;
  return v;
}

/** The tunnel's name ("IPIP", "GUE", "GRE") of a decoded tunnel packet. */
export function tunnelText(v: FrameView): string {
  return v.tunnel?.kind ?? 'IPIP';
}

/** "192.168.10.6:40000" (ports only for TCP/UDP). */
export function endpoint(addr: string, port: number, l4: L4View | undefined): string {
  return l4 && (l4.proto === 'TCP' || l4.proto === 'UDP') ? `${addr}:${port}` : addr;
}

/** The L3/L4 part: "192.168.10.6:40000 → 192.168.10.110:80 TCP [S] seq 1000 win 64240 len 0 ttl 64". */
export function describePacket(v: FrameView): string {
  if (v.arp) {
    const a = v.arp;
    return a.op === 'request' ? `ARP who-has ${a.tpa} tell ${a.spa}` : a.op === 'reply' ? `ARP ${a.spa} is-at ${a.sha}` : `ARP op ${a.op}`;
  }
  const ip = v.ip;
  if (!ip) return `ethertype 0x${v.eth.type.toString(16).padStart(4, '0')}, ${v.len} bytes`;
  const l4 = v.l4;
  let s = '';
  if (v.outer) s += `${tunnelText(v)} ${v.outer.saddr} → ${v.outer.daddr}${v.tunnel?.kind === 'GUE' ? ` udp ${v.tunnel.sport} → ${v.tunnel.dport}` : ''} ttl ${v.outer.ttl} | `;
  s += `${endpoint(ip.saddr, l4?.sport ?? 0, l4)} → ${endpoint(ip.daddr, l4?.dport ?? 0, l4)} ${l4?.proto ?? PROTO_NAMES[ip.proto] ?? ip.proto}`;
  if (l4?.flags) s += ` ${l4.flags} seq ${l4.seq} ack ${l4.ack} win ${l4.win}`;
  if (l4?.icmpType !== undefined) s += ` type ${l4.icmpType} code ${l4.icmpCode}`;
  if (l4) s += ` len ${l4.payload}`;
  s += ` ttl ${ip.ttl}`;
  return s;
}

/** One line: "src-mac → dst-mac  <packet>". */
export function describeFrame(v: FrameView): string {
  return `${v.eth.src} → ${v.eth.dst}  ${describePacket(v)}`;
}

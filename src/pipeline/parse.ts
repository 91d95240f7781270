/**
 * Stage "parse": Ethernet → ARP | IPv4 → TCP | UDP | ICMP (with the embedded header of ICMP
 * errors). Reads the frame, writes offsets and the 5-tuple into the Packet. Never throws: a
 * frame that does not hold together returns a drop reason (counted by the loop).
 *
 * Expects: arena.off/len of the slot set by the port. Outputs: pkt.ethType, l3, proto, saddr,
 * daddr, ttl, frag, l4 (-1 for non-first fragments), sport/dport, tcpFlags, icmp fields.
 */
import type { Packet } from '../packet/packet.js';
import { rd16, rd32 } from '../wire/bytes.js';
import { ETH_HLEN, ETH_TYPE, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN } from '../wire/ethernet.js';
import { ARP_LEN } from '../wire/arp.js';
import { IP_F_MF, IP_OFFMASK } from '../wire/ipv4.js';
import { ipv4Checksum20OkWords, ipv4ChecksumOk } from '../wire/checksum.js';
import { icmpIsError, ICMP_HLEN, TCP_MIN_HLEN, UDP_HLEN } from '../wire/l4.js';
import {
  D_IP_CSUM, D_IP_OPTIONS, D_IPV6, D_MALFORMED_ARP, D_MALFORMED_ETH, D_MALFORMED_IP, D_NOT_IPV4, D_TRUNC_L4, D_VLAN,
} from './drops.js';

export function parsePacket(p: Packet): number {
  // Reset what a later stage may read without this parse setting it (the rest is always
  // written below before anyone reads it); cheaper than resetAnnotations() per packet.
  p.l3 = -1; p.l4 = -1; p.sport = 0; p.dport = 0; p.tcpFlags = 0; p.icmpType = -1; p.icmpCode = -1;
  p.inL3 = -1; p.inL4 = -1; p.svc = -1; p.conn = -1; p.dir = 0; p.outPort = -1; p.nextHop = 0; p.drop = 0; p.traceId = 0;
  const b = p.b;
  const a = p.arena;
  const slot = p.slot;
  const f = a.off[slot]!;
  const flen = a.len[slot]!;
  if (flen < ETH_HLEN) return D_MALFORMED_ETH;
  const et = rd16(b, f + ETH_TYPE);
  p.ethType = et;
  if (et === ETHERTYPE_ARP) {
    if (flen < ETH_HLEN + ARP_LEN) return D_MALFORMED_ARP;
    p.l3 = f + ETH_HLEN;
    return 0;
  }
  if (et !== ETHERTYPE_IPV4) {
    if (et === ETHERTYPE_VLAN) return D_VLAN;
    if (et === ETHERTYPE_IPV6) return D_IPV6;
    return D_NOT_IPV4;
  }
  const l3 = f + ETH_HLEN;
  const avail = flen - ETH_HLEN;
  if (avail < 20) return D_MALFORMED_IP;
  const vihl = b[l3]!;
  if (vihl >>> 4 !== 4) return D_MALFORMED_IP;
  const ihl = (vihl & 15) << 2;
  if (ihl < 20 || ihl > avail) return D_MALFORMED_IP;
  const totLen = rd16(b, l3 + 2);
  if (totLen < ihl || totLen > avail) return D_MALFORMED_IP;
  if (ihl === 20 && (l3 & 1) === 0 ? !ipv4Checksum20OkWords(a.words, l3) : !ipv4ChecksumOk(b, l3)) return D_IP_CSUM;
  if (ihl > 20 && !optionsOk(b, l3 + 20, l3 + ihl)) return D_IP_OPTIONS;
  // Ethernet padding after the IP packet is not part of it.
  if (totLen < avail) a.len[slot] = ETH_HLEN + totLen;
  p.l3 = l3;
  p.ihl = ihl;
  p.ipLen = totLen;
  p.proto = b[l3 + 9]!;
  p.ttl = b[l3 + 8]!;
  p.saddr = rd32(b, l3 + 12);
  p.daddr = rd32(b, l3 + 16);
  const frag = rd16(b, l3 + 6);
  // A fragment must end within a 64 KiB datagram (the kernel's reassembly discards it otherwise).
  if ((frag & IP_OFFMASK) * 8 + totLen - ihl > 65535) return D_MALFORMED_IP;
  p.frag = frag;
  if ((frag & IP_OFFMASK) !== 0) return 0; // non-first fragment: no L4 header here
  const l4 = l3 + ihl;
  const l4len = totLen - ihl;
  p.l4 = l4;
  p.l4len = l4len;
  const proto = p.proto;
  if (proto === 6) {
    if (l4len < TCP_MIN_HLEN) return D_TRUNC_L4;
    const doff = (b[l4 + 12]! >>> 4) << 2;
    if (doff < 20 || doff > l4len) return D_TRUNC_L4;
    p.sport = rd16(b, l4);
    p.dport = rd16(b, l4 + 2);
    p.tcpFlags = b[l4 + 13]!;
  } else if (proto === 17) {
    if (l4len < UDP_HLEN) return D_TRUNC_L4;
    const ulen = rd16(b, l4 + 4);
    // A first fragment (MF) holds only the start of the datagram its UDP length counts.
    if (ulen < UDP_HLEN || (ulen > l4len && (frag & IP_F_MF) === 0)) return D_TRUNC_L4;
    p.sport = rd16(b, l4);
    p.dport = rd16(b, l4 + 2);
  } else if (proto === 1) {
    if (l4len < ICMP_HLEN) return D_TRUNC_L4;
    const type = b[l4]!;
    p.icmpType = type;
    p.icmpCode = b[l4 + 1]!;
    if (icmpIsError(type)) parseEmbedded(p, l4 + ICMP_HLEN, l4 + l4len);
  } else if (proto === 132) {
    if (l4len < 12) return D_TRUNC_L4;
    p.sport = rd16(b, l4);
    p.dport = rd16(b, l4 + 2);
  }
  return 0;
}

/** The offending packet inside an ICMP error: its IPv4 header and the first 8 bytes after it. */
function parseEmbedded(p: Packet, o: number, end: number): void {
  const b = p.b;
  if (end - o < 20) return;
  if (b[o]! >>> 4 !== 4) return;
  const ihl = (b[o]! & 15) << 2;
  if (ihl < 20 || o + ihl > end) return;
  p.inL3 = o;
  p.inProto = b[o + 9]!;
  p.inSaddr = rd32(b, o + 12);
  p.inDaddr = rd32(b, o + 16);
  if ((rd16(b, o + 6) & IP_OFFMASK) !== 0) return;
  const l4 = o + ihl;
  if (end - l4 < 4) return;
  p.inL4 = l4;
  p.inSport = rd16(b, l4);
  p.inDport = rd16(b, l4 + 2);
}

/** IPv4 options are a TLV list (RFC 791): EOL (0), NOP (1), else type, length ≥ 2, within the header. */
function optionsOk(b: Uint8Array, o: number, end: number): boolean {
  while (o < end) {
    const t = b[o]!;
    if (t === 0) return true;
    if (t === 1) { o++; continue; }
    if (o + 1 >= end) return false;
    const l = b[o + 1]!;
    if (l < 2 || o + l > end) return false;
    o += l;
  }
  return true;
}

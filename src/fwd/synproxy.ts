/**
 * SYN proxy — the Alibaba FULLNAT kernel's (F1 ip_vs_synproxy.c) and DPVS's defence against SYN
 * floods, for services with `-j enable` whose real servers are NAT or FULLNAT (their replies come
 * back through the director, which must translate sequence numbers for the whole connection):
 *
 *   1. A client's SYN to the service is answered by the director itself with a SYN-ACK whose ISN is
 *      a SYN cookie (the client's MSS, clamped to `synproxy_init_mss` and rounded down to one of
 *      four values, and whether it permits SACK, are encoded in it); nothing is stored, no real
 *      server is picked.
 *   2. The client's ACK with a valid cookie (ack − 1, at most two minutes old) is what opens the
 *      connection: the scheduler picks a real server and the director sends it the client's SYN
 *      (the client's ISN, the cookie's MSS and SACK-permitted; as F1 with `synproxy_wscale` and
 *      `synproxy_timestamp` at their default 0, no window scaling and no timestamps). The ACK, and
 *      up to `synproxy_skb_store_thresh` client segments after it, are held.
 *   3. The real server's SYN-ACK is not forwarded: it gives the sequence delta (cookie − server ISN)
 *      and the held segments go on. From then on every server → client segment has delta added to
 *      its seq, every client → server segment has it taken off its ack and its SACK blocks.
 *
 * An ACK whose cookie is wrong is dropped (`synproxy-bad-ack`); with `synproxy_defer=1` an ACK
 * without data is dropped too (F1 SYNPROXY_NULL_ACK: only a client that sends data costs a real
 * server a connection). A RST from the real server instead of its SYN-ACK goes to the client with
 * its sequence translated. The SYN to the real server is sent again (1 s, 2 s, 4 s …, at most
 * `synproxy_syn_retry` times) while the client's segments wait.
 *
 * The cookie is Linux's syncookie layout (RFC 4987 §3.6) over a keyed HalfSipHash-2-4 of the
 * connection's addresses and ports: hash + client ISN + (minute << 24) + (hash(minute) + (data << 21)) mod 2^24.
 * Nothing here allocates.
 */
import type { Packet } from '../packet/packet.js';
import { rd16, rd32Bits, wr16, wr32 } from '../wire/bytes.js';
import { setL4Checksum } from '../wire/checksum.js';
import { IP_F_DF, writeIpv4 } from '../wire/ipv4.js';
import { ETH_HLEN, ETH_TYPE, ETHERTYPE_IPV4 } from '../wire/ethernet.js';
import { TCP_ACKF, TCP_SYN, tcpOption } from '../wire/l4.js';
import { set32 } from './tcp-edit.js';

/** The MSS values a cookie can carry (Linux msstab). */
export const SP_MSSTAB: readonly number[] = [536, 1300, 1440, 1460];
/** Cookie data bits: the MSS index (2 bits) and SACK permitted. */
export const SP_DATA_SACK = 4;
const COOKIE_BITS = 24;
const COOKIE_MASK = (1 << COOKIE_BITS) - 1;
/** The data's 3 bits sit at the top of the cookie's 24: the 21 below must come back 0, so a cookie
 * off by a little (or any other) does not check (Linux keeps the data in the low bits). */
const DATA_SHIFT = 21;
/** Minutes a cookie stays valid (Linux MAX_SYNCOOKIE_AGE). */
const MAX_AGE = 2;
const TCP_SEQ_OFF = 4;
const TCP_ACK_OFF = 8;

const rotl = (x: number, b: number): number => (x << b) | (x >>> (32 - b));

/** Keyed SYN cookies (one random key per director). */
export class SynCookies {
  private readonly k0: number;
  private readonly k1: number;

  constructor(key: Uint32Array = crypto.getRandomValues(new Uint32Array(2))) {
    this.k0 = key[0]! | 0;
    this.k1 = key[1]! | 0;
  }

  /** HalfSipHash-2-4 of five words (addresses, ports, minute, which). */
  hash(a: number, b: number, c: number, d: number, e: number): number {
    let v0 = this.k0, v1 = this.k1, v2 = 0x6c796765 ^ this.k0, v3 = 0x74656462 ^ this.k1;
    for (let i = 0; i < 6; i++) {
      const m = i === 0 ? a : i === 1 ? b : i === 2 ? c : i === 3 ? d : i === 4 ? e : (20 << 24);
      v3 ^= m;
      for (let r = 0; r < 2; r++) {
        v0 = (v0 + v1) | 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
        v2 = (v2 + v3) | 0; v3 = rotl(v3, 8); v3 ^= v2;
        v0 = (v0 + v3) | 0; v3 = rotl(v3, 7); v3 ^= v0;
        v2 = (v2 + v1) | 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
      }
      v0 ^= m;
    }
    v2 ^= 0xff;
    for (let r = 0; r < 4; r++) {
      v0 = (v0 + v1) | 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
      v2 = (v2 + v3) | 0; v3 = rotl(v3, 8); v3 ^= v2;
      v0 = (v0 + v3) | 0; v3 = rotl(v3, 7); v3 ^= v0;
      v2 = (v2 + v1) | 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
    }
    return v1 ^ v3;
  }

  /** The cookie ISN (int32 bits) for a SYN from caddr:cport to vaddr:vport with ISN `isn`, at `minute`, carrying `data` (< 8). */
  make(caddr: number, cport: number, vaddr: number, vport: number, isn: number, minute: number, data: number): number {
    const ports = (cport << 16) | vport;
    const h0 = this.hash(caddr, vaddr, ports, 0, 0);
    const h1 = this.hash(caddr, vaddr, ports, minute, 1);
    return (h0 + isn + (minute << COOKIE_BITS) + ((h1 + (data << DATA_SHIFT)) & COOKIE_MASK)) | 0;
  }

  /** The data of `cookie` (ack − 1 of the client's ACK, whose seq − 1 is `isn`), or -1 when it is not valid now. */
  check(caddr: number, cport: number, vaddr: number, vport: number, isn: number, cookie: number, minute: number): number {
    const ports = (cport << 16) | vport;
    const c = (cookie - this.hash(caddr, vaddr, ports, 0, 0) - isn) | 0;
    const diff = (minute - (c >>> COOKIE_BITS)) & 0xff;
    if (diff >= MAX_AGE) return -1;
    const v = (c - this.hash(caddr, vaddr, ports, (minute - diff) | 0, 1)) & COOKIE_MASK;
    return (v & ((1 << DATA_SHIFT) - 1)) === 0 ? v >>> DATA_SHIFT : -1;
  }
}

/** The cookie data for a SYN whose MSS option said `mss` (0: none) under `initMss`, with SACK permitted or not. */
export function cookieData(mss: number, initMss: number, sack: boolean): number {
  const m = Math.min(mss === 0 ? 536 : mss, initMss);
  let i = SP_MSSTAB.length - 1;
  while (i > 0 && SP_MSSTAB[i]! > m) i--;
  return i | (sack ? SP_DATA_SACK : 0);
}

/** Writes the TCP options MSS and (with SACK) NOP NOP SACK-permitted at o; returns their length. */
function writeSynOptions(b: Uint8Array, o: number, data: number): number {
  b[o] = 2; b[o + 1] = 4;
  wr16(b, o + 2, SP_MSSTAB[data & 3]!);
  if ((data & SP_DATA_SACK) === 0) return 4;
  b[o + 4] = 1; b[o + 5] = 1; b[o + 6] = 4; b[o + 7] = 2;
  return 8;
}

/**
 * Turns the client's SYN in p into the director's SYN-ACK back to it, in place (F1
 * syn_proxy_reuse_skb): addresses and ports swapped, seq = cookie, ack = the client's ISN + 1, the
 * client's window, the cookie's MSS and SACK-permitted as the only options, no payload, TTL `ttl`.
 * Ethernet addresses are left to the caller.
 */
export function synackInPlace(p: Packet, cookie: number, data: number, ttl: number): void {
  const b = p.b;
  const l3 = p.l3;
  const l4 = p.l4;
  const caddr = p.saddr | 0, vaddr = p.daddr | 0, cport = p.sport, vport = p.dport;
  const isn = rd32Bits(b, l4 + TCP_SEQ_OFF);
  const win = rd16(b, l4 + 14);
  const t = l3 + 20;
  const olen = writeSynOptions(b, t + 20, data);
  const hlen = 20 + olen;
  writeIpv4(b, l3, 0, 20 + hlen, 0, IP_F_DF, ttl, 6, vaddr, caddr);
  wr16(b, t, vport);
  wr16(b, t + 2, cport);
  wr32(b, t + TCP_SEQ_OFF, cookie);
  wr32(b, t + TCP_ACK_OFF, (isn + 1) | 0);
  b[t + 12] = (hlen >> 2) << 4;
  b[t + 13] = TCP_SYN | TCP_ACKF;
  wr16(b, t + 14, win);
  wr16(b, t + 18, 0);
  setL4Checksum(b, vaddr, caddr, 6, t, hlen, 16);
  p.len = ETH_HLEN + 20 + hlen;
  p.clearOffload();
}

/**
 * Writes the SYN the director sends the real server for a client whose ACK carried a valid cookie
 * (F1 syn_proxy_send_rs_syn), from caddr:cport to vaddr:vport (the forwarder then rewrites it as
 * any client packet): seq = the client's ISN, `win`, the cookie's options. Returns the frame length.
 */
export function writeRsSyn(b: Uint8Array, f: number, caddr: number, cport: number, vaddr: number, vport: number, isn: number, win: number,
  data: number): number {
  const l3 = f + ETH_HLEN;
  const t = l3 + 20;
  const olen = writeSynOptions(b, t + 20, data);
  const hlen = 20 + olen;
  wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
  writeIpv4(b, l3, 0, 20 + hlen, 0, IP_F_DF, 64, 6, caddr, vaddr);
  wr16(b, t, cport);
  wr16(b, t + 2, vport);
  wr32(b, t + TCP_SEQ_OFF, isn);
  wr32(b, t + TCP_ACK_OFF, 0);
  b[t + 12] = (hlen >> 2) << 4;
  b[t + 13] = TCP_SYN;
  wr16(b, t + 14, win);
  wr16(b, t + 18, 0);
  setL4Checksum(b, caddr | 0, vaddr | 0, 6, t, hlen, 16);
  return ETH_HLEN + 20 + hlen;
}

/** Client → server segment of a SYN-proxied conn (delta = cookie − server ISN): ack and SACK blocks into the server's numbers. */
export function spInbound(p: Packet, delta: number): void {
  if (delta === 0 || (p.tcpFlags & TCP_ACKF) === 0) return;
  const b = p.b;
  const l4 = p.l4;
  set32(p, l4 + TCP_ACK_OFF, (rd32Bits(b, l4 + TCP_ACK_OFF) - delta) | 0);
  const o = tcpOption(b, l4 + 20, l4 + ((b[l4 + 12]! >>> 4) << 2), 5, 0);
  if (o < 0) return;
  const l = b[o + 1]!;
  if (l >= 10 && ((l - 2) & 7) === 0) for (let e = o + 2; e < o + l; e += 4) set32(p, e, (rd32Bits(b, e) - delta) | 0);
}

/** An ICMP error from the client's side about a server → client segment of a SYN-proxied conn:
 * the quoted seq put back into the server's numbers (its stack checks it against its send window).
 * The caller recomputes the ICMP checksum. */
export function spEmbeddedBack(p: Packet, delta: number): void {
  const at = p.inL4 + TCP_SEQ_OFF;
  if (p.inProto !== 6 || p.inL4 < 0 || at + 4 > p.l3 + p.ipLen) return;
  wr32(p.b, at, (rd32Bits(p.b, at) - delta) | 0);
}

/** Server → client segment of a SYN-proxied conn: seq into the cookie's numbers. */
export function spOutbound(p: Packet, delta: number): void {
  if (delta === 0) return;
  set32(p, p.l4 + TCP_SEQ_OFF, (rd32Bits(p.b, p.l4 + TCP_SEQ_OFF) + delta) | 0);
}

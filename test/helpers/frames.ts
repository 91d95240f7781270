/** Test frame builders and checkers (plain Buffers; not for the data path). */
import { parseIp, parseMac } from '../../src/model/addr.js';
import { checksum, pseudoSum, l4ChecksumOk, ipv4ChecksumOk, setIpv4Checksum } from '../../src/wire/checksum.js';
import { fragmentCount, writeFragment } from '../../src/wire/fragment.js';

export interface FrameSpec {
  srcMac?: string;
  dstMac?: string;
  saddr: string;
  daddr: string;
  sport?: number;
  dport?: number;
  proto?: number;
  flags?: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array | string;
  ttl?: number;
  df?: boolean;
  id?: number;
  /** Leave the L4 checksum as a partial (pseudo-header) sum, as offloading senders do. */
  partial?: boolean;
  icmpType?: number;
  icmpCode?: number;
  /** TCP window (default 64240). */
  window?: number;
  /** TCP options (padded with NOPs... by the caller: the length must be a multiple of 4). */
  tcpOptions?: number[];
}

export function mac(s: string): Uint8Array {
  return parseMac(s)!;
}

export function build(f: FrameSpec): Uint8Array {
  const proto = f.proto ?? 6;
  const payload = typeof f.payload === 'string' ? new TextEncoder().encode(f.payload) : (f.payload ?? new Uint8Array(0));
  const opts = proto === 6 ? (f.tcpOptions ?? []) : [];
  if (opts.length % 4 !== 0) throw new Error('tcpOptions: length must be a multiple of 4');
  const l4hlen = proto === 6 ? 20 + opts.length : 8;
  const l4len = l4hlen + payload.length;
  const buf = new Uint8Array(14 + 20 + l4len);
  const dv = new DataView(buf.buffer);
  buf.set(mac(f.dstMac ?? '02:00:00:00:00:01'), 0);
  buf.set(mac(f.srcMac ?? '02:00:00:00:00:aa'), 6);
  dv.setUint16(12, 0x0800);
  const l3 = 14;
  buf[l3] = 0x45;
  dv.setUint16(l3 + 2, 20 + l4len);
  dv.setUint16(l3 + 4, f.id ?? 0x1234);
  dv.setUint16(l3 + 6, f.df === false ? 0 : 0x4000);
  buf[l3 + 8] = f.ttl ?? 64;
  buf[l3 + 9] = proto;
  const s = parseIp(f.saddr), d = parseIp(f.daddr);
  dv.setUint32(l3 + 12, s);
  dv.setUint32(l3 + 16, d);
  dv.setUint16(l3 + 10, checksum(buf, l3, 20));
  const l4 = 34;
  if (proto === 6) {
    dv.setUint16(l4, f.sport ?? 40000);
    dv.setUint16(l4 + 2, f.dport ?? 80);
    dv.setUint32(l4 + 4, f.seq ?? 1000);
    dv.setUint32(l4 + 8, f.ack ?? 0);
    buf[l4 + 12] = (l4hlen / 4) << 4;
    buf[l4 + 13] = f.flags ?? 0x02;
    dv.setUint16(l4 + 14, f.window ?? 64240);
    buf.set(opts, l4 + 20);
    buf.set(payload, l4 + l4hlen);
    const ps = pseudoSum(s, d, 6, l4len);
    if (f.partial) {
      let x = ps; x = (x & 0xffff) + (x >>> 16); x = (x & 0xffff) + (x >>> 16);
      dv.setUint16(l4 + 16, x);
    } else dv.setUint16(l4 + 16, checksum(buf, l4, l4len, ps));
  } else if (proto === 17) {
    dv.setUint16(l4, f.sport ?? 40000);
    dv.setUint16(l4 + 2, f.dport ?? 53);
    dv.setUint16(l4 + 4, l4len);
    buf.set(payload, l4 + 8);
    const ps = pseudoSum(s, d, 17, l4len);
    if (f.partial) {
      let x = ps; x = (x & 0xffff) + (x >>> 16); x = (x & 0xffff) + (x >>> 16);
      dv.setUint16(l4 + 6, x);
    } else {
      let c = checksum(buf, l4, l4len, ps);
      if (c === 0) c = 0xffff;
      dv.setUint16(l4 + 6, c);
    }
  } else if (proto === 1) {
    buf[l4] = f.icmpType ?? 8;
    buf[l4 + 1] = f.icmpCode ?? 0;
    dv.setUint16(l4 + 4, f.sport ?? 1);
    dv.setUint16(l4 + 6, f.dport ?? 1);
    buf.set(payload, l4 + 8);
    dv.setUint16(l4 + 2, checksum(buf, l4, l4len));
  }
  return buf;
}

export interface Parsed {
  dstMac: string;
  srcMac: string;
  saddr: string;
  daddr: string;
  proto: number;
  ttl: number;
  sport: number;
  dport: number;
  flags: number;
  ipOk: boolean;
  l4Ok: boolean;
  l3: number;
  payload: Uint8Array;
}

function macStr(b: Uint8Array, o: number): string {
  return [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
function ipStr(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Parses an Ethernet/IPv4 frame; a partial checksum (meta NEEDS_CSUM) is completed first. */
export function parse(frame: Uint8Array, meta?: Uint16Array): Parsed {
  const b = new Uint8Array(frame);
  const dv = new DataView(b.buffer);
  const l3 = 14;
  const ihl = (b[l3]! & 15) * 4;
  const len = dv.getUint16(l3 + 2);
  const proto = b[l3 + 9]!;
  const s = dv.getUint32(l3 + 12), d = dv.getUint32(l3 + 16);
  const l4 = l3 + ihl;
  const l4len = len - ihl;
  if (meta && (meta[0]! & 1)) {
    const cs = meta[4]!, co = meta[5]!;
    const at = cs + co;
    const c = checksum(b, cs, 14 + len - cs);
    dv.setUint16(at, c);
  }
  const l4Ok = proto === 6 || proto === 17 ? l4ChecksumOk(b, s, d, proto, l4, l4len) : proto === 1 ? checksum(b, l4, l4len) === 0 : true;
  return {
    dstMac: macStr(b, 0), srcMac: macStr(b, 6), saddr: ipStr(s), daddr: ipStr(d), proto, ttl: b[l3 + 8]!,
    sport: proto === 1 ? 0 : dv.getUint16(l4), dport: proto === 1 ? 0 : dv.getUint16(l4 + 2),
    flags: proto === 6 ? b[l4 + 13]! : 0, ipOk: ipv4ChecksumOk(b, l3), l4Ok, l3,
    payload: b.subarray(l4 + (proto === 6 ? (b[l4 + 12]! >> 4) * 4 : 8), 14 + len),
  };
}

/** An ARP frame (request when tha is omitted). */
export function arp(op: number, sha: string, spa: string, tpa: string, tha = '00:00:00:00:00:00', dst = 'ff:ff:ff:ff:ff:ff'): Uint8Array {
  const b = new Uint8Array(60);
  const dv = new DataView(b.buffer);
  b.set(mac(dst), 0);
  b.set(mac(sha), 6);
  dv.setUint16(12, 0x0806);
  dv.setUint16(14, 1);
  dv.setUint16(16, 0x0800);
  b[18] = 6; b[19] = 4;
  dv.setUint16(20, op);
  b.set(mac(sha), 22);
  dv.setUint32(28, parseIp(spa));
  b.set(mac(tha), 32);
  dv.setUint32(38, parseIp(tpa));
  return b;
}

/** Splits an Ethernet/IPv4 frame into its fragments for `mtu` (uvs's own wire/fragment). */
export function fragmentFrame(frame: Uint8Array, mtu: number): Uint8Array[] {
  const ihl = (frame[14]! & 15) * 4;
  const totLen = (frame[16]! << 8) | frame[17]!;
  const n = fragmentCount(totLen, ihl, mtu);
  const buf = new Uint8Array(frame.length + n * (mtu + 14));
  buf.set(frame, 0);
  const out: Uint8Array[] = [];
  let dst = frame.length;
  for (let k = 0; k < n; k++) {
    const len = writeFragment(buf, 0, ihl, totLen, mtu, k, dst);
    out.push(buf.slice(dst, dst + len));
    dst += len;
  }
  return out;
}

/**
 * Reassembles the fragments of one datagram (any order) the way a receiving host does: payloads
 * placed by offset, which must cover it without gaps, the last one without MF. Returns the whole
 * frame (Ethernet header and IP header of the first fragment, MF/offset cleared, checksum redone).
 */
export function reassemble(frags: Uint8Array[]): Uint8Array {
  const parts = frags.map((f) => {
    const ihl = (f[14]! & 15) * 4;
    const tot = (f[16]! << 8) | f[17]!;
    const fr = (f[20]! << 8) | f[21]!;
    return { f, ihl, off: (fr & 0x1fff) * 8, mf: (fr & 0x2000) !== 0, data: f.subarray(14 + ihl, 14 + tot) };
  }).sort((a, b) => a.off - b.off);
  const first = parts[0]!;
  if (first.off !== 0) throw new Error('no first fragment');
  let at = 0;
  for (const p of parts) {
    if (p.off !== at) throw new Error(`gap or overlap at ${at} (fragment at ${p.off})`);
    at += p.data.length;
  }
  if (parts[parts.length - 1]!.mf) throw new Error('last fragment has MF');
  const out = new Uint8Array(14 + first.ihl + at);
  out.set(first.f.subarray(0, 14 + first.ihl), 0);
  for (const p of parts) out.set(p.data, 14 + first.ihl + p.off);
  out[16] = ((first.ihl + at) >> 8) & 255;
  out[17] = (first.ihl + at) & 255;
  out[20] &= 0x40;
  out[21] = 0;
  setIpv4Checksum(out, 14);
  return out;
}

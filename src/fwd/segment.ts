/**
 * Software TCP segmentation of a GSO super-frame (what the kernel's tcp_gso_segment does), for
 * the one path the kernel cannot do it for us: a TCP super-frame that leaves inside an IPIP
 * header (virtio-net has no IPXIP4 GSO type). Each segment gets its own IPv4 length, ID and
 * checksum, TCP sequence number, flags (FIN/PSH only on the last, CWR only on the first) and a
 * complete TCP checksum. Runs only for GSO frames; ordinary packets never come here.
 */
import { rd16, rd32, wr16, wr32 } from '../wire/bytes.js';
import { checksum, pseudoSum, setIpv4Checksum } from '../wire/checksum.js';
import { ETH_HLEN } from '../wire/ethernet.js';

/**
 * Writes segment k of the super-frame at [src, src+len) (Ethernet + IPv4 + TCP, L3 at src+14)
 * into dst (frame start), carrying at most `mss` payload bytes. Returns the segment's frame
 * length, or 0 when k is past the last segment.
 */
export function writeTcpSegment(b: Uint8Array, src: number, len: number, mss: number, k: number, dst: number): number {
  const l3 = src + ETH_HLEN;
  const ihl = (b[l3]! & 15) << 2;
  const l4 = l3 + ihl;
  const doff = (b[l4 + 12]! >>> 4) << 2;
  const hdr = ETH_HLEN + ihl + doff;
  const payload = len - hdr;
  const start = k * mss;
  if (start >= payload && !(k === 0 && payload === 0)) return 0;
  const n = Math.min(mss, payload - start);
  const last = start + n >= payload;
  b.copyWithin(dst, src, src + hdr);
  b.copyWithin(dst + hdr, src + hdr + start, src + hdr + start + n);
  const o3 = dst + ETH_HLEN;
  const o4 = o3 + ihl;
  wr16(b, o3 + 2, ihl + doff + n);
  wr16(b, o3 + 4, (rd16(b, l3 + 4) + k) & 0xffff);
  setIpv4Checksum(b, o3);
  wr32(b, o4 + 4, (rd32(b, l4 + 4) + start) >>> 0);
  let flags = b[l4 + 13]!;
  if (!last) flags &= ~0x09; // FIN, PSH only on the last segment
  if (k > 0) flags &= ~0x80; // CWR only on the first
  b[o4 + 13] = flags;
  b[o4 + 16] = 0;
  b[o4 + 17] = 0;
  const saddr = rd32(b, o3 + 12);
  const daddr = rd32(b, o3 + 16);
  wr16(b, o4 + 16, checksum(b, o4, doff + n, pseudoSum(saddr, daddr, 6, doff + n)));
  return hdr + n;
}

/** Number of segments a super-frame of `len` bytes makes with `mss`. */
export function segmentCount(b: Uint8Array, src: number, len: number, mss: number): number {
  const l3 = src + ETH_HLEN;
  const ihl = (b[l3]! & 15) << 2;
  const doff = (b[l3 + ihl + 12]! >>> 4) << 2;
  const payload = len - ETH_HLEN - ihl - doff;
  return payload <= 0 ? 1 : Math.ceil(payload / mss);
}

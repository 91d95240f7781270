/**
 * IPv4 fragmentation (RFC 791), as the kernel's output path does it (ip_do_fragment) for a packet
 * without DF that is larger than the route's MTU: every fragment carries the original header
 * (options without the copy flag replaced by NOPs after the first fragment, ip_options_fragment),
 * fragment payloads are multiples of 8 bytes except the last, offsets continue from the
 * packet's own offset (it may itself be a fragment) and MF is set on all but the last — or on all
 * when the packet was itself not the last fragment.
 *
 * Example:
 *     const n = fragmentCount(totLen, ihl, mtu);
 *     for (let k = 0; k < n; k++) len[k] = writeFragment(bytes, frameOff, ihl, totLen, mtu, k, dstOff[k]);
 */
import { rd16, wr16 } from './bytes.js';
import { ETH_HLEN } from './ethernet.js';
import { IP_F_MF, IP_FRAG, IP_OFFMASK, IP_TOTLEN } from './ipv4.js';
import { setIpv4Checksum } from './checksum.js';

/** Payload bytes per fragment (a multiple of 8) for a header of ihl bytes and this MTU; < 8: cannot fragment. */
export function fragmentPayload(ihl: number, mtu: number): number {
  return (mtu - ihl) & ~7;
}

/** Fragments a packet of totLen bytes (header ihl) becomes for `mtu`. */
export function fragmentCount(totLen: number, ihl: number, mtu: number): number {
  return Math.ceil((totLen - ihl) / fragmentPayload(ihl, mtu));
}

/**
 * Writes fragment k of the IPv4 packet in the Ethernet frame at `f` (IP header at f + 14) as a
 * whole frame at `dst` (same buffer, not overlapping) and returns its length. The Ethernet header
 * is copied as is; the IP header checksum is recomputed.
 */
export function writeFragment(b: Uint8Array, f: number, ihl: number, totLen: number, mtu: number, k: number, dst: number): number {
  const l3 = f + ETH_HLEN;
  const per = fragmentPayload(ihl, mtu);
  const start = k * per;
  const len = Math.min(per, totLen - ihl - start);
  b.copyWithin(dst, f, l3 + ihl);
  const d3 = dst + ETH_HLEN;
  if (k > 0 && ihl > 20) nopUncopiedOptions(b, d3 + 20, d3 + ihl);
  b.copyWithin(d3 + ihl, l3 + ihl + start, l3 + ihl + start + len);
  const frag = rd16(b, l3 + IP_FRAG);
  const last = start + len === totLen - ihl;
  const mf = (frag & IP_F_MF) !== 0 || !last ? IP_F_MF : 0;
  wr16(b, d3 + IP_FRAG, (frag & ~(IP_F_MF | IP_OFFMASK)) | mf | ((frag & IP_OFFMASK) + (start >>> 3)));
  wr16(b, d3 + IP_TOTLEN, ihl + len);
  setIpv4Checksum(b, d3);
  return ETH_HLEN + ihl + len;
}

/** Overwrites the options without the copy flag (type bit 0x80) with NOPs; the header keeps its
 * length. Options were checked by the parser (a TLV list within the header). */
function nopUncopiedOptions(b: Uint8Array, o: number, end: number): void {
  while (o < end) {
    const t = b[o]!;
    if (t === 0) return; // EOL: the rest is padding
    if (t === 1) { o++; continue; }
    const l = o + 1 < end ? b[o + 1]! : 0;
    if (l < 2 || o + l > end) return;
    if ((t & 0x80) === 0) b.fill(1, o, o + l);
    o += l;
  }
}

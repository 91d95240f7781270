/**
 * ARP for IPv4 over Ethernet (RFC 826), 28 bytes after the Ethernet header.
 *
 *   0       2       4   5   6       8             14            18            24            28
 *   +-------+-------+---+---+-------+-------------+-------------+-------------+-------------+
 *   | htype | ptype |hln|pln| oper  | sender MAC  | sender IP   | target MAC  | target IP   |
 *   +-------+-------+---+---+-------+-------------+-------------+-------------+-------------+
 */
import { rd16, rd32, wr16, wr32, copyMac } from './bytes.js';
import { ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, ETHERTYPE_ARP } from './ethernet.js';

export const ARP_LEN = 28;
export const ARP_OPER = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

/** Whether the ARP packet at o is Ethernet/IPv4 with the usual lengths. */
export function arpValid(b: Uint8Array, o: number): boolean {
  return rd16(b, o) === 1 && rd16(b, o + 2) === 0x0800 && b[o + 4] === 6 && b[o + 5] === 4;
}

export const arpOper = (b: Uint8Array, o: number): number => rd16(b, o + ARP_OPER);
export const arpSpa = (b: Uint8Array, o: number): number => rd32(b, o + ARP_SPA);
export const arpTpa = (b: Uint8Array, o: number): number => rd32(b, o + ARP_TPA);

/**
 * Writes a whole ARP frame (Ethernet + ARP, padded to 60 bytes) at f; returns its length.
 * For a request pass tha = null (zeros) and ethDst = null (broadcast).
 */
export function writeArp(
  b: Uint8Array, f: number, oper: number,
  sha: Uint8Array, spa: number, tha: Uint8Array | null, tpa: number, ethDst: Uint8Array | null,
): number {
  if (ethDst) copyMac(b, f + ETH_DST, ethDst, 0);
  else b.fill(255, f + ETH_DST, f + ETH_DST + 6);
  copyMac(b, f + ETH_SRC, sha, 0);
  wr16(b, f + ETH_TYPE, ETHERTYPE_ARP);
  const o = f + ETH_HLEN;
  wr16(b, o, 1);
  wr16(b, o + 2, 0x0800);
  b[o + 4] = 6;
  b[o + 5] = 4;
  wr16(b, o + ARP_OPER, oper);
  copyMac(b, o + ARP_SHA, sha, 0);
  wr32(b, o + ARP_SPA, spa);
  if (tha) copyMac(b, o + ARP_THA, tha, 0);
  else b.fill(0, o + ARP_THA, o + ARP_THA + 6);
  wr32(b, o + ARP_TPA, tpa);
  b.fill(0, o + ARP_LEN, f + 60);
  return 60;
}

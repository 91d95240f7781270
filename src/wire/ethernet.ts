/**
 * Ethernet II header.
 *
 *   0                   6                   12      14
 *   +-------------------+-------------------+-------+
 *   | destination MAC   | source MAC        | type  |
 *   +-------------------+-------------------+-------+
 *
 * 802.1Q tagged frames (type 0x8100) are recognised and not handled (counted drop).
 */
export const ETH_HLEN = 14;
export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;

export function isBroadcast(b: Uint8Array, o: number): boolean {
  return (b[o]! & b[o + 1]! & b[o + 2]! & b[o + 3]! & b[o + 4]! & b[o + 5]!) === 255;
}

export function isMulticast(b: Uint8Array, o: number): boolean {
  return (b[o]! & 1) === 1;
}

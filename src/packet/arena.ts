/**
 * One ArrayBuffer holds every frame slot of the process: each port's receive slots and the scratch
 * slots for frames uvs builds itself (ARP, ICMP, IPIP headroom moves). Native I/O reads into and
 * writes from this memory; JS never copies a frame to forward it.
 *
 *   slot i: [ HEADROOM bytes | frame ..................... ] SLOT_SIZE bytes
 *           ^ i*SLOT_SIZE    ^ i*SLOT_SIZE + HEADROOM (where receive puts the frame)
 *
 * Per-slot metadata lives in parallel typed arrays: frame offset and length, and the virtio-net
 * header fields the kernel reported (partial checksum, GSO) so they can be handed back on send.
 */
export const HEADROOM = 128;
/** Large enough for a 64 KiB GSO super-frame plus headroom. */
export const SLOT_SIZE = 65536 + 256;

/** Index of the virtio-net header fields in `meta` (6 u16 per slot). */
export const META_FLAGS = 0; // VIRTIO_NET_HDR_F_NEEDS_CSUM = 1, F_DATA_VALID = 2
export const META_GSO_TYPE = 1; // VIRTIO_NET_HDR_GSO_NONE 0, TCPV4 1, UDP 3, TCPV6 4, ECN 0x80
export const META_HDR_LEN = 2;
export const META_GSO_SIZE = 3;
export const META_CSUM_START = 4; // from frame start
export const META_CSUM_OFFSET = 5; // from csum_start
export const META_WORDS = 6;

export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;

export class Arena {
  readonly slots: number;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  /** The same bytes as 16-bit words (host order), for checksum sums over even offsets. */
  readonly words: Uint16Array;
  /** Frame start (absolute offset in `bytes`) per slot. */
  readonly off: Uint32Array;
  /** Frame length per slot. */
  readonly len: Uint32Array;
  /** virtio-net header fields per slot, META_WORDS each. */
  readonly meta: Uint16Array;

  constructor(slots: number) {
    this.slots = slots;
    this.buffer = new ArrayBuffer(slots * SLOT_SIZE);
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Uint16Array(this.buffer);
    this.off = new Uint32Array(slots);
    this.len = new Uint32Array(slots);
    this.meta = new Uint16Array(slots * META_WORDS);
    for (let i = 0; i < slots; i++) this.off[i] = i * SLOT_SIZE + HEADROOM;
  }

  /** Puts slot i back to "frame at headroom, no metadata". */
  reset(i: number): void {
    this.off[i] = i * SLOT_SIZE + HEADROOM;
    this.len[i] = 0;
    this.meta.fill(0, i * META_WORDS, i * META_WORDS + META_WORDS);
  }

  slotStart(i: number): number {
    return i * SLOT_SIZE;
  }
}

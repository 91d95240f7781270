/**
 * One frame slot on its way through the pipeline: where its bytes are and what each stage
 * learnt about it. One Packet object per arena slot, made once and reused for every frame that
 * lands in the slot; every field is a number (or a reference set once), so the hot path never
 * allocates. Addresses are host-order u32, ports numbers.
 */
import type { Arena } from './arena.js';
import { META_CSUM_OFFSET, META_CSUM_START, META_FLAGS, META_GSO_SIZE, META_HDR_LEN, META_GSO_TYPE, META_WORDS, VNET_F_NEEDS_CSUM } from './arena.js';

export class Packet {
  readonly arena: Arena;
  readonly slot: number;
  /** The arena's bytes (same object for every packet). */
  readonly b: Uint8Array;

  // --- where (set by recv) ---
  /** Ingress port index. */
  port = 0;

  // --- parse ---
  ethType = 0;
  /** Absolute offset of the IPv4 header, -1 if none. */
  l3 = -1;
  ihl = 0;
  /** IPv4 total length. */
  ipLen = 0;
  proto = 0;
  saddr = 0;
  daddr = 0;
  ttl = 0;
  /** Raw flags+fragment offset word. */
  frag = 0;
  /** Absolute offset of the L4 header, -1 when the packet is a non-first fragment. */
  l4 = -1;
  l4len = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  icmpType = -1;
  icmpCode = -1;
  /** For ICMP errors: the embedded (offending) packet's header offsets and tuple. */
  inL3 = -1;
  inL4 = -1;
  inProto = 0;
  inSaddr = 0;
  inDaddr = 0;
  inSport = 0;
  inDport = 0;

  // --- decisions ---
  /** Matched service id, -1 none. */
  svc = -1;
  /** Conn index, -1 none. */
  conn = -1;
  /** 0 = client→server (IN), 1 = server→client (OUT). */
  dir = 0;
  /** Egress port index, -1 = not forwarded. */
  outPort = -1;
  /** IPv4 next hop for ARP resolution (0 = use daddr). */
  nextHop = 0;
  /** Drop reason index when dropped (see drops.ts), 0 = not dropped. */
  drop = 0;
  /** Trace correlation id of the conn (0 = none). */
  traceId = 0;

  constructor(arena: Arena, slot: number) {
    this.arena = arena;
    this.slot = slot;
    this.b = arena.bytes;
  }

  /** Absolute offset of the frame's first byte. */
  get off(): number {
    return this.arena.off[this.slot]!;
  }

  set off(v: number) {
    this.arena.off[this.slot] = v;
  }

  get len(): number {
    return this.arena.len[this.slot]!;
  }

  set len(v: number) {
    this.arena.len[this.slot] = v;
  }

  /** Whether the L4 checksum is partial (to be completed by whoever transmits it). */
  get csumPartial(): boolean {
    return (this.arena.meta[this.slot * META_WORDS + META_FLAGS]! & VNET_F_NEEDS_CSUM) !== 0;
  }

  get gsoType(): number {
    return this.arena.meta[this.slot * META_WORDS + META_GSO_TYPE]!;
  }

  get gsoSize(): number {
    return this.arena.meta[this.slot * META_WORDS + META_GSO_SIZE]!;
  }

  /** Moves csum_start when headers in front of the L4 header grow or shrink by delta bytes. */
  shiftCsumStart(delta: number): void {
    const m = this.slot * META_WORDS;
    if (this.arena.meta[m + META_FLAGS]! & VNET_F_NEEDS_CSUM) this.arena.meta[m + META_CSUM_START] = this.arena.meta[m + META_CSUM_START]! + delta;
  }

  /** Grows the virtio-net hdr_len (a GSO super-frame's header length) when its headers grow by delta bytes. */
  growHdrLen(delta: number): void {
    const m = this.slot * META_WORDS + META_HDR_LEN;
    if (this.arena.meta[m] !== 0) this.arena.meta[m] = this.arena.meta[m]! + delta;
  }

  /** Clears the partial-checksum/GSO metadata (after the checksum was completed in software). */
  clearOffload(): void {
    const m = this.slot * META_WORDS;
    this.arena.meta.fill(0, m, m + META_WORDS);
  }

  /** csum_start/offset as the kernel reported them. */
  get csumStart(): number {
    return this.arena.meta[this.slot * META_WORDS + META_CSUM_START]!;
  }

  get csumOffset(): number {
    return this.arena.meta[this.slot * META_WORDS + META_CSUM_OFFSET]!;
  }

  /** Resets the per-frame annotations before a new frame is parsed into this slot. */
  resetAnnotations(): void {
    this.ethType = 0;
    this.l3 = -1;
    this.ihl = 0;
    this.ipLen = 0;
    this.proto = 0;
    this.saddr = 0;
    this.daddr = 0;
    this.ttl = 0;
    this.frag = 0;
    this.l4 = -1;
    this.l4len = 0;
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.inL3 = -1;
    this.inL4 = -1;
    this.inProto = 0;
    this.inSaddr = 0;
    this.inDaddr = 0;
    this.inSport = 0;
    this.inDport = 0;
    this.svc = -1;
    this.conn = -1;
    this.dir = 0;
    this.outPort = -1;
    this.nextHop = 0;
    this.drop = 0;
    this.traceId = 0;
  }
}

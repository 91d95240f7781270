/**
 * MemoryPort — a Port backed by memory, for tests, golden scenarios and teaching: frames are
 * injected as bytes, received into arena slots like a real port would, and what the director
 * sends is kept as copies in `sent`.
 *
 * Promises:
 * - inject() copies the frame (and its virtio-net metadata) into a FIFO; recv() moves up to
 *   `count` queued frames to arena.off[slot] with arena.len/meta set, in order. A frame larger
 *   than a slot's frame room (SLOT_SIZE - HEADROOM) is dropped and counted in rxTruncated.
 * - send() copies each frame and its meta out into `sent` (copies: the arena slots may be
 *   reused at once) and takes them all; takeSent() returns them and clears the list.
 * - onReadable(cb): cb runs (setImmediate) after inject() queues frames, and again while frames
 *   stay queued as long as each call consumed some — level-triggered like a real fd, but never
 *   a busy loop when nobody reads.
 *
 * Example:
 *   const port = new MemoryPort({ name: 'client', mac: '02:00:00:00:00:0a' });
 *   port.inject(frameBytes, { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 });
 *   const n = port.recv(arena, slots, 32);
 *
 * See also: port.ts (the contract), packet-socket-port.ts and tap-port.ts (the real ones).
 */
import {
  HEADROOM,
  META_CSUM_OFFSET,
  META_CSUM_START,
  META_FLAGS,
  META_GSO_SIZE,
  META_GSO_TYPE,
  META_HDR_LEN,
  META_WORDS,
  SLOT_SIZE,
  type Arena,
} from '../packet/arena.js';
import type { Port } from './port.js';

/** The virtio-net header fields of one frame, by name. */
export interface VnetMeta {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export interface SentFrame {
  frame: Uint8Array;
  /** META_WORDS u16: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
  meta: Uint16Array;
}

export interface MemoryPortOptions {
  name?: string;
  /** 6 bytes or "02:00:00:00:00:01"; default 02:00:00:00:00:01. */
  mac?: Uint8Array | string;
  mtu?: number;
  index?: number;
}

const MAX_FRAME = SLOT_SIZE - HEADROOM;

export class MemoryPort implements Port {
  readonly name: string;
  index: number;
  readonly mac: Uint8Array;
  readonly mtu: number;
  /** Frames sent through this port, oldest first (copies). */
  sent: SentFrame[] = [];
  rxFrames = 0;
  txFrames = 0;
  rxTruncated = 0;

  private queue: SentFrame[] = [];
  private head = 0;
  private readable: (() => void) | null = null;
  private scheduled = false;
  private closed = false;

  constructor(opts: MemoryPortOptions = {}) {
    this.name = opts.name ?? 'mem0';
    this.index = opts.index ?? -1;
    this.mac = parseMac(opts.mac ?? '02:00:00:00:00:01');
    this.mtu = opts.mtu ?? 1500;
  }

  /** Frames queued and not yet received. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Queues a copy of `frame` to be received, with optional virtio-net metadata. */
  inject(frame: Uint8Array, meta: Partial<VnetMeta> = {}): void {
    if (this.closed) throw new Error(`memory port "${this.name}" is closed`);
    const m = new Uint16Array(META_WORDS);
    m[META_FLAGS] = meta.flags ?? 0;
    m[META_GSO_TYPE] = meta.gsoType ?? 0;
    m[META_HDR_LEN] = meta.hdrLen ?? 0;
    m[META_GSO_SIZE] = meta.gsoSize ?? 0;
    m[META_CSUM_START] = meta.csumStart ?? 0;
    m[META_CSUM_OFFSET] = meta.csumOffset ?? 0;
    this.queue.push({ frame: Uint8Array.from(frame), meta: m });
    this.schedule();
  }

  recv(arena: Arena, slots: Uint32Array, count: number): number {
    let n = 0;
    while (n < count && this.head < this.queue.length) {
      const q = this.queue[this.head++]!;
      if (q.frame.length > MAX_FRAME) {
        this.rxTruncated++;
        continue;
      }
      const slot = slots[n]!;
      arena.bytes.set(q.frame, arena.off[slot]!);
      arena.len[slot] = q.frame.length;
      arena.meta.set(q.meta, slot * META_WORDS);
      n++;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    this.rxFrames += n;
    return n;
  }

  send(arena: Arena, slots: Uint32Array, count: number): number {
    for (let i = 0; i < count; i++) {
      const slot = slots[i]!;
      const off = arena.off[slot]!;
      this.sent.push({
        frame: arena.bytes.slice(off, off + arena.len[slot]!),
        meta: arena.meta.slice(slot * META_WORDS, slot * META_WORDS + META_WORDS),
      });
    }
    this.txFrames += count;
    return count;
  }

  /** Returns the frames sent so far and forgets them. */
  takeSent(): SentFrame[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }

  onReadable(cb: () => void): void {
    this.readable = cb;
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.readable = null;
    this.queue.length = 0;
    this.head = 0;
  }

  private schedule(): void {
    if (this.scheduled || this.readable === null || this.pending === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const cb = this.readable;
      if (cb === null || this.pending === 0) return;
      const before = this.pending;
      cb();
      if (this.pending < before) this.schedule();
    });
  }
}

/** "02:00:00:00:00:01" or 6 bytes → a fresh 6-byte array. */
export function parseMac(mac: Uint8Array | string): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new RangeError('a MAC address has 6 bytes');
    return Uint8Array.from(mac);
  }
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new RangeError(`"${mac}" is not a MAC address (expected xx:xx:xx:xx:xx:xx)`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

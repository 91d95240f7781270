import type { Arena } from '../packet/arena.js';

/**
 * A place frames come in and go out: a TAP device, an AF_PACKET socket on an interface, or
 * memory (tests, teaching). Ingress and egress are the same object. One call moves a whole batch.
 */
export interface Port {
  readonly name: string;
  /** Index of this port in the director (0..n-1), set when the director adds it. */
  index: number;
  /** 6-byte MAC address uvs uses as source on this port. */
  readonly mac: Uint8Array;
  readonly mtu: number;
  /**
   * Receives up to `count` frames into the arena slots listed in `slots[0..count)`.
   * Each frame is written at arena.off[slot] (the slot's headroom start) with arena.len[slot]
   * and the slot's meta set. Returns how many frames were received (0 when none is ready).
   */
  recv(arena: Arena, slots: Uint32Array, count: number): number;
  /**
   * Sends the frames of the slots listed in `slots[0..count)` (arena.off/len/meta describe each).
   * Returns how many the OS took; the rest are counted as tx drops by the caller.
   */
  send(arena: Arena, slots: Uint32Array, count: number): number;
  /** Calls cb whenever frames may be ready (libuv readiness); at most one callback. */
  onReadable(cb: () => void): void;
  close(): void;
}

/**
 * The uvs_io native addon (native-bindings/), loaded on first use, with its typed surface, and
 * `NativeFdIo`, the batch I/O that every fd-backed endpoint (AF_PACKET socket, TAP, TUN) shares.
 *
 * The addon only does OS plumbing: it opens endpoints (optionally inside a named network
 * namespace) and moves whole batches between the kernel and arena memory — one N-API call per
 * batch, never per packet. Its errors carry `.code` (errno name), `.syscall` and a message that
 * names the interface, e.g. `bind on "veth1": ENODEV (No such device)`.
 *
 * Build it with `npm run build` (or `npm run build:native`).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { HEADROOM, SLOT_SIZE, type Arena } from '../packet/arena.js';

/** recvBatch/sendBatch framing: AF_PACKET with PACKET_VNET_HDR. */
export const IO_PACKET = 0;
/** TAP opened with IFF_VNET_HDR (10-byte virtio_net_hdr before each frame). */
export const IO_TAP_VNET = 1;
/** No header: TUN (raw IP packets) or a TAP opened with vnetHdr: false. */
export const IO_RAW = 2;
export type IoKind = typeof IO_PACKET | typeof IO_TAP_VNET | typeof IO_RAW;

export interface NetnsOptions {
  /** Network namespace name under /var/run/netns (or a path); the endpoint is created there. */
  netns?: string;
}

export interface PacketSocketInfo {
  fd: number;
  name: string;
  ifindex: number;
  mac: Buffer;
  mtu: number;
}

export interface TapInfo {
  fd: number;
  /** Name the kernel gave (differs from the request for patterns like "tap%d"). */
  name: string;
  ifindex: number;
  /** The kernel side's MAC (not the one uvs should use as its own). */
  mac: Buffer;
  mtu: number;
}

export interface TunInfo {
  fd: number;
  name: string;
  ifindex: number;
  mtu: number;
}

export interface IfInfo {
  ifindex: number;
  mac: Buffer;
  mtu: number;
  /** IFF_* flags (IFF_UP = 1, IFF_RUNNING = 0x40, …). */
  flags: number;
}

export interface XskOpenOptions {
  /** Receive queue to bind (veth: 0). */
  queue?: number;
  /** XDP attach mode: driver (native) first then generic ('auto'), or only one of them. */
  mode?: 'auto' | 'drv' | 'skb';
  /** Ask for zero-copy (falls back to copy mode when the driver cannot). */
  zeroCopy?: boolean;
}

export interface XskInfo {
  fd: number;
  name: string;
  ifindex: number;
  mac: Buffer;
  mtu: number;
  queue: number;
  /** How the XDP program got attached. */
  attach: 'drv' | 'skb';
  zeroCopy: boolean;
  frames: number;
  frameSize: number;
}

/** Flags of the XDP filter's address map (native-bindings/src/xdp.cc). */
export const XDP_ADDR_OWNED = 1;
export const XDP_ADDR_NATSRC = 2;
export const XDP_ADDR_LOCAL = 4;

export interface XskStats {
  rxDropped: number;
  rxInvalid: number;
  txInvalid: number;
  rxRingFull: number;
  fillRingEmpty: number;
  txRingEmpty: number;
  /** Frames received with a partial (pseudo-header-only) TCP/UDP checksum, reported as NEEDS_CSUM. */
  rxPartialCsum: number;
  rxTooBig: number;
  /** NEEDS_CSUM frames whose checksum send completed in software. */
  txCsumDone: number;
  /** Frames longer than the MTU (GSO) that AF_XDP cannot transmit. */
  txTooBig: number;
  /** Sends stopped because every UMEM transmit frame was in flight. */
  txNoFrame: number;
  kicks: number;
}

/** A libuv poll on one fd; call stop() before closing the fd. */
export interface Watcher {
  stop(): void;
  /** Let the process exit while this watcher is active. */
  unref(): Watcher;
  ref(): Watcher;
  readonly active: boolean;
}

/** An error thrown by the addon for a failed system call. */
export interface NativeError extends Error {
  /** errno name, e.g. 'ENODEV'. */
  code: string;
  /** -errno, as Node's own system errors. */
  errno: number;
  syscall: string;
  /** The interface the call was about, when there was one. */
  interface?: string;
}

export interface UvsIo {
  readonly SLOT_SIZE: number;
  readonly HEADROOM: number;
  /** Frames moved per recvBatch/sendBatch call at most; larger counts are clipped. */
  readonly MAX_BATCH: number;
  readonly VNET_HDR_LEN: number;
  /** arpOnly: bound to ETH_P_ARP instead of ETH_P_ALL (the ARP side socket of an XdpPort). */
  openPacketSocket(ifname: string, opts?: NetnsOptions & { qdiscBypass?: boolean; arpOnly?: boolean; tunnelIcmp?: boolean }): PacketSocketInfo;
  openTap(name: string, opts?: NetnsOptions & { vnetHdr?: boolean }): TapInfo;
  openTun(name: string, opts?: NetnsOptions): TunInfo;
  getIfInfo(name: string, opts?: NetnsOptions): IfInfo;
  setLinkUp(name: string, opts?: NetnsOptions): void;
  recvBatch(
    fd: number,
    kind: IoKind,
    buffer: ArrayBuffer,
    off: Uint32Array,
    len: Uint32Array,
    meta: Uint16Array,
    slots: Uint32Array,
    count: number,
  ): number;
  sendBatch(
    fd: number,
    kind: IoKind,
    buffer: ArrayBuffer,
    off: Uint32Array,
    len: Uint32Array,
    meta: Uint16Array,
    slots: Uint32Array,
    count: number,
  ): number;
  /** Per-thread totals over all fds: frames dropped as truncated on receive, refused on send. */
  stats(): { rxTruncated: number; txInvalid: number };
  /** AF_XDP socket on one queue of `ifname` with its XDP program attached (native/xdp.cc). */
  xskOpen(ifname: string, opts?: NetnsOptions & XskOpenOptions): XskInfo;
  /** Same arena contract as recvBatch (kind-less): copies frames out of the UMEM into slots. */
  xskRecv(fd: number, buffer: ArrayBuffer, off: Uint32Array, len: Uint32Array, meta: Uint16Array, slots: Uint32Array, count: number): number;
  /** Copies frames into UMEM transmit frames and kicks; returns how many were queued. */
  xskSend(fd: number, buffer: ArrayBuffer, off: Uint32Array, len: Uint32Array, meta: Uint16Array, slots: Uint32Array, count: number): number;
  xskStats(fd: number): XskStats;
  /** Makes the XDP program's address map exactly addrs[i] → flags[i] (XDP_ADDR_*); returns the entry count. */
  xskSetAddrs(fd: number, addrs: Uint32Array, flags: Uint32Array): number;
  /** Detaches the XDP program, unmaps UMEM and rings, closes the socket. */
  xskClose(fd: number): void;
  /** A zeroed ArrayBuffer in a 2 MiB-aligned mapping advised MADV_HUGEPAGE (native/mem.cc). */
  allocHuge(bytes: number): ArrayBuffer;
  watch(fd: number, callback: () => void): Watcher;
  unwatch(handle: Watcher): void;
  close(fd: number): void;
}

/** Where the build puts the addon: <package root>/native-bindings/build/Release/uvs_io.node. */
export const NATIVE_PATH = fileURLToPath(new URL('../../native-bindings/build/Release/uvs_io.node', import.meta.url));

let loaded: UvsIo | null = null;

/** The addon, loaded once. Throws a clear error when it was not built. */
export function uvsIo(): UvsIo {
  if (loaded !== null) return loaded;
  const require = createRequire(import.meta.url);
  let io: UvsIo;
  try {
    io = require(NATIVE_PATH) as UvsIo;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'MODULE_NOT_FOUND' ? 'it is not built' : `loading failed: ${e.message}`;
    throw new Error(`uvs native addon ${NATIVE_PATH}: ${reason}; run "npm run build" (or "npm run build:native")`, {
      cause: err,
    });
  }
  if (io.SLOT_SIZE !== SLOT_SIZE || io.HEADROOM !== HEADROOM) {
    throw new Error(
      `uvs native addon was built for SLOT_SIZE ${io.SLOT_SIZE}/HEADROOM ${io.HEADROOM}, ` +
        `but src/packet/arena.ts says ${SLOT_SIZE}/${HEADROOM}; fix native-bindings/src/uvs_io.h and rebuild`,
    );
  }
  loaded = io;
  return io;
}

/**
 * Batch I/O over one fd through the addon, with counters. Ports built on it never throw on the
 * data path: a failed batch counts as an error (rxErrors/txErrors, lastError) and moves nothing.
 */
export abstract class NativeFdIo {
  readonly fd: number;
  readonly kind: IoKind;
  /** Frames received / taken by the kernel on send. */
  rxFrames = 0;
  txFrames = 0;
  /** Frames handed to send() that the kernel did not take (full queue, refused, error). */
  txDropped = 0;
  /** Batches that failed with an error. */
  rxErrors = 0;
  txErrors = 0;
  lastError: Error | null = null;
  protected readonly io: UvsIo;
  private watcher: Watcher | null = null;
  private closed = false;

  protected constructor(io: UvsIo, fd: number, kind: IoKind) {
    this.io = io;
    this.fd = fd;
    this.kind = kind;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  recv(arena: Arena, slots: Uint32Array, count: number): number {
    if (this.closed || count <= 0) return 0;
    let n: number;
    try {
      n = this.rxBatch(arena, slots, count);
    } catch (err) {
      this.rxErrors++;
      this.lastError = err as Error;
      return 0;
    }
    this.rxFrames += n;
    return n;
  }

  send(arena: Arena, slots: Uint32Array, count: number): number {
    if (count <= 0) return 0;
    if (this.closed) {
      this.txDropped += count;
      return 0;
    }
    const max = this.io.MAX_BATCH;
    let sent = 0;
    try {
      while (sent < count) {
        const chunk = Math.min(count - sent, max);
        const batch = sent === 0 ? slots : slots.subarray(sent); // only for batches > MAX_BATCH
        const n = this.txBatch(arena, batch, chunk);
        sent += n;
        if (n < chunk) break;
      }
    } catch (err) {
      this.txErrors++;
      this.lastError = err as Error;
    }
    this.txFrames += sent;
    this.txDropped += count - sent;
    return sent;
  }

  /** Calls cb whenever the fd is readable (libuv, level-triggered); replaces an earlier cb. */
  onReadable(cb: () => void): void {
    if (this.closed) return;
    this.watcher?.stop();
    this.watcher = this.io.watch(this.fd, cb);
  }

  /** Lets the process exit while this endpoint is being watched. */
  unref(): void {
    this.watcher?.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.stop();
    this.watcher = null;
    this.closeFd();
  }

  /** One native receive call for the batch (AF_XDP ports use their own). */
  protected rxBatch(arena: Arena, slots: Uint32Array, count: number): number {
    return this.io.recvBatch(this.fd, this.kind, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
  }

  /** One native send call for at most MAX_BATCH frames. */
  protected txBatch(arena: Arena, slots: Uint32Array, count: number): number {
    return this.io.sendBatch(this.fd, this.kind, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
  }

  protected closeFd(): void {
    this.io.close(this.fd);
  }
}

/**
 * The addon's huge-page block allocator for large tables (ConnTableOptions.allocate), or
 * undefined when the addon is not built (the table then uses a plain ArrayBuffer).
 */
export function hugeAllocator(): ((bytes: number) => ArrayBuffer) | undefined {
  try {
    const io = uvsIo();
    return (bytes) => io.allocHuge(bytes);
  } catch {
    return undefined;
  }
}

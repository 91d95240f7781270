/**
 * XdpPort — a Port on an existing interface through an AF_XDP socket (`uvsd --io xdp`, and what
 * `--io auto` picks where the driver has native XDP), the same role as PacketSocketPort without
 * the kernel's per-packet skb clone + host-stack work.
 *
 * Promises: a small XDP program (native-bindings/src/xdp.cc) redirects to uvs only the frames of
 * flows uvs owns — IPv4 to an owned address (VIP, FULLNAT local address) and IPv4 from a NAT real
 * server to a non-local address — as set by setAddrs(); everything else (ARP, the host's own
 * traffic: ssh, health-check replies) goes to the host stack as if uvs were not there. ARP also
 * reaches uvs, through a second AF_PACKET socket bound to ETH_P_ARP only, so uvs answers ARP for
 * its addresses and resolves next hops while the kernel keeps its own neighbour table. Until
 * setAddrs() is called nothing is redirected.
 * Frames are copied between the UMEM and the arena in one native call per batch; transmit
 * copies into UMEM frames and kicks the socket (sendto). No GSO on this path; a TCP/UDP frame a
 * local peer left with a partial checksum (veth) is reported as NEEDS_CSUM in arena.meta like on
 * AF_PACKET, and send completes NEEDS_CSUM checksums in software. Frames longer than the MTU
 * (GSO super-frames from another port type) are not sent. Readiness: libuv poll on the xsk fd
 * and the ARP socket. The XDP program is attached through a bpf link owned by this process:
 * close() — or the process dying — removes it. Never throws on the data path: failed batches are
 * counted.
 *
 * Expects: root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW), no other XDP program on the interface, the
 * native addon built. Only one queue is served (rxQueues() tells how many the interface has).
 *
 * Example:
 *   const port = XdpPort.open('eth0', { netns: 'lab-dir' });
 *   port.setAddrs([vip], [], [dip]);
 *   port.onReadable(() => { const n = port.recv(arena, slots, 64); … });
 */
import type { Port } from './port.js';
import { readdirSync } from 'node:fs';
import {
  IO_PACKET, IO_RAW, NativeFdIo, uvsIo, XDP_ADDR_LOCAL, XDP_ADDR_NATSRC, XDP_ADDR_OWNED,
  type NetnsOptions, type UvsIo, type Watcher, type XskOpenOptions, type XskStats,
} from './native.js';
import type { Arena } from '../packet/arena.js';
import { envPacketOptions } from './packet-socket-port.js';

export interface XdpPortOptions extends NetnsOptions, XskOpenOptions {
  /** Source MAC uvs uses on this port; default the interface's own MAC. */
  mac?: Uint8Array;
}

export class XdpPort extends NativeFdIo implements Port {
  readonly name: string;
  index = -1;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly ifindex: number;
  readonly ifMac: Uint8Array;
  readonly netns: string | undefined;
  /** How the XDP program is attached: 'drv' (native) or 'skb' (generic). */
  readonly attach: 'drv' | 'skb';
  readonly zeroCopy: boolean;
  /** The ARP-only AF_PACKET socket (ARP is left to the host by the XDP program; uvs reads a copy). */
  private readonly arpFd: number;
  private arpWatcher: Watcher | null = null;
  /** The ARP socket may hold frames (set by its watcher; cleared when a read leaves it empty). */
  private arpReady = true;
  /** Entries in the XDP address map after the last setAddrs(). */
  filterEntries = 0;

  private constructor(io: UvsIo, info: ReturnType<UvsIo['xskOpen']>, arpFd: number, opts: XdpPortOptions) {
    super(io, info.fd, IO_RAW);
    this.arpFd = arpFd;
    this.name = info.name;
    this.ifindex = info.ifindex;
    this.ifMac = new Uint8Array(info.mac);
    this.mac = opts.mac ? Uint8Array.from(opts.mac) : Uint8Array.from(this.ifMac);
    this.mtu = info.mtu;
    this.netns = opts.netns;
    this.attach = info.attach;
    this.zeroCopy = info.zeroCopy;
  }

  /** Opens the socket and attaches the program (inside opts.netns if given). Throws NativeError. */
  static open(ifname: string, opts: XdpPortOptions = {}): XdpPort {
    const env = envPacketOptions(ifname); // the same mac:IF=MAC knob as AF_PACKET ports
    if (opts.mac === undefined && env.mac !== undefined) opts = { ...opts, mac: env.mac };
    if (opts.mac !== undefined && opts.mac.length !== 6) throw new RangeError(`mac for "${ifname}" must be 6 bytes`);
    const io = uvsIo();
    const nativeOpts: NetnsOptions & XskOpenOptions = {};
    if (opts.netns !== undefined) nativeOpts.netns = opts.netns;
    if (opts.queue !== undefined) nativeOpts.queue = opts.queue;
    if (opts.mode !== undefined) nativeOpts.mode = opts.mode;
    if (opts.zeroCopy !== undefined) nativeOpts.zeroCopy = opts.zeroCopy;
    const info = io.xskOpen(ifname, nativeOpts);
    let arp;
    try {
      arp = io.openPacketSocket(ifname, { ...(opts.netns !== undefined ? { netns: opts.netns } : {}), arpOnly: true, tunnelIcmp: true });
    } catch (e) {
      io.xskClose(info.fd);
      throw e;
    }
    return new XdpPort(io, info, arp.fd, opts);
  }

  /** Receive queues of an interface (sysfs of the current namespace), or 0 when unknown. */
  static rxQueues(ifname: string): number {
    try {
      return readdirSync(`/sys/class/net/${ifname}/queues`).filter((q) => q.startsWith('rx-')).length;
    } catch {
      return 0;
    }
  }

  /**
   * Sets which flows the XDP program hands to uvs: frames to `owned`, and frames from `natSrc`
   * (NAT real servers) unless addressed to one of `local` (the host's own addresses).
   * Throws NativeError (e.g. more than 16384 addresses).
   */
  setAddrs(owned: readonly number[], natSrc: readonly number[], local: readonly number[]): void {
    if (this.isClosed) return;
    const n = owned.length + natSrc.length + local.length;
    const addrs = new Uint32Array(n);
    const flags = new Uint32Array(n);
    let i = 0;
    for (const a of owned) { addrs[i] = a; flags[i++] = XDP_ADDR_OWNED; }
    for (const a of natSrc) { addrs[i] = a; flags[i++] = XDP_ADDR_NATSRC; }
    for (const a of local) { addrs[i] = a; flags[i++] = XDP_ADDR_LOCAL; }
    this.filterEntries = this.io.xskSetAddrs(this.fd, addrs, flags);
  }

  override onReadable(cb: () => void): void {
    if (this.isClosed) return;
    super.onReadable(cb);
    this.arpWatcher?.stop();
    this.arpWatcher = this.io.watch(this.arpFd, () => {
      this.arpReady = true;
      cb();
    });
  }

  override unref(): void {
    super.unref();
    this.arpWatcher?.unref();
  }

  protected override rxBatch(arena: Arena, slots: Uint32Array, count: number): number {
    let n = this.io.xskRecv(this.fd, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
    if (this.arpReady && n < count) {
      // Rare (ARP): the subarray is the only allocation, and only when the ARP socket woke us.
      const want = count - n;
      let m = 0;
      try {
        m = this.io.recvBatch(this.arpFd, IO_PACKET, arena.buffer, arena.off, arena.len, arena.meta, n === 0 ? slots : slots.subarray(n), want);
      } catch (err) {
        this.rxErrors++; // keep the frames the xsk gave us
        this.lastError = err as Error;
      }
      if (m < want) this.arpReady = false;
      n += m;
    }
    return n;
  }

  protected override txBatch(arena: Arena, slots: Uint32Array, count: number): number {
    return this.io.xskSend(this.fd, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
  }

  protected override closeFd(): void {
    this.arpWatcher?.stop();
    this.arpWatcher = null;
    try { this.io.close(this.arpFd); } catch { /* closing anyway */ }
    this.io.xskClose(this.fd);
  }

  /** Kernel (XDP_STATISTICS) and native counters of this socket. */
  stats(): XskStats | null {
    return this.isClosed ? null : this.io.xskStats(this.fd);
  }
}

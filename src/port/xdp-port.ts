/**
 * XdpPort — a Port on an existing interface through an AF_XDP socket (opt-in: `uvsd --io xdp`),
 * the same role as PacketSocketPort without the kernel's per-packet skb clone + host-stack work.
 *
 * Promises: every frame arriving on receive queue `queue` (default 0, the only queue of a veth)
 * is redirected to uvs by a tiny XDP program (native-bindings/src/xdp.cc) and NEVER reaches the
 * host stack — ARP, ICMP and traffic for the host's own addresses on that interface included.
 * Use it only on director interfaces where uvs is the host (uvs answers ARP for its addresses).
 * Frames are copied between the UMEM and the arena in one native call per batch; transmit
 * copies into UMEM frames and kicks the socket (sendto). No GSO on this path; a TCP/UDP frame a
 * local peer left with a partial checksum (veth) is reported as NEEDS_CSUM in arena.meta like on
 * AF_PACKET, and send completes NEEDS_CSUM checksums in software. Frames longer than the MTU
 * (GSO super-frames from another port type) are not sent. Readiness: libuv poll on the xsk fd.
 * The XDP program is attached through a bpf link owned by this process: close() — or the process
 * dying — removes it. Never throws on the data path: failed batches are counted.
 *
 * Expects: root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW), no other XDP program on the interface, the
 * native addon built. Only one queue is served: on a multi-queue NIC, steer traffic to it.
 *
 * Example:
 *   const port = XdpPort.open('eth0', { netns: 'lab-dir' });
 *   port.onReadable(() => { const n = port.recv(arena, slots, 64); … });
 */
import type { Port } from './port.js';
import { IO_RAW, NativeFdIo, uvsIo, type NetnsOptions, type UvsIo, type XskOpenOptions, type XskStats } from './native.js';
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

  private constructor(io: UvsIo, info: ReturnType<UvsIo['xskOpen']>, opts: XdpPortOptions) {
    super(io, info.fd, IO_RAW);
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
    return new XdpPort(io, io.xskOpen(ifname, nativeOpts), opts);
  }

  protected override rxBatch(arena: Arena, slots: Uint32Array, count: number): number {
    return this.io.xskRecv(this.fd, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
  }

  protected override txBatch(arena: Arena, slots: Uint32Array, count: number): number {
    return this.io.xskSend(this.fd, arena.buffer, arena.off, arena.len, arena.meta, slots, count);
  }

  protected override closeFd(): void {
    this.io.xskClose(this.fd);
  }

  /** Kernel (XDP_STATISTICS) and native counters of this socket. */
  stats(): XskStats | null {
    return this.isClosed ? null : this.io.xskStats(this.fd);
  }
}

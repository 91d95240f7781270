/**
 * TunDevice — an L3 TUN device (IFF_TUN, no packet-info header): raw IPv4 packets in and out,
 * in the same arena/batch style as the ports. Used by `uvs tunnel-endpoint`, a userspace IPIP
 * endpoint that decapsulates and injects the inner IP packets into the local stack (this kernel
 * has no ipip module).
 *
 * Promises: the device exists and is up while open and disappears on close(). recv puts each IP
 * packet at arena.off[slot] (no Ethernet header, meta zeroed); send writes each slot's bytes as
 * one IP packet. One native call per batch. Never throws on the data path (counters as ports).
 *
 * Expects: root (CAP_NET_ADMIN), /dev/net/tun, the native addon built.
 *
 * Example:
 *   const tun = TunDevice.open('uvstun0', { netns: 'rs1' });
 *   // ip -n rs1 addr add 10.0.0.100/32 dev uvstun0 — then send() decapsulated packets to it.
 */
import { IO_RAW, NativeFdIo, uvsIo, type NetnsOptions } from './native.js';

export class TunDevice extends NativeFdIo {
  readonly name: string;
  readonly ifindex: number;
  readonly mtu: number;
  readonly netns: string | undefined;

  private constructor(fd: number, name: string, ifindex: number, mtu: number, netns: string | undefined) {
    super(uvsIo(), fd, IO_RAW);
    this.name = name;
    this.ifindex = ifindex;
    this.mtu = mtu;
    this.netns = netns;
  }

  /** Creates the TUN device `name` (inside opts.netns if given) and brings it up. Throws NativeError. */
  static open(name: string, opts: NetnsOptions = {}): TunDevice {
    const info = uvsIo().openTun(name, opts.netns !== undefined ? { netns: opts.netns } : {});
    return new TunDevice(info.fd, info.name, info.ifindex, info.mtu, opts.netns);
  }
}

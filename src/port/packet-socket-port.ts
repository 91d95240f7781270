/**
 * PacketSocketPort — a Port on an existing interface through an AF_PACKET raw socket (the
 * director-VM case: `uvsd --iface eth1`).
 *
 * Promises: every frame on the interface (ETH_P_ALL) except the ones this socket sent itself
 * (PACKET_IGNORE_OUTGOING); each comes with the virtio-net header fields in arena.meta, so a
 * partial checksum (veth and other local peers offload it) or a GSO super-frame is visible, and
 * the same fields are handed back to the kernel on send. One recvmmsg / sendmmsg per batch.
 * Never throws on the data path: failed batches are counted (rxErrors, txErrors, lastError).
 *
 * Expects: root (CAP_NET_RAW); the native addon built (`npm run build`).
 *
 * Example:
 *   const port = PacketSocketPort.open('veth1', { netns: 'lab-dir' });
 *   port.onReadable(() => { const n = port.recv(arena, slots, 64); … });
 *
 * See also: tap-port.ts (uvs as its own L2 host), memory-port.ts (tests).
 */
import type { Port } from './port.js';
import { IO_PACKET, NativeFdIo, uvsIo, type NetnsOptions } from './native.js';
import { parseMac } from '../model/addr.js';

export interface PacketSocketPortOptions extends NetnsOptions {
  /** Transmit straight to the driver, skipping the qdisc (PACKET_QDISC_BYPASS). Default off. */
  qdiscBypass?: boolean;
  /** Source MAC uvs uses on this port; default the interface's own MAC. */
  mac?: Uint8Array;
}

export class PacketSocketPort extends NativeFdIo implements Port {
  readonly name: string;
  index = -1;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly ifindex: number;
  /** The interface's own MAC as the kernel reports it. */
  readonly ifMac: Uint8Array;
  readonly netns: string | undefined;

  private constructor(fd: number, name: string, ifindex: number, ifMac: Uint8Array, mtu: number, opts: PacketSocketPortOptions) {
    super(uvsIo(), fd, IO_PACKET);
    this.name = name;
    this.ifindex = ifindex;
    this.ifMac = ifMac;
    this.mac = opts.mac ? Uint8Array.from(opts.mac) : Uint8Array.from(ifMac);
    this.mtu = mtu;
    this.netns = opts.netns;
  }

  /** Opens a packet socket bound to `ifname` (inside opts.netns if given). Throws NativeError. */
  static open(ifname: string, opts: PacketSocketPortOptions = {}): PacketSocketPort {
    opts = { ...envPacketOptions(ifname), ...opts };
    const io = uvsIo();
    const nativeOpts: { netns?: string; qdiscBypass?: boolean } = {};
    if (opts.netns !== undefined) nativeOpts.netns = opts.netns;
    if (opts.qdiscBypass) nativeOpts.qdiscBypass = true;
    const info = io.openPacketSocket(ifname, nativeOpts);
    if (opts.mac !== undefined && opts.mac.length !== 6) {
      io.close(info.fd);
      throw new RangeError(`mac for "${ifname}" must be 6 bytes`);
    }
    return new PacketSocketPort(info.fd, info.name, info.ifindex, new Uint8Array(info.mac), info.mtu, opts);
  }
}

/**
 * Opt-in speed knobs from the environment, for benchmarks (all off when unset; explicit open()
 * options win): UVS_PACKET_OPTS="qdisc-bypass,mac:eth0=02:75:76:73:00:01" — qdisc-bypass sets
 * PACKET_QDISC_BYPASS on every port; mac:IF=MAC makes uvs use MAC (one the host kernel does not
 * own) on IF, so frames sent to it reach AF_PACKET as PACKET_OTHERHOST and the kernel's IP layer
 * drops them at once. Peers must be pointed at that MAC (uvs answers ARP for its own addresses
 * with it; veth delivers any MAC, a real NIC needs promiscuous mode).
 */
export function envPacketOptions(ifname: string, env: string | undefined = process.env.UVS_PACKET_OPTS): PacketSocketPortOptions {
  const o: PacketSocketPortOptions = {};
  if (!env) return o;
  for (const raw of env.split(',')) {
    const t = raw.trim();
    if (t === 'qdisc-bypass') o.qdiscBypass = true;
    else if (t.startsWith('mac:')) {
      const eq = t.indexOf('=');
      const mac = eq > 4 ? parseMac(t.slice(eq + 1)) : null;
      if (mac && t.slice(4, eq) === ifname) o.mac = mac;
    }
  }
  return o;
}

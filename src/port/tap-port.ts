/**
 * TapPort — a Port on a TAP device uvs creates (`uvsd --tap uvs0`): uvs is its own L2 host on
 * the TAP, so its `mac` is not the kernel side's MAC but a locally administered unicast one
 * (02:…) derived from the device name — stable across restarts — or opts.mac.
 *
 * Promises: the device exists and is up while the port is open and disappears on close(). With
 * the default vnetHdr, the kernel hands over partial-checksum and TCP super-frames (TUN_F_CSUM,
 * TSO4, TSO6) with their virtio-net header fields in arena.meta, and takes them back the same
 * way on send. One native call per batch (readv/writev loop inside). Never throws on the data
 * path: failed batches are counted (rxErrors, txErrors, lastError).
 *
 * Expects: root (CAP_NET_ADMIN), /dev/net/tun, the native addon built.
 *
 * Example:
 *   const tap = TapPort.create('uvs0', { netns: 'lab-dir' });
 *   // ip -n lab-dir addr add 10.0.0.1/24 dev uvs0 — the kernel side; uvs answers for its own IPs.
 *
 * See also: packet-socket-port.ts, tun-device.ts (L3, for the IPIP endpoint).
 */
import type { Port } from './port.js';
import { IO_RAW, IO_TAP_VNET, NativeFdIo, uvsIo, type NetnsOptions } from './native.js';

export interface TapPortOptions extends NetnsOptions {
  /** The MAC uvs uses on this TAP; default tapMacFor(name). Must differ from the kernel side's. */
  mac?: Uint8Array;
  /** Exchange a virtio-net header with the kernel (offloads). Default true. */
  vnetHdr?: boolean;
}

/**
 * A locally administered unicast MAC (02:xx:xx:xx:xx:xx) from a name: FNV-1a over the name,
 * 40 bits of it. The same name always gives the same MAC.
 */
export function tapMacFor(name: string): Uint8Array {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193) >>> 0;
  }
  h2 = Math.imul(h2 ^ h1, 0x01000193) >>> 0;
  return Uint8Array.of(0x02, h1 >>> 24, (h1 >>> 16) & 0xff, (h1 >>> 8) & 0xff, h1 & 0xff, h2 & 0xff);
}

export class TapPort extends NativeFdIo implements Port {
  readonly name: string;
  index = -1;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly ifindex: number;
  /** The kernel side's MAC (the host's address on this link, not uvs's). */
  readonly kernelMac: Uint8Array;
  readonly netns: string | undefined;

  private constructor(fd: number, vnetHdr: boolean, name: string, ifindex: number, kernelMac: Uint8Array, mtu: number, mac: Uint8Array, netns: string | undefined) {
    super(uvsIo(), fd, vnetHdr ? IO_TAP_VNET : IO_RAW);
    this.name = name;
    this.ifindex = ifindex;
    this.kernelMac = kernelMac;
    this.mac = mac;
    this.mtu = mtu;
    this.netns = netns;
  }

  /** Creates the TAP device `name` (inside opts.netns if given) and brings it up. Throws NativeError. */
  static create(name: string, opts: TapPortOptions = {}): TapPort {
    const io = uvsIo();
    if (opts.mac !== undefined && opts.mac.length !== 6) throw new RangeError(`mac for "${name}" must be 6 bytes`);
    const vnetHdr = opts.vnetHdr ?? true;
    const nativeOpts: { netns?: string; vnetHdr: boolean } = { vnetHdr };
    if (opts.netns !== undefined) nativeOpts.netns = opts.netns;
    const info = io.openTap(name, nativeOpts);
    const kernelMac = new Uint8Array(info.mac);
    let mac = opts.mac ? Uint8Array.from(opts.mac) : tapMacFor(info.name);
    if (!opts.mac && sameMac(mac, kernelMac)) {
      mac = Uint8Array.from(mac);
      mac[5] ^= 0x01; // never share the kernel side's address (astronomically rare)
    }
    return new TapPort(info.fd, vnetHdr, info.name, info.ifindex, kernelMac, info.mtu, mac, opts.netns);
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The director's own L3 view: the addresses on each port and the routes (connected subnets of
 * those addresses, static routes, a default gateway). In `--iface` mode it is read from the
 * kernel's configuration of the interfaces; in `--tap` mode it comes from uvsd's flags.
 * Lookup is longest-prefix-match over a short list, sorted once when the table changes.
 */
import { ipToString, prefixToMask } from './addr.js';

export interface PortAddr {
  port: number;
  addr: number;
  prefix: number;
}

export interface Route {
  net: number;
  prefix: number;
  /** Gateway address, 0 for a connected route (next hop = destination). */
  gw: number;
  port: number;
  /** Preferred source address for packets uvs originates on this route. */
  src: number;
}

export class RouteTable {
  private routes: Route[] = [];
  private masks = new Uint32Array(0);
  private nets = new Uint32Array(0);
  readonly addrs: PortAddr[] = [];

  addAddress(a: PortAddr): void {
    this.addrs.push(a);
    if (a.prefix < 32) {
      const mask = prefixToMask(a.prefix);
      this.add({ net: (a.addr & mask) >>> 0, prefix: a.prefix, gw: 0, port: a.port, src: a.addr });
    }
  }

  add(r: Route): void {
    r.net = (r.net & prefixToMask(r.prefix)) >>> 0;
    if (r.src === 0) r.src = this.sourceFor(r.port, r.gw);
    this.routes.push(r);
    this.routes.sort((x, y) => y.prefix - x.prefix);
    this.masks = Uint32Array.from(this.routes, (x) => prefixToMask(x.prefix));
    this.nets = Uint32Array.from(this.routes, (x) => x.net);
  }

  /** Index of the best route to daddr, or -1. */
  lookup(daddr: number): number {
    const m = this.masks;
    const n = this.nets;
    for (let i = 0; i < m.length; i++) if (((daddr & m[i]!) >>> 0) === n[i]) return i;
    return -1;
  }

  get(i: number): Route {
    return this.routes[i]!;
  }

  all(): readonly Route[] {
    return this.routes;
  }

  /** The port address on the same subnet as `gw`, else the port's first address, else 0. */
  sourceFor(port: number, gw: number): number {
    let first = 0;
    for (const a of this.addrs) {
      if (a.port !== port) continue;
      if (!first) first = a.addr;
      const mask = prefixToMask(a.prefix);
      if (gw && ((gw & mask) >>> 0) === ((a.addr & mask) >>> 0)) return a.addr;
    }
    return first;
  }

  /** Whether addr is one of the port addresses. */
  isPortAddr(addr: number): boolean {
    for (const a of this.addrs) if (a.addr === addr) return true;
    return false;
  }

  describe(): string[] {
    return this.routes.map((r) => `${ipToString(r.net)}/${r.prefix}${r.gw ? ` via ${ipToString(r.gw)}` : ''} port ${r.port} src ${ipToString(r.src)}`);
  }
}

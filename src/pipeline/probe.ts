/**
 * Health checks through the data path ("tunneled" checks, the #1 request of LVS users, DPVS
 * #870): for a DR or TUN real server, a keepalived TCP_CHECK whose `connect_ip` is the virtual
 * server's VIP is sent the way client traffic goes — a SYN to VIP:port from the director's
 * address, to the real server's MAC (DR) or inside the dest's tunnel (IPIP/GUE/GRE) — so it fails
 * when the VIP is missing on the real server's lo / tunnel device, the tunnel endpoint is down, or
 * the service does not listen on the VIP, which a connect to RIP:port cannot see.
 *
 * The real server answers from the VIP to the director's address; a SYN-ACK acknowledging the
 * probe's ISN is success (uvs then resets the half-open connection through the same path), a RST
 * is "connection refused", silence is a timeout. The probe's source ports are 61000–61255, above
 * the host's ephemeral range: with `--iface` uvsd's nftables guard keeps those replies from the
 * host's TCP (which would answer them with a RST to the VIP), and AF_XDP ports get a copy of them
 * through their ARP/ICMP packet socket.
 *
 * An HTTP_GET with `connect_ip` = the VIP goes the same way as a small TCP client: after the
 * SYN-ACK the request goes out (retransmitted until acknowledged), the server's segments are taken
 * in order and acknowledged (out-of-order ones get a duplicate ACK: the server resends), and its
 * FIN ends the exchange — the reply is the byte stream, uvs resets the connection. A RST, a reply
 * over `maxReply` bytes or the timeout fail it.
 *
 * This module holds the in-flight probes (at most PROBE_SLOTS) and writes the probe segments;
 * the director sends them and hands replies back (Director.probe, Director.probeReply).
 */
import { writeIpv4, IP_F_DF } from '../wire/ipv4.js';
import { wr16, wr32 } from '../wire/bytes.js';
import { ETH_HLEN, ETH_TYPE, ETHERTYPE_IPV4 } from '../wire/ethernet.js';
import { setL4Checksum } from '../wire/checksum.js';
import type { TunParams } from '../fwd/tun.js';

export const PROBE_PORT_MIN = 61000;
export const PROBE_SLOTS = 256;

/** Where a data-path probe goes. Addresses are u32. */
export interface ProbeTarget {
  /** 6: a SYN (TCP_CHECK); 17: `payload` in a datagram (UDP_CHECK, DNS_CHECK). */
  proto?: 6 | 17;
  payload?: Uint8Array;
  /** TCP: sent once connected; the reply is what the server sends until its FIN (HTTP_GET). */
  request?: Uint8Array;
  /** TCP with `request`: the most reply bytes taken (default 1 MiB). */
  maxReply?: number;
  /** UDP: which replies count (others are ignored); default all. */
  accept?: (msg: Buffer) => boolean;
  vip: number;
  vport: number;
  rip: number;
  /** The source address (keepalived `bindto`): one of the director's port addresses; default the
   * route's source toward rip. */
  src?: number;
  /** FWD_DROUTE or FWD_TUNNEL. */
  fwd: number;
  tun: TunParams;
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
  /** UDP: the reply datagram's payload; TCP with a request: the bytes the server sent. */
  reply?: Buffer;
  /** Nothing came back within the timeout. */
  timedOut?: boolean;
}

export class Prober {
  /** Probes in flight: the data path tests this one number before anything else. */
  pending = 0;
  private next = 0;
  private readonly busy = new Uint8Array(PROBE_SLOTS);
  /** Initial sequence number of the probe in each slot. */
  readonly iss = new Uint32Array(PROBE_SLOTS);
  /** Source address (the director's, toward the real server), VIP and port, as u32 / port. */
  readonly src = new Uint32Array(PROBE_SLOTS);
  readonly targets: (ProbeTarget | null)[] = new Array<ProbeTarget | null>(PROBE_SLOTS).fill(null);
  /** TCP probes with a request: the connection's state once the SYN-ACK came (null before). */
  readonly streams: (ProbeStream | null)[] = new Array<ProbeStream | null>(PROBE_SLOTS).fill(null);
  private readonly done: (((r: ProbeResult) => void) | null)[] = new Array<((r: ProbeResult) => void) | null>(PROBE_SLOTS).fill(null);
  private readonly timers: (ReturnType<typeof setTimeout> | null)[] = new Array<ReturnType<typeof setTimeout> | null>(PROBE_SLOTS).fill(null);

  /** A free slot (its source port is PROBE_PORT_MIN + slot), or -1 when all are in flight. */
  alloc(): number {
    for (let k = 0; k < PROBE_SLOTS; k++) {
      const s = (this.next + k) % PROBE_SLOTS;
      if (this.busy[s] === 0) {
        this.next = (s + 1) % PROBE_SLOTS;
        return s;
      }
    }
    return -1;
  }

  /** Marks slot s in flight until finish(s) or the timeout. */
  start(s: number, t: ProbeTarget, src: number, iss: number, timeoutMs: number, done: (r: ProbeResult) => void): void {
    this.busy[s] = 1;
    this.pending++;
    this.targets[s] = t;
    this.src[s] = src >>> 0;
    this.iss[s] = iss >>> 0;
    this.done[s] = done;
    const timer = setTimeout(() => this.finish(s, { ok: false, detail: `no answer within ${timeoutMs / 1000}s`, timedOut: true }), timeoutMs);
    timer.unref?.();
    this.timers[s] = timer;
  }

  active(s: number): boolean {
    return s >= 0 && s < PROBE_SLOTS && this.busy[s] === 1;
  }

  finish(s: number, r: ProbeResult): void {
    if (this.busy[s] !== 1) return;
    this.busy[s] = 0;
    this.pending--;
    const t = this.timers[s];
    if (t) clearTimeout(t);
    this.timers[s] = null;
    this.targets[s] = null;
    const st = this.streams[s];
    if (st) { if (st.timer) clearTimeout(st.timer); this.streams[s] = null; }
    const done = this.done[s];
    this.done[s] = null;
    done?.(r);
  }

  /** Ends every probe in flight (uvsd stopping). */
  cancelAll(): void {
    for (let s = 0; s < PROBE_SLOTS; s++) this.finish(s, { ok: false, detail: 'director stopping' });
  }
}

/** A TCP probe's connection after the SYN-ACK (sequence numbers as u32). */
export interface ProbeStream {
  /** The next byte expected from the server. */
  rcvNxt: number;
  /** Our next sequence number once the request is sent (ISS + 1 + request length). */
  sndNxt: number;
  /** The server acknowledged the whole request. */
  acked: boolean;
  chunks: Buffer[];
  bytes: number;
  /** Request retransmissions so far, and the timer of the next one. */
  retries: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A TCP probe's request is retransmitted after 200, 400, 800 ms … until acknowledged, 5 times at most. */
export const PROBE_RTO_MS = 200;
export const PROBE_REQUEST_RETRIES = 5;

/** The receive window a TCP probe advertises (no window scaling). */
export const PROBE_WINDOW = 65535;

/**
 * Writes the probe's TCP segment from src:sport to vip:vport at frame offset f (Ethernet
 * addresses left for egress): a SYN (with an MSS option), a RST, or — with TCP_ACK in flags — an
 * ACK of `ack` carrying `payload`. Returns the frame length.
 */
export function writeProbeSegment(b: Uint8Array, f: number, src: number, sport: number, vip: number, vport: number, flags: number, seq: number,
  ack = 0, payload?: Uint8Array): number {
  const syn = (flags & 0x02) !== 0;
  const hlen = syn ? 24 : 20;
  const plen = payload?.length ?? 0;
  const l3 = f + ETH_HLEN;
  const l4 = l3 + 20;
  wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
  writeIpv4(b, l3, 0, 20 + hlen + plen, 0, IP_F_DF, 64, 6, src, vip);
  wr16(b, l4, sport);
  wr16(b, l4 + 2, vport);
  wr32(b, l4 + 4, seq >>> 0);
  wr32(b, l4 + 8, (flags & 0x10) !== 0 ? ack >>> 0 : 0);
  b[l4 + 12] = (hlen / 4) << 4;
  b[l4 + 13] = flags;
  wr16(b, l4 + 14, syn ? 64240 : (flags & 0x04) !== 0 ? 0 : PROBE_WINDOW);
  wr16(b, l4 + 16, 0);
  wr16(b, l4 + 18, 0);
  if (syn) {
    b[l4 + 20] = 2; // MSS
    b[l4 + 21] = 4;
    wr16(b, l4 + 22, 1460);
  }
  if (payload !== undefined) b.set(payload, l4 + hlen);
  setL4Checksum(b, src >>> 0, vip >>> 0, 6, l4, hlen + plen, 16);
  return ETH_HLEN + 20 + hlen + plen;
}

/** Writes the probe's UDP datagram carrying `payload` from src:sport to vip:vport at frame offset f. */
export function writeProbeDatagram(b: Uint8Array, f: number, src: number, sport: number, vip: number, vport: number, payload: Uint8Array): number {
  const l3 = f + ETH_HLEN;
  const l4 = l3 + 20;
  const ulen = 8 + payload.length;
  wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
  writeIpv4(b, l3, 0, 20 + ulen, 0, IP_F_DF, 64, 17, src, vip);
  wr16(b, l4, sport);
  wr16(b, l4 + 2, vport);
  wr16(b, l4 + 4, ulen);
  b.set(payload, l4 + 8);
  setL4Checksum(b, src >>> 0, vip >>> 0, 17, l4, ulen, 6);
  return ETH_HLEN + 20 + ulen;
}

/** The largest probe payload (one frame of the smallest MTU uvs handles, room for a tunnel header). */
export const PROBE_PAYLOAD_MAX = 1400;

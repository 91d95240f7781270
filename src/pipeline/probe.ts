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
 * An HTTP_GET or SSL_GET with `connect_ip` = the VIP goes the same way over a small TCP client
 * (ProbeStream): bytes are sent once the SYN-ACK came (the request first; TLS's records as its
 * handshake writes them), in segments of the server's MSS within its window, and sent again from
 * the first unacknowledged byte (200, 400, 800 ms …) until acknowledged; the server's segments are
 * taken in order and acknowledged (out-of-order ones get a duplicate ACK: the server resends), and
 * its FIN ends the exchange — uvs then resets the connection. A RST, a reply over `maxReply` bytes
 * or the timeout fail it. What the server sends is the reply (HTTP_GET), or goes to a sink as it
 * comes (`stream`: SSL_GET runs node's TLS over it, probe-socket.ts).
 *
 * This module holds the in-flight probes (at most PROBE_SLOTS) and writes the probe segments;
 * the director sends them and hands replies back (Director.probe, Director.probeReply).
 */
import { writeIpv4, IP_F_DF } from '../wire/ipv4.js';
import { rd16, rd32, wr16, wr32 } from '../wire/bytes.js';
import { TCP_ACKF as TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcpOption } from '../wire/l4.js';
import { ipToString as ipString } from '../model/addr.js';
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
  /** TCP: a byte stream both ways (SSL_GET's TLS): the server's bytes go to the sink as they come
   * (no `reply`), the sink's writer sends more. */
  stream?: ProbeSink;
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
  /** Sends slot s's TCP segment (flags, seq; ack and payload with TCP_ACK) its target's way, at once
   * with `now`, else with the batch being processed; 0 or a drop reason. Set by the director. */
  send: (s: number, flags: number, seq: number, now: boolean, ack?: number, payload?: Uint8Array) => number = () => 0;
  private next = 0;
  private readonly busy = new Uint8Array(PROBE_SLOTS);
  /** Initial sequence number of the probe in each slot. */
  readonly iss = new Uint32Array(PROBE_SLOTS);
  /** Source address (the director's, toward the real server), VIP and port, as u32 / port. */
  readonly src = new Uint32Array(PROBE_SLOTS);
  readonly targets: (ProbeTarget | null)[] = new Array<ProbeTarget | null>(PROBE_SLOTS).fill(null);
  /** TCP probes with a request or a stream: the connection's state. */
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
    this.streams[s] = t.request !== undefined || t.stream !== undefined ? new ProbeStream(iss, t.request) : null;
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

  /** The writer of stream probe s (its sink's open() gets it); inert once that probe is over. */
  writer(s: number): ProbeWriter {
    const st = this.streams[s];
    const live = (): boolean => st !== null && st !== undefined && this.busy[s] === 1 && this.streams[s] === st;
    return {
      write: (b) => {
        if (!live() || b.length === 0) return;
        st!.out = st!.out.length === 0 ? Buffer.from(b) : Buffer.concat([st!.out, b]);
        if (st!.established) this.transmit(s, st!, true);
      },
      abort: (detail) => {
        if (!live()) return;
        this.send(s, TCP_RST, st!.sndNxt, true);
        this.finish(s, { ok: false, detail });
      },
    };
  }

  /**
   * A segment from the server to stream probe s: `len` payload bytes at l4 + doff, `flags`.
   * `via` names the path for the result's detail.
   */
  tcpInput(s: number, b: Uint8Array, l4: number, doff: number, len: number, flags: number, via: string): void {
    const st = this.streams[s]!;
    const t = this.targets[s]!;
    const from = `${ipString(t.vip)}:${t.vport} via ${via}`;
    const iss = this.iss[s]!;
    const seq = rd32(b, l4 + 4) >>> 0;
    const ack = rd32(b, l4 + 8) >>> 0;
    if ((flags & TCP_RST) !== 0) {
      // Before the SYN-ACK only a RST acknowledging the SYN counts (RFC 793); after it, one in the window.
      const d = (seq - st.rcvNxt) | 0;
      if (!st.established ? (flags & TCP_ACK) !== 0 && ack === ((iss + 1) >>> 0) : d >= 0 && d < PROBE_WINDOW) {
        this.finish(s, { ok: false, detail: `${st.established ? 'connection reset' : 'connection refused'} (RST from ${from})` });
      }
      return;
    }
    if ((flags & TCP_ACK) === 0) return;
    const wnd = rd16(b, l4 + 14);
    if ((flags & TCP_SYN) !== 0) {
      if (ack !== ((iss + 1) >>> 0)) return;
      if (!st.established) {
        st.established = true;
        st.rcvNxt = (seq + 1) >>> 0;
        const o = tcpOption(b, l4 + 20, l4 + doff, 2, 4);
        st.mss = Math.max(64, Math.min(o < 0 ? 536 : rd16(b, o + 2), PROBE_PAYLOAD_MAX));
      }
      st.wnd = wnd;
      // Our first bytes (again, if this SYN-ACK is a retransmission: our ACK was lost), or an ACK.
      st.sndNxt = st.sndUna;
      if (st.timer !== null) { clearTimeout(st.timer); st.timer = null; }
      if (st.out.length === 0) this.send(s, TCP_ACK, st.sndNxt, true, st.rcvNxt);
      else this.transmit(s, st, true);
      return;
    }
    if (!st.established) return;
    const acked = (ack - st.sndUna) | 0;
    if (acked > 0 && ((ack - st.sndNxt) | 0) <= 0) {
      st.out = st.out.subarray(acked);
      st.sndUna = ack;
      st.retries = 0;
      if (st.timer !== null) { clearTimeout(st.timer); st.timer = null; }
    }
    st.wnd = wnd;
    if (st.out.length > ((st.sndNxt - st.sndUna) >>> 0)) this.transmit(s, st, false);
    else if (st.sndNxt !== st.sndUna && st.timer === null) this.arm(s, st);
    const fin = (flags & TCP_FIN) !== 0;
    if (len <= 0 && !fin) return;
    if (seq === st.rcvNxt) {
      if (len > 0) {
        const chunk = Buffer.from(b.subarray(l4 + doff, l4 + doff + len));
        st.bytes += len;
        st.rcvNxt = (st.rcvNxt + len) >>> 0;
        const max = t.maxReply ?? 1 << 20;
        if (st.bytes > max) {
          this.send(s, TCP_RST, st.sndNxt, false);
          this.finish(s, { ok: false, detail: `reply over ${max} bytes from ${from}` });
          return;
        }
        if (t.stream !== undefined) t.stream.data(chunk);
        else st.chunks.push(chunk);
        // The sink may have ended the probe (a checker that has seen enough).
        if (this.streams[s] !== st) return;
      }
      if (fin) {
        // The whole reply: uvs resets the connection rather than closing its half.
        this.send(s, TCP_RST, st.sndNxt, false);
        t.stream?.end();
        this.finish(s, { ok: true, detail: `${st.bytes} bytes from ${from}`, ...(t.stream === undefined ? { reply: Buffer.concat(st.chunks) } : {}) });
        return;
      }
    }
    // Acknowledge what came in order (a duplicate ACK for anything else: the server resends).
    this.send(s, TCP_ACK, st.sndNxt, false, st.rcvNxt);
  }

  /** Sends stream s's unsent bytes within the server's window, in segments of its MSS; arms the
   * retransmission while any are unacknowledged. */
  private transmit(s: number, st: ProbeStream, now: boolean): void {
    let inflight = (st.sndNxt - st.sndUna) >>> 0;
    while (inflight < st.out.length && inflight < st.wnd) {
      const n = Math.min(st.mss, st.out.length - inflight, st.wnd - inflight);
      this.send(s, TCP_ACK | TCP_PSH, st.sndNxt, now, st.rcvNxt, st.out.subarray(inflight, inflight + n));
      st.sndNxt = (st.sndNxt + n) >>> 0;
      inflight += n;
    }
    if (inflight > 0 && st.timer === null) this.arm(s, st);
  }

  /** Retransmission: from the first unacknowledged byte after PROBE_RTO_MS, doubling, at most
   * PROBE_REQUEST_RETRIES times without progress (then the probe's timeout ends it). */
  private arm(s: number, st: ProbeStream): void {
    if (st.retries >= PROBE_REQUEST_RETRIES) return;
    st.timer = setTimeout(() => {
      st.timer = null;
      if (this.busy[s] !== 1 || this.streams[s] !== st || st.sndNxt === st.sndUna) return;
      st.retries++;
      st.sndNxt = st.sndUna;
      this.transmit(s, st, true);
    }, PROBE_RTO_MS << st.retries);
    st.timer.unref?.();
  }
}

/** Where a stream probe's bytes go (probe-socket.ts turns it into a node Duplex). */
export interface ProbeSink {
  /** Called once the SYN is out, with the writer of this probe. */
  open(w: ProbeWriter): void;
  /** The server's bytes, in order. */
  data(b: Buffer): void;
  /** The server's FIN, after all its data (the probe then resolves ok). */
  end(): void;
}

export interface ProbeWriter {
  /** Sends b after what was written before (queued until the connection is up). */
  write(b: Uint8Array): void;
  /** Resets the connection and fails the probe with `detail`. */
  abort(detail: string): void;
}

/** A TCP probe's connection (sequence numbers as u32). */
export class ProbeStream {
  established = false;
  /** The next byte expected from the server. */
  rcvNxt = 0;
  /** The first byte not yet acknowledged, and the next one to send. */
  sndUna: number;
  sndNxt: number;
  /** The bytes from sndUna on: unacknowledged, then not yet sent. */
  out: Buffer;
  /** The server's MSS (capped at PROBE_PAYLOAD_MAX) and window. */
  mss = 536;
  wnd = 0;
  /** Bytes taken from the server; kept in `chunks` unless they go to a sink. */
  bytes = 0;
  readonly chunks: Buffer[] = [];
  /** Retransmissions since the last progress, and the timer of the next one. */
  retries = 0;
  timer: ReturnType<typeof setTimeout> | null = null;

  constructor(iss: number, first?: Uint8Array) {
    this.sndUna = this.sndNxt = (iss + 1) >>> 0;
    this.out = first === undefined ? Buffer.alloc(0) : Buffer.from(first);
  }
}

/** A TCP probe's unacknowledged bytes are sent again after 200, 400, 800 ms …, 5 times at most without progress. */
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

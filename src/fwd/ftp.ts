/**
 * ftp — the FTP helper of NAT services (K ip_vs_ftp, "modprobe ip_vs_ftp"): without it an FTP
 * server behind a NAT director tells the client to open its passive data connection to the real
 * server's private address, and the server's active data connection from port 20 matches no conn.
 * Bound, as the kernel binds it (tcp_app_conn_bind), to every TCP conn of a NAT (masquerading) real
 * server whose virtual port is one of the FTP ports (uvsd --ftp-ports, default 21, the module's
 * `ports=` parameter); DR and TUN need no helper (persistence, the port-21 template with port 0,
 * sends the data connection to the same server).
 *
 * Client → server (control conn in ESTABLISHED, K ip_vs_ftp_in):
 *   "PASV\r\n" anywhere in the segment, or "EPSV\r\n" / "EPSV 1\r\n": the next reply is watched;
 *   "PORT h1,h2,h3,h4,p1,p2" / "EPRT |1|a.b.c.d|port|" at the start of the segment: a conn is made
 *   for the server's active data connection, <client addr:port from the command> ↔ <VIP:vport − 1>
 *   ⇒ <RIP:dport − 1> (port 20 for 21), in LISTEN (2 min), controlled by the control conn.
 * Server → client (after "PASV"/"EPSV", K ip_vs_ftp_out):
 *   "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)" / "229 … (|||port|)" at the start of the
 *   segment: a conn is made for the client's data connection, <client:any port> ↔ <VIP:port> ⇒
 *   <address in the reply:port> (CF_NO_CPORT: the client's first packet fills its port in), in
 *   LISTEN, controlled by the control conn; the reply is rewritten to the VIP
 *   ("192,168,10,100,p1,p2"; "|||port|").
 * The rewrite changes the segment's length, so from then on the server's seqs move by the sum of
 * the changes and the client's acks and SACK edges move back (K ip_vs_app vs_fix_seq /
 * vs_fix_ack_seq: segments at or before the last rewritten one use the delta before it). Unlike the
 * kernel, a retransmission of the rewritten reply is rewritten again the same way (the kernel
 * watches only the first reply after the command and lets a retransmission through unrewritten).
 * A controlling conn does not expire while its data conns live (ConnTable nControl).
 *
 * Segments with data on these conns have their TCP checksum checked first (K tcp_csum_check; a bad
 * one is dropped, `ftp-bad-checksum`); a rewritten segment's checksum is computed anew (a partial
 * one from a local sender stays partial: only the length in its pseudo-header sum changes). Per-conn
 * state lives in typed side tables made with the first FTP conn; nothing allocates per packet.
 */
import type { Packet } from '../packet/packet.js';
import type { Dest } from '../model/dest.js';
import { rd32Bits } from '../wire/bytes.js';
import { l4ChecksumOk } from '../wire/checksum.js';
import { IP_F_MF, IP_OFFMASK } from '../wire/ipv4.js';
import { TCP_ACK, TCP_ACKF, TCP_MIN_HLEN, TCP_RST, TCP_SEQ, TCP_SYN, tcpOption } from '../wire/l4.js';
import { CF_NO_CPORT, type ConnTable } from '../conn/conn-table.js';
import { TCP_S_ESTABLISHED } from '../conn/tcp-state.js';
import { D_CONN_FULL, D_FTP_BAD_CSUM } from '../pipeline/drops.js';
import { IPPROTO_TCP } from '../model/constants.js';
import type { FwdContext } from './forwarder.js';
import { set32, tcpResized } from './tcp-edit.js';

/** K IP_VS_FTP_* (what the control conn waits for). */
const M_ACTIVE = 0, M_PASV = 1, M_EPSV = 3;
/** Mode byte flag: the seq delta state is set (the kernel's init_seq != 0). */
const M_SEQ = 0x80;

/** Counted events (uvs_ftp_total{event}); the data conns they expect. */
export const FTP_EV_PASV = 0, FTP_EV_EPSV = 1, FTP_EV_PORT = 2, FTP_EV_EPRT = 3;
export const FTP_EVENTS = ['pasv_reply', 'epsv_reply', 'port_command', 'eprt_command'] as const;

/** What the last inbound/outbound call did, for the tracer: an FTP_* event or -1. */
export const ftpLast = { event: -1, data: -1, diff: 0, rewritten: false, seqMoved: 0, ackMoved: 0 };

/** Result of ftpAddrPort (module scratch: no allocation). */
export const ftpParsed = { addr: 0, port: 0, start: 0, end: 0 };

const lower = (x: number): number => (x >= 65 && x <= 90 ? x | 0x20 : x);
const isDigit = (x: number): boolean => x >= 48 && x <= 57;

/** Case-insensitive compare of b[at..] with the ASCII pattern (n bytes). */
function matchAt(b: Uint8Array, at: number, pat: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (lower(b[at + i]!) !== lower(pat[i]!)) return false;
  return true;
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const S_227 = ascii('227 '), S_229 = ascii('229 '), S_PORT = ascii('PORT'), S_EPRT = ascii('EPRT');
const S_PASV = ascii('PASV\r\n'), S_EPSV = ascii('EPSV');

/**
 * K ip_vs_ftp_get_addrport: b[data, limit) starts with `pat` (case-insensitive); after it, `skip`
 * characters ('(' or ' ') are passed over; then either the old form "h1,h2,h3,h4,p1,p2" (a digit
 * may start it without any skip character) or, `ext`, RFC 2428's "<d>1<d>a.b.c.d<d>port<d>"
 * (`epsv`: "<d><d><d>port<d>", the address left as ftpParsed.addr was preset). Returns 1 with
 * ftpParsed set (start/end: the bytes a rewrite replaces), 0 when the pattern does not match, -1
 * when it matches but the rest is partial or malformed.
 */
export function ftpAddrPort(b: Uint8Array, data: number, limit: number, pat: Uint8Array, skip: number, ext: boolean, epsv: boolean): number {
  const plen = pat.length;
  if (limit - data < plen) return limit > data && matchAt(b, data, pat, limit - data) ? -1 : 0;
  if (!matchAt(b, data, pat, plen)) return 0;
  let s = data + plen;
  if (skip !== 0) {
    let found = false;
    for (;; s++) {
      if (s === limit) return -1;
      const ch = b[s]!;
      if (!found) {
        if (!ext && isDigit(ch)) break; // "(" is optional in the old form
        if (ch === skip) found = true;
      } else if (ch !== skip) break;
    }
  }
  if (!ext) {
    let i = 0;
    let v = 0;
    let a = 0;
    let port = 0;
    let e = s;
    for (; ; e++) {
      if (e === limit) return -1;
      const ch = b[e]!;
      if (isDigit(ch)) {
        v = v * 10 + ch - 48;
        if (v > 255) return -1;
      } else if (ch === 0x2c && i < 5) {
        if (i < 4) a = ((a << 8) | v) >>> 0; else port = v << 8;
        i++;
        v = 0;
      } else break; // terminator (or an unexpected character)
    }
    if (i !== 5) return -1;
    ftpParsed.addr = a;
    ftpParsed.port = port | v;
    ftpParsed.start = s;
    ftpParsed.end = e;
    return 1;
  }
  if (s === limit) return -1;
  ftpParsed.start = s;
  const d = b[s++]!;
  if (d < 33 || d > 126) return -1;
  if (s === limit) return -1;
  if (b[s] === d) {
    if (!epsv) return -1; // only an EPSV reply may leave the family and address out
    s++;
    if (s === limit || b[s] !== d) return -1;
    s++;
  } else {
    if (b[s] !== 0x31) return -1; // "1": IPv4
    s++;
    if (s === limit || b[s] !== d) return -1;
    s++;
    // in4_pton: four decimal octets, then the delimiter.
    let a = 0;
    for (let k = 0; k < 4; k++) {
      let v = 0;
      let n = 0;
      while (s < limit && isDigit(b[s]!)) { v = v * 10 + b[s]! - 48; n++; s++; if (v > 255 || n > 3) return -1; }
      if (n === 0 || s === limit) return -1;
      a = ((a << 8) | v) >>> 0;
      if (k < 3) { if (b[s] !== 0x2e) return -1; s++; }
    }
    if (b[s] !== d) return -1;
    s++;
    ftpParsed.addr = a;
  }
  let port = 0;
  for (; ; s++) {
    if (s === limit) return -1;
    if (!isDigit(b[s]!)) break;
    port = port * 10 + b[s]! - 48;
    if (port > 65535) return -1;
  }
  if (port === 0 || b[s] !== d) return -1;
  ftpParsed.port = port;
  ftpParsed.end = s + 1;
  return 1;
}

/** after(a, b) of sequence numbers (int32 bits). */
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;

/** Decimal digits of n into out at o; returns the new end. */
function putDec(out: Uint8Array, o: number, n: number): number {
  if (n >= 10) o = putDec(out, o, (n / 10) | 0);
  out[o] = 48 + (n % 10);
  return o + 1;
}

/** The FTP helper of a director: per-conn state and counters. */
export class FtpHelper {
  /** Virtual ports the helper binds to (K ip_vs_ftp `ports`; uvsd --ftp-ports). */
  ports: number[] = [21];
  readonly counts = new Float64Array(FTP_EVENTS.length);
  /** Per conn: mode (M_*, | M_SEQ), and the kernel's out_seq {init_seq, delta, previous_delta}. */
  private mode: Uint8Array | null = null;
  private init: Int32Array | null = null;
  private delta: Int32Array | null = null;
  private prev: Int32Array | null = null;
  /** Raw seq and mode of the last rewritten reply (a retransmission of it is rewritten again). */
  private rexSeq: Int32Array | null = null;
  private rexMode: Uint8Array | null = null;
  private readonly text = new Uint8Array(32);

  /** True when the helper binds to conns whose virtual port is vport. */
  bindsTo(vport: number): boolean {
    const ps = this.ports;
    for (let i = 0; i < ps.length; i++) if (ps[i] === vport) return true;
    return false;
  }

  /** Binds the helper to new NAT conn c (K ip_vs_bind_app → ip_vs_ftp_init_conn). */
  bind(conns: ConnTable, c: number): void {
    if (this.mode === null || this.mode.length !== conns.capacity) {
      const n = conns.capacity;
      this.mode = new Uint8Array(n);
      this.init = new Int32Array(n);
      this.delta = new Int32Array(n);
      this.prev = new Int32Array(n);
      this.rexSeq = new Int32Array(n);
      this.rexMode = new Uint8Array(n);
    }
    this.reset(c);
    conns.setAppFtp(c);
  }

  /** Conn c's state as at the start of a stream. */
  private reset(c: number): void {
    this.mode![c] = M_ACTIVE;
    this.delta![c] = 0;
    this.prev![c] = 0;
    this.rexMode![c] = M_ACTIVE;
  }

  /**
   * Connection sync (master): conn c's out_seq into a record's IPVS_OPT_SEQ_DATA fields (hasSeq 0
   * while no rewrite changed its stream's length).
   */
  fillSync(c: number, r: { hasSeq: number; seqInit: number; seqDelta: number; seqPrev: number }): void {
    if (this.mode === null || (this.mode[c]! & M_SEQ) === 0) { r.hasSeq = 0; return; }
    r.hasSeq = 1;
    r.seqInit = this.init![c]!;
    r.seqDelta = this.delta![c]!;
    r.seqPrev = this.prev![c]!;
  }

  /** Connection sync (backup): the master's out_seq for conn c, which the helper is bound to. */
  applySync(c: number, init: number, delta: number, prev: number): void {
    if (this.mode === null) return;
    this.init![c] = init;
    this.delta![c] = delta;
    this.prev![c] = prev;
    this.mode[c] = this.mode[c]! | M_SEQ;
  }

  /**
   * Start of inbound/outbound: clears what the tracer reads; returns p's TCP header length, or 0
   * when there is nothing to do (no FTP conn yet, a header length the segment cannot hold).
   */
  private begin(p: Packet): number {
    ftpLast.event = -1;
    ftpLast.ackMoved = 0;
    ftpLast.seqMoved = 0;
    ftpLast.rewritten = false;
    if (this.mode === null) return 0;
    const doff = (p.b[p.l4 + 12]! >>> 4) << 2;
    return doff < TCP_MIN_HLEN || doff > p.l4len ? 0 : doff;
  }

  /** The ack and SACK edges of a client → server segment moved back by the rewrites (K vs_fix_ack_seq). */
  private fixAck(p: Packet, c: number): void {
    const d = this.delta![c]!, pd = this.prev![c]!;
    if ((d === 0 && pd === 0) || (p.tcpFlags & TCP_ACKF) === 0) return;
    const b = p.b, l4 = p.l4;
    const edge = (this.init![c]! + d) | 0;
    const ack = rd32Bits(b, l4 + TCP_ACK);
    set32(p, l4 + TCP_ACK, (ack - (after(ack, edge) ? d : pd)) | 0);
    ftpLast.ackMoved = after(ack, edge) ? d : pd;
    const o = tcpOption(b, l4 + TCP_MIN_HLEN, l4 + ((b[l4 + 12]! >>> 4) << 2), 5, 0);
    if (o < 0) return;
    const l = b[o + 1]!;
    if (l >= 10 && ((l - 2) & 7) === 0) {
      for (let e = o + 2; e < o + l; e += 4) {
        const v = rd32Bits(b, e);
        set32(p, e, (v - (after(v, edge) ? d : pd)) | 0);
      }
    }
  }

  /**
   * A client → server segment of control conn c (dest: its real server), before the NAT rewrite.
   * Returns 0 or a drop reason.
   */
  inbound(p: Packet, c: number, dest: Dest, ctx: FwdContext, now: number): number {
    const doff = this.begin(p);
    if (doff === 0) return 0;
    const t = ctx.conns;
    const b = p.b;
    const l4 = p.l4;
    // A new SYN on the tuple (a conn reused with conn_reuse_mode=0): a new stream, nothing moved yet.
    if ((p.tcpFlags & (TCP_SYN | TCP_ACKF)) === TCP_SYN) this.reset(c);
    if ((this.mode![c]! & M_SEQ) !== 0) this.fixAck(p, c);
    const data = l4 + doff;
    const limit = l4 + p.l4len;
    // (An IP fragment's text may be cut: left alone, as anything without data.)
    if (data >= limit || t.state(c) !== TCP_S_ESTABLISHED || (p.tcpFlags & (TCP_SYN | TCP_RST)) !== 0 ||
      (p.frag & (IP_F_MF | IP_OFFMASK)) !== 0) return 0;
    if (!p.csumPartial && !l4ChecksumOk(b, p.saddr | 0, p.daddr | 0, IPPROTO_TCP, l4, p.l4len)) return D_FTP_BAD_CSUM;
    const m = this.mode!;
    for (let s = data; s <= limit - 6; s++) {
      if (matchAt(b, s, S_PASV, 6)) { m[c] = (m[c]! & M_SEQ) | M_PASV; return 0; }
      if (matchAt(b, s, S_EPSV, 4) && (b[s + 4] === 0x20 || b[s + 4] === 0x0d)) {
        // "EPSV" or "EPSV 1" (IPv4); "EPSV ALL", "EPSV 2" are left alone.
        if (b[s + 4] === 0x20 && (s > limit - 7 || b[s + 5] !== 0x31 || b[s + 6] !== 0x0d)) return 0;
        m[c] = (m[c]! & M_SEQ) | M_EPSV;
        return 0;
      }
    }
    let ev = FTP_EV_PORT;
    if (ftpAddrPort(b, data, limit, S_PORT, 0x20, false, false) !== 1) {
      if (ftpAddrPort(b, data, limit, S_EPRT, 0x20, true, false) !== 1) return 0;
      ev = FTP_EV_EPRT;
    }
    m[c] = (m[c]! & M_SEQ) | M_ACTIVE;
    // The server's active data connection: <client addr:port> ↔ <VIP:vport − 1> ⇒ <RIP:dport − 1>.
    const to = ftpParsed.addr | 0, port = ftpParsed.port;
    const vport = (t.vport(c) - 1) & 0xffff;
    const ref = t.lookup(IPPROTO_TCP, to, port, t.vaddrBits(c), vport);
    let n = ref >= 0 && (ref & 1) === 0 ? ref >> 1 : -1;
    if (n < 0) {
      n = t.create(IPPROTO_TCP, to, port, t.vaddrBits(c), vport, t.daddrBits(c), (t.dport(c) - 1) & 0xffff, 0, 0, dest, t.svcId(c), c, now, 0);
      if (n < 0) return D_CONN_FULL;
    }
    t.setListen(n, now);
    this.counts[ev]++;
    ftpLast.event = ev;
    ftpLast.data = n;
    return 0;
  }

  /**
   * A server → client segment of control conn c, before the NAT rewrite (its source is still the
   * real server). Returns 0 or a drop reason.
   */
  outbound(p: Packet, c: number, dest: Dest, ctx: FwdContext, now: number): number {
    const doff = this.begin(p);
    if (doff === 0) return 0;
    const t = ctx.conns;
    const b = p.b;
    const l4 = p.l4;
    const m = this.mode!;
    const mc = m[c]!;
    const seq = rd32Bits(b, l4 + TCP_SEQ);
    if ((mc & M_SEQ) !== 0) {
      // K vs_fix_seq: after the last rewritten segment the whole delta, up to it the one before.
      const d = after(seq, this.init![c]!) ? this.delta![c]! : this.prev![c]!;
      if (d !== 0) set32(p, l4 + TCP_SEQ, (seq + d) | 0);
      ftpLast.seqMoved = d;
    }
    const data = l4 + doff;
    const limit = l4 + p.l4len;
    if (data >= limit || t.state(c) !== TCP_S_ESTABLISHED || (p.tcpFlags & (TCP_SYN | TCP_RST)) !== 0 ||
      (p.frag & (IP_F_MF | IP_OFFMASK)) !== 0) return 0;
    let want = mc & ~M_SEQ;
    if (want === M_ACTIVE && this.rexSeq![c] === seq) want = this.rexMode![c]!;
    if (want === M_ACTIVE) return 0;
    if (!p.csumPartial && !l4ChecksumOk(b, p.saddr | 0, p.daddr | 0, IPPROTO_TCP, l4, p.l4len)) return D_FTP_BAD_CSUM;
    let r: number;
    if (want === M_PASV) r = ftpAddrPort(b, data, limit, S_227, 0x28, false, false);
    else {
      ftpParsed.addr = t.daddr(c); // an EPSV reply names no address: the real server's
      r = ftpAddrPort(b, data, limit, S_229, 0x28, true, true);
    }
    if (r !== 1) return 0;
    const from = ftpParsed.addr | 0, port = ftpParsed.port;
    const start = ftpParsed.start, end = ftpParsed.end;
    // The client's passive data connection: <client:any> ↔ <VIP:port> ⇒ <from:port>.
    const ref = t.lookup(IPPROTO_TCP, from, port, t.caddrBits(c), 0);
    let n = ref >= 0 && (ref & 1) === 1 ? ref >> 1 : -1;
    if (n < 0) {
      n = t.create(IPPROTO_TCP, t.caddrBits(c), 0, t.vaddrBits(c), port, from, port, 0, 0, dest, t.svcId(c), c, now, CF_NO_CPORT);
      if (n < 0) return D_CONN_FULL;
    }
    // The reply names the VIP (and the same port).
    const out = this.text;
    let o = 0;
    if (want === M_PASV) {
      const v = t.vaddr(n);
      o = putDec(out, o, v >>> 24); out[o++] = 0x2c;
      o = putDec(out, o, (v >>> 16) & 0xff); out[o++] = 0x2c;
      o = putDec(out, o, (v >>> 8) & 0xff); out[o++] = 0x2c;
      o = putDec(out, o, v & 0xff); out[o++] = 0x2c;
      o = putDec(out, o, t.vport(n) >>> 8); out[o++] = 0x2c;
      o = putDec(out, o, t.vport(n) & 0xff);
    } else {
      out[0] = 0x7c; out[1] = 0x7c; out[2] = 0x7c;
      o = putDec(out, 3, t.vport(n));
      out[o++] = 0x7c;
    }
    const diff = o - (end - start);
    if (!this.rewrite(p, start, end, o)) return 0; // no headroom: left as it is
    if (diff !== 0 && ((mc & M_SEQ) === 0 || after(seq, this.init![c]!))) {
      // K vs_seq_update
      this.prev![c] = this.delta![c]!;
      this.delta![c] = (this.delta![c]! + diff) | 0;
      this.init![c] = seq;
      m[c] = mc | M_SEQ;
    }
    this.rexSeq![c] = seq;
    this.rexMode![c] = want;
    m[c] = (m[c]! & M_SEQ) | M_ACTIVE;
    t.setListen(n, now);
    const ev = want === M_PASV ? FTP_EV_PASV : FTP_EV_EPSV;
    this.counts[ev]++;
    ftpLast.event = ev;
    ftpLast.data = n;
    ftpLast.diff = diff;
    ftpLast.rewritten = true;
    return 0;
  }

  /**
   * Replaces b[start, end) of p with this.text[0, len): the bytes in front move (the headroom takes
   * a longer text), lengths and checksums follow. False (nothing changed) without the room.
   */
  private rewrite(p: Packet, start: number, end: number, len: number): boolean {
    const diff = len - (end - start);
    const f0 = p.off;
    if ((diff > 0 && f0 - p.arena.slotStart(p.slot) < diff) || p.ipLen + diff > 0xffff) return false;
    const b = p.b;
    if (diff !== 0) {
      b.copyWithin(f0 - diff, f0, start);
      p.off = f0 - diff;
      p.len += diff;
      p.l3 -= diff;
      p.l4 -= diff;
    }
    const text = this.text;
    const at = end - len;
    for (let i = 0; i < len; i++) b[at + i] = text[i]!;
    p.ipLen += diff;
    p.l4len += diff;
    tcpResized(p, p.l4len - diff);
    return true;
  }
}

/**
 * StepTracer — the real Tracer: follows the packets a filter selects through every stage of
 * the director and turns each one's walk into a TraceEvent (plain JSON, stable field names),
 * which renderEvent() prints as text, stage by stage:
 *
 *   #1 conn #0 client→server  in eth0  02:00:00:00:00:aa → 02:00:00:00:00:01  192.168.10.6:40000 → 192.168.10.110:80 TCP [S] …
 *     parse     Ethernet → IPv4 (40 bytes, ip-csum 0x… ok) → TCP (tcp-csum 0x… ok)
 *     classify  service TCP 192.168.10.110:80 (wrr)
 *     schedule  wrr: cw=3 mw=3 … → 10.0.0.17:8080
 *     track     new conn #0 … (NAT)
 *     state     NONE → SYN_RECV (timeout 60s)
 *     forward   nat
 *                 before  192.168.10.6:40000 → 192.168.10.110:80  ttl 64  ip-csum 0x…  tcp-csum 0x…
 *                 after   192.168.10.6:40000 → 10.0.0.17:8080  ttl 63  ip-csum 0x…  tcp-csum 0x…
 *                 changed dst 192.168.10.110 → 10.0.0.17, dport 80 → 8080, ttl 64 → 63, ip-csum, tcp-csum
 *     route     to 10.0.0.17 via connected on eth1, next hop 10.0.0.17 is-at 02:00:00:00:01:17
 *     out       eth1  02:00:00:00:00:02 → 02:00:00:00:01:17  192.168.10.6:40000 → 10.0.0.17:8080 TCP [S] …
 *
 * Promises:
 * - begin() decodes the frame and applies the filter; a packet that does not match is still
 *   traced when it belongs to a conn an earlier traced packet created or used, so a reply is
 *   shown with its request (same conn id) whatever the filter says about the reply's addresses.
 * - Everything here allocates freely: it only runs while tracing is on (`director.tracer.on`);
 *   with tracing off the director pays one boolean test per packet.
 * - Events go to listeners at end(): text (attach.ts), pino JSON, pcapng (pcapng.ts), the
 *   control-socket stream (attach.ts TraceStream), tests.
 * - No wall-clock time appears in the text: with a fake clock and a fixed conn hash seed the
 *   text of a scenario is the same on every run (golden tests rely on it). `at` (wall-clock ms)
 *   is only in the JSON and pcapng.
 *
 * See also: tracer.ts (the interface the stages call), describe.ts, filter.ts, attach.ts.
 */
import type { Packet } from '../packet/packet.js';
import type { Tracer } from './tracer.js';
import { decodeFrame, describeFrame, describePacket, endpoint, tunnelText, type FrameView, type IpView } from './describe.js';
import { compileFilter, MatchView, type FramePredicate } from './filter.js';
import { CF_FWD_MASK } from '../conn/conn-table.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL } from '../model/constants.js';

export interface TraceStep {
  stage: string;
  text: string;
}

/** One traced packet's walk. Field names are stable (tools read the JSON form). */
export interface TraceEvent {
  /** Sequence number of traced packets, from 1. */
  id: number;
  /** When the packet entered: wall-clock ms since 1970 (clock time + the clock's epochMs; with a
   * fake clock, its own time). */
  at: number;
  /** Conn index (as in the trace's "conn #N"), -1 when the packet has none. */
  conn: number;
  /** 'in' = client→server, 'out' = server→client (reply), '' = no conn. */
  dir: 'in' | 'out' | '';
  /** Forwarding method of the conn: 'NAT' | 'DR' | 'TUN' | 'FULLNAT' | ''. */
  method: string;
  /** Conn state after this packet ('' without a conn). */
  state: string;
  inPort: string;
  frameIn: FrameView;
  steps: TraceStep[];
  /** Headers just before / after the forwarding method rewrote the packet. */
  before?: FrameView;
  after?: FrameView;
  /** 'sent' (outPort set), 'drop' (reason), 'done' (consumed or left to the host: reason says which). */
  verdict: 'sent' | 'drop' | 'done';
  reason: string;
  outPort: string;
  frameOut?: FrameView;
  /** A remark for the reader, e.g. the DR/TUN reply path. */
  note?: string;
}

/** Raw bytes of a traced packet (for pcapng): the frame as received and as sent. */
export interface TraceFrames {
  in: Uint8Array;
  out?: Uint8Array;
}

export type TraceListener = (ev: TraceEvent, frames: TraceFrames) => void;

/** What the tracer reads from the director (structural, so this file does not import it). */
export interface TraceHost {
  clock: { now(): number; readonly epochMs?: number };
  conns: {
    lookup(proto: number, saddr: number, sport: number, daddr: number, dport: number): number;
    flags(idx: number): number;
    stateName(idx: number): string;
  };
}

export interface StepTracerOptions {
  /** pcap-filter-like expression (filter.ts); '' = every packet. */
  filter?: string;
  /** The director, to follow replies of traced conns and name the method and state. */
  host?: TraceHost;
}

export const REPLY_DIRECT_NOTE = 'reply goes directly from the real server to the client (not through the director)';

const METHOD_NAMES: Record<number, string> = { [FWD_MASQ]: 'NAT', [FWD_DROUTE]: 'DR', [FWD_TUNNEL]: 'TUN', [FWD_FULLNAT]: 'FULLNAT' };
/** Conns remembered for reply correlation; the oldest are forgotten beyond this. */
const MAX_TRACED_CONNS = 4096;

interface Current {
  slot: number;
  ev: TraceEvent;
  inBytes: Uint8Array;
}

export class StepTracer implements Tracer {
  /** Tracing is on while this tracer is installed; attach.ts swaps it in and out. */
  on = true;
  host: TraceHost | undefined;
  private readonly match: FramePredicate;
  private readonly mv = new MatchView();
  private readonly listeners: TraceListener[] = [];
  private readonly traced = new Set<number>();
  private cur: Current | null = null;
  private seq = 0;

  constructor(opts: StepTracerOptions = {}) {
    this.match = compileFilter(opts.filter);
    this.host = opts.host;
  }

  /** Adds a listener; returns a function removing it. */
  onEvent(fn: TraceListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  begin(p: Packet, portName: string): boolean {
    this.cur = null;
    const off = p.off;
    const len = p.len;
    const mv = this.mv.load(p.b, off, len);
    if (!this.match(mv) && !this.belongsToTracedConn(mv)) return false;
    const v = decodeFrame(p.b, off, len);
    this.cur = {
      slot: p.slot,
      inBytes: p.b.slice(off, off + len),
      ev: {
        id: ++this.seq, at: this.host ? this.host.clock.now() + (this.host.clock.epochMs ?? 0) : 0, conn: -1, dir: '', method: '', state: '',
        inPort: portName, frameIn: v, steps: [], verdict: 'done', reason: '', outPort: '',
      },
    };
    return true;
  }

  private belongsToTracedConn(v: MatchView): boolean {
    const h = this.host;
    if (h === undefined || this.traced.size === 0 || !v.hasPorts || v.hasOuter) return false;
    const ref = h.conns.lookup(v.proto, v.src, v.sport, v.dst, v.dport);
    return ref >= 0 && this.traced.has(ref >> 1);
  }

  step(p: Packet, stage: string, text: string): void {
    const c = this.cur;
    if (c === null || c.slot !== p.slot) return;
    c.ev.steps.push({ stage, text: stage === 'parse' && text === '' ? parseSummary(c.ev.frameIn) : text });
  }

  before(p: Packet): void {
    const c = this.cur;
    if (c !== null && c.slot === p.slot) c.ev.before = decodeFrame(p.b, p.off, p.len);
  }

  after(p: Packet): void {
    const c = this.cur;
    if (c !== null && c.slot === p.slot) c.ev.after = decodeFrame(p.b, p.off, p.len);
  }

  end(p: Packet, portName: string, drop: string): void {
    const c = this.cur;
    // dropPkt() reports every drop while tracing is on, traced or not (and generated ICMP
    // errors use other slots): only the packet begin() chose ends its event.
    if (c === null || c.slot !== p.slot) return;
    this.cur = null;
    const ev = c.ev;
    const frames: TraceFrames = { in: c.inBytes };
    if (p.conn >= 0) {
      ev.conn = p.conn;
      ev.dir = p.dir === 0 ? 'in' : 'out';
      const h = this.host;
      if (h) {
        ev.method = METHOD_NAMES[h.conns.flags(p.conn) & CF_FWD_MASK] ?? '';
        ev.state = h.conns.stateName(p.conn);
      }
      if (this.traced.size >= MAX_TRACED_CONNS) this.traced.delete(this.traced.values().next().value!);
      this.traced.add(p.conn);
    }
    if (p.drop !== 0) {
      ev.verdict = 'drop';
      ev.reason = drop;
    } else if (portName !== '') {
      ev.verdict = 'sent';
      ev.outPort = portName;
      const off = p.off;
      frames.out = p.b.slice(off, off + p.len);
      ev.frameOut = decodeFrame(frames.out, 0, frames.out.length);
      if (ev.dir === 'in' && (ev.method === 'DR' || ev.method === 'TUN')) ev.note = REPLY_DIRECT_NOTE;
    } else {
      ev.verdict = 'done';
      ev.reason = drop;
    }
    for (const fn of this.listeners) fn(ev, frames);
  }
}

// ------------------------------------------------------------------------------ rendering

export interface RenderOptions {
  /** ANSI colours (attach.ts decides: a TTY and NO_COLOR unset). */
  color?: boolean;
}

interface Paint {
  bold(s: string): string;
  stage(s: string): string;
  changed(s: string): string;
  bad(s: string): string;
  good(s: string): string;
  note(s: string): string;
  dim(s: string): string;
}

const sgr = (code: string) => (s: string): string => `\x1b[${code}m${s}\x1b[0m`;
const COLOR: Paint = { bold: sgr('1'), stage: sgr('36'), changed: sgr('1;33'), bad: sgr('1;31'), good: sgr('32'), note: sgr('35'), dim: sgr('2') };
const id = (s: string): string => s;
const PLAIN: Paint = { bold: id, stage: id, changed: id, bad: id, good: id, note: id, dim: id };

const STAGE_W = 9;
const INDENT = ' '.repeat(2 + STAGE_W + 1);

function parseSummary(v: FrameView): string {
  if (v.arp) return `Ethernet → ARP ${v.arp.op}`;
  const ip = v.ip;
  if (!ip) return `Ethernet, ethertype 0x${v.eth.type.toString(16).padStart(4, '0')}`;
  const fragPart = (x: IpView): string =>
    x.mf || x.fragOff !== 0 ? `, fragment at offset ${x.fragOff}${x.mf ? ', more follow' : ', the last'}` : '';
  const ipPart = (x: IpView): string => `IPv4 (${x.len} bytes${fragPart(x)}, ip-csum ${x.csum} ${x.csumOk ? 'ok' : 'BAD'})`;
  let s = 'Ethernet → ';
  if (v.outer) s += `${ipPart(v.outer)} → ${tunnelText(v)}${v.tunnel?.kind === 'GUE' ? ` (udp ${v.tunnel.sport} → ${v.tunnel.dport})` : ''} → `;
  s += ipPart(ip);
  const l4 = v.l4;
  // A first fragment's L4 checksum covers the whole datagram: it cannot be verified here.
  const unverified = ip.mf ? 'covers the whole datagram' : 'not verified (partial?)';
  if (l4) s += ` → ${l4.proto}${l4.csum ? ` (${l4.proto.toLowerCase()}-csum ${l4.csum} ${l4.csumOk ? 'ok' : unverified})` : ''}`;
  return s;
}

/** "a:p → b:q  ttl 63  id 0x1234  ip-csum 0x…  tcp-csum 0x…", fields differing from `ref` painted. */
function hdrLine(v: FrameView, ref: FrameView | undefined, c: Paint): string[] {
  const lines: string[] = [];
  const mark = (s: string, same: boolean): string => (same ? s : c.changed(s));
  if (v.outer) {
    const o = v.outer;
    const ro = ref?.outer;
    lines.push(`${mark(`outer ${o.saddr} → ${o.daddr} ${tunnelText(v)}`, ro !== undefined && ro.saddr === o.saddr && ro.daddr === o.daddr)}  ttl ${o.ttl}  id ${o.id}${o.df ? ' DF' : ''}  ip-csum ${o.csum}`);
  }
  const ip = v.ip;
  const l4 = v.l4;
  if (!ip) return [...lines, describeFrame(v)];
  const rip = ref?.ip;
  const rl4 = ref?.l4;
  const src = endpoint(ip.saddr, l4?.sport ?? 0, l4);
  const dst = endpoint(ip.daddr, l4?.dport ?? 0, l4);
  const rsrc = rip ? endpoint(rip.saddr, rl4?.sport ?? 0, rl4) : src;
  const rdst = rip ? endpoint(rip.daddr, rl4?.dport ?? 0, rl4) : dst;
  let s = `${v.outer ? 'inner ' : ''}${mark(src, src === rsrc)} → ${mark(dst, dst === rdst)}`;
  s += `  ${mark(`ttl ${ip.ttl}`, rip === undefined || rip.ttl === ip.ttl)}`;
  s += `  ${mark(`ip-csum ${ip.csum}`, rip === undefined || rip.csum === ip.csum)}`;
  if (l4?.csum) s += `  ${mark(`${l4.proto.toLowerCase()}-csum ${l4.csum}`, rl4 === undefined || rl4.csum === l4.csum)}`;
  lines.push(s);
  return lines;
}

/** What the rewrite changed, in words: "dst 192.168.10.110 → 10.0.0.17, dport 80 → 8080, …". */
function changes(a: FrameView, b: FrameView): string {
  const out: string[] = [];
  if (!a.outer && b.outer) out.push(`outer ${tunnelText(b)} header added (${b.outer.saddr} → ${b.outer.daddr}${b.tunnel?.kind === 'GUE' ? `, udp ${b.tunnel.sport} → ${b.tunnel.dport}` : ''})`);
  if (a.outer && !b.outer) out.push(`outer ${tunnelText(a)} header removed`);
  const x = a.ip;
  const y = b.ip;
  if (x && y) {
    if (x.saddr !== y.saddr) out.push(`src ${x.saddr} → ${y.saddr}`);
    if (a.l4 && b.l4 && a.l4.sport !== b.l4.sport) out.push(`sport ${a.l4.sport} → ${b.l4.sport}`);
    if (x.daddr !== y.daddr) out.push(`dst ${x.daddr} → ${y.daddr}`);
    if (a.l4 && b.l4 && a.l4.dport !== b.l4.dport) out.push(`dport ${a.l4.dport} → ${b.l4.dport}`);
    if (x.ttl !== y.ttl) out.push(`ttl ${x.ttl} → ${y.ttl}`);
    if (x.csum !== y.csum) out.push('ip-csum');
    if (a.l4?.csum && b.l4?.csum && a.l4.csum !== b.l4.csum) out.push(`${b.l4.proto.toLowerCase()}-csum`);
  }
  return out.length ? out.join(', ') : 'nothing in the IP/L4 headers';
}

function macChanges(a: FrameView, b: FrameView): string {
  const out: string[] = [];
  if (a.eth.src !== b.eth.src) out.push(`src mac ${a.eth.src} → ${b.eth.src}`);
  if (a.eth.dst !== b.eth.dst) out.push(`dst mac ${a.eth.dst} → ${b.eth.dst}`);
  return out.join(', ');
}

/** The text form of one event (multi-line, ends with a newline). */
export function renderEvent(ev: TraceEvent, opts: RenderOptions = {}): string {
  const c = opts.color ? COLOR : PLAIN;
  const lines: string[] = [];
  const conn = ev.conn >= 0 ? ` conn #${ev.conn} ${ev.dir === 'in' ? 'client→server' : 'server→client'}` : '';
  lines.push(c.bold(`#${ev.id}${conn}  in ${ev.inPort}  ${describeFrame(ev.frameIn)}`));
  const row = (stage: string, text: string, paint: (s: string) => string = c.stage): void => {
    lines.push(`  ${paint(stage.padEnd(STAGE_W))} ${text}`);
  };
  for (const st of ev.steps) {
    row(st.stage, st.text);
    if (st.stage === 'forward' && ev.before && ev.after) {
      const [b0, ...bRest] = hdrLine(ev.before, undefined, c);
      lines.push(`${INDENT}  ${c.dim('before')}  ${b0}`);
      for (const l of bRest) lines.push(`${INDENT}          ${l}`);
      const [a0, ...aRest] = hdrLine(ev.after, ev.before, c);
      lines.push(`${INDENT}  ${c.dim('after ')}  ${a0}`);
      for (const l of aRest) lines.push(`${INDENT}          ${l}`);
      lines.push(`${INDENT}  ${c.dim('changed')} ${changes(ev.before, ev.after)}`);
    }
  }
  if (ev.verdict === 'sent' && ev.frameOut) {
    const o = ev.frameOut;
    const macs = `${o.eth.src === ev.frameIn.eth.src ? o.eth.src : c.changed(o.eth.src)} → ${o.eth.dst === ev.frameIn.eth.dst ? o.eth.dst : c.changed(o.eth.dst)}`;
    row('out', `${ev.outPort}  ${macs}  ${describePacket(o)}`, c.good);
    const mc = macChanges(ev.frameIn, o);
    if (mc) lines.push(`${INDENT}(${mc})`);
  } else if (ev.verdict === 'drop') {
    row('drop', c.bad(ev.reason), c.bad);
  } else {
    row('done', ev.reason);
  }
  if (ev.note) row('note', c.note(ev.note), c.note);
  return lines.join('\n') + '\n';
}

/** renderEvent for one JSON line of the trace stream (TraceStream / `uvsadm trace`). */
export function renderEventLine(line: string, opts: RenderOptions = {}): string {
  return renderEvent(JSON.parse(line) as TraceEvent, opts);
}

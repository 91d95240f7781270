/**
 * filter — a small pcap-filter-like language choosing which packets the tracer follows.
 *
 *   expr    := and ('or' and)*                      ('||' too)
 *   and     := unary ('and' unary)*                 ('&&' too)
 *   unary   := ('not' | '!') unary | '(' expr ')' | prim
 *   prim    := [proto] [src|dst] (host ADDR | net ADDR/LEN | port N)
 *            | [src|dst] ADDR                       (host implied)
 *            | tcp | udp | icmp | arp | ip
 *
 * `host A` matches A as the IPv4 source or destination (ARP: sender or target address);
 * `port N` matches a TCP/UDP source or destination port; `tcp port 80` = `tcp and port 80`.
 * An empty expression matches everything. Errors are FilterError with the position.
 *
 * Example:
 *   const f = compileFilter('src host 192.168.10.6 and (port 80 or port 8080)');
 *   f(MatchView.of(frameBytes)) // true / false
 *
 * See also: step-tracer.ts (uses it in begin(), with one reused MatchView).
 */
import { tunnelInner } from './describe.js';
import { parseIp, prefixToMask } from '../model/addr.js';

/**
 * The numbers a filter looks at, read straight from the frame bytes by `MatchView.load` (no
 * strings, no allocation: one instance per tracer is reused for every packet, so an attached
 * tracer whose filter rejects a packet costs little more than reading its headers).
 */
export class MatchView {
  isIp = false;
  isArp = false;
  proto = 0;
  src = 0;
  dst = 0;
  /** A tunnel packet (IPIP, GUE, GRE): the outer header's addresses (src/dst are then the inner packet's). */
  hasOuter = false;
  osrc = 0;
  odst = 0;
  /** TCP/UDP ports present (first fragment or unfragmented). */
  hasPorts = false;
  sport = 0;
  dport = 0;

  /** Reads the frame at b[off, off+len); returns this. */
  load(b: Uint8Array, off: number, len: number): this {
    this.isIp = this.isArp = this.hasOuter = this.hasPorts = false;
    const end = Math.min(b.length, off + len);
    if (off + 14 > end) return this;
    const type = (b[off + 12]! << 8) | b[off + 13]!;
    let l3 = off + 14;
    if (type === 0x0806) {
      if (l3 + 28 > end) return this;
      this.isArp = true;
      this.src = rd32(b, l3 + 14);
      this.dst = rd32(b, l3 + 24);
      return this;
    }
    if (type !== 0x0800 || l3 + 20 > end || b[l3]! >> 4 !== 4) return this;
    this.isIp = true;
    this.proto = b[l3 + 9]!;
    this.src = rd32(b, l3 + 12);
    this.dst = rd32(b, l3 + 16);
    {
      const inner = tunnelInner(b, l3, end);
      if (inner >= 0) {
        this.hasOuter = true;
        this.osrc = this.src;
        this.odst = this.dst;
        this.proto = b[inner + 9]!;
        this.src = rd32(b, inner + 12);
        this.dst = rd32(b, inner + 16);
        l3 = inner;
      }
    }
    const frag = ((b[l3 + 6]! << 8) | b[l3 + 7]!) & 0x1fff;
    const l4 = l3 + (b[l3]! & 15) * 4;
    if ((this.proto === 6 || this.proto === 17) && frag === 0 && l4 + 4 <= end) {
      this.hasPorts = true;
      this.sport = (b[l4]! << 8) | b[l4 + 1]!;
      this.dport = (b[l4 + 2]! << 8) | b[l4 + 3]!;
    }
    return this;
  }

  /** A MatchView of a whole frame (tests, tools). */
  static of(b: Uint8Array): MatchView {
    return new MatchView().load(b, 0, b.length);
  }
}

const rd32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

export type FramePredicate = (v: MatchView) => boolean;

export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

interface Tok {
  t: string;
  at: number;
}

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s*(\(|\)|&&|\|\||!|[^\s()!]+)/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < s.length && (m = re.exec(s)) !== null) {
    if (m[1] === undefined) break;
    out.push({ t: m[1], at: m.index + m[0].length - m[1].length });
  }
  return out;
}

const PROTOS: Record<string, FramePredicate> = {
  tcp: (v) => v.isIp && v.proto === 6,
  udp: (v) => v.isIp && v.proto === 17,
  icmp: (v) => v.isIp && v.proto === 1,
  arp: (v) => v.isArp,
  ip: (v) => v.isIp,
};

type Side = 'src' | 'dst' | 'any';

/** Whether an address of the packet on `side` satisfies `ok` (ARP: sender/target address). */
function anyAddr(v: MatchView, side: Side, ok: (a: number) => boolean): boolean {
  if (!v.isIp && !v.isArp) return false;
  if (side !== 'dst' && (ok(v.src) || (v.hasOuter && ok(v.osrc)))) return true;
  if (side !== 'src' && (ok(v.dst) || (v.hasOuter && ok(v.odst)))) return true;
  return false;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[], private readonly src: string) {}

  parse(): FramePredicate {
    if (this.toks.length === 0) return () => true;
    const e = this.or();
    if (this.i < this.toks.length) this.fail(`unexpected "${this.toks[this.i]!.t}"`);
    return e;
  }

  private peek(): string | undefined {
    return this.toks[this.i]?.t.toLowerCase();
  }

  private fail(msg: string): never {
    const at = this.toks[this.i]?.at ?? this.src.length;
    throw new FilterError(`trace filter: ${msg} at position ${at + 1} in "${this.src}"`);
  }

  private or(): FramePredicate {
    let l = this.and();
    while (this.peek() === 'or' || this.peek() === '||') {
      this.i++;
      const a = l;
      const r = this.and();
      l = (v) => a(v) || r(v);
    }
    return l;
  }

  private and(): FramePredicate {
    let l = this.unary();
    while (this.peek() === 'and' || this.peek() === '&&') {
      this.i++;
      const a = l;
      const r = this.unary();
      l = (v) => a(v) && r(v);
    }
    return l;
  }

  private unary(): FramePredicate {
    const t = this.peek();
    if (t === undefined) this.fail('expression ends too early');
    if (t === 'not' || t === '!') {
      this.i++;
      const e = this.unary();
      return (v) => !e(v);
    }
    if (t === '(') {
      this.i++;
      const e = this.or();
      if (this.peek() !== ')') this.fail('expected ")"');
      this.i++;
      return e;
    }
    return this.prim();
  }

  private prim(): FramePredicate {
    let t = this.peek()!;
    let proto: FramePredicate | undefined;
    if (PROTOS[t]) {
      proto = PROTOS[t];
      this.i++;
      t = this.peek() ?? '';
      // A bare protocol, or one followed by a qualifier (`tcp port 80`).
      if (!['src', 'dst', 'host', 'net', 'port'].includes(t)) return proto;
    }
    let side: Side = 'any';
    if (t === 'src' || t === 'dst') {
      side = t;
      this.i++;
      t = this.peek() ?? '';
    }
    let kind = t;
    if (kind === 'host' || kind === 'net' || kind === 'port') this.i++;
    else if (side !== 'any' && /^\d+\.\d+\.\d+\.\d+$/.test(kind)) kind = 'host';
    else this.fail(t === '' ? 'expression ends too early' : `unknown word "${this.toks[this.i]!.t}" (expected host, net, port, src, dst, tcp, udp, icmp, arp, not, and, or, parentheses)`);
    const arg = this.toks[this.i]?.t;
    if (arg === undefined) this.fail(`"${kind}" needs a value`);
    let pred: FramePredicate;
    if (kind === 'port') {
      if (!/^\d+$/.test(arg) || Number(arg) > 65535) this.fail(`"${arg}" is not a port number (0-65535)`);
      const n = Number(arg);
      pred = (v) => v.hasPorts && ((side !== 'dst' && v.sport === n) || (side !== 'src' && v.dport === n));
    } else if (kind === 'host') {
      const a = ipOrFail(arg, this);
      pred = (v) => anyAddr(v, side, (x) => x === a);
    } else {
      const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(arg);
      if (!m || Number(m[2]) > 32) this.fail(`"${arg}" is not a network (A.B.C.D/LEN)`);
      const mask = prefixToMask(Number(m[2]));
      const net = (ipOrFail(m[1]!, this) & mask) >>> 0;
      pred = (v) => anyAddr(v, side, (x) => ((x & mask) >>> 0) === net);
    }
    this.i++;
    if (proto) {
      const p = proto;
      const q = pred;
      return (v) => p(v) && q(v);
    }
    return pred;
  }

  failAt(msg: string): never {
    return this.fail(msg);
  }
}

function ipOrFail(s: string, p: Parser): number {
  const a = parseIp(s);
  if (a < 0) p.failAt(`"${s}" is not an IPv4 address`);
  return a;
}

/** Compiles a filter expression ('' or undefined = match everything); throws FilterError. */
export function compileFilter(expr: string | undefined): FramePredicate {
  const s = (expr ?? '').trim();
  return new Parser(tokenize(s), s).parse();
}

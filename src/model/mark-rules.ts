/**
 * Firewall-mark rules: how uvs classifies packets into fwmark services (`-f MARK`) without
 * kernel marks. The LVS documents mark packets in the mangle table before IPVS sees them:
 *
 *   iptables -t mangle -A PREROUTING -d 192.168.10.110/32 -p tcp -m multiport --dports 80,443 \
 *            -j MARK --set-mark 10
 *   ipvsadm -A -f 10 -s rr -p
 *
 * uvs keeps the same rules itself:
 *
 *   uvsadm --mark-rule -d 192.168.10.110/32 -p tcp --dports 80,443 --set-mark 10
 *
 * A rule matches on protocol (tcp | udp), destination address/prefix, optionally source
 * address/prefix and destination ports (a list of ports and lo:hi ranges, iptables multiport
 * syntax; none = every port). Rules are evaluated in the order they were added and the first
 * match wins (a MARK target in the mangle PREROUTING chain followed by an ACCEPT, which is how
 * the documents use it). Only packets without a conn are classified: the Director calls
 * `match()` on a conn miss, never on the established path.
 *
 * A rule set with no rules costs one comparison. Matching allocates nothing: each rule is a
 * row of numbers, its port ranges a flat Uint16Array.
 *
 * Addresses named by /32 destination rules are owned by uvs (ARP and ICMP echo answered, and in
 * iface mode hidden from the host kernel): `ownedAddrs()` feeds Config.extraOwned.
 */
import { ipToString, parseIp, prefixToMask } from './addr.js';
import { IPPROTO_TCP, IPPROTO_UDP } from './constants.js';

/** A mark rule as the control protocol carries it (addresses as dotted strings). */
export interface MarkRuleSpec {
  /** 6 (tcp) or 17 (udp). */
  protocol: number;
  daddr: string;
  /** Destination prefix length 0..32. */
  dprefix: number;
  /** Source address; '' (with sprefix 0) for any. */
  saddr: string;
  sprefix: number;
  /** Destination port ranges [lo, hi]; empty = every port. */
  dports: [number, number][];
  /** Mark value, 1..2^32-1 (the fwmark service it selects). */
  mark: number;
}

/** A validation failure of a rule spec (ops.ts turns it into an EINVAL refusal). */
export class MarkRuleError extends Error {}

/** One compiled rule. */
export interface MarkRule {
  readonly protocol: number;
  readonly daddr: number;
  readonly dmask: number;
  readonly saddr: number;
  readonly smask: number;
  /** Flattened [lo0, hi0, lo1, hi1, ...]; empty = any port. */
  readonly ports: Uint16Array;
  readonly mark: number;
  /** The spec, normalised (masked addresses, sorted nothing: ports in the given order). */
  readonly spec: MarkRuleSpec;
}

function checkPrefix(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 32) throw new MarkRuleError(`invalid ${what} prefix length ${p}`);
  return p;
}

/** Validates and compiles a spec (addresses are masked, as iptables stores them). */
export function compileMarkRule(spec: MarkRuleSpec): MarkRule {
  if (spec.protocol !== IPPROTO_TCP && spec.protocol !== IPPROTO_UDP) throw new MarkRuleError(`mark rules match tcp or udp, not protocol ${spec.protocol}`);
  const dprefix = checkPrefix(spec.dprefix, 'destination');
  const d = parseIp(spec.daddr);
  if (d < 0) throw new MarkRuleError(`invalid destination address ${JSON.stringify(spec.daddr)}`);
  const sprefix = checkPrefix(spec.sprefix, 'source');
  let s = 0;
  if (spec.saddr !== '') {
    s = parseIp(spec.saddr);
    if (s < 0) throw new MarkRuleError(`invalid source address ${JSON.stringify(spec.saddr)}`);
  } else if (sprefix !== 0) {
    throw new MarkRuleError('source prefix without a source address');
  }
  if (!Number.isInteger(spec.mark) || spec.mark < 1 || spec.mark > 0xffffffff) throw new MarkRuleError(`invalid mark ${spec.mark}`);
  if (!Array.isArray(spec.dports)) throw new MarkRuleError('dports must be a list of [lo, hi] ranges');
  const ports = new Uint16Array(spec.dports.length * 2);
  spec.dports.forEach((r, i) => {
    const [lo, hi] = r;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 65535 || lo > hi) {
      throw new MarkRuleError(`invalid port range ${lo}:${hi}`);
    }
    ports[i * 2] = lo;
    ports[i * 2 + 1] = hi;
  });
  const dmask = prefixToMask(dprefix) >>> 0;
  const smask = prefixToMask(sprefix) >>> 0;
  const daddr = (d & dmask) >>> 0;
  const saddr = (s & smask) >>> 0;
  return {
    protocol: spec.protocol, daddr, dmask, saddr, smask, ports, mark: spec.mark >>> 0,
    spec: {
      protocol: spec.protocol, daddr: ipToString(daddr), dprefix, saddr: spec.saddr === '' ? '' : ipToString(saddr), sprefix,
      dports: spec.dports.map(([lo, hi]) => [lo, hi]), mark: spec.mark >>> 0,
    },
  };
}

function sameRule(a: MarkRule, b: MarkRule): boolean {
  if (a.protocol !== b.protocol || a.daddr !== b.daddr || a.dmask !== b.dmask || a.saddr !== b.saddr
    || a.smask !== b.smask || a.mark !== b.mark || a.ports.length !== b.ports.length) return false;
  for (let i = 0; i < a.ports.length; i++) if (a.ports[i] !== b.ports[i]) return false;
  return true;
}

export class MarkRules {
  private rules: MarkRule[] = [];

  get count(): number {
    return this.rules.length;
  }

  /** Appends a rule (iptables -A). An identical rule already present ⇒ false (nothing added). */
  add(spec: MarkRuleSpec): boolean {
    const r = compileMarkRule(spec);
    if (this.rules.some((x) => sameRule(x, r))) return false;
    this.rules.push(r);
    return true;
  }

  /** Removes the first identical rule (iptables -D by rule spec); false when none matches. */
  remove(spec: MarkRuleSpec): boolean {
    const r = compileMarkRule(spec);
    const i = this.rules.findIndex((x) => sameRule(x, r));
    if (i < 0) return false;
    this.rules.splice(i, 1);
    return true;
  }

  clear(): void {
    this.rules = [];
  }

  /** Replaces this set with a copy of `other` (rules are immutable, so they are shared). */
  copyFrom(other: MarkRules): void {
    this.rules = [...other.rules];
  }

  /**
   * The mark of the first rule matching the packet, or 0. Addresses are host-order numbers.
   * Data path: no allocation.
   */
  match(proto: number, saddr: number, daddr: number, dport: number): number {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.protocol !== proto) continue;
      if (((daddr & r.dmask) >>> 0) !== r.daddr) continue;
      if (((saddr & r.smask) >>> 0) !== r.saddr) continue;
      const ports = r.ports;
      if (ports.length !== 0) {
        let hit = false;
        for (let k = 0; k < ports.length; k += 2) {
          if (dport >= ports[k]! && dport <= ports[k + 1]!) { hit = true; break; }
        }
        if (!hit) continue;
      }
      return r.mark;
    }
    return 0;
  }

  /** The rules in evaluation order, as specs. */
  specs(): MarkRuleSpec[] {
    return this.rules.map((r) => ({ ...r.spec, dports: r.spec.dports.map(([lo, hi]) => [lo, hi] as [number, number]) }));
  }

  /** Addresses uvs must own for these rules: the destinations of /32 rules. */
  ownedAddrs(): number[] {
    const out = new Set<number>();
    for (const r of this.rules) if (r.dmask === 0xffffffff && r.daddr !== 0) out.add(r.daddr);
    return [...out];
  }
}

const PROTO_NAME: Record<number, string> = { [IPPROTO_TCP]: 'tcp', [IPPROTO_UDP]: 'udp' };

/** `80,443,1000:2000` for a rule's port ranges ('' for none). */
export function formatPorts(dports: readonly (readonly [number, number])[]): string {
  return dports.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}:${hi}`)).join(',');
}

/**
 * The uvsadm arguments that re-create a rule (the `-S` line without the program name):
 * `--mark-rule -d 192.168.10.110/32 -p tcp --dports 80,443 --set-mark 10`.
 */
export function markRuleArgs(spec: MarkRuleSpec): string[] {
  const a = ['--mark-rule', '-d', `${spec.daddr}/${spec.dprefix}`, '-p', PROTO_NAME[spec.protocol] ?? String(spec.protocol)];
  if (spec.saddr !== '') a.push('-s', `${spec.saddr}/${spec.sprefix}`);
  if (spec.dports.length === 1 && spec.dports[0]![0] === spec.dports[0]![1]) a.push('--dport', String(spec.dports[0]![0]));
  else if (spec.dports.length > 0) a.push('--dports', formatPorts(spec.dports));
  a.push('--set-mark', String(spec.mark));
  return a;
}

/** `-S` lines for the rules (one `--mark-rule …` line each, in evaluation order). */
export function formatMarkRulesSave(specs: readonly MarkRuleSpec[]): string {
  return specs.map((s) => markRuleArgs(s).join(' ') + '\n').join('');
}

/**
 * `--list-mark-rules` output, iptables -L -n style:
 *
 *   Mark rules (first match wins)
 *   num  prot source               destination          ports            mark
 *   1    tcp  0.0.0.0/0            192.168.10.110/32    80,443           10
 */
export function formatMarkRulesList(specs: readonly MarkRuleSpec[]): string {
  let s = 'Mark rules (first match wins)\n';
  s += `${'num'.padEnd(4)} ${'prot'.padEnd(4)} ${'source'.padEnd(20)} ${'destination'.padEnd(20)} ${'ports'.padEnd(16)} mark\n`;
  specs.forEach((r, i) => {
    const src = r.saddr === '' ? '0.0.0.0/0' : `${r.saddr}/${r.sprefix}`;
    const ports = r.dports.length === 0 ? 'any' : formatPorts(r.dports);
    s += `${String(i + 1).padEnd(4)} ${(PROTO_NAME[r.protocol] ?? String(r.protocol)).padEnd(4)} ${src.padEnd(20)} ${`${r.daddr}/${r.dprefix}`.padEnd(20)} ${ports.padEnd(16)} ${r.mark}\n`;
  });
  return s;
}

// ---------------------------------------------------------------------------------------------
// command-line pieces (iptables syntax), used by uvsadm's parser

/** `ADDR`, `ADDR/LEN` or `ADDR/MASK` (iptables -d/-s); null when malformed. */
export function parseAddrPrefix(s: string): { addr: string; prefix: number } | null {
  const slash = s.indexOf('/');
  const a = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (a < 0) return null;
  let prefix = 32;
  if (slash >= 0) {
    const m = s.slice(slash + 1);
    if (/^\d{1,2}$/.test(m)) {
      prefix = Number(m);
      if (prefix > 32) return null;
    } else {
      const mask = parseIp(m);
      if (mask < 0) return null;
      let n = 0;
      let v = mask;
      while (v & 0x80000000) { n++; v = (v << 1) >>> 0; }
      if (v !== 0) return null;
      prefix = n;
    }
  }
  return { addr: ipToString((a & prefixToMask(prefix)) >>> 0), prefix };
}

/** `tcp` / `udp` (or 6 / 17) → protocol number; -1 otherwise. */
export function parseRuleProto(s: string): number {
  const v = s.toLowerCase();
  if (v === 'tcp' || v === '6') return IPPROTO_TCP;
  if (v === 'udp' || v === '17') return IPPROTO_UDP;
  return -1;
}

function parsePort(s: string): number {
  if (!/^\d{1,5}$/.test(s)) return -1;
  const n = Number(s);
  return n <= 65535 ? n : -1;
}

/**
 * iptables multiport list `80,443,8000:8080` (a range `lo:hi`; `:hi` from 0, `lo:` to 65535).
 * At most 15 entries, as xt_multiport. Null when malformed.
 */
export function parsePortList(s: string): [number, number][] | null {
  const parts = s.split(',');
  if (parts.length === 0 || parts.length > 15) return null;
  const out: [number, number][] = [];
  for (const p of parts) {
    const colon = p.indexOf(':');
    let lo: number;
    let hi: number;
    if (colon < 0) {
      lo = hi = parsePort(p);
    } else {
      lo = colon === 0 ? 0 : parsePort(p.slice(0, colon));
      hi = colon === p.length - 1 ? 65535 : parsePort(p.slice(colon + 1));
    }
    if (lo < 0 || hi < 0 || lo > hi) return null;
    out.push([lo, hi]);
  }
  return out;
}

/** `--set-mark` value: decimal or 0x hex, 1..2^32-1; -1 otherwise. */
export function parseMarkValue(s: string): number {
  let n: number;
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(s)) n = parseInt(s.slice(2), 16);
  else if (/^\d{1,10}$/.test(s)) n = Number(s);
  else return -1;
  return n >= 1 && n <= 0xffffffff ? n : -1;
}

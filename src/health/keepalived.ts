/**
 * keepalived.conf reader (the LVS half: `virtual_server` / `real_server` / checkers), after
 * keepalived.conf(5) and keepalived/check/check_parser.c, with keepalived's defaults (not
 * ipvsadm's): lvs_method NAT, protocol UDP when unset (with a warning, as keepalived), delay_loop 60, connect_timeout 5, retry 1 (DNS 3,
 * MISC 0), delay_before_retry 1, weight 1, quorum 1, hysteresis 0, bare persistence_timeout 360.
 *
 * Syntax: `#` / `!` comments anywhere on a line (outside quotes), `{ }` blocks also several on one
 * line (`real_server 10.0.1.11 80 { weight 3  TCP_CHECK { connect_timeout 3 } }`: each keyword's
 * arity splits the words of a line), double-quoted strings with backslash escapes, `include GLOB`
 * (relative to the including file; any level; loops refused), `@id` / `@^id` conditional lines and
 * `$NAME=value` parameters (`$NAME`, `${NAME}`).
 *
 * Everything is validated before anything is returned: a mistake throws one ConfigError naming file,
 * line and keyword, so the caller loads nothing. Sections uvs does not act on (vrrp_*, global_defs —
 * except its lvs_timeouts —, static_*, bfd_instance, …) are skipped and listed in `ignored` (name
 * and line); keywords it reads
 * but does not act on (notify scripts of SMTP, est_timeout, …) produce a warning.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import {
  DEFAULT_PERSISTENT_TIMEOUT, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP,
  SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, TUN_F_CSUM, TUN_F_NOCSUM, TUN_F_REMCSUM,
  TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP, type FwdMethod,
} from '../model/constants.js';
import { getScheduler } from '../sched/index.js';
import {
  ConfigError, defaultCheck, serviceKey, type CheckConf, type CheckType, type HealthConfig, type IgnoredSection,
  type RsConf, type UrlConf, type VsConf,
} from './config.js';

// ------------------------------------------------------------------------------------ lexer

export interface Token {
  t: 'w' | '{' | '}' | 'nl';
  v: string;
  file: string;
  line: number;
  /** Written in double quotes (never a brace or keyword). */
  q?: boolean;
}

export interface ReadOptions {
  /** `@id` conditional lines: default the short host name. */
  configId?: string;
  /** Reads a file (tests); default fs. */
  readFile?: (path: string) => string;
}

const MAX_INCLUDE_DEPTH = 16;

function lexLine(text: string, file: string, line: number): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') { i++; continue; }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') { out.push({ t: c, v: c, file, line }); i++; continue; }
    if (c === '"') {
      let s = '';
      i++;
      let closed = false;
      while (i < n) {
        const d = text[i]!;
        if (d === '\\' && i + 1 < n) {
          const e = text[i + 1]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          i += 2;
          continue;
        }
        if (d === '"') { closed = true; i++; break; }
        s += d;
        i++;
      }
      if (!closed) throw new ConfigError(file, line, '', 'unterminated quoted string');
      out.push({ t: 'w', v: s, file, line, q: true });
      continue;
    }
    let s = '';
    while (i < n) {
      const d = text[i]!;
      if (d === ' ' || d === '\t' || d === '\r' || d === '{' || d === '}' || d === '#' || d === '!' || d === '"') break;
      s += d;
      i++;
    }
    out.push({ t: 'w', v: s, file, line });
  }
  return out;
}

/** Minimal glob (`*`, `?`, `[…]` within path segments). Sorted, as glob(3). */
export function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const abs = isAbsolute(pattern);
  const parts = pattern.split('/').filter((p, idx) => p !== '' || idx === 0);
  let bases = [abs ? '/' : '.'];
  for (const part of parts) {
    if (part === '') continue;
    const next: string[] = [];
    if (!/[*?[]/.test(part)) {
      for (const b of bases) next.push(join(b, part));
    } else {
      const re = new RegExp('^' + part.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
      for (const b of bases) {
        let names: string[];
        try { names = readdirSync(b); } catch { continue; }
        for (const nm of names.sort()) if (!nm.startsWith('.') && re.test(nm)) next.push(join(b, nm));
      }
    }
    bases = next;
  }
  return bases.filter((p) => { try { return statSync(p).isFile(); } catch { return false; } });
}

class Lexer {
  readonly tokens: Token[] = [];
  readonly warnings: string[] = [];
  private readonly params = new Map<string, string>();
  private readonly configId: string;
  private readonly read: (p: string) => string;

  constructor(opts: ReadOptions) {
    this.configId = opts.configId ?? hostname().split('.')[0]!;
    this.read = opts.readFile ?? ((p) => readFileSync(p, 'utf8'));
  }

  lexFile(path: string, stack: string[], from?: { file: string; line: number }): void {
    if (stack.includes(path)) throw new ConfigError(from?.file ?? path, from?.line ?? 0, 'include', `include loop: ${[...stack, path].join(' -> ')}`);
    if (stack.length > MAX_INCLUDE_DEPTH) throw new ConfigError(from?.file ?? path, from?.line ?? 0, 'include', 'includes nested too deep');
    let text: string;
    try {
      text = this.read(path);
    } catch (e) {
      if (from) throw new ConfigError(from.file, from.line, 'include', `cannot read ${path}: ${(e as Error).message}`);
      throw new ConfigError(path, 0, '', `cannot read: ${(e as Error).message}`);
    }
    const lines = text.split('\n');
    for (let ln = 0; ln < lines.length; ln++) {
      let raw = lines[ln]!;
      const lineNo = ln + 1;
      // Conditional configuration: `@id rest` only on host id; `@^id rest` everywhere else.
      const cond = /^\s*@(\^?)(\S+)\s*(.*)$/.exec(raw);
      if (cond) {
        const match = cond[2] === this.configId;
        if (match === (cond[1] === '^')) continue;
        raw = cond[3]!;
      }
      const def = /^\s*\$(\w+)\s*=\s*(.*)$/.exec(raw);
      if (def) { this.params.set(def[1]!, def[2]!.trim()); continue; }
      if (raw.includes('$')) {
        raw = raw.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => {
          const v = this.params.get((a ?? b)!);
          return v ?? m;
        });
      }
      const toks = lexLine(raw, path, lineNo);
      if (toks.length === 0) continue;
      const first = toks[0]!;
      if (first.t === 'w' && !first.q && /^include[rmwba]*$/.test(first.v)) {
        const arg = toks[1];
        if (!arg || arg.t !== 'w') throw new ConfigError(path, lineNo, first.v, 'needs a file name');
        const pat = isAbsolute(arg.v) ? arg.v : resolve(dirname(path), arg.v);
        const files = expandGlob(pat);
        if (files.length === 0) { this.warnings.push(`${path}:${lineNo}: include ${arg.v} matched no file`); continue; }
        if (files.length === 1 && files[0] === pat && !/[*?[]/.test(pat)) {
          this.lexFile(pat, [...stack, path], { file: path, line: lineNo });
        } else {
          for (const f of files) this.lexFile(f, [...stack, path], { file: path, line: lineNo });
        }
        // tokens after the file name on the same line continue the statement stream
        for (const t of toks.slice(2)) this.tokens.push(t);
        if (toks.length > 2) this.tokens.push({ t: 'nl', v: '', file: path, line: lineNo });
        continue;
      }
      for (const t of toks) this.tokens.push(t);
      this.tokens.push({ t: 'nl', v: '', file: path, line: lineNo });
    }
  }
}

// ------------------------------------------------------------------------------------ statements

interface Stmt {
  kw: string;
  args: Token[];
  body: Stmt[] | null;
  /** For raw (skipped / list) blocks: the lines of words. */
  raw: Token[][] | null;
  file: string;
  line: number;
}

interface KwSpec {
  min: number;
  max: number;
  block?: 'req' | 'raw' | 'no' | 'rawopt';
  ctx?: string;
  /** Understood, not acted on: warn. */
  ignore?: boolean;
}

const k = (min: number, max: number, extra: Partial<KwSpec> = {}): KwSpec => ({ min, max, block: 'no', ...extra });
const INF = Number.POSITIVE_INFINITY;

const CHECKERS = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK'];

const TIMERS: Record<string, KwSpec> = {
  connect_timeout: k(1, 1), retry: k(1, 1), nb_get_retry: k(1, 1), delay_before_retry: k(1, 1), delay_loop: k(1, 1),
  warmup: k(1, 1, { ignore: true }),
};

const SCHEMAS: Record<string, Record<string, KwSpec>> = {
  top: {
    virtual_server: k(1, 2, { block: 'req', ctx: 'vs' }),
    virtual_server_group: k(1, 1, { block: 'raw' }),
    local_address_group: k(1, 1, { block: 'raw' }),
  },
  vs: {
    lb_algo: k(1, 1), lvs_sched: k(1, 1), lb_kind: k(1, 6), lvs_method: k(1, 6), protocol: k(1, 1),
    persistence_timeout: k(0, 1), persistence_granularity: k(1, 1), persistence_engine: k(1, 1),
    ...TIMERS,
    alpha: k(0, 0), omega: k(0, 0), quorum: k(1, 1), hysteresis: k(1, 1), quorum_up: k(1, INF), quorum_down: k(1, INF),
    sorry_server: k(1, 2), sorry_server_inhibit: k(0, 0), sorry_server_lvs_method: k(1, 6), inhibit_on_failure: k(0, 0),
    virtualhost: k(1, 1), laddr_group_name: k(1, 1), ops: k(0, 0), 'sh-port': k(0, 0), 'sh-fallback': k(0, 0),
    'mh-port': k(0, 0), 'mh-fallback': k(0, 0), 'flag-1': k(0, 0), 'flag-2': k(0, 0), 'flag-3': k(0, 0),
    real_server: k(1, 2, { block: 'req', ctx: 'rs' }),
    ha_suspend: k(0, 0, { ignore: true }), smtp_alert: k(0, 1, { ignore: true }), syn_proxy: k(0, 1),
    est_timeout: k(1, 1, { ignore: true }), vip_bind_dev: k(1, 1, { ignore: true }), proxy_protocol: k(1, 1),
    hash_target: k(1, 1, { ignore: true }), expire_quiescent_conn: k(0, 0, { ignore: true }), ip_family: k(1, 1, { ignore: true }),
  },
  rs: {
    weight: k(1, 1), lb_kind: k(1, 6), lvs_method: k(1, 6), uthreshold: k(1, 1), lthreshold: k(1, 1),
    inhibit_on_failure: k(0, 0), notify_up: k(1, INF), notify_down: k(1, INF), virtualhost: k(1, 1), ...TIMERS,
    alpha: k(0, 0, { ignore: true }), smtp_alert: k(0, 1, { ignore: true }),
    ...Object.fromEntries(CHECKERS.map((c) => [c, k(0, 0, { block: 'req', ctx: 'check' })])),
    SMTP_CHECK: k(0, 0, { block: 'raw', ignore: true }), BFD_CHECK: k(0, 0, { block: 'raw', ignore: true }),
    PING_CHECK: k(0, 0, { block: 'raw', ignore: true }), FILE_CHECK: k(0, 0, { block: 'raw', ignore: true }),
    track_file: k(1, 1, { block: 'rawopt', ignore: true }),
  },
  check: {
    connect_ip: k(1, 1), connect_port: k(1, 1), bindto: k(1, 1), bind_port: k(1, 1), ...TIMERS,
    url: k(0, 0, { block: 'req', ctx: 'url' }), virtualhost: k(1, 1), enable_sni: k(0, 0),
    misc_path: k(1, INF), misc_timeout: k(1, 1), misc_dynamic: k(0, 0), user: k(1, 2, { ignore: true }),
    payload: k(1, 1), require_reply: k(0, 1), type: k(1, 1), name: k(1, 1),
    bind_if: k(1, 1, { ignore: true }), fwmark: k(1, 1, { ignore: true }), http_protocol: k(1, 1, { ignore: true }),
    log_all_failures: k(0, 0, { ignore: true }), alpha: k(0, 0, { ignore: true }), fast_recovery: k(0, 0, { ignore: true }),
  },
  url: {
    path: k(1, 1), digest: k(1, 1), status_code: k(1, INF), regex: k(1, 1), virtualhost: k(1, 1),
    regex_no_match: k(0, 0, { ignore: true }), regex_options: k(1, INF, { ignore: true }),
  },
};

/** Top-level sections uvs reads past (reported once as ignored). */
const IGNORED_TOP = new Set([
  'global_defs', 'vrrp_instance', 'vrrp_sync_group', 'vrrp_script', 'vrrp_track_process', 'vrrp_track_file',
  'static_ipaddress', 'static_routes', 'static_rules', 'static_track_group', 'track_file', 'bfd_instance',
  'linkbeat_interfaces', 'garp_group', 'net_namespace', 'net_namespace_ipvs', 'instance', 'use_pid_dir',
  'namespace_with_ipsets', 'child_wait_time', 'track_process', 'ssl', 'vrrp_gua', 'virtual_script',
]);

class Parser {
  private i = 0;
  readonly ignored: IgnoredSection[] = [];
  readonly warnings: string[] = [];
  constructor(private readonly toks: Token[], private readonly mainFile: string) {}

  private peek(): Token | undefined { return this.toks[this.i]; }

  private skipNl(): void {
    while (this.peek()?.t === 'nl') this.i++;
  }

  parseTop(): Stmt[] {
    const out = this.parseBody('top', null);
    return out;
  }

  /** Reads a raw balanced block after '{' has been consumed: returns word lines. */
  private rawBlock(open: Token): Token[][] {
    const lines: Token[][] = [];
    let cur: Token[] = [];
    let depth = 1;
    for (;;) {
      const t = this.toks[this.i++];
      if (!t) throw new ConfigError(open.file, open.line, '', "block opened here is never closed (missing '}')");
      if (t.t === '{') { depth++; continue; }
      if (t.t === '}') {
        depth--;
        if (depth === 0) { if (cur.length) lines.push(cur); return lines; }
        continue;
      }
      if (t.t === 'nl') { if (cur.length) lines.push(cur); cur = []; continue; }
      cur.push(t);
    }
  }

  private parseBody(ctx: string, open: Token | null): Stmt[] {
    const schema = SCHEMAS[ctx]!;
    const out: Stmt[] = [];
    for (;;) {
      this.skipNl();
      const t = this.toks[this.i];
      if (!t) {
        if (open) throw new ConfigError(open.file, open.line, '', "block opened here is never closed (missing '}')");
        return out;
      }
      if (t.t === '}') {
        if (!open) throw new ConfigError(t.file, t.line, '}', "unexpected '}' (no block is open)");
        this.i++;
        return out;
      }
      if (t.t === '{') throw new ConfigError(t.file, t.line, '{', "unexpected '{' (a block needs a keyword before it)");
      this.i++;
      const kw = t.v;
      const spec = schema[kw];
      if (!spec) {
        if (ctx === 'top' && IGNORED_TOP.has(kw)) {
          this.skipIgnored(t);
          continue;
        }
        const where = ctx === 'top' ? 'at top level' : `in ${ctx === 'vs' ? 'virtual_server' : ctx === 'rs' ? 'real_server' : ctx === 'check' ? 'a checker' : 'url'}`;
        throw new ConfigError(t.file, t.line, kw, `unknown keyword ${where}`);
      }
      // arguments
      const args: Token[] = [];
      for (;;) {
        const a = this.peek();
        if (!a || a.t !== 'w') break;
        if (args.length >= spec.max) break;
        if (args.length >= spec.min && !a.q && (schema[a.v] || (ctx === 'top' && IGNORED_TOP.has(a.v)))) break;
        args.push(a);
        this.i++;
      }
      if (args.length < spec.min) {
        throw new ConfigError(t.file, t.line, kw, `needs ${spec.min === spec.max ? spec.min : `at least ${spec.min}`} argument${spec.min > 1 ? 's' : ''}`);
      }
      const stmt: Stmt = { kw, args, body: null, raw: null, file: t.file, line: t.line };
      if (spec.block === 'req' || spec.block === 'raw' || spec.block === 'rawopt') {
        const save = this.i;
        this.skipNl();
        const b = this.peek();
        if (b?.t === '{') {
          this.i++;
          if (spec.block === 'req') stmt.body = this.parseBody(spec.ctx!, b);
          else stmt.raw = this.rawBlock(b);
        } else if (spec.block === 'rawopt') {
          this.i = save;
        } else {
          throw new ConfigError(t.file, t.line, kw, "needs a '{ … }' block");
        }
      } else {
        const nx = this.peek();
        if (nx?.t === '{') throw new ConfigError(nx.file, nx.line, kw, 'takes no block');
        if (nx?.t === 'w' && args.length >= spec.max && !schema[nx.v]) {
          throw new ConfigError(nx.file, nx.line, kw, `too many arguments (unexpected '${nx.v}')`);
        }
      }
      if (spec.ignore) this.warnings.push(`${t.file}:${t.line}: '${kw}' is not acted on by uvs (ignored)`);
      out.push(stmt);
    }
  }

  /** global_defs `lvs_timeouts` (the one global keyword uvs acts on), when present. */
  timeouts: { tcp: number; tcpfin: number; udp: number } | undefined;
  /** global_defs `lvs_sync_daemon`, when present. */
  syncDaemon: HealthConfig['syncDaemon'];

  private skipIgnored(t: Token): void {
    // The rest of the line, then an optional block.
    while (this.peek()?.t === 'w') this.i++;
    const save = this.i;
    this.skipNl();
    if (this.peek()?.t === '{') {
      const open = this.toks[this.i++]!;
      const lines = this.rawBlock(open);
      if (t.v === 'global_defs') {
        for (const l of lines) {
          if (l[0]?.v === 'lvs_timeouts') this.timeouts = lvsTimeouts(l, this.timeouts);
          else if (l[0]?.v === 'lvs_sync_daemon') this.syncDaemon = lvsSyncDaemon(l);
        }
      }
    } else {
      this.i = save;
    }
    this.ignored.push({ name: t.v, file: t.file, line: t.line });
  }

  get file(): string { return this.mainFile; }
}

// ------------------------------------------------------------------------------------ values

/** keepalived's LVS_MAX_TIMEOUT (31 days, in seconds). */
const LVS_MAX_TIMEOUT = 86400 * 31;

/**
 * global_defs `lvs_timeouts [tcp S] [tcpfin S] [udp S]` (keepalived global_parser.c): the IPVS
 * timeouts keepalived sets at start and reload (ipvsadm --set; 0 or absent = unchanged). A
 * mistake is an error here (keepalived logs it and goes on without the value).
 */
function lvsTimeouts(l: Token[], prev: { tcp: number; tcpfin: number; udp: number } | undefined): { tcp: number; tcpfin: number; udp: number } {
  const kw = l[0]!;
  const out = { tcp: 0, tcpfin: 0, udp: 0, ...prev };
  if (l.length < 3) err(kw, 'lvs_timeouts', 'requires at least one option (tcp, tcpfin or udp with a value)');
  for (let i = 1; i < l.length; i += 2) {
    const o = l[i]!.v;
    if (o !== 'tcp' && o !== 'tcpfin' && o !== 'udp') err(kw, 'lvs_timeouts', `unknown option '${o}' (tcp, tcpfin, udp)`);
    const v = l[i + 1]?.v;
    if (v === undefined) err(kw, 'lvs_timeouts', `no value for ${o}`);
    if (!/^\d+$/.test(v) || Number(v) > LVS_MAX_TIMEOUT) err(kw, 'lvs_timeouts', `invalid ${o} timeout '${v}' (0..${LVS_MAX_TIMEOUT} seconds)`);
    out[o] = Number(v);
  }
  return out;
}

/**
 * global_defs `lvs_sync_daemon IF [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`
 * (keepalived global_parser.c lvs_syncd_handler): id 0..255, maxlen 1..65507, port 1..65535,
 * ttl 1..255, group an IPv4 multicast address.
 */
function lvsSyncDaemon(l: Token[]): NonNullable<HealthConfig['syncDaemon']> {
  const kw = l[0]!;
  const ifn = l[1]?.v;
  if (ifn === undefined) err(kw, 'lvs_sync_daemon', 'requires an interface');
  if (ifn.length > 15) err(kw, 'lvs_sync_daemon', `interface name '${ifn}' too long`);
  const out: NonNullable<HealthConfig['syncDaemon']> = { mcastIfn: ifn, syncid: 0 };
  const keys = new Set(['id', 'maxlen', 'port', 'ttl', 'group']);
  let i = 2;
  if (l[i] !== undefined && !keys.has(l[i]!.v)) out.instance = l[i++]!.v;
  const num = (o: string, v: string | undefined, lo: number, hi: number): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) err(kw, 'lvs_sync_daemon', `invalid ${o} '${v ?? ''}' (${lo}..${hi})`);
    return Number(v);
  };
  for (; i < l.length; i += 2) {
    const o = l[i]!.v;
    const v = l[i + 1]?.v;
    if (o === 'id') out.syncid = num(o, v, 0, 255);
    else if (o === 'maxlen') out.maxlen = num(o, v, 1, 65535 - 20 - 8);
    else if (o === 'port') out.port = num(o, v, 1, 65535);
    else if (o === 'ttl') out.ttl = num(o, v, 1, 255);
    else if (o === 'group') {
      const m = v === undefined ? null : /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
      if (m === null || m.slice(1).some((x) => Number(x) > 255) || Number(m[1]) < 224 || Number(m[1]) > 239) {
        err(kw, 'lvs_sync_daemon', `invalid group '${v ?? ''}' (an IPv4 multicast address; uvs has no IPv6 sync)`);
      }
      out.group = v!;
    } else err(kw, 'lvs_sync_daemon', `unknown option '${o}' (id, maxlen, port, ttl, group)`);
  }
  return out;
}

function err(s: { file: string; line: number }, kw: string, msg: string): never {
  throw new ConfigError(s.file, s.line, kw, msg);
}

function ipv4(tok: Token, kw: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(tok.v);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) {
    if (/:/.test(tok.v)) err(tok, kw, `IPv6 address ${tok.v} is not supported by uvs yet`);
    err(tok, kw, `invalid IPv4 address '${tok.v}'`);
  }
  return m.slice(1).map(Number).join('.');
}

function uint(tok: Token, kw: string, max = 0x7fffffff): number {
  if (!/^\d+$/.test(tok.v) || Number(tok.v) > max) err(tok, kw, `invalid number '${tok.v}' (0..${max})`);
  return Number(tok.v);
}

function port(tok: Token, kw: string): number {
  return uint(tok, kw, 65535);
}

/** keepalived timers: seconds, decimals allowed. */
function seconds(tok: Token, kw: string): number {
  if (!/^\d+(\.\d+)?$/.test(tok.v)) err(tok, kw, `invalid time '${tok.v}' (seconds)`);
  return Number(tok.v);
}

interface Method {
  fwd: FwdMethod;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

function method(s: Stmt): Method {
  const a = s.args.map((x) => x.v);
  const m = a[0]!.toUpperCase();
  const r: Method = { fwd: FWD_MASQ, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: TUN_F_NOCSUM };
  if (m === 'NAT') r.fwd = FWD_MASQ;
  else if (m === 'DR') r.fwd = FWD_DROUTE;
  else if (m === 'TUN') r.fwd = FWD_TUNNEL;
  else if (m === 'FNAT' || m === 'FULLNAT') r.fwd = FWD_FULLNAT;
  else err(s, s.kw, `unknown forwarding method '${a[0]}' (NAT, DR, TUN, FNAT)`);
  for (let i = 1; i < a.length; i++) {
    if (r.fwd !== FWD_TUNNEL) err(s.args[i]!, s.kw, `unexpected '${a[i]}' (only TUN takes options)`);
    const w = a[i]!;
    if (w === 'type') {
      const ty = a[++i];
      if (ty === 'ipip') r.tunType = TUN_TYPE_IPIP;
      else if (ty === 'gue') r.tunType = TUN_TYPE_GUE;
      else if (ty === 'gre') r.tunType = TUN_TYPE_GRE;
      else err(s, s.kw, `unknown tunnel type '${ty ?? ''}' (ipip, gue, gre)`);
    } else if (w === 'port') {
      const p = s.args[++i];
      if (!p) err(s, s.kw, 'port needs a number');
      r.tunPort = port(p, s.kw);
    } else if (w === 'nocsum') r.tunFlags = TUN_F_NOCSUM;
    else if (w === 'csum') r.tunFlags = TUN_F_CSUM;
    else if (w === 'remcsum') r.tunFlags = TUN_F_REMCSUM;
    else err(s.args[i]!, s.kw, `unexpected '${w}'`);
  }
  // keepalived's checks: GUE needs its UDP port; port is GUE's only; remcsum is GUE's only.
  if (r.tunType === TUN_TYPE_GUE && r.tunPort === 0) err(s, s.kw, 'type gue needs port N');
  if (r.tunType !== TUN_TYPE_GUE && r.tunPort !== 0) err(s, s.kw, 'port is only for type gue');
  if (r.tunType === TUN_TYPE_GRE && r.tunFlags === TUN_F_REMCSUM) err(s, s.kw, 'remcsum is only for type gue');
  if (r.tunType === TUN_TYPE_IPIP && r.tunFlags !== TUN_F_NOCSUM) err(s, s.kw, 'checksum options are for type gue or gre');
  return r;
}

function hexBytes(tok: Token, kw: string): Buffer {
  const h = tok.v.replace(/^0x/i, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(h)) err(tok, kw, `invalid hex data '${tok.v}'`);
  return Buffer.from(h, 'hex');
}

// ------------------------------------------------------------------------------------ interpretation

interface Inherit {
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  delayLoop: number;
  virtualhost: string;
  inhibit: boolean;
}

function timerSetting(s: Stmt, inh: Inherit): boolean {
  switch (s.kw) {
    case 'connect_timeout': inh.connectTimeout = seconds(s.args[0]!, s.kw); return true;
    case 'retry': case 'nb_get_retry': inh.retry = uint(s.args[0]!, s.kw); return true;
    case 'delay_before_retry': inh.delayBeforeRetry = seconds(s.args[0]!, s.kw); return true;
    case 'delay_loop': {
      const v = seconds(s.args[0]!, s.kw);
      if (v <= 0) err(s, s.kw, 'must be greater than 0');
      inh.delayLoop = v;
      return true;
    }
    case 'warmup': return true;
    default: return false;
  }
}

function parseStatusCodes(s: Stmt): [number, number][] {
  const out: [number, number][] = [];
  for (const tok of s.args) {
    for (const part of tok.v.split(',')) {
      if (!part) continue;
      const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
      if (!m) err(tok, s.kw, `invalid status code '${part}' (NNN or NNN-NNN)`);
      const lo = Number(m[1]);
      const hi = m[2] ? Number(m[2]) : lo;
      if (lo < 100 || hi > 599 || hi < lo) err(tok, s.kw, `invalid status code range '${part}'`);
      out.push([lo, hi]);
    }
  }
  return out;
}

function readCheck(s: Stmt, inh: Inherit): CheckConf {
  const type = s.kw as CheckType;
  const c = defaultCheck(type, `${s.file}:${s.line}`, inh.delayLoop);
  const local: Inherit = { ...inh };
  let sawTimeoutKw = false;
  for (const x of s.body!) {
    if (timerSetting(x, local)) continue;
    const a0 = x.args[0];
    const http = type === 'HTTP_GET' || type === 'SSL_GET';
    const only = (types: CheckType[]) => { if (!types.includes(type)) err(x, x.kw, `not valid in ${type}`); };
    switch (x.kw) {
      case 'connect_ip': c.connectIp = ipv4(a0!, x.kw); break;
      case 'connect_port': c.connectPort = port(a0!, x.kw); break;
      case 'bindto': c.bindto = ipv4(a0!, x.kw); break;
      case 'bind_port': c.bindPort = port(a0!, x.kw); break;
      case 'url': {
        only(['HTTP_GET', 'SSL_GET']);
        const u: UrlConf = { path: '', digest: '', statusCodes: [], regex: '' };
        for (const y of x.body!) {
          const b0 = y.args[0];
          if (y.kw === 'path') u.path = b0!.v;
          else if (y.kw === 'digest') {
            if (!/^[0-9a-fA-F]{32}$/.test(b0!.v)) err(b0!, y.kw, `invalid MD5 digest '${b0!.v}' (32 hex digits)`);
            u.digest = b0!.v.toLowerCase();
          } else if (y.kw === 'status_code') u.statusCodes.push(...parseStatusCodes(y));
          else if (y.kw === 'regex') {
            try { new RegExp(b0!.v); } catch { err(b0!, y.kw, `invalid regular expression '${b0!.v}'`); }
            u.regex = b0!.v;
          } else if (y.kw === 'virtualhost') c.virtualhost = b0!.v;
        }
        if (!u.path) err(x, 'url', "needs a 'path'");
        c.urls.push(u);
        break;
      }
      case 'virtualhost': only(['HTTP_GET', 'SSL_GET']); c.virtualhost = a0!.v; break;
      case 'enable_sni': only(['SSL_GET']); c.enableSni = true; break;
      case 'misc_path': only(['MISC_CHECK']); c.miscPath = x.args.map((t) => t.v).join(' '); break;
      case 'misc_timeout': only(['MISC_CHECK']); c.miscTimeout = seconds(a0!, x.kw); sawTimeoutKw = true; break;
      case 'misc_dynamic': only(['MISC_CHECK']); c.miscDynamic = true; break;
      case 'payload': only(['UDP_CHECK']); c.payload = hexBytes(a0!, x.kw); break;
      case 'require_reply': only(['UDP_CHECK']); c.requireReply = a0 ? hexBytes(a0, x.kw) : true; break;
      case 'type': {
        only(['DNS_CHECK']);
        const ty = a0!.v.toUpperCase();
        if (!(ty in DNS_TYPES)) err(a0!, x.kw, `unknown DNS query type '${a0!.v}'`);
        c.dnsType = ty;
        break;
      }
      case 'name': only(['DNS_CHECK']); c.dnsName = a0!.v; break;
      default: break; // ignored keywords (warned by the parser)
    }
    void http;
  }
  if (local.connectTimeout !== undefined) c.connectTimeout = local.connectTimeout;
  if (local.retry !== undefined) c.retry = local.retry;
  if (local.delayBeforeRetry !== undefined) c.delayBeforeRetry = local.delayBeforeRetry;
  c.delayLoop = local.delayLoop;
  if (!c.virtualhost) c.virtualhost = inh.virtualhost;
  if ((type === 'HTTP_GET' || type === 'SSL_GET') && c.urls.length === 0) err(s, type, "needs at least one 'url { path … }'");
  if (type === 'MISC_CHECK') {
    if (!c.miscPath) err(s, type, "needs 'misc_path'");
    if (!sawTimeoutKw) c.miscTimeout = c.delayLoop;
  }
  return c;
}

export const DNS_TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33 };

function readRs(s: Stmt, inh: Inherit, vsMethod: Method, vsPort: number): RsConf {
  const addr = ipv4(s.args[0]!, s.kw);
  const p = s.args[1] ? port(s.args[1], s.kw) : vsPort;
  const local: Inherit = { ...inh };
  let m = vsMethod;
  const rs: RsConf = {
    addr, port: p, weight: 1, fwd: m.fwd, tunType: m.tunType, tunPort: m.tunPort, tunFlags: m.tunFlags,
    uThreshold: 0, lThreshold: 0, inhibit: inh.inhibit, notifyUp: '', notifyDown: '', checks: [], where: `${s.file}:${s.line}`,
  };
  const checkStmts: Stmt[] = [];
  for (const x of s.body ?? []) {
    if (timerSetting(x, local)) continue;
    const a0 = x.args[0];
    switch (x.kw) {
      case 'weight': rs.weight = uint(a0!, x.kw); break;
      case 'lb_kind': case 'lvs_method': m = method(x); break;
      case 'uthreshold': rs.uThreshold = uint(a0!, x.kw); break;
      case 'lthreshold': rs.lThreshold = uint(a0!, x.kw); break;
      case 'inhibit_on_failure': rs.inhibit = true; break;
      case 'notify_up': rs.notifyUp = x.args.map((t) => t.v).join(' '); break;
      case 'notify_down': rs.notifyDown = x.args.map((t) => t.v).join(' '); break;
      case 'virtualhost': local.virtualhost = a0!.v; break;
      default:
        if (CHECKERS.includes(x.kw)) checkStmts.push(x);
        break;
    }
  }
  rs.fwd = m.fwd; rs.tunType = m.tunType; rs.tunPort = m.tunPort; rs.tunFlags = m.tunFlags;
  if (rs.lThreshold > rs.uThreshold && rs.uThreshold !== 0) err(s, 'lthreshold', 'must not exceed uthreshold');
  for (const x of checkStmts) {
    const c = readCheck(x, local);
    if (!c.connectIp) c.connectIp = addr;
    if (!c.connectPort) c.connectPort = p || (c.type === 'DNS_CHECK' ? 53 : 0);
    if (!c.connectPort && c.type !== 'MISC_CHECK') err(x, x.kw, 'needs connect_port (the real server has no port)');
    rs.checks.push(c);
  }
  return rs;
}

interface GroupEntry {
  addr?: string;
  port?: number;
  fwmark?: number;
  file: string;
  line: number;
}

function readGroup(s: Stmt): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of s.raw ?? []) {
    const w0 = line[0]!;
    if (w0.v === 'fwmark') {
      if (!line[1]) err(w0, 'fwmark', 'needs a number');
      out.push({ fwmark: uint(line[1], 'fwmark'), file: w0.file, line: w0.line });
      continue;
    }
    const range = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(w0.v);
    const p = line[1] ? port(line[1], 'virtual_server_group') : 0;
    if (range) {
      const lo = Number(range[2]);
      const hi = Number(range[3]);
      if (hi < lo || hi > 255) err(w0, 'virtual_server_group', `invalid range '${w0.v}'`);
      for (let i = lo; i <= hi; i++) out.push({ addr: ipv4({ ...w0, v: `${range[1]}${i}` }, 'virtual_server_group'), port: p, file: w0.file, line: w0.line });
    } else {
      out.push({ addr: ipv4(w0, 'virtual_server_group'), port: p, file: w0.file, line: w0.line });
    }
  }
  return out;
}

function readLaddrGroup(s: Stmt): string[] {
  const out: string[] = [];
  for (const line of s.raw ?? []) {
    const w0 = line[0]!;
    const range = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(w0.v);
    if (range) {
      for (let i = Number(range[2]); i <= Number(range[3]); i++) out.push(ipv4({ ...w0, v: `${range[1]}${i}` }, 'local_address_group'));
    } else {
      out.push(ipv4(w0, 'local_address_group'));
    }
  }
  return out;
}

function readVs(s: Stmt, groups: Map<string, GroupEntry[]>, laddrGroups: Map<string, string[]>, warnings: string[]): VsConf[] {
  // header: IP [PORT] | fwmark N | group NAME
  const a = s.args;
  let targets: GroupEntry[];
  if (a[0]!.v === 'fwmark') {
    if (!a[1]) err(s, 'virtual_server', 'fwmark needs a number');
    const mark = uint(a[1], 'virtual_server');
    if (mark === 0) err(a[1], 'virtual_server', 'fwmark must be non-zero');
    targets = [{ fwmark: mark, file: s.file, line: s.line }];
  } else if (a[0]!.v === 'group') {
    if (!a[1]) err(s, 'virtual_server', 'group needs a name');
    const g = groups.get(a[1].v);
    if (!g) err(a[1], 'virtual_server', `unknown virtual_server_group '${a[1].v}'`);
    targets = g;
  } else {
    targets = [{ addr: ipv4(a[0]!, 'virtual_server'), port: a[1] ? port(a[1], 'virtual_server') : 0, file: s.file, line: s.line }];
  }

  let sched = '';
  let m: Method = { fwd: FWD_MASQ, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: TUN_F_NOCSUM };
  let protocol = 0; // unset: keepalived defaults it to UDP (check_data.c validate_check_config)
  let flags = 0;
  let timeout = 0;
  let netmask = '255.255.255.255';
  const inh: Inherit = { delayLoop: 60, virtualhost: '', inhibit: false };
  let quorum = 1;
  let hysteresis = 0;
  let alpha = false;
  let omega = false;
  let quorumUp = '';
  let quorumDown = '';
  let sorryStmt: Stmt | null = null;
  let sorryMethod: Method | null = null;
  let sorryInhibit = false;
  let laddrs: string[] = [];
  let proxyProtocol = 0;
  let synproxy = false;
  let spStmt: Stmt | null = null;
  let ppStmt: Stmt | null = null;
  const rsStmts: Stmt[] = [];
  for (const x of s.body ?? []) {
    if (timerSetting(x, inh)) continue;
    const a0 = x.args[0];
    switch (x.kw) {
      case 'lb_algo': case 'lvs_sched':
        if (!getScheduler(a0!.v)) err(a0!, x.kw, `unknown scheduler '${a0!.v}'`);
        sched = a0!.v;
        break;
      case 'lb_kind': case 'lvs_method': m = method(x); break;
      case 'protocol': {
        const p = a0!.v.toUpperCase();
        if (p === 'TCP') protocol = IPPROTO_TCP;
        else if (p === 'UDP') protocol = IPPROTO_UDP;
        else if (p === 'SCTP') err(a0!, x.kw, 'SCTP services are not supported by uvs yet');
        else err(a0!, x.kw, `unknown protocol '${a0!.v}' (TCP, UDP, SCTP)`);
        break;
      }
      case 'persistence_timeout':
        flags |= SVC_F_PERSISTENT;
        timeout = a0 ? uint(a0, x.kw, 86400 * 31) : DEFAULT_PERSISTENT_TIMEOUT;
        if (timeout === 0) { flags &= ~SVC_F_PERSISTENT; }
        break;
      case 'persistence_granularity': {
        const v = a0!.v;
        if (/^\d+$/.test(v) && Number(v) <= 32) {
          const pfx = Number(v);
          const mask = pfx === 0 ? 0 : (0xffffffff << (32 - pfx)) >>> 0;
          netmask = [24, 16, 8, 0].map((sh) => (mask >>> sh) & 255).join('.');
        } else {
          netmask = ipv4(a0!, x.kw);
          const n = netmask.split('.').map(Number).reduce((acc, o) => acc * 256 + o, 0);
          const inv = (~n) >>> 0;
          if ((inv & (inv + 1)) !== 0) err(a0!, x.kw, `'${v}' is not a contiguous netmask`);
        }
        break;
      }
      case 'persistence_engine': err(a0!, x.kw, `persistence engine '${a0!.v}' is not supported by uvs yet`); break;
      case 'alpha': alpha = true; break;
      case 'omega': omega = true; break;
      case 'quorum': quorum = uint(a0!, x.kw); break;
      case 'hysteresis': hysteresis = uint(a0!, x.kw); break;
      case 'quorum_up': quorumUp = x.args.map((t) => t.v).join(' '); break;
      case 'quorum_down': quorumDown = x.args.map((t) => t.v).join(' '); break;
      case 'sorry_server': sorryStmt = x; break;
      case 'sorry_server_inhibit': sorryInhibit = true; break;
      case 'sorry_server_lvs_method': sorryMethod = method(x); break;
      case 'inhibit_on_failure': inh.inhibit = true; break;
      case 'virtualhost': inh.virtualhost = a0!.v; break;
      case 'laddr_group_name': {
        const g = laddrGroups.get(a0!.v);
        if (!g) err(a0!, x.kw, `unknown local_address_group '${a0!.v}'`);
        laddrs = g;
        break;
      }
      case 'ops': flags |= SVC_F_ONEPACKET; break;
      case 'syn_proxy': {
        // The Alibaba/DPVS keepalived fork: `syn_proxy` (uvs also takes `syn_proxy enable|disable`).
        const v = (a0?.v ?? 'enable').toLowerCase();
        if (v !== 'enable' && v !== 'disable') err(a0!, x.kw, `'${a0!.v}' is not enable or disable`);
        synproxy = v === 'enable';
        spStmt = x;
        break;
      }
      case 'proxy_protocol': {
        const v = a0!.v.toLowerCase();
        if (v === 'v1-insecure' || v === 'v2-insecure') err(a0!, x.kw, `'${a0!.v}' (passing on a client's own PROXY header) is not supported by uvs yet`);
        proxyProtocol = (['disable', 'v1', 'v2'] as const).indexOf(v as 'v1');
        if (proxyProtocol < 0) err(a0!, x.kw, `'${a0!.v}' is not a proxy protocol (disable, v1 or v2)`);
        ppStmt = x;
        break;
      }
      case 'sh-fallback': case 'mh-fallback': case 'flag-1': flags |= SVC_F_SCHED1; break;
      case 'sh-port': case 'mh-port': case 'flag-2': flags |= SVC_F_SCHED2; break;
      case 'flag-3': flags |= SVC_F_SCHED3; break;
      case 'real_server': rsStmts.push(x); break;
      default: break;
    }
  }
  if (!sched) sched = 'wlc'; // keepalived's IPVS_DEF_SCHED
  const isAddr = targets.some((t) => !t.fwmark);
  if (protocol === 0) {
    if (isAddr) warnings.push(`${s.file}:${s.line}: virtual_server: no protocol set - defaulting to UDP (as keepalived does)`);
    protocol = IPPROTO_UDP;
  }
  if (m.fwd === FWD_FULLNAT && laddrs.length === 0) err(s, 'lb_kind', "FNAT needs 'laddr_group_name' (a local_address_group)");
  if (proxyProtocol > 0 && protocol === IPPROTO_UDP) err(ppStmt!, 'proxy_protocol', 'the PROXY protocol for UDP services is not supported by uvs yet');
  if (synproxy && protocol === IPPROTO_UDP) err(spStmt!, 'syn_proxy', 'the SYN proxy is for TCP services');
  const out: VsConf[] = [];
  for (const tg of targets) {
    const spec = tg.fwmark
      ? { protocol: 0, af: 2, addr: '', port: 0, fwmark: tg.fwmark }
      : { protocol, af: 2, addr: tg.addr!, port: tg.port ?? 0, fwmark: 0 };
    if (!tg.fwmark && spec.port === 0 && !(flags & SVC_F_PERSISTENT)) {
      // keepalived: "zero port only valid for persistent services - setting" (360 s).
      warnings.push(`${s.file}:${s.line}: virtual_server: zero port only valid for persistent services - setting persistence_timeout 360`);
      flags |= SVC_F_PERSISTENT;
      timeout = 360;
    }
    const vsPort = spec.port;
    const rs: RsConf[] = [];
    const seen = new Set<string>();
    for (const x of rsStmts) {
      const r = readRs(x, inh, m, vsPort);
      const key = `${r.addr}:${r.port}`;
      if (seen.has(key)) err(x, 'real_server', `duplicate real_server ${key}`);
      seen.add(key);
      rs.push(r);
    }
    let sorry: RsConf | null = null;
    if (sorryStmt) {
      const sm = sorryMethod ?? m;
      const sp = sorryStmt.args[1] ? port(sorryStmt.args[1], 'sorry_server') : vsPort;
      sorry = {
        addr: ipv4(sorryStmt.args[0]!, 'sorry_server'), port: sp, weight: 1, fwd: sm.fwd, tunType: sm.tunType, tunPort: sm.tunPort,
        tunFlags: sm.tunFlags, uThreshold: 0, lThreshold: 0, inhibit: sorryInhibit, notifyUp: '', notifyDown: '', checks: [],
        where: `${sorryStmt.file}:${sorryStmt.line}`,
      };
    }
    out.push({
      key: serviceKey(spec), spec, sched, flags, timeout, netmask, delayLoop: inh.delayLoop, quorum, hysteresis, alpha, omega,
      quorumUp, quorumDown, sorry, sorryInhibit, ...(proxyProtocol > 0 ? { proxyProtocol } : {}), ...(synproxy ? { synproxy } : {}), laddrs: m.fwd === FWD_FULLNAT || rs.some((r) => r.fwd === FWD_FULLNAT) ? laddrs : [],
      rs, where: `${s.file}:${s.line}`,
    });
  }
  return out;
}

/** Reads a keepalived.conf (and its includes). Throws ConfigError on the first mistake. */
export function readKeepalived(file: string, opts: ReadOptions = {}): HealthConfig {
  const path = resolve(file);
  const lx = new Lexer(opts);
  lx.lexFile(path, []);
  const p = new Parser(lx.tokens, path);
  const top = p.parseTop();
  const groups = new Map<string, GroupEntry[]>();
  const laddrGroups = new Map<string, string[]>();
  for (const s of top) {
    if (s.kw === 'virtual_server_group') groups.set(s.args[0]!.v, readGroup(s));
    if (s.kw === 'local_address_group') laddrGroups.set(s.args[0]!.v, readLaddrGroup(s));
  }
  const services: VsConf[] = [];
  const keys = new Map<string, string>();
  for (const s of top) {
    if (s.kw !== 'virtual_server') continue;
    for (const vs of readVs(s, groups, laddrGroups, p.warnings)) {
      const prev = keys.get(vs.key);
      if (prev) err(s, 'virtual_server', `duplicate virtual_server ${vs.key} (first at ${prev})`);
      keys.set(vs.key, vs.where);
      services.push(vs);
    }
  }
  return {
    format: 'keepalived', file: path, services, ignored: p.ignored, warnings: [...lx.warnings, ...p.warnings],
    ...(p.timeouts ? { timeouts: p.timeouts } : {}),
    ...(p.syncDaemon ? { syncDaemon: p.syncDaemon } : {}),
  };
}

/** Parses keepalived.conf text (tests, `-` input): includes resolve relative to `file`. */
export function parseKeepalived(text: string, file = 'keepalived.conf', opts: ReadOptions = {}): HealthConfig {
  const abs = resolve(file);
  const read = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  return readKeepalived(abs, { ...opts, readFile: (p) => (p === abs ? text : read(p)) });
}

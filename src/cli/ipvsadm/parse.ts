/**
 * ipvsadm 1.31 command-line parsing (A `parse_options`, `process_options`, `generic_opt_check`,
 * `tunnel_opt_check`, `parse_service`, ...) turned into control-protocol Commands.
 *
 * popt behaviour reproduced: short options cluster (`-Ln`, `-At VIP:80`, `-p360`); an option with
 * an argument takes the rest of its cluster or else the next token (even one starting with '-');
 * `-p`/`--persistent` takes the next token only when it does not start with '-'; long options
 * accept `--opt=value` or `--opt value`; non-option tokens are collected (reported later as
 * `unexpected argument X`, or used as the three --set values); `--` ends the options.
 * The FIRST option must be the command (`-nL` fails like ipvsadm: Try `uvsadm -h' ..., exit 255).
 *
 * Exit codes as ipvsadm: fail() validation errors exit 2; popt errors (unknown option, missing
 * argument) and "no command" exit 255 (ipvsadm returns -1).
 *
 * EXTENSION POINT: commands and options are data (COMMANDS, OPTIONS, OPT_COLUMNS). To add a uvs
 * command (e.g. `--mark-rule`, `--load-keepalived`, `--checks`, `trace`): append an OptionColumn
 * for any new option, an OptionDef whose `apply` records it in the ParseState (`st.ext`), and a
 * CommandDef with its legality map (columns not named are illegal) and a `build(st)` returning a
 * ParseResult (use kind 'ext' for results uvsadm.ts dispatches to another module).
 *
 * Name resolution: host names through the resolver (getaddrinfo, IPv4), service names through
 * /etc/services, exactly where ipvsadm resolves them (independent of -n, which only affects output).
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIPv6 } from 'node:net';
import {
  DEFAULT_PERSISTENT_TIMEOUT, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP,
  IPPROTO_UDP, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
  TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP, type FwdMethod,
} from '../../model/constants.js';
import { ipToString } from '../../model/addr.js';
import type { Command, ServiceSpec } from '../../control/types.js';
import { ServicesDb } from './format.js';
import {
  parseAddrPrefix, parseMarkValue, parsePortList, parseRuleProto, type MarkRuleSpec,
} from '../../model/mark-rules.js';

// ---------------------------------------------------------------------------------------------
// results

export interface ListOptions {
  numeric: boolean;
  connections: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  tunInfo: boolean;
  exact: boolean;
  nosort: boolean;
  timeout: boolean;
  daemon: boolean;
  service?: ServiceSpec;
}

export type ParseResult =
  | { kind: 'command'; command: Command }
  | ({ kind: 'list' } & ListOptions)
  | { kind: 'save'; numeric: boolean }
  | { kind: 'restore' }
  | { kind: 'get-laddr'; service?: ServiceSpec }
  | { kind: 'help' }
  | { kind: 'version' }
  /** A result of a command added through the extension point; uvsadm.ts dispatches on `name`. */
  | { kind: 'ext'; name: string; data: unknown }
  | { kind: 'error'; message: string; exitCode: number };

export const DEFAULT_LIST: ListOptions = {
  numeric: false, connections: false, stats: false, rate: false, thresholds: false, persistentConn: false,
  tunInfo: false, exact: false, nosort: false, timeout: false, daemon: false,
};

export interface ParseDeps {
  /** gethostbyname: IPv4 address of a host name, or null. */
  lookupHost?: (name: string) => Promise<string | null>;
  services?: ServicesDb;
  /** Program name for the `Try ...` hint. */
  program?: string;
  /**
   * Restore mode (a -R line): options this version does not know (newer ipvsadm or fork output,
   * e.g. `-j enable`) are skipped with their value and reported in `warnings`; `--tun-type ipip`
   * on a non-tunnel dest is ignored.
   */
  restore?: boolean;
  warnings?: string[];
}

export const systemLookupHost = (name: string): Promise<string | null> => new Promise((resolve) => {
  dnsLookup(name, { family: 4 }, (err, address) => resolve(err ? null : address));
});

// ---------------------------------------------------------------------------------------------
// failures

class Fail {
  constructor(readonly message: string, readonly exitCode: number) {}
}
function fail(message: string, exitCode = 2): never {
  throw new Fail(message, exitCode);
}
function tryhelp(program: string): never {
  throw new Fail(`Try \`${program} -h' or '${program} --help' for more information.`, 255);
}
/** An option/feature uvs cannot honour yet: refused like a kernel refusal (exit 255), nothing changed. */
function unsupported(what: string): never {
  throw new Fail(`uvsadm: ${what} is not supported by uvs yet`, 255);
}

// ---------------------------------------------------------------------------------------------
// option columns (ipvsadm optnames order; uvs columns appended)

export const OPT_COLUMNS = [
  'numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server',
  'forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'mcast-interface', 'timeout', 'daemon',
  'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid', 'exact', 'ops', 'pe',
  'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-info', 'tun-type',
  'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum',
  // uvs / FULLNAT (Alibaba fork -z, -j; DPVS --proxy-protocol)
  'laddr', 'proxy-protocol', 'synproxy',
  // uvs firewall-mark rules (--mark-rule, --del-mark-rule; -L --mark-rules)
  'destination', 'protocol', 'source', 'dports', 'set-mark', 'mark-rules',
] as const;
export type OptionColumn = (typeof OPT_COLUMNS)[number];

/** '+' compulsory, '1' at most one of the '1's, ' ' optional; columns not named are illegal ('x'). */
export type Legal = '+' | '1' | ' ';

// ---------------------------------------------------------------------------------------------
// parse state

const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 2147483647;
const UINT_MAX = 4294967295;

export interface ParseState {
  cmd: CommandDef;
  options: Set<OptionColumn>;
  svc: { af: number; protocol: number; addr: string; port: number; fwmark: number; sched: string;
    flags: number; timeout: number; netmask: number; pe: string; pp: number; sp: boolean };
  dest: { af: number; addr: string; port: number; fwd: FwdMethod; weight: number; uThreshold: number;
    lThreshold: number; tunType: number; tunPort: number; tunFlags: number };
  list: ListOptions;
  timeouts: { tcp: number; tcpfin: number; udp: number };
  daemon: { state: string; mcastIfn: string; syncid: number; maxlen?: number; group?: string; port?: number; ttl?: number };
  laddr: string;
  schedFlagsArg: string;
  positional: string[];
  /** Free slot for commands added through the extension point. */
  ext: Record<string, unknown>;
  deps: Required<Pick<ParseDeps, 'lookupHost' | 'services' | 'program'>> & ParseDeps;
}

function setOption(st: ParseState, col: OptionColumn): void {
  if (st.options.has(col)) fail(`multiple '${col}' options specified`);
  st.options.add(col);
}

// ---------------------------------------------------------------------------------------------
// C library look-alikes

/** strtol(s, &end, 10) consuming the whole string. */
function strtolFull(s: string): number | null {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(s)) return null;
  return Number(s.trim());
}

/** ipvsadm string_to_number: -1 when not a whole number in [min, max]. */
function stringToNumber(s: string, min: number, max: number): number {
  const n = strtolFull(s);
  if (n === null || !Number.isSafeInteger(n) || n < min || n > max) return -1;
  return n;
}

function parseTimeout(buf: string | undefined, min: number, max: number): number {
  if (buf === undefined) return DEFAULT_PERSISTENT_TIMEOUT;
  const i = stringToNumber(buf, min, max);
  if (i === -1) fail(`invalid timeout value \`${buf}' specified`);
  return i;
}

/** glibc inet_aton: a, a.b, a.b.c, a.b.c.d with decimal, 0octal or 0xhex parts. */
export function inetAton(s: string): number | null {
  const parts = s.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const vals: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
    else if (/^[1-9]\d*$/.test(p)) v = Number(p);
    else return null;
    vals.push(v);
  }
  const last = vals.pop()!;
  for (const v of vals) if (v > 255) return null;
  const lastMax = [0xffffffff, 0xffffff, 0xffff, 0xff][vals.length]!;
  if (last > lastMax) return null;
  let r = 0;
  vals.forEach((v, i) => { r += v * 2 ** (24 - 8 * i); });
  return (r + last) >>> 0;
}

async function hostToAddr(st: ParseState, name: string): Promise<string | null> {
  if (name === '') return null;
  return st.deps.lookupHost(name);
}

const SERVICE_NONE = 0;
const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

interface Target { af: number; addr: string; port: number }

/** ipvsadm parse_service: host[:port] / [v6]:port; host and port names resolved. */
async function parseService(st: ParseState, raw: string, t: Target, protocol: number): Promise<number> {
  if (/^\d*$/.test(raw)) return SERVICE_NONE;
  let buf = raw;
  let portp: string | null = null; // the text after the ':' (null = no port)
  if (buf.startsWith('[')) {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return SERVICE_NONE;
    const after = buf.slice(close + 1);
    buf = buf.slice(0, close);
    if (!after.startsWith(':')) return SERVICE_NONE;
    portp = after.slice(1);
  }
  if (isIPv6(buf) && !buf.includes('%')) {
    t.addr = buf;
    t.af = 10;
  } else {
    // ipvsadm re-derives the port from the last ':' here (losing a bracketed IPv4's port).
    const colon = buf.lastIndexOf(':');
    if (colon >= 0) { portp = buf.slice(colon + 1); buf = buf.slice(0, colon); } else portp = null;
    const a = inetAton(buf);
    if (a !== null) {
      t.addr = ipToString(a);
    } else {
      const h = await hostToAddr(st, buf);
      if (h === null) return SERVICE_NONE;
      t.addr = h;
    }
    t.af = 2;
  }
  let result = SERVICE_ADDR;
  if (portp !== null) {
    result |= SERVICE_PORT;
    let portn = stringToNumber(portp, 0, 65535);
    if (portn === -1) portn = st.deps.services.portOf(portp, protocol);
    if (portn === -1) return SERVICE_NONE;
    t.port = portn;
  }
  return result;
}

function parseFwmark(buf: string): number {
  const n = strtolFull(buf);
  if (n === null || n <= 0 || n > UINT_MAX) fail(`invalid fwmark value \`${buf}' specified`);
  return n;
}

const SCHED_FLAG_BITS: Record<string, [number, string | null]> = {
  'flag-1': [SVC_F_SCHED1, null],
  'flag-2': [SVC_F_SCHED2, null],
  'flag-3': [SVC_F_SCHED3, null],
  'sh-fallback': [SVC_F_SCHED1, 'sh'],
  'sh-port': [SVC_F_SCHED2, 'sh'],
  'mh-fallback': [SVC_F_SCHED1, 'mh'],
  'mh-port': [SVC_F_SCHED2, 'mh'],
};

function parseSchedFlags(sched: string, arg: string): number {
  const s = sched || 'wlc';
  let flags = 0;
  for (const flag of arg.split(',').filter((x) => x !== '')) {
    const def = SCHED_FLAG_BITS[flag];
    if (!def) fail(`invalid scheduler flag \`${flag}'`);
    flags |= def[0];
    if (def[1] !== null && s !== def[1]) fail(`incompatible scheduler flag \`${flag}'`);
  }
  return flags;
}

function isMulticast4(a: string): boolean {
  const v = inetAton(a);
  return v !== null && /^\d+\.\d+\.\d+\.\d+$/.test(a) && (v >>> 28) === 0xe;
}

// ---------------------------------------------------------------------------------------------
// option table

export type ArgKind = 'none' | 'required' | 'optional';

export interface OptionDef {
  long?: string;
  short?: string;
  arg: ArgKind;
  /** When set, the definition only applies under these commands (e.g. `-b`). */
  onlyFor?: string[];
  notFor?: string[];
  /** Records the option; may fail(). `token` is the argv element it came from. */
  apply(st: ParseState, arg: string | undefined, token: string): void | Promise<void>;
}

const flagOpt = (col: OptionColumn, also?: (st: ParseState) => void) => (st: ParseState): void => {
  setOption(st, col);
  also?.(st);
};

async function serviceOpt(st: ParseState, arg: string, protocol: number): Promise<void> {
  setOption(st, 'service-address');
  st.svc.protocol = protocol;
  const r = await parseService(st, arg, st.svc, protocol);
  if (!(r & SERVICE_ADDR)) fail('illegal virtual server address[:port] specified');
}

function fwdOpt(fwd: FwdMethod) {
  return (st: ParseState): void => {
    setOption(st, 'forwarding-method');
    st.dest.fwd = fwd;
  };
}

export const OPTIONS: OptionDef[] = [
  // uvs mark rules, iptables syntax; first in the table so that -d/-p/-s/-m mean the iptables
  // options under these commands only.
  ...MARK_RULE_OPTIONS(),
  { long: 'tcp-service', short: 't', arg: 'required', apply: (st, a) => serviceOpt(st, a!, IPPROTO_TCP) },
  { long: 'udp-service', short: 'u', arg: 'required', apply: (st, a) => serviceOpt(st, a!, IPPROTO_UDP) },
  { long: 'sctp-service', arg: 'required', apply: (st, a) => serviceOpt(st, a!, IPPROTO_SCTP) },
  {
    long: 'fwmark-service', short: 'f', arg: 'required', apply: (st, a) => {
      setOption(st, 'service-address');
      st.svc.af = 2;
      st.svc.protocol = IPPROTO_TCP; // as ipvsadm: "a sane value, even though it is not used"
      st.svc.fwmark = parseFwmark(a!);
    },
  },
  {
    long: 'scheduler', short: 's', arg: 'required', apply: (st, a) => {
      setOption(st, 'scheduler');
      st.svc.sched = a!.slice(0, 15);
    },
  },
  {
    long: 'persistent', short: 'p', arg: 'optional', apply: (st, a) => {
      setOption(st, 'persistent');
      st.svc.flags |= SVC_F_PERSISTENT;
      st.svc.timeout = parseTimeout(a, 1, MAX_TIMEOUT);
    },
  },
  {
    long: 'netmask', short: 'M', arg: 'required', apply: async (st, a) => {
      setOption(st, 'netmask');
      if (st.svc.af !== 10) {
        let m = inetAton(a!);
        if (m === null) {
          const h = await hostToAddr(st, a!);
          m = h === null ? null : inetAton(h);
        }
        if (m === null) fail('illegal virtual server persistent mask specified');
        st.svc.netmask = m;
      } else {
        const n = parseInt(a!, 10);
        if (!(n >= 1 && n <= 128)) fail('illegal ipv6 netmask specified');
        st.svc.netmask = n;
      }
    },
  },
  {
    long: 'real-server', short: 'r', arg: 'required', apply: async (st, a) => {
      setOption(st, 'real-server');
      const t: Target = { af: st.svc.af, addr: st.svc.addr, port: st.svc.port };
      const r = await parseService(st, a!, t, st.svc.protocol);
      st.dest.af = t.af;
      st.dest.addr = t.addr;
      st.dest.port = t.port;
      if (!(r & SERVICE_ADDR)) fail('illegal real server address[:port] specified');
      if (r === SERVICE_ADDR) st.dest.port = st.svc.port;
    },
  },
  { long: 'masquerading', short: 'm', arg: 'none', apply: fwdOpt(FWD_MASQ) },
  { long: 'ipip', short: 'i', arg: 'none', apply: fwdOpt(FWD_TUNNEL) },
  { long: 'gatewaying', short: 'g', arg: 'none', apply: fwdOpt(FWD_DROUTE) },
  // FULLNAT (Alibaba fork): `-b` is the forwarding method on real-server commands only; elsewhere
  // `-b` keeps its mainline meaning, --sched-flags.
  { long: 'fullnat', short: 'b', arg: 'none', onlyFor: ['add-server', 'edit-server'], apply: fwdOpt(FWD_FULLNAT) },
  {
    long: 'sched-flags', short: 'b', arg: 'required', notFor: ['add-server', 'edit-server'], apply: (st, a) => {
      setOption(st, 'sched-flags');
      st.schedFlagsArg = a!.slice(0, 127);
    },
  },
  {
    long: 'weight', short: 'w', arg: 'required', apply: (st, a) => {
      setOption(st, 'weight');
      if ((st.dest.weight = stringToNumber(a!, 0, 65535)) === -1) fail('illegal weight specified');
    },
  },
  {
    long: 'u-threshold', short: 'x', arg: 'required', apply: (st, a) => {
      setOption(st, 'u-threshold');
      if ((st.dest.uThreshold = stringToNumber(a!, 0, INT_MAX)) === -1) fail('illegal u_threshold specified');
    },
  },
  {
    long: 'l-threshold', short: 'y', arg: 'required', apply: (st, a) => {
      setOption(st, 'l-threshold');
      if ((st.dest.lThreshold = stringToNumber(a!, 0, INT_MAX)) === -1) fail('illegal l_threshold specified');
    },
  },
  { long: 'numeric', short: 'n', arg: 'none', apply: flagOpt('numeric', (st) => { st.list.numeric = true; }) },
  { long: 'connection', short: 'c', arg: 'none', apply: flagOpt('connection', (st) => { st.list.connections = true; }) },
  {
    long: 'mcast-interface', arg: 'required', apply: (st, a) => {
      setOption(st, 'mcast-interface');
      st.daemon.mcastIfn = a!.slice(0, 15);
    },
  },
  {
    long: 'syncid', arg: 'required', apply: (st, a) => {
      setOption(st, 'syncid');
      if ((st.daemon.syncid = stringToNumber(a!, 0, 255)) === -1) fail('illegal syncid specified');
    },
  },
  { long: 'timeout', arg: 'none', apply: flagOpt('timeout', (st) => { st.list.timeout = true; }) },
  { long: 'daemon', arg: 'none', apply: flagOpt('daemon', (st) => { st.list.daemon = true; }) },
  { long: 'stats', arg: 'none', apply: flagOpt('stats', (st) => { st.list.stats = true; }) },
  { long: 'rate', arg: 'none', apply: flagOpt('rate', (st) => { st.list.rate = true; }) },
  { long: 'thresholds', arg: 'none', apply: flagOpt('thresholds', (st) => { st.list.thresholds = true; }) },
  { long: 'persistent-conn', arg: 'none', apply: flagOpt('persistent-conn', (st) => { st.list.persistentConn = true; }) },
  { long: 'nosort', arg: 'none', apply: flagOpt('nosort', (st) => { st.list.nosort = true; }) },
  { long: 'sort', arg: 'none', apply: () => { /* the default; a no-op for compatibility */ } },
  { long: 'exact', short: 'X', arg: 'none', apply: flagOpt('exact', (st) => { st.list.exact = true; }) },
  {
    long: 'ipv6', short: '6', arg: 'none', apply: (st) => {
      if (st.svc.fwmark) {
        st.svc.af = 10;
        st.svc.netmask = 128;
      } else {
        fail('-6 used before -f\n');
      }
    },
  },
  { long: 'ops', short: 'o', arg: 'none', apply: flagOpt('ops', (st) => { st.svc.flags |= SVC_F_ONEPACKET; }) },
  {
    long: 'pe', arg: 'required', apply: (st, a) => {
      setOption(st, 'pe');
      st.svc.pe = a!.slice(0, 32);
    },
  },
  {
    long: 'mcast-group', arg: 'required', apply: (st, a) => {
      setOption(st, 'mcast-group');
      if (a!.includes(':')) {
        if (!isIPv6(a!) || !/^ff/i.test(a!)) fail(`invalid IPv6 mcast-group \`${a}'`);
      } else if (!isMulticast4(a!)) {
        fail(`invalid IPv4 mcast-group \`${a}'`);
      }
      st.daemon.group = a!;
    },
  },
  {
    long: 'mcast-port', arg: 'required', apply: (st, a) => {
      setOption(st, 'mcast-port');
      if ((st.daemon.port = stringToNumber(a!, 1, 65535)) === -1) fail('illegal mcast-port specified');
    },
  },
  {
    long: 'mcast-ttl', arg: 'required', apply: (st, a) => {
      setOption(st, 'mcast-ttl');
      if ((st.daemon.ttl = stringToNumber(a!, 1, 255)) === -1) fail('illegal mcast-ttl specified');
    },
  },
  {
    long: 'sync-maxlen', arg: 'required', apply: (st, a) => {
      setOption(st, 'sync-maxlen');
      if ((st.daemon.maxlen = stringToNumber(a!, 1, 65535 - 20 - 8)) === -1) fail('illegal sync-maxlen specified');
    },
  },
  { long: 'tun-info', arg: 'none', apply: flagOpt('tun-info', (st) => { st.list.tunInfo = true; }) },
  {
    long: 'tun-type', arg: 'required', apply: (st, a) => {
      setOption(st, 'tun-type');
      const t = a === 'ipip' ? TUN_TYPE_IPIP : a === 'gue' ? TUN_TYPE_GUE : a === 'gre' ? TUN_TYPE_GRE : -1;
      if (t === -1) fail('illegal tunnel type specified');
      st.dest.tunType = t;
    },
  },
  {
    long: 'tun-port', arg: 'required', apply: (st, a) => {
      setOption(st, 'tun-port');
      const p = stringToNumber(a!, 1, 65535);
      if (p === -1) fail('illegal tunnel port specified');
      st.dest.tunPort = p;
    },
  },
  { long: 'tun-nocsum', arg: 'none', apply: flagOpt('tun-nocsum', (st) => { st.dest.tunFlags |= 0; }) },
  { long: 'tun-csum', arg: 'none', apply: flagOpt('tun-csum', (st) => { st.dest.tunFlags |= 1; }) },
  { long: 'tun-remcsum', arg: 'none', apply: flagOpt('tun-remcsum', (st) => { st.dest.tunFlags |= 2; }) },
  {
    long: 'proxy-protocol', arg: 'required', apply: (st, a) => {
      setOption(st, 'proxy-protocol');
      const v = a!.toLowerCase();
      if (v === 'v1-insecure' || v === 'v2-insecure') unsupported(`--proxy-protocol ${v} (passing on a client's own PROXY header)`);
      const i = (['disable', 'v1', 'v2'] as const).indexOf(v as 'v1');
      if (i < 0) fail(`illegal proxy protocol specified: ${a} (disable, v1 or v2)`);
      st.svc.pp = i;
    },
  },
  {
    long: 'synproxy', short: 'j', arg: 'required', apply: (st, a) => {
      setOption(st, 'synproxy');
      const v = a!.toLowerCase();
      if (v !== 'enable' && v !== 'disable') fail(`illegal synproxy option specified: ${a} (enable or disable)`);
      st.svc.sp = v === 'enable';
    },
  },
  {
    long: 'laddr', short: 'z', arg: 'required', apply: async (st, a) => {
      setOption(st, 'laddr');
      let v = inetAton(a!);
      if (v === null) {
        const h = await hostToAddr(st, a!);
        v = h === null ? null : inetAton(h);
      }
      if (v === null) fail('illegal local address specified');
      st.laddr = ipToString(v);
    },
  },
];

// ---------------------------------------------------------------------------------------------
// command table

export interface CommandDef {
  /** ipvsadm cmdnames[] text, used in messages. */
  name: string;
  short?: string;
  long?: string;
  arg?: ArgKind;
  legal: Partial<Record<OptionColumn, Legal>>;
  /** Runs when the command option is read (e.g. --start-daemon's argument check). */
  onSelect?: (st: ParseState, arg: string | undefined) => void;
  build(st: ParseState): ParseResult | Promise<ParseResult>;
}

function svcSpec(st: ParseState): ServiceSpec {
  const s = st.svc;
  if (s.fwmark) return { protocol: 0, af: s.af, addr: '', port: 0, fwmark: s.fwmark };
  return { protocol: s.protocol, af: s.af, addr: s.addr, port: s.port, fwmark: 0 };
}

function netmaskText(st: ParseState): string {
  return st.svc.af === 10 ? String(st.svc.netmask) : ipToString(st.svc.netmask >>> 0);
}

function rejectUnsupportedService(st: ParseState): void {
  if (st.svc.af === 10) unsupported(st.svc.fwmark ? 'IPv6 (-6) fwmark service' : 'IPv6 virtual service');
}

function rejectUnsupportedDest(st: ParseState): void {
  if (st.dest.af === 10) unsupported('IPv6 real server');
}

function serviceCommand(cmd: 'add-service' | 'edit-service') {
  return (st: ParseState): ParseResult => {
    rejectUnsupportedService(st);
    if (st.svc.pe) unsupported(`persistence engine '${st.svc.pe}'`);
    return {
      kind: 'command',
      command: {
        cmd, svc: svcSpec(st),
        opts: {
          sched: st.svc.sched, flags: st.svc.flags, timeout: st.svc.timeout, netmask: netmaskText(st), pe: st.svc.pe,
          ...(st.svc.pp !== 0 ? { proxyProtocol: st.svc.pp } : {}),
          ...(st.svc.sp ? { synproxy: true } : {}),
        },
      },
    };
  };
}

function serverCommand(cmd: 'add-server' | 'edit-server') {
  return (st: ParseState): ParseResult => {
    rejectUnsupportedService(st);
    rejectUnsupportedDest(st);
    const d = st.dest;
    return {
      kind: 'command',
      command: {
        cmd, svc: svcSpec(st), dest: { addr: d.addr, port: d.port },
        opts: { fwd: d.fwd, weight: d.weight, uThreshold: d.uThreshold, lThreshold: d.lThreshold, tunType: d.tunType, tunPort: d.tunPort, tunFlags: d.tunFlags },
      },
    };
  };
}

const SVC_OPTS: Partial<Record<OptionColumn, Legal>> = {
  'service-address': '+', scheduler: ' ', persistent: ' ', netmask: ' ', ops: ' ', pe: ' ', 'sched-flags': ' ',
  'proxy-protocol': ' ', synproxy: ' ',
};
const SRV_OPTS: Partial<Record<OptionColumn, Legal>> = {
  'service-address': '+', 'real-server': '+', 'forwarding-method': ' ', weight: ' ', 'u-threshold': ' ',
  'l-threshold': ' ', 'tun-type': ' ', 'tun-port': ' ', 'tun-nocsum': ' ', 'tun-csum': ' ', 'tun-remcsum': ' ',
};

/** ipvsadm's default --mcast-interface (DEF_MCAST_IFN). */
export const DEF_MCAST_IFN = 'eth0';

function daemonState(name: string) {
  return (st: ParseState, arg: string | undefined): void => {
    if (arg === 'master' || arg === 'backup') st.daemon.state = arg;
    else fail(name === 'start-daemon' ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
  };
}

export const COMMANDS: CommandDef[] = [
  { name: 'add-service', short: 'A', long: 'add-service', legal: SVC_OPTS, build: serviceCommand('add-service') },
  { name: 'edit-service', short: 'E', long: 'edit-service', legal: SVC_OPTS, build: serviceCommand('edit-service') },
  {
    name: 'delete-service', short: 'D', long: 'delete-service', legal: { 'service-address': '+' },
    build: (st) => { rejectUnsupportedService(st); return { kind: 'command', command: { cmd: 'delete-service', svc: svcSpec(st) } }; },
  },
  { name: 'flush', short: 'C', long: 'clear', legal: {}, build: () => ({ kind: 'command', command: { cmd: 'clear' } }) },
  {
    name: 'list', short: 'L', long: 'list',
    legal: {
      numeric: ' ', connection: '1', 'service-address': '1', timeout: '1', daemon: '1', stats: ' ', rate: ' ', 'mark-rules': '1',
      thresholds: ' ', 'persistent-conn': ' ', nosort: ' ', syncid: ' ', exact: ' ', 'tun-info': ' ',
    },
    build: (st) => {
      const o = st.options;
      if ((['connection', 'timeout', 'daemon'] as const).some((c) => o.has(c)) && (['stats', 'rate', 'thresholds'] as const).some((c) => o.has(c))
        || ((o.has('timeout') || o.has('daemon')) && o.has('persistent-conn'))) {
        fail('options conflicts in the list command');
      }
      if (o.has('mark-rules')) return { kind: 'ext', name: 'list-mark-rules', data: {} };
      const r: ListOptions = { ...st.list };
      if (o.has('service-address')) {
        rejectUnsupportedService(st);
        r.service = svcSpec(st);
      }
      return { kind: 'list', ...r };
    },
  },
  {
    name: 'add-server', short: 'a', long: 'add-server', legal: SRV_OPTS, build: serverCommand('add-server'),
  },
  {
    name: 'delete-server', short: 'd', long: 'delete-server', legal: { 'service-address': '+', 'real-server': '+' },
    build: (st) => {
      rejectUnsupportedService(st);
      if (st.dest.af === 10) unsupported('IPv6 real server');
      return { kind: 'command', command: { cmd: 'delete-server', svc: svcSpec(st), dest: { addr: st.dest.addr, port: st.dest.port } } };
    },
  },
  { name: 'edit-server', short: 'e', long: 'edit-server', legal: SRV_OPTS, build: serverCommand('edit-server') },
  {
    name: 'set', long: 'set', legal: {},
    build: (st) => ({ kind: 'command', command: { cmd: 'set-timeouts', ...st.timeouts } }),
  },
  {
    name: 'start-daemon', long: 'start-daemon', arg: 'required',
    legal: { 'mcast-interface': ' ', syncid: ' ', 'mcast-group': ' ', 'mcast-port': ' ', 'mcast-ttl': ' ', 'sync-maxlen': ' ' },
    onSelect: daemonState('start-daemon'),
    build: (st) => {
      const d = st.daemon;
      const daemon: Extract<Command, { cmd: 'start-daemon' }>['daemon'] = {
        state: d.state as 'master' | 'backup', mcastIfn: d.mcastIfn || DEF_MCAST_IFN, syncid: d.syncid,
      };
      if (d.maxlen !== undefined) daemon.maxlen = d.maxlen;
      if (d.group !== undefined) daemon.group = d.group;
      if (d.port !== undefined) daemon.port = d.port;
      if (d.ttl !== undefined) daemon.ttl = d.ttl;
      return { kind: 'command', command: { cmd: 'start-daemon', daemon } };
    },
  },
  {
    name: 'stop-daemon', long: 'stop-daemon', arg: 'required', legal: { syncid: ' ' },
    onSelect: daemonState('stop-daemon'),
    build: (st) => ({ kind: 'command', command: { cmd: 'stop-daemon', state: st.daemon.state as 'master' | 'backup' } }),
  },
  { name: 'restore', short: 'R', long: 'restore', legal: {}, build: () => ({ kind: 'restore' }) },
  { name: 'save', short: 'S', long: 'save', legal: { numeric: ' ' }, build: (st) => ({ kind: 'save', numeric: st.list.numeric }) },
  {
    name: 'zero', short: 'Z', long: 'zero', legal: { 'service-address': ' ' },
    build: (st) => {
      if (!st.options.has('service-address')) return { kind: 'command', command: { cmd: 'zero' } };
      rejectUnsupportedService(st);
      return { kind: 'command', command: { cmd: 'zero', svc: svcSpec(st) } };
    },
  },
  // --- uvs / FULLNAT local addresses (Alibaba fork -P/-Q/-G with -z) ---
  {
    name: 'add-laddr', short: 'P', long: 'add-laddr', legal: { 'service-address': '+', laddr: '+' },
    build: (st) => { rejectUnsupportedService(st); return { kind: 'command', command: { cmd: 'add-laddr', svc: svcSpec(st), laddr: st.laddr } }; },
  },
  {
    name: 'del-laddr', short: 'Q', long: 'del-laddr', legal: { 'service-address': '+', laddr: '+' },
    build: (st) => { rejectUnsupportedService(st); return { kind: 'command', command: { cmd: 'del-laddr', svc: svcSpec(st), laddr: st.laddr } }; },
  },
  {
    name: 'get-laddr', short: 'G', long: 'get-laddr', legal: { 'service-address': ' ', numeric: ' ' },
    build: (st) => {
      if (!st.options.has('service-address')) return { kind: 'get-laddr' };
      rejectUnsupportedService(st);
      return { kind: 'get-laddr', service: svcSpec(st) };
    },
  },
  // --- uvs firewall-mark rules (the mangle-table MARK line of the LVS documents) ---
  {
    name: 'mark-rule', long: 'mark-rule', build: markRuleCommand('add-mark-rule'),
    legal: { destination: '+', protocol: '+', 'set-mark': '+', source: ' ', dports: ' ' },
  },
  {
    name: 'del-mark-rule', long: 'del-mark-rule', build: markRuleCommand('del-mark-rule'),
    legal: { destination: '+', protocol: '+', 'set-mark': '+', source: ' ', dports: ' ' },
  },
  {
    name: 'list-mark-rules', long: 'list-mark-rules', legal: { numeric: ' ' },
    build: () => ({ kind: 'ext', name: 'list-mark-rules', data: {} }),
  },
  // --- uvs health checks (src/health): keepalived.conf / ldirectord.cf, check states ---
  {
    name: 'load-keepalived', long: 'load-keepalived', arg: 'required', legal: {},
    onSelect: (st, arg) => { st.ext.healthFile = arg; },
    build: (st) => ({ kind: 'ext', name: 'load-keepalived', data: { file: st.ext.healthFile, format: 'keepalived' } }),
  },
  {
    name: 'load-ldirectord', long: 'load-ldirectord', arg: 'required', legal: {},
    onSelect: (st, arg) => { st.ext.healthFile = arg; },
    build: (st) => ({ kind: 'ext', name: 'load-keepalived', data: { file: st.ext.healthFile, format: 'ldirectord' } }),
  },
  { name: 'checks', long: 'checks', legal: { numeric: ' ' }, build: () => ({ kind: 'ext', name: 'checks', data: {} }) },
  // --- uvs: the IPVS sysctls (what `sysctl net.ipv4.vs…` does on a kernel director) ---
  {
    name: 'sysctl', long: 'sysctl', arg: 'optional', legal: {},
    onSelect: (st, arg) => { st.ext.sysctl = arg; },
    build: (st) => ({ kind: 'ext', name: 'sysctl', data: { arg: st.ext.sysctl as string | undefined } }),
  },
];

function markRuleState(st: ParseState): MarkRuleSpec {
  const cur = st.ext.markRule as MarkRuleSpec | undefined;
  if (cur) return cur;
  const r: MarkRuleSpec = { protocol: 0, daddr: '', dprefix: 32, saddr: '', sprefix: 0, dports: [], mark: 0 };
  st.ext.markRule = r;
  return r;
}

function MARK_RULE_OPTIONS(): OptionDef[] {
  const onlyFor = ['mark-rule', 'del-mark-rule'];
  const ports = (col: OptionColumn) => (st: ParseState, a: string | undefined): void => {
    setOption(st, col);
    const p = parsePortList(a!);
    if (p === null) fail(`invalid port list \`${a}' specified`);
    markRuleState(st).dports = p;
  };
  const addr = (col: 'destination' | 'source') => (st: ParseState, a: string | undefined): void => {
    setOption(st, col);
    const v = parseAddrPrefix(a!);
    if (v === null) fail(`invalid ${col} address \`${a}' specified`);
    const r = markRuleState(st);
    if (col === 'destination') { r.daddr = v.addr; r.dprefix = v.prefix; } else { r.saddr = v.addr; r.sprefix = v.prefix; }
  };
  return [
    { long: 'destination', short: 'd', arg: 'required', onlyFor, apply: addr('destination') },
    { long: 'source', short: 's', arg: 'required', onlyFor, apply: addr('source') },
    {
      long: 'protocol', short: 'p', arg: 'required', onlyFor, apply: (st, a) => {
        setOption(st, 'protocol');
        const p = parseRuleProto(a!);
        if (p < 0) fail(`invalid protocol \`${a}' specified (tcp or udp)`);
        markRuleState(st).protocol = p;
      },
    },
    { long: 'dports', arg: 'required', onlyFor, apply: ports('dports') },
    {
      long: 'dport', arg: 'required', onlyFor, apply: (st, a) => {
        if (a!.includes(',')) fail(`invalid port \`${a}' specified (use --dports for a list)`);
        ports('dports')(st, a);
      },
    },
    {
      long: 'set-mark', arg: 'required', onlyFor, apply: (st, a) => {
        setOption(st, 'set-mark');
        const m = parseMarkValue(a!);
        if (m < 0) fail(`invalid mark value \`${a}' specified`);
        markRuleState(st).mark = m;
      },
    },
    // `-m multiport` / `-m tcp` of the iptables line: accepted and ignored.
    {
      long: 'match', short: 'm', arg: 'required', onlyFor, apply: (_st, a) => {
        if (a !== 'multiport' && a !== 'tcp' && a !== 'udp') fail(`unsupported match \`${a}' (uvs mark rules know tcp, udp, multiport)`);
      },
    },
    { long: 'mark-rules', arg: 'none', onlyFor: ['list'], apply: flagOpt('mark-rules') },
  ];
}

function markRuleCommand(cmd: 'add-mark-rule' | 'del-mark-rule') {
  return (st: ParseState): ParseResult => {
    const r = markRuleState(st);
    return { kind: 'command', command: { cmd, rule: { ...r, dports: r.dports.map(([lo, hi]) => [lo, hi]) } } };
  };
}

/** `-l` is a second short name of list. */
const EXTRA_SHORT_COMMANDS: Record<string, string> = { l: 'list' };
/** Handled before any command: -h / -v. */
const EARLY: Record<string, 'help' | 'version'> = { h: 'help', help: 'help', v: 'version', version: 'version' };

// ---------------------------------------------------------------------------------------------
// popt-like tokenizer

interface Occurrence {
  /** Option name as written: single char for short options, long name otherwise. */
  name: string;
  isLong: boolean;
  arg: string | undefined;
  token: string;
}

type Lookup = (name: string, isLong: boolean) => { arg: ArgKind } | undefined;

/**
 * Reads one option occurrence at a time (like poptGetNextOpt), collecting non-option arguments.
 * Errors: { error: 'unknown option' | 'missing argument' | 'option does not take an argument' }.
 */
class Tokenizer {
  private i = 0;
  private cluster: { token: string; rest: string } | null = null;
  private dashdash = false;
  readonly positional: string[] = [];
  constructor(private readonly argv: string[]) {}

  next(lookup: Lookup): Occurrence | { error: string; token: string } | null {
    for (;;) {
      if (this.cluster && this.cluster.rest.length > 0) {
        const { token } = this.cluster;
        const ch = this.cluster.rest[0]!;
        this.cluster.rest = this.cluster.rest.slice(1);
        const def = lookup(ch, false);
        if (!def) { this.cluster = null; return { error: 'unknown option', token }; }
        if (def.arg === 'none') return { name: ch, isLong: false, arg: undefined, token };
        if (this.cluster.rest.length > 0) {
          const arg = this.cluster.rest;
          this.cluster = null;
          return { name: ch, isLong: false, arg, token };
        }
        this.cluster = null;
        return this.takeArg(ch, false, def.arg, token);
      }
      this.cluster = null;
      if (this.i >= this.argv.length) return null;
      const tok = this.argv[this.i++]!;
      if (this.dashdash || tok === '-' || !tok.startsWith('-')) { this.positional.push(tok); continue; }
      if (tok === '--') { this.dashdash = true; continue; }
      if (tok.startsWith('--')) {
        const eq = tok.indexOf('=');
        const name = eq >= 0 ? tok.slice(2, eq) : tok.slice(2);
        const def = lookup(name, true);
        if (!def) return { error: 'unknown option', token: tok };
        if (eq >= 0) {
          if (def.arg === 'none') return { error: 'option does not take an argument', token: tok };
          return { name, isLong: true, arg: tok.slice(eq + 1), token: tok };
        }
        if (def.arg === 'none') return { name, isLong: true, arg: undefined, token: tok };
        return this.takeArg(name, true, def.arg, tok);
      }
      this.cluster = { token: tok, rest: tok.slice(1) };
    }
  }

  /** After an unknown option: consume the next token when it looks like that option's value. */
  takeLooseValue(): string | undefined {
    if (this.cluster) { this.cluster = null; return undefined; }
    const nxt = this.argv[this.i];
    if (nxt === undefined || nxt.startsWith('-') || this.dashdash) return undefined;
    this.i++;
    return nxt;
  }

  private takeArg(name: string, isLong: boolean, kind: ArgKind, token: string): Occurrence | { error: string; token: string } {
    const nxt = this.argv[this.i];
    if (kind === 'optional') {
      if (nxt !== undefined && !nxt.startsWith('-') && !this.dashdash) { this.i++; return { name, isLong, arg: nxt, token }; }
      return { name, isLong, arg: undefined, token };
    }
    if (nxt === undefined) return { error: 'missing argument', token };
    this.i++;
    return { name, isLong, arg: nxt, token };
  }
}

function findCommand(name: string, isLong: boolean): CommandDef | undefined {
  if (isLong) return COMMANDS.find((c) => c.long === name);
  const alias = EXTRA_SHORT_COMMANDS[name];
  if (alias) return COMMANDS.find((c) => c.name === alias);
  return COMMANDS.find((c) => c.short === name);
}

function findOption(name: string, isLong: boolean, cmd: string | undefined): OptionDef | undefined {
  return OPTIONS.find((o) => (isLong ? o.long === name : o.short === name)
    && (!o.onlyFor || (cmd !== undefined && o.onlyFor.includes(cmd)))
    && (!o.notFor || cmd === undefined || !o.notFor.includes(cmd)));
}

/** Any known option or command (for popt's "unknown option" decision). */
function knownArg(name: string, isLong: boolean, cmd: string | undefined): { arg: ArgKind } | undefined {
  const o = findOption(name, isLong, cmd);
  if (o) return o;
  const c = findCommand(name, isLong);
  if (c) return { arg: c.arg ?? 'none' };
  if (EARLY[name] && (isLong ? name.length > 1 : name.length === 1)) return { arg: 'none' };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// checks (generic_opt_check, tunnel_opt_check, process_options)

function genericOptCheck(st: ParseState): void {
  let last = '';
  let count = 0;
  for (const col of OPT_COLUMNS) {
    const legal = st.cmd.legal[col] ?? 'x';
    if (!st.options.has(col)) {
      if (legal === '+') fail(`You need to supply the '${col}' option for the '${st.cmd.name}' command`);
    } else {
      if (legal === 'x') fail(`Illegal '${col}' option with the '${st.cmd.name}' command`);
      if (legal === '1') {
        count++;
        if (count === 1) { last = col; continue; }
        fail(`The option '${col}' conflicts with the '${last}' option in the '${st.cmd.name}' command`);
      }
    }
  }
}

const TUN_NAMES = ['ipip', 'gue', 'gre'];
const TUN_OPTS: OptionColumn[] = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
const TUN_LEGAL: string[][] = [
  ['x', 'x', 'x', 'x'],
  ['+', '1', '1', '1'],
  ['x', '1', '1', 'x'],
];

function tunnelOptCheck(st: ParseState): void {
  const row = TUN_LEGAL[st.dest.tunType]!;
  const tname = TUN_NAMES[st.dest.tunType]!;
  let last = '';
  let count = 0;
  TUN_OPTS.forEach((col, j) => {
    if (!st.options.has(col)) {
      if (row[j] === '+') fail(`You need to supply the '${col}' option for the '${tname}' tunnel type`);
    } else {
      if (row[j] === 'x') fail(`Illegal '${col}' option with the '${tname}' tunnel type`);
      if (row[j] === '1') {
        count++;
        if (count === 1) { last = col; return; }
        fail(`The option '${col}' conflicts with the '${last}' option in the '${tname}' tunnel type`);
      }
    }
  });
}

function newState(cmd: CommandDef, deps: ParseState['deps']): ParseState {
  return {
    cmd,
    options: new Set(),
    svc: { af: 2, protocol: 0, addr: '', port: 0, fwmark: 0, sched: '', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '', pp: 0, sp: false },
    dest: { af: 2, addr: '', port: 0, fwd: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: 0 },
    list: { ...DEFAULT_LIST },
    timeouts: { tcp: 0, tcpfin: 0, udp: 0 },
    daemon: { state: '', mcastIfn: '', syncid: 0 },
    laddr: '',
    schedFlagsArg: '',
    positional: [],
    ext: {},
    deps,
  };
}

// ---------------------------------------------------------------------------------------------
// entry point

/**
 * Parses one ipvsadm invocation (argv without the program name). Async because host names are
 * resolved where ipvsadm resolves them. Never throws for user mistakes: returns kind 'error'.
 */
export async function parseArgs(argv: string[], deps: ParseDeps = {}): Promise<ParseResult> {
  const d: ParseState['deps'] = {
    ...deps,
    lookupHost: deps.lookupHost ?? systemLookupHost,
    services: deps.services ?? ServicesDb.system(),
    program: deps.program ?? 'uvsadm',
  };
  if (argv.length === 0) return { kind: 'list', ...DEFAULT_LIST };
  try {
    return await parseInner(argv, d);
  } catch (e) {
    if (e instanceof Fail) return { kind: 'error', message: e.message, exitCode: e.exitCode };
    throw e;
  }
}

async function parseInner(argv: string[], deps: ParseState['deps']): Promise<ParseResult> {
  const tz = new Tokenizer(argv);

  // The first option must be the command (ipvsadm's first poptGetNextOpt).
  const first = tz.next((n, l) => knownArg(n, l, undefined));
  if (first === null || 'error' in first) tryhelp(deps.program);
  const early = EARLY[first.name];
  if (early && (first.isLong ? first.name.length > 1 : first.name.length === 1)) return { kind: early };
  const cmd = findCommand(first.name, first.isLong);
  if (!cmd) tryhelp(deps.program);
  const st = newState(cmd, deps);
  cmd.onSelect?.(st, first.arg);
  let deferredTunType: { opt: OptionDef; token: string } | undefined;

  for (;;) {
    const occ = tz.next((n, l) => knownArg(n, l, cmd.name));
    if (occ === null) break;
    if ('error' in occ) {
      if (deps.restore && occ.error === 'unknown option') {
        skipUnknown(tz, occ.token, deps);
        continue;
      }
      fail(`${occ.token}: ${occ.error}`, 255);
    }
    const opt = findOption(occ.name, occ.isLong, cmd.name);
    if (!opt) fail(`invalid option \`${occ.token}'`);
    if (deps.restore && opt.long === 'tun-type' && occ.arg === 'ipip' && !deferredTunType) {
      deferredTunType = { opt, token: occ.token };
      continue;
    }
    await opt.apply(st, occ.arg, occ.token);
  }
  if (deferredTunType) {
    // Restore: `--tun-type ipip` (the default) is harmless on any dest; apply it only where legal.
    if (st.dest.fwd === FWD_TUNNEL) await deferredTunType.opt.apply(st, 'ipip', deferredTunType.token);
    else deps.warnings?.push('ignoring `--tun-type ipip\' on a non-tunnel real server');
  }

  const pos = tz.positional;
  if (cmd.name === 'set') {
    if (pos.length < 3) fail('--set option requires 3 timeout values');
    st.timeouts.tcp = parseTimeout(pos[0], 0, MAX_TIMEOUT);
    st.timeouts.tcpfin = parseTimeout(pos[1], 0, MAX_TIMEOUT);
    st.timeouts.udp = parseTimeout(pos[2], 0, MAX_TIMEOUT);
    pos.splice(0, 3);
  }
  if (pos.length > 0) fail(`unexpected argument ${pos[0]}`);

  if (st.schedFlagsArg) {
    st.svc.flags &= ~(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
    st.svc.flags |= parseSchedFlags(st.svc.sched, st.schedFlagsArg);
  }

  genericOptCheck(st);

  if (cmd.name === 'add-service' || cmd.name === 'edit-service') {
    if (!st.svc.fwmark && !st.svc.port && !(st.svc.flags & SVC_F_PERSISTENT)) {
      fail('Zero port specified for non-persistent service');
    }
    if ((st.svc.flags & SVC_F_ONEPACKET) && !st.svc.fwmark && st.svc.protocol !== IPPROTO_UDP) {
      fail('One-Packet Scheduling is only for UDP virtual services');
    }
    if (st.svc.pp !== 0 && !st.svc.fwmark && st.svc.protocol === IPPROTO_UDP) {
      unsupported('the PROXY protocol for UDP services');
    }
    if (st.svc.sp && (st.svc.fwmark || st.svc.protocol === IPPROTO_UDP)) fail('The SYN proxy (-j) is only for TCP virtual services');
    if (!st.svc.sched) st.svc.sched = 'wlc';
  }

  if (cmd.name === 'add-server' || cmd.name === 'edit-server') {
    const fwd = st.dest.fwd;
    // DR and TUN cannot map ports (the packet keeps its destination port).
    if (!st.svc.fwmark && (fwd === FWD_TUNNEL || fwd === FWD_DROUTE)) st.dest.port = st.svc.port;
    if (st.dest.af !== st.svc.af && fwd !== FWD_TUNNEL) fail('Different address family is allowed only for tunneling servers');
    const tunOpts: OptionColumn[] = ['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
    if (tunOpts.some((c) => st.options.has(c)) && fwd !== FWD_TUNNEL) fail('Tunnel options conflict with forward method');
    tunnelOptCheck(st);
  }

  return cmd.build(st);
}

/** Restore tolerance: drop an unknown option and its value (a following token not starting with '-'). */
function skipUnknown(tz: Tokenizer, token: string, deps: ParseState['deps']): void {
  const v = tz.takeLooseValue();
  deps.warnings?.push(`ignoring unknown option \`${v === undefined ? token : `${token} ${v}`}'`);
}

/** The -h text, ipvsadm's adapted to uvsadm (FULLNAT commands and --sock added). */
export function usageText(program: string, versionLine: string): string {
  const p = program;
  return `${versionLine}
Usage:
  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  ${p} -D virtual-service
  ${p} -C
  ${p} -R
  ${p} -S [-n]
  ${p} -a|e virtual-service -r server-address [options]
  ${p} -d virtual-service -r server-address
  ${p} -L|l [virtual-service] [options]
  ${p} -Z [virtual-service]
  ${p} --set tcp tcpfin udp
  ${p} --start-daemon {master|backup} [daemon-options]
  ${p} --stop-daemon {master|backup}
  ${p} -P|Q virtual-service -z local-address
  ${p} -G [virtual-service]
  ${p} --mark-rule|--del-mark-rule -d vip[/mask] -p tcp|udp [--dports p1,p2:p3 | --dport p] [-s src[/mask]] --set-mark mark
  ${p} --list-mark-rules | -L --mark-rules
  ${p} --load-keepalived keepalived.conf | --load-ldirectord ldirectord.cf
  ${p} --checks
  ${p} --sysctl [NAME[=VALUE]]
  ${p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --add-laddr       -P        add a FULLNAT local address to a service
  --del-laddr       -Q        delete a FULLNAT local address from a service
  --get-laddr       -G        list FULLNAT local addresses
  --mark-rule                 append a firewall-mark rule (first match wins; for -f services)
  --del-mark-rule             delete a firewall-mark rule
  --list-mark-rules           list the firewall-mark rules
  --load-keepalived FILE      (re)load keepalived.conf virtual servers and health checks (difference applied)
  --load-ldirectord FILE      (re)load an ldirectord.cf the same way
  --checks                    list the health checks with their state, last result and time
  --sysctl [NAME[=VALUE]]     list the IPVS sysctls (net.ipv4.vs.*), show one, or set one
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6 (not supported by uvs yet)
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default (not supported by uvs yet).
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   full NAT (with -a|-e; with -A|-E, -b is --sched-flags)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip (only ipip in uvs yet).
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     FULLNAT local address (with -P|-Q)
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --proxy-protocol disable|v1|v2      client address to NAT/FULLNAT real servers in a PROXY header (TCP)
  --synproxy    -j enable|disable     answer SYNs with SYN cookies, connect to the real server after the ACK (NAT/FULLNAT TCP)
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --sock         PATH                 uvsd control socket (default $UVS_SOCK or /run/uvs/uvsd.sock)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
`;
}

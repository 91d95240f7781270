/**
 * ipvsadm 1.31 listings, byte for byte, from the daemon's snapshots.
 *
 * Every format string below is ipvsadm's (A `print_title`, `print_service_entry`, `list_conn`,
 * `print_conn`, `print_largenum`, `list_timeout`, `list_daemon`); trailing blanks are what those
 * printf formats produce. Formatting is synchronous and pure: name resolution (without -n) is done
 * beforehand by `buildResolver`, which looks every address up once and hands back a sync table.
 *
 * `-G` (FULLNAT local addresses) uses the Alibaba LVS fork's layout (`list_laddrs_print_title`,
 * `list_laddrs_print_service`, `list_laddrs_print_laddr` of alibaba/LVS tools/ipvsadm); the
 * snapshots carry no per-laddr counters yet, so CONFLICTS and CONNS print 0.
 */
import { readFileSync } from 'node:fs';
import { lookupService } from 'node:dns';
import {
  FWD_DROUTE, FWD_FULLNAT, FWD_LOCAL, FWD_MASQ, FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
  PP_NAMES, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
  TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP, CONN_TAB_SIZE, protoName, type FwdMethod,
} from '../../model/constants.js';
import { parseIp } from '../../model/addr.js';
import type { ConnSnap, DestSnap, InfoSnap, ServiceSnap, Timeouts } from '../../control/types.js';

// ---------------------------------------------------------------------------------------------
// printf helpers

/** `%-Ns` */
export function padR(s: string | number, n: number): string {
  const t = String(s);
  return t.length >= n ? t : t + ' '.repeat(n - t.length);
}
/** `%Ns` / `%Nu` */
export function padL(s: string | number, n: number): string {
  const t = String(s);
  return t.length >= n ? t : ' '.repeat(n - t.length) + t;
}

/** A C `%u`/`%d` of a snapshot counter (never fractional, never negative for %u). */
function u(n: number): string {
  return String(Math.max(0, Math.trunc(n)));
}

/** ipvsadm `print_largenum`. */
export function largenum(i: number, exact: boolean): string {
  const n = Math.max(0, Math.trunc(i));
  if (exact) {
    const s = String(n);
    return padL(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (n < 100000000) return padL(n, 9);
  if (n < 1000000000) return padL(Math.floor(n / 1000), 8) + 'K';
  if (n < 100000000000) return padL(Math.floor(n / 1000000), 8) + 'M';
  if (n < 100000000000000) return padL(Math.floor(n / 1000000000), 8) + 'G';
  return padL(Math.floor(n / 1000000000000), 8) + 'T';
}

// ---------------------------------------------------------------------------------------------
// names: /etc/services and reverse host lookups

interface ServEnt { name: string; port: number; proto: string; aliases: string[] }

/** A parsed /etc/services (getservbyname / getservbyport semantics: first matching line wins). */
export class ServicesDb {
  private readonly entries: ServEnt[];
  constructor(entries: ServEnt[]) { this.entries = entries; }

  static parse(text: string): ServicesDb {
    const out: ServEnt[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*$/, '').trim();
      if (!line) continue;
      const f = line.split(/\s+/);
      const m = /^(\d+)\/(\w+)$/.exec(f[1] ?? '');
      if (!m) continue;
      out.push({ name: f[0]!, port: Number(m[1]), proto: m[2]!.toLowerCase(), aliases: f.slice(2) });
    }
    return new ServicesDb(out);
  }

  private static cached: ServicesDb | undefined;
  /** The system's /etc/services (empty when unreadable, as getservbyname then finds nothing). */
  static system(path = '/etc/services'): ServicesDb {
    if (!ServicesDb.cached) {
      let text = '';
      try { text = readFileSync(path, 'utf8'); } catch { /* no services file: numeric only */ }
      ServicesDb.cached = ServicesDb.parse(text);
    }
    return ServicesDb.cached;
  }

  static protoKey(proto: number): string | undefined {
    return proto === IPPROTO_TCP ? 'tcp' : proto === IPPROTO_UDP ? 'udp' : proto === IPPROTO_SCTP ? 'sctp' : undefined;
  }

  /** ipvsadm `service_to_port`: -1 when unknown (or the protocol is not TCP/UDP/SCTP). */
  portOf(name: string, proto: number): number {
    const p = ServicesDb.protoKey(proto);
    if (!p) return -1;
    for (const e of this.entries) if (e.proto === p && (e.name === name || e.aliases.includes(name))) return e.port;
    return -1;
  }

  /** ipvsadm `port_to_service`. */
  nameOf(port: number, proto: number): string | undefined {
    const p = ServicesDb.protoKey(proto);
    if (!p) return undefined;
    for (const e of this.entries) if (e.proto === p && e.port === port) return e.name;
    return undefined;
  }
}

/** Sync name tables used while formatting a non-numeric listing. */
export interface NameResolver {
  /** Host name of an address, or undefined to print it numerically. */
  host(addr: string): string | undefined;
  /** Service name of a port for a protocol, or undefined. */
  port(port: number, proto: number): string | undefined;
}

export type ReverseLookup = (addr: string) => Promise<string | undefined>;

/** gethostbyaddr through getnameinfo (/etc/hosts, then DNS), bounded so a dead resolver cannot hang us. */
export const systemReverseLookup: ReverseLookup = (addr) => new Promise((resolve) => {
  const timer = setTimeout(() => resolve(undefined), 5000);
  try {
    lookupService(addr, 0, (err, hostname) => {
      clearTimeout(timer);
      resolve(err || !hostname || hostname === addr ? undefined : hostname);
    });
  } catch {
    clearTimeout(timer);
    resolve(undefined);
  }
});

/** Looks every address up once (in parallel) and returns a sync resolver. */
export async function buildResolver(addrs: Iterable<string>, services: ServicesDb = ServicesDb.system(),
  reverse: ReverseLookup = systemReverseLookup): Promise<NameResolver> {
  const uniq = [...new Set([...addrs].filter((a) => a !== ''))];
  const names = new Map<string, string | undefined>();
  await Promise.all(uniq.map(async (a) => { names.set(a, await reverse(a)); }));
  return {
    host: (a) => names.get(a),
    port: (p, proto) => services.nameOf(p, proto),
  };
}

/** Every address a listing of these snapshots may print. */
export function addressesOf(services: ServiceSnap[], conns: ConnSnap[] = []): string[] {
  const out: string[] = [];
  for (const s of services) {
    if (s.addr) out.push(s.addr);
    for (const d of s.dests) out.push(d.addr);
  }
  for (const c of conns) out.push(c.caddr, c.vaddr, c.daddr);
  return out;
}

/** ipvsadm `addrport_to_anyname`. */
export function addrPortName(af: number, addr: string, port: number, proto: number, numeric: boolean,
  names?: NameResolver): string {
  const v6 = af === 10;
  const open = v6 ? '[' : '';
  const close = v6 ? ']' : '';
  if (numeric || !names) return `${open}${addr}${close}:${port}`;
  const h = names.host(addr) ?? addr;
  const p = names.port(port, proto) ?? String(port);
  return `${open}${h}${close}:${p}`;
}

// ---------------------------------------------------------------------------------------------
// sorting (libipvs ipvs_cmp_services / ipvs_cmp_dests with glibc's merge-sort qsort)

function ip32(a: string): number {
  const v = parseIp(a);
  return v < 0 ? 0 : v;
}

/** Signed 32-bit difference, as the C `int r = a - b` of unsigned host-order values. */
function diff32(a: number, b: number): number {
  return (a - b) | 0;
}

export function cmpServices(a: ServiceSnap, b: ServiceSnap): number {
  let r = diff32(a.fwmark >>> 0, b.fwmark >>> 0);
  if (r) return r;
  r = a.af - b.af;
  if (r) return r;
  r = a.protocol - b.protocol;
  if (r) return r;
  r = diff32(ip32(a.addr), ip32(b.addr));
  if (r) return r;
  return a.port - b.port;
}

export function cmpDests(a: DestSnap, b: DestSnap): number {
  const r = diff32(ip32(a.addr), ip32(b.addr));
  if (r) return r;
  return a.port - b.port;
}

/**
 * glibc qsort (msort_with_tmp): top-down merge sort, n1 = n/2, ties taken from the left. The
 * comparators above are not transitive (the wrapped difference), so the algorithm decides the
 * order; this one reproduces glibc's. Returns a new array.
 */
export function qsortGlibc<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const b = items.slice();
  const tmp: T[] = new Array(b.length);
  const msort = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = n >>> 1;
    const n2 = n - n1;
    msort(lo, n1);
    msort(lo + n1, n2);
    let i = lo, j = lo + n1, k = 0;
    const iEnd = lo + n1, jEnd = lo + n;
    while (i < iEnd && j < jEnd) {
      if (cmp(b[i]!, b[j]!) <= 0) tmp[k++] = b[i++]!;
      else tmp[k++] = b[j++]!;
    }
    while (i < iEnd) tmp[k++] = b[i++]!;
    for (let x = 0; x < k; x++) b[lo + x] = tmp[x]!;
  };
  msort(0, b.length);
  return b;
}

// ---------------------------------------------------------------------------------------------
// service / dest listing

export interface ListFormat {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  tunInfo: boolean;
  exact: boolean;
  nosort: boolean;
  /** FMT_RULE: -S output. */
  rule?: boolean;
  names?: NameResolver;
}

export const NO_FORMAT: ListFormat = {
  numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, tunInfo: false,
  exact: false, nosort: false,
};

/** ipvsadm `fwd_name` (+ the FULLNAT fork's `FullNat`). */
export function fwdListName(fwd: FwdMethod): string {
  switch (fwd) {
    case FWD_MASQ: return 'Masq';
    case FWD_LOCAL: return 'Local';
    case FWD_TUNNEL: return 'Tunnel';
    case FWD_DROUTE: return 'Route';
    case FWD_FULLNAT: return 'FullNat';
    default: return '(null)';
  }
}

/** ipvsadm `fwd_switch` (+ `-b` for FULLNAT). */
export function fwdSwitch(fwd: FwdMethod): string {
  switch (fwd) {
    case FWD_MASQ: return '-m';
    case FWD_TUNNEL: return '-i';
    case FWD_FULLNAT: return '-b';
    case FWD_LOCAL:
    case FWD_DROUTE: return '-g';
    default: return '(null)';
  }
}

const TUN_FLAGS = ['-c', '+c', 'r+c'];
const TUN_FLAG_OPTS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function tunInfo(d: DestSnap): string {
  if (d.fwd !== FWD_TUNNEL) return 'n/a';
  switch (d.tunType) {
    case TUN_TYPE_IPIP: return 'ipip';
    case TUN_TYPE_GUE: return `gue:${d.tunPort}:${TUN_FLAGS[d.tunFlags] ?? '(null)'}`.slice(0, 15);
    case TUN_TYPE_GRE: return `gre:${TUN_FLAGS[d.tunFlags] ?? '(null)'}`;
    default: return 'n/a';
  }
}

const SCHED_MASK = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/** ipvsadm `print_sched_flags`. */
export function schedFlagsText(sched: string, flags: number): string {
  const f: string[] = [];
  if (sched === 'sh') {
    if (flags & SVC_F_SCHED1) f.push('sh-fallback');
    if (flags & SVC_F_SCHED2) f.push('sh-port');
  } else if (sched === 'mh') {
    if (flags & SVC_F_SCHED1) f.push('mh-fallback');
    if (flags & SVC_F_SCHED2) f.push('mh-port');
  } else {
    if (flags & SVC_F_SCHED1) f.push('flag-1');
    if (flags & SVC_F_SCHED2) f.push('flag-2');
    if (flags & SVC_F_SCHED3) f.push('flag-3');
  }
  return f.join(',');
}

function protoOption(proto: number): string {
  return proto === IPPROTO_TCP ? '-t' : proto === IPPROTO_UDP ? '-u' : proto === IPPROTO_SCTP ? '--sctp-service' : '--xxx-service';
}

function protoTitle(proto: number): string {
  return proto === IPPROTO_TCP ? 'TCP' : proto === IPPROTO_UDP ? 'UDP' : proto === IPPROTO_SCTP ? 'SCTP' : '?';
}

/** The `svc_name` of print_service_entry. */
export function serviceName(s: ServiceSnap, f: ListFormat): string {
  if (s.fwmark) {
    const v6 = s.af === 10;
    if (f.rule) return v6 ? `-f ${s.fwmark >>> 0} -6` : `-f ${s.fwmark >>> 0}`;
    return v6 ? `FWM  ${s.fwmark >>> 0} IPv6` : `FWM  ${s.fwmark >>> 0}`;
  }
  const vname = addrPortName(s.af, s.addr, s.port, s.protocol, f.numeric, f.names);
  if (f.rule) return `${protoOption(s.protocol)} ${vname}`;
  const name = `${padR(protoTitle(s.protocol), 4)} ${vname}`;
  return s.af !== 10 ? name.slice(0, 33) : name;
}

function netmaskText(s: ServiceSnap): string | undefined {
  if (s.af === 10) return s.netmask !== '128' && s.netmask !== '' ? s.netmask : undefined;
  return s.netmask && s.netmask !== '255.255.255.255' ? s.netmask : undefined;
}

/** ipvsadm `print_title`. */
export function titleLines(f: ListFormat): string {
  if (f.stats) {
    return `${padR('Prot LocalAddress:Port', 33)} ${padL('Conns', 8)} ${padL('InPkts', 8)} ${padL('OutPkts', 8)} ${padL('InBytes', 8)} ${padL('OutBytes', 8)}\n  -> RemoteAddress:Port\n`;
  }
  if (f.rate) {
    return `${padR('Prot LocalAddress:Port', 33)} ${padL('CPS', 8)} ${padL('InPPS', 8)} ${padL('OutPPS', 8)} ${padL('InBPS', 8)} ${padL('OutBPS', 8)}\n  -> RemoteAddress:Port\n`;
  }
  if (f.thresholds) {
    return `${padR('Prot LocalAddress:Port', 33)} ${padR('Uthreshold', 10)} ${padR('Lthreshold', 10)} ${padR('ActiveConn', 10)} ${padR('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  }
  if (f.persistentConn) {
    return `${padR('Prot LocalAddress:Port', 33)} ${padR('Weight', 9)} ${padR('PersistConn', 11)} ${padR('ActiveConn', 10)} ${padR('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  }
  if (f.tunInfo) {
    return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  }
  if (!f.rule) {
    return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  }
  return '';
}

/** ipvsadm `print_service_entry`: the service line and its dests. */
export function serviceEntry(s: ServiceSnap, f: ListFormat): string {
  const svcName = serviceName(s, f);
  const ex = f.exact;
  let out = '';
  if (f.rule) {
    out += `-A ${svcName} -s ${s.sched}`;
    if (s.flags & SVC_F_PERSISTENT) {
      out += ` -p ${u(s.timeout)}`;
      const m = netmaskText(s);
      if (m !== undefined) out += ` -M ${m}`;
    }
    if (s.pe) out += ` --pe ${s.pe}`;
    if (s.flags & SVC_F_ONEPACKET) out += ' -o';
    if (s.flags & SCHED_MASK) out += ` -b ${schedFlagsText(s.sched, s.flags)}`;
    if (s.proxyProtocol) out += ` --proxy-protocol ${PP_NAMES[s.proxyProtocol] ?? s.proxyProtocol}`;
    if (s.synproxy) out += ' -j enable'; // the Alibaba fork's ipvsadm appends it
  } else if (f.stats) {
    const st = s.stats;
    out += padR(svcName, 33) + largenum(st.conns, ex) + largenum(st.inpkts, ex) + largenum(st.outpkts, ex)
      + largenum(st.inbytes, ex) + largenum(st.outbytes, ex);
  } else if (f.rate) {
    const r = s.rates;
    out += padR(svcName, 33) + largenum(r.cps, ex) + largenum(r.inpps, ex) + largenum(r.outpps, ex)
      + largenum(r.inbps, ex) + largenum(r.outbps, ex);
  } else {
    out += `${svcName} ${s.sched}`;
    if (s.flags & SCHED_MASK) out += ` (${schedFlagsText(s.sched, s.flags)})`;
    if (s.flags & SVC_F_PERSISTENT) {
      out += ` persistent ${u(s.timeout)}`;
      const m = netmaskText(s);
      if (m !== undefined) out += ` mask ${m}`;
      if (s.pe) out += ` pe ${s.pe}`;
    }
    if (s.flags & SVC_F_ONEPACKET) out += ' ops';
    if (s.proxyProtocol) out += ` pp${PP_NAMES[s.proxyProtocol] ?? s.proxyProtocol}`; // DPVS's ipvsadm: " ppv2"
    if (s.synproxy) out += ' synproxy'; // uvs: the SYN proxy is on
  }
  out += '\n';

  const dests = f.nosort ? s.dests : qsortGlibc(s.dests, cmpDests);
  const destAf = (d: DestSnap): number => (d.addr.includes(':') ? 10 : 2);
  for (const d of dests) {
    let dname = addrPortName(destAf(d), d.addr, d.port, s.protocol, f.numeric, f.names);
    if (!f.rule && destAf(d) !== 10) dname = dname.slice(0, 28);
    if (f.rule) {
      const head = `-a ${svcName} -r ${dname} ${fwdSwitch(d.fwd)} -w ${d.weight}`;
      if (d.fwd === FWD_TUNNEL) {
        switch (d.tunType) {
          case TUN_TYPE_GRE: out += `${head} --tun-type gre ${TUN_FLAG_OPTS[d.tunFlags] ?? '(null)'}\n`; break;
          case TUN_TYPE_GUE: out += `${head} --tun-type gue --tun-port ${d.tunPort} ${TUN_FLAG_OPTS[d.tunFlags] ?? '(null)'}\n`; break;
          case TUN_TYPE_IPIP: out += `${head} --tun-type ipip\n`; break;
          default: out += `${head}\n`;
        }
      } else {
        out += `${head}\n`;
      }
    } else if (f.stats) {
      const st = d.stats;
      out += `  -> ${padR(dname, 28)}` + largenum(st.conns, ex) + largenum(st.inpkts, ex) + largenum(st.outpkts, ex)
        + largenum(st.inbytes, ex) + largenum(st.outbytes, ex) + '\n';
    } else if (f.rate) {
      const r = d.rates;
      out += `  -> ${padR(dname, 28)} ${padL(u(r.cps), 8)} ${padL(u(r.inpps), 8)} ${padL(u(r.outpps), 8)}`
        + largenum(r.inbps, ex) + largenum(r.outbps, ex) + '\n';
    } else if (f.thresholds) {
      out += `  -> ${padR(dname, 28)} ${padR(u(d.uThreshold), 10)} ${padR(u(d.lThreshold), 10)} ${padR(u(d.activeConns), 10)} ${padR(u(d.inactConns), 10)}\n`;
    } else if (f.persistentConn) {
      out += `  -> ${padR(dname, 28)} ${padR(u(d.weight), 9)} ${padR(u(d.persistConns), 11)} ${padR(u(d.activeConns), 10)} ${padR(u(d.inactConns), 10)}\n`;
    } else if (f.tunInfo) {
      out += `  -> ${padR(dname, 28)} ${padR(fwdListName(d.fwd), 7)} ${padR(tunInfo(d), 13)} ${padR(d.weight, 6)} ${padR(u(d.activeConns), 10)} ${padR(u(d.inactConns), 10)}\n`;
    } else {
      out += `  -> ${padR(dname, 28)} ${padR(fwdListName(d.fwd), 7)} ${padR(d.weight, 6)} ${padR(u(d.activeConns), 10)} ${padR(u(d.inactConns), 10)}\n`;
    }
  }
  return out;
}

/** The version part of the header: InfoSnap.version as "x.y.z" (or a numeric code), default 1.2.1. */
function versionText(info?: InfoSnap): string {
  const v = info?.version;
  if (typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)) return v;
  const n = Number(v);
  if (typeof v === 'number' || (typeof v === 'string' && /^(0x)?[0-9a-f]+$/i.test(v) && Number.isFinite(n) && n > 0)) {
    return `${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  }
  return '1.2.1';
}

/** `IP Virtual Server version 1.2.1 (size=4096)` */
export function headerLine(info?: InfoSnap): string {
  return `IP Virtual Server version ${versionText(info)} (size=${info?.connTabSize ?? CONN_TAB_SIZE})\n`;
}

/** `ipvsadm -L [opts]` without a service (list_all): header, title, every service. */
export function formatListAll(info: InfoSnap | undefined, services: ServiceSnap[], f: ListFormat): string {
  let out = f.rule ? '' : headerLine(info);
  const svcs = f.nosort ? services : qsortGlibc(services, cmpServices);
  out += titleLines(f);
  for (const s of svcs) out += serviceEntry(s, f);
  return out;
}

/** `ipvsadm -L -t VIP:PORT [opts]` (list_service): title + that service, no header. */
export function formatOneService(s: ServiceSnap, f: ListFormat): string {
  return titleLines(f) + serviceEntry(s, f);
}

/** `ipvsadm -S [-n]` */
export function formatSave(services: ServiceSnap[], numeric: boolean, names?: NameResolver): string {
  const f: ListFormat = { ...NO_FORMAT, numeric, rule: true, ...(names ? { names } : {}) };
  const svcs = qsortGlibc(services, cmpServices);
  let out = '';
  for (const s of svcs) {
    out += serviceEntry(s, f);
    // uvs/FULLNAT: local addresses after the dests so -R restores them with their service.
    const svcName = serviceName(s, f);
    for (const l of s.laddrs ?? []) out += `-P ${svcName} -z ${l}\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// connections, timeouts, daemons, local addresses

/** ipvsadm `list_conn` + `print_conn` over the daemon's connection snapshot (kernel order). */
export function formatConnections(conns: ConnSnap[], f: Pick<ListFormat, 'numeric' | 'persistentConn' | 'names'>): string {
  let out = 'IPVS connection entries\n';
  if (f.persistentConn) {
    out += `pro expire ${padR('state', 11)} ${padR('source', 18)} ${padR('virtual', 18)} ${padR('destination', 18)} ${padR('pe name', 16)} pe_data\n`;
  } else {
    out += `pro expire ${padR('state', 11)} ${padR('source', 18)} ${padR('virtual', 18)} destination\n`;
  }
  for (const c of conns) {
    const pname = protoName(c.protocol);
    // ipvsadm maps the /proc protocol name back to a number for service-name lookups.
    const proto = pname === 'TCP' ? IPPROTO_TCP : pname === 'UDP' ? IPPROTO_UDP : pname === 'SCTP' ? IPPROTO_SCTP : 0;
    const af = c.caddr.includes(':') ? 10 : 2;
    const daf = c.daddr.includes(':') ? 10 : 2;
    const cname = addrPortName(af, c.caddr, c.cport, proto, f.numeric, f.names);
    const vname = addrPortName(af, c.vaddr, c.vport, proto, f.numeric, f.names);
    const dname = addrPortName(daf, c.daddr, c.dport, proto, f.numeric, f.names);
    const exp = Math.max(0, Math.trunc(c.expires));
    const expire = `${String(Math.floor(exp / 60)).padStart(2, '0')}:${String(exp % 60).padStart(2, '0')}`;
    out += `${padR(pname, 3)} ${padR(expire, 6)} ${padR(c.state, 11)} ${padR(cname, 18)} ${padR(vname, 18)} ${dname}\n`;
  }
  return out;
}

/** `ipvsadm -L --timeout` */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** A sync daemon as ipvsadm `list_daemon` sees it (the daemon's get-daemons). */
export interface DaemonSnap {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** `ipvsadm -L --daemon`: nothing when no daemon runs. */
export function formatDaemons(daemons: DaemonSnap[] = []): string {
  let out = '';
  for (const d of daemons) {
    out += `${d.state} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncid}`;
    if (d.syncMaxlen) out += `, maxlen=${d.syncMaxlen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}

function laddrTitle(): string {
  return `${padR('VIP:VPORT', 20)} ${padR('TOTAL', 8)} ${padR('LADDR', 20)} ${padR('CONFLICTS', 10)} ${padR('CONNS', 10)}\n`;
}

function laddrService(s: ServiceSnap): string {
  const vname = s.fwmark ? `FWM  ${s.fwmark >>> 0}` : addrPortName(s.af, s.addr, s.port, s.protocol, true);
  let out = `${padR(vname, 20)} ${padR(s.laddrs.length, 8)} \n`;
  for (const l of s.laddrs) out += `${padR('', 20)} ${padR('', 8)} ${padR(l, 20)} ${padR(0, 10)} ${padR(0, 10)}\n`;
  return out;
}

/**
 * `uvsadm -G [-t VIP:PORT]` in the Alibaba fork's layout: one title, then per service
 * `VIP:VPORT TOTAL` and one row per local address (kernel order, numeric).
 */
export function formatLaddrs(services: ServiceSnap[], one?: ServiceSnap): string {
  if (one) return laddrTitle() + laddrService(one);
  let out = '';
  services.forEach((s, i) => {
    if (i === 0) out += laddrTitle();
    out += laddrService(s);
  });
  return out;
}

/**
 * ldirectord.cf reader (ClusterLabs resource-agents ldirectord): flat `key=value`, global
 * directives first, each `virtual=` starting an indented block, mapped onto the same model as
 * keepalived.conf:
 *
 *   virtual=IP:port | virtual=N (fwmark)     real=IP[:port] gate|masq|ipip [weight]  (ranges a->b)
 *   checktype=negotiate|connect|on|off|N      service=http|https|dns|…  request= receive= virtualhost=
 *   checktimeout/connecttimeout/negotiatetimeout, checkinterval, checkport, quiescent=yes|no,
 *   fallback=IP[:port] [gate|masq|ipip] (the sorry server: used when no real server is alive),
 *   scheduler, persistent, netmask, protocol=tcp|udp|fwm
 *
 * ldirectord's defaults: scheduler wrr, checkinterval 10, checktimeout 5 (also the connect and
 * negotiate timeouts unless connecttimeout / negotiatetimeout are given),
 * quiescent yes, checktype negotiate, service from the port (80 http, 443 https, 53 dns, else a
 * connect check). `negotiate` for http/https is HTTP_GET/SSL_GET of `request` whose body must
 * contain `receive` (a regex, as ldirectord); for dns a DNS_CHECK of `request`; other services a
 * TCP connect (uvs does not speak ftp/smtp/sql/…: reported as a warning). `on` = never checked,
 * `off` = never added, a number N = negotiate every Nth check and connect otherwise (uvs: connect).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DEFAULT_PERSISTENT_TIMEOUT, FWD_DROUTE, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, SVC_F_PERSISTENT,
  TUN_F_NOCSUM, TUN_TYPE_IPIP, type FwdMethod,
} from '../model/constants.js';
import { getScheduler } from '../sched/index.js';
import { ConfigError, defaultCheck, serviceKey, type CheckConf, type HealthConfig, type RsConf, type VsConf } from './config.js';

const GLOBAL_KEYS = new Set([
  'checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'autoreload', 'callback', 'fallback',
  'fallbackcommand', 'logfile', 'execute', 'emailalert', 'emailalertfreq', 'emailalertstatus', 'emailalertfrom',
  'quiescent', 'cleanstop', 'maintenancedir', 'fork', 'supervised', 'smtp', 'failurecount',
]);
const VS_KEYS = new Set([
  'real', 'checktype', 'checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'checkport',
  'request', 'receive', 'httpmethod', 'virtualhost', 'service', 'scheduler', 'persistent', 'netmask', 'protocol',
  'quiescent', 'fallback', 'fallbackcommand', 'login', 'passwd', 'database', 'secret', 'emailalert', 'emailalertfreq',
  'emailalertstatus', 'cleanstop', 'monitorfile', 'failurecount', 'checkcommand', 'ipvsadm_options',
]);
const ACTED_GLOBAL = new Set(['checktimeout', 'connecttimeout', 'negotiatetimeout', 'checkinterval', 'fallback', 'quiescent']);

interface Line {
  key: string;
  value: string;
  indented: boolean;
  line: number;
}

function unquote(v: string): string {
  const t = v.trim();
  if ((t.startsWith('"') && t.endsWith('"') && t.length >= 2) || (t.startsWith("'") && t.endsWith("'") && t.length >= 2)) return t.slice(1, -1);
  return t;
}

function ip(file: string, l: Line, s: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new ConfigError(file, l.line, l.key, `invalid IPv4 address '${s}'`);
  return s;
}

function num(file: string, l: Line, s: string, decimal = false): number {
  if (!(decimal ? /^\d+(\.\d+)?$/ : /^\d+$/).test(s)) throw new ConfigError(file, l.line, l.key, `invalid number '${s}'`);
  return Number(s);
}

function hostPort(file: string, l: Line, s: string, defPort: number): { addr: string; port: number } {
  const m = /^([\d.]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new ConfigError(file, l.line, l.key, `expected IP[:port], got '${s}'`);
  const port = m[2] !== undefined ? num(file, l, m[2]) : defPort;
  if (port > 65535) throw new ConfigError(file, l.line, l.key, `invalid port ${port}`);
  return { addr: ip(file, l, m[1]!), port };
}

function fwdOf(file: string, l: Line, w: string | undefined): FwdMethod {
  if (w === undefined || w === 'gate') return FWD_DROUTE;
  if (w === 'masq') return FWD_MASQ;
  if (w === 'ipip') return FWD_TUNNEL;
  throw new ConfigError(file, l.line, l.key, `unknown forwarding method '${w}' (gate, masq, ipip)`);
}

export function parseLdirectord(text: string, file = 'ldirectord.cf'): HealthConfig {
  const path = resolve(file);
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const noComment = raw.replace(/(^|\s)#.*$/, '');
    if (!noComment.trim()) return;
    const m = /^(\s*)([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(noComment);
    if (!m) throw new ConfigError(path, i + 1, noComment.trim().split(/\s+/)[0]!, "expected 'key=value'");
    lines.push({ key: m[2]!.toLowerCase(), value: m[3]!.trim(), indented: m[1]!.length > 0, line: i + 1 });
  });
  const warnings: string[] = [];
  const g = { checktimeout: 5, negotiatetimeout: NaN, connecttimeout: NaN, checkinterval: 10, quiescent: true, fallback: '' as string, fallbackLine: null as Line | null };
  const blocks: { head: Line; body: Line[] }[] = [];
  for (const l of lines) {
    if (l.key === 'virtual' || l.key === 'virtual6') {
      if (l.key === 'virtual6') throw new ConfigError(path, l.line, l.key, 'IPv6 virtual services are not supported by uvs yet');
      blocks.push({ head: l, body: [] });
      continue;
    }
    const cur = blocks[blocks.length - 1];
    if (cur && l.indented) {
      if (!VS_KEYS.has(l.key)) throw new ConfigError(path, l.line, l.key, 'unknown keyword in a virtual= block');
      cur.body.push(l);
      continue;
    }
    if (!GLOBAL_KEYS.has(l.key)) throw new ConfigError(path, l.line, l.key, cur ? 'unknown global keyword (or a virtual= line not indented)' : 'unknown global keyword');
    const v = unquote(l.value);
    switch (l.key) {
      case 'checktimeout': g.checktimeout = num(path, l, v, true); break;
      case 'connecttimeout': g.connecttimeout = num(path, l, v, true); break;
      case 'negotiatetimeout': g.negotiatetimeout = num(path, l, v, true); break;
      case 'checkinterval': g.checkinterval = num(path, l, v, true); break;
      case 'quiescent': g.quiescent = yes(path, l, v); break;
      case 'fallback': g.fallback = v; g.fallbackLine = l; break;
      default: break;
    }
    if (!ACTED_GLOBAL.has(l.key)) warnings.push(`${path}:${l.line}: '${l.key}' is not acted on by uvs (ignored)`);
  }
  const services: VsConf[] = [];
  const keys = new Set<string>();
  for (const b of blocks) {
    const vs = readBlock(path, b.head, b.body, g, warnings);
    if (keys.has(vs.key)) throw new ConfigError(path, b.head.line, 'virtual', `duplicate virtual ${vs.key}`);
    keys.add(vs.key);
    services.push(vs);
  }
  return { format: 'ldirectord', file: path, services, ignored: [], warnings };
}

export function readLdirectord(file: string): HealthConfig {
  const path = resolve(file);
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new ConfigError(path, 0, '', `cannot read: ${(e as Error).message}`); }
  return parseLdirectord(text, path);
}

function yes(file: string, l: Line, v: string): boolean {
  const t = v.toLowerCase();
  if (t === 'yes' || t === 'on' || t === '1') return true;
  if (t === 'no' || t === 'off' || t === '0') return false;
  throw new ConfigError(file, l.line, l.key, `expected yes or no, got '${v}'`);
}

function readBlock(path: string, head: Line, body: Line[], g: { checktimeout: number; negotiatetimeout: number; connecttimeout: number; checkinterval: number; quiescent: boolean; fallback: string; fallbackLine: Line | null }, warnings: string[]): VsConf {
  const hv = unquote(head.value);
  let protocol = IPPROTO_TCP;
  let fwmark = 0;
  let addr = '';
  let vport = 0;
  if (/^\d+$/.test(hv)) fwmark = num(path, head, hv);
  else ({ addr, port: vport } = hostPort(path, head, hv, 0));
  let sched = 'wrr';
  let flags = 0;
  let timeout = 0;
  let netmask = '255.255.255.255';
  let checktype = 'negotiate';
  let service = '';
  let request = '';
  let receive = '';
  let virtualhost = '';
  let checkport = 0;
  let checktimeout = g.checktimeout;
  let negotiatetimeout = g.negotiatetimeout;
  let connecttimeout = g.connecttimeout;
  let checkinterval = g.checkinterval;
  let quiescent = g.quiescent;
  let fallback = g.fallback;
  let fallbackLine = g.fallbackLine;
  const reals: { l: Line; addr: string; port: number; fwd: FwdMethod; weight: number }[] = [];
  for (const l of body) {
    const v = unquote(l.value);
    switch (l.key) {
      case 'real': {
        const w = v.split(/\s+/);
        const fwd = fwdOf(path, l, w[1]);
        const weight = w[2] !== undefined ? num(path, l, w[2]) : 1;
        const rm = /^([\d.]+)->([\d.]+)(?::(\d+))?$/.exec(w[0]!);
        if (rm) {
          const a = ip(path, l, rm[1]!).split('.').map(Number);
          const z = ip(path, l, rm[2]!).split('.').map(Number);
          if (a.slice(0, 3).join('.') !== z.slice(0, 3).join('.') || z[3]! < a[3]!) throw new ConfigError(path, l.line, l.key, `invalid range '${w[0]}'`);
          const p = rm[3] !== undefined ? num(path, l, rm[3]) : vport;
          for (let i = a[3]!; i <= z[3]!; i++) reals.push({ l, addr: `${a.slice(0, 3).join('.')}.${i}`, port: p, fwd, weight });
        } else {
          const hp = hostPort(path, l, w[0]!, vport);
          reals.push({ l, ...hp, fwd, weight });
        }
        break;
      }
      case 'checktype': checktype = v.toLowerCase(); break;
      case 'service': service = v.toLowerCase(); break;
      case 'request': request = v; break;
      case 'receive': receive = v; break;
      case 'virtualhost': virtualhost = v; break;
      case 'checkport': checkport = num(path, l, v); break;
      case 'checktimeout': checktimeout = num(path, l, v, true); break;
      case 'negotiatetimeout': negotiatetimeout = num(path, l, v, true); break;
      case 'connecttimeout': connecttimeout = num(path, l, v, true); break;
      case 'checkinterval': checkinterval = num(path, l, v, true); break;
      case 'quiescent': quiescent = yes(path, l, v); break;
      case 'fallback': fallback = v; fallbackLine = l; break;
      case 'scheduler':
        if (!getScheduler(v)) throw new ConfigError(path, l.line, l.key, `unknown scheduler '${v}'`);
        sched = v;
        break;
      case 'persistent':
        flags |= SVC_F_PERSISTENT;
        timeout = v ? num(path, l, v) : DEFAULT_PERSISTENT_TIMEOUT;
        break;
      case 'netmask': netmask = ip(path, l, v); break;
      case 'protocol': {
        const p = v.toLowerCase();
        if (p === 'tcp') protocol = IPPROTO_TCP;
        else if (p === 'udp') protocol = IPPROTO_UDP;
        else if (p === 'fwm') { if (!fwmark) throw new ConfigError(path, l.line, l.key, 'protocol=fwm needs virtual=<fwmark number>'); }
        else throw new ConfigError(path, l.line, l.key, `unknown protocol '${v}' (tcp, udp, fwm)`);
        break;
      }
      default: warnings.push(`${path}:${l.line}: '${l.key}' is not acted on by uvs (ignored)`); break;
    }
  }
  const spec = fwmark ? { protocol: 0, af: 2, addr: '', port: 0, fwmark } : { protocol, af: 2, addr, port: vport, fwmark: 0 };
  const where = `${path}:${head.line}`;
  if (!service) {
    const p = checkport || vport;
    service = p === 80 ? 'http' : p === 443 ? 'https' : p === 53 ? 'dns' : 'none';
  }
  // checktimeout is the timeout of every check unless connecttimeout / negotiatetimeout say otherwise.
  if (Number.isNaN(negotiatetimeout)) negotiatetimeout = checktimeout;
  if (Number.isNaN(connecttimeout)) connecttimeout = checktimeout;
  const rs: RsConf[] = [];
  const seen = new Set<string>();
  for (const r of reals) {
    const key = `${r.addr}:${r.port}`;
    if (seen.has(key)) throw new ConfigError(path, r.l.line, 'real', `duplicate real ${key}`);
    seen.add(key);
    const checks: CheckConf[] = [];
    const mk = (type: CheckConf['type'], to: number): CheckConf => {
      const c = defaultCheck(type, `${path}:${r.l.line}`, checkinterval);
      c.connectIp = r.addr;
      c.connectPort = checkport || r.port || (type === 'DNS_CHECK' ? 53 : 0);
      c.connectTimeout = to;
      c.retry = 0;
      c.delayBeforeRetry = 0;
      c.virtualhost = virtualhost;
      return c;
    };
    let ct = checktype;
    if (/^\d+$/.test(ct)) ct = 'connect';
    if (ct === 'negotiate') {
      if (service === 'http' || service === 'https') {
        const c = mk(service === 'http' ? 'HTTP_GET' : 'SSL_GET', negotiatetimeout);
        const reqPath = request ? (request.startsWith('/') ? request : `/${request}`) : '/';
        c.urls.push({ path: reqPath, digest: '', statusCodes: [], regex: receive });
        checks.push(c);
      } else if (service === 'dns') {
        const c = mk('DNS_CHECK', negotiatetimeout);
        if (request) c.dnsName = request;
        checks.push(c);
      } else {
        if (service !== 'none') warnings.push(`${where}: negotiate check for service=${service} is done as a TCP connect by uvs`);
        if (protocol === IPPROTO_UDP && !fwmark) checks.push(mk('UDP_CHECK', connecttimeout));
        else checks.push(mk('TCP_CHECK', connecttimeout));
      }
    } else if (ct === 'connect') {
      checks.push(protocol === IPPROTO_UDP && !fwmark ? mk('UDP_CHECK', connecttimeout) : mk('TCP_CHECK', connecttimeout));
    } else if (ct === 'on') {
      // never checked: always up
    } else if (ct === 'off') {
      continue;
    } else if (ct === 'ping' || ct === 'external' || ct === 'external-perl') {
      warnings.push(`${where}: checktype=${ct} is done as a TCP connect by uvs`);
      checks.push(mk('TCP_CHECK', connecttimeout));
    } else {
      throw new ConfigError(path, head.line, 'checktype', `unknown checktype '${checktype}'`);
    }
    rs.push({
      addr: r.addr, port: r.port, weight: r.weight, fwd: r.fwd, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: TUN_F_NOCSUM,
      uThreshold: 0, lThreshold: 0, inhibit: quiescent, notifyUp: '', notifyDown: '', checks, where: `${path}:${r.l.line}`,
    });
  }
  let sorry: RsConf | null = null;
  if (fallback) {
    const l = fallbackLine!;
    const w = fallback.split(/\s+/);
    const hp = hostPort(path, l, w[0]!, vport);
    const fwd = fwdOf(path, l, w[1] ?? (reals[0] ? (reals[0].fwd === FWD_MASQ ? 'masq' : reals[0].fwd === FWD_TUNNEL ? 'ipip' : 'gate') : 'gate'));
    sorry = {
      addr: hp.addr, port: hp.port, weight: 1, fwd, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: TUN_F_NOCSUM, uThreshold: 0,
      lThreshold: 0, inhibit: false, notifyUp: '', notifyDown: '', checks: [], where: `${path}:${l.line}`,
    };
  }
  return {
    key: serviceKey(spec), spec, sched, flags, timeout, netmask, delayLoop: checkinterval, quorum: 1, hysteresis: 0, alpha: false,
    omega: false, quorumUp: '', quorumDown: '', sorry, sorryInhibit: false, laddrs: [], rs, where,
  };
}

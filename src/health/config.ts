/**
 * The health-check configuration model shared by the keepalived.conf and ldirectord.cf readers
 * and the HealthManager: virtual servers with their real servers and each real server's checkers,
 * settings already inherited down the tree (virtual server → real server → checker) and keepalived's
 * defaults applied. Addresses are dotted strings, times are seconds (decimals allowed).
 */
import { FWD_DROUTE, FWD_TUNNEL, type FwdMethod } from '../model/constants.js';
import type { ServiceSpec } from '../control/types.js';

export type CheckType = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'MISC_CHECK' | 'UDP_CHECK' | 'DNS_CHECK';

export interface UrlConf {
  path: string;
  /** Lower-case hex MD5 of the body, or '' (not checked). */
  digest: string;
  /** Inclusive [lo, hi] ranges; empty means 200-299. */
  statusCodes: [number, number][];
  /** The body must match this (ldirectord `receive=`, keepalived `regex`), or ''. */
  regex: string;
}

export interface CheckConf {
  type: CheckType;
  /** Where it was written (file:line), for messages and `--checks`. */
  where: string;
  connectIp: string;
  connectPort: number;
  bindto: string;
  bindPort: number;
  /** Seconds. */
  connectTimeout: number;
  retry: number;
  delayBeforeRetry: number;
  delayLoop: number;
  // HTTP_GET / SSL_GET
  urls: UrlConf[];
  virtualhost: string;
  enableSni: boolean;
  // MISC_CHECK
  miscPath: string;
  miscTimeout: number;
  miscDynamic: boolean;
  // UDP_CHECK
  payload: Buffer | null;
  requireReply: Buffer | null | true;
  // DNS_CHECK
  dnsType: string;
  dnsName: string;
  /**
   * Set by markDataPathChecks: a TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK or DNS_CHECK of a DR/TUN real
   * server whose connect_ip is the VIP goes through uvs's data path (a SYN, an HTTP request — in TLS
   * for SSL_GET — over uvs's own TCP client, or the datagram, to VIP:connect_port via that real
   * server), not a kernel socket (src/pipeline/probe.ts).
   */
  dataPath?: { rip: string; fwd: FwdMethod; tunType: number; tunPort: number; tunFlags: number };
}

export interface RsConf {
  addr: string;
  port: number;
  weight: number;
  fwd: FwdMethod;
  tunType: number;
  tunPort: number;
  tunFlags: number;
  uThreshold: number;
  lThreshold: number;
  inhibit: boolean;
  notifyUp: string;
  notifyDown: string;
  checks: CheckConf[];
  where: string;
}

export interface VsConf {
  /** Stable identity: `TCP 192.0.2.10:80` or `FWM 7`. */
  key: string;
  spec: ServiceSpec;
  sched: string;
  flags: number;
  timeout: number;
  netmask: string;
  delayLoop: number;
  quorum: number;
  hysteresis: number;
  alpha: boolean;
  omega: boolean;
  quorumUp: string;
  quorumDown: string;
  sorry: RsConf | null;
  sorryInhibit: boolean;
  laddrs: string[];
  /** DPVS keepalived `proxy_protocol v1|v2|disable` (0 disable, 1 v1, 2 v2); absent = 0. */
  proxyProtocol?: number;
  /** Alibaba/DPVS keepalived `syn_proxy`; absent = off. */
  synproxy?: boolean;
  rs: RsConf[];
  where: string;
}

export interface IgnoredSection {
  name: string;
  file: string;
  line: number;
}

export interface HealthConfig {
  /** 'keepalived' or 'ldirectord'. */
  format: string;
  file: string;
  services: VsConf[];
  /** Sections read but not acted on (vrrp_instance, global_defs, …), once each. */
  ignored: IgnoredSection[];
  /** Keywords understood but not acted on, unmatched include globs, … */
  warnings: string[];
  /** keepalived global_defs lvs_timeouts: seconds, 0 = unchanged (ipvsadm --set). */
  timeouts?: { tcp: number; tcpfin: number; udp: number };
  /**
   * keepalived global_defs `lvs_sync_daemon IF [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N]
   * [group ADDR]`: the connection-sync daemons to run (uvs has no VRRP: both, master and backup, as
   * keepalived does when no instance is named).
   */
  syncDaemon?: { mcastIfn: string; instance?: string; syncid: number; maxlen?: number; port?: number; ttl?: number; group?: string };
}

export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly keyword: string;
  constructor(file: string, line: number, keyword: string, message: string) {
    super(`${file}:${line}: ${keyword ? `'${keyword}': ` : ''}${message}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.keyword = keyword;
  }
}

export function serviceKey(spec: ServiceSpec): string {
  if (spec.fwmark) return `FWM ${spec.fwmark}`;
  const p = spec.protocol === 17 ? 'UDP' : spec.protocol === 132 ? 'SCTP' : 'TCP';
  return `${p} ${spec.addr}:${spec.port}`;
}

export function rsKey(rs: { addr: string; port: number }): string {
  return `${rs.addr}:${rs.port}`;
}

export function defaultCheck(type: CheckType, where: string, delayLoop: number): CheckConf {
  return {
    type, where, connectIp: '', connectPort: 0, bindto: '', bindPort: 0, connectTimeout: 5,
    retry: type === 'DNS_CHECK' ? 3 : type === 'MISC_CHECK' ? 0 : 1, delayBeforeRetry: 1, delayLoop,
    urls: [], virtualhost: '', enableSni: false, miscPath: '', miscTimeout: 0, miscDynamic: false,
    payload: null, requireReply: null, dnsType: 'A', dnsName: '.',
  };
}

/** A checker's identity for reload: same signature → its state (up/down) is carried over. */
export function checkSignature(c: CheckConf): string {
  return JSON.stringify({ ...c, where: undefined, payload: c.payload?.toString('hex'),
    requireReply: c.requireReply === true ? true : c.requireReply?.toString('hex') });
}

/**
 * keepalived's way to check a DR/TUN real server's VIP (`connect_ip` = the VIP, with an fwmark
 * and policy routing on a kernel director) done the uvs way: a TCP_CHECK, HTTP_GET, SSL_GET,
 * UDP_CHECK or DNS_CHECK of a DR or TUN real server whose connect_ip is its virtual server's VIP is
 * marked to go through the data path (CheckConf.dataPath). MISC_CHECK (a script: it runs on the
 * host) with connect_ip = the VIP would reach the VIP through the director's scheduler, not that
 * real server: a warning says so. Returns conf.
 */
export function markDataPathChecks(conf: HealthConfig): HealthConfig {
  for (const vs of conf.services) {
    if (vs.spec.fwmark) continue;
    for (const rs of vs.rs) {
      if (rs.fwd !== FWD_DROUTE && rs.fwd !== FWD_TUNNEL) continue;
      for (const c of rs.checks) {
        if (c.connectIp !== vs.spec.addr) continue;
        if (c.type !== 'MISC_CHECK') {
          c.dataPath = { rip: rs.addr, fwd: rs.fwd, tunType: rs.tunType, tunPort: rs.tunPort, tunFlags: rs.tunFlags };
        } else {
          conf.warnings.push(`${c.where}: ${c.type} with connect_ip ${c.connectIp} (the VIP) of ${rs.fwd === FWD_DROUTE ? 'DR' : 'TUN'} real server ${rs.addr} `
            + 'connects through the director\'s scheduler, not to that real server; TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK are sent through the data path');
        }
      }
    }
  }
  return conf;
}

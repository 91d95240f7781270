/**
 * The control operations: what ipvsadm's setsockopt/netlink commands do in the kernel
 * (K ip_vs_ctl.c), applied to the director's Config between batches. Every refusal carries the
 * errno the kernel would return, so uvsadm prints ipvsadm's message. A refused command changes
 * nothing; a `batch` (restore) is validated on a scratch copy first and applied all or nothing.
 */
import type { Director } from '../pipeline/director.js';
import { Service } from '../model/service.js';
import { Dest } from '../model/dest.js';
import type { Config } from '../model/config.js';
import { ipToString, parseIp, maskToPrefix } from '../model/addr.js';
import {
  DEST_F_AVAILABLE, DEST_F_OVERLOAD, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP,
  IPPROTO_UDP, IPVS_VERSION, CONN_TAB_SIZE, SVC_F_PERSISTENT, SVC_F_ONEPACKET, TUN_TYPE_IPIP, TUN_TYPE_GUE, TUN_TYPE_GRE,
  TUN_F_NOCSUM, TUN_F_CSUM, TUN_F_REMCSUM,
} from '../model/constants.js';
import { getScheduler } from '../sched/index.js';
import type { SchedEnv } from '../sched/scheduler.js';
import type {
  Command, ConnSnap, DestSnap, InfoSnap, RateSnap, Response, ServiceOpts, ServiceSnap, ServiceSpec, StatsSnap,
} from './types.js';
import type { Stats } from '../model/stats.js';
import type { MarkRuleSpec } from '../model/mark-rules.js';
import { SysctlError } from '../model/sysctl.js';

export class ControlError extends Error {
  readonly errno: string;
  /** In a batch: index of the command that was refused. */
  index?: number;
  constructor(errno: string, message: string) {
    super(message);
    this.errno = errno;
  }
}

function fail(errno: string, message: string): never {
  throw new ControlError(errno, message);
}

/** A scratch model to validate a batch on: same checks, no data path. */
interface Model {
  config: Config;
  onDestRemoved(d: Dest): void;
  onServiceRemoved(s: Service): void;
  setTimeouts(tcp: number, tcpfin: number, udp: number): void;
  /** `-Z` without a service also zeroes the totals (K ip_vs_zero_all: tot_stats). */
  zeroTotals(): void;
  /** The director's settings new schedulers read (absent in a scratch model). */
  schedEnv?: SchedEnv;
}

export class Control {
  readonly director: Director;

  constructor(director: Director) {
    this.director = director;
  }

  /** Executes one command; never throws. */
  execute(cmd: Command): Response {
    try {
      const data = this.run(cmd);
      return data === undefined ? { ok: true } : { ok: true, data };
    } catch (e) {
      if (e instanceof ControlError) {
        return e.index === undefined ? { ok: false, errno: e.errno, message: e.message } : { ok: false, errno: e.errno, message: e.message, index: e.index };
      }
      return { ok: false, errno: 'EINVAL', message: e instanceof Error ? e.message : String(e) };
    }
  }

  private model(): Model {
    const d = this.director;
    return {
      config: d.config,
      onDestRemoved: (dest) => {
        // Templates pointing at it become invalid; its conns stay (packets dropped) until they
        // expire — unless expire_nodest_conn=1, which flushes them (K ip_vs_expire_nodest_conn_flush).
        d.conns.invalidateTemplatesOf(dest.id);
        if (d.sysctl.expireNodestConn !== 0) d.conns.flushDest(dest.id);
      },
      onServiceRemoved: (svc) => {
        d.conns.flushService(svc.id);
      },
      setTimeouts: (tcp, tcpfin, udp) => d.timeouts.set(tcp, tcpfin, udp),
      zeroTotals: () => d.stats.zero(),
      schedEnv: d.sysctl,
    };
  }

  private run(cmd: Command): unknown {
    switch (cmd.cmd) {
      case 'get-services': return this.director.config.services.map((s) => snapService(s));
      case 'get-conns': return this.connSnapshot();
      case 'get-timeouts': return this.director.timeouts.get();
      case 'get-mark-rules': return this.director.config.markRules.specs();
      case 'get-info': return this.info();
      case 'get-sysctls': return this.director.sysctl.list();
      // The sync daemons live in uvsd (src/sync/daemon.ts), which answers these first; a Control
      // on its own (tests, a director without sockets) has none.
      case 'get-daemons': return [];
      case 'stop-daemon': fail('ESRCH', 'No daemon is running');
      // falls through (fail never returns)
      case 'start-daemon': fail('EOPNOTSUPP', 'the connection sync daemons need uvsd');
      case 'set-sysctl':
        try {
          this.director.setSysctl(cmd.name, cmd.value);
        } catch (e) {
          if (e instanceof SysctlError) fail(e.errno, e.message);
          throw e;
        }
        return undefined;
      case 'batch': {
        // Validate on a scratch copy: rebuild the current rule set there, then apply the batch.
        const scratch = scratchModel(this.director.config);
        cmd.commands.forEach((c, i) => {
          try {
            if (c.cmd === 'batch' || c.cmd === 'set-sysctl' || c.cmd.startsWith('get-')) fail('EINVAL', `command ${c.cmd} not allowed in a batch`);
            apply(scratch, c);
          } catch (e) {
            if (e instanceof ControlError) e.index = i; // uvsadm prints the refused command's message
            throw e;
          }
        });
        const m = this.model();
        for (const c of cmd.commands) apply(m, c);
        return undefined;
      }
      default:
        apply(this.model(), cmd);
        return undefined;
    }
  }

  connSnapshot(): ConnSnap[] {
    return this.director.conns.snapshot(this.director.clock.now());
  }

  info(): InfoSnap {
    const d = this.director;
    return {
      version: `${IPVS_VERSION >> 16}.${(IPVS_VERSION >> 8) & 255}.${IPVS_VERSION & 255}`,
      connTabSize: CONN_TAB_SIZE,
      conns: d.conns.count,
      stats: snapStats(d.stats),
      rates: snapRates(d.stats),
    };
  }
}

// ---------------------------------------------------------------------- commands

function apply(m: Model, cmd: Command): void {
  const config = m.config;
  switch (cmd.cmd) {
    case 'add-service': {
      checkSpec(cmd.svc);
      if (findSvc(config, cmd.svc)) fail('EEXIST', 'Service already exists');
      const f = getScheduler(cmd.opts.sched);
      if (!f) fail('ENOENT', 'Scheduler or persistence engine not found');
      if (cmd.opts.pe) fail('ENOENT', 'Scheduler or persistence engine not found');
      const svc = new Service(config.allocSvcId(), cmd.svc.fwmark ? 0 : cmd.svc.protocol, addrOf(cmd.svc), cmd.svc.port,
        cmd.svc.fwmark, undefined as never);
      setServiceOpts(svc, cmd.opts);
      svc.sched = f.create(svc, m.schedEnv);
      config.add(svc);
      return;
    }
    case 'edit-service': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'No such service');
      const f = getScheduler(cmd.opts.sched);
      if (!f) fail('ENOENT', 'Scheduler or persistence engine not found');
      if (cmd.opts.pe) fail('ENOENT', 'Scheduler or persistence engine not found');
      const oldSched = svc.schedName;
      setServiceOpts(svc, cmd.opts);
      if (oldSched !== cmd.opts.sched) svc.sched = f.create(svc, m.schedEnv);
      config.changed();
      return;
    }
    case 'delete-service': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'No such service');
      removeService(m, svc);
      return;
    }
    case 'clear': {
      for (const s of [...config.services]) removeService(m, s);
      // The mark rules belong to the rule set uvsadm saves and restores: -C clears them too.
      if (config.markRules.count > 0) {
        config.markRules.clear();
        markRulesChanged(config);
      }
      return;
    }
    case 'add-mark-rule': {
      if (!config.markRules.add(checkMarkRule(cmd.rule))) fail('EEXIST', 'Mark rule already exists');
      markRulesChanged(config);
      return;
    }
    case 'del-mark-rule': {
      if (!config.markRules.remove(checkMarkRule(cmd.rule))) fail('ENOENT', 'No such mark rule');
      markRulesChanged(config);
      return;
    }
    case 'add-server': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'Service not defined');
      const addr = destAddr(cmd.dest.addr);
      checkDestOpts(cmd.opts);
      if (svc.findDest(addr, cmd.dest.port)) fail('EEXIST', 'Destination already exists');
      checkSynproxyFwd(svc, cmd.opts.fwd);
      const d = new Dest(config.allocDestId(), svc, addr, cmd.dest.port);
      setDestOpts(d, cmd.opts);
      d.lastWeight = d.weight;
      config.registerDest(d);
      svc.dests.unshift(d); // the kernel inserts at the list head
      svc.sched.onDestChange('add', d);
      config.changed();
      return;
    }
    case 'edit-server': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'Service not defined');
      const d = svc.findDest(destAddr(cmd.dest.addr), cmd.dest.port) ?? fail('ENOENT', 'No such destination');
      checkDestOpts(cmd.opts);
      checkSynproxyFwd(svc, cmd.opts.fwd);
      const oldU = d.uThreshold;
      setDestOpts(d, cmd.opts);
      if (d.weight > 0) d.lastWeight = d.weight;
      // K __ip_vs_update_dest: OVERLOAD cleared when the upper threshold is removed or raised.
      if (d.uThreshold === 0 || d.uThreshold > oldU) d.flags &= ~DEST_F_OVERLOAD;
      svc.sched.onDestChange('edit', d);
      config.changed();
      return;
    }
    case 'delete-server': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'Service not defined');
      const d = svc.findDest(destAddr(cmd.dest.addr), cmd.dest.port) ?? fail('ENOENT', 'No such destination');
      removeDest(m, svc, d);
      config.changed();
      return;
    }
    case 'zero': {
      if (cmd.svc) {
        const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'No such service');
        zeroService(svc);
      } else {
        for (const s of config.services) zeroService(s);
        m.zeroTotals();
      }
      return;
    }
    case 'set-timeouts': {
      for (const v of [cmd.tcp, cmd.tcpfin, cmd.udp]) {
        if (!Number.isInteger(v) || v < 0 || v > Math.floor(0x7fffffff / 1000)) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
      }
      m.setTimeouts(cmd.tcp, cmd.tcpfin, cmd.udp);
      return;
    }
    case 'add-laddr': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'No such service');
      const a = parseIp(cmd.laddr);
      if (a < 0 || a === 0) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
      if (svc.laddrs.includes(a)) fail('EEXIST', 'Local address already exists');
      svc.laddrs.push(a);
      config.changed();
      return;
    }
    case 'del-laddr': {
      const svc = findSvc(config, cmd.svc) ?? fail('ESRCH', 'No such service');
      const a = parseIp(cmd.laddr);
      const i = svc.laddrs.indexOf(a);
      if (i < 0) fail('ENOENT', 'No such local address');
      svc.laddrs.splice(i, 1);
      svc.laddrCursor = 0;
      config.changed();
      return;
    }
    default:
      fail('EINVAL', `unknown command ${(cmd as { cmd: string }).cmd}`);
  }
}

/** A mark rule spec from the wire: shape checked here, values by compileMarkRule (EINVAL). */
function checkMarkRule(r: MarkRuleSpec): MarkRuleSpec {
  if (typeof r !== 'object' || r === null || typeof r.daddr !== 'string' || typeof r.saddr !== 'string'
    || !Array.isArray(r.dports) || !r.dports.every((x) => Array.isArray(x) && x.length === 2)) {
    fail('EINVAL', 'malformed mark rule');
  }
  if (r.protocol !== IPPROTO_TCP && r.protocol !== IPPROTO_UDP) fail('EPROTONOSUPPORT', 'Protocol not supported');
  return r;
}

/** The VIPs of the mark rules are owned (ARP, echo, hidden from the host kernel). */
function markRulesChanged(config: Config): void {
  config.extraOwned = config.markRules.ownedAddrs();
  config.changed();
}

function checkSpec(spec: ServiceSpec): void {
  if (spec.af !== 2) fail('EAFNOSUPPORT', 'Operation not supported with specified address family');
  if (!spec.fwmark) {
    if (spec.protocol === IPPROTO_SCTP) fail('EOPNOTSUPP', 'SCTP services are not supported by uvs yet');
    if (spec.protocol !== IPPROTO_TCP && spec.protocol !== IPPROTO_UDP) fail('EPROTONOSUPPORT', 'Protocol not supported');
    const a = parseIp(spec.addr);
    if (a < 0 || a === 0 || a >= 0xe0000000) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
  }
}

function addrOf(spec: ServiceSpec): number {
  return spec.fwmark ? 0 : parseIp(spec.addr);
}

function destAddr(s: string): number {
  const a = parseIp(s);
  if (a < 0 || a === 0 || a >= 0xe0000000) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
  return a;
}

function findSvc(config: Config, spec: ServiceSpec): Service | undefined {
  if (spec.fwmark) return config.findMark(spec.fwmark);
  const a = parseIp(spec.addr);
  if (a < 0) return undefined;
  return config.find(spec.protocol, a, spec.port);
}

/** A SYN-proxy service takes NAT and FULLNAT real servers only (DR/TUN replies bypass the director's sequence translation). */
function checkSynproxyFwd(svc: Service, fwd: number): void {
  if (svc.synproxy && fwd !== FWD_MASQ && fwd !== FWD_FULLNAT) {
    fail('EINVAL', 'The SYN proxy needs NAT (-m) or FULLNAT (-b) real servers: DR/TUN replies bypass the director');
  }
}

function setServiceOpts(svc: Service, o: ServiceOpts): void {
  const pp = o.proxyProtocol ?? 0;
  if (pp !== 0 && pp !== 1 && pp !== 2) fail('EINVAL', 'Invalid proxy protocol version (disable, v1 or v2)');
  if (pp !== 0 && svc.protocol === IPPROTO_UDP) fail('EINVAL', 'The PROXY protocol is for TCP services (uvs has no UDP PROXY protocol yet)');
  const sp = o.synproxy === true;
  if (sp && (svc.protocol === IPPROTO_UDP || svc.fwmark)) fail('EINVAL', 'The SYN proxy is for TCP services (not UDP or firewall-mark services)');
  if (sp && pp !== 0) fail('EINVAL', 'The SYN proxy together with the PROXY protocol is not supported by uvs yet');
  if (sp && svc.dests.some((d) => d.fwd !== FWD_MASQ && d.fwd !== FWD_FULLNAT)) {
    fail('EINVAL', 'The SYN proxy needs NAT or FULLNAT real servers (their replies must come back through the director); this service has DR/TUN ones');
  }
  svc.proxyProtocol = pp;
  svc.synproxy = sp;
  svc.schedName = o.sched;
  svc.flags = o.flags;
  if (svc.protocol !== IPPROTO_UDP && !svc.fwmark) svc.flags &= ~SVC_F_ONEPACKET;
  svc.timeout = (o.flags & SVC_F_PERSISTENT) ? o.timeout : 0;
  const mask = parseIp(o.netmask || '255.255.255.255');
  if (mask < 0 || maskToPrefix(mask) < 0) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
  svc.netmask = mask;
  svc.pe = o.pe;
}

function checkDestOpts(o: { fwd: number; weight: number; uThreshold: number; lThreshold: number; tunType: number; tunPort?: number; tunFlags?: number }): void {
  if (!Number.isInteger(o.weight) || o.weight < 0 || o.weight > 0x7fffffff) fail('ERANGE', 'Numerical result out of range');
  if (o.uThreshold < 0 || o.lThreshold < 0) fail('ERANGE', 'Numerical result out of range');
  if (o.lThreshold > o.uThreshold && o.uThreshold !== 0) fail('ERANGE', 'Numerical result out of range');
  if (o.fwd !== FWD_MASQ && o.fwd !== FWD_DROUTE && o.fwd !== FWD_TUNNEL && o.fwd !== FWD_FULLNAT) {
    fail('EOPNOTSUPP', 'This forwarding method is not supported by uvs');
  }
  if (o.tunType !== TUN_TYPE_IPIP && o.tunType !== TUN_TYPE_GUE && o.tunType !== TUN_TYPE_GRE) fail('EINVAL', `unknown tunnel type ${o.tunType}`);
  if (o.tunFlags !== undefined && o.tunFlags !== TUN_F_NOCSUM && o.tunFlags !== TUN_F_CSUM && o.tunFlags !== TUN_F_REMCSUM) fail('EINVAL', `unknown tunnel flags ${o.tunFlags}`);
  // K ip_vs_add_dest/ip_vs_edit_dest: a GUE dest needs its port.
  if (o.fwd === FWD_TUNNEL && o.tunType === TUN_TYPE_GUE && !o.tunPort) fail('EINVAL', 'tunnel port is zero');
}

function setDestOpts(d: Dest, o: { fwd: number; weight: number; uThreshold: number; lThreshold: number; tunType: number; tunPort: number; tunFlags: number }): void {
  d.fwd = o.fwd as Dest['fwd'];
  d.weight = o.weight;
  d.uThreshold = o.uThreshold;
  d.lThreshold = o.lThreshold;
  d.tunType = o.tunType;
  d.tunPort = o.tunPort;
  d.tunFlags = o.tunFlags;
}

function removeDest(m: Model, svc: Service, d: Dest): void {
  const i = svc.dests.indexOf(d);
  if (i >= 0) svc.dests.splice(i, 1);
  d.flags &= ~DEST_F_AVAILABLE;
  svc.sched.onDestChange('del', d);
  m.onDestRemoved(d);
}

function removeService(m: Model, svc: Service): void {
  for (const d of [...svc.dests]) removeDest(m, svc, d);
  m.onServiceRemoved(svc);
  m.config.remove(svc);
}

function zeroService(svc: Service): void {
  svc.stats.zero();
  for (const d of svc.dests) d.stats.zero();
}

/** A throwaway copy of the rule set (services, dests, laddrs) for validating a batch. */
function scratchModel(src: Config): Model {
  const { Config: C } = configModule;
  const config = new C();
  const m: Model = {
    config,
    onDestRemoved: () => {},
    onServiceRemoved: () => {},
    zeroTotals: () => {},
    setTimeouts: (tcp, tcpfin, udp) => {
      for (const v of [tcp, tcpfin, udp]) if (!Number.isInteger(v) || v < 0) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
    },
  };
  for (const s of src.services) {
    const svc = new Service(config.allocSvcId(), s.protocol, s.addr, s.port, s.fwmark, undefined as never);
    svc.schedName = s.schedName;
    svc.flags = s.flags;
    svc.timeout = s.timeout;
    svc.netmask = s.netmask;
    svc.pe = s.pe;
    svc.proxyProtocol = s.proxyProtocol;
    svc.synproxy = s.synproxy;
    svc.laddrs = [...s.laddrs];
    svc.sched = getScheduler(s.schedName)!.create(svc);
    for (const d of [...s.dests].reverse()) {
      const nd = new Dest(config.allocDestId(), svc, d.addr, d.port);
      nd.fwd = d.fwd; nd.weight = d.weight; nd.uThreshold = d.uThreshold; nd.lThreshold = d.lThreshold;
      config.registerDest(nd);
      svc.dests.unshift(nd);
    }
    config.add(svc);
  }
  config.markRules.copyFrom(src.markRules);
  return m;
}

import * as configModule from '../model/config.js';

// ---------------------------------------------------------------------- snapshots

export function snapStats(s: Stats): StatsSnap {
  return { conns: s.conns, inpkts: s.inpkts, outpkts: s.outpkts, inbytes: s.inbytes, outbytes: s.outbytes };
}

/** Rates as the kernel reports them: cps/pps kept ×2^10, bps ×2^5, rounded. */
export function snapRates(s: Stats): RateSnap {
  return {
    cps: Math.floor((s.cps + 0x1ff) / 1024),
    inpps: Math.floor((s.inpps + 0x1ff) / 1024),
    outpps: Math.floor((s.outpps + 0x1ff) / 1024),
    inbps: Math.floor((s.inbps + 0xf) / 32),
    outbps: Math.floor((s.outbps + 0xf) / 32),
  };
}

export function snapDest(d: Dest): DestSnap {
  return {
    addr: ipToString(d.addr), port: d.port, fwd: d.fwd, weight: d.weight, uThreshold: d.uThreshold,
    lThreshold: d.lThreshold, activeConns: d.activeConns, inactConns: d.inactConns, persistConns: d.persistConns,
    tunType: d.tunType, tunPort: d.tunPort, tunFlags: d.tunFlags, stats: snapStats(d.stats), rates: snapRates(d.stats),
  };
}

export function snapService(s: Service): ServiceSnap {
  return {
    protocol: s.protocol, af: 2, addr: s.fwmark ? '' : ipToString(s.addr), port: s.port, fwmark: s.fwmark,
    sched: s.schedName, flags: s.flags, timeout: s.timeout, netmask: ipToString(s.netmask), pe: s.pe,
    proxyProtocol: s.proxyProtocol, ...(s.synproxy ? { synproxy: true } : {}), dests: s.dests.map(snapDest), laddrs: s.laddrs.map(ipToString), stats: snapStats(s.stats), rates: snapRates(s.stats),
  };
}

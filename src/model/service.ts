import { SVC_F_PERSISTENT, type FwdMethod } from './constants.js';
import type { Dest } from './dest.js';
import { Stats } from './stats.js';
import type { Scheduler } from '../sched/scheduler.js';

/**
 * A virtual service: protocol + VIP + port, or a firewall mark. Its dests are kept in the
 * kernel's list order: a new dest is inserted at the HEAD (index 0), so schedulers that scan
 * the list see the most recently added dest first.
 */
export class Service {
  readonly id: number;
  /** IPPROTO_TCP / UDP / SCTP, or 0 for a fwmark service. */
  readonly protocol: number;
  readonly addr: number;
  readonly port: number;
  readonly fwmark: number;
  readonly af = 2;
  schedName = 'wlc';
  sched: Scheduler;
  flags = 0;
  /** Persistence timeout in seconds (meaningful with SVC_F_PERSISTENT). */
  timeout = 0;
  netmask = 0xffffffff;
  pe = '';
  /** `--proxy-protocol`: 0 disable, 1 v1, 2 v2 (fwd/proxy-proto.ts; NAT and FULLNAT TCP conns). */
  proxyProtocol = 0;
  /** `-j enable` (Alibaba fork, DPVS): the director answers SYNs with SYN cookies (fwd/synproxy.ts; NAT and FULLNAT TCP). */
  synproxy = false;
  dests: Dest[] = [];
  /** FULLNAT local addresses (numbers), in the order added. */
  laddrs: number[] = [];
  laddrCursor = 0;
  readonly stats = new Stats();

  constructor(id: number, protocol: number, addr: number, port: number, fwmark: number, sched: Scheduler) {
    this.id = id;
    this.protocol = protocol;
    this.addr = addr >>> 0;
    this.port = port;
    this.fwmark = fwmark >>> 0;
    this.sched = sched;
  }

  get persistent(): boolean {
    return (this.flags & SVC_F_PERSISTENT) !== 0;
  }

  findDest(addr: number, port: number): Dest | undefined {
    for (const d of this.dests) if (d.addr === addr >>> 0 && d.port === port) return d;
    return undefined;
  }

  /** Whether any dest uses the given forwarding method. */
  hasFwd(fwd: FwdMethod): boolean {
    for (const d of this.dests) if (d.fwd === fwd) return true;
    return false;
  }
}

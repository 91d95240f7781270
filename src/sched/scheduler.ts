import type { Expiration } from '../model/sysctl.js';
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';

/**
 * What a scheduler may look at for one new connection. One instance is reused by the data path
 * (no allocation per packet); all numbers, addresses host-order u32.
 */
export class SchedKey {
  proto = 0;
  saddr = 0;
  sport = 0;
  daddr = 0;
  dport = 0;
  /** True when scheduling for an ICMP error (sh/mh then hash the destination address). */
  icmpError = false;
}

/** Filled by pick() only when tracing is on: the reasoning, in one line. */
export class SchedNote {
  text = '';
}

/** What changed in the service's dest list (the kernel's add_dest/del_dest/upd_dest hooks). */
export type DestChange = 'add' | 'del' | 'edit';

/**
 * One scheduler bound to one service (the kernel's init_service..done_service lifetime).
 * No timers inside: time only comes in through `now` (ms, injected clock).
 */
export interface Scheduler {
  readonly name: string;
  /**
   * Chooses a dest for a new connection, or null ("no destination available").
   * `note` is non-null only when tracing; then the scheduler writes its reasoning there.
   */
  pick(key: SchedKey, now: number, note: SchedNote | null): Dest | null;
  /** Called after control changed svc.dests (dest already inserted / already removed / edited). */
  onDestChange(kind: DestChange, dest: Dest): void;
  /** Periodic housekeeping (lblc/lblcr cache expiry); driven by the daemon's clock. */
  sweep(now: number): void;
}

export interface SchedulerFactory {
  readonly name: string;
  /** Which -b flags this scheduler accepts (ipvsadm: sh-fallback,sh-port for sh; mh-* for mh). */
  readonly flagNames?: readonly string[];
  /** env: the director's settings a scheduler reads (the locality schedulers' expiration sysctls). */
  create(svc: Service, env?: SchedEnv): Scheduler;
}

/** What a scheduler may read of the director's settings, live (a sysctl set applies at once). */
export interface SchedEnv {
  readonly lblcExpiration: Expiration;
  readonly lblcrExpiration: Expiration;
}

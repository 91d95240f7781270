/**
 * Builds services and dests for scheduler tests exactly as control does: the Service is created
 * with a placeholder scheduler, then `svc.sched = factory.create(svc)`; a new dest is inserted at
 * index 0 (kernel list head) and the scheduler is told with onDestChange('add', d).
 */
import { Service } from '../../../src/model/service.js';
import { Dest } from '../../../src/model/dest.js';
import { parseIp } from '../../../src/model/addr.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, IPPROTO_TCP } from '../../../src/model/constants.js';
import { SchedKey, type Scheduler, type SchedulerFactory } from '../../../src/sched/scheduler.js';
import { getScheduler } from '../../../src/sched/registry.js';

const placeholder: Scheduler = {
  name: 'none',
  pick: () => null,
  onDestChange: () => {},
  sweep: () => {},
};

let nextId = 1;

export function ip(s: string): number {
  const v = parseIp(s);
  if (v < 0) throw new Error(`bad ip ${s}`);
  return v;
}

export interface Lab {
  svc: Service;
  sched: Scheduler;
  /** Adds a dest at the list head, as ipvsadm -a does. */
  add(addr: string, weight?: number, port?: number): Dest;
  /** ipvsadm -e: changes the weight (last_weight follows unless 0). */
  edit(d: Dest, weight: number): void;
  /** ipvsadm -d: unlinks and tells the scheduler. */
  del(d: Dest): void;
  /** Picks with the given client/destination. */
  pick(saddr?: string, now?: number, daddr?: string, sport?: number): Dest | null;
  /** Picks n times and returns the dest addresses' names by the `names` map. */
  seq(n: number, names: Map<Dest, string>): string[];
}

export function lab(factory: SchedulerFactory | string, flags = 0): Lab {
  const f = typeof factory === 'string' ? getScheduler(factory)! : factory;
  const svc = new Service(nextId++, IPPROTO_TCP, ip('192.0.2.1'), 80, 0, placeholder);
  svc.schedName = f.name;
  svc.flags = flags;
  svc.sched = f.create(svc);
  const key = new SchedKey();
  key.proto = IPPROTO_TCP;
  const l: Lab = {
    svc,
    get sched() { return svc.sched; },
    add(addr, weight = 1, port = 80) {
      const d = new Dest(nextId++, svc, ip(addr), port);
      d.weight = weight;
      d.lastWeight = weight;
      d.flags = DEST_F_AVAILABLE;
      svc.dests.unshift(d);
      svc.sched.onDestChange('add', d);
      return d;
    },
    edit(d, weight) {
      d.weight = weight;
      if (weight !== 0) d.lastWeight = weight;
      svc.sched.onDestChange('edit', d);
    },
    del(d) {
      const i = svc.dests.indexOf(d);
      svc.dests.splice(i, 1);
      d.flags &= ~DEST_F_AVAILABLE;
      svc.sched.onDestChange('del', d);
    },
    pick(saddr = '203.0.113.7', now = 0, daddr = '192.0.2.1', sport = 40000) {
      key.saddr = ip(saddr);
      key.daddr = ip(daddr);
      key.sport = sport;
      key.dport = 80;
      return svc.sched.pick(key, now, null);
    },
    seq(n, names) {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const d = l.pick();
        out.push(d === null ? '-' : names.get(d) ?? '?');
      }
      return out;
    },
  };
  return l;
}

export function overload(d: Dest, on = true): void {
  if (on) d.flags |= DEST_F_OVERLOAD;
  else d.flags &= ~DEST_F_OVERLOAD;
}

export function conns(d: Dest, active: number, inactive = 0): void {
  d.activeConns = active;
  d.inactConns = inactive;
}

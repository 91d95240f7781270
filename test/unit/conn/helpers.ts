import { Dest } from '../../../src/model/dest.js';
import { Service } from '../../../src/model/service.js';
import { FWD_DROUTE, IPPROTO_TCP, type FwdMethod } from '../../../src/model/constants.js';
import { parseIp } from '../../../src/model/addr.js';
import type { Scheduler } from '../../../src/sched/scheduler.js';

export const ip = (s: string): number => parseIp(s);

const nullSched: Scheduler = {
  name: 'rr',
  pick: () => null,
  onDestChange: () => {},
  sweep: () => {},
};

let nextDestId = 1;
export function mkService(id = 1, proto = IPPROTO_TCP, vip = '192.0.2.10', port = 80): Service {
  return new Service(id, proto, ip(vip), port, 0, nullSched);
}

export function mkDest(svc: Service, rip: string, port: number, fwd: FwdMethod = FWD_DROUTE): Dest {
  const d = new Dest(nextDestId++, svc, ip(rip), port);
  d.fwd = fwd;
  svc.dests.unshift(d);
  return d;
}

/**
 * A two-port director on memory ports, as `uvsd --tap` would set it up: port 0 toward the
 * clients (192.168.10.100/24), port 1 toward the real servers (10.0.0.8/24), neighbours known.
 */
import { Director } from '../../src/pipeline/director.js';
import { FakeClock } from '../../src/pipeline/clock.js';
import { MemoryPort } from '../../src/port/memory-port.js';
import { Control } from '../../src/control/ops.js';
import { parseIp } from '../../src/model/addr.js';
import type { Command } from '../../src/control/types.js';
import { mac } from './frames.js';

export const CLIENT_MAC = '02:00:00:00:00:aa';
export const RS1_MAC = '02:00:00:00:01:07';
export const RS2_MAC = '02:00:00:00:01:17';
export const ROUTER_MAC = '02:00:00:00:00:c8';
export const DIR0_MAC = '02:00:00:00:00:01';
export const DIR1_MAC = '02:00:00:00:00:02';

export function memLab(opts: { gateway?: string; learn?: boolean; mtu1?: number } = {}) {
  const clock = new FakeClock();
  const d = new Director({ clock, maxConns: 1024, batch: 16, maxPorts: 2, pendingMax: 16, seed: 1 });
  const p0 = new MemoryPort({ name: 'cli0', mac: DIR0_MAC });
  const p1 = new MemoryPort({ name: 'srv0', mac: DIR1_MAC, ...(opts.mtu1 !== undefined ? { mtu: opts.mtu1 } : {}) });
  d.addPort(p0, [parseIp('192.168.10.100')]);
  d.addPort(p1, [parseIp('10.0.0.8')]);
  d.routes.addAddress({ port: 0, addr: parseIp('192.168.10.100'), prefix: 24 });
  d.routes.addAddress({ port: 1, addr: parseIp('10.0.0.8'), prefix: 24 });
  if (opts.gateway) d.routes.add({ net: 0, prefix: 0, gw: parseIp(opts.gateway), port: 1, src: 0 });
  if (opts.learn !== false) {
    const now = clock.now();
    d.neigh.learn(parseIp('192.168.10.6'), mac(CLIENT_MAC), 0, 0, now, true);
    d.neigh.learn(parseIp('10.0.0.7'), mac(RS1_MAC), 0, 1, now, true);
    d.neigh.learn(parseIp('10.0.0.17'), mac(RS2_MAC), 0, 1, now, true);
    d.neigh.learn(parseIp('10.0.0.200'), mac(ROUTER_MAC), 0, 1, now, true);
  }
  const control = new Control(d);
  const cmd = (c: Command) => {
    const r = control.execute(c);
    if (!r.ok) throw new Error(`${c.cmd}: ${r.errno} ${r.message}`);
    return r;
  };
  const run = () => {
    d.pollPort(0);
    d.pollPort(1);
  };
  return { clock, d, p0, p1, control, cmd, run };
}

export const tcpSvc = (addr: string, port: number) => ({ protocol: 6, af: 2, addr, port, fwmark: 0 });
export const udpSvc = (addr: string, port: number) => ({ protocol: 17, af: 2, addr, port, fwmark: 0 });
export const svcOpts = (sched = 'rr', extra: Partial<{ flags: number; timeout: number; netmask: string }> = {}) => ({
  sched, flags: extra.flags ?? 0, timeout: extra.timeout ?? 0, netmask: extra.netmask ?? '255.255.255.255', pe: '',
});
export const destOpts = (fwd: 0 | 2 | 3 | 5, weight = 1) => ({ fwd, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });

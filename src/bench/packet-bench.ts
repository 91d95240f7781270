/**
 * Micro-benchmark of the per-packet JS work on an established conn (no I/O):
 *  - "parse+lookup+NAT": parsePacket + conn lookup + the NAT rewrite (RFC 1624 updates);
 *  - "full pipeline": Director.process (parse, track, TCP state, counters, TTL, forward, route,
 *    neighbour, L2 header, tx queue) for NAT, DR, TUN and FULLNAT.
 * Frames are restored from a template before each run (54 bytes); that copy is measured alone
 * and subtracted. Conns: `flows` established conns, packets cycle over them.
 */
import { Director } from '../pipeline/director.js';
import { FakeClock } from '../pipeline/clock.js';
import { parsePacket } from '../pipeline/parse.js';
import { Control } from '../control/ops.js';
import type { Port } from '../port/port.js';
import type { Arena } from '../packet/arena.js';
import { parseIp } from '../model/addr.js';
import { natForwarder } from '../fwd/nat.js';
import { checksum, pseudoSum } from '../wire/checksum.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL } from '../model/constants.js';
import type { Command } from '../control/types.js';

class NullPort implements Port {
  index = 0;
  readonly mtu = 1500;
  constructor(readonly name: string, readonly mac: Uint8Array) {}
  recv(_a: Arena, _s: Uint32Array, _n: number): number { return 0; }
  send(_a: Arena, _s: Uint32Array, n: number): number { return n; }
  onReadable(): void {}
  close(): void {}
}

function frame(saddr: number, daddr: number, sport: number, dport: number, flags: number): Uint8Array {
  const b = new Uint8Array(54);
  const dv = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 1], 0);
  b.set([2, 0, 0, 0, 0, 0xaa], 6);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 40);
  dv.setUint16(20, 0x4000);
  b[22] = 64;
  b[23] = 6;
  dv.setUint32(26, saddr);
  dv.setUint32(30, daddr);
  dv.setUint16(24, checksum(b, 14, 20));
  dv.setUint16(34, sport);
  dv.setUint16(36, dport);
  b[46] = 0x50;
  b[47] = flags;
  dv.setUint16(48, 65535);
  dv.setUint16(50, checksum(b, 34, 20, pseudoSum(saddr, daddr, 6, 20)));
  return b;
}

function ns(start: bigint, n: number): number {
  return Number(process.hrtime.bigint() - start) / n;
}

interface Setup { d: Director; frames: Uint8Array[]; slots: number[] }

function setup(fwd: number, flows: number): Setup {
  const clock = new FakeClock();
  const d = new Director({ clock, maxConns: Math.max(1024, flows * 2), batch: 64, maxPorts: 2 });
  d.addPort(new NullPort('cli0', new Uint8Array([2, 0, 0, 0, 0, 1])), [parseIp('192.168.10.100')]);
  d.addPort(new NullPort('srv0', new Uint8Array([2, 0, 0, 0, 0, 2])), [parseIp('10.0.0.8')]);
  d.routes.addAddress({ port: 0, addr: parseIp('192.168.10.100'), prefix: 24 });
  d.routes.addAddress({ port: 1, addr: parseIp('10.0.0.8'), prefix: 24 });
  const now = clock.now();
  const m = new Uint8Array([2, 0, 0, 0, 1, 7]);
  d.neigh.learn(parseIp('192.168.10.6'), m, 0, 0, now, true);
  d.neigh.learn(parseIp('10.0.0.7'), m, 0, 1, now, true);
  d.neigh.learn(parseIp('10.0.0.17'), m, 0, 1, now, true);
  const c = new Control(d);
  const svc = { protocol: 6, af: 2, addr: '192.168.10.110', port: 80, fwmark: 0 };
  const x = (cmd: Command): void => { const r = c.execute(cmd); if (!r.ok) throw new Error(r.message); };
  x({ cmd: 'add-service', svc, opts: { sched: 'wrr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } });
  for (const rip of ['10.0.0.7', '10.0.0.17']) {
    x({ cmd: 'add-server', svc, dest: { addr: rip, port: 80 }, opts: { fwd: fwd as 0, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 } });
  }
  if (fwd === FWD_FULLNAT) x({ cmd: 'add-laddr', svc, laddr: '10.0.0.50' });
  const cip = parseIp('192.168.10.6');
  const vip = parseIp('192.168.10.110');
  const frames: Uint8Array[] = [];
  for (let i = 0; i < flows; i++) {
    const sport = 1024 + (i % 60000);
    const caddr = (cip + Math.floor(i / 60000)) >>> 0;
    const syn = frame(caddr, vip, sport, 80, 0x02);
    // Establish the conn with a SYN through the full pipeline.
    const p = d.packets[0]!;
    d.arena.reset(0);
    d.arena.bytes.set(syn, d.arena.off[0]!);
    d.arena.len[0] = syn.length;
    d.process(p, now);
    frames.push(frame(caddr, vip, sport, 80, 0x10));
  }
  d.flush();
  const slots: number[] = [];
  for (let i = 0; i < 64; i++) slots.push(i);
  return { d, frames, slots };
}

function runCore(s: Setup, iters: number): number {
  const { d, frames } = s;
  const a = d.arena;
  const bytes = a.bytes;
  const nf = frames.length;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    const off = slot * 65792 + 128;
    a.off[slot] = off;
    a.len[slot] = 54;
    bytes.set(frames[k]!, off);
    if (++k === nf) k = 0;
    const p = d.packets[slot]!;
    parsePacket(p);
    const ref = d.conns.lookup(p.proto, p.saddr, p.sport, p.daddr, p.dport);
    if (ref >= 0) natForwarder.inbound(p, ref >> 1, d);
  }
  return ns(t0, iters);
}

function runPipeline(s: Setup, iters: number): number {
  const { d, frames } = s;
  const a = d.arena;
  const bytes = a.bytes;
  const nf = frames.length;
  const now = d.clock.now();
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    const off = slot * 65792 + 128;
    a.off[slot] = off;
    a.len[slot] = 54;
    bytes.set(frames[k]!, off);
    if (++k === nf) k = 0;
    d.process(d.packets[slot]!, now);
    if (slot === 63) d.flush();
  }
  const r = ns(t0, iters);
  d.flush();
  return r;
}

function runCopyOnly(s: Setup, iters: number): number {
  const { d, frames } = s;
  const a = d.arena;
  const nf = frames.length;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    const off = slot * 65792 + 128;
    a.off[slot] = off;
    a.len[slot] = 54;
    a.bytes.set(frames[k]!, off);
    if (++k === nf) k = 0;
  }
  return ns(t0, iters);
}

export async function runPacketBench(opts: { flows?: number; iters?: number } = {}): Promise<string> {
  const flows = opts.flows ?? 10_000;
  const iters = opts.iters ?? 2_000_000;
  const rows: string[] = ['| path (established conn, ' + flows + ' flows) | ns/packet |', '|---|--:|'];
  const nat = setup(FWD_MASQ, flows);
  runCopyOnly(nat, iters);
  const copy = runCopyOnly(nat, iters);
  runCore(nat, iters);
  const core = runCore(nat, iters) - copy;
  rows.push(`| parse + conn lookup + NAT rewrite | ${core.toFixed(1)} |`);
  for (const [name, fwd] of [['NAT', FWD_MASQ], ['DR', FWD_DROUTE], ['TUN', FWD_TUNNEL], ['FULLNAT', FWD_FULLNAT]] as const) {
    const s = fwd === FWD_MASQ ? nat : setup(fwd, flows);
    runPipeline(s, iters);
    const full = runPipeline(s, iters) - copy;
    rows.push(`| full pipeline, ${name} (parse … egress, batch of 64) | ${full.toFixed(1)} |`);
  }
  rows.push(`| (template copy, subtracted) | ${copy.toFixed(1)} |`);
  return rows.join('\n');
}

/**
 * Micro-benchmark of the per-packet JS work on an established conn (no I/O):
 *  - "parse+lookup+NAT": parsePacket + conn lookup + the NAT rewrite (RFC 1624 updates);
 *  - "classify": the service lookup a packet without a conn starts with;
 *  - "full pipeline": Director.process (parse, track, TCP state, counters, TTL, forward, route,
 *    neighbour, L2 header, tx queue) for NAT, DR, TUN and FULLNAT, and per mode its forwarder alone
 *    (parse + lookup + forwarder, minus parse + lookup) and the rest (full − parse − lookup − forwarder).
 * Frames are restored from a template before each run (54 bytes); that copy is measured alone
 * and subtracted. Conns: `flows` established conns, packets cycle over them.
 */
import { Director } from '../pipeline/director.js';
import { FakeClock } from '../pipeline/clock.js';
import { parsePacket } from '../pipeline/parse.js';
import { Control } from '../control/ops.js';
import { HEADROOM, SLOT_SIZE } from '../packet/arena.js';
import { parseIp } from '../model/addr.js';
import { natForwarder } from '../fwd/nat.js';
import { drForwarder } from '../fwd/dr.js';
import { tunForwarder } from '../fwd/tun.js';
import { fullnatForwarder } from '../fwd/fullnat.js';
import type { Forwarder } from '../fwd/forwarder.js';
import { checksum, pseudoSum } from '../wire/checksum.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL } from '../model/constants.js';
import type { Command } from '../control/types.js';
import { hugeAllocator } from '../port/native.js';
import { NullPort } from '../port/null-port.js';

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

/** Frames are kept flat: frame i at words [i * FW, i * FW + FW) of a Uint32Array (54 B padded to 56). */
const FW = 14;

export interface Setup { d: Director; flat: Uint32Array; nf: number; words: Uint32Array; fwd: Forwarder }

const FORWARDER: Record<number, Forwarder> = {
  [FWD_MASQ]: natForwarder, [FWD_DROUTE]: drForwarder, [FWD_TUNNEL]: tunForwarder, [FWD_FULLNAT]: fullnatForwarder,
};

export function setup(fwd: number, flows: number): Setup {
  const clock = new FakeClock();
  const d = new Director({ clock, maxConns: Math.max(1024, flows * 2), allocate: hugeAllocator(), batch: 64, maxPorts: 2 });
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
  if (fwd === FWD_FULLNAT) for (let i = 0; i < Math.ceil(flows / 50_000); i++) x({ cmd: 'add-laddr', svc, laddr: `10.0.1.${10 + i}` });
  const cip = parseIp('192.168.10.6');
  const vip = parseIp('192.168.10.110');
  const flat = new Uint32Array(flows * FW);
  const flatBytes = new Uint8Array(flat.buffer);
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
    if ((i & 63) === 63) d.flush();
    flatBytes.set(frame(caddr, vip, sport, 80, 0x10), i * FW * 4);
  }
  d.flush();
  const a = d.arena;
  return { d, flat, nf: flows, words: new Uint32Array(a.buffer, 0, a.buffer.byteLength >>> 2), fwd: FORWARDER[fwd]! };
}

/** Copies frame k into arena slot `slot` (14 word stores; the arena's frame offsets are 4-aligned). */
function load(s: Setup, slot: number, k: number): void {
  const a = s.d.arena;
  const off = slot * SLOT_SIZE + HEADROOM;
  a.off[slot] = off;
  a.len[slot] = 54;
  const w = s.words, f = s.flat;
  const o = off >>> 2, src = k * FW;
  for (let j = 0; j < FW; j++) w[o + j] = f[src + j]!;
}

/*
 * The three stages of the core micro, each its own loop: one function shared by the stages
 * was re-optimized whenever the stage changed, and single runs swung between ≈ 80 and ≈ 155
 * ns/packet. The conn lookup passes the addresses as int32, as the director does.
 */
/** Load + parse per packet. */
export function runParse(s: Setup, iters: number): number {
  const { d, nf } = s;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    parsePacket(d.packets[slot]!);
  }
  return ns(t0, iters);
}

/** Load + parse + service lookup (classify: what a packet without a conn does first) per packet. */
export function runClassify(s: Setup, iters: number): number {
  const { d, nf } = s;
  let k = 0;
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    const p = d.packets[slot]!;
    parsePacket(p);
    if (d.config.lookup(p.proto, p.daddr | 0, p.dport) !== undefined) hits++;
  }
  const r = ns(t0, iters);
  if (hits !== iters) throw new Error(`packet bench: ${iters - hits} service lookups missed`);
  return r;
}

/** Load + parse + conn lookup + the setup's own forwarder (inbound) per packet. */
export function runForward(s: Setup, iters: number): number {
  const { d, nf, fwd } = s;
  let k = 0;
  let ok = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    const p = d.packets[slot]!;
    parsePacket(p);
    const ref = d.conns.lookup(p.proto, p.saddr | 0, p.sport, p.daddr | 0, p.dport);
    if (ref >= 0 && fwd.inbound(p, ref >> 1, d) === 0) ok++;
  }
  const r = ns(t0, iters);
  if (ok !== iters) throw new Error(`packet bench: ${iters - ok} packets not forwarded`);
  return r;
}

/** Load + parse + conn lookup per packet. */
export function runLookup(s: Setup, iters: number): number {
  const { d, nf } = s;
  let k = 0;
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    const p = d.packets[slot]!;
    parsePacket(p);
    if (d.conns.lookup(p.proto, p.saddr | 0, p.sport, p.daddr | 0, p.dport) >= 0) hits++;
  }
  const r = ns(t0, iters);
  if (hits !== iters) throw new Error(`packet bench: ${iters - hits} lookups missed`);
  return r;
}

/** Load + parse + conn lookup + NAT rewrite per packet. */
export function runCore(s: Setup, iters: number): number {
  const { d, nf } = s;
  let k = 0;
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    const p = d.packets[slot]!;
    parsePacket(p);
    const ref = d.conns.lookup(p.proto, p.saddr | 0, p.sport, p.daddr | 0, p.dport);
    if (ref >= 0) {
      hits++;
      natForwarder.inbound(p, ref >> 1, d);
    }
  }
  const r = ns(t0, iters);
  if (hits !== iters) throw new Error(`packet bench: ${iters - hits} lookups missed`);
  return r;
}

function runPipeline(s: Setup, iters: number): number {
  const { d, nf } = s;
  const now = d.clock.now();
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    const slot = i & 63;
    load(s, slot, k);
    if (++k === nf) k = 0;
    d.process(d.packets[slot]!, now);
    if (slot === 63) d.flush();
  }
  const r = ns(t0, iters);
  d.flush();
  return r;
}

/** Director.processBatch over batches of 64 frames of flows in random order (order[]). */
function runBatches(s: Setup, iters: number, order: Uint32Array): number {
  const { d } = s;
  const rx = new Uint32Array(64);
  for (let i = 0; i < 64; i++) rx[i] = i;
  const no = order.length;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i += 64) {
    for (let slot = 0; slot < 64; slot++) {
      load(s, slot, order[k]!);
      if (++k === no) k = 0;
    }
    d.processBatch(0, rx, 64);
  }
  return ns(t0, iters);
}

export function runCopyOnly(s: Setup, iters: number, order?: Uint32Array): number {
  const no = order ? order.length : s.nf;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    load(s, i & 63, order ? order[k]! : k);
    if (++k === no) k = 0;
  }
  return ns(t0, iters);
}

/** Median of `rounds` runs of f after 3 warm-up runs (the first runs of a loop can still be in
 * on-stack-replaced code, ≈ 60 ns/packet slower here). */
function median(rounds: number, f: () => number): number {
  for (let i = 0; i < 3; i++) f();
  const xs: number[] = [];
  for (let i = 0; i < rounds; i++) xs.push(f());
  xs.sort((x, y) => x - y);
  return xs[xs.length >> 1]!;
}

function randomOrder(n: number, len: number, seed: number): Uint32Array {
  const o = new Uint32Array(len);
  let x = seed >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    o[i] = Math.floor((x / 0x100000000) * n);
  }
  return o;
}

/**
 * Full NAT pipeline per packet over 1k…1M established conns, packets of random flows in
 * batches of 64 (Director.processBatch), with the batch prefetch off and on: how flat the conn
 * lookup stays in the real loop as the table outgrows the caches.
 */
export function runFlowSweep(sizes = [1_000, 10_000, 100_000, 1_000_000], iters = 1_048_576): string {
  const rows = ['| established conns | full NAT pipeline, ns/packet, prefetch off | prefetch on | (copy, subtracted) |', '|---:|---:|---:|---:|'];
  for (const n of sizes) {
    const s = setup(FWD_MASQ, n);
    const order = randomOrder(n, 1 << 20, 12345);
    const copy = median(3, () => runCopyOnly(s, iters, order));
    s.d.prefetchMin = Infinity;
    const off = median(3, () => runBatches(s, iters, order)) - copy;
    s.d.prefetchMin = 0;
    const on = median(3, () => runBatches(s, iters, order)) - copy;
    rows.push(`| ${n.toLocaleString('en-US')} | ${off.toFixed(1)} | ${on.toFixed(1)} | ${copy.toFixed(1)} |`);
  }
  return rows.join('\n');
}

export async function runPacketBench(opts: { flows?: number; iters?: number; sweep?: boolean } = {}): Promise<string> {
  const flows = opts.flows ?? 10_000;
  const iters = opts.iters ?? 2_000_000;
  const rows: string[] = ['| path (established conn, ' + flows + ' flows; median of 5) | ns/packet |', '|---|--:|'];
  const nat = setup(FWD_MASQ, flows);
  const copy = median(5, () => runCopyOnly(nat, iters));
  const parse = median(5, () => runParse(nat, iters)) - copy;
  const lookup = median(5, () => runLookup(nat, iters)) - copy;
  const core = median(5, () => runCore(nat, iters)) - copy;
  const classify = median(5, () => runClassify(nat, iters)) - copy;
  rows.push(`| parse + conn lookup + NAT rewrite | ${core.toFixed(1)} |`);
  rows.push(`| … of which parse | ${parse.toFixed(1)} |`, `| … of which conn lookup | ${(lookup - parse).toFixed(1)} |`,
    `| … of which NAT rewrite (addresses, port, RFC 1624 checksums) | ${(core - lookup).toFixed(1)} |`);
  rows.push(`| classify: service lookup of a packet without a conn (after parse) | ${(classify - parse).toFixed(1)} |`);
  rows.push('| schedule: see "Scheduler pick()" below | |');
  const stages: string[] = [];
  for (const [name, fwd] of [['NAT', FWD_MASQ], ['DR', FWD_DROUTE], ['TUN', FWD_TUNNEL], ['FULLNAT', FWD_FULLNAT]] as const) {
    const s = fwd === FWD_MASQ ? nat : setup(fwd, flows);
    const full = median(5, () => runPipeline(s, iters)) - copy;
    const forwarded = median(5, () => runForward(s, iters)) - copy;
    rows.push(`| full pipeline, ${name} (parse … egress, batch of 64) | ${full.toFixed(1)} |`);
    stages.push(`| … ${name}: forwarder (inbound) | ${(forwarded - lookup).toFixed(1)} |`,
      `| … ${name}: the rest (TCP state, counters, TTL, route, neighbour, L2 header, tx queue) | ${(full - forwarded).toFixed(1)} |`);
  }
  rows.push(...stages);
  rows.push(`| (frame copy into the slot, subtracted) | ${copy.toFixed(1)} |`);
  if (opts.sweep !== false) rows.push('', runFlowSweep());
  return rows.join('\n');
}

/**
 * trace-bench — what the step tracer costs: per-packet time of the real pipeline (parse →
 * track → state → NAT rewrite → route → egress) for the packets of one established NAT conn,
 * with tracing off, with a tracer attached whose filter matches nothing (begin() decodes and
 * rejects every frame), with every packet traced into a listener that keeps nothing, and with
 * every packet traced and rendered as text.
 *
 * The ports are bench ports: recv() refills arena slots from one prebuilt frame and send()
 * only counts, so the numbers are the pipeline's own (no copies into `sent` lists).
 *
 * Returns a markdown table. Run after `tsc`:
 *     node -e "import('./dist/bench/trace-bench.js').then(m=>m.runTraceBench()).then(console.log)"
 */
import { performance } from 'node:perf_hooks';
import type { Arena } from '../packet/arena.js';
import type { Port } from '../port/port.js';
import { Director } from '../pipeline/director.js';
import { FakeClock } from '../pipeline/clock.js';
import { Control } from '../control/ops.js';
import { parseIp, parseMac } from '../model/addr.js';
import { checksum, pseudoSum } from '../wire/checksum.js';
import { FWD_MASQ } from '../model/constants.js';
import { noTracer } from '../trace/tracer.js';
import { attachTracer } from '../trace/attach.js';

const BATCH = 32;

/** A port that receives copies of `frame` (up to `budget` of them) and counts what it sends. */
class BenchPort implements Port {
  index = -1;
  readonly mac: Uint8Array;
  readonly mtu = 1500;
  frame: Uint8Array = new Uint8Array(0);
  budget = 0;
  sent = 0;
  constructor(readonly name: string, mac: string) {
    this.mac = parseMac(mac)!;
  }
  recv(arena: Arena, slots: Uint32Array, count: number): number {
    const n = Math.min(count, this.budget);
    const f = this.frame;
    for (let i = 0; i < n; i++) {
      const s = slots[i]!;
      arena.bytes.set(f, arena.off[s]!);
      arena.len[s] = f.length;
    }
    this.budget -= n;
    return n;
  }
  send(_arena: Arena, _slots: Uint32Array, count: number): number {
    this.sent += count;
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

function tcp(srcMac: string, dstMac: string, s: string, d: string, sport: number, dport: number, flags: number, seq: number, ack: number, payload: number): Uint8Array {
  const l4len = 20 + payload;
  const b = new Uint8Array(34 + l4len);
  const dv = new DataView(b.buffer);
  b.set(parseMac(dstMac)!, 0);
  b.set(parseMac(srcMac)!, 6);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 20 + l4len);
  dv.setUint16(20, 0x4000);
  b[22] = 64;
  b[23] = 6;
  dv.setUint32(26, parseIp(s));
  dv.setUint32(30, parseIp(d));
  dv.setUint16(24, checksum(b, 14, 20));
  dv.setUint16(34, sport);
  dv.setUint16(36, dport);
  dv.setUint32(38, seq);
  dv.setUint32(42, ack);
  b[46] = 0x50;
  b[47] = flags;
  dv.setUint16(48, 64240);
  dv.setUint16(50, checksum(b, 34, l4len, pseudoSum(parseIp(s), parseIp(d), 6, l4len)));
  return b;
}

interface Bench {
  d: Director;
  cli: BenchPort;
  srv: BenchPort;
  data: Uint8Array;
}

/** A NAT director with one established conn 192.168.10.6:40000 → VIP:80 ⇒ 10.0.0.7:80. */
function setup(): Bench {
  const clock = new FakeClock();
  const d = new Director({ clock, maxConns: 1024, batch: BATCH, maxPorts: 2, pendingMax: 16, seed: 1 });
  const cli = new BenchPort('eth0', '02:00:00:00:00:01');
  const srv = new BenchPort('eth1', '02:00:00:00:00:02');
  d.addPort(cli, [parseIp('192.168.10.100')]);
  d.addPort(srv, [parseIp('10.0.0.8')]);
  d.routes.addAddress({ port: 0, addr: parseIp('192.168.10.100'), prefix: 24 });
  d.routes.addAddress({ port: 1, addr: parseIp('10.0.0.8'), prefix: 24 });
  d.neigh.learn(parseIp('192.168.10.6'), parseMac('02:00:00:00:00:aa')!, 0, 0, clock.now(), true);
  d.neigh.learn(parseIp('10.0.0.7'), parseMac('02:00:00:00:01:07')!, 0, 1, clock.now(), true);
  const control = new Control(d);
  const svc = { protocol: 6, af: 2, addr: '192.168.10.110', port: 80, fwmark: 0 };
  control.execute({ cmd: 'add-service', svc, opts: { sched: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } });
  control.execute({ cmd: 'add-server', svc, dest: { addr: '10.0.0.7', port: 80 }, opts: { fwd: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 } });
  const C = '02:00:00:00:00:aa', D0 = '02:00:00:00:00:01', R = '02:00:00:00:01:07', D1 = '02:00:00:00:00:02';
  const one = (port: BenchPort, pi: number, f: Uint8Array): void => { port.frame = f; port.budget = 1; d.pollPort(pi); };
  one(cli, 0, tcp(C, D0, '192.168.10.6', '192.168.10.110', 40000, 80, 0x02, 1000, 0, 0));
  one(srv, 1, tcp(R, D1, '10.0.0.7', '192.168.10.6', 80, 40000, 0x12, 5000, 1001, 0));
  one(cli, 0, tcp(C, D0, '192.168.10.6', '192.168.10.110', 40000, 80, 0x10, 1001, 5001, 0));
  return { d, cli, srv, data: tcp(C, D0, '192.168.10.6', '192.168.10.110', 40000, 80, 0x18, 1001, 5001, 64) };
}

/** ns per packet over `n` packets of the established conn, client → server. */
function measure(b: Bench, n: number): number {
  b.cli.frame = b.data;
  b.cli.budget = n;
  const t0 = performance.now();
  while (b.cli.budget > 0) b.d.pollPort(0, 1 << 30);
  return ((performance.now() - t0) * 1e6) / n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, c) => a - c);
  return s[s.length >> 1]!;
}

export async function runTraceBench(opts: { packets?: number; rounds?: number } = {}): Promise<string> {
  const n = opts.packets ?? 200_000;
  const rounds = opts.rounds ?? 5;
  const b = setup();
  // A second director that never has a tracer installed: the baseline the off path is held to
  // (the director whose tracer was swapped in and out must not have become slower).
  const fresh = setup();
  const sink = { write: (_s: string): boolean => true };
  type Mode = { name: string; on: () => () => void; n: number; bench?: Bench };
  const modes: Mode[] = [
    { name: 'never traced (director without a tracer ever set)', on: () => () => {}, n, bench: fresh },
    { name: 'tracing off (noTracer: one boolean test)', on: () => { b.d.tracer = noTracer; return () => {}; }, n },
    { name: 'tracer attached, filter matches nothing (`host 203.0.113.1`)', on: () => attachTracer(b.d, { filter: 'host 203.0.113.1', out: 'none' }).stop, n: Math.max(1000, n >> 2) },
    { name: 'every packet traced, event dropped', on: () => attachTracer(b.d, { out: 'none' }).stop, n: Math.max(1000, n >> 4) },
    { name: 'every packet traced and rendered as text', on: () => attachTracer(b.d, { out: 'text', stream: sink, color: false }).stop, n: Math.max(1000, n >> 4) },
  ];
  // Warm up every path (JIT) before timing.
  for (const m of modes) { const off = m.on(); measure(m.bench ?? b, Math.min(m.n, 20_000)); off(); }
  const results: number[][] = modes.map(() => []);
  for (let r = 0; r < rounds; r++) {
    modes.forEach((m, i) => {
      const off = m.on();
      results[i]!.push(measure(m.bench ?? b, m.n));
      off();
      b.d.tracer = noTracer;
    });
  }
  const base = median(results[1]!);
  let out = `### Step tracer cost (NAT, established conn, 64-byte payload, batches of ${BATCH}, median of ${rounds})\n\n`;
  out += '| mode | ns/packet | Mpps | vs off |\n| --- | ---: | ---: | ---: |\n';
  modes.forEach((m, i) => {
    const ns = median(results[i]!);
    out += `| ${m.name} | ${ns.toFixed(0)} | ${(1000 / ns).toFixed(2)} | ${i === 1 ? '—' : `×${(ns / base).toFixed(2)}`} |\n`;
  });
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
  out += `\nPer round (ns/packet): never traced ${fmt(results[0]!)}; tracing off ${fmt(results[1]!)}. `
    + 'The difference between these two rows is the whole cost of tracing when off; compare it with the spread between rounds.\n';
  return out;
}

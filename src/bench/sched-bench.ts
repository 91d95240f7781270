/**
 * Scheduler micro-benchmark: the cost of one Scheduler.pick() per registered scheduler with 2, 16
 * and 256 dests, as a markdown table of ns/pick. Wired as `uvs bench sched` (bench/sched.ts points
 * here). Each cell builds a fresh service the way control does (dests inserted at the head, then
 * onDestChange('add')), gives the dests varied connection counts, warms up, then times
 * `iterations` picks with process.hrtime.bigint(). Keys cycle through 4096 client/destination
 * addresses so sh/dh/mh/lblc/lblcr see many keys (and the lblc caches stay bounded).
 */
import { Service } from '../model/service.js';
import { Dest } from '../model/dest.js';
import { IPPROTO_TCP } from '../model/constants.js';
import { SchedKey, type Scheduler } from '../sched/scheduler.js';
import { getScheduler, schedulerNames } from '../sched/registry.js';

const SIZES = [2, 16, 256] as const;
const KEYS = 4096;

const placeholder: Scheduler = { name: 'none', pick: () => null, onDestChange: () => {}, sweep: () => {} };

function build(name: string, n: number): Service {
  const f = getScheduler(name)!;
  const svc = new Service(1, IPPROTO_TCP, 0xc0000201, 80, 0, placeholder);
  svc.schedName = name;
  svc.sched = f.create(svc);
  let seed = 12345;
  const rnd = (m: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % m;
  };
  for (let i = 0; i < n; i++) {
    const d = new Dest(i + 1, svc, (0x0a000000 + i + 1) >>> 0, 80);
    d.weight = 1 + rnd(10);
    d.lastWeight = d.weight;
    d.activeConns = rnd(d.weight + 1); // <= weight, so ovf has eligible dests
    d.inactConns = rnd(4000);
    svc.dests.unshift(d);
    svc.sched.onDestChange('add', d);
  }
  return svc;
}

function timePicks(svc: Service, iterations: number): number {
  const key = new SchedKey();
  key.proto = IPPROTO_TCP;
  key.dport = 80;
  const sched = svc.sched;
  let hits = 0;
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const k = i & (KEYS - 1);
      key.saddr = (0xc6336400 + k) >>> 0;
      key.sport = 1024 + k;
      key.daddr = (0xcb007100 + k) >>> 0;
      if (sched.pick(key, 1000, null) !== null) hits++;
    }
  };
  run(Math.min(iterations, 200_000)); // warm up (JIT, lblc caches)
  const t0 = process.hrtime.bigint();
  run(iterations);
  const t1 = process.hrtime.bigint();
  if (hits === 0) throw new Error(`bench: ${sched.name} never picked a dest`);
  return Number(t1 - t0) / iterations;
}

/** Runs the benchmark and returns the markdown table. */
export async function runSchedBench(iterations = 1_000_000): Promise<string> {
  const lines = [
    `| scheduler | ${SIZES.map((n) => `${n} dests`).join(' | ')} |`,
    `| --- | ${SIZES.map(() => '---:').join(' | ')} |`,
  ];
  for (const name of schedulerNames()) {
    const cells: string[] = [];
    for (const n of SIZES) {
      const svc = build(name, n);
      cells.push(`${timePicks(svc, iterations).toFixed(1)} ns`);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    lines.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  return `pick() cost, ${iterations} picks per cell, node ${process.version}\n\n${lines.join('\n')}\n`;
}

/**
 * `uvs bench modes`: every forwarding mode of uvs next to the kernel on one topology, in one run.
 *
 * Cases, in order (each configures the director namespace, measures, and undoes its config):
 *   kfwd     kernel IPv4 forwarding (route VIP → real server, which owns the VIP)   DR/TUN baseline
 *   knat     nftables DNAT + conntrack                                               NAT baseline
 *   kfnat    nftables DNAT + SNAT + conntrack                                        FULLNAT baseline
 *   haproxy  haproxy mode tcp on the director (1 thread, CPU1)                       connection setup
 *   dr, tun, nat, fullnat   uvsd --iface eth0 --iface eth1 on CPU1, per speed variant
 * Per case: UDP pps at full offered load ("overload", median of reps) with the director core's CPU
 * share; then (unless --no-search) an RFC 2544-style search for the highest paced rate forwarded
 * with at most 1 % loss, measured again with the normal reps ("no-loss rate"); one-way latency at
 * a fixed rate (kernel receive timestamps at the server), and wrk new-conn/s.
 *
 * Offered and forwarded packets are counted over the same window from /proc/<pid>/net/dev of
 * holder processes inside the namespaces (no process spawned between the two ends' reads):
 * offered = the client link's tx packets + tx drops (frames the director's receive backlog
 * refused), forwarded = the server link's rx packets.
 */
import { cpus, hostname, release } from 'node:os';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { REPO_ROOT, inNs, Registry, run, waitFor, type SpawnedProcess } from '../../lab/netns.js';
import { ADDR, buildTopo, FOREIGN_MAC, setNeighbours, type BenchTopo } from './topology.js';
import {
  buildTool, confirmNoLossRate, cpuDelta, kp, median, readCpu, readNetDev, readPid, runGen, runLatency, runWrk, searchNoLossRate, sleep,
  type CpuTimes, type GenReport, type IfCounters, type SearchTrial,
} from './measure.js';
import type { CaseKind, CaseResult, NoLossFigure, PpsFigure, RunResult } from './report.js';

export interface SuiteOptions {
  quick: boolean;
  modes: string[];
  variants: string[];
  seconds: number;
  reps: number;
  flows: number;
  latencyRate: number;
  latencySeconds: number;
  cpsSeconds: number;
  /** Run the no-loss rate search after the overload point. */
  search: boolean;
  /** Search: most trials per case, measuring window and warm-up of one trial (s), loss tolerance (0.01 = 1 %). */
  searchTrials: number;
  trialSeconds: number;
  trialWarm: number;
  lossTolerance: number;
  /** Search: stop when the failing rate is within this factor of the passing one. */
  searchResolution: number;
  baselines: boolean;
  cps: boolean;
  latency: boolean;
  cpuProf: string | undefined;
  log: (msg: string) => void;
}

/** uvs speed variants: UVS_PACKET_OPTS for uvsd, its --io and extra arguments, and whether peers use the foreign MAC. */
export const VARIANTS: Record<string, { env: string; foreign: boolean; about: string; io?: 'xdp' | 'packet'; args?: readonly string[] }> = {
  default: { env: '', foreign: false, about: 'as shipped (uvsd --io auto: AF_XDP on these veths)' },
  packet: { env: '', foreign: false, about: 'AF_PACKET, the portable path (uvsd --io packet)', io: 'packet' },
  mac: { env: `mac:eth0=${FOREIGN_MAC.eth0},mac:eth1=${FOREIGN_MAC.eth1}`, foreign: true, about: 'AF_PACKET, frames to a MAC the director kernel does not own', io: 'packet' },
  bypass: { env: 'qdisc-bypass', foreign: false, about: 'AF_PACKET with PACKET_QDISC_BYPASS on transmit', io: 'packet' },
  'mac+bypass': { env: `mac:eth0=${FOREIGN_MAC.eth0},mac:eth1=${FOREIGN_MAC.eth1},qdisc-bypass`, foreign: true, about: 'AF_PACKET, both', io: 'packet' },
  xdp: { env: '', foreign: false, about: 'AF_XDP forced (uvsd --io xdp)', io: 'xdp' },
  'no-coalesce': { env: '', foreign: false, about: 'AF_XDP without receive coalescing (uvsd --rx-coalesce off)', args: ['--rx-coalesce', 'off'] },
};

const LABEL: Record<string, string> = {
  kfwd: 'kernel IPv4 forwarding', knat: 'kernel nftables DNAT + conntrack', kfnat: 'kernel nftables DNAT+SNAT + conntrack',
  haproxy: 'haproxy 2.6 mode tcp', dr: 'uvs DR', tun: 'uvs TUN (IPIP)', nat: 'uvs NAT', fullnat: 'uvs FULLNAT',
};

const FWD_FLAG: Record<string, string> = { dr: '-g', tun: '-i', nat: '-m', fullnat: '-b' };

export async function runSuite(o: SuiteOptions, registry: Registry): Promise<RunResult> {
  const started = Date.now();
  o.log('building topology …');
  const t = await buildTopo(registry);
  const tool = buildTool(t.dir);
  const nginx = await startNginx(t);
  const probes = await startProbes(t);
  const result: RunResult = {
    version: 1,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model.trim() ?? 'cpu', cores: cpus().length, kernel: release(), node: process.version, host: hostname() },
    options: {
      quick: o.quick, flows: o.flows, seconds: o.seconds, reps: o.reps, latencyRate: o.latencyRate, variants: o.variants,
      ...(o.search ? { search: { lossTolerance: o.lossTolerance, maxTrials: o.searchTrials, trialSeconds: o.trialSeconds } } : {}),
    },
    cases: [],
  };
  const plan: { id: string; kind: CaseKind; variant: string }[] = [];
  if (o.baselines) {
    plan.push({ id: 'kfwd', kind: 'kernel', variant: '' }, { id: 'knat', kind: 'kernel', variant: '' }, { id: 'kfnat', kind: 'kernel', variant: '' });
    if (o.cps) plan.push({ id: 'haproxy', kind: 'proxy', variant: '' });
  }
  for (const v of o.variants) for (const m of o.modes) plan.push({ id: m, kind: 'uvs', variant: v });
  for (const c of plan) {
    o.log(`${LABEL[c.id]}${c.variant ? ` [${c.variant}]` : ''} …`);
    const res: CaseResult = { id: c.id, label: LABEL[c.id]!, kind: c.kind, variant: c.variant };
    let undo: (() => Promise<void>) | undefined;
    try {
      const setup = await setupCase(t, c.id, c.variant, o);
      undo = setup.undo;
      const dstMac = c.kind === 'uvs' && VARIANTS[c.variant]!.foreign ? FOREIGN_MAC.eth0 : t.mac.d0;
      if (c.id !== 'haproxy') {
        const m: Meter = { t, tool, dstMac, pid: setup.pid, probes, o };
        res.pps = await measurePps(m, 0, o.reps, o.quick ? 0.7 : 1.0, o.seconds);
        o.log(`  overload: ${kp(res.pps.pps)} pps (offered ${kp(res.pps.offered)}), director ${pc(res.pps.dirCpu)} of CPU1 (core ${pc(res.pps.cpuBusy)} busy) → ${kp(res.pps.perCpuSec)} pkt per CPU-s`);
        if (o.search) {
          // A failed search leaves the overload figures (and the rest of the case) standing.
          res.noLoss = await searchCase(m, res.pps).catch((e: unknown) => {
            res.error = `rate search: ${e instanceof Error ? e.message.split('\n')[0]! : String(e)}`;
            o.log(`  ${res.error}`);
            return undefined;
          });
          if (res.noLoss) {
            const n = res.noLoss;
            o.log(`  no-loss rate ${n.limit === 'loss' ? '' : '≥ '}${kp(n.offered)} pps (${n.limit}; forwarded ${kp(n.pps)}, loss ${(100 * (n.loss ?? 0)).toFixed(2)} %), ` +
              `director ${pc(n.dirCpu)} of CPU1 (core ${pc(n.cpuBusy)} busy) → ${kp(n.perCpuSec)} pkt per CPU-s`);
          }
        }
        if (o.latency) {
          const g = { ns: t.ns.c, ifname: 'eth0', dstMac, srcIp: ADDR.client, dstIp: ADDR.vip, dport: ADDR.udpPort, flows: o.flows, seconds: o.latencySeconds, cpu: 0 };
          res.latency = await runLatency(tool, t.ns.s, g, o.latencyRate);
          o.log(`  latency p50 ${res.latency.p50} µs, p99 ${res.latency.p99} µs, p99.9 ${res.latency.p999} µs (n=${res.latency.n})`);
        }
      }
      if (o.cps && c.id !== 'tun') {
        await flushConntrack(t);
        const a = readCpu(1);
        const pa = readPid(setup.pid);
        const t0 = process.hrtime.bigint();
        const w = await runWrk(t.ns.c, `http://${ADDR.vip}:${ADDR.tcpPort}/`, o.cpsSeconds, 32);
        const d = cpuDelta(a, readCpu(1), pa, readPid(setup.pid), Number(process.hrtime.bigint() - t0) / 1e9);
        res.cps = { cps: w.cps, errors: w.errors, cpuBusy: d.busy, dirCpu: directorShare(d), perCpuSec: directorShare(d) > 0 ? w.cps / directorShare(d) : NaN };
        o.log(`  ${w.cps.toFixed(0)} new conn/s${w.errors ? ` (${w.errors} errors)` : ''}, director core ${(d.busy * 100).toFixed(0)} % busy`);
      }
    } catch (e) {
      res.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      o.log(`  error: ${res.error}`);
    } finally {
      if (undo) await undo().catch((e: unknown) => o.log(`  cleanup: ${String(e)}`));
    }
    result.cases.push(res);
  }
  await probes.stop();
  await nginx.stop(2000);
  o.log(`suite done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return result;
}

/**
 * The director's share of CPU1: everything busy on that core except other tasks' user + system
 * time, i.e. softirq + irq time there (the kernel's receive and forwarding work, steered there by
 * RPS) plus the director process's own user + system time (uvsd, haproxy). Foreign processes that
 * happen to run on CPU1 are not counted. (Without CONFIG_IRQ_TIME_ACCOUNTING a softirq that
 * interrupts uvsd is also in uvsd's own runtime; taking the complement never counts it twice.)
 */
function directorShare(d: ReturnType<typeof cpuDelta>): number {
  return Math.min(1, Math.max(0, d.busy - d.foreign));
}

async function flushConntrack(t: BenchTopo): Promise<void> {
  await t.tryExec('d', ['conntrack', '-F'], 5000);
}

const pc = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : '—');

/** Holder processes (sleep) inside the client, director and server namespaces: their /proc/<pid>/net/dev are those namespaces' counters. */
interface Probes {
  c: number;
  d: number;
  s: number;
  stop(): Promise<void>;
}

async function startProbes(t: BenchTopo): Promise<Probes> {
  const hosts = ['c', 'd', 's'] as const;
  const ps = hosts.map((h) => t.registry.spawn(`probe-${h}`, inNs(t.ns[h], ['sleep', '86400']), join(t.dir, `probe-${h}.log`)));
  // `ip netns exec` enters the namespace, then execs sleep: once the command is sleep, the pid is inside.
  const comm = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const ok = await waitFor(() => ps.every((p) => comm(p.pid) === 'sleep'), 5000, 10);
  if (!ok) throw new Error('namespace probe processes did not start');
  const [c, d, s] = ps.map((p) => p.pid) as [number, number, number];
  return { c, d, s, stop: async () => { await Promise.all(ps.map((p) => p.stop(1000))); } };
}

/** Everything one measurement of a case needs. */
interface Meter {
  t: BenchTopo;
  tool: string;
  dstMac: string;
  pid: number | readonly number[] | undefined;
  probes: Probes;
  o: SuiteOptions;
}

interface Snap {
  at: bigint;
  client: IfCounters;
  dirOut: IfCounters;
  server: IfCounters;
  cpu: CpuTimes;
  proc: { utime: number; stime: number };
}

/**
 * All counters at one instant: synchronous /proc reads, microseconds apart, unless this process
 * is preempted in the middle (both cores are busy during a measurement); then the reads would be
 * milliseconds apart and offered and forwarded counted over different windows, so a slow
 * snapshot is taken again (up to 5 times).
 */
function snap(m: Meter): Snap {
  let s: Snap | undefined;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    const client = readNetDev(m.probes.c, 'eth0');
    const dirOut = readNetDev(m.probes.d, 'eth1');
    const server = readNetDev(m.probes.s, 'eth0');
    const cpu = readCpu(1);
    const proc = readPid(m.pid);
    const t1 = process.hrtime.bigint();
    s = { at: (t0 + t1) / 2n, client, dirOut, server, cpu, proc };
    if (t1 - t0 < 500_000n) break;
  }
  return s!;
}

interface Sample {
  offered: number;
  forwarded: number;
  sinkDrops: number;
  cpu: ReturnType<typeof cpuDelta>;
  gen: GenReport;
}

/** Runs the generator at `rate` (0 = flat out) and counts one window of `seconds` after `warm`. */
async function sample(m: Meter, rate: number, warm: number, seconds: number): Promise<Sample> {
  const { t, o } = m;
  const gen = runGen({ tool: m.tool, ns: t.ns.c, ifname: 'eth0', dstMac: m.dstMac, srcIp: ADDR.client, dstIp: ADDR.vip, dport: ADDR.udpPort, flows: o.flows, rate, seconds: warm + seconds + 0.2, cpu: 0 });
  gen.catch(() => undefined); // awaited below; this only keeps an early failure from being an unhandled rejection
  await sleep(warm * 1000);
  const a = snap(m);
  await sleep(seconds * 1000);
  const b = snap(m);
  const g = await gen;
  const dt = Number(b.at - a.at) / 1e9;
  const offered = (b.client.txPackets + b.client.txDropped - a.client.txPackets - a.client.txDropped) / dt;
  return {
    offered,
    forwarded: (b.server.rxPackets - a.server.rxPackets) / dt,
    sinkDrops: (b.dirOut.txDropped - a.dirOut.txDropped) / dt,
    cpu: cpuDelta(a.cpu, b.cpu, a.proc, b.proc, dt),
    gen: g,
  };
}

/** The pps figure of `reps` windows at `rate` (medians). */
async function measurePps(m: Meter, rate: number, reps: number, warm: number, seconds: number): Promise<PpsFigure> {
  const xs: Sample[] = [];
  for (let i = 0; i < reps; i++) {
    xs.push(await sample(m, rate, warm, seconds));
    await sleep(200);
  }
  const per = (x: Sample) => (directorShare(x.cpu) > 0 ? x.forwarded / directorShare(x.cpu) : NaN);
  return {
    pps: median(xs.map((x) => x.forwarded)),
    runs: xs.map((x) => Math.round(x.forwarded)),
    offered: median(xs.map((x) => x.offered)),
    loss: median(xs.map((x) => (x.offered > 0 ? Math.max(0, 1 - x.forwarded / x.offered) : NaN))),
    sinkDrops: median(xs.map((x) => x.sinkDrops)),
    cpuBusy: median(xs.map((x) => x.cpu.busy)),
    softirq: median(xs.map((x) => x.cpu.softirq)),
    procUser: median(xs.map((x) => x.cpu.procUser)),
    procSys: median(xs.map((x) => x.cpu.procSys)),
    dirCpu: median(xs.map((x) => directorShare(x.cpu))),
    perCpuSec: median(xs.map(per)),
  };
}

/**
 * The no-loss rate of a case: the search from the overload point (start at what the path forwarded
 * there, never above what the generator offered flat out), then the normal reps at the rate found.
 * When the overload point itself lost no more than the tolerance it is the answer (no search).
 */
async function searchCase(m: Meter, overload: PpsFigure): Promise<NoLossFigure | undefined> {
  const { o } = m;
  if (!(overload.offered > 0)) return undefined;
  // Nothing lost even flat out: the generator, not the path, is the limit, and the overload point
  // (the highest rate it can offer) is the no-loss point; a paced search could only go lower.
  if (overload.loss !== undefined && overload.loss <= o.lossTolerance) {
    o.log(`    no search: the overload point lost only ${(overload.loss * 100).toFixed(2)} %`);
    return { ...overload, rate: 0, limit: 'generator', trials: [] };
  }
  const s = await searchNoLossRate(async (rate) => {
    const x = await sample(m, rate, o.trialWarm, o.trialSeconds);
    const loss = x.offered > 0 ? 1 - x.forwarded / x.offered : 1;
    o.log(`    trial ${kp(rate)}: offered ${kp(x.offered)}, forwarded ${kp(x.forwarded)} (${(loss * 100).toFixed(2)} % loss` +
      `${x.sinkDrops > 0 ? `, ${kp(x.sinkDrops)}/s dropped at the server` : ''}), core ${pc(x.cpu.busy)} busy, director ${pc(directorShare(x.cpu))}` +
      `${x.gen.skipped > 0 ? `; generator behind schedule, skipped ${x.gen.skipped}` : ''}`);
    await sleep(150);
    return { offered: x.offered, forwarded: x.forwarded };
  }, {
    start: overload.pps > 0 ? overload.pps : overload.offered / 4,
    max: overload.offered,
    maxTrials: o.searchTrials,
    lossTolerance: o.lossTolerance,
    resolution: o.searchResolution,
  });
  if (s.limit === 'none' || s.rate <= 0) {
    o.log(`  search: no rate with ≤ ${(o.lossTolerance * 100).toFixed(1)} % loss found`);
    return undefined;
  }
  // The normal repetitions at the rate found (confirmNoLossRate: back off when they lose more than
  // the tolerance; no figure when no rate is confirmed — the report then falls back to overload).
  const trials: SearchTrial[] = [...s.trials];
  const c = await confirmNoLossRate((rate) => measurePps(m, rate, o.reps, o.quick ? 0.5 : 0.8, o.seconds), s.rate, {
    lossTolerance: o.lossTolerance,
    log: (msg) => o.log(`    ${msg}`),
  });
  trials.push(...c.trials);
  if (c.figure === undefined) {
    o.log(`  no rate confirmed: the repetitions kept losing more than ${(o.lossTolerance * 100).toFixed(1)} %`);
    return undefined;
  }
  const { figure: f, rate } = c;
  const backedOff = rate !== s.rate;
  const round = (x: SearchTrial): SearchTrial => ({ ...x, offered: Math.round(x.offered), forwarded: Math.round(x.forwarded), loss: Math.round(x.loss * 1e5) / 1e5 });
  return { ...f, rate, limit: backedOff ? 'loss' : s.limit, trials: trials.map(round) };
}

/**
 * With XDP attached, a veth runs its receive side (the XDP program, the copy into the UMEM, the
 * wakeup of uvsd) in a NAPI context scheduled on the SENDER's CPU — the generator's CPU0 here, where
 * the director's per-CPU-second figure would not see it (AF_PACKET and the kernel baselines do that
 * work on CPU1 through RPS). Threaded NAPI pinned to CPU1 puts it back on the director core.
 */
async function pinDirectorNapi(t: BenchTopo): Promise<{ pid: number; name: string }[]> {
  for (const ifn of ['eth0', 'eth1']) await t.tryExec('d', ['sh', '-c', `echo 1 > /sys/class/net/${ifn}/threaded`]);
  const ps = await run(['ps', '-e', '-o', 'pid=,comm='], { timeoutMs: 10_000 });
  const pinned: { pid: number; name: string }[] = [];
  for (const line of ps.stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(napi\/eth[01]-\d+)\s*$/.exec(line);
    if (!m) continue;
    await run(['taskset', '-p', '2', m[1]!], { timeoutMs: 10_000 });
    // Real-time like the softirq it stands in for: it preempts uvsd when frames arrive instead of
    // waiting for a CFS time slice (which showed as millisecond latency tails).
    await run(['chrt', '-f', '-p', '1', m[1]!], { timeoutMs: 10_000 });
    pinned.push({ pid: Number(m[1]), name: m[2]! });
  }
  return pinned;
}

async function startNginx(t: BenchTopo): Promise<SpawnedProcess> {
  const conf = join(t.dir, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${join(t.dir, 'nginx.pid')};
error_log ${join(t.dir, 'nginx-error.log')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${t.dir}; proxy_temp_path ${t.dir}; fastcgi_temp_path ${t.dir}; uwsgi_temp_path ${t.dir}; scgi_temp_path ${t.dir};
  server { listen 80 backlog=4096 reuseport; location / { return 200 "ok\\n"; } }
}
`);
  const p = t.registry.spawn('nginx', inNs(t.ns.s, ['taskset', '-c', '0', 'nginx', '-c', conf]), join(t.dir, 'nginx.log'));
  const ok = await waitFor(async () => (await t.tryExec('s', ['sh', '-c', `ss -ltn | grep -q ':80 '`], 3000)).code === 0 || p.hasExited(), 10_000, 100);
  if (!ok || p.hasExited()) throw new Error(`nginx did not start: ${p.log().slice(-300)}`);
  return p;
}

interface CaseSetup {
  pid: number | readonly number[] | undefined;
  undo: () => Promise<void>;
}

async function setupCase(t: BenchTopo, id: string, variant: string, o: SuiteOptions): Promise<CaseSetup> {
  const d = (argv: string[]) => t.exec('d', argv);
  const sysctlFwd = (on: boolean) => d(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${on ? 1 : 0}`]);
  await flushConntrack(t);
  if (id === 'kfwd') {
    await sysctlFwd(true);
    await d(['ip', 'route', 'replace', `${ADDR.vip}/32`, 'via', ADDR.server, 'dev', 'eth1']);
    return { pid: undefined, undo: async () => { await t.tryExec('d', ['ip', 'route', 'del', `${ADDR.vip}/32`]); } };
  }
  if (id === 'knat' || id === 'kfnat') {
    await sysctlFwd(true);
    const snat = id === 'kfnat' ? `  chain post { type nat hook postrouting priority 100; policy accept; ct status dnat snat to ${ADDR.dirServer}; }\n` : '';
    await run(inNs(t.ns.d, ['nft', '-f', '-']), {
      input: `table ip uvsbench {\n  chain pre { type nat hook prerouting priority -100; policy accept; ip daddr ${ADDR.vip} dnat to ${ADDR.server}; }\n${snat}}\n`,
    });
    return { pid: undefined, undo: async () => { await t.tryExec('d', ['nft', 'delete', 'table', 'ip', 'uvsbench']); await flushConntrack(t); } };
  }
  if (id === 'haproxy') {
    await d(['ip', 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
    const cfg = join(t.dir, 'haproxy.cfg');
      writeFileSync(cfg, `global\n  nbthread 1\n  maxconn 8000\n  log stderr format short local0 err\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n` +
      `frontend f\n  bind ${ADDR.vip}:${ADDR.tcpPort}\n  default_backend b\nbackend b\n  server s1 ${ADDR.server}:${ADDR.tcpPort}\n`);
    const p = t.registry.spawn('haproxy', inNs(t.ns.d, ['taskset', '-c', '1', 'haproxy', '-db', '-f', cfg]), join(t.dir, 'haproxy.log'));
    await waitFor(async () => (await t.tryExec('d', ['sh', '-c', `ss -ltn | grep -q '${ADDR.vip}:80 '`], 3000)).code === 0 || p.hasExited(), 10_000, 100);
    if (p.hasExited()) throw new Error(`haproxy did not start: ${p.log().slice(-300)}`);
    return { pid: p.pid, undo: async () => { await p.stop(2000); await t.tryExec('d', ['ip', 'addr', 'del', `${ADDR.vip}/32`, 'dev', 'lo']); } };
  }
  // uvs modes.
  const v = VARIANTS[variant];
  if (!v) throw new Error(`unknown variant ${variant} (${Object.keys(VARIANTS).join(', ')})`);
  const routed = id === 'dr' || id === 'tun';
  await sysctlFwd(routed); // DR/TUN replies go back through the director's kernel
  if (v.foreign) {
    await setNeighbours(t, { clientGw: FOREIGN_MAC.eth0, serverGw: routed ? t.mac.d1 : FOREIGN_MAC.eth1, lip: FOREIGN_MAC.eth1 });
  }
  const sock = join(t.dir, `uvsd-${id}-${variant}.sock`);
  const node = process.execPath;
  const nodeArgs = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `uvsd-${id}-${variant}.cpuprofile`] : [];
  const env = { ...process.env, UVS_PACKET_OPTS: v.env };
  const p = t.registry.spawn(`uvsd-${id}-${variant}`, inNs(t.ns.d, ['taskset', '-c', '1', node, ...nodeArgs, join(REPO_ROOT, 'bin', 'uvsd.js'),
    '--iface', 'eth0', '--iface', 'eth1', ...(v.io ? ['--io', v.io] : []), ...(v.args ?? []), '--sock', sock, '--log-level', 'info']), join(t.dir, `uvsd-${id}-${variant}.log`), { env });
  const ok = await waitFor(() => p.hasExited() || p.log().includes('uvsd ready'), 20_000, 50);
  if (!ok || p.hasExited()) throw new Error(`uvsd did not start: ${p.log().slice(-400)}`);
  const napiPids: number[] = [];
  if (p.log().includes('"io":"xdp"')) {
    const pinned = await pinDirectorNapi(t);
    for (const x of pinned) napiPids.push(x.pid);
    o.log(`  AF_XDP: the director veths' NAPI (XDP program + copy into the UMEM) runs threaded on CPU1, counted as director: ${pinned.map((x) => x.name).join(', ') || 'NOT FOUND'}`);
  }
  const adm = async (args: string[]) => {
    await run([node, join(REPO_ROOT, 'bin', 'uvsadm.js'), '--sock', sock, ...args], { timeoutMs: 10_000 });
  };
  for (const [proto, port] of [['-u', ADDR.udpPort], ['-t', ADDR.tcpPort]] as const) {
    const svc = `${ADDR.vip}:${port}`;
    await adm(['-A', proto, svc, '-s', 'rr']);
    await adm(['-a', proto, svc, '-r', `${ADDR.server}:${port}`, FWD_FLAG[id]!]);
    if (id === 'fullnat') await adm(['-P', proto, svc, '-z', ADDR.lip]);
  }
  await sleep(300);
  return {
    pid: p.pid === undefined ? undefined : [p.pid, ...napiPids],
    undo: async () => {
      await p.stop(5000);
      const stopped = p.log().split('\n').find((l) => l.includes('uvsd stopped'));
      const m = stopped ? /"eventLoopDelayMs":(\{[^}]*\})/.exec(stopped) : null;
      if (m) o.log(`  uvsd event-loop delay over the case (ms): ${m[1]}`);
      if (v.foreign) await setNeighbours(t, { clientGw: t.mac.d0, serverGw: t.mac.d1, lip: t.mac.d1 });
    },
  };
}

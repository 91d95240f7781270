/**
 * Measurement primitives of `uvs bench modes`: CPU accounting from /proc, the C traffic tool
 * (bench/tools/uvsbench.c, compiled with gcc into the run's temp dir), wrk for connection setup.
 * Every external command has a timeout; nothing here leaves a process behind.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs, REPO_ROOT, run, tryRun } from '../../lab/netns.js';

/** One CPU's /proc/stat counters (USER_HZ ticks). */
export interface CpuTimes {
  user: number;
  system: number;
  softirq: number;
  irq: number;
  busy: number;
  total: number;
}

export function parseProcStat(text: string, cpu: number): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`/proc/stat has no cpu${cpu}`);
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { user: user + nice, system, softirq, irq, busy: total - idle - iowait - steal, total };
}

export function readCpu(cpu: number): CpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'), cpu);
}

/** utime/stime (ticks) of a process from /proc/<pid>/stat; zeros when it is gone. */
export function parsePidStat(text: string): { utime: number; stime: number } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { utime: Number(rest[11] ?? 0), stime: Number(rest[12] ?? 0) };
}

export function readPid(pid: number | undefined): { utime: number; stime: number } {
  if (!pid) return { utime: 0, stime: 0 };
  try {
    return parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return { utime: 0, stime: 0 };
  }
}

export interface CpuDelta {
  /** Busy share of the CPU (0..1) over the window, all kinds together. */
  busy: number;
  softirq: number;
  system: number;
  user: number;
  /** Share of one CPU the process used (user / system). */
  procUser: number;
  procSys: number;
}

export function cpuDelta(a: CpuTimes, b: CpuTimes, pa: { utime: number; stime: number }, pb: { utime: number; stime: number }): CpuDelta {
  const total = Math.max(1, b.total - a.total);
  return {
    busy: (b.busy - a.busy) / total,
    softirq: (b.softirq + b.irq - a.softirq - a.irq) / total,
    system: (b.system - a.system) / total,
    user: (b.user - a.user) / total,
    procUser: (pb.utime - pa.utime) / total,
    procSys: (pb.stime - pa.stime) / total,
  };
}

/** Compiles the traffic tool into dir; returns its path. */
export function buildTool(dir: string): string {
  const out = join(dir, 'uvsbench');
  execFileSync('gcc', ['-O2', '-Wall', '-o', out, join(REPO_ROOT, 'bench', 'tools', 'uvsbench.c')], { stdio: 'pipe', timeout: 60_000 });
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface GenArgs {
  tool: string;
  ns: string;
  ifname: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  dport: number;
  flows: number;
  /** 0 = as fast as possible. */
  rate: number;
  seconds: number;
  cpu: number;
}

export async function runGen(g: GenArgs): Promise<{ sent: number; seconds: number }> {
  const argv = inNs(g.ns, ['taskset', '-c', String(g.cpu), g.tool, 'gen', g.ifname, g.dstMac, g.srcIp, g.dstIp, String(g.dport),
    String(g.flows), String(g.rate), String(g.seconds)]);
  const r = await run(argv, { timeoutMs: (g.seconds + 15) * 1000 });
  return JSON.parse(r.stdout.trim()) as { sent: number; seconds: number };
}

export interface Latency {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  min: number;
  max: number;
}

/** Starts the sink, waits until it listens, runs the generator at `rate`, returns percentiles (µs). */
export async function runLatency(tool: string, sinkNs: string, g: Omit<GenArgs, 'tool' | 'rate'>, rate: number): Promise<Latency> {
  const sink = tryRun(inNs(sinkNs, ['taskset', '-c', '0', tool, 'sink', 'eth0', String(g.seconds + 1.5)]), { timeoutMs: (g.seconds + 15) * 1000 });
  await sleep(400);
  await runGen({ ...g, tool, rate });
  const r = await sink;
  if (r.code !== 0) throw new Error(`latency sink failed: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout.trim()) as Partial<Latency>;
  return { n: j.n ?? 0, p50: j.p50 ?? NaN, p99: j.p99 ?? NaN, p999: j.p999 ?? NaN, min: j.min ?? NaN, max: j.max ?? NaN };
}

/** wrk with `Connection: close`: new connections per second (one request each) and error count. */
export async function runWrk(ns: string, url: string, seconds: number, conns: number): Promise<{ cps: number; errors: number }> {
  const r = await tryRun(inNs(ns, ['taskset', '-c', '0', 'wrk', '-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '2s', '-H', 'Connection: close', url]), {
    timeoutMs: (seconds + 20) * 1000,
  });
  if (r.code !== 0) throw new Error(`wrk failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return parseWrk(r.stdout);
}

export function parseWrk(out: string): { cps: number; errors: number } {
  const m = /Requests\/sec:\s*([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk printed no rate: ${out.trim().slice(-200)}`);
  let errors = 0;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (se) errors += Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  return { cps: Number(m[1]), errors };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

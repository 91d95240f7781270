/**
 * Measurement primitives of `uvs bench modes`: CPU and interface accounting from /proc, the C
 * traffic tool (bench/tools/uvsbench.c, compiled with gcc into the run's temp dir), wrk for
 * connection setup, and the no-loss rate search (a pure function over an injected trial).
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
  /** Idle and iowait: with NO_HZ these come from the kernel's precise idle clock, not from tick samples. */
  idle: number;
  iowait: number;
}

/** The unit of /proc/stat and /proc/<pid>/stat times (USER_HZ; 100 on every Linux architecture uvs runs on). */
export const USER_HZ = 100;

export function parseProcStat(text: string, cpu: number): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`/proc/stat has no cpu${cpu}`);
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { user: user + nice, system, softirq, irq, busy: total - idle - iowait - steal, total, idle, iowait };
}

export function readCpu(cpu: number): CpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'), cpu);
}

/** utime/stime (ticks) of a process from /proc/<pid>/stat; zeros when it is gone. */
export function parsePidStat(text: string): { utime: number; stime: number } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { utime: Number(rest[11] ?? 0), stime: Number(rest[12] ?? 0) };
}

/** utime/stime of a process, or the sum over several (the director process and its NAPI threads). */
export function readPid(pid: number | readonly number[] | undefined): { utime: number; stime: number } {
  if (pid === undefined) return { utime: 0, stime: 0 };
  const pids = typeof pid === 'number' ? [pid] : pid;
  const sum = { utime: 0, stime: 0 };
  for (const x of pids) {
    if (!x) continue;
    try {
      const t = parsePidStat(readFileSync(`/proc/${x}/stat`, 'utf8'));
      sum.utime += t.utime;
      sum.stime += t.stime;
    } catch {
      /* gone: counts zero */
    }
  }
  return sum;
}

export interface CpuDelta {
  /** Busy share of the CPU (0..1) over the window, all kinds together. */
  busy: number;
  /** softirq + irq share (with a wall time: everything busy that is not task user / system time). */
  softirq: number;
  system: number;
  user: number;
  /** Share of one CPU the process used (user / system). */
  procUser: number;
  procSys: number;
  /** User + system time of other tasks on the CPU (not the process). */
  foreign: number;
}

/**
 * CPU shares between two /proc/stat (and /proc/<pid>/stat) readings.
 *
 * Without `wallSeconds` every share is relative to the ticks in the window. That is only right for
 * a CPU that never idles: this kernel accounts by ticks (no IRQ_TIME_ACCOUNTING) and, with NO_HZ,
 * the tick is off while the CPU idles, so softirq work run straight out of idle (a partly loaded
 * director core woken per burst of packets) is never sampled. With `wallSeconds` (the window's real
 * length) the busy share is 1 − idle ÷ wall, from the kernel's precise idle clock, and the kernel
 * share (`softirq`) is what is busy beyond the tasks' user + system ticks.
 */
export function cpuDelta(a: CpuTimes, b: CpuTimes, pa: { utime: number; stime: number }, pb: { utime: number; stime: number }, wallSeconds?: number): CpuDelta {
  const procU = pb.utime - pa.utime;
  const procS = pb.stime - pa.stime;
  const tasks = b.user + b.system - a.user - a.system;
  if (wallSeconds === undefined || !(wallSeconds > 0)) {
    const total = Math.max(1, b.total - a.total);
    return {
      busy: (b.busy - a.busy) / total,
      softirq: (b.softirq + b.irq - a.softirq - a.irq) / total,
      system: (b.system - a.system) / total,
      user: (b.user - a.user) / total,
      procUser: procU / total,
      procSys: procS / total,
      foreign: Math.max(0, tasks - procU - procS) / total,
    };
  }
  const hz = wallSeconds * USER_HZ;
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  const busy = clamp(1 - (b.idle + b.iowait - a.idle - a.iowait) / hz);
  return {
    busy,
    softirq: clamp(busy - tasks / hz),
    system: (b.system - a.system) / hz,
    user: (b.user - a.user) / hz,
    procUser: procU / hz,
    procSys: procS / hz,
    foreign: clamp((tasks - procU - procS) / hz),
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
  /** 0 = as fast as possible; otherwise paced to this many frames/s. */
  rate: number;
  seconds: number;
  cpu: number;
}

/** What the generator reports: frames the kernel took, run time, frames refused (ENOBUFS), frames skipped (paced, behind schedule). */
export interface GenReport {
  sent: number;
  seconds: number;
  dropped: number;
  skipped: number;
}

export async function runGen(g: GenArgs): Promise<GenReport> {
  const argv = inNs(g.ns, ['taskset', '-c', String(g.cpu), g.tool, 'gen', g.ifname, g.dstMac, g.srcIp, g.dstIp, String(g.dport),
    String(g.flows), String(Math.round(g.rate)), String(g.seconds)]);
  const r = await run(argv, { timeoutMs: (g.seconds + 15) * 1000 });
  const j = JSON.parse(r.stdout.trim()) as Partial<GenReport>;
  return { sent: j.sent ?? 0, seconds: j.seconds ?? g.seconds, dropped: j.dropped ?? 0, skipped: j.skipped ?? 0 };
}

/** Packet counters of one interface (from /proc/<pid>/net/dev of a process inside its namespace). */
export interface IfCounters {
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

/** Parses /proc/net/dev for `ifname`: receive bytes packets errs drop … | transmit bytes packets errs drop …. */
export function parseNetDev(text: string, ifname: string): IfCounters {
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0 || line.slice(0, i).trim() !== ifname) continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    return { rxPackets: f[1] ?? 0, rxDropped: f[3] ?? 0, txPackets: f[9] ?? 0, txDropped: f[11] ?? 0 };
  }
  throw new Error(`no interface ${ifname} in net/dev`);
}

/**
 * Counters of `ifname` in the network namespace of `pid`, read from /proc without spawning
 * anything, so counters of several namespaces can be taken within microseconds of each other.
 */
export function readNetDev(pid: number, ifname: string): IfCounters {
  return parseNetDev(readFileSync(`/proc/${pid}/net/dev`, 'utf8'), ifname);
}

/** One trial of the rate search: packets/s offered to the director and forwarded by it. */
export interface TrialOutcome {
  offered: number;
  forwarded: number;
}

export interface SearchTrial {
  /** Rate asked of the generator. */
  rate: number;
  offered: number;
  forwarded: number;
  /** 1 − forwarded ÷ offered (clamped at 0). */
  loss: number;
  pass: boolean;
  /** A confirmation at the found rate with the normal repetitions (not part of the search itself). */
  confirm?: boolean;
}

export interface SearchOptions {
  /** First rate to try (e.g. what the path forwarded at overload). */
  start: number;
  /** Highest rate ever asked (e.g. what the generator offered flat out). */
  max: number;
  /** Below this no trial is run. Default 1000 pps. */
  min?: number;
  /** Trial budget. */
  maxTrials: number;
  /** Largest loss that passes (0.01 = 1 %). */
  lossTolerance: number;
  /** Stop when the failing rate is within this factor of the passing one (0.03 = 3 %). */
  resolution: number;
  /** An offered rate this far below the asked one means the generator is at its limit. Default 0.03. */
  genShortfall?: number;
}

export interface SearchResult {
  /** Highest asked rate that passed (what was offered, when the generator fell short of the ask); 0 when none did. */
  rate: number;
  /** What was offered (pps) in that passing trial. */
  offered: number;
  /**
   * Why the search stopped there: 'loss' (a higher rate lost more than the tolerance),
   * 'generator' (the generator could not offer more, or the cap `max` was reached without loss),
   * 'budget' (every trial passed but the budget ran out below the cap), 'none' (nothing passed).
   */
  limit: 'loss' | 'generator' | 'budget' | 'none';
  trials: SearchTrial[];
}

/**
 * RFC 2544-style throughput search: the highest offered rate at which forwarded ≥ (1 − tolerance)
 * × offered. Pure apart from the injected `trial`, so it is unit-testable.
 *
 * From `start` (clamped to [min, max]) the rate doubles while trials pass (capped at `max`); once a
 * rate fails, the search bisects geometrically between the highest pass and the lowest failure. A
 * failing trial's forwarded rate is a hint (below the livelock region a path forwards about its
 * capacity when offered more): the next rate is just under it when that falls strictly inside the
 * bracket (in the livelock region a failure forwards less than the capacity, so the hint can
 * undershoot; the bisection then continues above it). It stops when the bracket is within
 * `resolution`, when (before any loss) the generator falls short of the asked rate or the cap is
 * reached, or when the trial budget is spent. At most `maxTrials` trials run.
 */
export async function searchNoLossRate(trial: (rate: number) => Promise<TrialOutcome>, o: SearchOptions): Promise<SearchResult> {
  const min = o.min ?? 1000;
  const shortfall = o.genShortfall ?? 0.03;
  const res = o.resolution;
  const trials: SearchTrial[] = [];
  let lo: { rate: number; offered: number } | undefined;
  let hi: SearchTrial | undefined;
  let atCap = false;
  const max = Math.floor(Math.max(min, o.max));
  let rate = Math.min(max, Math.max(min, o.start));
  while (trials.length < o.maxTrials) {
    rate = Math.round(rate);
    const r = await trial(rate);
    const offered = Number.isFinite(r.offered) ? Math.max(0, r.offered) : 0;
    const forwarded = Number.isFinite(r.forwarded) ? Math.max(0, r.forwarded) : 0;
    const loss = offered > 0 ? Math.max(0, 1 - forwarded / offered) : 1;
    const pass = offered > 0 && loss <= o.lossTolerance;
    const t: SearchTrial = { rate, offered, forwarded, loss, pass };
    trials.push(t);
    const genShort = offered < rate * (1 - shortfall);
    if (pass) {
      // A generator that fell short passed at what it offered: that is the rate to ask for again.
      const ok = genShort ? Math.floor(offered) : rate;
      if (!lo || ok > lo.rate) lo = { rate: ok, offered };
      // Still climbing: a generator that falls short is at its limit, and within its shortfall of
      // the cap is as good as at it (asking again would repeat the trial). Inside a bracket a short
      // generator only makes the trial say less; the bisection goes on.
      if (!hi && (genShort || rate >= max * (1 - shortfall))) {
        atCap = true;
        break;
      }
    } else if (!hi || rate < hi.rate) {
      hi = t;
    }
    // Next rate.
    if (!hi) {
      rate = Math.min(max, rate * 2);
      continue;
    }
    const low = lo?.rate ?? 0;
    if (low > 0 && hi.rate <= low * (1 + res)) break;
    const hint = hi.forwarded * (1 - o.lossTolerance / 2);
    if (low === 0) {
      rate = hint >= min ? Math.min(hint, hi.rate / (1 + res)) : hi.rate / 2;
    } else {
      const inside = hint > low * (1 + res) && hint < hi.rate / (1 + res);
      rate = inside ? hint : Math.sqrt(low * hi.rate);
    }
    if (rate < min) break;
  }
  const limit: SearchResult['limit'] = !lo ? 'none' : hi ? 'loss' : atCap ? 'generator' : 'budget';
  return { rate: lo?.rate ?? 0, offered: lo?.offered ?? 0, limit, trials };
}

/** Packets/s in thousands, as the suite's logs and tables print them ("—" when not a number). */
export const kp = (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(0)}k` : '—');

/**
 * Back-off steps (each at most 15 % down, so down to ≈ 27 % of the searched rate) when the
 * repetitions at a searched rate lose too much. A path near its limit can pass the search's short
 * trials and then lose in the longer repetitions down to well below that rate (one stall of uvsd
 * fills the socket's ring and the kernel's receive work then takes the core: in one run AF_XDP
 * DR lost more than 1 % at the searched 505k and at every back-off down to ≈ 264k), so the steps
 * must reach far.
 */
export const MAX_BACKOFFS = 8;

/** What confirmNoLossRate needs of a measurement (PpsFigure has it). */
export interface Measured {
  pps: number;
  offered: number;
  loss?: number;
}

/**
 * The normal repetitions at the rate a search found (`measure(rate)`). A short trial can pass by
 * luck, so while they lose more than the tolerance, back off (at most MAX_BACKOFFS times, each to
 * just under what was forwarded but at most 15 % down: one loss burst from other load on the
 * machine can make a measurement collapse); when the generator fell short of the rate, measure
 * once more and keep the better passing one. `figure` is undefined when no rate was confirmed:
 * a rate whose repetitions lost more than the tolerance is never reported as a no-loss rate.
 */
export async function confirmNoLossRate<F extends Measured>(measure: (rate: number) => Promise<F>, start: number,
  o: { lossTolerance: number; log?: (msg: string) => void }): Promise<{ figure?: F; rate: number; trials: SearchTrial[] }> {
  const trials: SearchTrial[] = [];
  const lossOf = (f: F) => f.loss ?? 0;
  const confirm = async (rate: number): Promise<F> => {
    const f = await measure(rate);
    trials.push({ rate, offered: f.offered, forwarded: f.pps, loss: lossOf(f), pass: lossOf(f) <= o.lossTolerance, confirm: true });
    return f;
  };
  let rate = start;
  let f = await confirm(rate);
  for (let backoff = 0; ; backoff++) {
    const loss = lossOf(f);
    if (loss <= o.lossTolerance) {
      if (f.offered < rate * 0.97) {
        o.log?.(`confirm at ${kp(rate)}: the generator offered only ${kp(f.offered)}, once more`);
        const g = await confirm(rate);
        if (lossOf(g) <= o.lossTolerance && g.offered > f.offered) f = g;
      }
      return { figure: f, rate, trials };
    }
    if (backoff === MAX_BACKOFFS) return { rate, trials };
    const next = Math.round(Math.max(rate * 0.85, Math.min(rate * 0.95, f.pps * (1 - o.lossTolerance / 2))));
    o.log?.(`confirm at ${kp(rate)} lost ${(loss * 100).toFixed(2)} %: backing off to ${kp(next)}`);
    if (next < 1000) return { rate, trials };
    rate = next;
    f = await confirm(rate);
  }
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

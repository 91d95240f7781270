/**
 * Results of `uvs bench modes`: the JSON shape, the ratios and claims derived from it, the
 * markdown table, the SVG chart and the base-vs-branch comparison. Pure functions (unit-tested).
 */
import { kp, type Latency, type SearchTrial } from './measure.js';

export type CaseKind = 'kernel' | 'uvs' | 'proxy';

export interface PpsFigure {
  /** Median forwarded packets/s counted at the server's link. */
  pps: number;
  runs: number[];
  /** Offered packets/s by the generator (median). */
  offered: number;
  /** 1 − forwarded ÷ offered (median of the runs; absent in old results). */
  loss?: number;
  /** Frames/s the director handed to the server's link that the server side dropped (its backlog on CPU0 full). */
  sinkDrops?: number;
  /** Busy share of the director core (CPU1), user + system + irq + softirq. */
  cpuBusy: number;
  softirq: number;
  /** The director's share of CPU1: softirq + irq there + the director process's user + system. */
  dirCpu: number;
  /** uvsd process user / system shares of a CPU (0 for kernel cases). */
  procUser: number;
  procSys: number;
  /** pps ÷ dirCpu: packets per CPU-second of the director. */
  perCpuSec: number;
}

/** The pps figure at the no-loss rate found by the rate search, plus how it was found. */
export interface NoLossFigure extends PpsFigure {
  /**
   * Rate asked of the (paced) generator; `offered` is what it measured at. 0: unpaced, this is
   * the overload point itself (it lost no more than the tolerance, so there was no search).
   */
  rate: number;
  /**
   * 'loss': a higher rate lost more than the tolerance; 'generator': the generator could not offer
   * more (the path's no-loss rate is at least this); 'budget': the trials ran out before any loss.
   */
  limit: 'loss' | 'generator' | 'budget';
  /** The search trials, in order. */
  trials: SearchTrial[];
}

export interface CpsFigure {
  cps: number;
  errors: number;
  cpuBusy: number;
  dirCpu: number;
  /** New connections per CPU-second of the director. */
  perCpuSec: number;
}

/** Latency percentiles of one case, in µs (the shape measure.ts produces). */
export type LatencyFigure = Latency;

export interface CaseResult {
  /** kfwd, knat, kfnat, haproxy, dr, tun, nat, fullnat. */
  id: string;
  label: string;
  kind: CaseKind;
  /** uvs speed variant (default, mac, …); '' for baselines. */
  variant: string;
  /** Forwarding at overload: the generator flat out (rate 0). */
  pps?: PpsFigure;
  /** Forwarding at the no-loss rate (absent with --no-search and in old results). */
  noLoss?: NoLossFigure;
  cps?: CpsFigure;
  latency?: LatencyFigure;
  error?: string;
}

export interface RunResult {
  version: 1;
  date: string;
  machine: { cpu: string; cores: number; kernel: string; node: string; host: string };
  options: {
    quick: boolean;
    flows: number;
    seconds: number;
    reps: number;
    latencyRate: number;
    variants: string[];
    /** Rate search settings (absent in old results and with --no-search). */
    search?: { lossTolerance: number; maxTrials: number; trialSeconds: number };
  };
  cases: CaseResult[];
}

export interface Ratio {
  name: string;
  variant: string;
  value: number;
  target: number;
  /** true: value ≥ target is good; false: value ≤ target is good (latency). */
  higherIsBetter: boolean;
  met: boolean;
  unit: string;
}

function find(r: RunResult, id: string, variant = ''): CaseResult | undefined {
  return r.cases.find((c) => c.id === id && c.variant === variant);
}

function uvsVariants(r: RunResult): string[] {
  return [...new Set(r.cases.filter((c) => c.kind === 'uvs').map((c) => c.variant))];
}

/**
 * Which pps figure to compare a group of cases on: the no-loss rate when every case of the group
 * has one, else overload (old results, --no-search, or a search that found nothing for one side).
 */
export type Basis = 'noLoss' | 'overload';

export function basisOf(cases: readonly (CaseResult | undefined)[]): Basis {
  return cases.every((c) => c?.noLoss !== undefined) ? 'noLoss' : 'overload';
}

/** Packets per CPU-second of a case on a basis. */
export function perCpuSecAt(c: CaseResult | undefined, b: Basis): number | undefined {
  return b === 'noLoss' ? c?.noLoss?.perCpuSec : c?.pps?.perCpuSec;
}

const basisText = (b: Basis): string => (b === 'noLoss' ? 'pkt per CPU-s at the no-loss rate' : 'pkt per CPU-s at overload');

/** The issue's targets, per uvs variant, from the figures present (pkt per CPU-s at the no-loss rate where both sides have it). */
export function ratios(r: RunResult): Ratio[] {
  const out: Ratio[] = [];
  const add = (name: string, variant: string, value: number | undefined, target: number, higher = true, unit = '×') => {
    if (value === undefined || !Number.isFinite(value)) return;
    out.push({ name, variant, value, target, higherIsBetter: higher, met: higher ? value >= target : value <= target, unit });
  };
  const div = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const pair = (name: string, variant: string, a: CaseResult | undefined, b: CaseResult | undefined, target: number) => {
    const basis = basisOf([a, b]);
    add(`${name} (${basisText(basis)})`, variant, div(perCpuSecAt(a, basis), perCpuSecAt(b, basis)), target);
  };
  const kfwd = find(r, 'kfwd');
  for (const v of uvsVariants(r)) {
    const dr = find(r, 'dr', v);
    const tun = find(r, 'tun', v);
    const nat = find(r, 'nat', v);
    const fnat = find(r, 'fullnat', v);
    pair('DR ÷ kernel forwarding', v, dr, kfwd, 0.7);
    pair('NAT ÷ nftables DNAT+conntrack', v, nat, find(r, 'knat'), 0.9);
    pair('FULLNAT ÷ uvs NAT', v, fnat, nat, 0.9);
    pair('TUN ÷ uvs DR', v, tun, dr, 0.9);
    pair('FULLNAT ÷ nftables DNAT+SNAT', v, fnat, find(r, 'kfnat'), 0.65);
    const hap = find(r, 'haproxy')?.cps?.cps;
    const bestCps = Math.max(...[dr, nat, fnat].map((c) => c?.cps?.cps ?? 0));
    add('new conn/s: best uvs mode ÷ haproxy mode tcp', v, div(bestCps || undefined, hap), 1.5);
    add('new conn/s: uvs NAT ÷ nftables DNAT', v, div(nat?.cps?.cps, find(r, 'knat')?.cps?.cps), 0.8);
    const kl = kfwd?.latency;
    for (const c of [dr, tun, nat, fnat]) {
      if (!c?.latency || !kl) continue;
      add(`added p99 latency, ${c.label} (µs over kernel forwarding)`, v, c.latency.p99 - kl.p99, 150, false, 'µs');
    }
  }
  return out;
}

export interface Claim {
  text: string;
  variant: string;
  holds: boolean;
  detail: string;
}

/** The seeds' claim: DR ≥ TUN ≥ NAT ≥ FULLNAT per CPU-second, FULLNAT about 10 % below NAT. */
export function claims(r: RunResult): Claim[] {
  const out: Claim[] = [];
  for (const v of uvsVariants(r)) {
    const ids = ['dr', 'tun', 'nat', 'fullnat'];
    const cs = ids.map((id) => find(r, id, v));
    const basis = basisOf(cs);
    const xs = cs.map((c) => perCpuSecAt(c, basis));
    if (xs.every((x) => x !== undefined)) {
      const ys = xs as number[];
      // Within 3 % counts as equal (run-to-run noise on this VM is larger than that).
      const holds = ys.every((y, i) => i === 0 || ys[i - 1]! >= y * 0.97);
      out.push({ text: `DR ≥ TUN ≥ NAT ≥ FULLNAT (${basisText(basis)}, 3 % tolerance)`, variant: v, holds, detail: ids.map((id, i) => `${id.toUpperCase()} ${kp(ys[i]!)}`).join(', ') });
    }
    const nc = find(r, 'nat', v);
    const fc = find(r, 'fullnat', v);
    const nb = basisOf([nc, fc]);
    const nat = perCpuSecAt(nc, nb);
    const fn = perCpuSecAt(fc, nb);
    if (nat && fn) {
      const below = (1 - fn / nat) * 100;
      out.push({ text: `FULLNAT ≈ 10 % below NAT (0–20 %, ${basisText(nb)})`, variant: v, holds: below >= 0 && below <= 20, detail: `FULLNAT is ${below.toFixed(1)} % below NAT` });
    }
  }
  return out;
}

const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(1));
const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(0)} %`);

function caseName(c: CaseResult): string {
  return c.variant && c.variant !== 'default' ? `${c.label} [${c.variant}]` : c.label;
}

/** Loss as a short percentage (one decimal). */
const lossPct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)} %`);

/** The no-loss rate as shown: "≥" when the path was not the limit (generator or trial budget). */
function noLossRateText(n: NoLossFigure): string {
  return `${n.limit === 'loss' ? '' : '≥ '}${kp(n.offered)}${n.loss !== undefined ? ` (${lossPct(n.loss)} loss)` : ''}`;
}

/** Whether a run carries no-loss figures (then the table leads with them). */
function searched(r: RunResult): boolean {
  return r.options.search !== undefined || r.cases.some((c) => c.noLoss);
}

const dirCpuText = (p: PpsFigure): string => `${pct(p.dirCpu)} = ${pct(p.softirq)} + ${pct(p.procUser)} / ${pct(p.procSys)}`;

function howToRead(r: RunResult): string {
  const s = r.options.search;
  const common = 'The director\'s CPU share is softirq + irq time on CPU1 (the kernel\'s receive and forwarding work, steered there by RPS) ' +
    'plus the director process\'s own user + system time; other processes on CPU1 are not counted. ' +
    'Latency is one-way, client send to the server\'s kernel receive timestamp, at a fixed rate. ' +
    'TUN is counted at the server\'s link (this kernel cannot decapsulate IPIP) and has no connection test.';
  if (!searched(r)) {
    return 'How to read it: every path is offered as much as the generator can send (overload); "pkt per CPU-s" is the forwarded ' +
      'packets/s divided by the director\'s share of CPU1, and the target rows and claims use it. ' + common;
  }
  const how = s ? ` (an RFC 2544-style search: at most ${s.maxTrials} trials of ${s.trialSeconds} s, the rate doubling until a trial loses, then bisected)` : '';
  const tol = s ? `${+(s.lossTolerance * 100).toFixed(2)} %` : '1 %';
  return `How to read it: the **no-loss rate** is the highest offered rate at which the path forwarded all but at most ${tol} of ` +
    `what the paced generator offered${how}, then measured with the normal repetitions; "≥" means the generator (or the trial budget), ` +
    'not the path, was the limit (a path that loses no more than that even at overload gets the overload point as its no-loss point). CPU1 busy, the director\'s CPU share and **pkt per CPU-s** (forwarded packets/s ÷ the director\'s ' +
    'share of CPU1) are measured at that rate, and the target rows and the claims use pkt per CPU-s at the no-loss rate (they fall back ' +
    'to overload figures, and say so, where a case has no no-loss figure). The overload columns are the same path offered everything ' +
    'the generator can send (at rate 0, unpaced): there a userspace director can suffer receive livelock (the kernel\'s softirq takes ' +
    'CPU1 from uvsd and forwarding falls), so they say little about capacity; they are kept to compare with older runs. On this VM the ' +
    'generator (CPU0) also slows down when CPU1 is busy in userspace, which is why it may not be able to overload uvsd at all. ' + common;
}

export function markdown(r: RunResult): string {
  const m = r.machine;
  const lines: string[] = [];
  const withSearch = searched(r);
  lines.push(`# uvs bench modes — ${r.date}`, '');
  lines.push(`Machine: ${m.cpu} × ${m.cores}, kernel ${m.kernel}, node ${m.node} (host ${m.host}). ` +
    `Director on CPU1 (uvsd/haproxy pinned, its veths' receive work steered there with RPS); generator, sink, wrk and nginx on CPU0. ` +
    `${r.options.flows} UDP flows of 64-byte frames, ${r.options.seconds} s × ${r.options.reps} per point (median)${r.options.quick ? ', --quick' : ''}.`, '');
  if (withSearch) {
    lines.push('| path through the director | **no-loss rate** (pps) | CPU1 busy (all) | director CPU: softirq + process user / sys | **pkt per CPU-s** at no-loss rate | ' +
      'overload: forwarded / offered / pkt per CPU-s | new conn/s (wrk, close) | conn per CPU-s | one-way latency p50 / p99 / p99.9 (µs) |');
  } else {
    lines.push('| path through the director | forwarded pps | offered pps | CPU1 busy (all) | director CPU: softirq + process user / sys | **pkt per CPU-s** | new conn/s (wrk, close) | conn per CPU-s | one-way latency p50 / p99 / p99.9 (µs) |');
  }
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of r.cases) {
    if (c.error && !c.pps && !c.noLoss) {
      lines.push(`| ${caseName(c)} | error: ${c.error.replace(/\|/g, '/').slice(0, 120)} | | | | | | | |`);
      continue;
    }
    const p = c.pps;
    const n = c.noLoss;
    const k = c.cps;
    const l = c.latency;
    const tail = `${k ? `${k.cps.toFixed(0)}${k.errors ? ` (${k.errors} err)` : ''}` : '—'} | ${k ? kp(k.perCpuSec) : '—'} | ` +
      `${l && l.n > 0 ? `${f1(l.p50)} / ${f1(l.p99)} / ${f1(l.p999)}` : '—'} |`;
    if (withSearch) {
      lines.push(`| ${caseName(c)} | ${n ? noLossRateText(n) : '—'} | ${n ? pct(n.cpuBusy) : '—'} | ${n ? dirCpuText(n) : '—'} | ${n ? `**${kp(n.perCpuSec)}**` : '—'} | ` +
        `${p ? `${kp(p.pps)} / ${kp(p.offered)} / ${kp(p.perCpuSec)}` : '—'} | ${tail}`);
    } else {
      lines.push(`| ${caseName(c)} | ${p ? kp(p.pps) : '—'} | ${p ? kp(p.offered) : '—'} | ${p ? pct(p.cpuBusy) : '—'} | ` +
        `${p ? dirCpuText(p) : '—'} | ${p ? `**${kp(p.perCpuSec)}**` : '—'} | ${tail}`);
    }
  }
  const errs = r.cases.filter((c) => c.error && (c.pps || c.noLoss || c.cps || c.latency));
  for (const c of errs) lines.push('', `Note: ${caseName(c)}: ${c.error}`);
  lines.push('', howToRead(r));
  const rs = ratios(r);
  if (rs.length) {
    lines.push('', '| target (issue 6) | variant | measured | target | met |', '|---|---|---:|---:|:-:|');
    for (const x of rs) {
      const val = x.unit === 'µs' ? `${x.value.toFixed(1)} µs` : `${x.value.toFixed(2)}×`;
      const tgt = x.unit === 'µs' ? `≤ ${x.target} µs` : `≥ ${x.target}×`;
      lines.push(`| ${x.name} | ${x.variant} | ${val} | ${tgt} | ${x.met ? 'yes' : '**no**'} |`);
    }
  }
  const cs = claims(r);
  if (cs.length) {
    lines.push('', '| claim | variant | holds | measured |', '|---|---|:-:|---|');
    for (const c of cs) lines.push(`| ${c.text} | ${c.variant} | ${c.holds ? 'yes' : 'no'} | ${c.detail} |`);
  }
  const searchedCases = r.cases.filter((c) => c.noLoss && c.noLoss.trials.length);
  if (searchedCases.length) {
    lines.push('', '<details><summary>Rate search trials (asked → offered / forwarded, loss)</summary>', '');
    lines.push('| path | trials | result |', '|---|---|---|');
    for (const c of searchedCases) {
      const n = c.noLoss!;
      const ts = n.trials.map((t) => `${t.confirm ? 'confirm ' : ''}${kp(t.rate)} → ${kp(t.offered)} / ${kp(t.forwarded)}, ${lossPct(t.loss)} ${t.pass ? '✓' : '✗'}`).join('; ');
      lines.push(`| ${caseName(c)} | ${ts} | ${n.rate > 0 ? `${kp(n.rate)} asked` : 'unpaced'} (${n.limit}) |`);
    }
    lines.push('', '</details>');
  }
  lines.push('');
  return lines.join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A hand-written SVG: packets per CPU-second (at the no-loss rate; overload figures for cases
 * without one), new connections/s and p99 latency, one bar per case.
 */
export function svg(r: RunResult): string {
  const colors: Record<CaseKind, string> = { kernel: '#6b7280', uvs: '#2563eb', proxy: '#d97706' };
  const anyNoLoss = r.cases.some((c) => c.noLoss);
  const ppsRow = (c: CaseResult) => {
    const n = c.noLoss;
    if (n) return { name: caseName(c), kind: c.kind, v: n.perCpuSec, text: `${kp(n.perCpuSec)} (at ${n.limit === 'loss' ? '' : '≥ '}${kp(n.offered)} pps)` };
    const p = c.pps!;
    return { name: caseName(c), kind: c.kind, v: p.perCpuSec, text: anyNoLoss ? `${kp(p.perCpuSec)} (overload)` : `${kp(p.perCpuSec)} (${kp(p.pps)} pps)` };
  };
  const panels: { title: string; rows: { name: string; kind: CaseKind; v: number; text: string }[] }[] = [
    {
      title: anyNoLoss
        ? 'Small UDP packets forwarded per CPU-second of the director core at the no-loss rate (higher is better)'
        : 'Small UDP packets forwarded per CPU-second of the director core, at overload (higher is better)',
      rows: r.cases.filter((c) => c.noLoss || c.pps).map(ppsRow).filter((x) => Number.isFinite(x.v)),
    },
    {
      title: 'New TCP connections per second, wrk Connection: close (higher is better)',
      rows: r.cases.filter((c) => c.cps).map((c) => ({ name: caseName(c), kind: c.kind, v: c.cps!.cps, text: c.cps!.cps.toFixed(0) })),
    },
    {
      title: 'One-way latency p99 at fixed rate, µs (lower is better)',
      rows: r.cases.filter((c) => c.latency && c.latency.n > 0).map((c) => ({ name: caseName(c), kind: c.kind, v: c.latency!.p99, text: `${f1(c.latency!.p99)} µs` })),
    },
  ];
  const W = 860;
  const labelW = 260;
  const barMax = W - labelW - 170;
  const rowH = 22;
  let y = 40;
  const parts: string[] = [];
  parts.push(`<text x="16" y="24" font-size="16" font-weight="bold">${esc(`uvs bench modes — ${r.date.slice(0, 10)} — ${r.machine.cpu} × ${r.machine.cores}`)}</text>`);
  for (const p of panels) {
    if (p.rows.length === 0) continue;
    y += 16;
    parts.push(`<text x="16" y="${y}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
    y += 10;
    const max = Math.max(...p.rows.map((x) => x.v), 1);
    for (const row of p.rows) {
      const w = Math.max(1, Math.round((row.v / max) * barMax));
      parts.push(`<text x="${labelW - 8}" y="${y + 15}" font-size="12" text-anchor="end">${esc(row.name)}</text>`);
      parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="${colors[row.kind]}"/>`);
      parts.push(`<text x="${labelW + w + 6}" y="${y + 15}" font-size="12">${esc(row.text)}</text>`);
      y += rowH;
    }
    y += 8;
  }
  y += 10;
  let lx = 16;
  for (const [k, label] of [['kernel', 'Linux kernel baseline'], ['uvs', 'uvs (userspace director)'], ['proxy', 'haproxy mode tcp']] as const) {
    parts.push(`<rect x="${lx}" y="${y}" width="12" height="12" fill="${colors[k]}"/><text x="${lx + 18}" y="${y + 11}" font-size="12">${label}</text>`);
    lx += 220;
  }
  y += 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="Helvetica, Arial, sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n${parts.join('\n')}\n</svg>\n`;
}

/** Base-vs-branch: per case, the change of each figure from `base` to `head`. */
export function compare(base: RunResult, head: RunResult): string {
  const lines = [`# uvs bench modes: ${base.date} → ${head.date}`, '',
    '| case | pkt per CPU-s at no-loss rate | Δ | no-loss rate | Δ | overload pkt per CPU-s | Δ | overload pps | Δ | conn/s | Δ | p99 µs | Δ |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  const d = (a: number | undefined, b: number | undefined): string => {
    if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a === 0) return '—';
    const x = ((b - a) / a) * 100;
    return `${x >= 0 ? '+' : ''}${x.toFixed(1)} %`;
  };
  for (const h of head.cases) {
    const b = base.cases.find((c) => c.id === h.id && c.variant === h.variant);
    lines.push(`| ${caseName(h)} | ${h.noLoss ? kp(h.noLoss.perCpuSec) : '—'} | ${d(b?.noLoss?.perCpuSec, h.noLoss?.perCpuSec)} | ` +
      `${h.noLoss ? kp(h.noLoss.offered) : '—'} | ${d(b?.noLoss?.offered, h.noLoss?.offered)} | ` +
      `${h.pps ? kp(h.pps.perCpuSec) : '—'} | ${d(b?.pps?.perCpuSec, h.pps?.perCpuSec)} | ` +
      `${h.pps ? kp(h.pps.pps) : '—'} | ${d(b?.pps?.pps, h.pps?.pps)} | ${h.cps ? h.cps.cps.toFixed(0) : '—'} | ${d(b?.cps?.cps, h.cps?.cps)} | ` +
      `${h.latency ? f1(h.latency.p99) : '—'} | ${d(b?.latency?.p99, h.latency?.p99)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

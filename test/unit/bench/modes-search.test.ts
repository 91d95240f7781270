import { describe, expect, it } from 'vitest';
import {
  confirmNoLossRate, MAX_BACKOFFS, parseNetDev, searchNoLossRate, type SearchOptions, type TrialOutcome,
} from '../../../src/bench/macro/measure.js';
import { compare, markdown, ratios, svg, type CaseResult, type NoLossFigure, type RunResult } from '../../../src/bench/macro/report.js';

/** A path with capacity `cap` that livelocks above it: forwarding falls by `slope` per pps of excess, down to `floor`. */
function livelock(cap: number, slope: number, floor: number, genMax = Infinity) {
  const asked: number[] = [];
  const trial = async (rate: number): Promise<TrialOutcome> => {
    asked.push(rate);
    const offered = Math.min(rate, genMax);
    const forwarded = offered <= cap ? offered * 0.999 : Math.max(floor, cap - slope * (offered - cap));
    return { offered, forwarded };
  };
  return { trial, asked };
}

const opts = (o: Partial<SearchOptions>): SearchOptions => ({ start: 1000, max: 1e6, maxTrials: 6, lossTolerance: 0.01, resolution: 0.03, ...o });

describe('confirming the rate a search found', () => {
  /** Repetitions forwarding min(rate, cap) of what the generator offers (min(rate, genMax)). */
  const path = (cap: number, genMax = Infinity) => {
    const asked: number[] = [];
    const measure = async (rate: number) => {
      asked.push(rate);
      const offered = Math.min(rate, genMax);
      const pps = Math.min(offered, cap);
      return { pps, offered, loss: 1 - pps / offered, tag: `at ${rate}` };
    };
    return { measure, asked };
  };

  it('a rate that holds is confirmed as it is', async () => {
    const p = path(500_000);
    const c = await confirmNoLossRate(p.measure, 300_000, { lossTolerance: 0.01 });
    expect(c.rate).toBe(300_000);
    expect(c.figure?.tag).toBe('at 300000');
    expect(p.asked).toEqual([300_000]);
    expect(c.trials).toEqual([{ rate: 300_000, offered: 300_000, forwarded: 300_000, loss: 0, pass: true, confirm: true }]);
  });

  it('backs off (at most 15 % a step) until the repetitions stay within the tolerance', async () => {
    const p = path(250_000);
    const c = await confirmNoLossRate(p.measure, 313_000, { lossTolerance: 0.01 });
    expect(c.figure).toBeDefined();
    expect(c.figure!.loss).toBeLessThanOrEqual(0.01);
    expect(c.rate).toBeLessThanOrEqual(250_000 / 0.99);
    for (let i = 1; i < p.asked.length; i++) expect(p.asked[i]!).toBeGreaterThanOrEqual(Math.round(p.asked[i - 1]! * 0.85));
    expect(c.trials.map((t) => t.pass)).toEqual([...Array(c.trials.length - 1).fill(false), true]);
  });

  it('never reports a rate whose repetitions lost more than the tolerance', async () => {
    const p = path(100_000); // far below: 8 steps of 15 % (400k → 109k) cannot reach it
    const c = await confirmNoLossRate(p.measure, 400_000, { lossTolerance: 0.01 });
    expect(c.figure).toBeUndefined();
    expect(p.asked.length).toBe(MAX_BACKOFFS + 1);
    expect(c.trials.every((t) => !t.pass)).toBe(true);
  });

  it('a generator that fell short is asked once more and the better passing figure kept', async () => {
    let n = 0;
    const measure = async (rate: number) => {
      n++;
      const offered = n === 1 ? rate * 0.8 : rate * 0.99;
      return { pps: offered, offered, loss: 0 };
    };
    const c = await confirmNoLossRate(measure, 200_000, { lossTolerance: 0.01 });
    expect(n).toBe(2);
    expect(c.figure!.offered).toBe(198_000);
  });
});

describe('no-loss rate search', () => {
  it('climbs out of the livelock region and brackets the capacity', async () => {
    // 92k forwarded at 489k offered, 240k capacity (the numbers, roughly).
    const m = livelock(240_000, 0.6, 92_000);
    const r = await searchNoLossRate(m.trial, opts({ start: 92_000, max: 489_000 }));
    expect(r.trials.length).toBeLessThanOrEqual(6);
    expect(r.limit).toBe('loss');
    expect(r.rate).toBeLessThanOrEqual(240_000);
    expect(r.rate).toBeGreaterThan(240_000 * 0.9);
    expect(r.offered).toBe(r.rate);
    expect(Math.max(...m.asked)).toBeLessThanOrEqual(489_000);
    // The trial log is consistent: every pass is below every failure.
    const passes = r.trials.filter((t) => t.pass).map((t) => t.rate);
    const fails = r.trials.filter((t) => !t.pass).map((t) => t.rate);
    expect(Math.max(...passes)).toBeLessThan(Math.min(...fails));
    for (const t of r.trials) expect(t.pass).toBe(t.loss <= 0.01);
  });

  it('stops at the generator when the path never loses', async () => {
    const m = livelock(10e6, 0, 0, 389_000);
    const r = await searchNoLossRate(m.trial, opts({ start: 391_000, max: 389_000 }));
    expect(r.trials).toHaveLength(1);
    expect(r.rate).toBe(389_000);
    expect(r.limit).toBe('generator');
  });

  it('stops when the generator falls short of the asked rate', async () => {
    const m = livelock(10e6, 0, 0, 300_000);
    const r = await searchNoLossRate(m.trial, opts({ start: 100_000, max: 800_000 }));
    expect(r.limit).toBe('generator');
    expect(r.offered).toBe(300_000);
    expect(m.asked).toEqual([100_000, 200_000, 400_000]);
  });

  it('steps down from a failing start using the forwarded rate as a hint', async () => {
    const m = livelock(150_000, 0, 150_000);
    const r = await searchNoLossRate(m.trial, opts({ start: 400_000, max: 400_000 }));
    expect(r.trials[0]!.pass).toBe(false);
    expect(r.trials[1]!.rate).toBeLessThan(150_000);
    expect(r.trials[1]!.pass).toBe(true);
    expect(r.limit).toBe('loss');
    expect(r.trials.length).toBeLessThanOrEqual(6);
    expect(r.rate).toBeGreaterThan(150_000 * 0.97);
    expect(r.rate).toBeLessThanOrEqual(150_000);
  });

  it('gives up after the budget when nothing passes, never below min', async () => {
    const m = livelock(0, 0, 0);
    const r = await searchNoLossRate(m.trial, opts({ start: 50_000, min: 5_000, maxTrials: 4 }));
    expect(r.limit).toBe('none');
    expect(r.rate).toBe(0);
    expect(r.trials.length).toBeLessThanOrEqual(4);
    for (const a of m.asked) expect(a).toBeGreaterThanOrEqual(5_000);
  });

  it('goes on bisecting when the generator falls short inside the bracket', async () => {
    const asked: number[] = [];
    const r = await searchNoLossRate(async (rate) => {
      asked.push(rate);
      // The third trial: the generator manages only 80 % (other load), and the path passes that.
      const offered = asked.length === 3 ? rate * 0.8 : rate;
      return { offered, forwarded: offered <= 200_000 ? offered : 150_000 };
    }, opts({ start: 150_000, max: 400_000, maxTrials: 6 }));
    expect(r.trials.length).toBeGreaterThan(3);
    expect(r.limit).toBe('loss');
    expect(r.rate).toBeGreaterThan(180_000);
    expect(r.rate).toBeLessThanOrEqual(200_000);
  });

  it('does not repeat a trial at the cap', async () => {
    const m = livelock(10e6, 0, 0, 185_300);
    const r = await searchNoLossRate(m.trial, opts({ start: 185_100.4, max: 185_300.7 }));
    expect(r.trials).toHaveLength(1);
    expect(r.limit).toBe('generator');
    const m2 = livelock(10e6, 0, 0);
    const r2 = await searchNoLossRate(m2.trial, opts({ start: 100_000, max: 150_000 }));
    expect(m2.asked).toEqual([100_000, 150_000]);
    expect(r2.limit).toBe('generator');
  });

  it('reports the budget when every trial passed below the cap', async () => {
    const m = livelock(10e6, 0, 0);
    const r = await searchNoLossRate(m.trial, opts({ start: 10_000, max: 1e6, maxTrials: 3 }));
    expect(r.limit).toBe('budget');
    expect(r.rate).toBe(40_000);
  });

  it('treats NaN and zero offers as failures', async () => {
    let n = 0;
    const r = await searchNoLossRate(async () => (n++ === 0 ? { offered: NaN, forwarded: NaN } : { offered: 0, forwarded: 0 }), opts({ start: 10_000, maxTrials: 3 }));
    expect(r.trials.every((t) => !t.pass && t.loss === 1)).toBe(true);
    expect(r.limit).toBe('none');
  });
});

describe('net/dev parsing', () => {
  it('reads rx/tx packets and drops of one interface', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  488110    2348    0    0    0     0          0         0   488110    2348    0    0    0     0       0          0
  eth0: 1000 10 0 2 0 0 0 0 5000 50 0 7 0 0 0 0
`;
    expect(parseNetDev(text, 'eth0')).toEqual({ rxPackets: 10, rxDropped: 2, txPackets: 50, txDropped: 7 });
    expect(() => parseNetDev(text, 'eth1')).toThrow();
  });
});

describe('bench modes report with no-loss figures', () => {
  const fig = (perCpuSec: number) => ({ pps: perCpuSec / 2, runs: [perCpuSec / 2], offered: perCpuSec, cpuBusy: 1, softirq: 0.3, dirCpu: 0.5, procUser: 0.05, procSys: 0.15, perCpuSec });
  const nl = (perCpuSec: number, limit: NoLossFigure['limit'] = 'loss'): NoLossFigure => ({
    ...fig(perCpuSec), pps: perCpuSec / 4, offered: perCpuSec / 4, loss: 0.002, rate: perCpuSec / 4, limit,
    trials: [{ rate: perCpuSec / 4, offered: perCpuSec / 4, forwarded: perCpuSec / 4, loss: 0, pass: true }],
  });
  const run = (cases: CaseResult[], search = true): RunResult => ({
    version: 1,
    date: '2026-11-22T00:00:00.000Z',
    machine: { cpu: 'cpu', cores: 2, kernel: 'k', node: 'v20', host: 'h' },
    options: { quick: true, flows: 10, seconds: 1, reps: 1, latencyRate: 10000, variants: ['default'], ...(search ? { search: { lossTolerance: 0.01, maxTrials: 5, trialSeconds: 0.6 } } : {}) },
    cases,
  });
  const head = run([
    { id: 'kfwd', label: 'kernel IPv4 forwarding', kind: 'kernel', variant: '', pps: fig(600_000), noLoss: nl(400_000, 'generator') },
    { id: 'knat', label: 'kernel nftables DNAT + conntrack', kind: 'kernel', variant: '', pps: fig(500_000), noLoss: nl(300_000) },
    { id: 'dr', label: 'uvs DR', kind: 'uvs', variant: 'default', pps: fig(90_000), noLoss: nl(280_000) },
    { id: 'nat', label: 'uvs NAT', kind: 'uvs', variant: 'default', pps: fig(80_000) },
  ]);

  it('uses pkt per CPU-s at the no-loss rate for the targets, overload where a side has none', () => {
    const r = ratios(head);
    const dr = r.find((x) => x.name.startsWith('DR ÷ kernel'))!;
    expect(dr.value).toBeCloseTo(0.7);
    expect(dr.name).toContain('no-loss rate');
    const nat = r.find((x) => x.name.startsWith('NAT ÷ nftables'))!;
    expect(nat.value).toBeCloseTo(80 / 500);
    expect(nat.name).toContain('overload');
  });

  it('renders the no-loss table, the chart and a comparison against an old-shape result', () => {
    const md = markdown(head);
    expect(md).toContain('**no-loss rate**');
    expect(md).toContain('overload: forwarded / offered / pkt per CPU-s');
    expect(md).toContain('| uvs DR | 70k (0.2 % loss) |');
    expect(md).toContain('≥ 100k');
    expect(md).toContain('How to read it');
    expect(md).toContain('| uvs NAT | — |');
    const s = svg(head);
    expect(s).toContain('no-loss rate');
    expect(s).toContain('280k (at 70k pps)');
    expect(s).toContain('80k (overload)');
    // An old result: no noLoss, no options.search, missing optional fields.
    const old = run([{ id: 'dr', label: 'uvs DR', kind: 'uvs', variant: 'default', pps: fig(100_000) }], false);
    const c = compare(old, head);
    expect(c).toContain('| uvs DR | 280k | — | 70k | — | 90k | -10.0 % |');
    expect(compare(head, old)).toContain('| uvs DR | — | — | — | — | 100k |');
    expect(markdown(old)).not.toContain('no-loss rate**');
  });
});

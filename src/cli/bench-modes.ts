/**
 * `uvs bench modes` — the macro suite (root): NAT, DR, TUN, FULLNAT through uvsd next to the
 * kernel's forwarding, nftables DNAT(+SNAT) with conntrack and haproxy, on one namespace topology.
 *
 *   uvs bench modes [--quick] [--modes dr,tun,nat,fullnat] [--variants default,packet,xdp,no-coalesce,mac,bypass,mac+bypass]
 *                   [--seconds S] [--reps N] [--flows N] [--latency-rate PPS] [--no-baselines]
 *                   [--no-cps] [--no-latency] [--no-search] [--cpu-prof DIR] [--out DIR] [--no-save]
 *   uvs bench modes --compare OLD.json [NEW.json]   (without NEW.json: run, then compare)
 *
 * Per path: forwarding at overload (the generator flat out), then an RFC 2544-style search for the
 * highest paced rate forwarded with at most 1 % loss and the same figures at that rate (the
 * "no-loss rate"; --no-search skips it: overload only). The targets use pkt per CPU-s at the
 * no-loss rate.
 *
 * Prints the markdown table; writes <out>/modes-<stamp>.{md,json,svg}, <out>/latest.{md,json,svg}
 * and bench/RESULTS.md (default out: bench/results). Namespaces and processes are removed at the
 * end, on error and on Ctrl-C.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanupHook, isRoot, Registry, REPO_ROOT } from '../lab/netns.js';

const USAGE = `usage: uvs bench modes [--quick] [--modes dr,tun,nat,fullnat] [--variants default,packet,xdp,no-coalesce,mac,bypass,mac+bypass]
                      [--seconds S] [--reps N] [--flows N] [--latency-rate PPS] [--no-baselines]
                      [--no-cps] [--no-latency] [--no-search] [--cpu-prof DIR] [--out DIR] [--no-save]
       uvs bench modes --compare OLD.json [NEW.json]
  --no-search   measure at overload only (skip the no-loss rate search)`;

export async function benchModes(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        quick: { type: 'boolean' },
        modes: { type: 'string' },
        variants: { type: 'string' },
        seconds: { type: 'string' },
        reps: { type: 'string' },
        flows: { type: 'string' },
        'latency-rate': { type: 'string' },
        'no-baselines': { type: 'boolean' },
        'no-cps': { type: 'boolean' },
        'no-latency': { type: 'boolean' },
        'no-search': { type: 'boolean' },
        'cpu-prof': { type: 'string' },
        out: { type: 'string' },
        'no-save': { type: 'boolean' },
        compare: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`uvs bench modes: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 64;
  }
  const o = v.values;
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const report = await import('../bench/macro/report.js');
  type Run = import('../bench/macro/report.js').RunResult;
  const load = (p: string): Run => JSON.parse(readFileSync(p, 'utf8')) as Run;
  if (o.compare && v.positionals[0]) {
    process.stdout.write(report.compare(load(o.compare), load(v.positionals[0])));
    return 0;
  }
  if (v.positionals[0] === 'render' && v.positionals[1]) {
    process.stdout.write(report.markdown(load(v.positionals[1])));
    return 0;
  }
  const base = o.compare ? load(o.compare) : undefined;
  if (!isRoot()) {
    process.stderr.write('uvs bench modes builds network namespaces and needs root (try: sudo …)\n');
    return 1;
  }
  const quick = o.quick ?? false;
  const num = (s: string | undefined, def: number): number => {
    const n = s === undefined ? def : Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`bad number ${s}`);
    return n;
  };
  const { runSuite, VARIANTS } = await import('../bench/macro/suite.js');
  const modes = (o.modes ?? 'dr,tun,nat,fullnat').split(',').map((s) => s.trim()).filter(Boolean);
  const variants = (o.variants ?? 'default,packet').split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) if (!['dr', 'tun', 'nat', 'fullnat'].includes(m)) { process.stderr.write(`unknown mode ${m}\n`); return 64; }
  for (const x of variants) if (!VARIANTS[x]) { process.stderr.write(`unknown variant ${x} (${Object.keys(VARIANTS).join(', ')})\n`); return 64; }
  const registry = new Registry();
  const unhook = installCleanupHook(registry);
  const log = (m: string) => process.stderr.write(`${m}\n`);
  let result;
  try {
    result = await runSuite({
      quick,
      modes,
      variants,
      seconds: num(o.seconds, quick ? 1.5 : 3),
      reps: num(o.reps, quick ? 1 : 3),
      flows: num(o.flows, 1000),
      latencyRate: num(o['latency-rate'], 10_000),
      latencySeconds: quick ? 1.5 : 3,
      cpsSeconds: quick ? 2 : 3,
      search: !o['no-search'],
      searchTrials: quick ? 5 : 6,
      trialSeconds: quick ? 0.6 : 1.0,
      trialWarm: quick ? 0.25 : 0.4,
      lossTolerance: 0.01,
      searchResolution: quick ? 0.05 : 0.03,
      baselines: !o['no-baselines'],
      cps: !o['no-cps'],
      latency: !o['no-latency'],
      cpuProf: o['cpu-prof'],
      log,
    }, registry);
  } finally {
    await registry.cleanup();
    unhook();
  }
  const md = report.markdown(result);
  process.stdout.write(md);
  if (!o['no-save']) {
    const out = o.out ?? join(REPO_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const stamp = result.date.replace(/[:.]/g, '-').slice(0, 19);
    for (const name of [`modes-${stamp}`, 'latest']) {
      writeFileSync(join(out, `${name}.md`), md);
      writeFileSync(join(out, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
      writeFileSync(join(out, `${name}.svg`), report.svg(result));
    }
    if (!o.out) {
      writeFileSync(join(REPO_ROOT, 'bench', 'RESULTS.md'), resultsPage(md));
    }
    log(`written: ${join(out, `modes-${stamp}.{md,json,svg}`)}${o.out ? '' : ' and bench/RESULTS.md'}`);
  }
  if (base) process.stdout.write('\n' + report.compare(base, result));
  return 0;
}

function resultsPage(md: string): string {
  return `# Benchmark results: forwarding modes against the kernel

Produced by \`sudo uvs bench modes\` (or \`npm run bench:modes\`); regenerate to refresh. The chart and the
JSON of the same run are in [results/latest.svg](results/latest.svg) and [results/latest.json](results/latest.json);
compare two runs with \`uvs bench modes --compare OLD.json NEW.json\`.

![modes chart](results/latest.svg)

The "How to read it" paragraph under the table says what each figure is; in short, the targets compare packets per
CPU-second of the director core at each path's no-loss rate (≤ 1 % loss), not at overload. "uvs …" rows without a
tag are uvsd as shipped (\`--io auto\`, which picks AF_XDP on these veths); "[packet]" rows force AF_PACKET. With
AF_XDP a veth runs its receive side (XDP program, copy into the UMEM) in NAPI on the sender's CPU; the suite makes
that NAPI threaded and pins it to the director core, so it is counted like the kernel paths' receive work.

${md.replace(/^# /, '## ')}`;
}

import { describe, expect, it } from 'vitest';
import { claims, compare, markdown, ratios, svg, type CaseResult, type RunResult } from '../../../src/bench/macro/report.js';
import { cpuDelta, parsePidStat, parseProcStat, parseWrk, median } from '../../../src/bench/macro/measure.js';
import { envPacketOptions } from '../../../src/port/packet-socket-port.js';

const pps = (perCpuSec: number) => ({ pps: perCpuSec / 2, runs: [perCpuSec / 2], offered: perCpuSec, cpuBusy: 1, softirq: 0.3, dirCpu: 0.5, procUser: 0.05, procSys: 0.15, perCpuSec });
const lat = (p99: number) => ({ n: 1000, p50: p99 / 2, p99, p999: p99 * 2, min: 1, max: p99 * 3 });

function run(cases: CaseResult[]): RunResult {
  return {
    version: 1,
    date: '2026-11-21T00:00:00.000Z',
    machine: { cpu: 'cpu', cores: 2, kernel: 'k', node: 'v20', host: 'h' },
    options: { quick: true, flows: 10, seconds: 1, reps: 1, latencyRate: 10000, variants: ['default'] },
    cases,
  };
}

const base = run([
  { id: 'kfwd', label: 'kernel IPv4 forwarding', kind: 'kernel', variant: '', pps: pps(400_000), latency: lat(50) },
  { id: 'knat', label: 'kernel nftables DNAT + conntrack', kind: 'kernel', variant: '', pps: pps(300_000), cps: { cps: 10_000, errors: 0, cpuBusy: 1, dirCpu: 0.5, perCpuSec: 20_000 } },
  { id: 'haproxy', label: 'haproxy', kind: 'proxy', variant: '', cps: { cps: 5000, errors: 0, cpuBusy: 1, dirCpu: 1, perCpuSec: 5000 } },
  { id: 'dr', label: 'uvs DR', kind: 'uvs', variant: 'default', pps: pps(300_000), latency: lat(150) },
  { id: 'tun', label: 'uvs TUN', kind: 'uvs', variant: 'default', pps: pps(290_000) },
  { id: 'nat', label: 'uvs NAT', kind: 'uvs', variant: 'default', pps: pps(280_000), cps: { cps: 8000, errors: 2, cpuBusy: 1, dirCpu: 0.8, perCpuSec: 10_000 } },
  { id: 'fullnat', label: 'uvs FULLNAT', kind: 'uvs', variant: 'default', pps: pps(252_000), error: 'wrk failed' },
]);

describe('bench modes report', () => {
  it('computes the issue ratios per variant', () => {
    const r = ratios(base);
    const get = (prefix: string) => r.find((x) => x.name.startsWith(prefix))!;
    expect(get('DR ÷ kernel').value).toBeCloseTo(0.75);
    expect(get('DR ÷ kernel').met).toBe(true);
    expect(get('NAT ÷ nftables').value).toBeCloseTo(280 / 300);
    expect(get('FULLNAT ÷ uvs NAT').value).toBeCloseTo(0.9);
    expect(get('TUN ÷ uvs DR').value).toBeCloseTo(290 / 300);
    expect(get('new conn/s: best').value).toBeCloseTo(1.6);
    const l = get('added p99 latency, uvs DR');
    expect(l.value).toBe(100);
    expect(l.met).toBe(true);
  });

  it('checks the seeds claim', () => {
    const c = claims(base);
    expect(c[0]!.holds).toBe(true);
    expect(c[1]!.holds).toBe(true);
    expect(c[1]!.detail).toContain('10.0 %');
    const swapped = run(base.cases.map((x) => (x.id === 'fullnat' ? { ...x, pps: pps(400_000) } : x)));
    expect(claims(swapped)[0]!.holds).toBe(false);
  });

  it('renders markdown, svg and a comparison', () => {
    const md = markdown(base);
    expect(md).toContain('| uvs NAT | 140k |');
    expect(md).toContain('8000 (2 err)');
    expect(md).toContain('Note: uvs FULLNAT: wrk failed');
    const s = svg(base);
    expect(s.startsWith('<svg')).toBe(true);
    expect(s).toContain('uvs DR');
    expect(s.match(/<rect /g)!.length).toBeGreaterThan(8);
    const head = run(base.cases.map((x) => (x.id === 'nat' ? { ...x, pps: pps(308_000) } : x)));
    expect(compare(base, head)).toContain('+10.0 %');
  });
});

describe('bench modes measurement helpers', () => {
  it('parses /proc/stat and /proc/pid/stat', () => {
    const a = parseProcStat('cpu  1 2 3\ncpu0 1 1 1 1 1 1 1 0\ncpu1 100 0 50 800 0 10 40 0\n', 1);
    const b = parseProcStat('cpu1 150 0 100 800 0 10 140 0\n', 1);
    expect(a.busy).toBe(200);
    const d = cpuDelta(a, b, { utime: 0, stime: 0 }, { utime: 40, stime: 60 });
    expect(d.busy).toBe(1);
    expect(d.softirq).toBeCloseTo(0.5);
    expect(d.procSys).toBeCloseTo(0.3);
    expect(parsePidStat('123 (node (x)) S 1 2 3 4 5 6 7 8 9 10 77 88 0 0')).toEqual({ utime: 77, stime: 88 });
  });

  it('parses wrk output', () => {
    const out = 'Running\n  1 threads\n  Socket errors: connect 1, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 4\nRequests/sec:   1234.50\n';
    expect(parseWrk(out)).toEqual({ cps: 1234.5, errors: 10 });
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  it('reads the opt-in packet-socket knobs from UVS_PACKET_OPTS', () => {
    expect(envPacketOptions('eth0', undefined)).toEqual({});
    const o = envPacketOptions('eth0', 'qdisc-bypass,mac:eth0=02:75:76:73:00:01,mac:eth1=02:75:76:73:00:02');
    expect(o.qdiscBypass).toBe(true);
    expect(Array.from(o.mac!)).toEqual([2, 0x75, 0x76, 0x73, 0, 1]);
    expect(envPacketOptions('eth2', 'mac:eth0=02:75:76:73:00:01')).toEqual({});
    expect(envPacketOptions('eth0', 'mac:eth0=zz')).toEqual({});
  });
});

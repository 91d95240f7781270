/**
 * The Prometheus exposition of uvsd: node_exporter's ipvs names/labels/HELP/TYPE, uvs's own
 * families, text-format validity, and the HTTP endpoint (loopback policy, /metrics, 404/405).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { build } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC } from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_MASQ } from '../../../src/model/constants.js';
import { estimate } from '../../../src/model/estimator.js';
import { MetricsServer, METRICS_CONTENT_TYPE, parseMetricsAddr, renderMetrics, renderMetricsAsync, escapeLabel } from '../../../src/control/metrics.js';

const VIP = '192.168.10.110';
const SYN = 0x02, ACK = 0x10;
const L = (rip: string, rport: number) =>
  `local_address="${VIP}",local_mark="",local_port="80",proto="TCP",remote_address="${rip}",remote_port="${rport}"`;

function lab() {
  const m = memLab();
  m.cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
  m.cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ, 2) });
  m.cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.17', port: 8080 }, opts: destOpts(FWD_MASQ, 3) });
  m.cmd({ cmd: 'add-service', svc: { protocol: 0, af: 2, addr: '', port: 0, fwmark: 100 }, opts: svcOpts('wlc') });
  m.cmd({ cmd: 'add-server', svc: { protocol: 0, af: 2, addr: '', port: 0, fwmark: 100 }, dest: { addr: '10.0.0.7', port: 3306 }, opts: destOpts(FWD_DROUTE, 1) });
  return m;
}

/** Parses the exposition into {name{labels}: value}, checking the text format on the way. */
function parse(text: string): { series: Map<string, number>; types: Map<string, string>; helps: Map<string, string> } {
  expect(text.endsWith('\n')).toBe(true);
  const series = new Map<string, number>();
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line))) {
      expect(helps.has(m[1]!), `duplicate HELP ${m[1]}`).toBe(false);
      helps.set(m[1]!, m[2]!);
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line))) {
      expect(types.has(m[1]!), `duplicate TYPE ${m[1]}`).toBe(false);
      types.set(m[1]!, m[2]!);
    } else {
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
      expect(m, `bad line: ${line}`).not.toBeNull();
      expect(types.has(m![1]!), `sample before TYPE: ${line}`).toBe(true);
      const key = m![1]! + (m![2] ?? '');
      expect(series.has(key), `duplicate series ${key}`).toBe(false);
      series.set(key, Number(m![3]));
    }
  }
  return { series, types, helps };
}

describe('renderMetrics', () => {
  it("node_exporter's ipvs families: names, HELP, TYPE and label sets as node_exporter prints them", () => {
    const { d } = lab();
    const { series, types, helps } = parse(renderMetrics(d));
    expect(types.get('node_ipvs_connections_total')).toBe('counter');
    expect(helps.get('node_ipvs_connections_total')).toBe('The total number of connections made.');
    expect(helps.get('node_ipvs_incoming_packets_total')).toBe('The total number of incoming packets.');
    expect(helps.get('node_ipvs_outgoing_packets_total')).toBe('The total number of outgoing packets.');
    expect(helps.get('node_ipvs_incoming_bytes_total')).toBe('The total amount of incoming data.');
    expect(helps.get('node_ipvs_outgoing_bytes_total')).toBe('The total amount of outgoing data.');
    for (const n of ['incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes']) expect(types.get(`node_ipvs_${n}_total`)).toBe('counter');
    expect(types.get('node_ipvs_backend_connections_active')).toBe('gauge');
    expect(types.get('node_ipvs_backend_connections_inactive')).toBe('gauge');
    expect(types.get('node_ipvs_backend_weight')).toBe('gauge');
    expect(helps.get('node_ipvs_backend_connections_active')).toBe('The current active connections by local and remote address.');
    expect(helps.get('node_ipvs_backend_connections_inactive')).toBe('The current inactive connections by local and remote address.');
    expect(helps.get('node_ipvs_backend_weight')).toBe('The current backend weight by local and remote address.');
    expect(series.get(`node_ipvs_backend_weight{${L('10.0.0.7', 80)}}`)).toBe(2);
    expect(series.get(`node_ipvs_backend_weight{${L('10.0.0.17', 8080)}}`)).toBe(3);
    // fwmark service: proto FWM, empty local_address, port 0, the mark in %08X (100 = 0x64)
    expect(series.get('node_ipvs_backend_weight{local_address="",local_mark="00000064",local_port="0",proto="FWM",remote_address="10.0.0.7",remote_port="3306"}')).toBe(1);
    expect(series.get('node_ipvs_connections_total')).toBe(0);
  });

  it('counts what the data path counted: totals, per backend, active/inactive, drops, ports, conn table', () => {
    const { d, p0, run } = lab();
    // Two SYNs (rr: one per dest) and one stray ACK (dropped: non-SYN without a conn).
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80, flags: SYN }));
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40001, dport: 80, flags: SYN }));
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40002, dport: 80, flags: ACK }));
    run();
    estimate(d.stats);
    for (const s of d.config.services) { estimate(s.stats); for (const x of s.dests) estimate(x.stats); }
    const { series, types } = parse(renderMetrics(d));
    const ipLen = d.stats.inbytes / 2;
    expect(ipLen).toBeGreaterThanOrEqual(40);
    expect(series.get('node_ipvs_connections_total')).toBe(2);
    expect(series.get('node_ipvs_incoming_packets_total')).toBe(2);
    expect(series.get('node_ipvs_incoming_bytes_total')).toBe(2 * ipLen);
    expect(series.get('node_ipvs_outgoing_packets_total')).toBe(0);
    for (const [rip, rport] of [['10.0.0.7', 80], ['10.0.0.17', 8080]] as const) {
      // SYN_RECV counts as active (K ≥ 4.8)
      expect(series.get(`node_ipvs_backend_connections_active{${L(rip, rport)}}`)).toBe(1);
      expect(series.get(`node_ipvs_backend_connections_inactive{${L(rip, rport)}}`)).toBe(0);
      expect(series.get(`uvs_backend_connections_total{${L(rip, rport)}}`)).toBe(1);
      expect(series.get(`uvs_backend_incoming_packets_total{${L(rip, rport)}}`)).toBe(1);
      expect(series.get(`uvs_backend_incoming_bytes_total{${L(rip, rport)}}`)).toBe(ipLen);
      expect(series.get(`uvs_backend_outgoing_bytes_total{${L(rip, rport)}}`)).toBe(0);
      // one conn in one 2 s period: (1 << 9) >> 2 = 128 → (128 + 511) >> 10 = 0; bytes: (ipLen << 4) >> 2 → (… + 15) >> 5
      expect(series.get(`uvs_backend_connections_per_second{${L(rip, rport)}}`)).toBe(0);
      expect(series.get(`uvs_backend_incoming_bytes_per_second{${L(rip, rport)}}`)).toBe(Math.floor((ipLen * 4 + 15) / 32));
    }
    expect(types.get('uvs_backend_connections_total')).toBe('counter');
    expect(types.get('uvs_backend_connections_per_second')).toBe('gauge');
    const svc = `local_address="${VIP}",local_mark="",local_port="80",proto="TCP"`;
    expect(series.get(`uvs_service_connections_total{${svc}}`)).toBe(2);
    expect(series.get(`uvs_service_incoming_packets_total{${svc}}`)).toBe(2);
    expect(series.get('uvs_drops_total{reason="non-syn-no-conn"}')).toBe(1);
    expect(series.get('uvs_drops_total{reason="no-dest"}')).toBe(0);
    expect(series.has('uvs_drops_total{reason="none"}')).toBe(false);
    expect(types.get('uvs_drops_total')).toBe('counter');
    expect(series.get('uvs_conn_table_entries')).toBe(2);
    expect(series.get('uvs_conn_table_capacity')).toBe(d.conns.capacity);
    expect(types.get('uvs_conn_table_entries')).toBe('gauge');
    expect(series.get('uvs_fragment_table_evicted_total')).toBe(0);
    expect(types.get('uvs_fragment_table_evicted_total')).toBe('counter');
    expect(series.get('uvs_drop_entry_freed_total')).toBe(0);
    expect(series.get('uvs_port_rx_frames_total{port="cli0"}')).toBe(3);
    expect(series.get('uvs_port_tx_frames_total{port="srv0"}')).toBe(2);
    expect(series.get('uvs_port_rx_frames_total{port="srv0"}')).toBe(0);
    expect(series.get('uvs_connections_per_second')).toBe(Math.floor(((2 << 9) / 4 + 511) / 1024));
  });

  it('-Z zeroes the ipvs counters and totals (a counter reset for Prometheus) and leaves drops and conn-table gauges', () => {
    const { d, p0, run, cmd } = lab();
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80, flags: SYN }));
    run();
    // -Z of one service leaves the totals (K ip_vs_zero_service) …
    cmd({ cmd: 'zero', svc: tcpSvc(VIP, 80) });
    expect(parse(renderMetrics(d)).series.get('node_ipvs_connections_total')).toBe(1);
    // … -Z of everything zeroes them too (K ip_vs_zero_all: tot_stats).
    cmd({ cmd: 'zero' });
    const { series } = parse(renderMetrics(d));
    expect(series.get('node_ipvs_connections_total')).toBe(0);
    expect(series.get('node_ipvs_incoming_bytes_total')).toBe(0);
    expect(series.get(`uvs_backend_connections_total{${L('10.0.0.17', 8080)}}`)).toBe(0);
    expect(series.get(`uvs_backend_connections_total{${L('10.0.0.7', 80)}}`)).toBe(0);
    expect(series.get('uvs_conn_table_entries')).toBe(1);
  });

  it('sums backends with identical label sets, as node_exporter does', () => {
    const { d, cmd } = lab();
    // Same RIP:port behind a TCP and a UDP service on the same VIP:port differ in proto ⇒ distinct.
    cmd({ cmd: 'add-service', svc: { protocol: 17, af: 2, addr: VIP, port: 80, fwmark: 0 }, opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: { protocol: 17, af: 2, addr: VIP, port: 80, fwmark: 0 }, dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ, 7) });
    const { series } = parse(renderMetrics(d));
    expect(series.get(`node_ipvs_backend_weight{${L('10.0.0.7', 80)}}`)).toBe(2);
    expect(series.get(`node_ipvs_backend_weight{${L('10.0.0.7', 80).replace('proto="TCP"', 'proto="UDP"')}}`)).toBe(7);
  });

  it('the sliced (async) rendering of a large rule set equals the one-go rendering and yields to the event loop', async () => {
    const { d, cmd } = memLab();
    for (let s = 0; s < 30; s++) {
      const svc = tcpSvc(`192.168.20.${s + 1}`, 80);
      cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
      for (let k = 0; k < 20; k++) cmd({ cmd: 'add-server', svc, dest: { addr: `10.0.${s}.${k + 1}`, port: 8080 }, opts: destOpts(FWD_MASQ, k) });
    }
    let ticks = 0;
    const iv = setInterval(() => ticks++, 0);
    const text = await renderMetricsAsync(d, 0);
    clearInterval(iv);
    expect(text).toBe(renderMetrics(d));
    expect(ticks).toBeGreaterThan(0);
    expect(parse(text).series.size).toBeGreaterThan(30 * 20 * 13);
  });

  it('escapes label values', () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

describe('parseMetricsAddr (loopback unless --metrics-allow-remote)', () => {
  it('accepts loopback addresses and port 0', () => {
    expect(parseMetricsAddr('127.0.0.1:9101')).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(parseMetricsAddr('127.0.0.53:0')).toEqual({ host: '127.0.0.53', port: 0 });
    expect(parseMetricsAddr('[::1]:9101')).toEqual({ host: '::1', port: 9101 });
    expect(parseMetricsAddr('localhost:9101')).toEqual({ host: 'localhost', port: 9101 });
  });
  it('refuses a non-loopback address without --metrics-allow-remote, accepts it with', () => {
    expect(() => parseMetricsAddr('0.0.0.0:9101')).toThrow(/not a loopback address.*--metrics-allow-remote/);
    expect(() => parseMetricsAddr('192.168.10.100:9101')).toThrow(/not a loopback address/);
    expect(() => parseMetricsAddr('[::]:9101')).toThrow(/not a loopback address/);
    expect(parseMetricsAddr('0.0.0.0:9101', true)).toEqual({ host: '0.0.0.0', port: 9101 });
    expect(parseMetricsAddr('[2001:db8::1]:9101', true)).toEqual({ host: '2001:db8::1', port: 9101 });
  });
  it('refuses malformed specs', () => {
    for (const bad of ['9101', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:x', 'example.com:9101', '::1:9101']) {
      expect(() => parseMetricsAddr(bad, true), bad).toThrow(/--metrics/);
    }
  });
});

describe('MetricsServer', () => {
  let srv: MetricsServer | undefined;
  afterEach(async () => { await srv?.close(); srv = undefined; });

  it('serves /metrics on loopback with the text-format content type; 404 elsewhere, 405 for POST', async () => {
    const { d } = lab();
    srv = new MetricsServer(d);
    const a = await srv.listen({ host: '127.0.0.1', port: 0 });
    expect(a.address).toBe('127.0.0.1');
    const base = `http://127.0.0.1:${a.port}`;
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
    const body = await r.text();
    expect(body).toBe(renderMetrics(d));
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('uvsd --metrics flags (checked before anything starts)', () => {
  async function uvsdMain(argv: string[]): Promise<{ code: number; err: string }> {
    const { main } = await import('../../../src/cli/uvsd.js');
    const orig = process.stderr.write.bind(process.stderr);
    let err = '';
    (process.stderr as { write: unknown }).write = (c: string | Uint8Array) => { err += String(c); return true; };
    try {
      return { code: await main(argv), err };
    } finally {
      (process.stderr as { write: unknown }).write = orig;
    }
  }
  it('a non-loopback address without --metrics-allow-remote: exit 2', async () => {
    const r = await uvsdMain(['--tap', 'x=10.9.9.1/24', '--metrics', '0.0.0.0:9101']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('uvsd: --metrics 0.0.0.0:9101: 0.0.0.0 is not a loopback address');
  });
  it('--metrics-allow-remote alone: exit 2', async () => {
    const r = await uvsdMain(['--tap', 'x=10.9.9.1/24', '--metrics-allow-remote']);
    expect(r).toEqual({ code: 2, err: 'uvsd: --metrics-allow-remote needs --metrics ADDR:PORT\n' });
  });
  it('a malformed spec: exit 2', async () => {
    const r = await uvsdMain(['--tap', 'x=10.9.9.1/24', '--metrics', '9101']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^uvsd: --metrics 9101: expected ADDR:PORT/);
  });
});

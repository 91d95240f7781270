/**
 * Prometheus exporter of uvsd (off by default; `uvsd --metrics ADDR:PORT`).
 *
 * Serves `GET /metrics` in the Prometheus text format 0.0.4. Nothing here runs on the data path:
 * the director keeps its counters as plain numbers (Stats fields, DropCounters, PortState
 * rx/txFrames) and this module reads them when a scrape comes in, so a scrape costs one walk over
 * the rule set and the data path never calls into the exporter.
 *
 * Metrics:
 * - node_exporter's ipvs collector, same names, HELP texts, types and labels, so stock dashboards
 *   work unchanged (K-less emulation of /proc/net/ip_vs_stats and /proc/net/ip_vs):
 *     node_ipvs_connections_total, node_ipvs_incoming_packets_total,
 *     node_ipvs_outgoing_packets_total, node_ipvs_incoming_bytes_total,
 *     node_ipvs_outgoing_bytes_total (director totals, counters, no labels);
 *     node_ipvs_backend_connections_active, node_ipvs_backend_connections_inactive,
 *     node_ipvs_backend_weight (gauges) with labels local_address, local_mark, local_port, proto,
 *     remote_address, remote_port. As node_exporter: fwmark services have proto="FWM",
 *     local_address="", local_port="0", local_mark = the mark in %08X hex; otherwise
 *     local_mark="". Backends with identical label sets are summed.
 * - uvs's own:
 *     uvs_drops_total{reason}            every drop reason of src/pipeline/drops.ts (all listed, 0 too)
 *     uvs_frames_passed_total            frames handed to the host stack
 *     uvs_tunnel_icmp_relayed_total, uvs_path_mtu_learnt_entries  routers' errors about TUN packets
 *     uvs_fullnat_toa_total{result}      FULLNAT segments given the TOA option (added) or not
 *     uvs_synproxy_total{event}          SYN proxy: cookies sent, valid cookie ACKs, real servers' SYN-ACKs, SYNs resent
 *                                        (no_option_room, mtu, fragment, no_headroom)
 *     uvs_fullnat_uoa_total{result}      the same for UOA on FULLNAT UDP datagrams (+ standalone)
 *     uvs_conn_table_entries             conns + templates in the table
 *     uvs_conn_table_capacity            its size (uvsd --max-conns)
 *     uvs_fragment_table_evicted_total   datagrams whose later fragments lost their conn to a full table
 *     uvs_drop_entry_freed_total         conns the drop_entry sysctl's random pass freed
 *     uvs_sync_records_sent_total        conn records the sync master sent (uvsadm --start-daemon master)
 *     uvs_sync_records_received_total{result}  records a sync backup received: created, updated, or
 *                                        skipped (no_service, no_dest, no_laddr, table_full)
 *     uvs_port_rx_frames_total{port}, uvs_port_tx_frames_total{port}
 *     uvs_backend_{connections,incoming_packets,outgoing_packets,incoming_bytes,outgoing_bytes}_total
 *                                        per backend (labels as node_ipvs_backend_*)
 *     uvs_backend_{connections,incoming_packets,outgoing_packets,incoming_bytes,outgoing_bytes}_per_second
 *                                        per backend, the kernel estimator's rates (`--rate`)
 *     uvs_service_…_total / uvs_service_…_per_second   the same per virtual service
 *                                        (labels local_address, local_mark, local_port, proto)
 *     uvs_{connections,incoming_packets,…}_per_second   director totals' rates
 *   `uvsadm -Z` zeroes the ipvs counters as in the kernel; Prometheus sees a counter reset, which
 *   rate()/increase() handle.
 *
 * Exposure: the listener binds loopback only (127.0.0.0/8, ::1, `localhost`) unless uvsd is given
 * `--metrics-allow-remote` — the endpoint has no authentication and lists the rule set.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Director } from '../pipeline/director.js';
import { SP_EVENTS } from '../pipeline/director.js';
import { FTP_EVENTS } from '../fwd/ftp.js';
import { DROP_REASONS } from '../pipeline/drops.js';
import type { Stats } from '../model/stats.js';
import { ipToString } from '../model/addr.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../model/constants.js';
import { AO_RESULTS } from '../fwd/addr-option.js';
import { UOA_STANDALONE } from '../fwd/uoa.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The parts of a Director the exporter reads. */
export type MetricsSource = Pick<Director, 'stats' | 'config' | 'conns' | 'drops' | 'ports' | 'passed' | 'frags' | 'droppedEntries' | 'syncRecordsSent' | 'syncApplied' | 'tunnelIcmpRelayed' | 'toaCounts' | 'uoaCounts' | 'spCounts' | 'ftp' | 'pmtu' | 'clock'>;

/** Label value escaping of the text format: backslash, double quote, newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function protoLabel(proto: number, fwmark: number): string {
  if (fwmark) return 'FWM';
  return proto === IPPROTO_TCP ? 'TCP' : proto === IPPROTO_UDP ? 'UDP' : proto === IPPROTO_SCTP ? 'SCTP' : String(proto);
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** Rates as `ipvsadm --rate` shows them (kernel ip_vs_read_estimator rounding). */
function rates(s: Stats): [number, number, number, number, number] {
  return [
    Math.floor((s.cps + 0x1ff) / 1024), Math.floor((s.inpps + 0x1ff) / 1024), Math.floor((s.outpps + 0x1ff) / 1024),
    Math.floor((s.inbps + 0xf) / 32), Math.floor((s.outbps + 0xf) / 32),
  ];
}

const KINDS = ['connections', 'incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes'] as const;
const KIND_HELP = ['connections', 'incoming packets', 'outgoing packets', 'incoming bytes (IP length)', 'outgoing bytes (IP length)'];

function totals(s: Stats): [number, number, number, number, number] {
  return [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes];
}

class Family {
  lines: string[] = [];
  constructor(readonly name: string, readonly type: 'counter' | 'gauge', readonly help: string) {}
  add(labels: string, v: number): void {
    this.lines.push(labels ? `${this.name}{${labels}} ${num(v)}` : `${this.name} ${num(v)}`);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}`);
    if (this.lines.length) out.push(this.lines.join('\n'));
  }
}

/** A metric with one unlabelled sample. */
function single(out: string[], name: string, type: 'counter' | 'gauge', help: string, v: number): void {
  const f = new Family(name, type, help);
  f.add('', v);
  f.render(out);
}

/** A TOA/UOA counter family: one sample per result (fwd/addr-option.ts). */
function addrOptions(out: string[], name: string, help: string, counts: Float64Array,
  extra: readonly (readonly [string, number])[] = []): void {
  const f = new Family(name, 'counter', help);
  for (const [result, code] of [...AO_RESULTS, ...extra]) f.add(`result="${result}"`, counts[code] ?? 0);
  f.render(out);
}

/** The whole exposition, ending in a newline (in one go; for tests and small rule sets). */
export function renderMetrics(d: MetricsSource): string {
  const out: string[] = [];
  const it = renderSteps(d, out);
  while (!it.next().done) { /* run to completion */ }
  return out.join('\n');
}

/**
 * The same text, built in slices of at most ~sliceMs of CPU: between slices it yields to the event
 * loop so a scrape of a large rule set never stalls packet processing for long (the counters
 * may move between slices, as they do between /proc reads in node_exporter).
 */
export async function renderMetricsAsync(d: MetricsSource, sliceMs = 2): Promise<string> {
  const out: string[] = [];
  const it = renderSteps(d, out);
  let t0 = performance.now();
  while (!it.next().done) {
    if (performance.now() - t0 >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      t0 = performance.now();
    }
  }
  return out.join('\n');
}

/** Appends the exposition's lines to `out`, yielding after each virtual service. */
function* renderSteps(d: MetricsSource, out: string[]): Generator<void, void, void> {
  // node_exporter ipvs collector: totals.
  const g = d.stats;
  const nodeTotals: [string, string, number][] = [
    ['node_ipvs_connections_total', 'The total number of connections made.', g.conns],
    ['node_ipvs_incoming_packets_total', 'The total number of incoming packets.', g.inpkts],
    ['node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.', g.outpkts],
    ['node_ipvs_incoming_bytes_total', 'The total amount of incoming data.', g.inbytes],
    ['node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.', g.outbytes],
  ];
  for (const [name, help, v] of nodeTotals) {
    const f = new Family(name, 'counter', help);
    f.add('', v);
    f.render(out);
  }

  // node_exporter backend gauges (summed over identical label sets, as node_exporter does).
  const active = new Family('node_ipvs_backend_connections_active', 'gauge', 'The current active connections by local and remote address.');
  const inact = new Family('node_ipvs_backend_connections_inactive', 'gauge', 'The current inactive connections by local and remote address.');
  const weight = new Family('node_ipvs_backend_weight', 'gauge', 'The current backend weight by local and remote address.');
  const sums = new Map<string, [number, number, number]>();
  const bTot = KINDS.map((k, i) => new Family(`uvs_backend_${k}_total`, 'counter', `Backend ${KIND_HELP[i]}, as ipvsadm -L --stats.`));
  const bRate = KINDS.map((k, i) => new Family(`uvs_backend_${k}_per_second`, 'gauge', `Backend ${KIND_HELP[i]} per second, the kernel estimator's rate (ipvsadm -L --rate).`));
  const sTot = KINDS.map((k, i) => new Family(`uvs_service_${k}_total`, 'counter', `Virtual service ${KIND_HELP[i]}, as ipvsadm -L --stats.`));
  const sRate = KINDS.map((k, i) => new Family(`uvs_service_${k}_per_second`, 'gauge', `Virtual service ${KIND_HELP[i]} per second, the kernel estimator's rate (ipvsadm -L --rate).`));
  for (const s of [...d.config.services]) { // copies: control commands may run between slices
    const la = s.fwmark ? '' : ipToString(s.addr);
    const lp = s.fwmark ? 0 : s.port;
    const mark = s.fwmark ? hex8(s.fwmark) : '';
    const svcLabels = `local_address="${la}",local_mark="${mark}",local_port="${lp}",proto="${protoLabel(s.protocol, s.fwmark)}"`;
    const st = totals(s.stats);
    const sr = rates(s.stats);
    for (let i = 0; i < 5; i++) { sTot[i]!.add(svcLabels, st[i]!); sRate[i]!.add(svcLabels, sr[i]!); }
    for (const dst of [...s.dests]) {
      const labels = `${svcLabels},remote_address="${ipToString(dst.addr)}",remote_port="${dst.port}"`;
      const cur = sums.get(labels);
      if (cur) { cur[0] += dst.activeConns; cur[1] += dst.inactConns; cur[2] += dst.weight; } else sums.set(labels, [dst.activeConns, dst.inactConns, dst.weight]);
      const bt = totals(dst.stats);
      const br = rates(dst.stats);
      for (let i = 0; i < 5; i++) { bTot[i]!.add(labels, bt[i]!); bRate[i]!.add(labels, br[i]!); }
    }
    yield;
  }
  for (const [labels, [a, i, w]] of sums) { active.add(labels, a); inact.add(labels, i); weight.add(labels, w); }
  active.render(out);
  inact.render(out);
  weight.render(out);
  yield;

  // uvs's own.
  const drops = new Family('uvs_drops_total', 'counter', 'Frames uvs dropped, by reason.');
  for (let i = 1; i < DROP_REASONS.length; i++) drops.add(`reason="${DROP_REASONS[i]}"`, d.drops.counts[i] ?? 0);
  drops.render(out);
  single(out, 'uvs_frames_passed_total', 'counter', 'Frames passed to the host stack (not for a virtual service).', d.passed);
  single(out, 'uvs_tunnel_icmp_relayed_total', 'counter',
    'ICMP errors routers sent about uvs\'s own TUN packets, turned into errors from the VIP to the client (K ip_vs_in_icmp).', d.tunnelIcmpRelayed);
  single(out, 'uvs_path_mtu_learnt_entries', 'gauge',
    'Real servers whose path MTU a router\'s fragmentation-needed lowered (kept 600 s, as the kernel\'s route exceptions).',
    d.pmtu.entries(d.clock.now()).length);
  addrOptions(out, 'uvs_fullnat_toa_total', 'FULLNAT client segments that got the TOA option (the client address for real servers), or why one was left out.', d.toaCounts);
  addrOptions(out, 'uvs_fullnat_uoa_total', 'FULLNAT client datagrams that got the UOA option (the client address for real servers), '
    + 'had it sent ahead in a datagram of its own (standalone), or why it was left out.', d.uoaCounts, [['standalone', UOA_STANDALONE]]);
  const sp = new Family('uvs_synproxy_total', 'counter',
    'SYN proxy (-j enable): cookie SYN-ACKs sent, client ACKs with a valid cookie (conns opened), real servers\' SYN-ACKs taken, SYNs sent again to silent real servers.');
  for (let i = 0; i < SP_EVENTS.length; i++) sp.add(`event="${SP_EVENTS[i]}"`, d.spCounts[i] ?? 0);
  sp.render(out);
  const ftp = new Family('uvs_ftp_total', 'counter',
    'FTP helper of NAT services (ip_vs_ftp): data connections it expected, by what announced them (a PASV/EPSV reply it rewrote to the VIP, a PORT/EPRT command).');
  for (let i = 0; i < FTP_EVENTS.length; i++) ftp.add(`event="${FTP_EVENTS[i]}"`, d.ftp.counts[i] ?? 0);
  ftp.render(out);
  single(out, 'uvs_conn_table_entries', 'gauge', 'Connections and persistence templates in the connection table.', d.conns.count);
  single(out, 'uvs_conn_table_capacity', 'gauge', 'Capacity of the connection table (uvsd --max-conns).', d.conns.capacity);
  single(out, 'uvs_fragment_table_evicted_total', 'counter',
    'Fragmented datagrams whose entry (the conn their later fragments follow) was replaced because the fragment table was full.', d.frags.evicted);
  single(out, 'uvs_drop_entry_freed_total', 'counter',
    'Conns freed by the drop_entry defence (sysctl net.ipv4.vs.drop_entry) under conn table pressure.', d.droppedEntries);
  single(out, 'uvs_sync_records_sent_total', 'counter', 'Conn records the connection-sync master sent.', d.syncRecordsSent);
  const syncRecv = new Family('uvs_sync_records_received_total', 'counter',
    'Conn records a connection-sync backup received, by what became of them.');
  const a = d.syncApplied;
  for (const [result, v] of [['created', a.created], ['updated', a.updated], ['no_service', a.noService], ['no_dest', a.noDest],
    ['no_laddr', a.noLaddr], ['table_full', a.tableFull]] as const) syncRecv.add(`result="${result}"`, v);
  syncRecv.render(out);
  const rx = new Family('uvs_port_rx_frames_total', 'counter', 'Frames received on a port.');
  const tx = new Family('uvs_port_tx_frames_total', 'counter', 'Frames sent on a port.');
  for (const p of d.ports) {
    const l = `port="${escapeLabel(p.port.name)}"`;
    rx.add(l, p.rxFrames);
    tx.add(l, p.txFrames);
  }
  rx.render(out);
  tx.render(out);
  const gr = rates(g);
  for (let i = 0; i < 5; i++) {
    const f = new Family(`uvs_${KINDS[i]}_per_second`, 'gauge', `Director total ${KIND_HELP[i]} per second, the kernel estimator's rate.`);
    f.add('', gr[i]!);
    f.render(out);
  }
  for (const f of [...bTot, ...bRate, ...sTot, ...sRate]) {
    f.render(out);
    yield;
  }
  out.push('');
}

// ---------------------------------------------------------------------- listen address

export interface MetricsAddr {
  host: string;
  port: number;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host);
  return false;
}

/**
 * Parses `ADDR:PORT` (`[V6]:PORT` for IPv6; PORT 0 picks a free port). A non-loopback ADDR is
 * refused unless allowRemote. Throws an Error whose message is printed as `uvsd: …`.
 */
export function parseMetricsAddr(spec: string, allowRemote = false): MetricsAddr {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(spec) ?? /^([^:\[\]]+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`--metrics ${spec}: expected ADDR:PORT (e.g. 127.0.0.1:9101, [::1]:9101)`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port > 65535) throw new Error(`--metrics ${spec}: invalid port`);
  if (host !== 'localhost' && isIP(host) === 0) throw new Error(`--metrics ${spec}: ADDR must be an IP address or localhost`);
  if (!allowRemote && !isLoopback(host)) {
    throw new Error(`--metrics ${spec}: ${host} is not a loopback address; the endpoint has no authentication (add --metrics-allow-remote to expose it)`);
  }
  return { host, port };
}

// ---------------------------------------------------------------------- HTTP server

export class MetricsServer {
  private server: http.Server | null = null;

  constructor(private readonly source: MetricsSource) {}

  async listen(addr: MetricsAddr): Promise<AddressInfo> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => { server.off('error', reject); resolve(); });
    });
    server.on('error', () => {});
    this.server = server;
    return server.address() as AddressInfo;
  }

  address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics') {
      if (url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<html><head><title>uvsd</title></head><body><a href="/metrics">Metrics</a></body></html>\n');
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    renderMetricsAsync(this.source).then((body) => {
      res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    }, (e: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

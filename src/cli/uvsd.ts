/**
 * uvsd — the director daemon.
 *
 *   uvsd --iface IF [--iface IF2 …] [--io auto|packet|xdp]   existing interfaces: AF_XDP where the driver has
 *        native XDP and one receive queue (auto, the default), else AF_PACKET; or forced
 *   uvsd --tap NAME=ADDR/PREFIX [--tap …] [--gateway ADDR]   TAP devices; uvsd is the L2 host
 *   common: [--sock PATH] [--max-conns N] [--log-level LEVEL] [--trace [FILTER]] [--pcap DIR]
 *
 * Thin: builds ports and the Director, serves the control socket, drives the clock.
 */
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import { Director } from '../pipeline/director.js';
import { systemClock } from '../pipeline/clock.js';
import { PacketSocketPort } from '../port/packet-socket-port.js';
import { XdpPort } from '../port/xdp-port.js';
import { parseCoalesce, RxCoalescer, type CoalesceMode } from '../port/rx-coalesce.js';
import { TapPort } from '../port/tap-port.js';
import type { Port } from '../port/port.js';
import { hugeAllocator } from '../port/native.js';
import { MAX_CONNS } from '../conn/conn-table.js';
import { ControlServer } from '../control/server.js';
import { attachTracer, TraceStream, type TraceAttachment } from '../trace/attach.js';
import { SyncDaemons } from '../sync/daemon.js';
import { Control } from '../control/ops.js';
import { HostGuard, hostAddrs, ifaceAddrs, loadKernelRoutes } from '../control/kernel-net.js';
import { parseIp, ipToString, macToString } from '../model/addr.js';
import { ESTIMATOR_PERIOD_MS } from '../model/estimator.js';
import { FWD_MASQ } from '../model/constants.js';
import { Sysctls, SysctlError } from '../model/sysctl.js';
import type { Command, ServiceSnap } from '../control/types.js';
import { resolve as resolvePath } from 'node:path';
import { MetricsServer, parseMetricsAddr, type MetricsAddr } from '../control/metrics.js';
import { HealthDaemon, TAP_CHECK_NOTE, type ConfigFormat } from '../health/daemon.js';
import { dnsCheck, httpCheck, runCheck, streamTcpExchange, udpCheck, type UdpExchange } from '../health/checkers.js';
import { ProbeSocket } from '../pipeline/probe-socket.js';

export const DEFAULT_SOCK = '/run/uvs/uvsd.sock';

const USAGE = `usage: uvsd --iface IF [--iface IF …] [--io auto|packet|xdp] | --tap NAME=ADDR/PREFIX [--tap …] [--gateway ADDR]
            --io auto (default): AF_XDP on an --iface port whose driver runs XDP natively and that has one
            receive queue (veth, virtio single queue), else AF_PACKET; --io xdp also accepts generic
            (skb) XDP; --io packet: always AF_PACKET. The port chosen is logged. With AF_XDP a small XDP
            program hands uvs only the flows it owns; the host keeps the rest of the interface's traffic
            [--vip-arp uvs|host]             who answers ARP for VIPs and local addresses: uvs (default), or the
                                             host while an interface carries them (keepalived VRRP active/standby)
            [--rx-coalesce auto|off|USECS]   AF_XDP ports: receive coalescing (the device's napi_defer_hard_irqs +
            gro_flush_timeout, restored at exit); auto (default) turns it on above 30k frames/s, like a NIC's
            adaptive interrupt moderation, and leaves a device alone that already has it configured
            [--trace [FILTER]] [--trace-format text|json] [--pcap DIR]
            [--sock PATH] [--max-conns N] [--log-level trace|debug|info|warn|error]
            [--ftp-ports 21[,PORT…]|none]     NAT services on these ports get the FTP helper (ip_vs_ftp; default 21)
            [--sysctl NAME=VALUE …]            an IPVS sysctl (net.ipv4.vs.NAME, defaults as the kernel's;
                                             uvsadm --sysctl lists them and changes them at run time)
            [--metrics ADDR:PORT [--metrics-allow-remote]]   Prometheus /metrics (loopback only unless allowed)
            [--keepalived FILE | --ldirectord FILE]   rules + health checks from keepalived.conf / ldirectord.cf (SIGHUP reloads)`;

/** Sampling period of uvsd's event-loop delay histogram (logged when uvsd stops). */
const LOOP_DELAY_RESOLUTION_MS = 1;

/** `--sysctl NAME=VALUE` settings (net.ipv4.vs.*, src/model/sysctl.ts), in the order given. */
export type SysctlSettings = { name: string; value: string }[];

/** Most FTP ports, as the kernel's IP_VS_APP_MAX_PORTS. */
const FTP_PORTS_MAX = 8;

/**
 * `--ftp-ports LIST`: the virtual ports whose NAT conns get the FTP helper (ip_vs_ftp's `ports=`
 * module parameter): comma-separated ports, at most 8, or `none`.
 */
export function parseFtpPorts(arg: string): number[] {
  const a = arg.trim();
  if (a === 'none' || a === '') return [];
  const out: number[] = [];
  for (const part of a.split(',')) {
    const t = part.trim();
    const n = Number(t);
    if (!/^[0-9]+$/.test(t) || n < 1 || n > 65535) throw new Error(`--ftp-ports ${arg}: "${t}" is not a port (1 … 65535; or none)`);
    if (!out.includes(n)) out.push(n);
  }
  if (out.length > FTP_PORTS_MAX) throw new Error(`--ftp-ports ${arg}: at most ${FTP_PORTS_MAX} ports`);
  return out;
}

/** Parses and checks `--sysctl NAME=VALUE` arguments; throws a clear message for anything else. */
export function parseSysctls(args: readonly string[]): SysctlSettings {
  const check = new Sysctls();
  const out: SysctlSettings = [];
  for (const a of args) {
    const m = /^([a-z_./0-9]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`--sysctl ${a}: expected NAME=VALUE (uvsadm --sysctl lists them)`);
    try {
      out.push({ name: check.set(m[1]!, m[2]!), value: m[2]!.trim() });
    } catch (e) {
      if (e instanceof SysctlError) throw new Error(`--sysctl: ${e.message}`);
      throw e;
    }
  }
  return out;
}

export interface UvsdHandle {
  director: Director;
  /** Health checks / keepalived.conf (SIGHUP → reload). */
  health?: HealthDaemon;
  stop(): Promise<void>;
}

export async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    // `--trace` may stand alone (trace everything): give parseArgs an empty filter then.
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      args.push(argv[i]!);
      if (argv[i] === '--trace' && (i + 1 >= argv.length || argv[i + 1]!.startsWith('--'))) args.push('');
    }
    opts = parseArgs({
      args,
      options: {
        iface: { type: 'string', multiple: true },
        io: { type: 'string' },
        'rx-coalesce': { type: 'string' },
        'vip-arp': { type: 'string' },
        tap: { type: 'string', multiple: true },
        gateway: { type: 'string' },
        sock: { type: 'string' },
        'max-conns': { type: 'string' },
        'ftp-ports': { type: 'string' },
        sysctl: { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        metrics: { type: 'string' },
        'metrics-allow-remote': { type: 'boolean' },
        keepalived: { type: 'string' },
        ldirectord: { type: 'string' },
        trace: { type: 'string' },
        'trace-format': { type: 'string' },
        pcap: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const ifaces = opts.iface ?? [];
  const taps = opts.tap ?? [];
  if (ifaces.length === 0 && taps.length === 0) {
    process.stderr.write(`uvsd: give at least one --iface or --tap\n${USAGE}\n`);
    return 2;
  }
  const maxConns = opts['max-conns'] !== undefined ? Number(opts['max-conns']) : 1 << 20;
  if (!Number.isInteger(maxConns) || maxConns < 1 || maxConns > MAX_CONNS) {
    process.stderr.write(`uvsd: invalid --max-conns ${opts['max-conns']} (1 … ${MAX_CONNS})\n`);
    return 2;
  }
  let ftpPorts: number[];
  try {
    ftpPorts = parseFtpPorts(opts['ftp-ports'] ?? '21');
  } catch (e) {
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  let sysctls: SysctlSettings;
  try {
    sysctls = parseSysctls(opts.sysctl ?? []);
  } catch (e) {
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  let metrics: MetricsAddr | undefined;
  try {
    if (opts.metrics !== undefined) metrics = parseMetricsAddr(opts.metrics, opts['metrics-allow-remote'] ?? false);
    else if (opts['metrics-allow-remote']) throw new Error('--metrics-allow-remote needs --metrics ADDR:PORT');
  } catch (e) {
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const ioMode = opts.io ?? 'auto';
  if (ioMode !== 'packet' && ioMode !== 'xdp' && ioMode !== 'auto') {
    process.stderr.write(`uvsd: --io ${ioMode}: auto, packet or xdp\n`);
    return 2;
  }
  let rxCoalesce: CoalesceMode;
  try {
    rxCoalesce = parseCoalesce(opts['rx-coalesce'] ?? 'auto');
  } catch (e) {
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const vipArp = opts['vip-arp'] ?? 'uvs';
  if (vipArp !== 'uvs' && vipArp !== 'host') {
    process.stderr.write(`uvsd: --vip-arp ${vipArp}: uvs or host\n`);
    return 2;
  }
  const log = pino({ level: opts['log-level'] ?? 'info', base: { name: 'uvsd' } });
  const sock = opts.sock ?? process.env.UVS_SOCK ?? DEFAULT_SOCK;
  let handle: UvsdHandle;
  try {
    if (opts.keepalived !== undefined && opts.ldirectord !== undefined) throw new Error('give --keepalived or --ldirectord, not both');
    const hf = opts.keepalived ?? opts.ldirectord;
    const health = hf === undefined ? undefined : { file: resolvePath(hf), format: (opts.keepalived !== undefined ? 'keepalived' : 'ldirectord') as ConfigFormat };
    const fmt = opts['trace-format'] ?? 'text';
    if (fmt !== 'text' && fmt !== 'json') throw new Error(`--trace-format ${fmt}: text or json`);
    const trace = opts.trace !== undefined || opts.pcap !== undefined
      ? { filter: opts.trace ?? '', out: (opts.trace !== undefined ? fmt : 'none') as 'text' | 'json' | 'none', pcapDir: opts.pcap }
      : undefined;
    handle = await startDaemon({ ifaces, io: ioMode, rxCoalesce, taps, gateway: opts.gateway, sock, maxConns, ftpPorts, log, metrics, health, trace, sysctls, vipArp });
  } catch (e) {
    log.error({ err: e instanceof Error ? e.message : String(e) }, 'uvsd failed to start');
    process.stderr.write(`uvsd: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  return await new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'uvsd stopping');
      handle.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => { void handle.health?.reload(); });
  });
}

interface StartOptions {
  ifaces: string[];
  /** How --iface ports move frames: AF_PACKET (default) or AF_XDP with fallback to AF_PACKET. */
  /** --iface port kind (default auto: AF_XDP where native XDP and one rx queue, else AF_PACKET). */
  io?: 'auto' | 'packet' | 'xdp' | undefined;
  /** `--rx-coalesce`: receive coalescing of AF_XDP ports (default auto). */
  rxCoalesce?: CoalesceMode | undefined;
  taps: string[];
  gateway: string | undefined;
  sock: string;
  maxConns: number;
  /** `--ftp-ports`: virtual ports of the FTP helper of NAT services (default [21]; [] = off). */
  ftpPorts?: number[];
  log: Logger;
  /** Prometheus endpoint (off when undefined). */
  metrics?: MetricsAddr | undefined;
  /** keepalived.conf / ldirectord.cf to load at start (a mistake: uvsd does not start). */
  health?: { file: string; format: ConfigFormat } | undefined;
  /** `--sysctl NAME=VALUE`: the IPVS sysctls uvs can change (defaults as the kernel). */
  sysctls?: SysctlSettings;
  /** `--vip-arp`: uvs answers ARP for its service addresses (default), or leaves it to the host. */
  vipArp?: 'uvs' | 'host';
  /** `--trace [FILTER]` / `--pcap DIR`: step-by-step trace of matching packets. */
  trace?: { filter: string; out: 'text' | 'json' | 'none'; pcapDir: string | undefined } | undefined;
}

export async function startDaemon(o: StartOptions): Promise<UvsdHandle> {
  const log = o.log;
  const director = new Director({ clock: systemClock, maxConns: o.maxConns, allocate: hugeAllocator(), maxPorts: Math.max(2, o.ifaces.length + o.taps.length),
    ...(o.ftpPorts !== undefined ? { ftpPorts: o.ftpPorts } : {}) });
  for (const { name, value } of o.sysctls ?? []) director.setSysctl(name, value);
  director.serviceArp = o.vipArp !== 'host';
  const ports: Port[] = [];
  let guard: HostGuard | null = null;
  const coalescer = new RxCoalescer(o.rxCoalesce ?? { kind: 'auto' }, undefined,
    (port, err) => log.warn({ port, err: err.message }, 'receive coalescing not available on this port (left as it was)'),
    (port, us, rate) => log.debug({ port, timerUs: us, rxPps: Math.round(rate) }, us > 0 ? 'receive coalescing on' : 'receive coalescing off'));
  const cleanup = async (): Promise<void> => {
    coalescer.restore();
    for (const p of ports) { try { p.close(); } catch { /* closing anyway */ } }
    if (guard) await guard.remove();
  };
  const exitHook = (): void => { coalescer.restore(); guard?.removeSync(); };
  process.once('exit', exitHook);
  try {
    const byName = new Map<string, number>();
    for (const ifname of o.ifaces) {
      let port: PacketSocketPort | XdpPort | null = null;
      const io = o.io ?? 'auto';
      if (io !== 'packet') {
        const queues = XdpPort.rxQueues(ifname);
        if (io === 'auto' && queues !== 1) {
          log.info({ port: ifname, rxQueues: queues || 'unknown' }, 'AF_XDP not chosen: uvs serves one receive queue, this interface has more (or sysfs does not say); using AF_PACKET');
        } else {
          try {
            port = XdpPort.open(ifname, io === 'auto' ? { mode: 'drv' } : {});
          } catch (e) {
            const why = e instanceof Error ? e.message : String(e);
            if (io === 'xdp') log.warn({ port: ifname, reason: why }, 'AF_XDP setup failed, falling back to AF_PACKET');
            else log.info({ port: ifname, reason: why }, 'AF_XDP (native) not available, using AF_PACKET');
          }
        }
      }
      if (port === null) port = PacketSocketPort.open(ifname);
      ports.push(port);
      const pi = director.addPort(port);
      byName.set(ifname, pi);
      for (const a of await ifaceAddrs(ifname)) director.routes.addAddress({ port: pi, addr: a.addr, prefix: a.prefix });
      if (port instanceof XdpPort) {
        coalescer.add(port, Date.now());
        log.info({ port: ifname, mac: macToString(port.mac), mtu: port.mtu, io: 'xdp', xdpAttach: port.attach, zeroCopy: port.zeroCopy }, 'port attached (AF_XDP: owned flows to uvs, the rest to the host)');
      } else {
        log.info({ port: ifname, mac: macToString(port.mac), mtu: port.mtu, io: 'packet' }, 'port attached (AF_PACKET)');
      }
    }
    if (o.ifaces.length > 0) await loadKernelRoutes(director.routes, byName);
    for (const spec of o.taps) {
      const m = /^([^=]+)=(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(spec);
      if (!m) throw new Error(`--tap ${spec}: expected NAME=ADDR/PREFIX`);
      const addr = parseIp(m[2]!);
      const prefix = Number(m[3]);
      if (addr < 0 || prefix < 1 || prefix > 32) throw new Error(`--tap ${spec}: bad address`);
      const port = TapPort.create(m[1]!);
      ports.push(port);
      const pi = director.addPort(port, [addr]);
      director.routes.addAddress({ port: pi, addr, prefix });
      log.info({ port: m[1], addr: `${m[2]}/${prefix}`, mac: macToString(port.mac) }, 'port created (TAP)');
    }
    if (o.gateway !== undefined) {
      const gw = parseIp(o.gateway);
      if (gw < 0) throw new Error(`--gateway ${o.gateway}: not an IPv4 address`);
      const ri = director.routes.lookup(gw);
      if (ri < 0) throw new Error(`--gateway ${o.gateway}: not on any port's subnet`);
      director.routes.add({ net: 0, prefix: 0, gw, port: director.routes.get(ri).port, src: 0 });
    }
    if (o.ifaces.length > 0) {
      guard = new HostGuard();
      await guard.install();
      log.info({ table: guard.table }, 'nftables guard installed (host kernel kept off owned flows)');
    }
  } catch (e) {
    await cleanup();
    process.off('exit', exitHook);
    throw e;
  }
  for (const r of director.routes.describe()) log.info({ route: r }, 'route');
  if (coalescer.ports.length > 0) log.info({ ports: coalescer.ports, mode: o.rxCoalesce?.kind === 'fixed' ? `${o.rxCoalesce.usecs} µs` : o.rxCoalesce?.kind ?? 'auto' }, 'receive coalescing (AF_XDP ports)');
  for (const a of coalescer.leftAlone) log.info(a, 'receive coalescing: the device already has it configured, left alone');

  const control = new Control(director);
  const server = new ControlServer(o.sock);
  const xdpPorts = ports.filter((p): p is XdpPort => p instanceof XdpPort);
  const syncGuard = async (): Promise<void> => {
    if (!guard) return;
    const natRips = new Set<number>();
    for (const s of director.config.services) for (const d of s.dests) if (d.fwd === FWD_MASQ) natRips.add(d.addr);
    // AF_XDP ports: the XDP program's address map is the same split as the guard's sets.
    if (xdpPorts.length > 0) {
      const local = await hostAddrs();
      for (const p of xdpPorts) p.setAddrs([...director.config.owned], [...natRips], local);
    }
    await guard.update([...director.config.owned], [...natRips]);
  };
  // The connection-sync daemons (uvsadm --start-daemon, keepalived lvs_sync_daemon).
  const syncd = new SyncDaemons(director, log);
  // Health checks apply their rule changes like any control client (guard kept in sync).
  const health = new HealthDaemon({
    exec: async (cmd) => {
      const sr = await syncd.handle(cmd);
      if (sr) return sr;
      const r = control.execute(cmd);
      if (r.ok) { try { await syncGuard(); } catch (e) { log.error({ err: String(e) }, 'nftables guard update failed'); } }
      return r;
    },
    snapshot: () => (control.execute({ cmd: 'get-services' }) as { data: ServiceSnap[] }).data,
    log,
    note: o.taps.length > 0 ? TAP_CHECK_NOTE : '',
    // TCP_CHECK / HTTP_GET / SSL_GET / UDP_CHECK / DNS_CHECK with connect_ip = the VIP of a DR/TUN real server go through the data path.
    runner: (c) => {
      const dp = c.dataPath;
      if (dp === undefined) return runCheck(c);
      const target = {
        vip: parseIp(c.connectIp), vport: c.connectPort, rip: parseIp(dp.rip), fwd: dp.fwd, ...(c.bindto ? { src: parseIp(c.bindto) } : {}),
        tun: { tunType: dp.tunType, tunPort: dp.tunPort, tunFlags: dp.tunFlags },
      };
      const timeoutMs = Math.max(1, Math.round(c.connectTimeout * 1000));
      if (c.type === 'TCP_CHECK') return director.probe(target, timeoutMs);
      if (c.type === 'HTTP_GET') {
        // Each url's request over a TCP connection uvs makes itself (probe.ts), the reply judged as through a socket.
        return httpCheck(c, false, async (_c, request) => {
          const r = await director.probe({ ...target, proto: 6, request }, timeoutMs);
          return r.ok ? { reply: r.reply! } : { error: r.detail };
        });
      }
      if (c.type === 'SSL_GET') {
        // node's TLS over that TCP connection (probe-socket.ts).
        return httpCheck(c, true, (_c, request) => {
          const raw = new ProbeSocket();
          return streamTcpExchange(c, request, true, raw, director.probe({ ...target, proto: 6, stream: raw.sink }, timeoutMs));
        });
      }
      // UDP_CHECK / DNS_CHECK: the same exchange as through a socket, the datagram sent the data path's way.
      const exchange: UdpExchange = async (_c, payload, accept) => {
        const r = await director.probe({ ...target, proto: 17, payload, accept }, timeoutMs);
        return r.ok ? { reply: r.reply! } : r.timedOut ? {} : { error: r.detail };
      };
      return c.type === 'DNS_CHECK' ? dnsCheck(c, exchange) : udpCheck(c, exchange);
    },
  });
  try {
    await server.listen(async (cmd: Command) => {
      const hr = await health.handle(cmd);
      if (hr) return hr;
      const sr = await syncd.handle(cmd);
      if (sr) return sr;
      const r = control.execute(cmd);
      if (r.ok && !cmd.cmd.startsWith('get-')) {
        log.info({ cmd: cmd.cmd }, 'rules changed');
        try { await syncGuard(); } catch (e) { log.error({ err: String(e) }, 'nftables guard update failed'); }
      }
      return r;
    });
  } catch (e) {
    await cleanup();
    process.off('exit', exitHook);
    throw e;
  }

  let metricsServer: MetricsServer | null = null;
  if (o.metrics) {
    metricsServer = new MetricsServer(director);
    try {
      const a = await metricsServer.listen(o.metrics);
      log.info({ metrics: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` }, 'metrics endpoint listening (/metrics)');
    } catch (e) {
      await server.close();
      await cleanup();
      process.off('exit', exitHook);
      throw new Error(`--metrics ${o.metrics.host}:${o.metrics.port}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  if (o.health) {
    const r = await health.load(o.health.file, o.health.format);
    if (!r.ok) {
      await health.stop();
      await metricsServer?.close();
      await server.close();
      await cleanup();
      process.off('exit', exitHook);
      throw new Error(r.message);
    }
  }

  // `uvsadm trace [FILTER]`: one JSON event per line to each attached client.
  server.onStream((cmd, send) => {
    if (cmd.cmd !== 'trace') throw new Error(`${cmd.cmd} does not stream`);
    const ts = new TraceStream(director, cmd.filter, send);
    return () => ts.stop();
  });
  let trace: TraceAttachment | null = null;
  if (o.trace) {
    try {
      trace = attachTracer(director, { filter: o.trace.filter, out: o.trace.out, ...(o.trace.pcapDir !== undefined ? { pcapDir: o.trace.pcapDir } : {}) });
    } catch (e) {
      await health.stop();
      await metricsServer?.close();
      await server.close();
      await cleanup();
      process.off('exit', exitHook);
      throw new Error(`--trace: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  try {
    await syncGuard(); // AF_XDP ports: the host's addresses into the filter map before traffic flows
  } catch (e) {
    log.error({ err: String(e) }, 'nftables guard / XDP filter update failed');
  }
  director.start();
  // Housekeeping every 100 ms; when more conns are due than one bounded tick handles, keep
  // expiring from setImmediate (between packet batches) until caught up.
  let draining = false;
  const drain = (): void => {
    if (draining || !director.conns.pending) return;
    draining = true;
    setImmediate(() => {
      draining = false;
      director.conns.tick(director.clock.now());
      drain();
    });
  };
  const tick = setInterval(() => { director.tick(); coalescer.tick(Date.now()); drain(); }, 100);
  // How late the event loop runs (a stall of the one uvsd thread delays every packet behind it).
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  const est = setInterval(() => director.estimateRates(), ESTIMATOR_PERIOD_MS);
  log.info({ sock: o.sock, ports: ports.map((p) => p.name), addrs: director.routes.addrs.map((a) => `${ipToString(a.addr)}/${a.prefix}`) }, 'uvsd ready');

  return {
    director,
    health,
    async stop(): Promise<void> {
      trace?.stop();
      clearInterval(tick);
      clearInterval(est);
      await syncd.close();
      await health.stop();
      director.prober.cancelAll();
      await metricsServer?.close();
      await server.close();
      await cleanup();
      process.off('exit', exitHook);
      const drops = director.drops.snapshot();
      loopDelay.disable();
      // The histogram holds the time between its 1 ms timer's callbacks (an idle loop reads ≈ 1 ms,
      // a 20 ms stall ≈ 21 ms): the delay is what exceeds the resolution.
      const ms = (ns: number): number => Math.round(Math.max(0, ns - LOOP_DELAY_RESOLUTION_MS * 1e6) / 1e4) / 100;
      log.info({
        drops, passed: director.passed,
        eventLoopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), p999: ms(loopDelay.percentile(99.9)), max: ms(loopDelay.max) },
      }, 'uvsd stopped');
    },
  };
}

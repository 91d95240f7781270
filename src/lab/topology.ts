/**
 * The LVS labs: the topologies of the LVS documents for NAT, DR, TUN and FULLNAT, built from
 * network namespaces, veth pairs and Linux bridges, with uvsd as the director.
 *
 * Every segment is a Linux bridge in the lab's own "switch" namespace (never in the root
 * namespace); each host has one veth per segment (eth0, eth1 inside its namespace, `<host>-<if>`
 * on the switch side). Namespace names carry a per-run prefix `uvs-<mode>-<pid>-<hex4>-`.
 *
 *   NAT      client .6 ─[c 192.168.10.0/24]─ .100 director .8 ─[s 10.0.0.0/24]─ rs1 .7 / rs2 .17
 *            VIP 192.168.10.110 (owned by uvsd); real servers' gateway 10.0.0.8
 *   DR, TUN  client .6 ─[c]─ .200 router 10.0.0.200 ─[s]─ director .8, rs1 .7, rs2 .17
 *            VIP 10.0.0.100: DR on the real servers' lo (arp_ignore=1, arp_announce=2);
 *            TUN on the device of `uvs tunnel-endpoint` (this kernel has no ipip)
 *   FULLNAT  client .6 ─[c]─ .100 director .8 ─[s]─ .200 router 10.0.1.200 ─[r 10.0.1.0/24]─ rs1 .7 / rs2 .17
 *            VIP 192.168.10.110, local address (LIP) 10.0.0.50 owned by uvsd
 *
 * Port kinds: `iface` gives the director namespace's eth0/eth1 the director addresses and runs
 * `uvsd --iface eth0 --iface eth1`; `tap` leaves the director's kernel without addresses on the
 * segments, bridges each veth with a TAP uvsd creates (`br-tapc` = eth0 + tapc, …) and runs
 * `uvsd --tap tapc=192.168.10.100/24 --tap taps=10.0.0.8/24 [--gateway …]`.
 *
 * Everything created is recorded in a Registry; `teardown()` (idempotent) removes it all, and
 * a failure half-way through `buildLab` tears down what was already built.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createNs,
  fileExists,
  inNs,
  isRoot,
  REPO_ROOT,
  Registry,
  run,
  tryRun,
  waitFor,
  type ExecOptions,
  type ExecResult,
  type SpawnedProcess,
} from './netns.js';

export type LabMode = 'nat' | 'dr' | 'tun' | 'fullnat';
export type PortKind = 'iface' | 'tap';
export type HostName = 'client' | 'router' | 'director' | 'rs1' | 'rs2' | 'switch';

export const LAB_MODES: readonly LabMode[] = ['nat', 'dr', 'tun', 'fullnat'];
/** Every lab namespace starts with this; `uvs lab down` removes all of them. */
export const LAB_NS_PREFIX = 'uvs-';
/** Lab temp dirs (control socket, logs) are `<tmpdir>/uvs-lab-*`. */
export const LAB_DIR_PREFIX = 'uvs-lab-';

export interface LabOptions {
  portKind: PortKind;
  /** uvsd --io for iface labs (default: uvsd's own default, auto). */
  io?: 'auto' | 'packet' | 'xdp';
  /** Namespace name prefix; default `uvs-<mode>-<pid>-<hex4>-`. */
  prefix?: string;
  /** Processes outlive this Node process (`uvs lab --keep`). */
  keep?: boolean;
  /**
   * Record what the lab creates here (default: a new Registry). The CLI passes its own, with
   * installCleanupHook already on it, so a Ctrl-C during the build still removes everything.
   */
  registry?: Registry;
}

export interface RealServer {
  name: 'rs1' | 'rs2';
  ns: string;
  /** RIP. */
  addr: string;
  /** Port the HTTP server listens on (the dest port of the TCP service). */
  httpPort: number;
  udpPort: number;
  weight: number;
}

/** One host's leg on a segment. */
interface Leg {
  host: HostName;
  ifname: string;
  /** CIDR; for the director in tap mode this is uvsd's address on the TAP instead. */
  cidr: string;
  /** TAP name uvsd uses for this leg (director only). */
  tap?: string;
}

interface Segment {
  name: string;
  legs: Leg[];
}

export interface UvsdHandle {
  readonly argv: readonly string[];
  readonly proc: SpawnedProcess;
  log(): string;
  stop(): Promise<void>;
}

export interface Lab {
  readonly mode: LabMode;
  readonly portKind: PortKind;
  readonly prefix: string;
  /** Host → namespace name (hosts the mode does not have are absent). */
  readonly ns: Partial<Record<HostName, string>>;
  readonly hosts: readonly HostName[];
  /** Temp dir of this lab: control socket and process logs. */
  readonly dir: string;
  /** uvsd's control socket. */
  readonly sock: string;
  readonly clientAddr: string;
  readonly vip: string;
  readonly tcpPort: number;
  readonly udpPort: number;
  /** Director address on the real-server side (10.0.0.8). */
  readonly dip: string;
  /** Director address on the client side (NAT, FULLNAT). */
  readonly dipClient?: string;
  /** Router addresses (DR, TUN: client side / server side; FULLNAT: director side / server side). */
  readonly router?: { a: string; b: string };
  /** FULLNAT local address. */
  readonly lip?: string;
  /** The client's default gateway. */
  readonly clientGateway: string;
  readonly rs: readonly RealServer[];
  /** Device name of the TUN real servers' tunnel endpoint. */
  readonly tunDev: string;
  /** Runs argv inside the host's namespace; throws on failure unless opts.check === false. */
  exec(host: HostName, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process in the host's namespace, logged to `<dir>/<host>-<name>.log`. */
  spawn(host: HostName, argv: readonly string[], name?: string): SpawnedProcess;
  /** The uvsd command line for this mode and port kind (after `node bin/uvsd.js`). */
  uvsdArgs(): string[];
  startUvsd(opts?: { timeoutMs?: number; extraArgs?: string[] }): Promise<UvsdHandle>;
  /** tap mode: waits (bounded) for uvsd's TAPs and bridges each with its segment's veth. */
  attachTaps(timeoutMs?: number): Promise<void>;
  /** The uvsadm commands a user would type for this lab (without the leading `uvsadm`). */
  rules(sched?: string, opts?: { udp?: boolean; tunType?: 'ipip' | 'gue' | 'gre' }): string[][];
  uvsadm(args: readonly string[]): Promise<ExecResult>;
  startServers(): Promise<void>;
  /** The running HTTP server process of a real server (set by startServers / startHttp). */
  httpProc(name: 'rs1' | 'rs2'): SpawnedProcess | undefined;
  /** (Re)starts one real server's HTTP server (health-check tests kill and restart it); resolves once it listens. */
  startHttp(name: 'rs1' | 'rs2'): Promise<SpawnedProcess>;
  startTunnelEndpoints(): Promise<void>;
  /** `ip netns exec …` lines to enter each host. */
  enterCommands(): string[];
  teardown(): Promise<void>;
  /** Synchronous last-resort teardown (SIGKILL, no grace) for a process 'exit' hook. */
  teardownSync(): void;
}

const VIP_NAT = '192.168.10.110';
const VIP_DR = '10.0.0.100';
const CLIENT = '192.168.10.6';
const DIP = '10.0.0.8';
const DIP_CLIENT = '192.168.10.100';
const LIP = '10.0.0.50';
const TUN_DEV = 'uvstun0';
/** UDP port the TUN lab's tunnel endpoints take GUE on (uvsadm … -i --tun-type gue --tun-port 6080). */
export const LAB_GUE_PORT = 6080;
/** The real servers also answer HTTPS here (the same line, ` tls` appended), for SSL_GET checks. */
export const LAB_TLS_PORT = 443;
/** …and FTP here (lab/ftp-server.ts: every download is one line naming the server and its data connection). */
export const LAB_FTP_PORT = 21;


/** Builds the lab for `mode`. Needs root. On failure, removes whatever it had created and rethrows. */
export async function buildLab(mode: LabMode, opts: LabOptions): Promise<Lab> {
  if (!isRoot()) throw new Error('uvs labs create network namespaces and need root (try: sudo …)');
  if (!LAB_MODES.includes(mode)) throw new Error(`unknown lab mode ${mode} (nat, dr, tun, fullnat)`);
  const portKind = opts.portKind;
  const prefix = opts.prefix ?? `${LAB_NS_PREFIX}${mode}-${process.pid}-${randomBytes(2).toString('hex')}-`;
  const registry = opts.registry ?? new Registry();
  const dir = mkdtempSync(join(tmpdir(), LAB_DIR_PREFIX));
  registry.addDir(dir);
  try {
    return await build(mode, portKind, prefix, registry, dir, opts.keep ?? false, opts.io);
  } catch (err) {
    await registry.cleanup();
    throw err;
  }
}

async function build(mode: LabMode, portKind: PortKind, prefix: string, registry: Registry, dir: string, keep: boolean,
  io: LabOptions['io']): Promise<Lab> {
  const tap = portKind === 'tap';
  const routed = mode !== 'nat';
  const hosts: HostName[] = routed ? ['switch', 'client', 'router', 'director', 'rs1', 'rs2'] : ['switch', 'client', 'director', 'rs1', 'rs2'];
  const ns: Partial<Record<HostName, string>> = {};
  for (const h of hosts) ns[h] = `${prefix}${h}`;
  const nsOf = (h: HostName): string => {
    const n = ns[h];
    if (!n) throw new Error(`the ${mode} lab has no host ${h}`);
    return n;
  };

  // ---- address plan -------------------------------------------------------------------------
  let segments: Segment[];
  let vip: string;
  let rsNet: string;
  let rsGateway: string;
  let clientGateway: string;
  let directorGateway: string | undefined;
  let router: { a: string; b: string } | undefined;
  if (mode === 'nat') {
    vip = VIP_NAT;
    rsNet = '10.0.0';
    rsGateway = DIP;
    clientGateway = DIP_CLIENT;
    segments = [
      { name: 'c', legs: [{ host: 'client', ifname: 'eth0', cidr: `${CLIENT}/24` }, { host: 'director', ifname: 'eth0', cidr: `${DIP_CLIENT}/24`, tap: 'tapc' }] },
      { name: 's', legs: [{ host: 'director', ifname: 'eth1', cidr: `${DIP}/24`, tap: 'taps' }] },
    ];
  } else if (mode === 'dr' || mode === 'tun') {
    vip = VIP_DR;
    rsNet = '10.0.0';
    rsGateway = '10.0.0.200';
    clientGateway = '192.168.10.200';
    directorGateway = '10.0.0.200';
    router = { a: '192.168.10.200', b: '10.0.0.200' };
    segments = [
      { name: 'c', legs: [{ host: 'client', ifname: 'eth0', cidr: `${CLIENT}/24` }, { host: 'router', ifname: 'eth0', cidr: '192.168.10.200/24' }] },
      { name: 's', legs: [{ host: 'router', ifname: 'eth1', cidr: '10.0.0.200/24' }, { host: 'director', ifname: 'eth0', cidr: `${DIP}/24`, tap: 'taps' }] },
    ];
  } else {
    vip = VIP_NAT;
    rsNet = '10.0.1';
    rsGateway = '10.0.1.200';
    clientGateway = DIP_CLIENT;
    directorGateway = '10.0.0.200';
    router = { a: '10.0.0.200', b: '10.0.1.200' };
    segments = [
      { name: 'c', legs: [{ host: 'client', ifname: 'eth0', cidr: `${CLIENT}/24` }, { host: 'director', ifname: 'eth0', cidr: `${DIP_CLIENT}/24`, tap: 'tapc' }] },
      { name: 's', legs: [{ host: 'director', ifname: 'eth1', cidr: `${DIP}/24`, tap: 'taps' }, { host: 'router', ifname: 'eth0', cidr: '10.0.0.200/24' }] },
      { name: 'r', legs: [{ host: 'router', ifname: 'eth1', cidr: '10.0.1.200/24' }] },
    ];
  }
  const rsSeg = segments[segments.length - 1]!;
  const portMapped = mode === 'nat' || mode === 'fullnat';
  const rs: RealServer[] = [
    { name: 'rs1', ns: nsOf('rs1'), addr: `${rsNet}.7`, httpPort: 80, udpPort: 53, weight: 1 },
    { name: 'rs2', ns: nsOf('rs2'), addr: `${rsNet}.17`, httpPort: portMapped ? 8080 : 80, udpPort: 53, weight: 3 },
  ];
  for (const r of rs) rsSeg.legs.push({ host: r.name, ifname: 'eth0', cidr: `${r.addr}/24` });
  const directorLegs = segments.flatMap((s) => s.legs.filter((l) => l.host === 'director'));

  // ---- namespaces ---------------------------------------------------------------------------
  for (const h of hosts) {
    registry.addNs(nsOf(h));
    await createNs(nsOf(h));
  }
  const sysctl = (h: HostName, kv: string[]) => run(inNs(nsOf(h), ['sysctl', '-q', '-w', ...kv]));
  // No IPv6 chatter (router solicitations, MLD, DAD) in the labs' captures and traces.
  await Promise.all(hosts.map((h) => sysctl(h, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])));

  // ---- segments: a bridge per segment in the switch namespace --------------------------------
  const sw = nsOf('switch');
  for (const seg of segments) {
    const br = `br-${seg.name}`;
    await run(['ip', '-n', sw, 'link', 'add', br, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await run(['ip', '-n', sw, 'link', 'set', br, 'up']);
    for (const leg of seg.legs) {
      const peer = `${leg.host}-${leg.ifname}`;
      await run(['ip', '-n', nsOf(leg.host), 'link', 'add', leg.ifname, 'type', 'veth', 'peer', 'name', peer, 'netns', sw]);
      await run(['ip', '-n', sw, 'link', 'set', peer, 'master', br, 'up']);
      await run(['ip', '-n', nsOf(leg.host), 'link', 'set', leg.ifname, 'up']);
      if (leg.host === 'director' && tap) {
        // uvsd is the host on this segment: the kernel only bridges its veth with uvsd's TAP.
        const dbr = `br-${leg.tap}`;
        await run(['ip', '-n', nsOf('director'), 'link', 'add', dbr, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
        await run(['ip', '-n', nsOf('director'), 'link', 'set', leg.ifname, 'master', dbr]);
        await run(['ip', '-n', nsOf('director'), 'link', 'set', dbr, 'up']);
      } else {
        await run(['ip', '-n', nsOf(leg.host), 'addr', 'add', leg.cidr, 'dev', leg.ifname]);
      }
    }
  }

  // ---- routes and host roles ----------------------------------------------------------------
  await run(['ip', '-n', nsOf('client'), 'route', 'add', 'default', 'via', clientGateway]);
  for (const r of rs) {
    await run(['ip', '-n', r.ns, 'route', 'add', 'default', 'via', rsGateway]);
  }
  if (directorGateway && !tap) await run(['ip', '-n', nsOf('director'), 'route', 'add', 'default', 'via', directorGateway]);
  if (routed) await sysctl('router', ['net.ipv4.ip_forward=1']);
  if (mode === 'dr' || mode === 'tun') {
    for (const r of rs) {
      // The LVS-DR recipe: the real server accepts the VIP but never answers ARP for it nor uses
      // it as ARP source; no reverse-path filtering of client packets arriving for the VIP.
      await sysctl(r.name, [
        'net.ipv4.conf.all.arp_ignore=1',
        'net.ipv4.conf.eth0.arp_ignore=1',
        'net.ipv4.conf.all.arp_announce=2',
        'net.ipv4.conf.eth0.arp_announce=2',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
        'net.ipv4.conf.eth0.rp_filter=0',
        'net.ipv4.conf.lo.rp_filter=0',
      ]);
      if (mode === 'dr') await run(['ip', '-n', r.ns, 'addr', 'add', `${vip}/32`, 'dev', 'lo']);
    }
  }

  // ---- the Lab object -----------------------------------------------------------------------
  const sock = join(dir, 'uvsd.sock');
  const node = process.execPath;
  const bin = (name: string) => join(REPO_ROOT, 'bin', `${name}.js`);
  const script = (name: string) => join(REPO_ROOT, 'dist', 'lab', `${name}.js`);
  let spawnSeq = 0;

  const spawn = (host: HostName, argv: readonly string[], name?: string): SpawnedProcess => {
    const label = name ?? `${argv[0]?.split('/').pop() ?? 'proc'}-${++spawnSeq}`;
    return registry.spawn(label, inNs(nsOf(host), argv), join(dir, `${host}-${label}.log`), { keep });
  };

  const waitLog = async (p: SpawnedProcess, needle: string | RegExp, timeoutMs: number, what: string) => {
    const ok = await waitFor(() => {
      const log = p.log();
      if (typeof needle === 'string' ? log.includes(needle) : needle.test(log)) return true;
      if (p.hasExited()) throw new Error(`${what} exited before it was ready:\n${tail(log)}`);
      return false;
    }, timeoutMs, 50);
    if (!ok) throw new Error(`${what} not ready within ${timeoutMs} ms:\n${tail(p.log())}`);
  };

  const uvsdArgs = (): string[] => {
    const a: string[] = [];
    if (tap) {
      for (const l of directorLegs) a.push('--tap', `${l.tap}=${l.cidr}`);
      if (directorGateway) a.push('--gateway', directorGateway);
    } else {
      for (const l of directorLegs) a.push('--iface', l.ifname);
      if (io) a.push('--io', io);
    }
    a.push('--sock', sock, '--log-level', 'info');
    return a;
  };

  const attachTaps = async (timeoutMs = 10_000, stop?: () => boolean): Promise<void> => {
    const d = nsOf('director');
    for (const l of directorLegs) {
      const present = await waitFor(async () => {
        if (stop?.()) throw new Error('uvsd exited before creating its TAPs');
        return (await tryRun(['ip', '-n', d, 'link', 'show', 'dev', l.tap!], { timeoutMs: 3000 })).code === 0;
      }, timeoutMs, 50);
      if (!present) throw new Error(`TAP ${l.tap} did not appear in ${d} within ${timeoutMs} ms`);
      await run(['ip', '-n', d, 'link', 'set', 'dev', l.tap!, 'master', `br-${l.tap}`, 'up']);
    }
  };

  const startUvsd = async (o: { timeoutMs?: number; extraArgs?: string[] } = {}): Promise<UvsdHandle> => {
    const timeoutMs = o.timeoutMs ?? 20_000;
    const argv = [node, bin('uvsd'), ...uvsdArgs(), ...(o.extraArgs ?? [])];
    const proc = spawn('director', argv, 'uvsd');
    const taps = tap ? attachTaps(timeoutMs, () => proc.hasExited()) : Promise.resolve();
    taps.catch(() => undefined);
    try {
      await waitFor(() => {
        if (proc.hasExited()) throw new Error(`uvsd exited before it was ready:\n${tail(proc.log())}`);
        return proc.log().includes('uvsd ready') && fileExists(sock);
      }, timeoutMs, 50).then((ok) => {
        if (!ok) throw new Error(`uvsd not ready within ${timeoutMs} ms:\n${tail(proc.log())}`);
      });
      await taps;
    } catch (err) {
      await proc.stop(2000);
      throw err;
    }
    return { argv, proc, log: () => proc.log(), stop: () => proc.stop(5000) };
  };

  const svc = (proto: '-t' | '-u', port: number) => [proto, `${vip}:${port}`];
  const fwdFlag = mode === 'nat' ? '-m' : mode === 'dr' ? '-g' : mode === 'tun' ? '-i' : '-b';
  const rules = (sched = 'wrr', o: { udp?: boolean; tunType?: 'ipip' | 'gue' | 'gre' } = {}): string[][] => {
    const fwd = mode !== 'tun' || !o.tunType || o.tunType === 'ipip' ? [fwdFlag]
      : o.tunType === 'gue' ? ['-i', '--tun-type', 'gue', '--tun-port', String(LAB_GUE_PORT)] : ['-i', '--tun-type', 'gre'];
    const out: string[][] = [];
    const protos: ['-t' | '-u', 'http' | 'udp'][] = [['-t', 'http']];
    if (o.udp ?? true) protos.push(['-u', 'udp']);
    for (const [proto, kind] of protos) {
      const port = kind === 'http' ? 80 : 53;
      out.push(['-A', ...svc(proto, port), '-s', sched]);
      for (const r of rs) {
        const rport = kind === 'http' ? r.httpPort : r.udpPort;
        out.push(['-a', ...svc(proto, port), '-r', `${r.addr}:${rport}`, ...fwd, '-w', String(r.weight)]);
      }
      if (mode === 'fullnat') out.push(['-P', ...svc(proto, port), '-z', LIP]);
    }
    return out;
  };

  const uvsadm = (args: readonly string[]) => tryRun([node, bin('uvsadm'), '--sock', sock, ...args], { timeoutMs: 10_000 });

  const startServers = async (): Promise<void> => {
    const started: Promise<void>[] = [];
    for (const r of rs) {
      const http = spawn(r.name, [node, script('http-server'), '--name', r.name, '--port', String(r.httpPort), '--tls-port', String(LAB_TLS_PORT),
        '--ftp-port', String(LAB_FTP_PORT)], 'http');
      httpProcs.set(r.name, http);
      const udpAddrs = ['--addr', r.addr];
      if (mode === 'dr' || mode === 'tun') udpAddrs.push('--addr', vip);
      const udp = spawn(r.name, [node, script('udp-echo'), '--name', r.name, '--port', String(r.udpPort), ...udpAddrs], 'udp');
      started.push(waitLog(http, /listening (?!tls)\S+$/m, 10_000, `${r.name} http server`), waitLog(http, 'listening tls', 10_000, `${r.name} https server`),
        waitLog(http, / ftp$/m, 10_000, `${r.name} ftp server`));
      started.push(waitLog(udp, `listening ${r.addr}:`, 10_000, `${r.name} udp echo`));
    }
    await Promise.all(started);
  };

  const httpProcs = new Map<string, SpawnedProcess>();
  let httpRestarts = 0;
  const startHttp = async (name: 'rs1' | 'rs2'): Promise<SpawnedProcess> => {
    const r = rs.find((x) => x.name === name)!;
    const http = spawn(r.name, [node, script('http-server'), '--name', r.name, '--port', String(r.httpPort), '--tls-port', String(LAB_TLS_PORT),
      '--ftp-port', String(LAB_FTP_PORT)], `http-${++httpRestarts}`);
    httpProcs.set(r.name, http);
    await Promise.all([waitLog(http, /listening (?!tls)\S+$/m, 10_000, `${r.name} http server`), waitLog(http, 'listening tls', 10_000, `${r.name} https server`),
      waitLog(http, / ftp$/m, 10_000, `${r.name} ftp server`)]);
    return http;
  };

  const startTunnelEndpoints = async (): Promise<void> => {
    await Promise.all(
      rs.map(async (r) => {
        // IPIP, and GUE on LAB_GUE_PORT and GRE too: `-i --tun-type gue --tun-port 6080` or `--tun-type gre` work as well.
        const p = spawn(r.name, [node, bin('uvs'), 'tunnel-endpoint', '--iface', 'eth0', '--vip', vip, '--dev', TUN_DEV,
          '--gue-port', String(LAB_GUE_PORT), '--gre'], 'tunnel-endpoint');
        await waitLog(p, 'tunnel-endpoint ready', 15_000, `${r.name} tunnel endpoint`);
      }),
    );
  };

  const lab: Lab = {
    mode,
    portKind,
    prefix,
    ns,
    hosts,
    dir,
    sock,
    clientAddr: CLIENT,
    vip,
    tcpPort: 80,
    udpPort: 53,
    dip: DIP,
    ...(mode === 'nat' || mode === 'fullnat' ? { dipClient: DIP_CLIENT } : {}),
    ...(router ? { router } : {}),
    ...(mode === 'fullnat' ? { lip: LIP } : {}),
    clientGateway,
    rs,
    tunDev: TUN_DEV,
    exec: (host, argv, opts) => run(inNs(nsOf(host), argv), opts),
    spawn,
    uvsdArgs,
    startUvsd,
    attachTaps: (timeoutMs) => (tap ? attachTaps(timeoutMs) : Promise.resolve()),
    rules,
    uvsadm,
    startServers,
    httpProc: (name) => httpProcs.get(name),
    startHttp,
    startTunnelEndpoints,
    enterCommands: () => hosts.map((h) => `${h.padEnd(9)} ip netns exec ${nsOf(h)} bash`),
    teardown: () => registry.cleanup(),
    teardownSync: () => registry.cleanupSync(),
  };
  return lab;
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Formats uvsadm args the way a user types them (`uvsadm -A -t 192.168.10.110:80 -s wrr`). */
export function formatCommand(args: readonly string[], cmd = 'uvsadm'): string {
  return [cmd, ...args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))].join(' ');
}


/**
 * `uvs bench modes`: every forwarding mode of uvs next to the kernel on one topology, in one run.
 *
 * Cases, in order (each configures the director namespace, measures, and undoes its config):
 *   kfwd     kernel IPv4 forwarding (route VIP → real server, which owns the VIP)   DR/TUN baseline
 *   knat     nftables DNAT + conntrack                                               NAT baseline
 *   kfnat    nftables DNAT + SNAT + conntrack                                        FULLNAT baseline
 *   haproxy  haproxy mode tcp on the director (1 thread, CPU1)                       connection setup
 *   dr, tun, nat, fullnat   uvsd --iface eth0 --iface eth1 on CPU1, per speed variant
 * Per case: UDP pps at full offered load (median of reps) with the director core's CPU share,
 * one-way latency at a fixed rate (kernel receive timestamps at the server), and wrk new-conn/s.
 */
import { cpus, hostname, release } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { REPO_ROOT, inNs, Registry, run, waitFor, type SpawnedProcess } from '../../lab/netns.js';
import { ADDR, buildTopo, FOREIGN_MAC, setNeighbours, type BenchTopo } from './topology.js';
import { buildTool, cpuDelta, median, readCpu, readPid, runGen, runLatency, runWrk, sleep } from './measure.js';
import type { CaseKind, CaseResult, RunResult } from './report.js';

export interface SuiteOptions {
  quick: boolean;
  modes: string[];
  variants: string[];
  seconds: number;
  reps: number;
  flows: number;
  latencyRate: number;
  latencySeconds: number;
  cpsSeconds: number;
  baselines: boolean;
  cps: boolean;
  latency: boolean;
  cpuProf: string | undefined;
  log: (msg: string) => void;
}

/** uvs speed variants: UVS_PACKET_OPTS for uvsd plus whether peers use the foreign MAC. */
export const VARIANTS: Record<string, { env: string; foreign: boolean; about: string; io?: 'xdp' }> = {
  default: { env: '', foreign: false, about: 'as shipped' },
  mac: { env: `mac:eth0=${FOREIGN_MAC.eth0},mac:eth1=${FOREIGN_MAC.eth1}`, foreign: true, about: 'frames to a MAC the director kernel does not own' },
  bypass: { env: 'qdisc-bypass', foreign: false, about: 'PACKET_QDISC_BYPASS on transmit' },
  'mac+bypass': { env: `mac:eth0=${FOREIGN_MAC.eth0},mac:eth1=${FOREIGN_MAC.eth1},qdisc-bypass`, foreign: true, about: 'both' },
  xdp: { env: '', foreign: false, about: 'AF_XDP instead of AF_PACKET (uvsd --io xdp)', io: 'xdp' },
};

const LABEL: Record<string, string> = {
  kfwd: 'kernel IPv4 forwarding', knat: 'kernel nftables DNAT + conntrack', kfnat: 'kernel nftables DNAT+SNAT + conntrack',
  haproxy: 'haproxy 2.6 mode tcp', dr: 'uvs DR', tun: 'uvs TUN (IPIP)', nat: 'uvs NAT', fullnat: 'uvs FULLNAT',
};

const FWD_FLAG: Record<string, string> = { dr: '-g', tun: '-i', nat: '-m', fullnat: '-b' };

export async function runSuite(o: SuiteOptions, registry: Registry): Promise<RunResult> {
  const started = Date.now();
  o.log('building topology …');
  const t = await buildTopo(registry);
  const tool = buildTool(t.dir);
  const nginx = await startNginx(t);
  const result: RunResult = {
    version: 1,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model.trim() ?? 'cpu', cores: cpus().length, kernel: release(), node: process.version, host: hostname() },
    options: { quick: o.quick, flows: o.flows, seconds: o.seconds, reps: o.reps, latencyRate: o.latencyRate, variants: o.variants },
    cases: [],
  };
  const plan: { id: string; kind: CaseKind; variant: string }[] = [];
  if (o.baselines) {
    plan.push({ id: 'kfwd', kind: 'kernel', variant: '' }, { id: 'knat', kind: 'kernel', variant: '' }, { id: 'kfnat', kind: 'kernel', variant: '' });
    if (o.cps) plan.push({ id: 'haproxy', kind: 'proxy', variant: '' });
  }
  for (const v of o.variants) for (const m of o.modes) plan.push({ id: m, kind: 'uvs', variant: v });
  for (const c of plan) {
    o.log(`${LABEL[c.id]}${c.variant ? ` [${c.variant}]` : ''} …`);
    const res: CaseResult = { id: c.id, label: LABEL[c.id]!, kind: c.kind, variant: c.variant };
    let undo: (() => Promise<void>) | undefined;
    try {
      const setup = await setupCase(t, c.id, c.variant, o);
      undo = setup.undo;
      const dstMac = c.kind === 'uvs' && VARIANTS[c.variant]!.foreign ? FOREIGN_MAC.eth0 : t.mac.d0;
      if (c.id !== 'haproxy') {
        res.pps = await measurePps(t, tool, dstMac, setup.pid, o);
        o.log(`  ${(res.pps.pps / 1000).toFixed(0)}k pps (offered ${(res.pps.offered / 1000).toFixed(0)}k), director ${(res.pps.dirCpu * 100).toFixed(0)} % of CPU1 (core ${(res.pps.cpuBusy * 100).toFixed(0)} % busy) → ${(res.pps.perCpuSec / 1000).toFixed(0)}k pkt per CPU-s`);
        if (o.latency) {
          const g = { ns: t.ns.c, ifname: 'eth0', dstMac, srcIp: ADDR.client, dstIp: ADDR.vip, dport: ADDR.udpPort, flows: o.flows, seconds: o.latencySeconds, cpu: 0 };
          res.latency = await runLatency(tool, t.ns.s, g, o.latencyRate);
          o.log(`  latency p50 ${res.latency.p50} µs, p99 ${res.latency.p99} µs, p99.9 ${res.latency.p999} µs (n=${res.latency.n})`);
        }
      }
      if (o.cps && c.id !== 'tun') {
        await flushConntrack(t);
        const a = readCpu(1);
        const pa = readPid(setup.pid);
        const w = await runWrk(t.ns.c, `http://${ADDR.vip}:${ADDR.tcpPort}/`, o.cpsSeconds, 32);
        const d = cpuDelta(a, readCpu(1), pa, readPid(setup.pid));
        res.cps = { cps: w.cps, errors: w.errors, cpuBusy: d.busy, dirCpu: directorShare(d), perCpuSec: directorShare(d) > 0 ? w.cps / directorShare(d) : NaN };
        o.log(`  ${w.cps.toFixed(0)} new conn/s${w.errors ? ` (${w.errors} errors)` : ''}, director core ${(d.busy * 100).toFixed(0)} % busy`);
      }
    } catch (e) {
      res.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      o.log(`  error: ${res.error}`);
    } finally {
      if (undo) await undo().catch((e: unknown) => o.log(`  cleanup: ${String(e)}`));
    }
    result.cases.push(res);
  }
  await nginx.stop(2000);
  o.log(`suite done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return result;
}

/**
 * The director's share of CPU1: softirq + irq time on that core (the kernel's receive and
 * forwarding work, steered there by RPS) plus the director process's own user + system time
 * (uvsd, haproxy). Foreign processes that happen to run on CPU1 are not counted.
 */
function directorShare(d: ReturnType<typeof cpuDelta>): number {
  // Without CONFIG_IRQ_TIME_ACCOUNTING a softirq that interrupts uvsd is also in uvsd's own
  // runtime, so the sum can exceed the core: cap at one CPU.
  return Math.min(1, d.softirq + d.procUser + d.procSys);
}

async function flushConntrack(t: BenchTopo): Promise<void> {
  await t.tryExec('d', ['conntrack', '-F'], 5000);
}

async function measurePps(t: BenchTopo, tool: string, dstMac: string, pid: number | undefined, o: SuiteOptions) {
  const warm = o.quick ? 0.7 : 1.0;
  const runs: number[] = [];
  const offered: number[] = [];
  const cpu: ReturnType<typeof cpuDelta>[] = [];
  for (let i = 0; i < o.reps; i++) {
    const gen = runGen({ tool, ns: t.ns.c, ifname: 'eth0', dstMac, srcIp: ADDR.client, dstIp: ADDR.vip, dport: ADDR.udpPort, flows: o.flows, rate: 0, seconds: warm + o.seconds + 0.3, cpu: 0 });
    await sleep(warm * 1000);
    const r0 = await t.rxPackets('s', 'eth0');
    const c0 = readCpu(1);
    const p0 = readPid(pid);
    const t0 = process.hrtime.bigint();
    await sleep(o.seconds * 1000);
    const r1 = await t.rxPackets('s', 'eth0');
    const c1 = readCpu(1);
    const p1 = readPid(pid);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const g = await gen;
    runs.push((r1 - r0) / dt);
    offered.push(g.sent / g.seconds);
    cpu.push(cpuDelta(c0, c1, p0, p1));
    await sleep(200);
  }
  const pps = median(runs);
  const busy = median(cpu.map((c) => c.busy));
  return {
    pps,
    runs: runs.map((x) => Math.round(x)),
    offered: median(offered),
    cpuBusy: busy,
    softirq: median(cpu.map((c) => c.softirq)),
    procUser: median(cpu.map((c) => c.procUser)),
    procSys: median(cpu.map((c) => c.procSys)),
    dirCpu: median(cpu.map(directorShare)),
    perCpuSec: median(runs.map((x, i) => (directorShare(cpu[i]!) > 0 ? x / directorShare(cpu[i]!) : NaN))),
  };
}

async function startNginx(t: BenchTopo): Promise<SpawnedProcess> {
  const conf = join(t.dir, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${join(t.dir, 'nginx.pid')};
error_log ${join(t.dir, 'nginx-error.log')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${t.dir}; proxy_temp_path ${t.dir}; fastcgi_temp_path ${t.dir}; uwsgi_temp_path ${t.dir}; scgi_temp_path ${t.dir};
  server { listen 80 backlog=4096 reuseport; location / { return 200 "ok\\n"; } }
}
`);
  const p = t.registry.spawn('nginx', inNs(t.ns.s, ['taskset', '-c', '0', 'nginx', '-c', conf]), join(t.dir, 'nginx.log'));
  const ok = await waitFor(async () => (await t.tryExec('s', ['sh', '-c', `ss -ltn | grep -q ':80 '`], 3000)).code === 0 || p.hasExited(), 10_000, 100);
  if (!ok || p.hasExited()) throw new Error(`nginx did not start: ${p.log().slice(-300)}`);
  return p;
}

interface CaseSetup {
  pid: number | undefined;
  undo: () => Promise<void>;
}

async function setupCase(t: BenchTopo, id: string, variant: string, o: SuiteOptions): Promise<CaseSetup> {
  const d = (argv: string[]) => t.exec('d', argv);
  const sysctlFwd = (on: boolean) => d(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${on ? 1 : 0}`]);
  await flushConntrack(t);
  if (id === 'kfwd') {
    await sysctlFwd(true);
    await d(['ip', 'route', 'replace', `${ADDR.vip}/32`, 'via', ADDR.server, 'dev', 'eth1']);
    return { pid: undefined, undo: async () => { await t.tryExec('d', ['ip', 'route', 'del', `${ADDR.vip}/32`]); } };
  }
  if (id === 'knat' || id === 'kfnat') {
    await sysctlFwd(true);
    const snat = id === 'kfnat' ? `  chain post { type nat hook postrouting priority 100; policy accept; ct status dnat snat to ${ADDR.dirServer}; }\n` : '';
    await run(inNs(t.ns.d, ['nft', '-f', '-']), {
      input: `table ip uvsbench {\n  chain pre { type nat hook prerouting priority -100; policy accept; ip daddr ${ADDR.vip} dnat to ${ADDR.server}; }\n${snat}}\n`,
    });
    return { pid: undefined, undo: async () => { await t.tryExec('d', ['nft', 'delete', 'table', 'ip', 'uvsbench']); await flushConntrack(t); } };
  }
  if (id === 'haproxy') {
    await d(['ip', 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
    const cfg = join(t.dir, 'haproxy.cfg');
      writeFileSync(cfg, `global\n  nbthread 1\n  maxconn 8000\n  log stderr format short local0 err\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n` +
      `frontend f\n  bind ${ADDR.vip}:${ADDR.tcpPort}\n  default_backend b\nbackend b\n  server s1 ${ADDR.server}:${ADDR.tcpPort}\n`);
    const p = t.registry.spawn('haproxy', inNs(t.ns.d, ['taskset', '-c', '1', 'haproxy', '-db', '-f', cfg]), join(t.dir, 'haproxy.log'));
    await waitFor(async () => (await t.tryExec('d', ['sh', '-c', `ss -ltn | grep -q '${ADDR.vip}:80 '`], 3000)).code === 0 || p.hasExited(), 10_000, 100);
    if (p.hasExited()) throw new Error(`haproxy did not start: ${p.log().slice(-300)}`);
    return { pid: p.pid, undo: async () => { await p.stop(2000); await t.tryExec('d', ['ip', 'addr', 'del', `${ADDR.vip}/32`, 'dev', 'lo']); } };
  }
  // uvs modes.
  const v = VARIANTS[variant];
  if (!v) throw new Error(`unknown variant ${variant} (${Object.keys(VARIANTS).join(', ')})`);
  const routed = id === 'dr' || id === 'tun';
  await sysctlFwd(routed); // DR/TUN replies go back through the director's kernel
  if (v.foreign) {
    await setNeighbours(t, { clientGw: FOREIGN_MAC.eth0, serverGw: routed ? t.mac.d1 : FOREIGN_MAC.eth1, lip: FOREIGN_MAC.eth1 });
  }
  const sock = join(t.dir, `uvsd-${id}-${variant}.sock`);
  const node = process.execPath;
  const nodeArgs = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `uvsd-${id}-${variant}.cpuprofile`] : [];
  const env = { ...process.env, UVS_PACKET_OPTS: v.env };
  const p = t.registry.spawn(`uvsd-${id}-${variant}`, inNs(t.ns.d, ['taskset', '-c', '1', node, ...nodeArgs, join(REPO_ROOT, 'bin', 'uvsd.js'),
    '--iface', 'eth0', '--iface', 'eth1', ...(v.io ? ['--io', v.io] : []), '--sock', sock, '--log-level', 'info']), join(t.dir, `uvsd-${id}-${variant}.log`), { env });
  const ok = await waitFor(() => p.hasExited() || p.log().includes('uvsd ready'), 20_000, 50);
  if (!ok || p.hasExited()) throw new Error(`uvsd did not start: ${p.log().slice(-400)}`);
  const adm = async (args: string[]) => {
    await run([node, join(REPO_ROOT, 'bin', 'uvsadm.js'), '--sock', sock, ...args], { timeoutMs: 10_000 });
  };
  for (const [proto, port] of [['-u', ADDR.udpPort], ['-t', ADDR.tcpPort]] as const) {
    const svc = `${ADDR.vip}:${port}`;
    await adm(['-A', proto, svc, '-s', 'rr']);
    await adm(['-a', proto, svc, '-r', `${ADDR.server}:${port}`, FWD_FLAG[id]!]);
    if (id === 'fullnat') await adm(['-P', proto, svc, '-z', ADDR.lip]);
  }
  await sleep(300);
  return {
    pid: p.pid,
    undo: async () => {
      await p.stop(5000);
      if (v.foreign) await setNeighbours(t, { clientGw: t.mac.d0, serverGw: t.mac.d1, lip: t.mac.d1 });
    },
  };
}

/**
 * The bench topology of `uvs bench modes`: three namespaces joined by plain veth pairs (no
 * bridges, so every hop is cheap and the director's work is the only thing in the middle).
 *
 *   client C  eth0 192.168.10.6/24 ── eth0 192.168.10.100/24  director D  eth1 10.0.0.8/24 ── eth0 10.0.0.7/24  server S
 *   C: default via 192.168.10.100          S: default via 10.0.0.8; VIP 172.16.0.100/32 on lo
 *
 * The VIP is off-link for the client (routed through the director), so no ARP for it is ever
 * needed; the FULLNAT local address 10.0.0.50 sits on the server segment (static neighbour on S).
 * RPS pins the director's receive work to CPU1 (its veths: rps_cpus=2) and everything on the
 * client and the server to CPU0 (rps_cpus=1); uvsd, haproxy run with `taskset -c 1`, generators,
 * sinks, nginx and wrk with `taskset -c 0`. The server drops the benchmark's UDP and IPIP at its
 * netdev ingress (counted by the interface's rx counter first) so no ICMP comes back.
 *
 * Everything lives in a Registry (processes, namespaces, temp dir); cleanup is idempotent.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNs, inNs, Registry, run, tryRun } from '../../lab/netns.js';

export const ADDR = {
  client: '192.168.10.6',
  dirClient: '192.168.10.100',
  dirServer: '10.0.0.8',
  server: '10.0.0.7',
  vip: '172.16.0.100',
  lip: '10.0.0.50',
  udpPort: 9,
  tcpPort: 80,
} as const;

/** MACs the director's kernel does not own (the "foreign MAC" speed option). */
export const FOREIGN_MAC = { eth0: '02:75:76:73:00:01', eth1: '02:75:76:73:00:02' } as const;

export interface BenchTopo {
  readonly registry: Registry;
  readonly dir: string;
  readonly ns: { c: string; d: string; s: string };
  readonly mac: { c: string; d0: string; d1: string; s: string };
  exec(host: 'c' | 'd' | 's', argv: readonly string[], timeoutMs?: number): Promise<string>;
  tryExec(host: 'c' | 'd' | 's', argv: readonly string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** rx_packets of an interface inside a namespace. */
  rxPackets(host: 'c' | 'd' | 's', ifname: string): Promise<number>;
}

async function macOf(ns: string, ifname: string): Promise<string> {
  const { stdout } = await run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', ifname]);
  const j = JSON.parse(stdout) as { address: string }[];
  return j[0]!.address;
}

export async function buildTopo(registry: Registry): Promise<BenchTopo> {
  const prefix = `uvsb-${process.pid}-${randomBytes(2).toString('hex')}-`;
  const ns = { c: `${prefix}c`, d: `${prefix}d`, s: `${prefix}s` };
  const dir = mkdtempSync(join(tmpdir(), 'uvs-bench-'));
  registry.addDir(dir);
  for (const n of [ns.c, ns.d, ns.s]) {
    registry.addNs(n);
    await createNs(n);
  }
  const sh = (n: string, script: string) => run(inNs(n, ['sh', '-c', script]));
  // veth pairs, created in D, peers moved out and renamed.
  await run(['ip', '-n', ns.d, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'ceth0', 'netns', ns.c]);
  await run(['ip', '-n', ns.c, 'link', 'set', 'ceth0', 'name', 'eth0']);
  await run(['ip', '-n', ns.d, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'seth0', 'netns', ns.s]);
  await run(['ip', '-n', ns.s, 'link', 'set', 'seth0', 'name', 'eth0']);
  for (const n of [ns.c, ns.d, ns.s]) {
    await run(inNs(n, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1',
      'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']));
  }
  await run(['ip', '-n', ns.c, 'addr', 'add', `${ADDR.client}/24`, 'dev', 'eth0']);
  await run(['ip', '-n', ns.d, 'addr', 'add', `${ADDR.dirClient}/24`, 'dev', 'eth0']);
  await run(['ip', '-n', ns.d, 'addr', 'add', `${ADDR.dirServer}/24`, 'dev', 'eth1']);
  await run(['ip', '-n', ns.s, 'addr', 'add', `${ADDR.server}/24`, 'dev', 'eth0']);
  await run(['ip', '-n', ns.s, 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
  for (const [n, ifs] of [[ns.c, ['eth0']], [ns.d, ['eth0', 'eth1']], [ns.s, ['eth0']]] as const) {
    for (const i of ifs) await run(['ip', '-n', n, 'link', 'set', i, 'up']);
  }
  await run(['ip', '-n', ns.c, 'route', 'add', 'default', 'via', ADDR.dirClient]);
  await run(['ip', '-n', ns.s, 'route', 'add', 'default', 'via', ADDR.dirServer]);
  await run(inNs(ns.s, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2',
    'net.core.somaxconn=4096', 'net.ipv4.tcp_max_syn_backlog=4096']));
  await run(inNs(ns.c, ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']));
  // Receive work: the director's on CPU1, the others' on CPU0.
  await sh(ns.d, 'echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus; echo 2 > /sys/class/net/eth1/queues/rx-0/rps_cpus');
  await sh(ns.c, 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus');
  await sh(ns.s, 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus');
  await run(inNs(ns.s, ['nft', '-f', '-']), {
    input: `table netdev uvsbench_sink {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    udp dport ${ADDR.udpPort} drop
    ip protocol 4 drop
  }
}
`,
  });
  const mac = { c: await macOf(ns.c, 'eth0'), d0: await macOf(ns.d, 'eth0'), d1: await macOf(ns.d, 'eth1'), s: await macOf(ns.s, 'eth0') };
  // Static neighbours both ways so no ARP happens during a measurement.
  await run(['ip', '-n', ns.d, 'neigh', 'replace', ADDR.client, 'lladdr', mac.c, 'dev', 'eth0', 'nud', 'permanent']);
  await run(['ip', '-n', ns.d, 'neigh', 'replace', ADDR.server, 'lladdr', mac.s, 'dev', 'eth1', 'nud', 'permanent']);
  const topo: BenchTopo = {
    registry,
    dir,
    ns,
    mac,
    exec: async (host, argv, timeoutMs = 20_000) => (await run(inNs(ns[host], argv), { timeoutMs })).stdout,
    tryExec: (host, argv, timeoutMs = 20_000) => tryRun(inNs(ns[host], argv), { timeoutMs }),
    rxPackets: async (host, ifname) => {
      const { stdout } = await run(['ip', '-n', ns[host], '-s', '-j', 'link', 'show', 'dev', ifname]);
      const j = JSON.parse(stdout) as { stats64?: { rx?: { packets?: number } } }[];
      return j[0]?.stats64?.rx?.packets ?? 0;
    },
  };
  await setNeighbours(topo, { clientGw: mac.d0, serverGw: mac.d1, lip: mac.d1 });
  return topo;
}

/** Where the client and the server send frames for the director (real or foreign MACs). */
export async function setNeighbours(t: BenchTopo, m: { clientGw: string; serverGw: string; lip: string }): Promise<void> {
  await run(['ip', '-n', t.ns.c, 'neigh', 'replace', ADDR.dirClient, 'lladdr', m.clientGw, 'dev', 'eth0', 'nud', 'permanent']);
  await run(['ip', '-n', t.ns.s, 'neigh', 'replace', ADDR.dirServer, 'lladdr', m.serverGw, 'dev', 'eth0', 'nud', 'permanent']);
  await run(['ip', '-n', t.ns.s, 'neigh', 'replace', ADDR.lip, 'lladdr', m.lip, 'dev', 'eth0', 'nud', 'permanent']);
}

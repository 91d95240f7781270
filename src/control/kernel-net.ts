/**
 * `--iface` mode: the director's addresses and routes come from the kernel's configuration of
 * those interfaces (iproute2's JSON output), and uvsd keeps the host kernel off the flows it
 * owns with an nftables table of its own, hooked before routing (AF_PACKET still sees the
 * frames): packets to VIPs and FULLNAT local addresses, NAT replies from real servers that
 * are not addressed to the host itself, and real servers' answers (from a VIP) to uvsd's
 * health-check probes (TCP/UDP ports 61000-61255, src/pipeline/probe.ts), which the host's stack
 * would otherwise answer (a RST, a port unreachable). The table is removed when uvsd exits.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseIp, ipToString } from '../model/addr.js';
import type { RouteTable } from '../model/routes.js';

const run = promisify(execFile);

export interface IfaceAddr {
  addr: number;
  prefix: number;
}

/** IPv4 addresses of one interface, or of every interface of this namespace without `ifname`. */
export async function ifaceAddrs(ifname?: string): Promise<IfaceAddr[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show', ...(ifname === undefined ? [] : ['dev', ifname])]);
  const j = JSON.parse(stdout) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  const out: IfaceAddr[] = [];
  for (const l of j) for (const a of l.addr_info ?? []) if (a.family === 'inet') out.push({ addr: parseIp(a.local), prefix: a.prefixlen });
  return out;
}

/** Every IPv4 address of the host (all interfaces of this network namespace). */
export async function hostAddrs(): Promise<number[]> {
  return (await ifaceAddrs()).map((a) => a.addr);
}

/** Adds the kernel's gateway routes through the given interfaces (connected ones come from the addresses). */
export async function loadKernelRoutes(routes: RouteTable, ifIndexByName: Map<string, number>): Promise<void> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'main']);
  const j = JSON.parse(stdout) as { dst: string; gateway?: string; dev?: string; prefsrc?: string }[];
  for (const r of j) {
    if (!r.gateway || !r.dev) continue;
    const port = ifIndexByName.get(r.dev);
    if (port === undefined) continue;
    let net = 0;
    let prefix = 0;
    if (r.dst !== 'default') {
      const [a, p] = r.dst.split('/');
      net = parseIp(a!);
      prefix = p === undefined ? 32 : Number(p);
      if (net < 0) continue;
    }
    routes.add({ net, prefix, gw: parseIp(r.gateway), port, src: r.prefsrc ? parseIp(r.prefsrc) : 0 });
  }
}

export class HostGuard {
  readonly table: string;
  private installed = false;
  private last = '';

  constructor(table = `uvsd_${process.pid}`) {
    this.table = table;
  }

  private async nft(script: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const child = execFile('nft', ['-f', '-'], (err, _o, stderr) => {
        if (err) reject(new Error(`nft: ${stderr.trim() || err.message}`));
        else resolve();
      });
      child.stdin!.end(script);
    });
  }

  async install(): Promise<void> {
    await this.nft(`table ip ${this.table} {
  set owned { type ipv4_addr; }
  set natsrc { type ipv4_addr; }
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip daddr @owned drop
    ip saddr @natsrc fib daddr type != local drop
    ip saddr @owned tcp dport 61000-61255 fib daddr type local drop
    ip saddr @owned udp dport 61000-61255 fib daddr type local drop
  }
}
`);
    this.installed = true;
  }

  /** Replaces the set contents (called after every rule change). */
  async update(owned: number[], natRips: number[]): Promise<void> {
    if (!this.installed) return;
    const key = owned.join(',') + '|' + natRips.join(',');
    if (key === this.last) return;
    this.last = key;
    const el = (xs: number[]): string => xs.map(ipToString).join(', ');
    let s = `flush set ip ${this.table} owned\nflush set ip ${this.table} natsrc\n`;
    if (owned.length) s += `add element ip ${this.table} owned { ${el(owned)} }\n`;
    if (natRips.length) s += `add element ip ${this.table} natsrc { ${el(natRips)} }\n`;
    await this.nft(s);
  }

  async remove(): Promise<void> {
    if (!this.installed) return;
    this.installed = false;
    await this.nft(`delete table ip ${this.table}\n`).catch(() => {});
  }

  /** Synchronous removal for process 'exit' paths. */
  removeSync(): void {
    if (!this.installed) return;
    this.installed = false;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { execFileSync } = require_('node:child_process') as typeof import('node:child_process');
      execFileSync('nft', ['delete', 'table', 'ip', this.table], { stdio: 'ignore' });
    } catch { /* best effort */ }
  }
}

import { createRequire } from 'node:module';
const require_ = createRequire(import.meta.url);

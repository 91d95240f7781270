/**
 * TUN real servers behind a router whose link to them has a smaller MTU (1300): the director's
 * IPIP packets of a full-size client segment no longer fit there, and the router sends the
 * director ICMP fragmentation-needed about them. As kernel IPVS (ip_vs_in_icmp, "errors for our
 * tunnel"), uvsd turns that into fragmentation-needed from the VIP to the client (MTU − 20), so
 * the client's TCP sends smaller segments and an upload gets through; without it the upload
 * stalls (the router drops every big segment, the client never hears why).
 *
 * Topology: the FULLNAT lab's (client ─ director ─ router ─ real servers on 10.0.1.0/24) used
 * with a TUN dest; the real servers' replies (from the VIP, to the client) go back through the
 * router and the director's kernel. Over AF_XDP (the default: the router's error reaches uvsd
 * through its ARP/ICMP copy socket) and over AF_PACKET.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { httpGet } from '../../src/lab/client.js';
import { inNs, tryRun } from '../../src/lab/netns.js';
import { tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;
const METRICS_PORT = 9143;

for (const io of [undefined, 'packet'] as const) {
  describe.skipIf(!isRoot)(`TUN behind a router with a smaller MTU${io ? ` (--io ${io})` : ''}`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log()) : '(not started)'}`;
    const metric = async (name: string): Promise<number> => {
      const m = await lab!.exec('director', ['curl', '-s', '--max-time', '2', `http://127.0.0.1:${METRICS_PORT}/metrics`], { check: false });
      const line = m.stdout.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? NaN : Number(line.split(' ')[1]);
    };

    beforeAll(async () => {
      lab = await buildLab('fullnat', { portKind: 'iface', ...(io ? { io } : {}) });
      const l = lab;
      const sysctl = (h: 'director' | 'rs1' | 'rs2', kv: string[]) => l.exec(h, ['sysctl', '-q', '-w', ...kv]);
      // Real servers: the client's packets arrive on the tunnel device, replies leave by eth0.
      for (const h of ['rs1', 'rs2'] as const) {
        await sysctl(h, ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.eth0.rp_filter=0']);
        await l.exec(h, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1300']);
      }
      // The router's link to the real servers is the narrow one; it routes the replies (from the
      // VIP) back through the director, whose kernel forwards them to the client.
      await l.exec('router', ['ip', 'link', 'set', 'dev', 'eth1', 'mtu', '1300']);
      await l.exec('router', ['ip', 'route', 'add', '192.168.10.0/24', 'via', l.dip]);
      await sysctl('director', ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
        'net.ipv4.conf.eth0.rp_filter=0', 'net.ipv4.conf.eth1.rp_filter=0']);
      await l.startTunnelEndpoints();
      await l.startServers();
      uvsd = await l.startUvsd({ timeoutMs: 20_000, extraArgs: ['--metrics', `127.0.0.1:${METRICS_PORT}`] });
      const svc = `${l.vip}:${l.tcpPort}`;
      for (const args of [['-A', '-t', svc, '-s', 'rr'], ['-a', '-t', svc, '-r', `${l.rs[0]!.addr}:80`, '-i']]) {
        const r = await l.uvsadm(args);
        if (r.code !== 0) throw new Error(ctx(`uvsadm ${args.join(' ')}: ${r.stderr}`));
      }
    }, 90_000);

    afterAll(async () => {
      await uvsd?.stop();
      await lab?.teardown();
    }, 30_000);

    it('a small request goes through the tunnel (replies by the router and the director\'s kernel)', async () => {
      const a = await httpGet(lab!.ns.client!, `http://${lab!.vip}:${lab!.tcpPort}/`, 5000);
      expect(a.ok, ctx(`request: ${a.error ?? a.body}`)).toBe(true);
      expect(a.rs).toBe('rs1');
      expect(a.peer).toBe(lab!.clientAddr);
    });

    it('a 200 KB upload gets through: the router\'s fragmentation-needed reaches the client as one from the VIP (MTU 1280)', async () => {
      const l = lab!;
      const size = 200_000;
      const r = await tryRun(inNs(l.ns.client!, ['sh', '-c',
        `head -c ${size} /dev/zero | curl -sS --noproxy '*' --max-time 12 -H 'Connection: close' --data-binary @- http://${l.vip}:${l.tcpPort}/`]), { timeoutMs: 20_000 });
      expect(r.code, ctx(`upload: ${r.stderr}`)).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`bytes=${size}$`, 'm'));
      expect(await metric('uvs_tunnel_icmp_relayed_total'), ctx('relayed errors')).toBeGreaterThanOrEqual(1);
      expect(await metric('uvs_path_mtu_learnt_entries')).toBe(1);
      // The client's kernel keeps the MTU the VIP reported.
      const route = await l.exec('client', ['ip', 'route', 'get', l.vip]);
      expect(route.stdout).toMatch(/mtu 1280/);
    }, 40_000);
  });
}

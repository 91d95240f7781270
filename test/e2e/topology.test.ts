/**
 * The lab topologies on their own, without a director: each builds, its plumbing works where it
 * does not need uvsd (segments, router, gateways, the DR real-server recipe, the real servers,
 * the TUN real servers' userspace IPIP endpoint), and teardown leaves nothing behind.
 *
 * In tap mode uvsd would create the TAPs; here veth pairs named like them (tapc, taps) stand in,
 * with the director addresses on their other ends, so the lab's own TAP bridging is what is tested.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildLab, type Lab, type LabMode, type PortKind } from '../../src/lab/topology.js';
import { CLIENT_SCRIPT, httpGet, udpRequest } from '../../src/lab/client.js';
import { listNs, REPO_ROOT, waitFor } from '../../src/lab/netns.js';

const isRoot = process.getuid?.() === 0;
const node = process.execPath;
const UDP_ECHO = join(REPO_ROOT, 'dist', 'lab', 'udp-echo.js');
const IPIP_PROBE = join(REPO_ROOT, 'dist', 'lab', 'ipip-probe.js');

/** A UDP echo on a lab host (port 7), so reachability can be checked without ping. */
async function echoOn(lab: Lab, host: 'director' | 'router', addrs: string[]): Promise<void> {
  const p = lab.spawn(host, [node, UDP_ECHO, '--name', host, '--port', '7', ...addrs.flatMap((a) => ['--addr', a])], 'echo');
  const ok = await waitFor(() => addrs.every((a) => p.log().includes(`listening ${a}:7`)), 10_000);
  if (!ok) throw new Error(`echo on ${host} not ready: ${p.log()}`);
}

async function reach(lab: Lab, from: keyof Lab['ns'], addr: string, expectName: string): Promise<void> {
  const r = await udpRequest(lab.ns[from], addr, 7, `from-${from}`, 2000);
  expect(r, `${from} → ${addr}:7`).toMatchObject({ ok: true, rs: expectName });
}

/** Stand-ins for uvsd's TAPs: veth `tapX` in the director namespace, its peer carrying the address. */
async function fakeTaps(lab: Lab): Promise<void> {
  const legs: [string, string][] =
    lab.mode === 'dr' || lab.mode === 'tun'
      ? [['taps', `${lab.dip}/24`]]
      : [
          ['tapc', `${lab.dipClient}/24`],
          ['taps', `${lab.dip}/24`],
        ];
  for (const [tap, cidr] of legs) {
    await lab.exec('director', ['ip', 'link', 'add', tap, 'type', 'veth', 'peer', 'name', `${tap}-k`]);
    await lab.exec('director', ['ip', 'addr', 'add', cidr, 'dev', `${tap}-k`]);
    await lab.exec('director', ['ip', 'link', 'set', `${tap}-k`, 'up']);
  }
  if (lab.mode !== 'nat') await lab.exec('director', ['ip', 'route', 'add', 'default', 'via', '10.0.0.200']);
  await lab.attachTaps(5000);
}

const cases: [LabMode, PortKind][] = [
  ['nat', 'iface'],
  ['nat', 'tap'],
  ['dr', 'iface'],
  ['dr', 'tap'],
  ['tun', 'iface'],
  ['fullnat', 'iface'],
];

for (const [mode, portKind] of cases) {
  describe.skipIf(!isRoot)(`lab topology ${mode} over ${portKind} (no director)`, () => {
    let lab: Lab | undefined;
    let prefix = '';

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind });
      prefix = lab.prefix;
      await lab.startServers();
      if (portKind === 'tap') await fakeTaps(lab);
      await echoOn(lab, 'director', lab.dipClient ? [lab.dipClient, lab.dip] : [lab.dip]);
    }, 30_000);

    afterAll(async () => {
      await lab?.teardown();
    });

    it('names every namespace with the per-run prefix', async () => {
      const l = lab!;
      expect(l.prefix).toMatch(new RegExp(`^uvs-${mode}-\\d+-[0-9a-f]{4}-$`));
      const names = (await listNs()).filter((n) => n.startsWith(l.prefix));
      expect(names.sort()).toEqual(Object.values(l.ns).sort());
      expect(l.hosts).toContain('switch');
      expect(l.hosts.includes('router')).toBe(mode !== 'nat');
    });

    it('real servers answer HTTP and UDP inside their own namespace', async () => {
      for (const r of lab!.rs) {
        const a = await httpGet(r.ns, `http://${r.addr}:${r.httpPort}/`);
        expect(a).toMatchObject({ ok: true, rs: r.name, peer: r.addr, local: `${r.addr}:${r.httpPort}` });
        const u = await udpRequest(r.ns, r.addr, r.udpPort, 'hello');
        expect(u).toMatchObject({ ok: true, rs: r.name, reply: `${r.name}:hello` });
      }
      if (mode === 'nat' || mode === 'fullnat') expect(lab!.rs.map((r) => r.httpPort)).toEqual([80, 8080]);
    });

    it('real servers reach each other across the server segment', async () => {
      const [rs1, rs2] = lab!.rs;
      expect(await httpGet(rs1!.ns, `http://${rs2!.addr}:${rs2!.httpPort}/`)).toMatchObject({ ok: true, rs: 'rs2', peer: rs1!.addr });
    });

    if (mode === 'nat' || mode === 'fullnat') {
      it('the client reaches the director on its segment', () => reach(lab!, 'client', lab!.dipClient!, 'director'));
    }
    if (mode === 'nat') {
      it('real servers reach the director (their gateway)', () => reach(lab!, 'rs1', lab!.dip, 'director'));
    }
    if (mode === 'fullnat') {
      it('real servers reach the director through the router (another subnet)', () => reach(lab!, 'rs2', lab!.dip, 'director'));
    }
    if (mode === 'dr' || mode === 'tun') {
      it('the client reaches the director and the real servers through the router', async () => {
        await reach(lab!, 'client', lab!.dip, 'director');
        const r = await httpGet(lab!.ns.client, `http://${lab!.rs[0]!.addr}/`);
        expect(r).toMatchObject({ ok: true, rs: 'rs1', peer: lab!.clientAddr });
      });
      it('nobody but the director may answer ARP for the VIP', async () => {
        // The router routes 10.0.0.0/24 directly: without uvsd its ARP for the VIP goes unanswered.
        const r = await udpRequest(lab!.ns.router, lab!.vip, 53, 'who-has', 1500);
        expect(r.ok).toBe(false);
        const neigh = await lab!.exec('router', ['ip', 'neigh', 'show', lab!.vip]);
        expect(neigh.stdout).not.toMatch(/lladdr/);
      });
    }
    if (mode === 'dr') {
      it('the real servers carry the VIP on lo with the LVS-DR ARP settings', async () => {
        for (const r of lab!.rs) {
          const a = await httpGet(r.ns, `http://${lab!.vip}/`);
          expect(a).toMatchObject({ ok: true, rs: r.name, local: `${lab!.vip}:80` });
          const s = await lab!.exec(r.name, ['sysctl', '-n', 'net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce', 'net.ipv4.conf.all.rp_filter']);
          expect(s.stdout.split('\n').slice(0, 3)).toEqual(['1', '2', '0']);
        }
      });
    }
    if (mode === 'tun') {
      it('uvs tunnel-endpoint decapsulates IPIP into the local stack (full and partial checksums)', async () => {
        const l = lab!;
        await l.startTunnelEndpoints();
        const mac = (JSON.parse((await l.exec('rs1', ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
        for (const partial of [false, true]) {
          const listener = l.spawn('client', [node, CLIENT_SCRIPT, 'udp-listen', '40000', '4000'], `listen-${partial}`);
          expect(await waitFor(() => listener.log().includes('listening'), 5000)).toBe(true);
          await l.exec('director', [
            node, IPIP_PROBE, '--iface', 'eth0', '--dst-mac', mac, '--src', l.dip, '--dst', l.rs[0]!.addr,
            '--inner-src', l.clientAddr, '--inner-dst', l.vip, '--sport', '40000', '--dport', '53',
            '--payload', `tun-${partial}`, ...(partial ? ['--partial'] : []),
          ]);
          await listener.exited;
          // rs1's UDP echo answered from the VIP straight to the client, through the router.
          expect(listener.log()).toContain(`${l.vip}:53 rs1:tun-${partial}`);
        }
        const nft = await l.exec('rs1', ['nft', 'list', 'ruleset']);
        expect(nft.stdout).toMatch(/ip protocol (4|ipencap) counter packets 2 /);
        const unreach = await l.exec('rs1', ['nstat', '-az', 'IpInUnknownProtos']);
        expect(unreach.stdout).toMatch(/IpInUnknownProtos\s+0\b/);
      });
    }

    it('teardown removes every namespace of the lab', async () => {
      await lab!.teardown();
      await lab!.teardown(); // idempotent
      expect((await listNs()).filter((n) => n.startsWith(prefix))).toEqual([]);
    });
  });
}

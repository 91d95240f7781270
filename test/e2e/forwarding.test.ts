/**
 * Forwarding-core acceptance: real Linux clients and real servers in network namespaces, uvsd as
 * the director, the rules applied with uvsadm as a user types them, default offload settings.
 *
 * Per lab: wrr 1:3 over 8 fresh HTTP connections gives rs1 2 and rs2 6; NAT reaches rs2's 8080
 * behind VIP:80; FULLNAT real servers see the local address as peer, the others the client;
 * DR/TUN replies bypass the director; a UDP service works in every mode, also with datagrams larger
 * than the MTU (IP fragments both ways; TUN cuts them before encapsulating); `uvsadm -Ln` lists the
 * service and dests, `-Lnc` the connections with their states. The DR run over AF_PACKET also
 * starts uvsd with `--sysctl expire_nodest_conn=1` and checks that removing a dest flushes its conns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, LAB_GUE_PORT, type Lab, type LabMode, type PortKind, type UvsdHandle } from '../../src/lab/topology.js';
import { httpGet, httpRequests, tally, udpRequest, type HttpAnswer } from '../../src/lab/client.js';
import { inNs, listNs, tryRun, waitFor } from '../../src/lab/netns.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { readCapture } from '../../src/trace/pcapng.js';
import { join } from 'node:path';
import { tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;

const FORWARD_NAME: Record<LabMode, string> = { nat: 'Masq', dr: 'Route', tun: 'Tunnel', fullnat: 'FullNat' };
const IPVS_STATES = 'NONE|ESTABLISHED|SYN_SENT|SYN_RECV|FIN_WAIT|TIME_WAIT|CLOSE|CLOSE_WAIT|LAST_ACK|LISTEN|SYNACK|UDP';

/** [mode, port kind, uvsd --io for iface ports]: iface ports default to auto, which picks AF_XDP
 * on these veths; AF_PACKET (the portable fallback) is covered by its own NAT and DR runs. */
const cases: [LabMode, PortKind, 'packet' | undefined][] = [
  ['nat', 'iface', undefined],
  ['dr', 'iface', undefined],
  ['tun', 'iface', undefined],
  ['fullnat', 'iface', undefined],
  ['nat', 'iface', 'packet'],
  ['dr', 'iface', 'packet'],
  ['nat', 'tap', undefined],
  ['dr', 'tap', undefined],
];

for (const [mode, portKind, io] of cases) {
  /** This run's uvsd also gets --sysctl expire_nodest_conn=1 (tested last: it removes a dest). */
  const nodest = mode === 'dr' && io === 'packet';
  /** This run's uvsd gets a fixed receive-coalescing timer on its AF_XDP ports (checked, then restored at stop). */
  const coalesce = mode === 'dr' && portKind === 'iface' && io === undefined;

  describe.skipIf(!isRoot)(`forwarding ${mode} over ${portKind}${io ? ` (--io ${io})` : ''}`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    let answers: HttpAnswer[] = [];

    /** Failure context: the director's own words. */
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log(), 20) : '(not started)'}`;

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind, ...(io ? { io } : {}) });
      if (mode === 'tun') await lab.startTunnelEndpoints();
      await lab.startServers();
      const extraArgs = [...(nodest ? ['--sysctl', 'expire_nodest_conn=1'] : []), ...(coalesce ? ['--rx-coalesce', '40'] : [])];
      uvsd = await lab.startUvsd({ timeoutMs: 20_000, ...(extraArgs.length > 0 ? { extraArgs } : {}) });
      for (const rule of lab.rules('wrr', { udp: true })) {
        const r = await lab.uvsadm(rule);
        if (r.code !== 0) throw new Error(ctx(`uvsadm ${rule.join(' ')} failed (${r.code}): ${r.stderr}`));
      }
    }, 60_000);

    afterAll(async () => {
      const prefix = lab?.prefix;
      await lab?.teardown();
      if (prefix) expect((await listNs()).filter((n) => n.startsWith(prefix))).toEqual([]);
    }, 30_000);

    if (portKind === 'iface') {
      it(`uvsd says which port it chose: ${io === 'packet' ? 'AF_PACKET (forced)' : 'AF_XDP (auto, native XDP on veth)'}`, () => {
        const attached = uvsd!.log().split('\n').filter((l) => l.includes('port attached'));
        expect(attached.length, ctx('port attached lines')).toBeGreaterThanOrEqual(1); // one per director leg
        for (const l of attached) expect(l).toContain(io === 'packet' ? '"io":"packet"' : '"io":"xdp"');
      });
    }

    it('wrr 1:3 over 8 fresh HTTP connections gives rs1 2 and rs2 6', async () => {
      const l = lab!;
      const url = `http://${l.vip}:${l.tcpPort}/`;
      // Fail fast (and with the director's log) when the first connection does not get through.
      const first = await httpGet(l.ns.client, url, 5000);
      if (!first.ok) throw new Error(ctx(`first request to ${url} failed: ${first.error}`));
      answers = [first, ...(await httpRequests(l.ns.client, url, 7))];
      expect(answers.filter((a) => !a.ok), ctx('failed requests')).toEqual([]);
      expect(tally(answers)).toEqual({ rs1: 2, rs2: 6 });
    });

    it('each connection lands on the dest address and port of its real server', () => {
      expect(answers.length).toBe(8);
      for (const a of answers) {
        const rs = lab!.rs.find((r) => r.name === a.rs)!;
        // DR and TUN keep the VIP as destination; NAT and FULLNAT rewrite it to RIP:port (8080 for rs2).
        const local = mode === 'nat' || mode === 'fullnat' ? `${rs.addr}:${rs.httpPort}` : `${lab!.vip}:80`;
        expect(a.local).toBe(local);
      }
      if (mode === 'nat') expect(answers.some((a) => a.local === '10.0.0.17:8080')).toBe(true);
    });

    it(mode === 'fullnat' ? 'real servers see the local address (LIP) as peer' : 'real servers see the client address as peer', () => {
      const peer = mode === 'fullnat' ? lab!.lip : lab!.clientAddr;
      expect(answers.map((a) => a.peer)).toEqual(answers.map(() => peer));
    });

    if (mode === 'fullnat') {
      it('--proxy-protocol v2 / v1: real servers read the client and the VIP from the header (peer still the LIP); a 300 KB upload gets through the moved seqs; disable turns it off', async () => {
        const l = lab!;
        const url = `http://${l.vip}:${l.tcpPort}/`;
        const svc = `${l.vip}:${l.tcpPort}`;
        const edit = async (pp: string[]) => {
          const r = await l.uvsadm(['-E', '-t', svc, '-s', 'wrr', ...pp]);
          if (r.code !== 0) throw new Error(ctx(`uvsadm -E ${pp.join(' ')}: ${r.stderr}`));
        };
        try {
          for (const v of ['v2', 'v1']) {
            await edit(['--proxy-protocol', v]);
            const list = await l.uvsadm(['-Ln']);
            expect(list.stdout).toContain(`TCP  ${svc} wrr pp${v}`);
            const got = await httpRequests(l.ns.client, url, 4);
            expect(got.filter((a) => !a.ok), ctx(`failed requests with ${v}`)).toEqual([]);
            for (const a of got) {
              expect(a.peer).toBe(l.lip);
              expect(a.proxy, ctx(a.body)).toMatch(new RegExp(`^${v}:${l.clientAddr.replace(/\./g, '\\.')}:\\d+>${svc.replace(/\./g, '\\.')}$`));
            }
          }
          // An upload of many segments: every client seq after the header moved, every ack moved back.
          const size = 300_000;
          const r = await tryRun(inNs(l.ns.client, ['sh', '-c',
            `head -c ${size} /dev/zero | curl -sS --noproxy '*' --max-time 10 -H 'Connection: close' --data-binary @- ${url}`]), { timeoutMs: 15_000 });
          expect(r.code, ctx(`upload: ${r.stderr}`)).toBe(0);
          expect(r.stdout).toMatch(new RegExp(`proxy=v1:\\S+ bytes=${size}$`, 'm'));
          await edit([]);
          const plain = await httpRequests(l.ns.client, url, 2);
          expect(plain.filter((a) => !a.ok || a.proxy !== undefined), ctx('without --proxy-protocol')).toEqual([]);
        } finally {
          await edit([]);
        }
      }, 60_000);

      let captures = 0;
      /** Frames from the local address to the real servers (matching `filter`), captured where the
       * router sends them onto the servers' segment while `work` runs (either server may get a conn). */
      const captureToServers = async (l: Lab, filter: string, work: () => Promise<void>): Promise<Uint8Array[]> => {
        const name = `tcpdump-${++captures}`; // its own log: 'listening on' is this one's
        const pcap = join(l.dir, `${name}.pcap`);
        const cap = l.spawn('router', ['tcpdump', '-i', 'eth1', '-nn', '-U', '--immediate-mode', '-w', pcap, `src host ${l.lip} and (${filter})`], name);
        try {
          expect(await waitFor(() => cap.log().includes('listening on'), 10_000), cap.log()).toBe(true);
          await work();
          await new Promise((r) => setTimeout(r, 500));
        } finally {
          await cap.stop(5000);
        }
        return readCapture(readFileSync(pcap)).map((c) => c.frame);
      };
      const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

      it('TOA: the real server\'s link carries TCP option 254 with the client address on the SYN and the first segments; full-size upload segments keep room for it (SYN-ACK MSS lowered); fullnat_toa_entry=0 leaves only the SYN', async () => {
        const l = lab!;
        const url = `http://${l.vip}:${l.tcpPort}/`;
        const toaHex = (port: number) => 'fe08' + port.toString(16).padStart(4, '0') +
          l.clientAddr.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
        const capture = async (work: () => Promise<void>) => (await captureToServers(l, 'tcp', work)).map((f) => {
          const ihl = (f[14]! & 15) * 4, l4 = 14 + ihl, doff = (f[l4 + 12]! >> 4) * 4, ipLen = (f[16]! << 8) | f[17]!;
          return { flags: f[l4 + 13]!, len: ipLen - ihl - doff, ipLen, opts: hex(f.subarray(l4 + 20, l4 + doff)) };
        });
        const size = 300_000;
        let cport = 0;
        const segs = await capture(async () => {
          const r = await tryRun(inNs(l.ns.client, ['sh', '-c',
            `head -c ${size} /dev/urandom | curl -sS --noproxy '*' --max-time 10 -H 'Connection: close' --local-port 42424 --data-binary @- ${url}`]), { timeoutMs: 15_000 });
          expect(r.code, ctx(`upload: ${r.stderr}`)).toBe(0);
          expect(r.stdout).toMatch(new RegExp(`bytes=${size}$`, 'm'));
          cport = 42424;
        });
        const toa = toaHex(cport);
        const syn = segs.filter((s) => (s.flags & 0x12) === 0x02);
        expect(syn.length, ctx(JSON.stringify(segs.slice(0, 4)))).toBeGreaterThan(0);
        for (const s of syn) expect(s.opts.startsWith(toa), ctx(`SYN options ${s.opts}`)).toBe(true);
        // The server sends nothing before the whole upload is in: every segment acks its ISN + 1.
        const data = segs.filter((s) => s.len > 0);
        const withToa = data.filter((s) => s.opts.startsWith(toa));
        expect(data.length).toBeGreaterThan(100);
        expect(withToa.length, ctx(`${data.length - withToa.length} of ${data.length} data segments without TOA`)).toBe(data.length);
        expect(Math.max(...segs.map((s) => s.ipLen))).toBeLessThanOrEqual(1500);
        expect(data.some((s) => s.ipLen > 1400), 'full-size segments').toBe(true);
        // Off: the SYN still carries it (as F1), the handshake ACK and the data do not.
        const off = await l.uvsadm(['--sysctl', 'fullnat_toa_entry=0']);
        expect(off.code, off.stderr).toBe(0);
        try {
          const segs2 = await capture(async () => {
            const a = await httpGet(l.ns.client, url, 5000);
            expect(a.ok, ctx(a.error ?? '')).toBe(true);
          });
          const syn2 = segs2.filter((s) => (s.flags & 0x12) === 0x02);
          expect(syn2.length, ctx(JSON.stringify(segs2))).toBeGreaterThan(0);
          for (const s of syn2) expect(s.opts.slice(0, 4)).toBe('fe08');
          expect(segs2.filter((s) => (s.flags & 0x02) === 0 && s.opts.startsWith('fe08'))).toEqual([]);
        } finally {
          await l.uvsadm(['--sysctl', 'fullnat_toa_entry=1']);
        }
      }, 60_000);

      it('UOA (fullnat_uoa_max_trail=2): ipo puts IPv4 option 31 with the client address in a flow\'s first two datagrams and the real server\'s kernel answers all four, a datagram with no room gets it in an empty one ahead; opp puts them behind IP protocol 248, which a server without the uoa module drops', async () => {
        const l = lab!;
        const set = async (kv: string) => {
          const r = await l.uvsadm(['--sysctl', kv]);
          expect(r.code, r.stderr).toBe(0);
        };
        const uoa = '1f08' + (41000).toString(16).padStart(4, '0') + hex(new Uint8Array(l.clientAddr.split('.').map(Number)));
        // Four datagrams from one source port: one conn.
        const flow = async (sport: number) => {
          const r = await tryRun(inNs(l.ns.client, ['sh', '-c',
            `for i in 1 2 3 4; do echo q$i | socat -t 0.5 - UDP4:${l.vip}:${l.udpPort},sourceport=${sport},reuseaddr; done`]), { timeoutMs: 15_000 });
          return r.stdout.trim().split('\n').filter(Boolean);
        };
        try {
          await set('fullnat_uoa_max_trail=2');
          await set('fullnat_uoa_mode=1');
          let replies: string[] = [];
          const ipo = await captureToServers(l, 'udp or ip proto 248', async () => { replies = await flow(41000); });
          expect(ipo.map((f) => f[14]! & 15), ctx('IHL of the four datagrams')).toEqual([7, 7, 5, 5]);
          for (const f of ipo.slice(0, 2)) expect(hex(f.subarray(34, 42))).toBe(uoa);
          expect(replies.map((r) => r.replace(/^[^:]*:/, '')), ctx('replies with ipo')).toEqual(['q1', 'q2', 'q3', 'q4']);
          // A datagram the option would push past the MTU: the option goes ahead in an empty datagram of its own.
          const big = await captureToServers(l, 'udp or ip proto 248', async () => {
            await tryRun(inNs(l.ns.client, ['sh', '-c',
              `head -c 1472 /dev/zero | socat -t 0.5 - UDP4:${l.vip}:${l.udpPort},sourceport=41002,reuseaddr`]), { timeoutMs: 10_000 });
          });
          expect(big.map((f) => [f[14]! & 15, (f[16]! << 8) | f[17]!]), ctx('standalone UOA, then the datagram')).toEqual([[7, 36], [5, 1500]]);
          expect(hex(big[0]!.subarray(34, 42))).toBe('1f08' + (41002).toString(16) + uoa.slice(8));
          await set('fullnat_uoa_mode=0');
          const opp = await captureToServers(l, 'udp or ip proto 248', async () => { replies = await flow(41001); });
          const uoa2 = '1f08' + (41001).toString(16).padStart(4, '0') + uoa.slice(8);
          expect(opp.map((f) => f[23]), ctx('IP protocols of the four datagrams')).toEqual([248, 248, 17, 17]);
          for (const f of opp.slice(0, 2)) expect(hex(f.subarray(34, 46))).toBe('1011000c' + uoa2);
          expect(replies.map((r) => r.replace(/^[^:]*:/, '')), ctx('replies with opp')).toEqual(['q3', 'q4']);
        } finally {
          await set('fullnat_uoa_max_trail=0');
          await set('fullnat_uoa_mode=0');
        }
      }, 60_000);

      it('a real haproxy (bind … accept-proxy) behind a --proxy-protocol v2 then v1 FULLNAT service sees the client address and the VIP', async () => {
        const l = lab!;
        const rs = l.rs[0]!;
        const cfg = join(l.dir, 'haproxy-pp.cfg');
        writeFileSync(cfg, [
          'global', '  log stderr format raw local0 err',
          'defaults', '  mode http', '  timeout connect 5s', '  timeout client 5s', '  timeout server 5s',
          'frontend pp', '  bind :8081 accept-proxy',
          '  http-request return status 200 content-type text/plain lf-string "haproxy src=%[src]:%[src_port] dst=%[dst]:%[dst_port]\\n"',
          '',
        ].join('\n'));
        const hap = l.spawn(rs.name, ['haproxy', '-db', '-f', cfg], 'haproxy');
        const svc = `${l.vip}:81`;
        const ok = async (args: string[]) => {
          const r = await l.uvsadm(args);
          if (r.code !== 0) throw new Error(ctx(`uvsadm ${args.join(' ')}: ${r.stderr}`));
        };
        try {
          await ok(['-A', '-t', svc, '-s', 'rr', '--proxy-protocol', 'v2']);
          await ok(['-a', '-t', svc, '-r', `${rs.addr}:8081`, '-b']);
          await ok(['-P', '-t', svc, '-z', l.lip!]);
          for (const v of ['v2', 'v1']) {
            if (v === 'v1') await ok(['-E', '-t', svc, '-s', 'rr', '--proxy-protocol', 'v1']);
            let r = { code: -1, stdout: '', stderr: '' };
            for (let i = 0; i < 20; i++) { // haproxy may still be starting
              r = await tryRun(inNs(l.ns.client, ['curl', '-sS', '--noproxy', '*', '--max-time', '3', `http://${svc}/`]), { timeoutMs: 6000 });
              if (r.code === 0) break;
              await new Promise((res) => setTimeout(res, 250));
            }
            expect(r.code, ctx(`curl ${svc} with ${v}: ${r.stderr}\n--- haproxy ---\n${hap.log()}`)).toBe(0);
            expect(r.stdout.trim()).toMatch(new RegExp(`^haproxy src=${l.clientAddr.replace(/\./g, '\\.')}:\\d+ dst=${svc.replace(/\./g, '\\.')}$`));
          }
        } finally {
          await l.uvsadm(['-D', '-t', svc]);
          await hap.stop();
        }
      }, 60_000);
    }

    it('a UDP service answers through the director', async () => {
      const l = lab!;
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push(await udpRequest(l.ns.client, l.vip, l.udpPort, `q${i}`, 3000));
      expect(replies.filter((r) => !r.ok), ctx('failed UDP requests')).toEqual([]);
      const t = tally(replies);
      expect((t.rs1 ?? 0) + (t.rs2 ?? 0)).toBe(4);
    });

    it('a UDP datagram larger than the MTU (IP fragments, both ways) gets through', async () => {
      const l = lab!;
      // 4000 bytes: the client's kernel sends 3 fragments, the real server's answers in 3 too.
      const big = 'uvs-'.repeat(1000);
      const r = await udpRequest(l.ns.client, l.vip, l.udpPort, big, 3000);
      expect(r.ok, ctx(`large UDP request: ${r.error ?? ''}`)).toBe(true);
    });

    if (mode === 'tun') {
      it('sysctl pmtu_disc=0: a DF datagram too big for the tunnel leaves as IPIP fragments; the tunnel endpoint reassembles them', async () => {
        const l = lab!;
        const set = await l.uvsadm(['--sysctl', 'pmtu_disc=0']);
        expect(set.code, set.stderr).toBe(0);
        // 1472 bytes of UDP payload with DF (IP_MTU_DISCOVER = IP_PMTUDISC_DO): a 1500-byte packet,
        // 1520 once encapsulated: more than the director's 1500-byte link to the real servers.
        const py = 'import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(0,10,2)\ns.settimeout(3)\n' +
          's.sendto(b"d"*1472,(sys.argv[1],int(sys.argv[2])))\nm=s.recv(70000)\nprint(m[:4].decode(),len(m))\n';
        const r = await tryRun(inNs(l.ns.client, ['python3', '-c', py, l.vip, String(l.udpPort)]), { timeoutMs: 10_000 });
        expect(r.code, ctx(`DF datagram with pmtu_disc=0: ${r.stderr}`)).toBe(0);
        expect(r.stdout).toMatch(/^rs[12]: 1476\n$/);
        const back = await l.uvsadm(['--sysctl', 'pmtu_disc=1']);
        expect(back.code).toBe(0);
      });
    }

    if (mode === 'tun') {
      it('GUE (--tun-type gue --tun-port 6080, with and without checksum) and GRE (with checksum) dests answer HTTP and UDP through the tunnel endpoints', async () => {
        const l = lab!;
        const setType = async (args: string[]) => {
          for (const [proto, port, kind] of [['-t', 80, 'http'], ['-u', 53, 'udp']] as const) {
            for (const rs of l.rs) {
              const rport = kind === 'http' ? rs.httpPort : rs.udpPort;
              const r = await l.uvsadm(['-e', proto, `${l.vip}:${port}`, '-r', `${rs.addr}:${rport}`, '-i', '-w', String(rs.weight), ...args]);
              expect(r.code, ctx(`-e … ${args.join(' ')}: ${r.stderr}`)).toBe(0);
            }
          }
        };
        /** Packets the real servers' tunnel endpoints took, per encapsulation (their nftables drop rules' counters). */
        const taken = async (): Promise<{ ipip: number; gue: number; gre: number }> => {
          const n = { ipip: 0, gue: 0, gre: 0 };
          for (const rs of l.rs) {
            const r = await tryRun(inNs(rs.ns, ['nft', 'list', 'ruleset']), { timeoutMs: 5000 });
            for (const line of r.stdout.split('\n')) {
              const m = /counter packets (\d+)/.exec(line);
              if (!m) continue;
              if (line.includes('udp dport')) n.gue += Number(m[1]);
              else if (line.includes('protocol 47') || line.includes('protocol gre')) n.gre += Number(m[1]);
              else if (line.includes('protocol 4') || line.includes('protocol ipencap')) n.ipip += Number(m[1]);
            }
          }
          return n;
        };
        for (const args of [['--tun-type', 'gue', '--tun-port', String(LAB_GUE_PORT), '--tun-csum'], ['--tun-type', 'gue', '--tun-port', String(LAB_GUE_PORT)],
          ['--tun-type', 'gre', '--tun-csum']]) {
          await setType(args);
          const before = await taken();
          const list = await l.uvsadm(['-Ln', '--tun-info']);
          expect(list.stdout).toContain(args[1] === 'gue' ? `gue:${LAB_GUE_PORT}:${args.length > 4 ? '+c' : '-c'}` : 'gre:+c');
          const url = `http://${l.vip}:${l.tcpPort}/`;
          const got = await httpRequests(l.ns.client, url, 4);
          expect(got.filter((a) => !a.ok), ctx(`HTTP over ${args.join(' ')}`)).toEqual([]);
          expect(got.map((a) => a.local)).toEqual(got.map(() => `${l.vip}:80`));
          const u = await udpRequest(l.ns.client, l.vip, l.udpPort, 'gq', 3000);
          expect(u.ok, ctx(`UDP over ${args.join(' ')}: ${u.error ?? ''}`)).toBe(true);
          // And it really went as GUE / GRE, not as IPIP.
          const after = await taken();
          const kind = args[1] as 'gue' | 'gre';
          expect(after[kind] - before[kind], JSON.stringify({ before, after })).toBeGreaterThanOrEqual(5);
          expect(after.ipip - before.ipip).toBe(0);
        }
        await setType(['--tun-type', 'ipip']);
      });
    }

    it('uvsadm -Ln shows the service and its dests', async () => {
      const l = lab!;
      const r = await l.uvsadm(['-Ln']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^TCP\\s+${l.vip.replace(/\./g, '\\.')}:80\\s+wrr`, 'm'));
      for (const rs of l.rs) {
        const re = new RegExp(`->\\s+${rs.addr.replace(/\./g, '\\.')}:${rs.httpPort}\\s+${FORWARD_NAME[mode]}\\s+${rs.weight}\\s`, 'm');
        expect(r.stdout).toMatch(re);
      }
      expect(r.stdout).toMatch(new RegExp(`^UDP\\s+${l.vip.replace(/\./g, '\\.')}:53\\s+wrr`, 'm'));
    });

    it('uvsadm -Lnc shows the connections with their states', async () => {
      const l = lab!;
      const r = await l.uvsadm(['-Lnc']);
      expect(r.code, r.stderr).toBe(0);
      const rows = r.stdout.split('\n').filter((line) => new RegExp(`^TCP\\s+\\S+\\s+(${IPVS_STATES})\\s`).test(line));
      expect(rows.length, r.stdout).toBeGreaterThanOrEqual(8);
      // source = client (CIP:port), virtual = VIP:80, destination = a RIP:port
      const rips = l.rs.map((rs) => `${rs.addr}:${rs.httpPort}`);
      for (const row of rows.slice(0, 8)) {
        const f = row.trim().split(/\s+/);
        expect(f[3]).toMatch(new RegExp(`^${l.clientAddr.replace(/\./g, '\\.')}:\\d+$`));
        expect(f[4]).toBe(`${l.vip}:80`);
        expect(rips).toContain(f[5]);
      }
    });

    if (mode === 'dr' || mode === 'tun') {
      it('replies go straight from the real servers to the client (the director sees no outbound packets)', async () => {
        const l = lab!;
        const r = await l.uvsadm(['-Ln', '--stats', '--exact']);
        expect(r.code, r.stderr).toBe(0);
        const svc = r.stdout.split('\n').find((line) => line.startsWith('TCP') && line.includes(`${l.vip}:80`));
        expect(svc, r.stdout).toBeDefined();
        // Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes
        const f = svc!.trim().split(/\s+/);
        expect(Number(f[2])).toBeGreaterThanOrEqual(8);
        expect(Number(f[3])).toBeGreaterThan(0);
        expect(f[4]).toBe('0');
      });
    }

    if (nodest) {
      it('--sysctl expire_nodest_conn=1: removing a real server flushes its conns at once', async () => {
        const l = lab!;
        const rs1 = l.rs.find((r) => r.name === 'rs1')!;
        const to = (out: string) => out.split('\n').filter((x) => x.includes(`${rs1.addr}:${rs1.httpPort}`));
        // The earlier tests' conns to rs1 are still there (FIN_WAIT in DR: the director sees one direction).
        const before = (await l.uvsadm(['-Lnc'])).stdout;
        expect(to(before).length, before).toBeGreaterThan(0);
        const d = await l.uvsadm(['-d', '-t', `${l.vip}:${l.tcpPort}`, '-r', `${rs1.addr}:${rs1.httpPort}`]);
        expect(d.code, d.stderr).toBe(0);
        // With the default (0) they would stay until they time out, and a client reusing one of their
        // ports would be dropped meanwhile (unit tests cover that packet path).
        const after = (await l.uvsadm(['-Lnc'])).stdout;
        expect(to(after), after).toEqual([]);
        const a = await httpGet(l.ns.client, `http://${l.vip}:${l.tcpPort}/`, 3000);
        expect(a.ok ? a.rs : a.error, ctx('request after the removal')).toBe('rs2');
      });
    }

    /** The director's NAPI coalescing settings of each AF_XDP port uvsd named in its log. */
    const coalescing = async (): Promise<Record<string, string>> => {
      const line = uvsd!.log().split('\n').find((l) => l.includes('receive coalescing (AF_XDP ports)'));
      const ports = line ? (JSON.parse(line) as { ports: string[] }).ports : [];
      const out: Record<string, string> = {};
      for (const p of ports) {
        const r = await lab!.exec('director', ['cat', `/sys/class/net/${p}/napi_defer_hard_irqs`, `/sys/class/net/${p}/gro_flush_timeout`]);
        out[p] = r.stdout.trim().split(/\s+/).join(' ');
      }
      return out;
    };
    let coalescedPorts: string[] = [];
    if (coalesce) {
      it('--rx-coalesce 40: every AF_XDP port polls on a 40 µs timer (napi_defer_hard_irqs 2, gro_flush_timeout 40000 ns)', async () => {
        const c = await coalescing();
        coalescedPorts = Object.keys(c);
        const xdpPorts = uvsd!.log().split('\n').filter((l) => l.includes('port attached') && l.includes('"io":"xdp"')).length;
        expect(xdpPorts).toBeGreaterThanOrEqual(1);
        expect(coalescedPorts.length, ctx('ports under receive coalescing')).toBe(xdpPorts);
        for (const v of Object.values(c)) expect(v).toBe('2 40000');
      });
    }

    it('uvsd stops cleanly on SIGTERM', async () => {
      const p = uvsd!.proc;
      await uvsd!.stop();
      for (const port of coalescedPorts) {
        // the devices' own settings (none) are back
        const r = await lab!.exec('director', ['cat', `/sys/class/net/${port}/napi_defer_hard_irqs`, `/sys/class/net/${port}/gro_flush_timeout`]);
        expect(r.stdout.trim().split(/\s+/).join(' '), port).toBe('0 0');
      }
      expect(p.hasExited()).toBe(true);
      expect(await p.exited).toBe(0);
      // uvsd removed the nftables table it installed in the director namespace
      const nft = await lab!.exec('director', ['nft', 'list', 'tables']);
      expect(nft.stdout.trim()).toBe('');
    });
  });
}

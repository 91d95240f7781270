/**
 * Health checks through the data path (src/pipeline/probe.ts): in the DR and TUN labs a
 * keepalived TCP_CHECK with `connect_ip` = the VIP is a SYN from the director to VIP:80 sent the
 * way the real server's client traffic goes (its MAC; its GUE tunnel); HTTP_GET and SSL_GET (TLS
 * over uvs's own TCP client) send their request that way too. Taking the VIP off one real
 * server (its lo in DR, its tunnel device in TUN; a UDP_CHECK of the UDP service likewise) — which a check of RIP:80 cannot see, its HTTP
 * server still listening there — takes that server out of the service within the check window;
 * putting the VIP back brings it back. Meanwhile clients keep being served by the other one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildLab, LAB_GUE_PORT, LAB_TLS_PORT, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { httpGet } from '../../src/lab/client.js';
import { waitFor } from '../../src/lab/netns.js';
import { stopLab, tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;

for (const mode of ['dr', 'tun'] as const) {
  describe.skipIf(!isRoot)(`health checks through the data path (${mode.toUpperCase()}, TCP_CHECK, HTTP_GET and UDP_CHECK with connect_ip = the VIP)`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log()) : '(not started)'}`;
    /** The dests uvsadm -Ln lists for the service. */
    const listed = async (): Promise<string[]> =>
      (await lab!.uvsadm(['-Ln'])).stdout.split('\n').filter((x) => x.includes('->') && !x.includes('RemoteAddress')).map((x) => x.trim().split(/\s+/)[1]!);
    const vipDev = mode === 'dr' ? 'lo' : () => lab!.tunDev;

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind: 'iface' });
      const l = lab;
      if (mode === 'tun') await l.startTunnelEndpoints();
      await l.startServers();
      const kind = mode === 'dr' ? 'DR' : `TUN type gue port ${LAB_GUE_PORT}`;
      const conf = join(l.dir, 'keepalived.conf');
      /** A virtual server on the VIP whose real servers are each checked with `checks` (connect_ip = the VIP). */
      const vs = (port: number, proto: 'TCP' | 'UDP', checks: [type: string, extra?: string][]) => `
virtual_server ${l.vip} ${port} {
  delay_loop 1
  lb_algo rr
  lb_kind ${kind}
  protocol ${proto}
${l.rs.map((r) => `  real_server ${r.addr} ${port} {
${checks.map(([type, extra]) => `    ${type} {${extra ? `\n      ${extra}` : ''}
      connect_ip ${l.vip}
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }`).join('\n')}
  }`).join('\n')}
}
`;
      // HTTP: the lab's servers answer with their name and the address the request came to (the VIP); UDP: "ping" to the echo servers, whose
      // replies start with their name ("rs1:ping").
      // HTTPS (SSL_GET): the same line from their TLS listener on 443, ending in " tls".
      writeFileSync(conf, vs(80, 'TCP', [['TCP_CHECK'], ['HTTP_GET', `url { path / status_code 200 regex "^rs[12] .* local=${l.vip}:80" }`],
        ['SSL_GET', `connect_port ${LAB_TLS_PORT}\n      url { path / status_code 200 regex "^rs[12] .* local=${l.vip}:${LAB_TLS_PORT} tls" }`]]) +
        vs(53, 'UDP', [['UDP_CHECK', 'payload 70696e67\n      require_reply 7273']]));
      uvsd = await l.startUvsd({ timeoutMs: 20_000, extraArgs: ['--keepalived', conf] });
    }, 60_000);

    afterAll(() => stopLab(lab, uvsd), 30_000);

    it('both real servers are up: the probes to the VIP got their SYN-ACKs, HTTP and HTTPS replies and UDP replies', async () => {
      const l = lab!;
      const ok = await waitFor(async () => {
        const c = (await l.uvsadm(['--checks'])).stdout;
        const lines = c.split('\n');
        return lines.filter((x) => x.includes(`${l.vip}:80 via`) && /\sup\s/.test(x) && x.includes('SYN-ACK')).length === 2 &&
          lines.filter((x) => x.includes(`${l.vip}:80 via`) && /\sup\s/.test(x) && /HTTP_GET/.test(x)).length === 2 &&
          lines.filter((x) => x.includes(`${l.vip}:${LAB_TLS_PORT} via`) && /\sup\s/.test(x) && /SSL_GET/.test(x)).length === 2 &&
          lines.filter((x) => x.includes(`${l.vip}:53 via`) && /\sup\s/.test(x) && /\sreply$/.test(x)).length === 2;
      }, 8000, 200);
      expect(ok, ctx(`checks:\n${(await l.uvsadm(['--checks'])).stdout}`)).toBeTruthy();
      expect((await listed()).sort()).toEqual(l.rs.flatMap((r) => [`${r.addr}:80`, `${r.addr}:53`]).sort());
      const a = await httpGet(l.ns.client, `http://${l.vip}:80/`, 3000);
      expect(a.ok, ctx(`request: ${a.error}`)).toBe(true);
    });

    it('the VIP taken off rs2 (its HTTP server still up on RIP:80): rs2 goes down; back with the VIP', async () => {
      const l = lab!;
      const rs2 = l.rs[1]!;
      const dev = typeof vipDev === 'string' ? vipDev : vipDev();
      await l.exec('rs2', ['ip', 'addr', 'del', `${l.vip}/32`, 'dev', dev]);
      const gone = await waitFor(async () => { const x = await listed(); return !x.includes(`${rs2.addr}:80`) && !x.includes(`${rs2.addr}:53`); }, 10_000, 200);
      expect(gone, ctx(`rs2 still listed:\n${(await l.uvsadm(['--checks'])).stdout}`)).toBe(true);
      // Each of rs2's checks saw it on its own, HTTP_GET and SSL_GET too (their requests went to rs2, not through the scheduler).
      const rs2Down = await waitFor(async () => {
        const rows = (await l.uvsadm(['--checks'])).stdout.split('\n').filter((x) => x.includes(`via ${rs2.addr} `));
        return rows.length === 4 && rows.every((x) => /\sdown\s/.test(x));
      }, 10_000, 200);
      expect(rs2Down, ctx(`rs2's checks:\n${(await l.uvsadm(['--checks'])).stdout}`)).toBe(true);
      // The kernel's own socket to RIP:80 still connects: only the data-path check saw the fault.
      const direct = await l.exec('director', ['curl', '-sS', '--max-time', '2', `http://${rs2.addr}:80/`], { check: false });
      expect(direct.code).toBe(0);
      for (let i = 0; i < 4; i++) {
        const a = await httpGet(l.ns.client, `http://${l.vip}:80/`, 3000);
        expect(a.ok && a.rs === 'rs1', ctx(`request ${i} with rs2 down: ${a.error ?? a.rs}`)).toBe(true);
      }
      await l.exec('rs2', ['ip', 'addr', 'add', `${l.vip}/32`, 'dev', dev]);
      const back = await waitFor(async () => { const x = await listed(); return x.includes(`${rs2.addr}:80`) && x.includes(`${rs2.addr}:53`); }, 10_000, 200);
      expect(back, ctx('rs2 not back')).toBe(true);
      // No probe answer reaches the host's TCP (the nftables guard keeps them off it), so the host
      // resets none of them: its TCP OutRsts stay put over a few probe rounds.
      const outRsts = async (): Promise<number> => {
        const snmp = (await l.exec('director', ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((x) => x.startsWith('Tcp:'));
        const [names, values] = snmp.map((x) => x.trim().split(/\s+/));
        return Number(values![names!.indexOf('OutRsts')]);
      };
      const r0 = await outRsts();
      await new Promise((r) => setTimeout(r, 3000));
      expect(await outRsts()).toBe(r0);
    }, 40_000);
  });
}

/**
 * FTP through the director, real kernels on both sides and curl as the client, each of curl's four
 * ways to open the data connection (PASV, EPSV, PORT, EPRT):
 *  - NAT: the FTP helper (src/fwd/ftp.ts, K ip_vs_ftp) rewrites the server's 227 reply to the VIP
 *    and expects the data connections; the downloads name the real server, the client's own
 *    address as its peer (NAT keeps it) and a data connection from/to the real server;
 *  - DR with persistence (the LVS-HOWTO's FTP service): the data connection to VIP:high port (or
 *    from the client back to VIP:20) is the port-21 service's, and its template sends it to the
 *    server of the control connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { stopLab, tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;
const METRICS_PORT = 9478;

/** curl's switches for each way of opening the data connection (the client is 192.168.10.6). */
const WAYS = {
  // (curl ignores the 227 reply's address unless told not to: it must be the VIP.)
  pasv: ['--disable-epsv', '--no-ftp-skip-pasv-ip'],
  epsv: [],
  port: ['-P', '192.168.10.6', '--disable-eprt'],
  eprt: ['-P', '192.168.10.6'],
} as const;

for (const mode of ['nat', 'dr'] as const) {
  describe.skipIf(!isRoot)(`FTP (${mode.toUpperCase()})`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log()) : '(not started)'}`;

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind: 'iface' });
      await lab.startServers();
      uvsd = await lab.startUvsd({ timeoutMs: 20_000, extraArgs: ['--metrics', `127.0.0.1:${METRICS_PORT}`] });
      const svc = ['-t', `${lab.vip}:21`];
      const rules: string[][] = [mode === 'nat' ? ['-A', ...svc, '-s', 'rr'] : ['-A', ...svc, '-s', 'rr', '-p', '120']];
      for (const r of lab.rs) rules.push(['-a', ...svc, '-r', `${r.addr}:21`, mode === 'nat' ? '-m' : '-g']);
      for (const rule of rules) {
        const r = await lab.uvsadm(rule);
        if (r.code !== 0) throw new Error(ctx(`uvsadm ${rule.join(' ')} failed (${r.code}): ${r.stderr}`));
      }
    }, 60_000);

    afterAll(() => stopLab(lab, uvsd), 30_000);

    const fetch = async (way: keyof typeof WAYS, file: string) => {
      const l = lab!;
      const r = await l.exec('client', ['curl', '-sS', '--max-time', '10', ...WAYS[way], `ftp://${l.vip}/${file}`], { check: false, timeoutMs: 15_000 });
      expect(r.code, ctx(`curl (${way}): ${r.stderr}`)).toBe(0);
      return r.stdout.trim();
    };

    for (const way of Object.keys(WAYS) as (keyof typeof WAYS)[]) {
      it(`a download with ${way.toUpperCase()}: the data connection reaches the control connection's real server`, async () => {
        const l = lab!;
        const line = await fetch(way, `${way}.txt`);
        // e.g. "rs1 peer=192.168.10.6 local=10.0.0.7:21 data=pasv 10.0.0.7:41234 -> 192.168.10.6:50312 file=pasv.txt"
        const m = /^(rs[12]) peer=(\S+) local=(\S+):21 data=(\w+) (\S+):(\d+) -> (\S+):(\d+) file=(\S+)$/.exec(line);
        expect(m, line).not.toBeNull();
        const [, name, peer, local, dataMode, dLocal, dLocalPort, dRemote] = m!;
        const rs = l.rs.find((r) => r.name === name)!;
        expect(dataMode).toBe(way);
        expect(m![9]).toBe(`${way}.txt`);
        expect(peer).toBe(l.clientAddr); // NAT and DR keep the client's address
        expect(dRemote).toBe(l.clientAddr);
        // NAT: the server's own address; DR: the VIP on its loopback (both control and data).
        const serverAddr = mode === 'nat' ? rs.addr : l.vip;
        expect(local).toBe(serverAddr);
        expect(dLocal).toBe(serverAddr);
        if (way === 'port' || way === 'eprt') expect(dLocalPort).toBe('20'); // active: from port 20
      }, 30_000);
    }

    it('rr alternates the control connections; each download stays on its server', async () => {
      const names: string[] = [];
      for (let i = 0; i < 4; i++) names.push((await fetch('pasv', 'x.txt')).split(' ')[0]!);
      if (mode === 'nat') expect(new Set(names)).toEqual(new Set(['rs1', 'rs2']));
      else expect(new Set(names).size).toBe(1); // DR with persistence: the client stays on one server
    }, 60_000);

    if (mode === 'nat') {
      it('the FTP helper counted each kind, and the listing shows the data connections', async () => {
        const l = lab!;
        const m = (await l.exec('director', ['curl', '-s', '--max-time', '2', `http://127.0.0.1:${METRICS_PORT}/metrics`], { check: false })).stdout;
        const v = (event: string) => Number(new RegExp(`^uvs_ftp_total\\{event="${event}"\\} (\\d+)`, 'm').exec(m)?.[1] ?? NaN);
        expect(v('pasv_reply'), m).toBeGreaterThanOrEqual(5);
        expect(v('epsv_reply')).toBeGreaterThanOrEqual(1);
        expect(v('port_command')).toBeGreaterThanOrEqual(1);
        expect(v('eprt_command')).toBeGreaterThanOrEqual(1);
        expect(m).toMatch(/^uvs_drops_total\{reason="ftp-bad-checksum"\} 0$/m);
        const conns = (await l.uvsadm(['-Lnc'])).stdout;
        expect(conns, conns).toMatch(new RegExp(`TCP .* ${l.clientAddr.replace(/\./g, '\\.')}:\\d+ +${l.vip.replace(/\./g, '\\.')}:20 +10\\.0\\.0\\.(7|17):20`));
      });
    }
  });
}

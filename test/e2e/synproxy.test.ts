/**
 * The SYN proxy (`-j enable`, src/fwd/synproxy.ts) in the NAT and FULLNAT labs, real kernels on
 * both sides: the client's handshake completes with the director's cookie SYN-ACK, the director
 * then opens the connection to the real server and translates sequence numbers for its life — so
 * HTTP requests and a 300 KB upload (many segments, acknowledgements in the cookie's numbers) work,
 * wrr 1:3 still gives 2 and 6 of 8, and the listing and the save file show the flag.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { httpRequests, tally } from '../../src/lab/client.js';
import { stopLab, tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;
const METRICS_PORT = 9477;

for (const mode of ['nat', 'fullnat'] as const) {
  describe.skipIf(!isRoot)(`SYN proxy (${mode.toUpperCase()}, -j enable)`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log()) : '(not started)'}`;

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind: 'iface' });
      await lab.startServers();
      uvsd = await lab.startUvsd({ timeoutMs: 20_000, extraArgs: ['--metrics', `127.0.0.1:${METRICS_PORT}`] });
      for (const rule of lab.rules('wrr')) {
        const r = await lab.uvsadm(rule[0] === '-A' && rule[1] === '-t' ? [...rule, '-j', 'enable'] : rule);
        if (r.code !== 0) throw new Error(ctx(`uvsadm ${rule.join(' ')} failed (${r.code}): ${r.stderr}`));
      }
    }, 60_000);

    afterAll(() => stopLab(lab, uvsd), 30_000);

    it('the listing and the save file show the SYN proxy', async () => {
      const l = lab!;
      expect((await l.uvsadm(['-Ln'])).stdout).toMatch(new RegExp(`TCP  ${l.vip.replace(/\./g, '\\.')}:80 wrr synproxy`));
      expect((await l.uvsadm(['-Sn'])).stdout).toMatch(new RegExp(`^-A -t ${l.vip.replace(/\./g, '\\.')}:80 -s wrr -j enable$`, 'm'));
    });

    it('8 fresh HTTP connections through it: wrr 1:3 gives 2 and 6, each answered', async () => {
      const l = lab!;
      const answers = await httpRequests(l.ns.client, `http://${l.vip}:80/`, 8, 4000);
      expect(answers.filter((a) => !a.ok).map((a) => a.error), ctx('failed requests')).toEqual([]);
      expect(tally(answers)).toEqual({ rs1: 2, rs2: 6 });
      if (mode === 'fullnat') expect(answers.every((a) => a.peer === '10.0.0.50')).toBe(true);
      else expect(answers.every((a) => a.peer === '192.168.10.6')).toBe(true);
    });

    it('a 300 KB upload: every segment and acknowledgement translated, the server counts all the bytes', async () => {
      const l = lab!;
      const r = await l.exec('client', ['sh', '-c', `head -c 300000 /dev/zero | curl -sS --max-time 10 -H 'Connection: close' --data-binary @- http://${l.vip}:80/`], { check: false, timeoutMs: 15_000 });
      expect(r.code, ctx(`curl: ${r.stderr}`)).toBe(0);
      expect(r.stdout).toMatch(/ bytes=300000/);
    });

    it('the counters: cookies sent and checked, real servers\' SYN-ACKs taken, no ACK refused', async () => {
      const m = (await lab!.exec('director', ['curl', '-s', '--max-time', '2', `http://127.0.0.1:${METRICS_PORT}/metrics`], { check: false })).stdout;
      const v = (event: string) => Number(new RegExp(`^uvs_synproxy_total\\{event="${event}"\\} (\\d+)`, 'm').exec(m)?.[1] ?? NaN);
      expect(v('syn_cookie_sent'), m).toBeGreaterThanOrEqual(9);
      expect(v('ack_cookie_ok')).toBeGreaterThanOrEqual(9);
      expect(v('server_synack')).toBe(v('ack_cookie_ok'));
      expect(m).toMatch(/^uvs_drops_total\{reason="synproxy-bad-ack"\} 0$/m);
    });
  });
}

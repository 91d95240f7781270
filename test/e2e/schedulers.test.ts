/**
 * Schedulers, persistence and fwmark services end to end: real clients (curl, node sockets) in the
 * NAT lab's client namespace, uvsd as the director (iface ports), real HTTP servers on the real
 * servers, the rules typed with uvsadm. One lab for the whole file; each block clears the rules
 * (`uvsadm -C`) and sets its own.
 *
 *   rr, wrr       the sequence real clients observe is the kernel's order (list newest-first)
 *   sh            each client address always lands on one dest; the spread is the bucket table's,
 *                 computed with the sh scheduler code itself
 *   -p 30         a client stays on one dest across fresh connections; the template is listed
 *   -f 10 -p      with `--mark-rule … --dports 80,443 --set-mark 10` the client stays on one dest
 *                 across ports 80 and 443; the template shows as protocol IP
 *   lc/wlc/sed/nq with long-lived connections held open, each next connection goes where the
 *                 overhead formula says for the counters uvsd reports
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { listNs, REPO_ROOT, tryRun, waitFor, type SpawnedProcess } from '../../src/lab/netns.js';
import { parseHttpBody, type HttpAnswer } from '../../src/lab/client.js';
import { lab as schedLab } from '../unit/sched/helpers.js';
import { tail } from '../helpers/e2e-lab.js';

const isRoot = process.getuid?.() === 0;
const node = process.execPath;

describe.skipIf(!isRoot)('schedulers end to end (NAT lab, iface ports)', () => {
  let lab: Lab | undefined;
  let uvsd: UvsdHandle | undefined;
  const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log(), 20) : '(not started)'}`;

  /** uvsadm with the lab's socket; throws (with uvsd's log) on failure. */
  const adm = async (...args: string[]): Promise<string> => {
    const r = await lab!.uvsadm(args);
    if (r.code !== 0) throw new Error(ctx(`uvsadm ${args.join(' ')} failed (${r.code}): ${r.stderr}`));
    return r.stdout;
  };

  /** One fresh HTTP connection from the client namespace, optionally from a given source address. */
  const get = async (url: string, from?: string): Promise<HttpAnswer> => {
    const argv = ['curl', '-sS', '-k', '--noproxy', '*', '--connect-timeout', '3', '--max-time', '3', '-H', 'Connection: close'];
    if (from) argv.push('--interface', from);
    argv.push(url);
    const r = await lab!.exec('client', argv, { check: false, timeoutMs: 6000 });
    if (r.code !== 0) return { ok: false, body: r.stdout, error: (r.stderr.trim() || `curl exit ${r.code}`).split('\n')[0]! };
    return parseHttpBody(r.stdout);
  };
  /** Which real server answered; throws with context when the request failed. */
  const who = async (url: string, from?: string): Promise<string> => {
    const a = await get(url, from);
    if (!a.ok) throw new Error(ctx(`GET ${url}${from ? ` from ${from}` : ''} failed: ${a.error}`));
    return a.rs!;
  };

  let vip = '';
  let url80 = '';
  let url443 = '';
  let rs1 = '';
  let rs2 = '';

  beforeAll(async () => {
    lab = await buildLab('nat', { portKind: 'iface' });
    vip = lab.vip;
    url80 = `http://${vip}:80/`;
    url443 = `https://${vip}:443/`;
    rs1 = lab.rs[0]!.addr;
    rs2 = lab.rs[1]!.addr;
    await lab.startServers();
    // For port-keeping services (fwmark, dest port 0) both real servers answer on 80 and 443 (HTTPS,
    // the lab's); rs2's lab HTTP server listens on 8080, so it gets one on 80 too.
    const script = join(REPO_ROOT, 'dist', 'lab', 'http-server.js');
    const extra: SpawnedProcess[] = [
      lab.spawn('rs2', [node, script, '--name', 'rs2', '--port', '80'], 'http-extra'),
    ];
    for (const p of extra) {
      const ok = await waitFor(() => /listening/.test(p.log()) || p.hasExited(), 10_000);
      if (!ok || p.hasExited()) throw new Error(`extra http server not ready:\n${p.log()}`);
    }
    uvsd = await lab.startUvsd({ timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    const prefix = lab?.prefix;
    await lab?.teardown();
    if (prefix) expect((await listNs()).filter((n) => n.startsWith(prefix))).toEqual([]);
  }, 30_000);

  /** -C, then a TCP VIP:80 service with the lab's two real servers added rs1 first, then rs2. */
  const natService = async (sched: string, w1: number, w2: number, extra: string[] = []): Promise<void> => {
    await adm('-C');
    await adm('-A', '-t', `${vip}:80`, '-s', sched, ...extra);
    await adm('-a', '-t', `${vip}:80`, '-r', `${rs1}:80`, '-m', '-w', String(w1));
    await adm('-a', '-t', `${vip}:80`, '-r', `${rs2}:8080`, '-m', '-w', String(w2));
  };

  describe('rr and wrr: the kernel order (dests scanned newest first)', () => {
    it('rr, rs1 then rs2 added: rs2, rs1, rs2, rs1, …', async () => {
      await natService('rr', 1, 1);
      const seq: string[] = [];
      for (let i = 0; i < 6; i++) seq.push(await who(url80));
      expect(seq).toEqual(['rs2', 'rs1', 'rs2', 'rs1', 'rs2', 'rs1']);
    }, 30_000);

    it('wrr A=1 then B=3: B, A, B, B, B, A, B, B (ipvs-semantics §1.3)', async () => {
      await natService('wrr', 1, 3);
      const seq: string[] = [];
      for (let i = 0; i < 8; i++) seq.push(await who(url80));
      expect(seq).toEqual(['rs2', 'rs1', 'rs2', 'rs2', 'rs2', 'rs1', 'rs2', 'rs2']);
    }, 30_000);

    it('wrr B=3 added first, then A=1: A, B, B, B, A, B, B, B', async () => {
      await adm('-C');
      await adm('-A', '-t', `${vip}:80`, '-s', 'wrr');
      await adm('-a', '-t', `${vip}:80`, '-r', `${rs2}:8080`, '-m', '-w', '3');
      await adm('-a', '-t', `${vip}:80`, '-r', `${rs1}:80`, '-m', '-w', '1');
      const seq: string[] = [];
      for (let i = 0; i < 8; i++) seq.push(await who(url80));
      expect(seq).toEqual(['rs1', 'rs2', 'rs2', 'rs2', 'rs1', 'rs2', 'rs2', 'rs2']);
    }, 30_000);
  });

  describe('sh: one dest per client address, spread as the bucket table says', () => {
    const clients: { addr: string; expect: string }[] = [];

    beforeAll(async () => {
      // The expected dest of each candidate address, from the sh scheduler code itself, for the
      // same list (rs1 w1 added first, rs2 w3 second ⇒ buckets rs2, rs2, rs2, rs1, …).
      const s = schedLab('sh');
      const d1 = s.add(rs1, 1, 80);
      s.add(rs2, 3, 8080);
      const per: Record<string, number> = { rs1: 0, rs2: 0 };
      for (let host = 21; host < 120 && (per.rs1! < 3 || per.rs2! < 3); host++) {
        const addr = `192.168.10.${host}`;
        const name = s.pick(addr) === d1 ? 'rs1' : 'rs2';
        if (per[name]! >= 3) continue;
        per[name]!++;
        clients.push({ addr, expect: name });
      }
      for (const c of clients) await lab!.exec('client', ['ip', 'addr', 'add', `${c.addr}/24`, 'dev', 'eth0']);
      await natService('sh', 1, 3);
    }, 30_000);

    it('each client address lands on its bucket\'s dest, every time', async () => {
      expect(clients.filter((c) => c.expect === 'rs1')).toHaveLength(3);
      expect(clients.filter((c) => c.expect === 'rs2')).toHaveLength(3);
      const got: { addr: string; rs: string[] }[] = [];
      for (const c of clients) got.push({ addr: c.addr, rs: [await who(url80, c.addr), await who(url80, c.addr)] });
      expect(got).toEqual(clients.map((c) => ({ addr: c.addr, rs: [c.expect, c.expect] })));
    }, 40_000);
  });

  describe('persistence (-p 30)', () => {
    it('keeps a client on one dest across fresh connections; other clients still rotate', async () => {
      await natService('rr', 1, 1, ['-p', '30']);
      const seq: string[] = [];
      for (let i = 0; i < 5; i++) seq.push(await who(url80));
      expect(seq).toEqual(['rs2', 'rs2', 'rs2', 'rs2', 'rs2']);
      // A second client address is a new persistence client: rr's next pick.
      await lab!.exec('client', ['ip', 'addr', 'add', '192.168.10.201/24', 'dev', 'eth0'], { check: false });
      expect([await who(url80, '192.168.10.201'), await who(url80, '192.168.10.201')]).toEqual(['rs1', 'rs1']);
      expect(await who(url80)).toBe('rs2');
      const conns = await adm('-Lnc');
      // The template (ASSURED once a controlled conn was established, as in the kernel).
      expect(conns).toMatch(new RegExp(`^TCP\\s+00:[23]\\d\\s+ASSURED\\s+192\\.168\\.10\\.6:0\\s+${vip.replace(/\./g, '\\.')}:80\\s+${rs2.replace(/\./g, '\\.')}:8080$`, 'm'));
      expect(conns).toMatch(/^TCP\s+\S+\s+ASSURED\s+192\.168\.10\.201:0\s/m);
    }, 30_000);
  });

  describe('fwmark service (-f 10 -p) with a mark rule for ports 80 and 443', () => {
    it('binds a client to one dest for both HTTP ports; the template is listed as protocol IP', async () => {
      await adm('-C');
      await adm('--mark-rule', '-d', `${vip}/32`, '-p', 'tcp', '--dports', '80,443', '--set-mark', '10');
      await adm('-A', '-f', '10', '-s', 'rr', '-p', '30');
      await adm('-a', '-f', '10', '-r', rs1, '-m');
      await adm('-a', '-f', '10', '-r', rs2, '-m');
      const a: HttpAnswer[] = [];
      for (const u of [url80, url443, url80, url443]) {
        const r = await get(u);
        if (!r.ok) throw new Error(ctx(`GET ${u} failed: ${r.error}`));
        a.push(r);
      }
      expect(a.map((x) => x.rs)).toEqual(['rs2', 'rs2', 'rs2', 'rs2']);
      // Port kept (dest port 0): the connections arrived on 80 and 443 of the same server.
      expect(a.map((x) => x.local)).toEqual([`${rs2}:80`, `${rs2}:443`, `${rs2}:80`, `${rs2}:443`]);
      // Another client: the next rr pick, on both ports.
      await lab!.exec('client', ['ip', 'addr', 'add', '192.168.10.202/24', 'dev', 'eth0'], { check: false });
      expect([await who(url443, '192.168.10.202'), await who(url80, '192.168.10.202')]).toEqual(['rs1', 'rs1']);
      const conns = await adm('-Lnc');
      expect(conns).toMatch(new RegExp(`^IP\\s+00:[23]\\d\\s+ASSURED\\s+192\\.168\\.10\\.6:0\\s+0\\.0\\.0\\.10:0\\s+${rs2.replace(/\./g, '\\.')}:0$`, 'm'));
      expect(conns).toMatch(new RegExp(`^TCP\\s+\\S+\\s+\\S+\\s+192\\.168\\.10\\.6:\\d+\\s+${vip.replace(/\./g, '\\.')}:443\\s+${rs2.replace(/\./g, '\\.')}:443$`, 'm'));
      // The rule and the service survive a save / clear / restore round trip.
      const saved = await adm('-S', '-n');
      expect(saved.split('\n')[0]).toBe(`--mark-rule -d ${vip}/32 -p tcp --dports 80,443 --set-mark 10`);
      expect(await adm('--list-mark-rules')).toMatch(/80,443\s+10$/m);
      await adm('-C');
      expect((await get(url443)).ok).toBe(false);
      const r = await tryRun([node, join(REPO_ROOT, 'bin', 'uvsadm.js'), '--sock', lab!.sock, '-R'], { input: saved, timeoutMs: 10_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(await adm('-S', '-n')).toBe(saved);
      // The templates went with -C: rr starts anew (rs2 first), the next client gets rs1.
      expect([await who(url443), await who(url80, '192.168.10.202'), await who(url80)]).toEqual(['rs2', 'rs1', 'rs2']);
    }, 40_000);
  });

  describe('lc, wlc, sed, nq with long-lived connections held open', () => {
    interface Counts { active: number; inact: number; weight: number }
    /** The kernel list is newest first: rs2 (added second), then rs1. */
    const order = ['rs2', 'rs1'] as const;

    /** ActiveConn / InActConn / Weight per real server from `uvsadm -Ln`. */
    const counts = async (): Promise<Record<string, Counts>> => {
      const out = await adm('-Ln');
      const res: Record<string, Counts> = {};
      for (const [name, addr] of [['rs1', rs1], ['rs2', rs2]] as const) {
        const m = new RegExp(`->\\s+${addr.replace(/\./g, '\\.')}:\\d+\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`).exec(out);
        if (!m) throw new Error(`no row for ${addr} in:\n${out}`);
        res[name] = { weight: Number(m[1]), active: Number(m[2]), inact: Number(m[3]) };
      }
      return res;
    };

    /** The reference formulas (ipvs-semantics §1.4, §2), over the list in kernel order. */
    const expected = (sched: string, c: Record<string, Counts>): string => {
      const oh = (x: Counts) => (sched === 'lc' || sched === 'wlc' ? x.active * 256 + x.inact : x.active + 1);
      const list = order.map((n) => ({ n, ...c[n]! })).filter((x) => x.weight > 0);
      if (sched === 'nq') {
        const idle = list.find((x) => x.active === 0);
        if (idle) return idle.n;
      }
      let best = list[0]!;
      for (const d of list.slice(1)) {
        if (sched === 'lc' ? oh(d) < oh(best) : oh(best) * d.weight > oh(d) * best.weight) best = d;
      }
      return best.n;
    };

    /** Waits (bounded) until uvsd counts exactly `active` active conns in total: earlier curls done. */
    const settled = async (active: number): Promise<Record<string, Counts>> => {
      let last: Record<string, Counts> | undefined;
      const ok = await waitFor(async () => {
        last = await counts();
        return last.rs1!.active + last.rs2!.active === active;
      }, 5000, 100);
      if (!ok) throw new Error(ctx(`active conns did not settle at ${active}: ${JSON.stringify(last)}`));
      return last!;
    };

    /** Opens `n` TCP connections to VIP:80 one after the other and holds them open. */
    const holder = async (n: number, label: string): Promise<SpawnedProcess> => {
      const code = `
        const net = require('node:net');
        const [host, port, n] = process.argv.slice(1);
        const socks = [];
        const next = (i) => {
          if (i >= Number(n)) { console.log('holding ' + n); return; }
          const s = net.connect({ host, port: Number(port) }, () => { console.log('connected ' + i); setTimeout(() => next(i + 1), 300); });
          s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
          socks.push(s);
        };
        next(0);
        setInterval(() => {}, 1000);
      `;
      const p = lab!.spawn('client', [node, '-e', code, vip, '80', String(n)], label);
      const ok = await waitFor(() => p.log().includes(`holding ${n}`) || p.hasExited(), 10_000);
      if (!ok || p.hasExited()) throw new Error(ctx(`holder did not hold ${n} connections:\n${p.log()}`));
      return p;
    };

    // Weights rs1=1, rs2=3; two held connections placed by the scheduler itself, then three fresh
    // connections, each predicted from the counters right before it.
    for (const sched of ['lc', 'wlc', 'sed', 'nq']) {
      it(`${sched}: held connections and the next ones follow the formula`, async () => {
        await natService(sched, 1, 3);
        const held = 2;
        // Where the held conns should go, simulated from zero with the same formula.
        const sim: Record<string, Counts> = { rs1: { active: 0, inact: 0, weight: 1 }, rs2: { active: 0, inact: 0, weight: 3 } };
        for (let i = 0; i < held; i++) sim[expected(sched, sim)]!.active++;
        const h = await holder(held, `holder-${sched}`);
        try {
          const c0 = await settled(held);
          expect({ rs1: c0.rs1!.active, rs2: c0.rs2!.active }).toEqual({ rs1: sim.rs1!.active, rs2: sim.rs2!.active });
          const seen: { want: string; got: string; counts: string }[] = [];
          for (let i = 0; i < 3; i++) {
            const c = await settled(held);
            const want = expected(sched, c);
            const got = await who(url80);
            seen.push({ want, got, counts: JSON.stringify(c) });
          }
          expect(seen.map((s) => s.got), JSON.stringify(seen, null, 1)).toEqual(seen.map((s) => s.want));
        } finally {
          await h.stop(2000);
        }
      }, 40_000);
    }

    it('the formulas tell the schedulers apart in this setup (the test is not vacuous)', () => {
      // 1 held on each, no inactive: lc → rs2 (tie, first in list), wlc → rs2 (256/3 < 256/1);
      // 2 held on rs2, none on rs1: sed → rs2 (3/3 = 1/1, first wins), nq → rs1 (idle first).
      const c = (a2: number, a1: number): Record<string, Counts> => ({ rs2: { active: a2, inact: 0, weight: 3 }, rs1: { active: a1, inact: 0, weight: 1 } });
      expect(expected('lc', c(1, 1))).toBe('rs2');
      expect(expected('lc', c(2, 1))).toBe('rs1');
      expect(expected('wlc', c(2, 1))).toBe('rs2');
      expect(expected('wlc', c(4, 1))).toBe('rs1');
      expect(expected('sed', c(2, 0))).toBe('rs2');
      expect(expected('nq', c(2, 0))).toBe('rs1');
    });
  });
});

/**
 * Health-check acceptance in the namespace labs (NAT and DR, `--iface`): uvsd started with
 * `--keepalived FILE` runs HTTP_GET checks from the director's own address on the real servers'
 * network and keeps the rules in step:
 *
 * - rs1's HTTP process is killed while the client keeps making fresh connections: after at most
 *   delay_loop + connect_timeout × (retry + 1) no new connection goes to rs1 and no request fails;
 *   started again, rs1 gets traffic again;
 * - reload with `uvsadm --load-keepalived` (inhibit_on_failure, check on a separate health port):
 *   no rule changes; when the check fails rs1's weight goes to 0, new connections avoid it and an
 *   established connection to it still completes (quiesced, as the kernel does); back to weight 1;
 * - (NAT) reload by SIGHUP with quorum 2 and a sorry server: rs1's check fails, the quorum is lost,
 *   the sorry server answers alone; rs1 passes again and the real servers are back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildLab, type Lab, type LabMode, type UvsdHandle } from '../../src/lab/topology.js';
import { httpGet, type HttpAnswer } from '../../src/lab/client.js';
import { listNs, REPO_ROOT, waitFor, type SpawnedProcess } from '../../src/lab/netns.js';
import { tail } from '../helpers/e2e-lab.js';

const DELAY_LOOP = 1;
const CONNECT_TIMEOUT = 1;
const RETRY = 1;
/** The acceptance bound: delay_loop + connect_timeout × (retry + 1), in ms. */
const WINDOW_MS = (DELAY_LOOP + CONNECT_TIMEOUT * (RETRY + 1)) * 1000;
const HEALTH_PORT = 81;
const SORRY_PORT = 8081;
/** uvsd's metrics endpoint inside the director namespace (read only to explain a failure). */
const METRICS_PORT = 9109;

const node = process.execPath;
const httpServerScript = join(REPO_ROOT, 'dist', 'lab', 'http-server.js');

interface Timed extends HttpAnswer {
  start: number;
  /** How long the request took. */
  ms: number;
}

function config(l: Lab, mode: LabMode, o: { rs1Port?: number; inhibit?: boolean; quorum?: number; sorry?: string } = {}): string {
  const kind = mode === 'nat' ? 'NAT' : 'DR';
  const check = (port: number) =>
    `HTTP_GET {\n            url { path / status_code 200 }\n            connect_port ${port}\n            connect_timeout ${CONNECT_TIMEOUT}\n            retry ${RETRY}\n            delay_before_retry 0.5\n        }`;
  const [rs1, rs2] = l.rs;
  return `! uvs e2e health (${mode})
global_defs {
    router_id uvs_e2e
}
virtual_server ${l.vip} ${l.tcpPort} {
    delay_loop ${DELAY_LOOP}
    lb_algo rr
    lb_kind ${kind}
    protocol TCP
${o.quorum ? `    quorum ${o.quorum}\n` : ''}${o.sorry ? `    sorry_server ${o.sorry}\n` : ''}    real_server ${rs1!.addr} ${rs1!.httpPort} {
        weight 1
${o.inhibit ? '        inhibit_on_failure\n' : ''}        ${check(o.rs1Port ?? rs1!.httpPort)}
    }
    real_server ${rs2!.addr} ${rs2!.httpPort} { weight 1  ${check(rs2!.httpPort)} }
}
`;
}

/** Waits (bounded) until `needle` is in a process log. */
async function waitLog(p: SpawnedProcess, needle: string, ms: number): Promise<void> {
  const ok = await waitFor(() => p.log().includes(needle), ms, 50);
  if (!ok) throw new Error(`'${needle}' not seen within ${ms} ms:\n${tail(p.log())}`);
}

for (const mode of ['nat', 'dr'] as const) {
  describe.skipIf(process.getuid?.() !== 0)(`health checks: ${mode} over iface`, () => {
    let lab: Lab | undefined;
    let uvsd: UvsdHandle | undefined;
    /** The file uvsd loaded last (what SIGHUP re-reads). */
    let confFile = '';
    let url = '';
    const ctx = (what: string) => `${what}\n--- uvsd log (tail) ---\n${uvsd ? tail(uvsd.log()) : '(not started)'}`;
    /** When a request failed: uvsd's non-zero drop counters (metrics) and its conn table, to tell why. */
    const diag = async (): Promise<string> => {
      const m = await lab!.exec('director', ['curl', '-s', '--max-time', '2', `http://127.0.0.1:${METRICS_PORT}/metrics`], { check: false });
      const drops = m.stdout.split('\n').filter((l) => /^uvs_drops_total\{/.test(l) && !/ 0$/.test(l)).join('\n');
      const conns = (await lab!.uvsadm(['-Lnc'])).stdout;
      const traced = (uvsd?.log() ?? '').split('\n').filter((l) => /drop/i.test(l) && !/"level"/.test(l)).slice(-20).join('\n');
      return `--- uvs_drops_total (non-zero) ---\n${drops || '(none)'}\n--- uvsadm -Lnc ---\n${conns}\n--- traced drops (last 20) ---\n${traced || '(none)'}`;
    };
    /** ctx() plus diag() when any answer failed. */
    const ctxIf = async (what: string, answers: readonly HttpAnswer[]) =>
      ctx(answers.some((a) => !a.ok) ? `${what}\n${await diag()}` : what);

    /** Source ports: each request its own, never one a conn to a removed real server still holds
     * (see httpGet; the ephemeral range starts at 32768, so these never collide with the kernel's). */
    let nextPort = 20_000 + (mode === 'dr' ? 5000 : 0);
    const get = async (): Promise<Timed> => {
      const start = Date.now();
      const r = await httpGet(lab!.ns.client, url, 2000, nextPort++);
      return { ...r, start, ms: Date.now() - start };
    };
    /** uvsadm -Ln: weight of a dest, undefined when absent. */
    const weight = async (addr: string, port: number): Promise<number | undefined> => {
      const r = await lab!.uvsadm(['-Ln']);
      const line = r.stdout.split('\n').find((x) => x.includes(`-> ${addr}:${port} `));
      return line ? Number(line.trim().split(/\s+/)[3]) : undefined;
    };
    const startAux = async (host: 'rs1' | 'rs2', name: string, port: number): Promise<SpawnedProcess> => {
      const p = lab!.spawn(host, [node, httpServerScript, '--name', name, '--port', String(port)], `${name}-${Date.now() % 100000}`);
      await waitLog(p, 'listening', 10_000);
      return p;
    };

    beforeAll(async () => {
      lab = await buildLab(mode, { portKind: 'iface' });
      await lab.startServers();
      confFile = join(lab.dir, 'keepalived.conf');
      writeFileSync(confFile, config(lab, mode));
      url = `http://${lab.vip}:${lab.tcpPort}/`;
      uvsd = await lab.startUvsd({ timeoutMs: 20_000, extraArgs: ['--keepalived', confFile, '--metrics', `127.0.0.1:${METRICS_PORT}`] });
    }, 60_000);

    afterAll(async () => {
      const prefix = lab?.prefix;
      await lab?.teardown();
      if (prefix) expect((await listNs()).filter((n) => n.startsWith(prefix))).toEqual([]);
    }, 30_000);

    it('the keepalived.conf rules are in place; the ignored section is logged', async () => {
      const l = lab!;
      expect(uvsd!.log()).toContain('section ignored');
      expect(await weight(l.rs[0]!.addr, l.rs[0]!.httpPort), ctx('rs1 not listed')).toBe(1);
      expect(await weight(l.rs[1]!.addr, l.rs[1]!.httpPort)).toBe(1);
      const first = await get();
      if (!first.ok) throw new Error(ctx(`first request failed: ${first.error}`));
      const ok = await waitFor(async () => {
        const c = await l.uvsadm(['--checks']);
        return c.stdout.split('\n').filter((x) => /HTTP_GET\s+\S+\s+up\s+1\s+ok\s/.test(x)).length === 2;
      }, 5000, 200);
      expect(ok, ctx('checks not both ok')).toBeTruthy();
    });

    it('a killed real server stops getting new connections within the window, and is back after a restart', async () => {
      const l = lab!;
      const [rs1] = l.rs;
      const answers: Timed[] = [];
      for (let i = 0; i < 4; i++) answers.push(await get());
      expect(answers.every((a) => a.ok), await ctxIf('requests before the kill failed', answers)).toBe(true);
      const tKill = Date.now();
      await l.httpProc('rs1')!.stop(2000);
      const after: Timed[] = [];
      while (Date.now() < tKill + WINDOW_MS + 3000) after.push(await get());
      const late = after.filter((a) => a.start >= tKill + WINDOW_MS);
      const show = (xs: Timed[]) => xs.map((a) => `${a.start - tKill}ms +${a.ms}ms ${a.ok ? a.rs : a.error}`).join('\n');
      if (late.length <= 5) expect.fail(ctx(`only ${late.length} requests after the window:\n${show(after)}\n${await diag()}`));
      const bad = late.filter((a) => !a.ok || a.rs !== 'rs2');
      // On failure, also show the conn table (a client port that matches an old conn to the dead rs1 in
      // FIN_WAIT is forwarded there, as kernel IPVS does with conn_reuse_mode 1).
      const why = bad.length > 0 ? await diag() : '';
      expect(bad.map((a) => `${a.start - tKill}ms ${a.ok ? a.rs : a.error}`), ctx(`requests after the window that failed or went to rs1\n${why}`)).toEqual([]);
      expect(await weight(rs1!.addr, rs1!.httpPort), ctx('rs1 still listed')).toBeUndefined();
      const checks = (await l.uvsadm(['--checks'])).stdout;
      expect(checks).toMatch(new RegExp(`${rs1!.addr}:${rs1!.httpPort}\\s+HTTP_GET\\s+\\S+\\s+down\\s+1\\s+failed\\s`));
      expect(uvsd!.log()).toContain('real server down');

      await l.startHttp('rs1');
      const tStart = Date.now();
      let seen: Timed | undefined;
      while (!seen && Date.now() < tStart + WINDOW_MS + 5000) {
        const a = await get();
        if (a.ok && a.rs === 'rs1') seen = a;
        else expect(a.ok, await ctxIf(`request failed while rs1 came back: ${a.error}`, [a])).toBe(true);
      }
      expect(seen, ctx('rs1 got no traffic after its restart')).toBeDefined();
      expect(await weight(rs1!.addr, rs1!.httpPort)).toBe(1);
    }, 40_000);

    it('inhibit_on_failure (reloaded with uvsadm --load-keepalived): weight 0, established connections complete, then weight 1 again', async () => {
      const l = lab!;
      const [rs1] = l.rs;
      let health = await startAux('rs1', 'rs1-health', HEALTH_PORT);
      const file2 = join(l.dir, 'keepalived-inhibit.conf');
      writeFileSync(file2, config(l, mode, { rs1Port: HEALTH_PORT, inhibit: true }));
      const r = await l.uvsadm(['--load-keepalived', file2]);
      expect(r.code, ctx(`--load-keepalived failed: ${r.stderr}`)).toBe(0);
      confFile = file2;
      expect(r.stdout).toContain('0 rule change(s)'); // only checker settings changed: the rules stay untouched
      expect(r.stderr).toContain('ignored section');

      // Two held connections (rr: one to each real server), request not finished yet.
      const holder = l.spawn('client', [node, '-e', `
        const net = require('node:net');
        const socks = [];
        (async () => {
          for (let i = 0; i < 2; i++) {
            const s = await new Promise((res) => { const s = net.connect(${l.tcpPort}, '${l.vip}', () => res(s)); s.on('error', (e) => console.log('error', i, e.message)); });
            s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n');
            let data = '';
            s.on('data', (d) => { data += d; });
            s.on('close', () => console.log('reply', i, JSON.stringify(data.split('\\r\\n\\r\\n')[1] || data)));
            socks.push(s);
            await new Promise((r) => setTimeout(r, 100));
          }
          console.log('held');
          await new Promise((r) => setTimeout(r, 7000));
          for (const s of socks) s.write('Connection: close\\r\\n\\r\\n');
        })();
      `], 'holder');
      await waitLog(holder, 'held', 5000);

      const tKill = Date.now();
      await health.stop(2000);
      const zero = await waitFor(async () => (await weight(rs1!.addr, rs1!.httpPort)) === 0, WINDOW_MS + 2000, 100);
      expect(zero, ctx('rs1 not set to weight 0')).toBeTruthy();
      expect(Date.now() - tKill).toBeLessThan(WINDOW_MS + 1000);
      const fresh: HttpAnswer[] = [];
      for (let i = 0; i < 6; i++) fresh.push(await get());
      expect(fresh.map((a) => (a.ok ? a.rs : a.error)), await ctxIf('new connections while rs1 is quiesced', fresh)).toEqual(Array(6).fill('rs2'));

      // The held connections complete: one of them on the quiesced rs1.
      await waitFor(() => holder.hasExited() || (holder.log().match(/^reply /gm) ?? []).length === 2, 12_000, 100);
      const replies = holder.log().split('\n').filter((x) => x.startsWith('reply '));
      const both = replies.length === 2 && replies.some((x) => x.includes('rs1 peer=')) && replies.some((x) => x.includes('rs2 peer='));
      expect(both, both ? '' : ctx(`held connections: one to each real server expected; holder log:\n${holder.log()}\n${await diag()}`)).toBe(true);

      health = await startAux('rs1', 'rs1-health', HEALTH_PORT);
      const back = await waitFor(async () => (await weight(rs1!.addr, rs1!.httpPort)) === 1, WINDOW_MS + 3000, 100);
      expect(back, ctx('rs1 weight not restored')).toBeTruthy();
      await health.stop(2000);
    }, 40_000);

    if (mode === 'nat') {
      it('quorum loss (the loaded file edited, reloaded by SIGHUP) switches to the sorry server and back', async () => {
        const l = lab!;
        const [rs1, rs2] = l.rs;
        const health = await startAux('rs1', 'rs1-health', HEALTH_PORT);
        const sorry = await startAux('rs2', 'sorry', SORRY_PORT);
        writeFileSync(confFile, config(l, mode, { rs1Port: HEALTH_PORT, quorum: 2, sorry: `${rs2!.addr} ${SORRY_PORT}` }));
        const loads = (uvsd!.log().match(/configuration loaded/g) ?? []).length;
        process.kill(uvsd!.proc.pid, 'SIGHUP');
        expect(await waitFor(() => (uvsd!.log().match(/configuration loaded/g) ?? []).length > loads, 5000, 50), ctx('SIGHUP reload not seen')).toBeTruthy();
        expect(await weight(rs2!.addr, SORRY_PORT)).toBeUndefined();

        const tKill = Date.now();
        await health.stop(2000);
        const switched = await waitFor(async () => (await get()).rs === 'sorry', WINDOW_MS + 3000, 50);
        expect(switched, ctx('the sorry server did not take over')).toBeTruthy();
        expect(Date.now() - tKill).toBeLessThan(WINDOW_MS + 2000);
        expect(uvsd!.log()).toContain('quorum lost');
        expect(await weight(rs1!.addr, rs1!.httpPort)).toBeUndefined();
        expect(await weight(rs2!.addr, rs2!.httpPort)).toBeUndefined();
        expect(await weight(rs2!.addr, SORRY_PORT)).toBe(1);
        const during: HttpAnswer[] = [];
        for (let i = 0; i < 4; i++) during.push(await get());
        expect(during.map((a) => (a.ok ? a.rs : a.error))).toEqual(Array(4).fill('sorry'));
        const checks = (await l.uvsadm(['--checks'])).stdout;
        expect(checks).toMatch(/quorum 2 LOST\s+sorry 10\.0\.0\.17:8081 \(active\)/);

        const h2 = await startAux('rs1', 'rs1-health', HEALTH_PORT);
        const back = await waitFor(async () => (await weight(rs2!.addr, SORRY_PORT)) === undefined, WINDOW_MS + 3000, 100);
        expect(back, ctx('the sorry server stayed')).toBeTruthy();
        const after: HttpAnswer[] = [];
        for (let i = 0; i < 4; i++) after.push(await get());
        expect(after.map((a) => (a.ok ? a.rs : a.error)).sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
        expect(uvsd!.log()).toContain('quorum regained');
        await h2.stop(2000);
        await sorry.stop(2000);
      }, 40_000);
    }

    it('a configuration with a mistake loads nothing and keeps the running rules', async () => {
      const l = lab!;
      const bad = join(l.dir, 'bad.conf');
      writeFileSync(bad, `virtual_server ${l.vip} 80 {\n  lb_algo rr\n  real_server 10.0.0.99 80 {\n    weight x\n  }\n}\n`);
      const before = (await l.uvsadm(['-Ln'])).stdout;
      const r = await l.uvsadm(['--load-keepalived', bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${bad}:4: 'weight': invalid number 'x'`);
      expect(r.stderr).toContain('nothing loaded');
      expect((await l.uvsadm(['-Ln'])).stdout).toBe(before);
    });
  });
}

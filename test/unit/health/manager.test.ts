/**
 * HealthManager against the real control operations (a Director without ports) and a scripted
 * check runner: remove / inhibit on failure and back, retries, alpha, quorum + hysteresis with
 * the sorry server, misc_dynamic weights, and reload diffs that leave unchanged services alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Director } from '../../../src/pipeline/director.js';
import { FakeClock } from '../../../src/pipeline/clock.js';
import { Control } from '../../../src/control/ops.js';
import type { Command, ServiceSnap } from '../../../src/control/types.js';
import { parseKeepalived } from '../../../src/health/keepalived.js';
import { HealthManager, formatChecks } from '../../../src/health/manager.js';
import type { CheckConf } from '../../../src/health/config.js';
import type { CheckResult } from '../../../src/health/checkers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

function setup() {
  const director = new Director({ clock: new FakeClock(), maxConns: 64, maxPorts: 2 });
  const control = new Control(director);
  const batches: Command[][] = [];
  /** Per connect target `ip:port`: the next results (last one repeats). */
  const results = new Map<string, CheckResult[]>();
  const calls: string[] = [];
  const scripts: string[] = [];
  const logs: string[] = [];
  const runner = async (c: CheckConf): Promise<CheckResult> => {
    const k = c.type === 'MISC_CHECK' ? c.miscPath : `${c.connectIp}:${c.connectPort}`;
    calls.push(k);
    const q = results.get(k) ?? [{ ok: true, detail: 'ok' }];
    return q.length > 1 ? q.shift()! : q[0]!;
  };
  const log = { info: (_o: object, m: string) => logs.push(m), warn: (_o: object, m: string) => logs.push(m), error: (_o: object, m: string) => logs.push(m) };
  const mgr = new HealthManager({
    exec: (cmd) => { if (cmd.cmd === 'batch') batches.push(cmd.commands); return control.execute(cmd); },
    snapshot: () => (control.execute({ cmd: 'get-services' }) as { data: ServiceSnap[] }).data,
    log, runner, runScript: (s) => scripts.push(s),
  });
  const services = () => (control.execute({ cmd: 'get-services' }) as { data: ServiceSnap[] }).data;
  const dests = (i = 0) => Object.fromEntries((services()[i]?.dests ?? []).map((d) => [`${d.addr}:${d.port}`, d.weight]));
  const set = (k: string, ...r: boolean[]) => results.set(k, r.map((ok) => ({ ok, detail: ok ? 'ok' : 'ECONNREFUSED' })));
  return { director, control, mgr, batches, results, calls, scripts, logs, services, dests, set };
}

const T = (body: string) => parseKeepalived(body, '/etc/keepalived/keepalived.conf');
let cur: ReturnType<typeof setup> | undefined;
afterEach(async () => { await cur?.mgr.stop(); cur = undefined; });

describe('HealthManager', () => {
  it('adds the service with keepalived defaults and its live real servers in one batch', async () => {
    const t = (cur = setup());
    const r = await t.mgr.load(T(`virtual_server 192.0.2.10 80 { protocol TCP lb_algo wrr delay_loop 0.05
      real_server 10.0.0.7 80 { weight 1 TCP_CHECK { } } real_server 10.0.0.17 8080 { weight 3 } }`));
    expect(r.ok).toBe(true);
    expect(t.batches).toHaveLength(1);
    const s = t.services()[0]!;
    expect([s.addr, s.port, s.sched, s.protocol]).toEqual(['192.0.2.10', 80, 'wrr', 6]);
    expect(t.dests()).toEqual({ '10.0.0.7:80': 1, '10.0.0.17:8080': 3 });
    expect(s.dests.every((d) => d.fwd === 0)).toBe(true); // keepalived default: NAT
  });

  it('removes a failing real server after retry + 1 failures, and adds it back when it passes', async () => {
    const t = (cur = setup());
    t.set('10.0.0.7:80', true);
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { delay_loop 0.05
      real_server 10.0.0.7 80 { TCP_CHECK { retry 2 delay_before_retry 0.01 } } real_server 10.0.0.17 80 { } }`));
    await until(() => t.calls.length >= 1);
    t.set('10.0.0.7:80', false);
    const n0 = t.calls.length;
    await until(() => !('10.0.0.7:80' in t.dests()));
    expect(t.calls.length - n0).toBeGreaterThanOrEqual(3); // one attempt + 2 retries
    expect(t.logs).toContain('real server down');
    expect(t.mgr.snapshot().checks[0]).toMatchObject({ state: 'down', last: 'failed', alive: false, detail: 'ECONNREFUSED' });
    t.set('10.0.0.7:80', true);
    await until(() => '10.0.0.7:80' in t.dests());
    expect(t.mgr.snapshot().checks[0]).toMatchObject({ state: 'up', last: 'ok', alive: true });
  });

  it('inhibit_on_failure sets the weight to 0 instead (and restores it)', async () => {
    const t = (cur = setup());
    t.set('10.0.0.7:80', true);
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { delay_loop 0.05
      real_server 10.0.0.7 80 { weight 5 inhibit_on_failure TCP_CHECK { retry 0 } } real_server 10.0.0.17 80 { } }`));
    t.set('10.0.0.7:80', false);
    await until(() => t.dests()['10.0.0.7:80'] === 0);
    t.set('10.0.0.7:80', true);
    await until(() => t.dests()['10.0.0.7:80'] === 5);
  });

  it('alpha: real servers start down until their checks pass', async () => {
    const t = (cur = setup());
    t.set('10.0.0.7:80', false);
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { alpha delay_loop 0.05 quorum 0
      real_server 10.0.0.7 80 { TCP_CHECK { retry 0 } } }`));
    expect(t.dests()).toEqual({});
    await sleep(150);
    expect(t.dests()).toEqual({});
    t.set('10.0.0.7:80', true);
    await until(() => '10.0.0.7:80' in t.dests());
  });

  it('quorum loss switches to the sorry server and back, with hysteresis and the scripts', async () => {
    const t = (cur = setup());
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { delay_loop 0.05 quorum 3 hysteresis 1
      quorum_up "/bin/up" quorum_down "/bin/down" sorry_server 10.0.9.9 8080
      real_server 10.0.0.7 80 { weight 2 TCP_CHECK { retry 0 } } real_server 10.0.0.17 80 { weight 2 TCP_CHECK { retry 0 } } }`));
    expect(t.dests()).toEqual({ '10.0.0.7:80': 2, '10.0.0.17:80': 2 });
    // 4 -> 2: still >= quorum - hysteresis (2): no switch
    t.set('10.0.0.7:80', false);
    await until(() => !('10.0.0.7:80' in t.dests()));
    expect(t.dests()).toEqual({ '10.0.0.17:80': 2 });
    // 2 -> 0: lost: sorry server only
    t.set('10.0.0.17:80', false);
    await until(() => '10.0.9.9:8080' in t.dests());
    expect(t.dests()).toEqual({ '10.0.9.9:8080': 1 });
    expect(t.scripts).toEqual(['/bin/down']);
    expect(t.mgr.snapshot().services[0]).toMatchObject({ quorumUp: false, sorry: '10.0.9.9:8080' });
    // 0 -> 2: below quorum + hysteresis (4): sorry server stays
    t.set('10.0.0.17:80', true);
    await sleep(200);
    expect(t.dests()).toEqual({ '10.0.9.9:8080': 1 });
    // 2 -> 4: back
    t.set('10.0.0.7:80', true);
    await until(() => !('10.0.9.9:8080' in t.dests()));
    expect(t.dests()).toEqual({ '10.0.0.7:80': 2, '10.0.0.17:80': 2 });
    expect(t.scripts).toEqual(['/bin/down', '/bin/up']);
  });

  it('misc_dynamic: exit 2..255 sets the weight to exit - 2', async () => {
    const t = (cur = setup());
    t.results.set('/bin/chk', [{ ok: true, detail: 'exit 12', weight: 10 }]);
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { delay_loop 0.05
      real_server 10.0.0.7 80 { weight 1 MISC_CHECK { misc_path /bin/chk misc_dynamic } } }`));
    await until(() => t.dests()['10.0.0.7:80'] === 10);
    t.results.set('/bin/chk', [{ ok: true, detail: 'exit 0' }]);
    await until(() => t.dests()['10.0.0.7:80'] === 1);
  });

  it('notify_up / notify_down run on state changes', async () => {
    const t = (cur = setup());
    await t.mgr.load(T(`virtual_server 192.0.2.10 80 { delay_loop 0.05
      real_server 10.0.0.7 80 { notify_up "/bin/n up" notify_down "/bin/n down" TCP_CHECK { retry 0 } } }`));
    t.set('10.0.0.7:80', false);
    await until(() => t.scripts.includes('/bin/n down'));
    t.set('10.0.0.7:80', true);
    await until(() => t.scripts.includes('/bin/n up'));
  });

  it('reload applies only the difference: unchanged services and dests untouched, state carried', async () => {
    const t = (cur = setup());
    const base = `virtual_server 192.0.2.10 80 { delay_loop 0.05
        real_server 10.0.0.7 80 { TCP_CHECK { retry 0 } } real_server 10.0.0.17 80 { weight 2 } }
      virtual_server 192.0.2.11 80 { lb_algo rr real_server 10.0.0.7 80 { } }`;
    await t.mgr.load(T(base));
    t.set('10.0.0.7:80', false);
    await until(() => !('10.0.0.7:80' in t.dests(0)) || !('10.0.0.7:80' in t.dests(1)));
    const svc10 = t.director.config.services.find((s) => s.port === 80 && s.addr === 0xc000020a)!;
    const dest17 = svc10.dests.find((d) => d.port === 80 && d.weight === 2)!;
    t.batches.length = 0;
    // Change: .11 goes to wlc, a third service appears; .10 is unchanged (its failed RS stays out).
    const r = await t.mgr.load(T(`${base.replace('lb_algo rr', 'lb_algo wlc')}
      virtual_server 192.0.2.12 80 { real_server 10.0.0.7 80 { } }`));
    expect(r.ok).toBe(true);
    expect(t.batches).toHaveLength(1);
    expect(t.batches[0]!.map((c) => `${c.cmd} ${'svc' in c ? c.svc?.addr ?? '' : ''}`)).toEqual([
      'edit-service 192.0.2.11', 'add-service 192.0.2.12', 'add-server 192.0.2.12',
    ]);
    const svc10b = t.director.config.services.find((s) => s.addr === 0xc000020a)!;
    expect(svc10b).toBe(svc10);
    expect(svc10b.dests.find((d) => d.weight === 2)).toBe(dest17);
    expect('10.0.0.7:80' in t.dests(0)).toBe(false);
    // Removing a service from the file deletes it.
    t.batches.length = 0;
    await t.mgr.load(T(base));
    expect(t.batches[0]!.map((c) => c.cmd)).toEqual(['edit-service', 'delete-service']);
    // The same file again: nothing to do.
    t.batches.length = 0;
    await t.mgr.load(T(base));
    expect(t.batches).toHaveLength(0);
  });

  it('proxy_protocol goes to the service, and a reload that changes only it edits the service', async () => {
    const t = (cur = setup());
    const conf = (pp: string) => T(`virtual_server 192.0.2.10 80 { protocol TCP lb_algo rr ${pp} real_server 10.0.0.7 80 { } }`);
    await t.mgr.load(conf('proxy_protocol v2'));
    expect(t.services()[0]!.proxyProtocol).toBe(2);
    t.batches.length = 0;
    await t.mgr.load(conf('proxy_protocol v2'));
    expect(t.batches).toHaveLength(0);
    await t.mgr.load(conf(''));
    expect(t.batches[0]!.map((c) => c.cmd)).toEqual(['edit-service']);
    expect(t.services()[0]!.proxyProtocol).toBe(0);
  });

  it('a refused batch changes nothing and keeps the old configuration', async () => {
    const t = (cur = setup());
    await t.mgr.load(T('virtual_server 192.0.2.10 80 { protocol TCP real_server 10.0.0.7 80 { } }'));
    const r = await t.mgr.load(T('virtual_server 192.0.2.10 80 { lb_kind TUN real_server 10.0.0.7 80 { } } virtual_server 192.0.2.11 80 { real_server 224.0.0.1 80 { } }'));
    expect(r.ok).toBe(false);
    expect(t.services()).toHaveLength(1);
    expect(t.mgr.snapshot().services.map((s) => s.service)).toEqual(['TCP 192.0.2.10:80']);
  });

  it('--checks text lists each check with state, last result and time', async () => {
    const t = (cur = setup());
    await t.mgr.load(T('virtual_server 192.0.2.10 80 { protocol TCP delay_loop 0.05 real_server 10.0.0.7 80 { TCP_CHECK { } } }'));
    await until(() => t.mgr.snapshot().checks[0]!.last === 'ok');
    const text = formatChecks(t.mgr.snapshot());
    expect(text).toMatch(/^Health checks from \/etc\/keepalived\/keepalived.conf \(keepalived, loaded /);
    expect(text).toMatch(/TCP 192\.0\.2\.10:80\s+10\.0\.0\.7:80\s+TCP_CHECK\s+10\.0\.0\.7:80\s+up\s+1\s+ok\s+\d{4}-\d\d-\d\dT/);
  });
});

describe('HealthManager: global_defs lvs_timeouts', () => {
  it('sets the IPVS timeouts in the load batch (0 or absent keeps a value), at every reload', async () => {
    const t = (cur = setup());
    await t.mgr.load(T('global_defs {\n lvs_timeouts tcp 7200 udp 60\n}\nvirtual_server 192.0.2.10 80 { protocol TCP real_server 10.0.0.7 80 { } }'));
    expect(t.batches[0]![0]).toEqual({ cmd: 'set-timeouts', tcp: 7200, tcpfin: 0, udp: 60 });
    expect(t.director.timeouts.get()).toEqual({ tcp: 7200, tcpfin: 120, udp: 60 });
    await t.mgr.load(T('global_defs {\n lvs_timeouts tcpfin 30\n}\nvirtual_server 192.0.2.10 80 { protocol TCP real_server 10.0.0.7 80 { } }'));
    expect(t.director.timeouts.get()).toEqual({ tcp: 7200, tcpfin: 30, udp: 60 });
  });
});

describe('HealthManager: global_defs lvs_sync_daemon', () => {
  it('starts the master and the backup sync daemon (no VRRP in uvs), restarts them when the line changes, stops them when it goes; a refusal is reported', async () => {
    const director = new Director({ clock: new FakeClock(), maxConns: 64, maxPorts: 2 });
    const control = new Control(director);
    const daemonCmds: Command[] = [];
    let refuse = false;
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const mgr = new HealthManager({
      exec: async (cmd) => {
        if (cmd.cmd === 'start-daemon' || cmd.cmd === 'stop-daemon') {
          daemonCmds.push(cmd);
          return refuse && cmd.cmd === 'start-daemon' ? { ok: false, errno: 'ENODEV', message: 'no interface sync9' } : { ok: true };
        }
        return control.execute(cmd);
      },
      snapshot: () => (control.execute({ cmd: 'get-services' }) as { data: ServiceSnap[] }).data,
      log, runner: async () => ({ ok: true, detail: 'ok' }), runScript: () => undefined,
    });
    cur = { mgr } as unknown as ReturnType<typeof setup>;
    const vs = 'virtual_server 192.0.2.10 80 { protocol TCP real_server 10.0.0.7 80 { } }';
    const r1 = await mgr.load(T(`global_defs {\n lvs_sync_daemon eth1 VI_1 id 51 maxlen 1400\n}\n${vs}`));
    expect(r1.ok).toBe(true);
    expect(r1.message).toContain('sync daemons (master, backup) on eth1, syncid 51');
    expect(daemonCmds).toEqual([
      { cmd: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth1', syncid: 51, maxlen: 1400 } },
      { cmd: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'eth1', syncid: 51, maxlen: 1400 } },
    ]);
    daemonCmds.length = 0;
    await mgr.load(T(`global_defs {\n lvs_sync_daemon eth1 VI_1 id 51 maxlen 1400\n}\n${vs}`));
    expect(daemonCmds).toEqual([]); // unchanged: left running
    await mgr.load(T(`global_defs {\n lvs_sync_daemon eth2 group 239.0.0.9 port 9000 ttl 3\n}\n${vs}`));
    expect(daemonCmds.map((c) => `${c.cmd} ${c.cmd === 'stop-daemon' ? c.state : c.cmd === 'start-daemon' ? `${c.daemon.state} ${c.daemon.mcastIfn} ${c.daemon.group}:${c.daemon.port} ttl ${c.daemon.ttl}` : ''}`)).toEqual([
      'stop-daemon master', 'stop-daemon backup', 'start-daemon master eth2 239.0.0.9:9000 ttl 3', 'start-daemon backup eth2 239.0.0.9:9000 ttl 3',
    ]);
    daemonCmds.length = 0;
    const r3 = await mgr.load(T(vs));
    expect(r3.message).toContain('sync daemons stopped');
    expect(daemonCmds.map((c) => c.cmd)).toEqual(['stop-daemon', 'stop-daemon']);
    refuse = true;
    const r4 = await mgr.load(T(`global_defs {\n lvs_sync_daemon sync9\n}\n${vs}`));
    expect(r4.ok).toBe(true); // the rules are applied; the daemons are reported
    expect(r4.message).toContain('sync daemons NOT started (master: ENODEV no interface sync9; backup: ENODEV no interface sync9)');
  });
});

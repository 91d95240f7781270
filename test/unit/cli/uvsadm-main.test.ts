/**
 * main() against a tiny fake uvsd: a unix-socket server in a temp dir that answers the control
 * protocol from an in-memory table.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { Command, ConnSnap, Response, ServiceSnap, ServiceSpec } from '../../../src/control/types.js';
import { FWD_DROUTE, IPPROTO_TCP } from '../../../src/model/constants.js';
import { main } from '../../../src/cli/uvsadm.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';
import { Sysctls, type SysctlError } from '../../../src/model/sysctl.js';

const zs = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const zr = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

class FakeDaemon {
  services: ServiceSnap[] = [];
  conns: ConnSnap[] = [];
  timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
  received: Command[] = [];
  sysctl = new Sysctls();
  daemons: { state: string; mcastIfn: string; syncid: number; syncMaxlen: number; mcastGroup: string; mcastPort: number; mcastTtl: number }[] = [];

  private find(spec: ServiceSpec): ServiceSnap | undefined {
    return this.services.find((s) => (spec.fwmark ? s.fwmark === spec.fwmark
      : !s.fwmark && s.protocol === spec.protocol && s.addr === spec.addr && s.port === spec.port));
  }

  apply(c: Command): Response {
    switch (c.cmd) {
      case 'add-service':
        if (this.find(c.svc)) return { ok: false, errno: 'EEXIST', message: 'service exists' };
        if (!['rr', 'wrr', 'wlc', 'lc', 'sh', 'mh'].includes(c.opts.sched)) return { ok: false, errno: 'ENOENT', message: 'no scheduler' };
        this.services.unshift({ ...c.svc, ...c.opts, dests: [], laddrs: [], stats: { ...zs }, rates: { ...zr } });
        return { ok: true };
      case 'delete-service': {
        const s = this.find(c.svc);
        if (!s) return { ok: false, errno: 'ESRCH', message: 'no service' };
        this.services = this.services.filter((x) => x !== s);
        return { ok: true };
      }
      case 'clear': this.services = []; return { ok: true };
      case 'add-server': {
        const s = this.find(c.svc);
        if (!s) return { ok: false, errno: 'ESRCH', message: 'no service' };
        if (s.dests.some((d) => d.addr === c.dest.addr && d.port === c.dest.port)) return { ok: false, errno: 'EEXIST', message: 'dest exists' };
        s.dests.unshift({ ...c.dest, ...c.opts, activeConns: 0, inactConns: 0, persistConns: 0, stats: { ...zs }, rates: { ...zr } });
        return { ok: true };
      }
      case 'add-laddr': {
        const s = this.find(c.svc);
        if (!s) return { ok: false, errno: 'ESRCH', message: 'no service' };
        s.laddrs.push(c.laddr);
        return { ok: true };
      }
      case 'set-timeouts':
        if (c.tcp) this.timeouts.tcp = c.tcp;
        if (c.tcpfin) this.timeouts.tcpfin = c.tcpfin;
        if (c.udp) this.timeouts.udp = c.udp;
        return { ok: true };
      case 'batch': {
        const saved = JSON.stringify(this.services);
        for (let i = 0; i < c.commands.length; i++) {
          const r = this.apply(c.commands[i]!);
          if (!r.ok) { this.services = JSON.parse(saved); return { ...r, index: i } as Response; }
        }
        return { ok: true };
      }
      case 'get-services': return { ok: true, data: this.services };
      case 'get-conns': return { ok: true, data: this.conns };
      case 'get-timeouts': return { ok: true, data: this.timeouts };
      case 'get-info': return { ok: true, data: { version: '1.2.1', connTabSize: 4096, conns: 0, stats: zs, rates: zr } };
      case 'get-sysctls': return { ok: true, data: this.sysctl.list() };
      case 'set-sysctl':
        try {
          this.sysctl.set(c.name, c.value);
          return { ok: true };
        } catch (e) {
          return { ok: false, errno: (e as SysctlError).errno, message: (e as Error).message };
        }
      case 'start-daemon': {
        const d = c.daemon;
        if (this.daemons.some((x) => x.state === d.state)) return { ok: false, errno: 'EEXIST', message: 'runs' };
        this.daemons.push({ state: d.state, mcastIfn: d.mcastIfn, syncid: d.syncid, syncMaxlen: d.maxlen ?? 1472, mcastGroup: d.group ?? '224.0.0.81', mcastPort: d.port ?? 8848, mcastTtl: d.ttl ?? 1 });
        this.daemons.sort((a, b) => (a.state === 'master' ? 0 : 1) - (b.state === 'master' ? 0 : 1));
        return { ok: true };
      }
      case 'stop-daemon': {
        const before = this.daemons.length;
        this.daemons = this.daemons.filter((x) => x.state !== c.state);
        return this.daemons.length < before ? { ok: true } : { ok: false, errno: 'ESRCH', message: 'none' };
      }
      case 'get-daemons': return { ok: true, data: this.daemons };
      default: return { ok: false, errno: 'EINVAL', message: `unhandled ${c.cmd}` };
    }
  }
}

let dir: string;
let sock: string;
let server: Server;
const fake = new FakeDaemon();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'uvsadm-test-'));
  sock = join(dir, 'uvsd.sock');
  server = createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as Command;
        buf = buf.slice(nl + 1);
        fake.received.push(cmd);
        c.write(JSON.stringify(fake.apply(cmd)) + '\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fake.services = [];
  fake.conns = [];
  fake.received = [];
});

async function run(argv: string[], stdinText = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => { out += d.toString(); });
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await main(['--sock', sock, ...argv], {
    stdout, stderr, stdin: Readable.from([stdinText]), env: {},
    services: ServicesDb.parse('http 80/tcp www\n'), reverseLookup: async () => undefined, lookupHost: async () => null,
  });
  await new Promise((r) => setImmediate(r));
  return { code, out, err };
}

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/ipvsadm/${name}`, import.meta.url), 'utf8');

async function loadExample(): Promise<void> {
  expect((await run(['-A', '-t', '192.168.1.100:80'])).code).toBe(0);
  expect((await run(['-a', '-t', '192.168.1.100:80', '-r', '10.0.0.1:80', '-g', '-w', '1'])).code).toBe(0);
  expect((await run(['-a', '-t', '192.168.1.100:80', '-r', '10.0.0.2:80', '-g', '-w', '3'])).code).toBe(0);
  const s = fake.services[0]!;
  s.dests[0]!.activeConns = 6; s.dests[0]!.inactConns = 11;
  s.dests[1]!.activeConns = 2; s.dests[1]!.inactConns = 5;
}

describe('uvsadm main() against a fake uvsd', () => {
  test('-Ln and -S -n print the reference listings', async () => {
    await loadExample();
    expect(await run(['-Ln'])).toEqual({ code: 0, out: fixture('ln.txt'), err: '' });
    expect(await run(['-S', '-n'])).toEqual({ code: 0, out: fixture('save-n.txt'), err: '' });
  });

  test('no arguments lists like -L (names resolved)', async () => {
    await loadExample();
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[3]).toBe('TCP  192.168.1.100:http wlc');
  });

  test('kernel refusals print ipvs_strerror text and exit 255', async () => {
    await loadExample();
    expect(await run(['-A', '-t', '192.168.1.100:80'])).toEqual({ code: 255, out: '', err: 'Service already exists\n' });
    expect(await run(['-A', '-t', '192.168.1.100:81', '-s', 'nope'])).toMatchObject({ code: 255, err: 'Scheduler or persistence engine not found\n' });
    expect(await run(['-D', '-t', '192.168.1.101:80'])).toMatchObject({ code: 255, err: 'No such service\n' });
    expect(await run(['-a', '-t', '192.168.1.101:80', '-r', '10.0.0.1'])).toMatchObject({ code: 255, err: 'Service not defined\n' });
    expect(await run(['-a', '-t', '192.168.1.100:80', '-r', '10.0.0.1'])).toMatchObject({ code: 255, err: 'Destination already exists\n' });
  });

  test('parse errors never reach the daemon', async () => {
    expect(await run(['-A', '-t', '1.2.3.4:80', '-w', '2'])).toEqual({ code: 2, out: '', err: "Illegal 'weight' option with the 'add-service' command\n" });
    expect(await run(['-A', '-t', '1.2.3.4:80', '-6'])).toEqual({ code: 2, out: '', err: '-6 used before -f\n\n' });
    expect(await run(['-x'])).toEqual({ code: 255, out: '', err: "Try `uvsadm -h' or 'uvsadm --help' for more information.\n" });
    expect(fake.received).toEqual([]);
  });

  test('listing failures exit 1; --daemon prints nothing; --timeout; -Lnc; -G', async () => {
    await loadExample();
    expect(await run(['-L', '-n', '-t', '10.9.9.9:80'])).toEqual({ code: 1, out: '', err: 'No such service\n' });
    expect(await run(['-L', '--daemon'])).toEqual({ code: 0, out: '', err: '' });
    // ipvsadm's list_daemon lines, master first; start/stop refusals in ipvs_strerror's words.
    expect((await run(['--start-daemon', 'backup', '--mcast-interface', 'sync0', '--syncid', '9'])).code).toBe(0);
    expect((await run(['--start-daemon', 'master'])).code).toBe(0);
    expect(await run(['--start-daemon', 'master'])).toEqual({ code: 255, out: '', err: 'Daemon has already run\n' });
    expect(await run(['-L', '--daemon'])).toEqual({
      code: 0, err: '',
      out: 'master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
        'backup sync daemon (mcast=sync0, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    });
    expect((await run(['--stop-daemon', 'master'])).code).toBe(0);
    expect((await run(['--stop-daemon', 'backup'])).code).toBe(0);
    expect(await run(['--stop-daemon', 'backup'])).toEqual({ code: 255, out: '', err: 'No daemon is running\n' });
    expect(await run(['-L', '--daemon'])).toEqual({ code: 0, out: '', err: '' });
    expect((await run(['--set', '100', '0', '0'])).code).toBe(0);
    expect(await run(['-L', '--timeout'])).toEqual({ code: 0, out: 'Timeout (tcp tcpfin udp): 100 120 300\n', err: '' });
    fake.conns = [{ protocol: IPPROTO_TCP, caddr: '203.0.113.7', cport: 51234, vaddr: '192.168.1.100', vport: 80, daddr: '10.0.0.2', dport: 80, laddr: '', lport: 0, state: 'ESTABLISHED', expires: 899, template: false, fwd: FWD_DROUTE }];
    expect((await run(['-Lnc'])).out).toBe('IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:59  ESTABLISHED 203.0.113.7:51234  192.168.1.100:80   10.0.0.2:80\n');
    expect((await run(['-P', '-t', '192.168.1.100:80', '-z', '10.0.9.1'])).code).toBe(0);
    expect((await run(['-G'])).out).toContain('10.0.9.1');
  });

  test('-S, -C, -R restores an identical rule set; a bad file changes nothing', async () => {
    await loadExample();
    expect((await run(['-P', '-t', '192.168.1.100:80', '-z', '10.0.9.1'])).code).toBe(0);
    const saved = (await run(['-S', '-n'])).out;
    expect((await run(['-C'])).code).toBe(0);
    expect(fake.services).toEqual([]);
    expect(await run(['-R'], `# saved\n${saved}`)).toEqual({ code: 0, out: '', err: '' });
    expect((await run(['-S', '-n'])).out).toBe(saved);
    const before = JSON.stringify(fake.services);
    const bad = await run(['-R'], '-C\n-A -t 10.1.1.1:80\n-a -t 10.1.1.1:80 -r 10.0.0.1 -w lots\n');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('illegal weight specified\nuvsadm: -R: error on line 3; nothing was restored\n');
    expect(JSON.stringify(fake.services)).toBe(before);
    // a daemon refusal inside the batch: all or nothing, message for the failing command
    const dup = await run(['-R'], '-A -t 10.1.1.1:80\n-A -t 10.1.1.1:80\n');
    expect(dup).toEqual({ code: 255, out: '', err: 'Service already exists\n' });
    expect(JSON.stringify(fake.services)).toBe(before);
  });

  test('-h, -v, and an unreachable daemon', async () => {
    const v = await run(['-v']);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^uvsadm v\d+\.\d+\.\d+ \(ipvsadm v1\.31 compatible, IPVS v1\.2\.1\)\n$/);
    const h = await run(['-h']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('Usage:\n  uvsadm -A|E virtual-service');
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const missing = join(dir, 'nope.sock');
    const code = await main(['-Ln'], { stdout: new PassThrough(), stderr, env: { UVS_SOCK: missing } });
    await new Promise((r) => setImmediate(r));
    expect(code).toBe(2);
    expect(err).toBe(`uvsadm: cannot reach uvsd at ${missing}: ENOENT (is uvsd running?)\n`);
  });

  test('--sysctl lists the IPVS sysctls as sysctl(8) prints them, shows one, sets one; a refusal exits 255 and changes nothing', async () => {
    fake.sysctl = new Sysctls();
    let r = await run(['--sysctl']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('net.ipv4.vs.amemthresh = 1024');
    expect(r.out).toContain('net.ipv4.vs.conn_reuse_mode = 1\n');
    expect(r.out).toContain('net.ipv4.vs.sync_threshold = 3\t50\n');
    r = await run(['--sysctl', 'net.ipv4.vs.conn_reuse_mode=0']);
    expect(r).toEqual({ code: 0, out: 'net.ipv4.vs.conn_reuse_mode = 0\n', err: '' });
    expect(fake.received.at(-1)).toEqual({ cmd: 'set-sysctl', name: 'net.ipv4.vs.conn_reuse_mode', value: '0' });
    r = await run(['--sysctl', 'conn_reuse_mode']);
    expect(r).toEqual({ code: 0, out: 'net.ipv4.vs.conn_reuse_mode = 0\n', err: '' });
    r = await run(['--sysctl', 'conn_reuse_mode=9']);
    expect(r).toEqual({ code: 255, out: '', err: 'uvsadm: net.ipv4.vs.conn_reuse_mode=9: out of range 0..3\n' });
    r = await run(['--sysctl', 'conntrack=1']);
    expect(r.code).toBe(255);
    expect(r.err).toContain('net.ipv4.vs.conntrack is fixed at 0 in uvs');
    r = await run(['--sysctl', 'bogus']);
    expect(r).toEqual({ code: 255, out: '', err: 'uvsadm: net.ipv4.vs.bogus: no such IPVS sysctl\n' });
    expect(fake.sysctl.connReuseMode).toBe(0);
    r = await run(['--sysctl', 'pmtu_disc', '-t', '10.0.0.1:80']);
    expect(r.code).not.toBe(0); // no other options with --sysctl
  });
});

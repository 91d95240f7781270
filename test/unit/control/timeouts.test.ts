/**
 * `--set tcp tcpfin udp` (§3.1): 0 leaves a value unchanged; new conns use the new values; an
 * existing conn keeps its armed expiry until its next packet, which re-applies
 * timeout = table[state] and re-arms; `-L --timeout` shows the three values. Driven through the
 * real control ops and the real socket with uvsadm's main().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../helpers/frames.js';
import { memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS2_MAC } from '../../helpers/lab-mem.js';
import { FWD_MASQ } from '../../../src/model/constants.js';
import { ControlServer } from '../../../src/control/server.js';
import { main } from '../../../src/cli/uvsadm.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';

const VIP = '192.168.10.110';
const CIP = '192.168.10.6';
const RIP = '10.0.0.17';
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, FIN = 0x01;

function setup() {
  const m = memLab();
  m.cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
  m.cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: RIP, port: 80 }, opts: destOpts(FWD_MASQ) });
  m.cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
  m.cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: RIP, port: 53 }, opts: destOpts(FWD_MASQ) });
  const { p0, p1, run, d, clock } = m;
  const cin = (sport: number, flags: number) => { p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport, dport: 80, flags })); run(); p1.takeSent(); };
  const sout = (sport: number, flags: number) => { p1.inject(build({ srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: RIP, daddr: CIP, sport: 80, dport: sport, flags })); run(); p0.takeSent(); };
  const udp = (sport: number) => { p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport, dport: 53, payload: 'q' })); run(); p1.takeSent(); };
  const conn = (cport: number, proto = 'TCP') => {
    const c = d.conns.snapshot(clock.now()).find((x) => x.cport === cport && (proto === 'TCP' ? x.protocol === 6 : x.protocol === 17));
    if (!c) throw new Error(`no conn for ${cport}`);
    return c;
  };
  const established = (sport: number) => { cin(sport, SYN); sout(sport, SYNACK); cin(sport, ACK); };
  return { ...m, cin, sout, udp, conn, established };
}

describe('--set tcp tcpfin udp (control op)', () => {
  it('existing ESTABLISHED conn keeps its armed expiry until its next packet, then takes the new value', () => {
    const t = setup();
    t.established(40000);
    expect(t.conn(40000)).toMatchObject({ state: 'ESTABLISHED', expires: 900 });
    t.clock.advance(100_000);
    expect(t.conn(40000).expires).toBe(800);
    t.cmd({ cmd: 'set-timeouts', tcp: 3600, tcpfin: 0, udp: 0 });
    expect(t.conn(40000).expires).toBe(800); // not moved by --set itself
    t.cin(40000, ACK); // next packet: timeout = table[ESTABLISHED] = 3600 s
    expect(t.conn(40000).expires).toBe(3600);
    // a shorter value also applies at the next packet (the timer is moved earlier)
    t.cmd({ cmd: 'set-timeouts', tcp: 30, tcpfin: 0, udp: 0 });
    t.cin(40000, ACK);
    expect(t.conn(40000).expires).toBe(30);
    t.clock.advance(31_000);
    t.d.tick();
    expect(t.d.conns.snapshot(t.clock.now()).some((c) => c.cport === 40000 && c.protocol === 6)).toBe(false);
  });

  it('new conns use the new ESTABLISHED value; other states keep theirs', () => {
    const t = setup();
    t.cmd({ cmd: 'set-timeouts', tcp: 1800, tcpfin: 0, udp: 0 });
    t.cin(40001, SYN);
    expect(t.conn(40001)).toMatchObject({ state: 'SYN_RECV', expires: 60 });
    t.sout(40001, SYNACK);
    t.cin(40001, ACK);
    expect(t.conn(40001)).toMatchObject({ state: 'ESTABLISHED', expires: 1800 });
  });

  it('tcpfin sets FIN_WAIT (server closes first in NAT: OUT fin ⇒ FIN_WAIT)', () => {
    const t = setup();
    t.established(40002);
    t.cmd({ cmd: 'set-timeouts', tcp: 0, tcpfin: 45, udp: 0 });
    t.sout(40002, FIN | ACK);
    expect(t.conn(40002)).toMatchObject({ state: 'FIN_WAIT', expires: 45 });
    expect(t.conn(40002).expires).toBe(45);
  });

  it('udp: existing conn takes the new value at its next packet, new conns at once', () => {
    const t = setup();
    t.udp(41000);
    expect(t.conn(41000, 'UDP')).toMatchObject({ state: 'UDP', expires: 300 });
    t.cmd({ cmd: 'set-timeouts', tcp: 0, tcpfin: 0, udp: 20 });
    expect(t.conn(41000, 'UDP').expires).toBe(300);
    t.udp(41000);
    expect(t.conn(41000, 'UDP').expires).toBe(20);
    t.udp(41001);
    expect(t.conn(41001, 'UDP').expires).toBe(20);
  });

  it('0 leaves a value unchanged; negative or > INT_MAX/HZ is EINVAL and changes nothing', () => {
    const t = setup();
    t.cmd({ cmd: 'set-timeouts', tcp: 1000, tcpfin: 0, udp: 0 });
    t.cmd({ cmd: 'set-timeouts', tcp: 0, tcpfin: 0, udp: 0 });
    expect(t.d.timeouts.get()).toEqual({ tcp: 1000, tcpfin: 120, udp: 300 });
    for (const bad of [-1, 2147484, 1.5]) {
      const r = t.control.execute({ cmd: 'set-timeouts', tcp: bad, tcpfin: 5, udp: 5 });
      expect(r).toMatchObject({ ok: false, errno: 'EINVAL' });
    }
    expect(t.d.timeouts.get()).toEqual({ tcp: 1000, tcpfin: 120, udp: 300 });
    expect(t.control.execute({ cmd: 'set-timeouts', tcp: 2147483, tcpfin: 0, udp: 0 })).toEqual({ ok: true });
  });
});

describe('uvsadm --set / -L --timeout over the control socket', () => {
  let dir: string;
  let server: ControlServer;
  let t: ReturnType<typeof setup>;
  const services = ServicesDb.parse('http 80/tcp\ndomain 53/udp\n');
  async function uvsadm(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => { out += c.toString(); });
    stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const code = await main(argv, { stdout, stderr, env: { UVS_SOCK: join(dir, 'uvsd.sock') }, services });
    return { code, out, err };
  }
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uvs-timeouts-'));
    t = setup();
    server = new ControlServer(join(dir, 'uvsd.sock'));
    await server.listen((c) => t.control.execute(c));
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('-L --timeout shows the defaults, --set changes them, 0 keeps, conns follow at their next packet', async () => {
    expect(await uvsadm('-L', '--timeout')).toEqual({ code: 0, out: 'Timeout (tcp tcpfin udp): 900 120 300\n', err: '' });
    t.established(40010);
    expect(await uvsadm('--set', '7200', '0', '60')).toEqual({ code: 0, out: '', err: '' });
    expect((await uvsadm('-L', '--timeout')).out).toBe('Timeout (tcp tcpfin udp): 7200 120 60\n');
    expect((await uvsadm('-Ln', '--timeout')).out).toBe('Timeout (tcp tcpfin udp): 7200 120 60\n');
    t.cin(40010, ACK);
    const c = (await uvsadm('-Lnc')).out.split('\n').find((l) => l.includes(`${CIP}:40010`));
    expect(c).toMatch(/^TCP 120:00 ESTABLISHED /);
  });

  it('--set errors: wrong count (exit 2), bad value (exit 2), nothing changed', async () => {
    expect(await uvsadm('--set', '10', '20')).toMatchObject({ code: 2, err: '--set option requires 3 timeout values\n' });
    expect(await uvsadm('--set', '10', 'x', '20')).toMatchObject({ code: 2, err: "invalid timeout value `x' specified\n" });
    expect((await uvsadm('-L', '--timeout')).out).toBe('Timeout (tcp tcpfin udp): 7200 120 60\n');
  });
});

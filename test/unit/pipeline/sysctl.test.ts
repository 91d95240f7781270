/**
 * The IPVS sysctls through the whole Director on memory ports (no root), set as a user sets them
 * (the control command uvsadm --sysctl sends): conn_reuse_mode, sloppy_tcp, nat_icmp_send,
 * pmtu_disc (TUN), secure_tcp and drop_packet with amemthresh / am_droprate (uvs's "memory" is the
 * conn table's free slots), lblc_expiration; and the Sysctls model itself (names, ranges, fixed
 * ones). Kernel behaviour: ipvs-semantics.md §3.2, §4, §5.1, §5.4.
 */
import { describe, expect, it } from 'vitest';
import { build, parse, reassemble } from '../../helpers/frames.js';
import {
  memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC, ROUTER_MAC,
} from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_MASQ, FWD_TUNNEL } from '../../../src/model/constants.js';
import { SYSCTL_DEFS, Sysctls, formatSysctls } from '../../../src/model/sysctl.js';

const VIP = '192.168.10.110';
const RS1 = '10.0.0.7';
const RS2 = '10.0.0.17';
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

type Lab = ReturnType<typeof memLab>;
const set = (l: Lab, name: string, value: string) => l.cmd({ cmd: 'set-sysctl', name, value });

function natSvc(l: Lab): ReturnType<typeof tcpSvc> {
  const svc = tcpSvc(VIP, 80);
  l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_MASQ) });
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ) });
  return svc;
}

/** A client segment to the VIP; where it went (RIP:port) or null. */
function send(l: Lab, sport: number, flags: number): string | null {
  l.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport, dport: 80, flags }));
  l.run();
  l.p0.takeSent();
  const out = l.p1.takeSent();
  if (out.length === 0) return null;
  const f = parse(out[0]!.frame, out[0]!.meta);
  return `${f.daddr}:${f.dport}`;
}

/** A client segment to the VIP; the MAC it left with (DR: which real server), or null. */
function sendMac(l: Lab, sport: number, flags: number): string | null {
  l.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport, dport: 80, flags }));
  l.run();
  l.p0.takeSent();
  const out = l.p1.takeSent();
  return out.length === 0 ? null : parse(out[0]!.frame).dstMac;
}

/** A real server's reply segment to the client (through the director, NAT). */
function reply(l: Lab, rs: string, sport: number, flags: number): void {
  l.p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: rs, daddr: '192.168.10.6', sport: 80, dport: sport, flags }));
  l.run();
}

const connOf = (l: Lab, cport: number) => l.d.conns.snapshot(l.clock.now()).filter((c) => !c.template && c.cport === cport);

describe('Sysctls (the model)', () => {
  it('lists every kernel name in the kernel order with its default, takes and refuses values with clear messages', () => {
    const s = new Sysctls();
    const names = s.list().map((x) => x.name);
    expect(names.slice(0, 6)).toEqual(['amemthresh', 'am_droprate', 'drop_entry', 'drop_packet', 'conntrack', 'secure_tcp']);
    expect(names).toContain('conn_reuse_mode');
    expect(names.length).toBe(SYSCTL_DEFS.length);
    expect(s.get('net.ipv4.vs.conn_reuse_mode')).toBe('1');
    expect(s.get('pmtu_disc')).toBe('1');
    expect(s.get('sync_threshold')).toBe('3\t50');
    expect(s.get('lblc_expiration')).toBe('86400');
    expect(s.set('net.ipv4.vs.lblc_expiration', '60')).toBe('lblc_expiration');
    expect(s.lblcExpiration.ms).toBe(60_000);
    expect(s.get('lblc_expiration')).toBe('60');
    expect(() => s.set('conn_reuse_mode', '7')).toThrow('net.ipv4.vs.conn_reuse_mode=7: out of range 0..3');
    expect(() => s.set('sloppy_tcp', 'on')).toThrow('not an integer');
    expect(() => s.set('cache_bypass', '1')).toThrow('net.ipv4.vs.cache_bypass is fixed at 0 in uvs');
    expect(s.set('snat_reroute', '1')).toBe('snat_reroute'); // the value it has: accepted (sysctl -p of a saved file)
    expect(() => s.get('nope')).toThrow('net.ipv4.vs.nope: no such IPVS sysctl');
    expect(s.connReuseMode).toBe(1); // refusals changed nothing
    expect(formatSysctls([{ name: 'pmtu_disc', value: '1' }])).toBe('net.ipv4.vs.pmtu_disc = 1\n');
  });

  it('is per director and reachable through the control commands (refusal = errno, nothing changed)', () => {
    const l = memLab();
    const other = memLab();
    set(l, 'sloppy_tcp', '1');
    expect(l.d.sysctl.sloppyTcp).toBe(1);
    expect(other.d.sysctl.sloppyTcp).toBe(0);
    const r = l.control.execute({ cmd: 'set-sysctl', name: 'conntrack', value: '1' });
    expect(r).toMatchObject({ ok: false, errno: 'EPERM' });
    const g = l.control.execute({ cmd: 'get-sysctls' });
    expect(g.ok && (g.data as { name: string; value: string }[]).find((x) => x.name === 'sloppy_tcp')?.value).toBe('1');
    const b = l.control.execute({ cmd: 'batch', commands: [{ cmd: 'set-sysctl', name: 'sloppy_tcp', value: '0' }] });
    expect(b.ok).toBe(false);
    expect(l.d.sysctl.sloppyTcp).toBe(1);
  });
});

describe('conn_reuse_mode', () => {
  /** A conn in TIME_WAIT: SYN, SYN+ACK, ACK, FIN both ways, last ACK. */
  function timeWait(l: Lab, sport: number): string {
    const first = send(l, sport, SYN)!;
    const rip = first.split(':')[0]!;
    reply(l, rip, sport, SYN | ACK);
    send(l, sport, ACK);
    send(l, sport, FIN | ACK);
    reply(l, rip, sport, FIN | ACK);
    expect(connOf(l, sport)[0]!.state).toBe('TIME_WAIT');
    return first;
  }

  it('1 (default): a new SYN on a TIME_WAIT conn ends it and is scheduled afresh; 0: the old conn is reused (same dest)', () => {
    const l = memLab();
    natSvc(l);
    const first = timeWait(l, 41000);
    const again = send(l, 41000, SYN);
    expect(again).not.toBe(first); // rr moved on: scheduled afresh
    expect(connOf(l, 41000)).toHaveLength(1);

    const k = memLab();
    natSvc(k);
    set(k, 'conn_reuse_mode', '0');
    const f0 = timeWait(k, 41000);
    expect(send(k, 41000, SYN)).toBe(f0); // the same conn, its state follows the table
    expect(connOf(k, 41000)[0]!.state).toBe('SYN_RECV');
  });

  it('bit 2 also ends a FIN_WAIT conn never answered through the director (DR, NOOUTPUT); mode 1 does not', () => {
    for (const mode of ['1', '3']) {
      const l = memLab();
      const svc = tcpSvc(VIP, 80);
      l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_DROUTE) });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_DROUTE) });
      set(l, 'conn_reuse_mode', mode);
      const first = sendMac(l, 42000, SYN);
      send(l, 42000, ACK);
      send(l, 42000, FIN | ACK);
      expect(connOf(l, 42000)[0]!.state).toBe('FIN_WAIT');
      const again = sendMac(l, 42000, SYN);
      if (mode === '3') expect(again).not.toBe(first);
      else expect(again).toBe(first);
    }
  });

  it('0 also turns off expire_nodest_conn\'s rescheduling of a new SYN to a quiescent dest (both sit behind conn_reuse_mode in the kernel)', () => {
    for (const mode of ['0', '1']) {
      const l = memLab();
      const svc = natSvc(l);
      set(l, 'expire_nodest_conn', '1');
      set(l, 'conn_reuse_mode', mode);
      const first = send(l, 43000, SYN)!;
      l.cmd({ cmd: 'edit-server', svc, dest: { addr: first.split(':')[0]!, port: 80 }, opts: destOpts(FWD_MASQ, 0) });
      const again = send(l, 43000, SYN);
      if (mode === '0') expect(again).toBe(first);
      else expect(again).not.toBe(first);
    }
  });
});

describe('sloppy_tcp', () => {
  it('0: a non-SYN without a conn is not scheduled; 1: any packet without RST starts a conn (ACK → ESTABLISHED)', () => {
    const l = memLab();
    natSvc(l);
    expect(send(l, 44000, ACK)).toBeNull();
    expect(l.d.drops.snapshot()['non-syn-no-conn']).toBe(1);
    set(l, 'sloppy_tcp', '1');
    expect(send(l, 44000, ACK)).not.toBeNull();
    expect(connOf(l, 44000)[0]!.state).toBe('ESTABLISHED');
    expect(send(l, 44001, RST | ACK)).toBeNull(); // RST never schedules
    expect(l.d.drops.snapshot()['non-syn-no-conn']).toBe(2);
  });
});

describe('nat_icmp_send', () => {
  it('1: a NAT real server\'s packet without a conn gets ICMP port unreachable and is dropped; RSTs and 0 pass', () => {
    for (const v of ['0', '1']) {
      const l = memLab();
      natSvc(l);
      set(l, 'nat_icmp_send', v);
      reply(l, RS1, 45000, ACK);
      reply(l, RS1, 45001, RST);
      const icmp = l.p1.takeSent();
      if (v === '0') {
        expect(icmp).toHaveLength(0);
        expect(l.d.drops.snapshot()['nat-no-conn']).toBeUndefined();
        continue;
      }
      expect(icmp).toHaveLength(1); // for the ACK only
      const f = parse(icmp[0]!.frame);
      expect(f).toMatchObject({ proto: 1, saddr: '10.0.0.8', daddr: RS1, dstMac: RS1_MAC, ipOk: true, l4Ok: true });
      expect([icmp[0]!.frame[34], icmp[0]!.frame[35]]).toEqual([3, 3]);
      expect(l.d.drops.snapshot()['nat-no-conn']).toBe(1);
    }
  });
});

describe('schedule_icmp', () => {
  it('1: an ICMP error to the VIP about a packet no conn here knows schedules one (DR: forwarded as is to the picked server); 0: dropped', () => {
    for (const v of ['0', '1']) {
      const l = memLab();
      const svc = tcpSvc(VIP, 80);
      l.cmd({ cmd: 'add-service', svc, opts: svcOpts('sh') });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_DROUTE) });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_DROUTE) });
      set(l, 'schedule_icmp', v);
      // What the client's SYN would get (sh: by client address), learnt on another port number.
      const home = sendMac(l, 50000, SYN);
      // A real server's reply VIP:80 → client:50001 (DR: it never passed here) met a too-small link.
      const replyFrame = build({ srcMac: DIR0_MAC, dstMac: CLIENT_MAC, saddr: VIP, daddr: '192.168.10.6', sport: 80, dport: 50001, flags: SYN | ACK });
      const icmp = build({ proto: 1, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, icmpType: 3, icmpCode: 4,
        sport: 0, dport: 0, payload: replyFrame.subarray(14, 14 + 28) });
      l.p0.inject(icmp);
      l.run();
      const out = l.p1.takeSent();
      if (v === '0') {
        expect(out).toHaveLength(0);
        expect(l.d.drops.snapshot()['icmp-no-conn']).toBe(1);
        continue;
      }
      expect(out).toHaveLength(1);
      const f = parse(out[0]!.frame);
      expect(f).toMatchObject({ proto: 1, saddr: '192.168.10.6', daddr: VIP, dstMac: home!, ipOk: true, l4Ok: true });
      expect(out[0]!.frame.subarray(34)).toEqual(icmp.subarray(34)); // as is (DR)
      // The conn it made is the client's: its next packet on that port finds it.
      expect(connOf(l, 50001)).toHaveLength(1);
      expect(sendMac(l, 50001, ACK)).toBe(home);
    }
  });
});

describe('pmtu_disc (TUN)', () => {
  it('0: a DF packet too big for the tunnel is encapsulated without DF and leaves as IPIP fragments instead of ICMP frag-needed', () => {
    const { p0, p1, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: udpSvc(VIPD, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: RS2, port: 53 }, opts: destOpts(FWD_TUNNEL) });
    cmd({ cmd: 'set-sysctl', name: 'pmtu_disc', value: '0' });
    const payload = new Uint8Array(1472).map((_, i) => i & 255);
    p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, dport: 53, payload }));
    run();
    expect(p0.takeSent()).toHaveLength(0); // no ICMP
    const out = p1.takeSent();
    expect(out).toHaveLength(2);
    const outer = reassemble(out.map((o) => o.frame));
    const o = parse(outer);
    expect(o).toMatchObject({ proto: 4, saddr: '10.0.0.8', daddr: RS2, ipOk: true });
    expect(outer[20]! & 0x40).toBe(0); // outer DF clear
    const inner = parse(new Uint8Array([...outer.subarray(0, 14), ...outer.subarray(34)]));
    expect(inner).toMatchObject({ saddr: '192.168.10.6', daddr: VIPD, dport: 53, l4Ok: true, ipOk: true });
    expect(inner.payload).toEqual(payload);
    expect(d.drops.snapshot()['frag-needed']).toBeUndefined();
  });
});

describe('secure_tcp and drop_packet (conn table pressure)', () => {
  it('secure_tcp=3: the defence table — only the server\'s ACK makes a conn ESTABLISHED, a client\'s ACK alone does not', () => {
    for (const v of ['0', '3']) {
      const l = memLab();
      natSvc(l);
      set(l, 'secure_tcp', v);
      const rs = send(l, 46000, SYN)!.split(':')[0]!;
      reply(l, rs, 46000, SYN | ACK);
      expect(connOf(l, 46000)[0]!.state).toBe(v === '3' ? 'SYNACK' : 'SYN_RECV');
      send(l, 46000, ACK);
      expect(connOf(l, 46000)[0]!.state).toBe(v === '3' ? 'SYNACK' : 'ESTABLISHED');
      reply(l, rs, 46000, ACK); // the server's own ACK (data) makes it ESTABLISHED in both tables
      expect(connOf(l, 46000)[0]!.state).toBe('ESTABLISHED');
      // A spoofed handshake (no server answer seen): SYN then ACK.
      send(l, 46001, SYN);
      send(l, 46001, ACK);
      expect(connOf(l, 46001)[0]!.state).toBe(v === '3' ? 'SYN_RECV' : 'ESTABLISHED');
    }
  });

  it('secure_tcp=1 and drop_packet=1 switch on while free conn slots < amemthresh (reading 2), off again after', () => {
    const l = memLab(); // 1024 conn slots
    natSvc(l);
    set(l, 'amemthresh', '1000'); // pressure once more than 24 conns are in use
    set(l, 'secure_tcp', '1');
    set(l, 'drop_packet', '1');
    expect(l.d.conns.defenceTable).toBe(false);
    let sport = 47000;
    for (let i = 0; i < 40; i++) send(l, sport++, SYN);
    l.clock.advance(1000);
    l.d.tick();
    expect(l.d.sysctl.secureTcp).toBe(2);
    expect(l.d.sysctl.dropPacket).toBe(2);
    expect(l.d.conns.defenceTable).toBe(true);
    // free = 984: rate = floor(1000 / 16) = 62: one new conn in 62 is dropped.
    let dropped = 0;
    for (let i = 0; i < 124; i++) if (send(l, sport++, SYN) === null) dropped++;
    expect(dropped).toBe(2);
    expect(l.d.drops.snapshot()['defence-drop-packet']).toBe(2);
    set(l, 'amemthresh', '10');
    expect(l.d.sysctl.secureTcp).toBe(1);
    expect(l.d.sysctl.dropPacket).toBe(1);
    expect(l.d.conns.defenceTable).toBe(false);
    for (let i = 0; i < 100; i++) expect(send(l, sport++, SYN)).not.toBeNull();
  });

  it('drop_packet=3 drops one new conn in am_droprate always; established conns are never dropped', () => {
    const l = memLab();
    natSvc(l);
    const est = send(l, 48000, SYN);
    set(l, 'am_droprate', '4');
    set(l, 'drop_packet', '3');
    const got = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => send(l, 48000 + i, SYN) !== null);
    expect(got).toEqual([false, true, true, true, false, true, true, true]);
    for (let i = 0; i < 10; i++) expect(send(l, 48000, ACK)).toBe(est);
  });
});

describe('drop_entry (conn table pressure)', () => {
  function udp(l: Lab, sport: number): void {
    l.p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport, dport: 53, payload: 'q' }));
    l.run();
    l.p0.takeSent();
    l.p1.takeSent();
  }

  it('the random pass frees half-open TCP conns at once, and idle ESTABLISHED / UDP conns by their packet count (K todrop_entry)', () => {
    const l = memLab();
    natSvc(l);
    const u = udpSvc(VIP, 53);
    l.cmd({ cmd: 'add-service', svc: u, opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc: u, dest: { addr: RS1, port: 53 }, opts: destOpts(FWD_MASQ) });
    for (let i = 0; i < 10; i++) send(l, 51000 + i, SYN); // SYN_RECV
    for (let i = 0; i < 4; i++) { // ESTABLISHED after 2 client packets
      const rs = send(l, 52000 + i, SYN)!.split(':')[0]!;
      reply(l, rs, 52000 + i, SYN | ACK);
      send(l, 52000 + i, ACK);
    }
    const busy = send(l, 53000, SYN)!.split(':')[0]!; // ESTABLISHED with 10 client packets
    reply(l, busy, 53000, SYN | ACK);
    for (let i = 0; i < 9; i++) send(l, 53000, ACK);
    for (let i = 0; i < 4; i++) udp(l, 54000 + i); // UDP, 1 packet
    const byPort = (lo: number, hi: number) => l.d.conns.snapshot(l.clock.now()).filter((c) => !c.template && c.cport >= lo && c.cport < hi).length;
    expect([byPort(51000, 51010), byPort(52000, 52004), byPort(53000, 53001), byPort(54000, 54004)]).toEqual([10, 4, 1, 4]);
    l.d.conns.dropRandomEntries(50_000, l.clock.now());
    // Half-open conns go at once; the others were active within the last 60 s.
    expect([byPort(51000, 51010), byPort(52000, 52004), byPort(53000, 53001), byPort(54000, 54004)]).toEqual([0, 4, 1, 4]);
    l.clock.advance(61_000);
    l.d.conns.dropRandomEntries(50_000, l.clock.now());
    // Idle now: 1..8 client packets ⇒ dropped (k packets: at one check in k; every slot is looked at
    // many times here); more than 8 ⇒ kept.
    expect([byPort(52000, 52004), byPort(53000, 53001), byPort(54000, 54004)]).toEqual([0, 1, 0]);
  });

  it('drop_entry=1 runs the pass every second while free conn slots < amemthresh (reading 2)', () => {
    const l = memLab(); // 1024 slots
    natSvc(l);
    for (let i = 0; i < 800; i++) send(l, 10000 + i, SYN);
    set(l, 'amemthresh', '100'); // 224 slots free: no pressure
    set(l, 'drop_entry', '1');
    expect(l.d.sysctl.dropEntry).toBe(1);
    l.clock.advance(1000);
    l.d.tick();
    expect(l.d.droppedEntries).toBe(0);
    set(l, 'amemthresh', '1024'); // now under pressure: on at once
    expect(l.d.sysctl.dropEntry).toBe(2);
    for (let i = 0; i < 5; i++) {
      l.clock.advance(1000);
      l.d.tick();
    }
    expect(l.d.droppedEntries).toBeGreaterThan(50); // 32 random slots a second, most of them half-open conns
    expect(l.d.conns.count).toBe(800 - l.d.droppedEntries);
  });
});

describe('run_estimation', () => {
  it('0 suspends the rate estimator (the rates keep their values); 1 resumes it', () => {
    const l = memLab();
    natSvc(l);
    const svc = () => l.d.config.services[0]!.stats;
    for (let i = 0; i < 8; i++) send(l, 55000 + i, SYN);
    l.d.estimateRates();
    const cps = svc().cps;
    expect(cps).toBeGreaterThan(0); // 8 conns in one 2 s period, EWMA 1/4: 1 conn/s × 2^10
    set(l, 'run_estimation', '0');
    for (let i = 0; i < 8; i++) send(l, 56000 + i, SYN);
    l.d.estimateRates();
    l.d.estimateRates();
    expect(svc().cps).toBe(cps);
    expect(l.d.stats.cps).toBe(cps);
    set(l, 'run_estimation', '1');
    l.d.estimateRates();
    expect(svc().cps).toBeGreaterThan(cps);
  });
});

describe('lblc_expiration', () => {
  it('a set applies to existing lblc services: an entry unused for longer is collected at the next full GC pass', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('lblc') });
    l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_MASQ) });
    send(l, 49000, SYN);
    const sched = l.d.config.services[0]!.sched as unknown as { cache: { entries: number; expirationMs: number } };
    expect(sched.cache.entries).toBe(1);
    set(l, 'lblc_expiration', '60');
    expect(sched.cache.expirationMs).toBe(60_000);
    // The GC runs every 60 s and makes a full pass every 30th run (K ip_vs_lblc_check_expire).
    for (let i = 0; i < 31 * 60; i++) {
      l.clock.advance(1000);
      l.d.tick();
    }
    expect(sched.cache.entries).toBe(0);
  });
});


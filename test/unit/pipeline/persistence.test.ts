/**
 * Persistence and service kinds through the whole Director on memory ports (no root): -p, the
 * template lifetime on a fake clock, -M granularity, port-0 services, quiescent (weight 0) and
 * removed dests, -o one-packet scheduling, fwmark services classified by mark rules, and how the
 * templates show in the connection listing (ipvs-semantics.md §4).
 */
import { describe, expect, it } from 'vitest';
import { arp, build, mac, parse } from '../../helpers/frames.js';
import {
  memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC, RS2_MAC, ROUTER_MAC,
} from '../../helpers/lab-mem.js';
import { parseIp } from '../../../src/model/addr.js';
import { FWD_MASQ, SVC_F_ONEPACKET, SVC_F_PERSISTENT } from '../../../src/model/constants.js';
import { formatConnections } from '../../../src/cli/ipvsadm/format.js';
import type { MarkRuleSpec } from '../../../src/control/types.js';

const VIP = '192.168.10.110';
const RS1 = '10.0.0.7';
const RS2 = '10.0.0.17';
const SYN = 0x02;
const RST = 0x04;
const P = SVC_F_PERSISTENT;
const fw = (mark: number) => ({ protocol: 0, af: 2, addr: '', port: 0, fwmark: mark });

type Lab = ReturnType<typeof memLab>;

/** Two NAT dests, RS1 added first (so the kernel list, and rr's order, is RS2, RS1). */
function twoDests(l: Lab, svc: ReturnType<typeof tcpSvc>, port = svc.port): void {
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port }, opts: destOpts(FWD_MASQ) });
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port }, opts: destOpts(FWD_MASQ) });
}

let sportSeq = 30000;

/** One fresh TCP connection attempt (a SYN from a new source port): where it went, or null. */
function connect(l: Lab, saddr: string, dport: number, o: { daddr?: string; sport?: number; proto?: number } = {}): string | null {
  const proto = o.proto ?? 6;
  l.p0.inject(build({
    proto, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr, daddr: o.daddr ?? VIP, sport: o.sport ?? ++sportSeq, dport,
    ...(proto === 6 ? { flags: SYN } : { payload: 'q' }),
  }));
  l.run();
  const out = l.p1.takeSent();
  l.p0.takeSent();
  if (out.length === 0) return null;
  const f = parse(out[0]!.frame, out[0]!.meta);
  expect(f.l4Ok && f.ipOk).toBe(true);
  return `${f.daddr}:${f.dport}`;
}

const templates = (l: Lab) => l.d.conns.snapshot(l.clock.now()).filter((c) => c.template);
const conns = (l: Lab) => l.d.conns.snapshot(l.clock.now()).filter((c) => !c.template);

/**
 * Advances the fake clock in 1 s steps, ticking the director like uvsd does; the neighbours
 * answer (re-learnt) so ARP ageing never gets in the way of the frames the tests look at.
 */
function advance(l: Lab, seconds: number): void {
  for (let i = 0; i < seconds; i++) {
    l.clock.advance(1000);
    l.d.tick();
    const now = l.clock.now();
    for (const [a, m, port] of [['192.168.10.6', CLIENT_MAC, 0], [RS1, RS1_MAC, 1], [RS2, RS2_MAC, 1], ['10.0.0.200', ROUTER_MAC, 1]] as const) {
      l.d.neigh.learn(parseIp(a), mac(m), 0, port, now, true);
    }
    l.p0.takeSent();
    l.p1.takeSent();
  }
}

describe('persistence (-p)', () => {
  it('-p 30 keeps a client on one dest across fresh connections; the template is listed as the kernel shows it', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 30 }) });
    twoDests(l, svc);
    const a = [1, 2, 3, 4, 5, 6].map(() => connect(l, '192.168.10.6', 80));
    expect(new Set(a)).toEqual(new Set([`${RS2}:80`])); // rr's first pick: the newest dest
    // Another client gets the next rr pick: the scheduler ran once per template, not per conn.
    expect(connect(l, '192.168.10.9', 80)).toBe(`${RS1}:80`);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    const t = templates(l);
    expect(t).toHaveLength(2);
    expect(t.find((x) => x.caddr === '192.168.10.6')).toMatchObject({
      protocol: 6, cport: 0, vaddr: VIP, vport: 80, daddr: RS2, dport: 80, state: 'NONE', expires: 30,
    });
    // Each dest holds one template (persistConns), RS2 being the list head.
    expect(l.d.config.services[0]!.dests.map((d) => d.persistConns)).toEqual([1, 1]);
    const text = formatConnections(l.d.conns.snapshot(l.clock.now()), { numeric: true, persistentConn: false });
    expect(text).toMatch(/^TCP 00:30\s+NONE\s+192\.168\.10\.6:0\s+192\.168\.10\.110:80\s+10\.0\.0\.17:80$/m);
  });

  it('the template outlives its timeout while it controls conns (re-armed 60 s), then expires and the client is rescheduled', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 30 }) });
    twoDests(l, svc);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`); // conn in SYN_RECV: 60 s
    advance(l, 31);
    // Due at 30 s but still controlling the SYN_RECV conn: kept, re-armed for 60 s.
    expect(templates(l)).toHaveLength(1);
    expect(templates(l)[0]!.expires).toBeGreaterThanOrEqual(58);
    expect(conns(l)).toHaveLength(1);
    expect(connect(l, '192.168.10.6', 80, { sport: 50000 })).toBe(`${RS2}:80`);
    // Both conns end (SYN_RECV 60 s); the template (now 60 s, re-armed by the second conn) follows.
    advance(l, 61);
    expect(conns(l)).toHaveLength(0);
    expect(templates(l)).toHaveLength(1);
    advance(l, 61);
    expect(templates(l)).toHaveLength(0);
    expect(l.d.config.services[0]!.dests.every((d) => d.persistConns === 0)).toBe(true);
    // The rr cursor stayed on RS2: a fresh schedule for the same client now gives RS1.
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
  });

  it('a template that controls no conn dies at its timeout', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 30 }) });
    twoDests(l, svc);
    const sport = 41000;
    expect(connect(l, '192.168.10.6', 80, { sport })).toBe(`${RS2}:80`);
    // The server resets: the conn goes to CLOSE (10 s) and is gone long before the template.
    // (A client RST leaves SYN_RECV as it is, as in the kernel's state table.)
    l.p1.inject(build({ srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: RS2, daddr: '192.168.10.6', sport: 80, dport: sport, flags: RST }));
    l.run();
    l.p0.takeSent();
    expect(conns(l)[0]!.state).toBe('CLOSE');
    advance(l, 15);
    expect(conns(l)).toHaveLength(0);
    expect(templates(l)).toHaveLength(1);
    advance(l, 14);
    expect(templates(l)).toHaveLength(1); // 29 s: still there
    advance(l, 2);
    expect(templates(l)).toHaveLength(0); // 31 s: gone
  });

  it('-M 255.255.255.0 makes a /24 of clients one persistence client', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 300, netmask: '255.255.255.0' }) });
    twoDests(l, svc);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.9', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.250', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.11.5', 80)).toBe(`${RS1}:80`);
    expect(connect(l, '192.168.11.77', 80)).toBe(`${RS1}:80`);
    expect(templates(l).map((t) => t.caddr).sort()).toEqual(['192.168.10.0', '192.168.11.0']);
  });

  it('port-0 service (-t VIP:0 -p) catches every port, keeps the client on one dest and keeps its destination port', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 0);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 360 }) });
    twoDests(l, svc, 0);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.6', 443)).toBe(`${RS2}:443`);
    expect(connect(l, '192.168.10.6', 22)).toBe(`${RS2}:22`);
    expect(connect(l, '192.168.10.9', 443)).toBe(`${RS1}:443`);
    expect(templates(l).find((t) => t.caddr === '192.168.10.6')).toMatchObject({ protocol: 6, vport: 0, dport: 0, daddr: RS2 });
    expect(templates(l)).toHaveLength(2);
    // An exact service on the same VIP wins over the port-0 one.
    const web = tcpSvc(VIP, 8080);
    l.cmd({ cmd: 'add-service', svc: web, opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc: web, dest: { addr: RS1, port: 9000 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 8080)).toBe(`${RS1}:9000`);
  });

  it('a quiescent dest (weight 0) keeps its persistent clients but gets no new ones', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 300 }) });
    twoDests(l, svc);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    l.cmd({ cmd: 'edit-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ, 0) });
    for (let i = 0; i < 3; i++) expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    for (const c of ['192.168.10.7', '192.168.10.8', '192.168.10.9']) expect(connect(l, c, 80)).toBe(`${RS1}:80`);
  });

  it('expire_quiescent_template=1: a template to a quiescent dest is invalid, its client is rescheduled', () => {
    const l = memLab();
    l.cmd({ cmd: 'set-sysctl', name: 'expire_quiescent_template', value: '1' });
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 300 }) });
    twoDests(l, svc);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    l.cmd({ cmd: 'edit-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ, 0) });
    for (let i = 0; i < 3; i++) expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    // The old template lingers re-keyed while its conns live; the client's new one points at RS1.
    expect(templates(l).filter((t) => t.vport === 80).map((t) => t.daddr)).toEqual([RS1]);
  });

  it('expire_nodest_conn=1: a new SYN on a conn to a quiescent dest expires it and is scheduled anew', () => {
    for (const sysctl of [false, true]) {
      const l = memLab();
      l.cmd({ cmd: 'set-sysctl', name: 'net.ipv4.vs.expire_nodest_conn', value: sysctl ? '1' : '0' });
      const svc = tcpSvc(VIP, 80);
      l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
      twoDests(l, svc);
      expect(connect(l, '192.168.10.6', 80, { sport: 41000 })).toBe(`${RS2}:80`);
      l.cmd({ cmd: 'edit-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ, 0) });
      // The same client port again (a reused port): the conn is found; without the sysctl it keeps it.
      expect(connect(l, '192.168.10.6', 80, { sport: 41000 })).toBe(sysctl ? `${RS1}:80` : `${RS2}:80`);
      expect(conns(l).map((c) => c.daddr)).toEqual([sysctl ? RS1 : RS2]);
    }
  });

  it('a removed dest invalidates its templates: the client is rescheduled', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 300 }) });
    twoDests(l, svc);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    l.cmd({ cmd: 'delete-server', svc, dest: { addr: RS2, port: 80 } });
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    const t = templates(l);
    // The old template lingers re-keyed (ports 65535) while its conn lives; the new one is valid.
    expect(t.map((x) => `${x.daddr}:${x.vport}`).sort()).toEqual([`${RS2}:65535`, `${RS1}:80`]);
  });

  it('an FTP (port 21) template has vport 0 and dport 0', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 21);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: P, timeout: 300 }) });
    l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 21 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 21)).toBe(`${RS1}:21`);
    expect(templates(l)[0]).toMatchObject({ vport: 0, dport: 0, daddr: RS1 });
  });
});

describe('removed dests and expire_nodest_conn', () => {
  /** A SYN from sport to the VIP; where it went (null: dropped). */
  const syn = (l: Lab, sport: number) => connect(l, '192.168.10.6', 80, { sport });

  it('expire_nodest_conn=0 (default): a conn to a removed dest drops its packets, a SYN on its tuple included', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
    twoDests(l, svc);
    expect(syn(l, 40001)).toBe(`${RS2}:80`);
    l.cmd({ cmd: 'delete-server', svc, dest: { addr: RS2, port: 80 } });
    const before = l.d.drops.counts.slice();
    expect(syn(l, 40001)).toBeNull(); // same tuple: the old conn (SYN_RECV) to the removed RS2
    expect(syn(l, 40002)).toBe(`${RS1}:80`);
    expect(conns(l).length).toBe(2);
    expect(l.d.drops.counts.reduce((a, x, i) => a + x - (before[i] ?? 0), 0)).toBe(1);
  });

  it('expire_nodest_conn=1: removing a dest flushes its conns, and a packet of such a conn is rescheduled', () => {
    const l = memLab();
    l.cmd({ cmd: 'set-sysctl', name: 'expire_nodest_conn', value: '1' });
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
    twoDests(l, svc);
    expect(syn(l, 40001)).toBe(`${RS2}:80`);
    expect(syn(l, 40002)).toBe(`${RS1}:80`);
    l.cmd({ cmd: 'delete-server', svc, dest: { addr: RS2, port: 80 } });
    expect(conns(l).map((c) => c.daddr)).toEqual([RS1]); // RS2's conn flushed at once
    expect(syn(l, 40001)).toBe(`${RS1}:80`);
    // A conn still bound to a dest that became unavailable (here: flushed out of the way first, then
    // the dest object made unavailable behind the flush's back) is expired by its next packet.
    const rs1 = l.d.config.services[0]!.dests.find((d) => d.port === 80 && d.addr === parseIp(RS1))!;
    l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ) });
    l.cmd({ cmd: 'set-sysctl', name: 'expire_nodest_conn', value: '0' });
    l.cmd({ cmd: 'delete-server', svc, dest: { addr: RS1, port: 80 } });
    l.cmd({ cmd: 'set-sysctl', name: 'expire_nodest_conn', value: '1' });
    expect(rs1.available).toBe(false);
    expect(syn(l, 40002)).toBe(`${RS2}:80`); // its conn to RS1 expired by this SYN, rescheduled
    expect(conns(l).filter((c) => c.cport === 40002).map((c) => c.daddr)).toEqual([RS2]);
    expect(conns(l).filter((c) => c.cport === 40001).map((c) => c.daddr)).toEqual([RS1]); // untouched until its next packet
  });
});

describe('one-packet scheduling (-o)', () => {
  it('schedules every UDP datagram anew and leaves no conn', () => {
    const l = memLab();
    const svc = udpSvc(VIP, 53);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: SVC_F_ONEPACKET }) });
    twoDests(l, svc);
    const got = [0, 1, 2, 3].map(() => connect(l, '192.168.10.6', 53, { proto: 17, sport: 5353 }));
    expect(got).toEqual([`${RS2}:53`, `${RS1}:53`, `${RS2}:53`, `${RS1}:53`]);
    expect(l.d.conns.count).toBe(0);
    const dests = l.d.config.services[0]!.dests;
    expect(dests.map((d) => d.inactConns + d.activeConns)).toEqual([0, 0]);
    expect(dests.map((d) => d.stats.conns)).toEqual([2, 2]);
  });

  it('without -o the same flow stays on one dest (contrast)', () => {
    const l = memLab();
    const svc = udpSvc(VIP, 53);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
    twoDests(l, svc);
    const got = [0, 1, 2].map(() => connect(l, '192.168.10.6', 53, { proto: 17, sport: 5353 }));
    expect(got).toEqual([`${RS2}:53`, `${RS2}:53`, `${RS2}:53`]);
    expect(l.d.conns.count).toBe(1);
  });

  it('-o with -p: every datagram follows the template, only the template remains', () => {
    const l = memLab();
    const svc = udpSvc(VIP, 53);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: SVC_F_ONEPACKET | P, timeout: 60 }) });
    twoDests(l, svc);
    const got = [0, 1, 2].map((i) => connect(l, '192.168.10.6', 53, { proto: 17, sport: 6000 + i }));
    expect(got).toEqual([`${RS2}:53`, `${RS2}:53`, `${RS2}:53`]);
    expect(conns(l)).toHaveLength(0);
    expect(templates(l)).toHaveLength(1);
    expect(templates(l)[0]).toMatchObject({ protocol: 17, vport: 53, daddr: RS2, expires: 60 });
  });

  it('-o is refused for TCP services by the parser and dropped by the daemon', () => {
    const l = memLab();
    const svc = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr', { flags: SVC_F_ONEPACKET }) });
    expect(l.d.config.services[0]!.flags & SVC_F_ONEPACKET).toBe(0);
  });
});

describe('fwmark services classified by mark rules', () => {
  const https: MarkRuleSpec = { protocol: 6, daddr: VIP, dprefix: 32, saddr: '', sprefix: 0, dports: [[80, 80], [443, 443]], mark: 10 };

  it('-A -f 10 -s rr -p binds a client to one dest for both 80 and 443 (the documents\' HTTPS example)', () => {
    const l = memLab();
    l.cmd({ cmd: 'add-mark-rule', rule: https });
    l.cmd({ cmd: 'add-service', svc: fw(10), opts: svcOpts('rr', { flags: P, timeout: 360 }) });
    l.cmd({ cmd: 'add-server', svc: fw(10), dest: { addr: RS1, port: 0 }, opts: destOpts(FWD_MASQ) });
    l.cmd({ cmd: 'add-server', svc: fw(10), dest: { addr: RS2, port: 0 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.6', 443)).toBe(`${RS2}:443`);
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    expect(connect(l, '192.168.10.9', 443)).toBe(`${RS1}:443`);
    expect(connect(l, '192.168.10.9', 80)).toBe(`${RS1}:80`);
    // One template per client for the mark: <IPPROTO_IP, caddr, 0, vaddr = mark, 0, daddr, 0>.
    const t = templates(l);
    expect(t).toHaveLength(2);
    expect(t.find((x) => x.caddr === '192.168.10.6')).toMatchObject({ protocol: 0, cport: 0, vaddr: '0.0.0.10', vport: 0, daddr: RS2, dport: 0 });
    const text = formatConnections(l.d.conns.snapshot(l.clock.now()), { numeric: true, persistentConn: false });
    expect(text).toMatch(/^IP\s+06:00\s+NONE\s+192\.168\.10\.6:0\s+0\.0\.0\.10:0\s+10\.0\.0\.17:0$/m);
    // Conns keep the VIP and the client's port.
    expect(conns(l).filter((c) => c.caddr === '192.168.10.6').map((c) => `${c.vaddr}:${c.vport}`).sort())
      .toEqual([`${VIP}:443`, `${VIP}:80`, `${VIP}:80`]);
  });

  it('ports outside the rule are not marked; the rule VIP is owned (ARP answered)', () => {
    const l = memLab();
    l.cmd({ cmd: 'add-mark-rule', rule: https });
    l.cmd({ cmd: 'add-service', svc: fw(10), opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc: fw(10), dest: { addr: RS1, port: 0 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 22)).toBeNull();
    expect(connect(l, '192.168.10.6', 443, { proto: 17 })).toBeNull();
    expect(connect(l, '192.168.10.6', 443)).toBe(`${RS1}:443`);
    l.p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', VIP));
    l.run();
    const replies = l.p0.takeSent();
    expect(replies).toHaveLength(1);
  });

  it('a marked packet goes to the fwmark service even when a proto/VIP/port service exists (the kernel checks marks first)', () => {
    const l = memLab();
    const web = tcpSvc(VIP, 80);
    l.cmd({ cmd: 'add-service', svc: web, opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc: web, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    // A mark with no fwmark service falls through to the VIP:port service.
    l.cmd({ cmd: 'add-mark-rule', rule: https });
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    l.cmd({ cmd: 'add-service', svc: fw(10), opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc: fw(10), dest: { addr: RS2, port: 0 }, opts: destOpts(FWD_MASQ) });
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS2}:80`);
    // Established conns stay where they are: classification only runs on a conn miss.
    const sport = 47000;
    l.cmd({ cmd: 'del-mark-rule', rule: https });
    expect(connect(l, '192.168.10.6', 80, { sport })).toBe(`${RS1}:80`);
    l.cmd({ cmd: 'add-mark-rule', rule: https });
    expect(connect(l, '192.168.10.6', 80, { sport })).toBe(`${RS1}:80`);
  });

  it('source-restricted rules and first-match-wins pick the service', () => {
    const l = memLab();
    l.cmd({ cmd: 'add-mark-rule', rule: { ...https, saddr: '192.168.10.0', sprefix: 28, mark: 1 } });
    l.cmd({ cmd: 'add-mark-rule', rule: { ...https, mark: 2 } });
    for (const [m, rs] of [[1, RS1], [2, RS2]] as const) {
      l.cmd({ cmd: 'add-service', svc: fw(m), opts: svcOpts('rr') });
      l.cmd({ cmd: 'add-server', svc: fw(m), dest: { addr: rs, port: 0 }, opts: destOpts(FWD_MASQ) });
    }
    expect(connect(l, '192.168.10.6', 80)).toBe(`${RS1}:80`);
    expect(connect(l, '192.168.10.60', 80)).toBe(`${RS2}:80`);
  });
});

/**
 * IPv4 fragments through the director: the fragments after the first follow the conn of their
 * datagram's first fragment (uvs forwards fragments as they come; the kernel reassembles and
 * fragments again — the receiver reassembles the same datagram either way), and a packet
 * without DF that is too big for the outgoing MTU leaves as fragments.
 */
import { describe, expect, it } from 'vitest';
import { build, fragmentFrame, parse, reassemble } from '../../helpers/frames.js';
import { HELD_FRAGS } from '../../../src/pipeline/director.js';
import { memLab, udpSvc, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC, RS2_MAC, ROUTER_MAC } from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, SVC_F_ONEPACKET } from '../../../src/model/constants.js';
import { StepTracer, renderEvent } from '../../../src/trace/step-tracer.js';
import type { TraceEvent } from '../../../src/trace/attach.js';
import { setIpv4Checksum } from '../../../src/wire/checksum.js';

const VIP = '192.168.10.110';
const CIP = '192.168.10.6';
const payload = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => (i * 13 + seed) & 255);
const ipId = (f: Uint8Array) => (f[18]! << 8) | f[19]!;

describe('IPv4 fragments', () => {
  it('NAT: every fragment of a datagram follows its first one, both ways; the receiver reassembles a valid datagram', () => {
    const { p0, p1, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 5353 }, opts: destOpts(FWD_MASQ) });
    const q = payload(3000);
    const req = build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 53, payload: q, df: false, id: 0x4242 });
    for (const f of fragmentFrame(req, 1500)) p0.inject(f);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(3);
    for (const f of out) {
      expect(parse(f)).toMatchObject({ daddr: '10.0.0.17', saddr: CIP, dstMac: RS2_MAC, ttl: 63, ipOk: true });
      expect(ipId(f)).toBe(0x4242);
    }
    const whole = parse(reassemble(out));
    expect(whole).toMatchObject({ saddr: CIP, daddr: '10.0.0.17', sport: 40000, dport: 5353, l4Ok: true });
    expect(whole.payload).toEqual(q);
    // The reply, fragmented by the real server.
    const a = payload(4000, 9);
    const rep = build({ proto: 17, srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.17', daddr: CIP, sport: 5353, dport: 40000, payload: a, df: false, id: 7 });
    for (const f of fragmentFrame(rep, 1500)) p1.inject(f);
    run();
    const back = p0.takeSent().map((o) => o.frame);
    expect(back).toHaveLength(3);
    const w2 = parse(reassemble(back));
    expect(w2).toMatchObject({ saddr: VIP, daddr: CIP, sport: 53, dport: 40000, dstMac: CLIENT_MAC, l4Ok: true });
    expect(w2.payload).toEqual(a);
    // Last fragments forget their datagrams; counters count each datagram once, at its full length.
    expect(d.frags.size(d.clock.now())).toBe(0);
    const dest = d.config.services[0]!.dests[0]!;
    expect(dest.stats).toMatchObject({ conns: 1, inpkts: 1, inbytes: 20 + 8 + 3000, outpkts: 1, outbytes: 20 + 8 + 4000 });
    expect(d.conns.count).toBe(1);
  });

  it('a later fragment that comes before its first one is held until the first comes', () => {
    const { p0, p1, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_MASQ) });
    const q = payload(3000);
    const [first, second, third] = fragmentFrame(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: q, df: false }), 1500);
    p0.inject(third!);
    run();
    expect(p1.takeSent()).toHaveLength(0);
    p0.inject(second!);
    p0.inject(first!);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(3);
    const w = parse(reassemble(out));
    expect(w).toMatchObject({ daddr: '10.0.0.17', l4Ok: true });
    expect(w.payload).toEqual(q);
    expect(d.frags.size(d.clock.now())).toBe(0);
    expect(d.drops.snapshot()['fragment-no-conn']).toBeUndefined();
    const dest = d.config.services[0]!.dests[0]!;
    expect(dest.stats).toMatchObject({ inpkts: 1, inbytes: 20 + 8 + 3000 });
    // A NAT reply whose last fragment overtakes the first: held too, then mapped back to the VIP.
    const a = payload(2500, 4);
    const [r1, r2] = fragmentFrame(build({ proto: 17, srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.17', daddr: CIP, sport: 53, dport: w.sport, payload: a, df: false }), 1500);
    p1.inject(r2!);
    p1.inject(r1!);
    run();
    const back = p0.takeSent().map((o) => o.frame);
    expect(back).toHaveLength(2);
    const w2 = parse(reassemble(back));
    expect(w2).toMatchObject({ saddr: VIP, daddr: CIP, sport: 53, l4Ok: true });
    expect(w2.payload).toEqual(a);
  });

  it('held fragments are bounded: the oldest gives way, and those whose first never comes are dropped after 30 s', () => {
    const { p0, p1, cmd, run, d, clock } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_MASQ) });
    const dgram = (id: number) => fragmentFrame(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: payload(2000), df: false, id }), 1500);
    // HELD_FRAGS + 1 datagrams' second fragments, a ms apart: the first one held is dropped.
    for (let id = 1; id <= HELD_FRAGS + 1; id++) {
      p0.inject(dgram(id)[1]!);
      run();
      clock.advance(1);
    }
    expect(d.drops.snapshot()['fragment-no-conn']).toBe(1);
    // Datagram 2's first fragment releases its held second one; datagram 1's was dropped.
    p0.inject(dgram(2)[0]!);
    p0.inject(dgram(1)[0]!);
    run();
    expect(p1.takeSent()).toHaveLength(3);
    clock.advance(30_000);
    d.tick();
    expect(d.drops.snapshot()['fragment-no-conn']).toBe(1 + HELD_FRAGS - 1);
    // Nothing is held any more, and the pool works: a new out-of-order datagram goes through.
    const [a, b] = dgram(99);
    p0.inject(b!);
    run();
    p0.inject(a!);
    run();
    expect(p1.takeSent()).toHaveLength(2);
  });

  it('fragments after the first may come in any order; the entry goes once all of the datagram went through', () => {
    const { p0, p1, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_MASQ) });
    const q = payload(5000);
    const [f1, f2, f3, f4] = fragmentFrame(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: q, df: false }), 1500);
    for (const f of [f1!, f4!, f2!]) p0.inject(f); // the last before two middle ones
    run();
    expect(d.frags.size(d.clock.now())).toBe(1);
    p0.inject(f3!);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(4);
    expect(parse(reassemble(out))).toMatchObject({ daddr: '10.0.0.17', l4Ok: true });
    expect(d.frags.size(d.clock.now())).toBe(0);
    expect(d.drops.snapshot()['fragment-no-conn']).toBeUndefined();
  });

  it('a later fragment after its conn expired (slot reused by another conn) is not forwarded to that conn', () => {
    const { p0, p1, cmd, run, d, clock } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_MASQ) });
    const req = build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: payload(3000), df: false });
    const [first, second] = fragmentFrame(req, 1500);
    p0.inject(first!);
    run();
    expect(p1.takeSent()).toHaveLength(1);
    // UDP conns live 300 s; let it expire, then another client takes the slot.
    clock.advance(301_000);
    d.tick();
    expect(d.conns.count).toBe(0);
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.7', daddr: VIP, dport: 53, payload: 'x' }));
    run();
    expect(p1.takeSent()).toHaveLength(1);
    p0.inject(second!);
    run();
    expect(p1.takeSent()).toHaveLength(0); // held: its first fragment (as far as uvs knows) is still to come
    clock.advance(30_000);
    d.tick();
    expect(d.drops.snapshot()['fragment-no-conn']).toBe(1);
  });

  it('FULLNAT: the fragments carry the local address to the real server and the VIP back', () => {
    const { p0, p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.1.7', port: 53 }, opts: destOpts(FWD_FULLNAT) });
    cmd({ cmd: 'add-laddr', svc: udpSvc(VIP, 53), laddr: '10.0.0.50' });
    const q = payload(2500);
    for (const f of fragmentFrame(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 53, payload: q, df: false }), 1500)) p0.inject(f);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(2);
    const w = parse(reassemble(out));
    expect(w).toMatchObject({ saddr: '10.0.0.50', daddr: '10.0.1.7', dport: 53, dstMac: ROUTER_MAC, l4Ok: true });
    expect(w.payload).toEqual(q);
    const a = payload(2500, 3);
    for (const f of fragmentFrame(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '10.0.1.7', daddr: '10.0.0.50', sport: 53, dport: w.sport, payload: a, df: false }), 1500)) p1.inject(f);
    run();
    const back = p0.takeSent().map((o) => o.frame);
    expect(back).toHaveLength(2);
    const w2 = parse(reassemble(back));
    expect(w2).toMatchObject({ saddr: VIP, daddr: CIP, sport: 53, dport: 40000, l4Ok: true });
    expect(w2.payload).toEqual(a);
  });

  it('DR: fragments only get the real server’s MAC', () => {
    const { p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: udpSvc(VIPD, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(FWD_DROUTE) });
    const frags = fragmentFrame(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CIP, daddr: VIPD, dport: 53, payload: payload(3000), df: false }), 1500);
    for (const f of frags) p1.inject(f);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(3);
    out.forEach((f, k) => {
      expect(parse(f)).toMatchObject({ dstMac: RS1_MAC, daddr: VIPD, ttl: 63, ipOk: true });
      expect(f.subarray(34)).toEqual(frags[k]!.subarray(34));
    });
  });

  it('TUN: a packet without DF too big for the tunnel is fragmented before encapsulation, so no IPIP packet is a fragment', () => {
    const { p1, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: udpSvc(VIPD, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_TUNNEL) });
    const q = payload(3000);
    // Fragments from the client (1500, 1500, 68 bytes), then a whole 1400-byte datagram without DF.
    const frags = fragmentFrame(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CIP, daddr: VIPD, sport: 40000, dport: 53, payload: q, df: false, id: 99 }), 1500);
    for (const f of frags) p1.inject(f);
    const q2 = payload(1472, 5);
    p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CIP, daddr: VIPD, sport: 40001, dport: 53, payload: q2, df: false, id: 100, partial: true }),
      { flags: 1, csumStart: 34, csumOffset: 6 });
    run();
    const out = p1.takeSent();
    // Tunnel MTU 1480: each 1500-byte fragment becomes two, the small one stays one; the 1500-byte datagram two.
    expect(out).toHaveLength(7);
    const inner = out.map((o) => {
      const f = o.frame;
      expect(o.meta[0]).toBe(0);
      expect(parse(f)).toMatchObject({ proto: 4, saddr: '10.0.0.8', daddr: '10.0.0.17', dstMac: RS2_MAC, ipOk: true });
      expect(f.length - 14).toBeLessThanOrEqual(1500);
      expect((f[20]! << 8) | f[21]!).toBe(0); // the IPIP packet is whole: no MF, offset 0, no DF
      return new Uint8Array([...f.subarray(0, 14), ...f.subarray(34)]);
    });
    const byId = (id: number) => inner.filter((f) => ipId(f) === id);
    const w = parse(reassemble(byId(99)));
    expect(w).toMatchObject({ saddr: CIP, daddr: VIPD, dport: 53, l4Ok: true });
    expect(w.payload).toEqual(q);
    const w2 = parse(reassemble(byId(100)));
    expect(w2).toMatchObject({ sport: 40001, l4Ok: true });
    expect(w2.payload).toEqual(q2);
    expect(d.drops.snapshot()['frame-too-big']).toBeUndefined();
  });

  it('a packet without DF larger than the outgoing MTU leaves as fragments; with DF it gets ICMP fragmentation-needed', () => {
    const { p0, p1, cmd, run, d } = memLab({ mtu1: 1000 });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(FWD_MASQ) });
    const q = payload(1400);
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40001, dport: 53, payload: q, df: false }));
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(2);
    for (const f of out) expect(f.length - 14).toBeLessThanOrEqual(1000);
    const w = parse(reassemble(out));
    expect(w).toMatchObject({ saddr: CIP, daddr: '10.0.0.7', dport: 53, l4Ok: true });
    expect(w.payload).toEqual(q);
    // A partial checksum (local sender with offload) is completed before the payload is split.
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40002, dport: 53, payload: q, df: false, partial: true }),
      { flags: 1, csumStart: 34, csumOffset: 6 });
    run();
    const out2 = p1.takeSent();
    expect(out2).toHaveLength(2);
    for (const o of out2) expect(o.meta[0]).toBe(0);
    expect(parse(reassemble(out2.map((o) => o.frame)))).toMatchObject({ l4Ok: true });
    // DF: not fragmented; the client is told the MTU.
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40003, dport: 53, payload: q }));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(p0.takeSent().map((o) => parse(o.frame).proto)).toEqual([1]);
    expect(d.drops.snapshot()['frag-needed']).toBe(1);
  });

  it('a fragmented echo request to an owned address is a counted drop, not a reply over a piece of it', () => {
    const { p0, run, d } = memLab();
    const frags = fragmentFrame(build({ proto: 1, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: '192.168.10.100', payload: payload(2000), df: false }), 1500);
    for (const f of frags) p0.inject(f);
    run();
    expect(p0.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()).toMatchObject({ 'echo-fragmented': 1, 'fragment-no-conn': 1 });
  });

  it('TCP fragments follow their conn too', () => {
    const { p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 8080 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags: 0x02 }));
    run();
    p1.takeSent();
    const q = payload(2000);
    for (const f of fragmentFrame(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags: 0x18, payload: q, df: false }), 1500)) p0.inject(f);
    run();
    const out = p1.takeSent().map((o) => o.frame);
    expect(out).toHaveLength(2);
    const w = parse(reassemble(out));
    expect(w).toMatchObject({ daddr: '10.0.0.7', dport: 8080, l4Ok: true });
    expect(w.payload).toEqual(q);
    expect(parse(out[0]!).dstMac).toBe(RS1_MAC);
  });

  it('the tracer shows each fragment: the first scheduled, the later ones following its conn, the too-big one split', () => {
    const { p0, p1, cmd, run, d } = memLab({ mtu1: 1000 });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(FWD_MASQ) });
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: 'host 192.168.10.6', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    for (const f of fragmentFrame(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: payload(2000), df: false, id: 0x77 }), 1500)) p0.inject(f);
    run();
    expect(p1.takeSent()).toHaveLength(3); // 1500 bytes split again for MTU 1000 (2), then 548 bytes
    expect(events.map((e) => [e.conn, e.dir, e.method])).toEqual([[0, 'in', 'NAT'], [0, 'in', 'NAT']]);
    const text = events.map((e) => renderEvent(e, { color: false })).join('');
    expect(text).toMatch(/parse {5}Ethernet → IPv4 \(1500 bytes, fragment at offset 0, more follow, ip-csum 0x[0-9a-f]{4} ok\) → UDP \(udp-csum 0x[0-9a-f]{4} covers the whole datagram\)/);
    expect(text).toMatch(/parse {5}Ethernet → IPv4 \(548 bytes, fragment at offset 1480, the last, ip-csum 0x[0-9a-f]{4} ok\)\n/);
    expect(text).toMatch(/fragment at offset 1480 of IP id 119: conn #0 of its first fragment/);
    expect(text).toMatch(/1500 bytes > MTU 1000, no DF: sent as 2 fragments/);
  });

  it('one-packet scheduling (-o): a fragmented datagram is one packet, its conn ends with the last fragment', () => {
    for (const fwd of [FWD_MASQ, FWD_TUNNEL] as const) {
      const { p1, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
      const VIPD = '10.0.0.100';
      cmd({ cmd: 'add-service', svc: udpSvc(VIPD, 53), opts: svcOpts('rr', { flags: SVC_F_ONEPACKET }) });
      cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(fwd) });
      cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(fwd) });
      for (const id of [1, 2]) {
        for (const f of fragmentFrame(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CIP, daddr: VIPD, dport: 53, payload: payload(3000), df: false, id }), 1500)) p1.inject(f);
      }
      run();
      const out = p1.takeSent().map((o) => parse(o.frame));
      // Every fragment of a datagram went to the same real server; the next datagram to the other one.
      const rs = out.map((f) => (fwd === FWD_MASQ ? f.daddr : f.dstMac));
      const half = rs.length / 2;
      expect(new Set(rs.slice(0, half)).size).toBe(1);
      expect(new Set(rs.slice(half)).size).toBe(1);
      expect(rs[0]).not.toBe(rs[half]);
      expect(d.conns.count).toBe(0);
      expect(d.drops.snapshot()['fragment-no-conn']).toBeUndefined();
    }
  });

  it('a fragment reaching past 64 KiB (ping of death) is a malformed-IP drop, never re-fragmented', () => {
    const { p0, p1, cmd, run, d } = memLab({ mtu1: 1000 });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(FWD_MASQ) });
    const req = build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, dport: 53, payload: payload(3000), df: false, id: 5 });
    const [first, second] = fragmentFrame(req, 1500);
    p0.inject(first!);
    run();
    expect(p1.takeSent()).toHaveLength(2);
    const bad = new Uint8Array(second!);
    bad[20] = 0x1f; bad[21] = 0xf0; // offset 8176 × 8 = 65408, + 1480 bytes > 65535
    setIpv4Checksum(bad, 14);
    p0.inject(bad);
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()['malformed-ipv4']).toBe(1);
  });
});

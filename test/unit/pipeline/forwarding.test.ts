import { describe, expect, it } from 'vitest';
import { build, parse, arp } from '../../helpers/frames.js';
import { memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC, RS2_MAC, ROUTER_MAC } from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, SVC_F_PERSISTENT } from '../../../src/model/constants.js';
import { D_ICMP_NO_CONN } from '../../../src/pipeline/drops.js';
import { checksum } from '../../../src/wire/checksum.js';

const VIP = '192.168.10.110';
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, FIN = 0x01;

describe('NAT', () => {
  it('forwards a batch of conns identically with the conn-table prefetch on (large-table path)', () => {
    const results: string[][] = [];
    for (const prefetchMin of [Infinity, 0]) {
      const { p0, p1, cmd, run, d } = memLab();
      d.prefetchMin = prefetchMin;
      cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
      cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.17', port: 8080 }, opts: destOpts(FWD_MASQ) });
      cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
      for (let i = 0; i < 40; i++) p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000 + i, dport: 80, flags: SYN }));
      p0.inject(new Uint8Array(20)); // a runt in the same batch: a counted drop, and a harmless prefetch hint
      run();
      for (let i = 0; i < 40; i++) p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000 + i, dport: 80, flags: ACK }));
      run();
      const out = p1.takeSent().map((o) => parse(o.frame, o.meta)).map((f) => `${f.daddr}:${f.dport} ${f.sport} ${f.ipOk && f.l4Ok}`);
      expect(out).toHaveLength(80);
      expect(d.conns.count).toBe(40);
      // Replies (the OUT tuples, looked up from the other port's batch), one with a wrong port.
      for (let i = 0; i < 40; i++) {
        const rs = out[i]!.startsWith('10.0.0.17:8080') ? { saddr: '10.0.0.17', sport: 8080 } : { saddr: '10.0.0.7', sport: 80 };
        p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, ...rs, daddr: '192.168.10.6', dport: 40000 + i, flags: SYNACK }));
      }
      p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.7', sport: 81, daddr: '192.168.10.6', dport: 40001, flags: SYNACK }));
      run();
      const back = p0.takeSent().map((o) => parse(o.frame, o.meta)).map((f) => `${f.saddr}:${f.sport} ${f.dport} ${f.ipOk && f.l4Ok}`);
      expect(back.filter((x) => x.startsWith(`${VIP}:80 `) && x.endsWith(' true'))).toHaveLength(40);
      out.push(...back);
      results.push(out);
    }
    expect(results[1]).toEqual(results[0]);
  });

  it('rewrites the destination to the RS (port mapping) and replies back to the VIP, checksums valid', () => {
    const { p0, p1, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.17', port: 8080 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80, flags: SYN }));
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    const f = parse(out[0]!.frame, out[0]!.meta);
    expect(f).toMatchObject({ saddr: '192.168.10.6', daddr: '10.0.0.17', sport: 40000, dport: 8080, dstMac: RS2_MAC, srcMac: DIR1_MAC, ttl: 63, ipOk: true, l4Ok: true });
    // Reply from the RS.
    p1.inject(build({ srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.17', daddr: '192.168.10.6', sport: 8080, dport: 40000, flags: SYNACK }));
    run();
    const back = p0.takeSent();
    expect(back).toHaveLength(1);
    const g = parse(back[0]!.frame, back[0]!.meta);
    expect(g).toMatchObject({ saddr: VIP, daddr: '192.168.10.6', sport: 80, dport: 40000, dstMac: CLIENT_MAC, ipOk: true, l4Ok: true });
    const conns = d.conns.snapshot(d.clock.now());
    expect(conns).toHaveLength(1);
    expect(conns[0]).toMatchObject({ state: 'SYN_RECV', caddr: '192.168.10.6', vaddr: VIP, daddr: '10.0.0.17', dport: 8080 });
    const dest = d.config.services[0]!.dests[0]!;
    expect(dest.stats).toMatchObject({ conns: 1, inpkts: 1, outpkts: 1 });
    expect(dest.activeConns).toBe(1);
  });

  it('keeps partial checksums partial and correct after the rewrite', () => {
    const { p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN, payload: 'hello', partial: true }),
      { flags: 1, csumStart: 34, csumOffset: 16 });
    run();
    const out = p1.takeSent();
    expect(out[0]!.meta[0]).toBe(1);
    expect(parse(out[0]!.frame, out[0]!.meta)).toMatchObject({ daddr: '10.0.0.7', l4Ok: true, ipOk: true });
  });

  it('UDP service with wrr 1:3 over 8 new flows gives 2 and 6', () => {
    const { p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('wrr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 53 }, opts: destOpts(FWD_MASQ, 1) });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_MASQ, 3) });
    for (let i = 0; i < 8; i++) p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 41000 + i, dport: 53, payload: 'q' }));
    run();
    const out = p1.takeSent().map((s) => parse(s.frame, s.meta));
    expect(out.every((f) => f.l4Ok && f.ipOk)).toBe(true);
    const counts = out.reduce<Record<string, number>>((m, f) => ((m[f.daddr] = (m[f.daddr] ?? 0) + 1), m), {});
    expect(counts).toEqual({ '10.0.0.7': 2, '10.0.0.17': 6 });
  });

  it('no dest ⇒ ICMP port unreachable to the client, counted drop', () => {
    const { p0, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN }));
    run();
    const back = p0.takeSent().map((s) => parse(s.frame));
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ proto: 1, saddr: VIP, daddr: '192.168.10.6', l4Ok: true, ipOk: true });
    expect(d.drops.snapshot()['no-dest']).toBe(1);
  });

  it('non-SYN without a conn is a counted drop, malformed frames too, never an exception', () => {
    const { p0, cmd, run, d } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: ACK }));
    const bad = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN });
    bad[14 + 10] ^= 0xff; // broken IP checksum
    p0.inject(bad);
    p0.inject(bad.subarray(0, 20)); // truncated
    p0.inject(new Uint8Array(3));
    run();
    expect(d.drops.snapshot()).toMatchObject({ 'non-syn-no-conn': 1, 'ip-checksum': 1, 'malformed-ipv4': 1, 'malformed-ethernet': 1 });
  });
});

describe('DR', () => {
  it('only changes the destination MAC (and TTL)', () => {
    const { p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_DROUTE) });
    const inFrame = build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: SYN, payload: 'x' });
    p1.inject(inFrame);
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    const f = parse(out[0]!.frame);
    expect(f).toMatchObject({ saddr: '192.168.10.6', daddr: VIPD, dstMac: RS1_MAC, srcMac: DIR1_MAC, ttl: 63, ipOk: true, l4Ok: true });
    // Everything after the IP header is untouched.
    expect(out[0]!.frame.subarray(34)).toEqual(inFrame.subarray(34));
  });
});

describe('TUN', () => {
  it('adds an IPIP header from the director to the RIP', () => {
    const { p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.17', port: 80 }, opts: destOpts(FWD_TUNNEL) });
    p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: SYN }));
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    const outer = parse(out[0]!.frame);
    expect(outer).toMatchObject({ proto: 4, saddr: '10.0.0.8', daddr: '10.0.0.17', dstMac: RS2_MAC, ttl: 63, ipOk: true });
    const inner = parse(new Uint8Array([...out[0]!.frame.subarray(0, 14), ...out[0]!.frame.subarray(34)]));
    expect(inner).toMatchObject({ saddr: '192.168.10.6', daddr: VIPD, ttl: 63, ipOk: true, l4Ok: true });
  });

  it('a DF packet too big after encapsulation gets ICMP fragmentation-needed with MTU 1480', () => {
    // The client 192.168.10.6 is on port 0's subnet in this lab: the ICMP goes back there.
    const { p0, p1, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: udpSvc(VIPD, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIPD, 53), dest: { addr: '10.0.0.17', port: 53 }, opts: destOpts(FWD_TUNNEL) });
    p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, dport: 53, payload: new Uint8Array(1472) }));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    const out = p0.takeSent();
    expect(out).toHaveLength(1);
    const icmp = parse(out[0]!.frame);
    expect(icmp).toMatchObject({ proto: 1, saddr: VIPD, daddr: '192.168.10.6', dstMac: CLIENT_MAC, l4Ok: true, ipOk: true });
    const b = out[0]!.frame;
    expect([b[34], b[35]]).toEqual([3, 4]);
    expect((b[40]! << 8) | b[41]!).toBe(1480);
    expect(d.drops.snapshot()['frag-needed']).toBe(1);
  });
});

describe('TUN with GUE and GRE (--tun-type)', () => {
  const VIPD = '10.0.0.100';
  const tunDest = (type: number, port: number, flags: number) => ({ ...destOpts(FWD_TUNNEL), tunType: type, tunPort: port, tunFlags: flags });
  function lab(type: number, port: number, flags: number, proto: 6 | 17 = 6) {
    const l = memLab({ gateway: '10.0.0.200' });
    const svc = proto === 6 ? tcpSvc(VIPD, 80) : udpSvc(VIPD, 53);
    l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
    l.cmd({ cmd: 'add-server', svc, dest: { addr: '10.0.0.17', port: proto === 6 ? 80 : 53 }, opts: tunDest(type, port, flags) });
    return l;
  }
  const inner = (frame: Uint8Array, at: number) => parse(new Uint8Array([...frame.subarray(0, 14), ...frame.subarray(at)]));

  it('GUE: UDP to --tun-port from a flow-hashed source port, the GUE header, no checksum with --tun-nocsum, a valid one with --tun-csum', () => {
    for (const flags of [0, 1, 2]) {
      const { p1, run } = lab(1, 6080, flags);
      for (const sport of [40000, 40000, 40001]) p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, sport, flags: SYN }));
      run();
      const out = p1.takeSent();
      expect(out).toHaveLength(3);
      const f = out[0]!.frame;
      const outer = parse(f);
      // (UDP checksum 0 = none, with --tun-nocsum: the helper's check then fails, as it should)
      expect(outer).toMatchObject({ proto: 17, saddr: '10.0.0.8', daddr: '10.0.0.17', dstMac: RS2_MAC, dport: 6080, ttl: 63, ipOk: true, l4Ok: flags !== 0 });
      expect(outer.sport).toBeGreaterThanOrEqual(32768);
      expect(outer.sport).toBeLessThan(60999);
      expect(parse(out[1]!.frame).sport).toBe(outer.sport); // one flow, one source port
      const dv = new DataView(f.buffer, f.byteOffset);
      expect(dv.getUint16(14 + 2)).toBe(f.length - 14);                // outer total length
      expect(dv.getUint16(34 + 4)).toBe(f.length - 34);                // UDP length
      expect(dv.getUint16(34 + 6) === 0).toBe(flags === 0);            // checksum only with csum/remcsum
      expect([...f.subarray(42, 46)]).toEqual([0, 4, 0, 0]);           // GUE v0, hlen 0, proto_ctype 4, flags 0
      expect(inner(f, 46)).toMatchObject({ saddr: '192.168.10.6', daddr: VIPD, sport: 40000, ttl: 63, ipOk: true, l4Ok: true });
    }
  });

  it('GRE: the base header (protocol 0x0800), with --tun-csum the C bit and a valid checksum', () => {
    for (const flags of [0, 1]) {
      const { p1, run } = lab(2, 0, flags);
      p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: SYN }));
      run();
      const f = p1.takeSent()[0]!.frame;
      expect(parse(f)).toMatchObject({ proto: 47, saddr: '10.0.0.8', daddr: '10.0.0.17', ipOk: true });
      const hl = flags ? 8 : 4;
      expect([...f.subarray(34, 38)]).toEqual([flags ? 0x80 : 0, 0, 0x08, 0x00]);
      if (flags) expect(checksum(f, 34, f.length - 34)).toBe(0); // ones-complement over header + payload
      expect(inner(f, 34 + hl)).toMatchObject({ daddr: VIPD, ipOk: true, l4Ok: true });
    }
  });

  it('MTU: a DF packet too big after the 32 (GUE) / 24 (GRE) bytes gets fragmentation-needed with MTU 1468 / 1476', () => {
    for (const [type, port, mtu] of [[1, 6080, 1468], [2, 0, 1476]] as const) {
      const { p0, p1, run } = lab(type, port, 0, 17);
      p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, dport: 53, payload: new Uint8Array(1460), df: true }));
      run();
      expect(p1.takeSent()).toHaveLength(0);
      const b = p0.takeSent()[0]!.frame;
      expect([b[34], b[35]]).toEqual([3, 4]);
      expect((b[40]! << 8) | b[41]!).toBe(mtu);
      // One that fits goes through.
      p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, dport: 53, payload: new Uint8Array(mtu - 28), df: true }));
      run();
      expect(p1.takeSent()[0]!.frame.length).toBe(14 + 1500);
    }
  });

  it('a partial inner checksum stays partial under GUE without checksum (csum_start moved), and is completed first under GUE/GRE with one', () => {
    for (const [type, flags, partialOut] of [[1, 0, true], [1, 1, false], [2, 1, false]] as const) {
      const { p1, run } = lab(type, 6080, flags);
      p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: SYN, partial: true }),
        { flags: 1, csumStart: 34, csumOffset: 16, gsoType: 0, gsoSize: 0, hdrLen: 0 });
      run();
      const o = p1.takeSent()[0]!;
      const hl = type === 1 ? 32 : 28;
      expect((o.meta[0]! & 1) === 1).toBe(partialOut);
      if (partialOut) expect(o.meta[4]).toBe(34 + hl);
      const done = new Uint8Array(o.frame);
      if (partialOut) { const c = checksum(done, o.meta[4]!, done.length - o.meta[4]!); done[o.meta[4]! + 16] = c >> 8; done[o.meta[4]! + 17] = c & 255; }
      expect(inner(done, 14 + hl)).toMatchObject({ daddr: VIPD, l4Ok: true });
      expect(parse(o.frame).ipOk).toBe(true);
      if (type === 1 && flags) expect(parse(o.frame).l4Ok).toBe(true);
      if (type === 2) expect(checksum(o.frame, 34, o.frame.length - 34)).toBe(0);
    }
  });

  it('control: a GUE dest without a port is refused (EINVAL), as the kernel refuses it', () => {
    const l = memLab();
    l.cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
    expect(l.control.execute({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.17', port: 80 }, opts: tunDest(1, 0, 0) }))
      .toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(l.control.execute({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.17', port: 80 }, opts: tunDest(7, 0, 0) }))
      .toMatchObject({ ok: false, errno: 'EINVAL' });
  });
});

describe('TUN with GSO super-frames', () => {
  it('segments a TCP super-frame in software so every IPIP packet fits the MTU, checksums complete', () => {
    const { p1, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
    const VIPD = '10.0.0.100';
    cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.17', port: 80 }, opts: destOpts(FWD_TUNNEL) });
    p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: SYN }));
    run();
    p1.takeSent();
    const payload = new Uint8Array(4000).map((_, i) => i & 255);
    p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, flags: 0x18, seq: 5000, payload, partial: true }),
      { flags: 1, csumStart: 34, csumOffset: 16, gsoType: 1, gsoSize: 1448, hdrLen: 54 });
    run();
    const out = p1.takeSent();
    expect(d.drops.snapshot()['gso-unsupported']).toBeUndefined();
    expect(out.length).toBe(3);
    let got = 0;
    let seq = 5000;
    for (const o of out) {
      expect(o.frame.length - 14).toBeLessThanOrEqual(1500);
      expect(o.meta[0]).toBe(0);
      const inner = parse(new Uint8Array([...o.frame.subarray(0, 14), ...o.frame.subarray(34)]));
      expect(inner).toMatchObject({ daddr: VIPD, l4Ok: true, ipOk: true });
      const ib = o.frame.subarray(34);
      expect(((ib[24]! << 24) | (ib[25]! << 16) | (ib[26]! << 8) | ib[27]!) >>> 0).toBe(seq);
      seq += inner.payload.length;
      expect(inner.payload).toEqual(payload.subarray(got, got + inner.payload.length));
      got += inner.payload.length;
    }
    expect(got).toBe(4000);
  });
});

describe('FULLNAT', () => {
  it('rewrites source to LIP:lport and destination to RIP, and maps replies back', () => {
    const { p0, p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.1.7', port: 80 }, opts: destOpts(FWD_FULLNAT) });
    cmd({ cmd: 'add-laddr', svc: tcpSvc(VIP, 80), laddr: '10.0.0.50' });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, flags: SYN }));
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40001, flags: SYN }));
    run();
    const out = p1.takeSent().map((s) => parse(s.frame, s.meta));
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ saddr: '10.0.0.50', daddr: '10.0.1.7', dport: 80, dstMac: ROUTER_MAC, ipOk: true, l4Ok: true });
    expect(out[0]!.sport).not.toBe(out[1]!.sport);
    p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '10.0.1.7', daddr: '10.0.0.50', sport: 80, dport: out[1]!.sport, flags: SYNACK }));
    run();
    const back = p0.takeSent().map((s) => parse(s.frame, s.meta));
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ saddr: VIP, sport: 80, daddr: '192.168.10.6', dport: 40001, ipOk: true, l4Ok: true });
  });

  it('without a local address the packet is a counted drop', () => {
    const { p0, cmd, run, d } = memLab({ gateway: '10.0.0.200' });
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.1.7', port: 80 }, opts: destOpts(FWD_FULLNAT) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN }));
    run();
    expect(d.drops.snapshot()['no-laddr']).toBe(1);
  });
});

describe('ICMP errors of a conn', () => {
  function icmpAbout(outerSrc: string, outerDst: string, embedded: Uint8Array, srcMac: string, dstMac: string): Uint8Array {
    // ICMP port unreachable quoting the IP header + 8 bytes of `embedded` (an Ethernet frame).
    const quote = embedded.subarray(14, 14 + 28);
    return build({ proto: 1, srcMac, dstMac, saddr: outerSrc, daddr: outerDst, icmpType: 3, icmpCode: 3, sport: 0, dport: 0, payload: quote });
  }

  it('NAT: an error from the real server is rewritten back toward the client (outer and embedded)', () => {
    const { p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 5353 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 41000, dport: 53, payload: 'q' }));
    run();
    const fwd = p1.takeSent()[0]!.frame;
    p1.inject(icmpAbout('10.0.0.7', '192.168.10.6', fwd, RS1_MAC, DIR1_MAC));
    run();
    const out = p0.takeSent();
    expect(out).toHaveLength(1);
    const f = parse(out[0]!.frame);
    expect(f).toMatchObject({ proto: 1, saddr: VIP, daddr: '192.168.10.6', ipOk: true, l4Ok: true, dstMac: CLIENT_MAC });
    const e = out[0]!.frame.subarray(42);
    const ip = (o: number) => [...e.subarray(o, o + 4)].join('.');
    expect(ip(12)).toBe('192.168.10.6');
    expect(ip(16)).toBe(VIP);
    expect((e[22]! << 8) | e[23]!).toBe(53);
  });

  it('an error quoting a protocol IPVS does not track is no conn\'s, even when its tuple is a persistence template\'s key', () => {
    const { d, p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr', { flags: SVC_F_PERSISTENT, timeout: 300 }) });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ proto: 6, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 41000, dport: 80, flags: 0x02 }));
    run();
    expect(p1.takeSent()).toHaveLength(1); // forwarded; a template <client, 0, VIP, 80> now exists
    // A crafted error quoting "VIP:80 → client:0, protocol 255": reversed, that is the template's key.
    const quoted = build({ proto: 17, srcMac: ROUTER_MAC, dstMac: CLIENT_MAC, saddr: VIP, daddr: '192.168.10.6', sport: 80, dport: 0, payload: 'x' });
    quoted[14 + 9] = 255;
    const before = d.drops.counts[D_ICMP_NO_CONN]!;
    p0.inject(icmpAbout('192.168.10.6', VIP, quoted, CLIENT_MAC, DIR0_MAC));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.counts[D_ICMP_NO_CONN]).toBe(before + 1);
  });

  it('FULLNAT: an error from the client side is rewritten toward the real server with the local address', () => {
    const { p0, p1, cmd, run } = memLab({ gateway: '10.0.0.200' });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.1.7', port: 53 }, opts: destOpts(FWD_FULLNAT) });
    cmd({ cmd: 'add-laddr', svc: udpSvc(VIP, 53), laddr: '10.0.0.50' });
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 41000, dport: 53, payload: 'q' }));
    run();
    const req = parse(p1.takeSent()[0]!.frame);
    p1.inject(build({ proto: 17, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '10.0.1.7', daddr: '10.0.0.50', sport: 53, dport: req.sport, payload: 'a' }));
    run();
    const reply = p0.takeSent()[0]!.frame;
    // The client answers our reply with port unreachable.
    p0.inject(icmpAbout('192.168.10.6', VIP, reply, CLIENT_MAC, DIR0_MAC));
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    const f = parse(out[0]!.frame);
    expect(f).toMatchObject({ proto: 1, saddr: '10.0.0.50', daddr: '10.0.1.7', ipOk: true, l4Ok: true });
    const e = out[0]!.frame.subarray(42);
    const ip = (o: number) => [...e.subarray(o, o + 4)].join('.');
    expect(ip(12)).toBe('10.0.1.7');
    expect(ip(16)).toBe('10.0.0.50');
    expect((e[20]! << 8) | e[21]!).toBe(53);
    expect((e[22]! << 8) | e[23]!).toBe(req.sport);
  });

  it('an error from the client side with a bad ICMP checksum is a counted drop, not rewritten into a valid one (K ip_vs_in_icmp)', () => {
    const { d, p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.0.7', port: 5353 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 41000, dport: 53, payload: 'q' }));
    run();
    p1.takeSent();
    p1.inject(build({ proto: 17, srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.7', daddr: '192.168.10.6', sport: 5353, dport: 41000, payload: 'a' }));
    run();
    const reply = p0.takeSent()[0]!.frame;
    const bad = icmpAbout('192.168.10.6', VIP, reply, CLIENT_MAC, DIR0_MAC);
    bad[36] ^= 0x01;
    p0.inject(bad);
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()['icmp-checksum']).toBe(1);
    p0.inject(icmpAbout('192.168.10.6', VIP, reply, CLIENT_MAC, DIR0_MAC));
    run();
    expect(p1.takeSent()).toHaveLength(1);
  });
});

describe('host', () => {
  it('uvsd --vip-arp host (serviceArp off): no ARP answer for the VIP — the host answers while it carries it — but still for its own address; VIP traffic still balanced', () => {
    const { p0, p1, cmd, run, d } = memLab();
    d.serviceArp = false;
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', VIP));
    run();
    expect(p0.takeSent()).toHaveLength(0);
    p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', '192.168.10.100'));
    run();
    expect(p0.takeSent()[0]!.frame[21]).toBe(2);
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN }));
    run();
    expect(parse(p1.takeSent()[0]!.frame).daddr).toBe('10.0.0.7');
  });

  it('answers ARP for the VIP and its own address, and ICMP echo for the VIP', () => {
    const { p0, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', VIP));
    p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', '192.168.10.100'));
    p0.inject(arp(1, CLIENT_MAC, '192.168.10.6', '192.168.10.99'));
    p0.inject(build({ proto: 1, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, payload: 'ping' }));
    run();
    const out = p0.takeSent();
    expect(out).toHaveLength(3);
    expect(out[0]!.frame[21]).toBe(2); // ARP reply
    expect([...out[0]!.frame.subarray(22, 28)].map((x) => x.toString(16).padStart(2, '0')).join(':')).toBe(DIR0_MAC);
    const echo = parse(out[2]!.frame);
    expect(echo).toMatchObject({ proto: 1, saddr: VIP, daddr: '192.168.10.6', l4Ok: true, ipOk: true });
    expect(out[2]!.frame[34]).toBe(0);
  });

  it('queues frames while the next hop resolves and sends them after the ARP reply', () => {
    const { p0, p1, cmd, run } = memLab({ learn: false });
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: SYN }));
    run();
    const req = p1.takeSent();
    expect(req).toHaveLength(1);
    expect(req[0]!.frame[21]).toBe(1); // who-has 10.0.0.7
    p1.inject(arp(2, RS1_MAC, '10.0.0.7', '10.0.0.8', DIR1_MAC, DIR1_MAC));
    run();
    const out = p1.takeSent().map((s) => parse(s.frame));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ daddr: '10.0.0.7', dstMac: RS1_MAC, l4Ok: true });
  });
});

describe('conn lifecycle', () => {
  it('TCP states follow the kernel table and conns expire on the injected clock', () => {
    const { p0, p1, cmd, run, d, clock } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) });
    const c = { srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80 };
    const s = { srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.7', daddr: '192.168.10.6', sport: 80, dport: 40000 };
    const state = () => d.conns.snapshot(clock.now())[0]?.state;
    p0.inject(build({ ...c, flags: SYN })); run(); expect(state()).toBe('SYN_RECV');
    p1.inject(build({ ...s, flags: SYNACK })); run(); expect(state()).toBe('SYN_RECV');
    p0.inject(build({ ...c, flags: ACK })); run(); expect(state()).toBe('ESTABLISHED');
    p0.inject(build({ ...c, flags: FIN | ACK })); run(); expect(state()).toBe('CLOSE_WAIT');
    p1.inject(build({ ...s, flags: FIN | ACK })); run(); expect(state()).toBe('TIME_WAIT');
    clock.advance(119_000); d.tick(); expect(state()).toBe('TIME_WAIT');
    clock.advance(2_000); d.tick(); expect(state()).toBeUndefined();
    expect(d.config.services[0]!.dests[0]!.inactConns).toBe(0);
  });
});

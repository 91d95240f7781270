/**
 * Health-check probes through the data path (src/pipeline/probe.ts): a SYN to the VIP sent the
 * way the real server's clients' packets go (DR: its MAC; TUN: its tunnel), its answer matched.
 */
import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, DIR1_MAC, RS1_MAC, RS2_MAC } from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_TUNNEL, TUN_TYPE_GUE } from '../../../src/model/constants.js';
import { parseIp } from '../../../src/model/addr.js';
import { PROBE_PORT_MIN, type ProbeWriter } from '../../../src/pipeline/probe.js';
import { ProbeSocket } from '../../../src/pipeline/probe-socket.js';
import { streamTcpExchange } from '../../../src/health/checkers.js';
import { defaultCheck } from '../../../src/health/config.js';
import { LAB_TLS_CERT, LAB_TLS_KEY } from '../../../src/lab/tls-cert.js';
import { createServer as createTlsServer } from 'node:tls';
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';

const VIPD = '10.0.0.100';
const NO_TUN = { tunType: 0, tunPort: 0, tunFlags: 0 };
const SYN = 0x02, RST = 0x04, ACK = 0x10;

function setup() {
  const l = memLab({ gateway: '10.0.0.200' });
  l.cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
  l.cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_DROUTE) });
  return l;
}
const seqOf = (f: Uint8Array, l4: number) => new DataView(f.buffer, f.byteOffset).getUint32(l4 + 4);
/** The real server's answer: from the VIP to the director's probe port. */
const answer = (srcMac: string, sport: number, flags: number, ack: number) =>
  build({ srcMac, dstMac: DIR1_MAC, saddr: VIPD, daddr: '10.0.0.8', sport: 80, dport: sport, flags, seq: 7000, ack });

describe('data-path health-check probes', () => {
  it('DR: a SYN from the director to VIP:port, to the real server\'s MAC; its SYN-ACK is success, answered with a RST the same way', async () => {
    const { d, p1, run } = setup();
    const res = d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN }, 2000);
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    const syn = parse(out[0]!.frame);
    expect(syn).toMatchObject({ proto: 6, saddr: '10.0.0.8', daddr: VIPD, dport: 80, dstMac: RS1_MAC, ipOk: true, l4Ok: true });
    expect(syn.sport).toBeGreaterThanOrEqual(PROBE_PORT_MIN);
    expect(out[0]!.frame[47]).toBe(SYN);
    const iss = seqOf(out[0]!.frame, 34);
    expect(d.prober.pending).toBe(1);
    // A segment that acknowledges something else is not the answer.
    p1.inject(answer(RS1_MAC, syn.sport!, SYN | ACK, (iss + 5) >>> 0));
    run();
    expect(d.prober.pending).toBe(1);
    p1.inject(answer(RS1_MAC, syn.sport!, SYN | ACK, (iss + 1) >>> 0));
    run();
    await expect(res).resolves.toMatchObject({ ok: true, detail: expect.stringContaining('SYN-ACK from 10.0.0.100:80 via 10.0.0.7 (DR)') });
    expect(d.prober.pending).toBe(0);
    const rst = p1.takeSent();
    expect(rst).toHaveLength(1);
    expect(parse(rst[0]!.frame)).toMatchObject({ saddr: '10.0.0.8', daddr: VIPD, sport: syn.sport, dstMac: RS1_MAC, l4Ok: true });
    expect(rst[0]!.frame[47]).toBe(RST);
    expect(seqOf(rst[0]!.frame, 34)).toBe((iss + 1) >>> 0);
    // Neither the answer nor anything else was counted as a drop or passed on.
    expect(Object.values(d.drops.snapshot()).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('TUN (GUE): the SYN goes inside the dest\'s tunnel; a RST is "connection refused"', async () => {
    const { d, p1, run } = setup();
    const res = d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.17'), fwd: FWD_TUNNEL, tun: { tunType: TUN_TYPE_GUE, tunPort: 6080, tunFlags: 0 } }, 2000);
    const f = p1.takeSent()[0]!.frame;
    expect(parse(f)).toMatchObject({ proto: 17, saddr: '10.0.0.8', daddr: '10.0.0.17', dport: 6080, dstMac: RS2_MAC });
    const inner = parse(new Uint8Array([...f.subarray(0, 14), ...f.subarray(46)]));
    expect(inner).toMatchObject({ proto: 6, saddr: '10.0.0.8', daddr: VIPD, dport: 80, ipOk: true, l4Ok: true });
    const iss = seqOf(f, 46 + 20);
    p1.inject(answer(RS2_MAC, inner.sport!, RST | ACK, (iss + 1) >>> 0));
    run();
    await expect(res).resolves.toMatchObject({ ok: false, detail: expect.stringContaining('connection refused') });
    expect(p1.takeSent()).toHaveLength(0);
  });

  it('silence is a timeout; a segment to a probe port with no probe in flight goes the usual way', async () => {
    const { d, p1, run } = setup();
    const r = await d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN }, 30);
    expect(r).toEqual({ ok: false, detail: 'no answer within 0.03s', timedOut: true });
    expect(d.prober.pending).toBe(0);
    p1.takeSent();
    p1.inject(answer(RS1_MAC, PROBE_PORT_MIN, SYN | ACK, 1));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()['not-for-us']).toBe(1);
  });

  it('bindto: the probe leaves from that port address; one that is not the director\'s is refused at once', async () => {
    const { d, p1, run } = setup();
    const t = { vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN };
    const res = d.probe({ ...t, src: parseIp('192.168.10.100') }, 2000);
    const syn = p1.takeSent()[0]!.frame;
    const sp = parse(syn);
    expect(sp).toMatchObject({ saddr: '192.168.10.100', daddr: VIPD, dstMac: RS1_MAC, l4Ok: true });
    p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: VIPD, daddr: '192.168.10.100', sport: 80, dport: sp.sport, flags: SYN | ACK, seq: 7000, ack: (seqOf(syn, 34) + 1) >>> 0 }));
    run();
    await expect(res).resolves.toMatchObject({ ok: true });
    await expect(d.probe({ ...t, src: parseIp('10.9.9.9') }, 2000)).resolves.toEqual({ ok: false, detail: "bindto 10.9.9.9 is not an address of this director's ports" });
    expect(p1.takeSent().filter((f) => f.frame[47] === SYN)).toHaveLength(0);
  });

  it('many probes at once each get their own port; with all 256 in flight one more is refused at once', async () => {
    const { d } = setup();
    const t = { vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN };
    const all = Array.from({ length: 256 }, () => d.probe(t, 40));
    expect(d.prober.pending).toBe(256);
    await expect(d.probe(t, 40)).resolves.toEqual({ ok: false, detail: 'too many probes in flight' });
    await Promise.all(all);
    expect(d.prober.pending).toBe(0);
  });

  it('UDP (UDP_CHECK, DNS_CHECK): the datagram goes to the real server\'s MAC; the accepted reply is success with its bytes, an ICMP error about it a failure, silence a timeout', async () => {
    const { d, p1, run } = setup();
    const t = { vip: parseIp(VIPD), vport: 53, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN, proto: 17 as const };
    const res = d.probe({ ...t, payload: new TextEncoder().encode('ping'), accept: (m) => m.toString() !== 'noise' }, 2000);
    const f = p1.takeSent()[0]!.frame;
    const dg = parse(f);
    expect(dg).toMatchObject({ proto: 17, saddr: '10.0.0.8', daddr: VIPD, dport: 53, dstMac: RS1_MAC, ipOk: true, l4Ok: true });
    expect(Buffer.from(f.subarray(42)).toString()).toBe('ping');
    const reply = (payload: string) => build({ proto: 17, srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: VIPD, daddr: '10.0.0.8', sport: 53, dport: dg.sport!, payload });
    p1.inject(reply('noise'));
    run();
    expect(d.prober.pending).toBe(1);
    p1.inject(reply('pong'));
    run();
    const r = await res;
    expect(r).toMatchObject({ ok: true });
    expect(r.reply!.toString()).toBe('pong');

    // Port unreachable from the real server about the probe's datagram.
    const res2 = d.probe({ ...t, payload: new Uint8Array(4) }, 2000);
    const sent = p1.takeSent()[0]!.frame;
    p1.inject(build({ proto: 1, srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: VIPD, daddr: '10.0.0.8', icmpType: 3, icmpCode: 3, sport: 0, dport: 0, payload: sent.subarray(14, 14 + 28) }));
    run();
    await expect(res2).resolves.toMatchObject({ ok: false, detail: expect.stringContaining('ICMP type 3 code 3') });
    await expect(d.probe({ ...t, payload: new Uint8Array(4) }, 30)).resolves.toMatchObject({ ok: false, timedOut: true });
    expect(Object.values(d.drops.snapshot()).reduce((a, b) => a + b, 0)).toBe(0);
  });

  describe('TCP with a request (HTTP_GET through the data path)', () => {
    const REQ = new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n');
    const ackOf = (f: Uint8Array, l4: number) => new DataView(f.buffer, f.byteOffset).getUint32(l4 + 8);
    /** A segment from the real server (VIP:80) to the probe: seq, flags, payload. */
    const seg = (sport: number, flags: number, seq: number, ack: number, payload = '') =>
      build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: VIPD, daddr: '10.0.0.8', sport: 80, dport: sport, flags, seq, ack, payload });
    const start = (timeoutMs = 2000, maxReply?: number) => {
      const l = setup();
      const res = l.d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN, request: REQ, ...(maxReply ? { maxReply } : {}) }, timeoutMs);
      const syn = l.p1.takeSent()[0]!.frame;
      const sport = parse(syn).sport!;
      const iss = seqOf(syn, 34);
      return { ...l, res, sport, iss };
    };

    it('the request follows the SYN-ACK; in-order data is taken and acknowledged; the FIN ends it with the whole reply, then a RST', async () => {
      const { d, p1, run, res, sport, iss } = start();
      p1.inject(seg(sport, SYN | ACK, 7000, (iss + 1) >>> 0));
      run();
      const req = p1.takeSent();
      expect(req).toHaveLength(1);
      const r = parse(req[0]!.frame);
      expect(r).toMatchObject({ saddr: '10.0.0.8', daddr: VIPD, dport: 80, dstMac: RS1_MAC, ipOk: true, l4Ok: true });
      expect(req[0]!.frame[47]).toBe(ACK | 0x08);
      expect(seqOf(req[0]!.frame, 34)).toBe((iss + 1) >>> 0);
      expect(ackOf(req[0]!.frame, 34)).toBe(7001);
      expect(Buffer.from(r.payload).toString()).toBe('GET / HTTP/1.0\r\n\r\n');
      const end = (iss + 1 + REQ.length) >>> 0;
      p1.inject(seg(sport, ACK, 7001, end, 'HTTP/1.0 200 OK\r\n'));
      run();
      const a1 = p1.takeSent();
      expect(a1).toHaveLength(1);
      expect(ackOf(a1[0]!.frame, 34)).toBe(7001 + 17);
      // Out of order (a segment lost before it): a duplicate ACK, nothing taken.
      p1.inject(seg(sport, ACK, 7001 + 17 + 5, end, 'later'));
      run();
      expect(ackOf(p1.takeSent()[0]!.frame, 34)).toBe(7001 + 17);
      p1.inject(seg(sport, ACK, 7001 + 17, end, '\r\nrs1'));
      run();
      expect(ackOf(p1.takeSent()[0]!.frame, 34)).toBe(7001 + 22);
      p1.inject(seg(sport, ACK | 0x01, 7001 + 22, end));
      run();
      const out = await res;
      expect(out).toMatchObject({ ok: true, detail: expect.stringContaining('22 bytes from 10.0.0.100:80 via 10.0.0.7 (DR)') });
      expect(out.reply!.toString()).toBe('HTTP/1.0 200 OK\r\n\r\nrs1');
      const rst = p1.takeSent();
      expect(rst).toHaveLength(1);
      expect(rst[0]!.frame[47]).toBe(RST);
      expect(seqOf(rst[0]!.frame, 34)).toBe(end);
      expect(d.prober.pending).toBe(0);
      expect(Object.values(d.drops.snapshot()).reduce((a, b) => a + b, 0)).toBe(0);
    });

    it('an unacknowledged request is sent again; a retransmitted SYN-ACK gets it again', async () => {
      const { p1, run, res, sport, iss, d } = start();
      p1.inject(seg(sport, SYN | ACK, 7000, (iss + 1) >>> 0));
      run();
      expect(p1.takeSent()).toHaveLength(1);
      // The first retransmission is due after 200 ms (polled, up to 3 s: a loaded machine runs timers late).
      const again: ReturnType<typeof p1.takeSent> = [];
      for (let waited = 0; again.length === 0 && waited < 3000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
        again.push(...p1.takeSent());
      }
      expect(again).toHaveLength(1);
      expect(Buffer.from(parse(again[0]!.frame).payload).toString()).toBe('GET / HTTP/1.0\r\n\r\n');
      p1.inject(seg(sport, SYN | ACK, 7000, (iss + 1) >>> 0));
      run();
      expect(p1.takeSent()).toHaveLength(1);
      // Acknowledged: no more retransmissions.
      p1.inject(seg(sport, ACK, 7001, (iss + 1 + REQ.length) >>> 0));
      run();
      await new Promise((r) => setTimeout(r, 500));
      expect(p1.takeSent()).toHaveLength(0);
      d.prober.cancelAll();
      await expect(res).resolves.toMatchObject({ ok: false, detail: 'director stopping' });
    });

    it('a RST before the SYN-ACK is "refused", after it "reset" (only in the window); a reply over maxReply fails with a RST', async () => {
      const a = start();
      a.p1.inject(seg(a.sport, RST | ACK, 0, (a.iss + 1) >>> 0));
      a.run();
      await expect(a.res).resolves.toMatchObject({ ok: false, detail: expect.stringContaining('connection refused') });
      const b = start();
      b.p1.inject(seg(b.sport, SYN | ACK, 7000, (b.iss + 1) >>> 0));
      b.run();
      b.p1.takeSent();
      b.p1.inject(seg(b.sport, RST, 7001 + 100000, 0)); // outside the window: ignored
      b.run();
      expect(b.d.prober.pending).toBe(1);
      b.p1.inject(seg(b.sport, RST, 7001, 0));
      b.run();
      await expect(b.res).resolves.toMatchObject({ ok: false, detail: expect.stringContaining('connection reset') });
      const c = start(2000, 10);
      c.p1.inject(seg(c.sport, SYN | ACK, 7000, (c.iss + 1) >>> 0));
      c.run();
      c.p1.takeSent();
      c.p1.inject(seg(c.sport, ACK, 7001, (c.iss + 1 + REQ.length) >>> 0, 'more than ten bytes'));
      c.run();
      await expect(c.res).resolves.toMatchObject({ ok: false, detail: expect.stringContaining('reply over 10 bytes') });
      expect(c.p1.takeSent()[0]!.frame[47]).toBe(RST);
    });
  });

  describe('TCP byte stream (SSL_GET through the data path: TLS over uvs\'s TCP client)', () => {
    const ackOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(34 + 8);
    const seg = (sport: number, flags: number, seq: number, ack: number, o: { payload?: Uint8Array | string; window?: number; mss?: number } = {}) =>
      build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: VIPD, daddr: '10.0.0.8', sport: 80, dport: sport, flags, seq, ack,
        ...(o.payload !== undefined ? { payload: o.payload } : {}), ...(o.window !== undefined ? { window: o.window } : {}),
        ...(o.mss !== undefined ? { tcpOptions: [2, 4, o.mss >> 8, o.mss & 255] } : {}) });
    const start = (timeoutMs = 3000) => {
      const l = setup();
      const got: Buffer[] = [];
      let ended = 0;
      let w: ProbeWriter | undefined;
      const res = l.d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN,
        stream: { open: (x) => { w = x; }, data: (b) => { got.push(b); }, end: () => { ended++; } } }, timeoutMs);
      const syn = l.p1.takeSent()[0]!.frame;
      return { ...l, res, got, ended: () => ended, w: w!, sport: parse(syn).sport!, iss: seqOf(syn, 34) };
    };
    const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (i + from) & 255);

    it('writes before the SYN-ACK wait for it; then segments of the server\'s MSS within its window; an ACK of part lets more go', async () => {
      const { p1, run, w, sport, iss, d } = start();
      w.write(bytes(2000));
      w.write(bytes(1000, 2000));
      expect(p1.takeSent()).toHaveLength(0);
      p1.inject(seg(sport, SYN | ACK, 9000, (iss + 1) >>> 0, { mss: 1000, window: 2500 }));
      run();
      const out = p1.takeSent().map((f) => ({ seq: seqOf(f.frame, 34), ack: ackOf(f.frame), flags: f.frame[47], p: parse(f.frame) }));
      expect(out.map((x) => [x.seq - ((iss + 1) >>> 0), x.p.payload.length])).toEqual([[0, 1000], [1000, 1000], [2000, 500]]);
      expect(out.every((x) => x.ack === 9001 && x.flags === (ACK | 0x08) && x.p.l4Ok && x.p.dstMac === RS1_MAC)).toBe(true);
      expect(Buffer.concat(out.map((x) => Buffer.from(x.p.payload)))).toEqual(Buffer.from(bytes(2500)));
      // 1000 bytes acknowledged, the window still 2500: the last 500 go.
      p1.inject(seg(sport, ACK, 9001, (iss + 1001) >>> 0, { window: 2500 }));
      run();
      const more = p1.takeSent();
      expect(more.map((f) => [seqOf(f.frame, 34) - ((iss + 1) >>> 0), parse(f.frame).payload.length])).toEqual([[2500, 500]]);
      expect(Buffer.from(parse(more[0]!.frame).payload)).toEqual(Buffer.from(bytes(500, 2500)));
      // All acknowledged: a later write goes at once.
      p1.inject(seg(sport, ACK, 9001, (iss + 3001) >>> 0));
      run();
      expect(p1.takeSent()).toHaveLength(0);
      w.write(bytes(7));
      const late = p1.takeSent();
      expect(late.map((f) => [seqOf(f.frame, 34) - ((iss + 1) >>> 0), parse(f.frame).payload.length])).toEqual([[3000, 7]]);
      d.prober.cancelAll();
    });

    it('an unacknowledged byte is sent again from the first one not acknowledged; progress restarts the back-off', async () => {
      const { p1, run, w, sport, iss, d } = start();
      w.write(bytes(1500));
      p1.inject(seg(sport, SYN | ACK, 9000, (iss + 1) >>> 0, { mss: 1000 }));
      run();
      expect(p1.takeSent()).toHaveLength(2);
      p1.inject(seg(sport, ACK, 9001, (iss + 1001) >>> 0));
      run();
      const again: ReturnType<typeof p1.takeSent> = [];
      for (let waited = 0; again.length === 0 && waited < 3000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
        again.push(...p1.takeSent());
      }
      expect(again.map((f) => [seqOf(f.frame, 34) - ((iss + 1) >>> 0), parse(f.frame).payload.length])).toEqual([[1000, 500]]);
      p1.inject(seg(sport, ACK, 9001, (iss + 1501) >>> 0));
      run();
      await new Promise((r) => setTimeout(r, 450));
      expect(p1.takeSent()).toHaveLength(0);
      d.prober.cancelAll();
    });

    it('the server\'s bytes reach the sink in order, its FIN ends it and the probe (no reply kept); abort resets and fails', async () => {
      const a = start();
      a.p1.inject(seg(a.sport, SYN | ACK, 9000, (a.iss + 1) >>> 0));
      a.run();
      expect(a.p1.takeSent().map((f) => [f.frame[47], ackOf(f.frame)])).toEqual([[ACK, 9001]]); // nothing to send: a bare ACK
      a.p1.inject(seg(a.sport, ACK, 9001 + 3, (a.iss + 1) >>> 0, { payload: 'def' }));
      a.p1.inject(seg(a.sport, ACK, 9001, (a.iss + 1) >>> 0, { payload: 'abc' }));
      a.p1.inject(seg(a.sport, ACK, 9001 + 3, (a.iss + 1) >>> 0, { payload: 'def' }));
      a.p1.inject(seg(a.sport, ACK | 0x01, 9001 + 6, (a.iss + 1) >>> 0));
      a.run();
      expect(Buffer.concat(a.got).toString()).toBe('abcdef');
      expect(a.ended()).toBe(1);
      const r = await a.res;
      expect(r).toMatchObject({ ok: true, detail: expect.stringContaining('6 bytes from 10.0.0.100:80') });
      expect(r.reply).toBeUndefined();
      expect(a.p1.takeSent().map((f) => f.frame[47])).toEqual([ACK, ACK, ACK, RST]);
      a.w.write(bytes(3)); // the probe is over: inert
      expect(a.p1.takeSent()).toHaveLength(0);

      const b = start();
      b.p1.inject(seg(b.sport, SYN | ACK, 9000, (b.iss + 1) >>> 0));
      b.run();
      b.p1.takeSent();
      b.w.abort('handshake failed');
      await expect(b.res).resolves.toEqual({ ok: false, detail: 'handshake failed' });
      const rst = b.p1.takeSent();
      expect(rst.map((f) => [f.frame[47], seqOf(f.frame, 34)])).toEqual([[RST, (b.iss + 1) >>> 0]]);
    });

    it('node\'s TLS runs over it: an HTTPS request to a real TLS server, relayed segment by segment, gets the server\'s answer', async () => {
      // The "real server": node's TLS + HTTP on loopback. The relay below plays its TCP: the probe's
      // segments' bytes go into a socket to that server, what it sends comes back as segments of at
      // most 700 bytes (so the server's handshake flight spans several).
      const http = createHttpServer((req, res) => { res.writeHead(200, { connection: 'close' }); res.end(`hello ${req.url}\n`); });
      const tls = createTlsServer({ key: LAB_TLS_KEY, cert: LAB_TLS_CERT }, (sock) => http.emit('connection', sock));
      await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
      try {
        const l = setup();
        const c = { ...defaultCheck('SSL_GET', 'test', 1), connectIp: VIPD, connectPort: 80, connectTimeout: 5 };
        const raw = new ProbeSocket();
        const transport = l.d.probe({ vip: parseIp(VIPD), vport: 80, rip: parseIp('10.0.0.7'), fwd: FWD_DROUTE, tun: NO_TUN, stream: raw.sink }, 5000);
        const x = streamTcpExchange(c, Buffer.from('GET /probe HTTP/1.0\r\n\r\n'), true, raw, transport);
        const syn = l.p1.takeSent()[0]!.frame;
        const sport = parse(syn).sport!;
        const iss = seqOf(syn, 34);
        const upstream = netConnect((tls.address() as AddressInfo).port, '127.0.0.1');
        let srvNxt = 9001;
        let segsIn = 0;
        let sentSegs = 0;
        let finished = false;
        upstream.on('data', (d: Buffer) => {
          for (let o = 0; o < d.length; o += 700) {
            const part = d.subarray(o, Math.min(o + 700, d.length));
            l.p1.inject(seg(sport, ACK | 0x08, srvNxt, (iss + 1 + segsIn) >>> 0, { payload: part }));
            srvNxt += part.length;
            sentSegs++;
          }
          l.run();
        });
        upstream.on('end', () => { l.p1.inject(seg(sport, ACK | 0x01, srvNxt, (iss + 1 + segsIn) >>> 0)); l.run(); });
        l.p1.inject(seg(sport, SYN | ACK, 9000, (iss + 1) >>> 0, { mss: 1400 }));
        l.run();
        void x.then(() => { finished = true; });
        // Pump the probe's segments to the server until the exchange ends (bounded).
        for (let i = 0; i < 500 && !finished; i++) {
          for (const f of l.p1.takeSent()) {
            const pp = parse(f.frame);
            if (pp.payload.length > 0 && seqOf(f.frame, 34) === ((iss + 1 + segsIn) >>> 0)) {
              upstream.write(Buffer.from(pp.payload));
              segsIn += pp.payload.length;
            }
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        upstream.destroy();
        const r = await x;
        expect(r).toHaveProperty('reply');
        expect((r as { reply: Buffer }).reply.toString()).toMatch(/^HTTP\/1\.[01] 200 OK\r\n[\s\S]*\r\n\r\nhello \/probe\n$/);
        expect(sentSegs).toBeGreaterThan(2);
        // The probe is over (the checker closed it once TLS had the reply: a RST went), nothing left in flight.
        await transport;
        expect(l.d.prober.pending).toBe(0);
        const last = l.p1.takeSent().at(-1);
        expect(last?.frame[47]).toBe(RST);
      } finally {
        tls.close();
        http.close();
      }
    });
  });
});

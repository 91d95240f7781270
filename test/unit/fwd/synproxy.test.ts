/**
 * SYN proxy (src/fwd/synproxy.ts; F1 ip_vs_synproxy.c): the director answers a SYN with a cookie
 * SYN-ACK, opens the conn on the client's valid ACK (the SYN to the real server then), holds the
 * client's segments until the real server's SYN-ACK, and translates sequence numbers both ways.
 */
import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, ROUTER_MAC, RS1_MAC } from '../../helpers/lab-mem.js';
import { tcpFields, VIP, CIP, SYN, ACK, SYNACK, PSHACK, RST } from '../../helpers/fullnat-tcp.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ } from '../../../src/model/constants.js';
import { SynCookies, cookieData, SP_DATA_SACK } from '../../../src/fwd/synproxy.js';
import { parseIp } from '../../../src/model/addr.js';
import { TCP_S_ESTABLISHED, TCP_S_SYN_RECV } from '../../../src/conn/tcp-state.js';
import type { Control } from '../../../src/control/ops.js';
import { renderMetrics } from '../../../src/control/metrics.js';

const ISN = 3_000_000_000; // above 2^31: int32 handling
const RS_ISN = 5000;
const REQUEST = 'GET / HTTP/1.0\r\n\r\n';
/** The client's SYN options: MSS 1460, SACK permitted, timestamps, window scale 7. */
const CLIENT_OPTS = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

function setup(fwd: typeof FWD_MASQ | typeof FWD_FULLNAT = FWD_MASQ) {
  const lab = memLab({ gateway: '10.0.0.200' });
  const { p0, p1, cmd, run } = lab;
  const rip = fwd === FWD_FULLNAT ? '10.0.1.7' : '10.0.0.7';
  const rsMac = fwd === FWD_FULLNAT ? ROUTER_MAC : RS1_MAC;
  cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), synproxy: true } });
  cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: rip, port: 80 }, opts: destOpts(fwd) });
  if (fwd === FWD_FULLNAT) cmd({ cmd: 'add-laddr', svc: tcpSvc(VIP, 80), laddr: '10.0.0.50' });
  /** A client segment; returns [to the client side, to the server side]. */
  const fromClient = (flags: number, seq: number, ack: number, payload = '', tcpOptions: number[] = []) => {
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags, seq, ack, payload, tcpOptions }));
    run();
    return [p0.takeSent(), p1.takeSent()] as const;
  };
  let toRs = { sport: 40000, saddr: CIP };
  const fromRs = (flags: number, seq: number, ack: number, payload = '', tcpOptions: number[] = []) => {
    p1.inject(build({ srcMac: rsMac, dstMac: DIR1_MAC, saddr: rip, daddr: toRs.saddr, sport: 80, dport: toRs.sport, flags, seq, ack, payload, tcpOptions }));
    run();
    return [p0.takeSent(), p1.takeSent()] as const;
  };
  /** SYN → cookie SYN-ACK; returns the cookie. */
  const handshake = () => {
    const [toClient, toServer] = fromClient(SYN, ISN, 0, '', CLIENT_OPTS);
    expect(toServer).toHaveLength(0);
    expect(toClient).toHaveLength(1);
    return tcpFields(toClient[0]!.frame).seq;
  };
  /** …then the cookie ACK: the SYN to the real server. */
  const open = () => {
    const cookie = handshake();
    const [toClient, toServer] = fromClient(ACK, ISN + 1, cookie + 1);
    expect(toClient).toHaveLength(0);
    expect(toServer).toHaveLength(1);
    const s = parse(toServer[0]!.frame);
    toRs = { sport: s.sport, saddr: s.saddr };
    return { cookie, syn: toServer[0]!.frame };
  };
  return { ...lab, rip, fromClient, fromRs, handshake, open };
}

describe('SYN cookies', () => {
  const k = new SynCookies(new Uint32Array([0x01234567, 0x89abcdef]));
  const a = parseIp('192.168.10.6') | 0, v = parseIp('192.168.10.110') | 0;
  it('carry their data for two minutes, only for their own addresses, ports and client ISN', () => {
    for (const data of [0, 1, 2, 3, 4, 7]) {
      const c = k.make(a, 40000, v, 80, 12345, 100, data);
      expect(k.check(a, 40000, v, 80, 12345, c, 100)).toBe(data);
      expect(k.check(a, 40000, v, 80, 12345, c, 101)).toBe(data);
      expect(k.check(a, 40000, v, 80, 12345, c, 102)).toBe(-1);
      expect(k.check(a, 40000, v, 80, 12346, c, 100)).toBe(-1);
      expect(k.check(a, 40001, v, 80, 12345, c, 100)).toBe(-1);
      expect(k.check(a + 1, 40000, v, 80, 12345, c, 100)).toBe(-1);
      expect(k.check(a, 40000, v, 80, 12345, (c + 1) >>> 0, 100)).toBe(-1);
    }
    // Another key: another cookie.
    expect(new SynCookies(new Uint32Array([1, 2])).make(a, 40000, v, 80, 12345, 100, 3)).not.toBe(k.make(a, 40000, v, 80, 12345, 100, 3));
  });
  it('round the MSS down to 536/1300/1440/1460 under synproxy_init_mss', () => {
    expect(cookieData(1460, 1452, true)).toBe(2 | SP_DATA_SACK);
    expect(cookieData(1460, 1460, false)).toBe(3);
    expect(cookieData(1300, 1452, false)).toBe(1);
    expect(cookieData(1299, 1452, false)).toBe(0);
    expect(cookieData(0, 1452, false)).toBe(0); // no MSS option: 536
  });
});

describe('SYN proxy (NAT)', () => {
  it('answers the SYN itself with a cookie SYN-ACK (MSS 1440, SACK permitted, TTL 63; no conn, no real server)', () => {
    const { d, fromClient } = setup();
    const [toClient, toServer] = fromClient(SYN, ISN, 0, '', CLIENT_OPTS);
    expect(toServer).toHaveLength(0);
    expect(toClient).toHaveLength(1);
    const f = toClient[0]!.frame;
    expect(parse(f)).toMatchObject({ saddr: VIP, daddr: CIP, sport: 80, dport: 40000, dstMac: CLIENT_MAC, srcMac: DIR0_MAC, ttl: 63, flags: SYNACK, ipOk: true, l4Ok: true });
    const t = tcpFields(f);
    expect(t.ack).toBe((ISN + 1) >>> 0);
    expect(t.options).toEqual([2, 4, 0x05, 0xa0, 1, 1, 4, 2]); // no window scale, no timestamps (F1 defaults)
    expect(d.conns.count).toBe(0);
    expect(d.spCounts[0]).toBe(1);
    // The same SYN again: the same cookie (stateless).
    expect(tcpFields(fromClient(SYN, ISN, 0, '', CLIENT_OPTS)[0][0]!.frame).seq).toBe(t.seq);
    // synproxy_sack=0: no SACK permitted offered.
    d.sysctl.set('synproxy_sack', '0');
    expect(tcpFields(fromClient(SYN, ISN, 0, '', CLIENT_OPTS)[0][0]!.frame).options).toEqual([2, 4, 0x05, 0xa0]);
  });

  it('an ACK with a wrong cookie is dropped; a valid one opens the conn and sends the client\'s SYN to the real server', () => {
    const { d, fromClient, handshake } = setup();
    const cookie = handshake();
    const [c1, s1] = fromClient(ACK, ISN + 1, cookie + 2);
    expect([c1.length, s1.length]).toEqual([0, 0]);
    expect(d.drops.snapshot()['synproxy-bad-ack']).toBe(1);
    expect(d.conns.count).toBe(0);
    const [c2, s2] = fromClient(ACK, ISN + 1, cookie + 1);
    expect(c2).toHaveLength(0);
    expect(s2).toHaveLength(1);
    const syn = parse(s2[0]!.frame);
    expect(syn).toMatchObject({ saddr: CIP, daddr: '10.0.0.7', sport: 40000, dport: 80, dstMac: RS1_MAC, flags: SYN, ipOk: true, l4Ok: true });
    const t = tcpFields(s2[0]!.frame);
    expect(t.seq).toBe(ISN);
    expect(t.options).toEqual([2, 4, 0x05, 0xa0, 1, 1, 4, 2]);
    expect(d.conns.count).toBe(1);
  });

  it('holds the client\'s segments until the real server\'s SYN-ACK, then translates ack (and SACK blocks) in, seq out', () => {
    const { d, p0, p1, run, fromClient, fromRs, open } = setup();
    const { cookie } = open();
    const conn = () => { let c = -1; for (let i = 0; i < d.conns.capacity; i++) if (d.conns.inUse(i)) c = i; return c; };
    expect(d.conns.state(conn())).toBe(TCP_S_SYN_RECV);
    // The request before the server answered: held.
    expect(fromClient(PSHACK, ISN + 1, cookie + 1, REQUEST)).toEqual([[], []]);
    // The real server's SYN-ACK: not to the client; the ACK and the request go on, acknowledging its ISN + 1.
    const [toClient, toServer] = fromRs(SYNACK, RS_ISN, ISN + 1, '', [2, 4, 0x05, 0xb4]);
    expect(toClient).toHaveLength(0);
    expect(toServer).toHaveLength(2);
    const [a, r] = toServer.map((x) => ({ p: parse(x.frame), t: tcpFields(x.frame) }));
    expect(a!.p).toMatchObject({ flags: ACK, daddr: '10.0.0.7', l4Ok: true });
    expect(a!.t).toMatchObject({ seq: (ISN + 1) >>> 0, ack: RS_ISN + 1 });
    expect(r!.p).toMatchObject({ flags: PSHACK, l4Ok: true });
    expect(r!.t).toMatchObject({ seq: (ISN + 1) >>> 0, ack: RS_ISN + 1 });
    expect(Buffer.from(r!.p.payload).toString()).toBe(REQUEST);
    expect(d.conns.state(conn())).toBe(TCP_S_ESTABLISHED);
    // The server's reply reaches the client in the cookie's numbers.
    const [reply] = fromRs(PSHACK, RS_ISN + 1, ISN + 1 + REQUEST.length, 'HTTP/1.0 200 OK\r\n\r\n');
    expect(reply).toHaveLength(1);
    expect(parse(reply[0]!.frame)).toMatchObject({ saddr: VIP, daddr: CIP, sport: 80, l4Ok: true });
    expect(tcpFields(reply[0]!.frame).seq).toBe((cookie + 1) >>> 0);
    // A client ACK with a SACK block (cookie numbers): both go into the server's.
    const sackOpt = (l: number, r2: number) => [1, 1, 5, 10, (l >>> 24) & 255, (l >>> 16) & 255, (l >>> 8) & 255, l & 255, (r2 >>> 24) & 255, (r2 >>> 16) & 255, (r2 >>> 8) & 255, r2 & 255];
    const [, sacked] = fromClient(ACK, ISN + 1 + REQUEST.length, cookie + 1, '', sackOpt((cookie + 100) >>> 0, (cookie + 200) >>> 0));
    const s = tcpFields(sacked[0]!.frame);
    expect(s.ack).toBe(RS_ISN + 1);
    const dv = new DataView(Uint8Array.from(s.options).buffer);
    expect([dv.getUint32(4), dv.getUint32(8)]).toEqual([RS_ISN + 100, RS_ISN + 200]);
    expect(parse(sacked[0]!.frame).l4Ok).toBe(true);
    expect([...d.spCounts]).toEqual([1, 1, 1, 0]);
    // An ICMP error from the client's side quoting the reply (cookie numbers): the real server gets its own seq back.
    p0.inject(build({ proto: 1, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, icmpType: 3, icmpCode: 3, payload: reply[0]!.frame.subarray(14, 14 + 28) }));
    run();
    const icmp = p1.takeSent();
    expect(icmp).toHaveLength(1);
    const q = icmp[0]!.frame;
    expect(parse(q)).toMatchObject({ proto: 1, daddr: '10.0.0.7', l4Ok: true });
    expect(new DataView(q.buffer, q.byteOffset).getUint32(14 + 20 + 8 + 20 + 4)).toBe(RS_ISN + 1);
  });

  it('ACK storm guard (synproxy_dup_ack_thresh, 10): the real server\'s 10th repeat of one ACK and later ones are dropped, a new one passes; 0 turns it off', () => {
    const { d, fromRs, open } = setup();
    open();
    fromRs(SYNACK, RS_ISN, ISN + 1, '', [2, 4, 0x05, 0xb4]);
    const same = () => fromRs(ACK, RS_ISN + 1, ISN + 1)[0].length;
    const passed: number[] = [];
    for (let i = 0; i < 12; i++) passed.push(same());
    expect(passed).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(d.drops.snapshot()['synproxy-ack-storm']).toBe(2);
    expect(fromRs(ACK, RS_ISN + 1, ISN + 2)[0]).toHaveLength(1); // another ack: passes, the count starts again
    expect(same()).toBe(1);
    d.sysctl.set('synproxy_dup_ack_thresh', '0');
    for (let i = 0; i < 12; i++) expect(same()).toBe(1);
    expect(renderMetrics(d)).toMatch(/^uvs_drops_total\{reason="synproxy-ack-storm"\} 2$/m);
  });

  it('a RST from the real server reaches the client at the cookie + 1; the held segments are dropped', () => {
    const { d, fromClient, fromRs, open } = setup();
    const { cookie } = open();
    fromClient(PSHACK, ISN + 1, cookie + 1, REQUEST);
    const [toClient, toServer] = fromRs(RST | ACK, 0, ISN + 1);
    expect(toServer).toHaveLength(0);
    expect(toClient).toHaveLength(1);
    expect(parse(toClient[0]!.frame)).toMatchObject({ flags: RST | ACK, saddr: VIP, daddr: CIP, l4Ok: true });
    expect(tcpFields(toClient[0]!.frame).seq).toBe((cookie + 1) >>> 0);
    expect(d.drops.snapshot()['synproxy-aborted']).toBe(2);
  });

  it('the SYN to a silent real server is sent again after 1 s and 2 s (synproxy_syn_retry); at most synproxy_skb_store_thresh segments wait', () => {
    const { d, clock, p1, fromClient, open } = setup();
    d.sysctl.set('synproxy_syn_retry', '2');
    const { cookie } = open();
    for (let i = 0; i < 3; i++) expect(fromClient(ACK, ISN + 1, cookie + 1)).toEqual([[], []]);
    expect(d.drops.snapshot()['synproxy-queue-full']).toBe(1); // the opening ACK + 2 held, the 4th dropped
    const resent: number[] = [];
    for (let t = 0; t < 8; t++) {
      clock.advance(500);
      d.tick();
      for (const f of p1.takeSent()) { expect(parse(f.frame).flags).toBe(SYN); resent.push(t); }
    }
    expect(resent).toEqual([1, 5]); // 1 s, then 2 s after that; then no more
    expect(d.spCounts[3]).toBe(2);
  });

  it('synproxy_defer=1: a cookie ACK without data opens nothing; one with the request does', () => {
    const { d, fromClient, handshake } = setup();
    d.sysctl.set('synproxy_defer', '1');
    const cookie = handshake();
    expect(fromClient(ACK, ISN + 1, cookie + 1)).toEqual([[], []]);
    expect(d.drops.snapshot()['synproxy-null-ack']).toBe(1);
    const [, s] = fromClient(PSHACK, ISN + 1, cookie + 1, REQUEST);
    expect(s).toHaveLength(1);
    expect(parse(s[0]!.frame).flags).toBe(SYN);
  });
});

describe('SYN proxy (FULLNAT)', () => {
  it('the SYN to the real server comes from the local address with the TOA; the released ACK carries it too', () => {
    const { fromClient, fromRs, open } = setup(FWD_FULLNAT);
    const { syn, cookie } = open();
    const s = parse(syn);
    expect(s).toMatchObject({ saddr: '10.0.0.50', daddr: '10.0.1.7', dstMac: ROUTER_MAC, l4Ok: true });
    const toa = [254, 8, 0x9c, 0x40, 192, 168, 10, 6];
    expect(tcpFields(syn).options.slice(0, 8)).toEqual(toa);
    const [toClient, toServer] = fromRs(SYNACK, RS_ISN, ISN + 1);
    expect(toClient).toHaveLength(0);
    expect(toServer).toHaveLength(1);
    expect(tcpFields(toServer[0]!.frame)).toMatchObject({ ack: RS_ISN + 1, options: toa });
    const [reply] = fromRs(PSHACK, RS_ISN + 1, ISN + 1, 'x');
    expect(parse(reply[0]!.frame)).toMatchObject({ saddr: VIP, daddr: CIP, l4Ok: true });
    expect(tcpFields(reply[0]!.frame).seq).toBe((cookie + 1) >>> 0);
    expect(fromClient(ACK, ISN + 1, cookie + 2)[1]).toHaveLength(1);
  });
});

describe('SYN proxy configuration', () => {
  it('-j is for TCP services with NAT/FULLNAT real servers, not with the PROXY protocol', () => {
    const { control } = memLab();
    const ex = (c: Parameters<Control['execute']>[0]) => control.execute(c);
    expect(ex({ cmd: 'add-service', svc: { ...tcpSvc(VIP, 53), protocol: 17 }, opts: { ...svcOpts('rr'), synproxy: true } })).toMatchObject({ ok: false, message: expect.stringContaining('TCP services') });
    expect(ex({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), synproxy: true, proxyProtocol: 2 } })).toMatchObject({ ok: false, message: expect.stringContaining('PROXY protocol') });
    expect(ex({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), synproxy: true } })).toMatchObject({ ok: true });
    expect(ex({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_DROUTE) })).toMatchObject({ ok: false, message: expect.stringContaining('NAT (-m) or FULLNAT (-b)') });
    expect(ex({ cmd: 'add-service', svc: tcpSvc(VIP, 81), opts: svcOpts('rr') })).toMatchObject({ ok: true });
    expect(ex({ cmd: 'add-server', svc: tcpSvc(VIP, 81), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_DROUTE) })).toMatchObject({ ok: true });
    expect(ex({ cmd: 'edit-service', svc: tcpSvc(VIP, 81), opts: { ...svcOpts('rr'), synproxy: true } })).toMatchObject({ ok: false, message: expect.stringContaining('DR/TUN') });
    expect(ex({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_MASQ) })).toMatchObject({ ok: true });
  });
});

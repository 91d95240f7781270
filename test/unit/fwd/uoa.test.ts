import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC } from '../../helpers/lab-mem.js';
import { FWD_FULLNAT, FWD_MASQ } from '../../../src/model/constants.js';
import { checksum, ipv4ChecksumOk, setIpv4Checksum } from '../../../src/wire/checksum.js';
import { AO_ADDED, AO_SKIP_FRAGMENT, AO_SKIP_MTU } from '../../../src/fwd/addr-option.js';
import { UOA_STANDALONE } from '../../../src/fwd/uoa.js';
import { renderMetrics } from '../../../src/control/metrics.js';
import { StepTracer, type TraceEvent } from '../../../src/trace/step-tracer.js';

const VIP = '192.168.10.110';
const CIP = '192.168.10.6';
/** The UOA option for the test client 192.168.10.6:40000. */
const UOA = [31, 8, 0x9c, 0x40, 192, 168, 10, 6];

/** A FULLNAT UDP service VIP:53 → 10.0.1.7:53 behind the router, local address 10.0.0.50. */
function setup(trail: number, mode: number, fwd: typeof FWD_FULLNAT | typeof FWD_MASQ = FWD_FULLNAT, mtu1?: number) {
  const lab = memLab({ gateway: '10.0.0.200', ...(mtu1 !== undefined ? { mtu1 } : {}) });
  const { cmd, d, p0, p1, run } = lab;
  const rip = fwd === FWD_FULLNAT ? '10.0.1.7' : '10.0.0.7';
  cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
  cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: rip, port: 53 }, opts: destOpts(fwd) });
  if (fwd === FWD_FULLNAT) cmd({ cmd: 'add-laddr', svc: udpSvc(VIP, 53), laddr: '10.0.0.50' });
  d.sysctl.set('fullnat_uoa_max_trail', String(trail));
  d.sysctl.set('fullnat_uoa_mode', String(mode));
  const send = (payload: string | Uint8Array, extra: { partial?: boolean; df?: boolean; sport?: number } = {}) => {
    const { partial, ...rest } = extra;
    const f = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, proto: 17, sport: 40000, dport: 53, payload, ...rest, ...(partial ? { partial } : {}) });
    if (partial) p0.inject(f, { flags: 1, csumStart: 34, csumOffset: 6 });
    else p0.inject(f);
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    return out[0]!;
  };
  return { ...lab, send, rip };
}

/** What the real server's uoa module does: the option-protocol header and the option taken out. */
function stripOpp(frame: Uint8Array): Uint8Array {
  const ihl = (frame[14]! & 15) * 4;
  const n = (frame[14 + ihl + 2]! << 8) | frame[14 + ihl + 3]!;
  const out = new Uint8Array(frame.length - n);
  out.set(frame.subarray(0, 14 + ihl), 0);
  out.set(frame.subarray(14 + ihl + n), 14 + ihl);
  out[14 + 9] = frame[14 + ihl + 1]!; // the next protocol
  const len = ((frame[16]! << 8) | frame[17]!) - n;
  out[16] = len >> 8; out[17] = len & 0xff;
  setIpv4Checksum(out, 14);
  return out;
}

describe('UOA (the client address for FULLNAT UDP real servers, DPVS)', () => {
  it('off by default: datagrams leave as plain UDP', () => {
    const { d, p0, p1, run, cmd } = memLab({ gateway: '10.0.0.200' });
    cmd({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: udpSvc(VIP, 53), dest: { addr: '10.0.1.7', port: 53 }, opts: destOpts(FWD_FULLNAT) });
    cmd({ cmd: 'add-laddr', svc: udpSvc(VIP, 53), laddr: '10.0.0.50' });
    expect(d.sysctl.get('fullnat_uoa_max_trail')).toBe('0');
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, proto: 17, sport: 40000, dport: 53, payload: 'q' }));
    run();
    const out = p1.takeSent();
    expect(parse(out[0]!.frame)).toMatchObject({ proto: 17, saddr: '10.0.0.50', ipOk: true, l4Ok: true });
  });

  it('opp mode: the first N datagrams carry IP protocol 248, its 4-byte header and the option, then plain UDP; the module\'s view checks out', () => {
    const { send, d } = setup(3, 0);
    for (let i = 1; i <= 4; i++) {
      const { frame } = send(`q${i}`);
      const ihl = (frame[14]! & 15) * 4;
      expect(ihl).toBe(20);
      expect(ipv4ChecksumOk(frame, 14)).toBe(true);
      if (i <= 3) {
        expect(frame[14 + 9]).toBe(248);
        expect([...frame.subarray(34, 34 + 12)]).toEqual([0x10, 17, 0, 12, ...UOA]);
        expect((frame[16]! << 8) | frame[17]!).toBe(20 + 12 + 8 + 2);
        const u = parse(stripOpp(frame));
        expect(u).toMatchObject({ proto: 17, saddr: '10.0.0.50', daddr: '10.0.1.7', dport: 53, ipOk: true, l4Ok: true });
        expect(new TextDecoder().decode(u.payload)).toBe(`q${i}`);
      } else {
        expect(parse(frame)).toMatchObject({ proto: 17, ipOk: true, l4Ok: true });
      }
    }
    expect(d.uoaCounts[AO_ADDED]).toBe(3);
    expect(renderMetrics(d)).toContain('uvs_fullnat_uoa_total{result="added"} 3');
    expect(d.drops.snapshot()).toEqual({});
  });

  it('ipo mode: the option goes right after the fixed IP header (IHL 7); UDP checksum untouched and right', () => {
    const { send } = setup(1, 1);
    const { frame } = send('hello');
    expect(frame[14]).toBe(0x47);
    expect([...frame.subarray(34, 42)]).toEqual(UOA);
    const p = parse(frame);
    expect(p).toMatchObject({ proto: 17, saddr: '10.0.0.50', daddr: '10.0.1.7', ipOk: true, l4Ok: true });
    expect(new TextDecoder().decode(p.payload)).toBe('hello');
    expect(frame[14]).toBe(0x47);
    expect(send('again').frame[14]).toBe(0x45); // trail 1: only the first
  });

  it('partial checksums (local senders) stay partial, their csum_start moved with the UDP header', () => {
    for (const mode of [0, 1]) {
      const { send } = setup(1, mode);
      const out = send('partial', { partial: true });
      expect(out.meta[0]).toBe(1);
      expect(out.meta[4]).toBe(34 + (mode === 0 ? 12 : 8));
      const f = mode === 0 ? parse(stripOpp(completed(out.frame, out.meta)), undefined) : parse(out.frame, out.meta);
      expect(f).toMatchObject({ ipOk: true, l4Ok: true });
    }
  });

  it('no room in the IP header (ipo) or past the MTU: the option goes ahead in an empty datagram of its own (opp and ipo); an IP fragment: left out; never on NAT dests', () => {
    const a = setup(3, 1, FWD_FULLNAT, 1500);
    /** The standalone datagram DPVS sends: LIP:lport → RIP:53, the option, no payload, UDP checksum 0. */
    const expectStandalone = (f: Uint8Array, mode: number) => {
      expect(ipv4ChecksumOk(f, 14)).toBe(true);
      const ihl = (f[14]! & 15) * 4;
      const dv = new DataView(f.buffer, f.byteOffset);
      expect([dv.getUint32(26), dv.getUint32(30)]).toEqual([0x0a000032, 0x0a000107]); // 10.0.0.50 → 10.0.1.7
      if (mode === 1) {
        expect([ihl, f[23]]).toEqual([28, 17]);
        expect([...f.subarray(34, 42)]).toEqual(UOA);
      } else {
        expect([ihl, f[23]]).toEqual([20, 248]);
        expect([...f.subarray(34, 46)]).toEqual([0x10, 17, 0, 12, ...UOA]);
      }
      const u = 14 + ihl + (mode === 1 ? 0 : 12);
      expect([dv.getUint16(u + 2), dv.getUint16(u + 4), dv.getUint16(u + 6)]).toEqual([53, 8, 0]);
      expect(dv.getUint16(16)).toBe(f.length - 14);
    };
    // A client datagram with 40 bytes of IP options already (IHL 15).
    const f = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, proto: 17, sport: 40000, dport: 53, payload: 'x' });
    const withOpts = new Uint8Array(f.length + 40);
    withOpts.set(f.subarray(0, 34), 0);
    withOpts.fill(1, 34, 73); // NOPs
    withOpts[73] = 0; // EOL
    withOpts.set(f.subarray(34), 74);
    withOpts[14] = 0x4f;
    const len = (f[16]! << 8 | f[17]!) + 40;
    withOpts[16] = len >> 8; withOpts[17] = len & 0xff;
    setIpv4Checksum(withOpts, 14);
    a.p0.inject(withOpts);
    a.run();
    const o1 = a.p1.takeSent();
    expect(o1).toHaveLength(2);
    expectStandalone(o1[0]!.frame, 1);
    expect(o1[1]!.frame[14]).toBe(0x4f);
    expect(a.d.uoaCounts[UOA_STANDALONE]).toBe(1);
    // 1472 bytes of payload: IP length 1500, no room for 8 more.
    a.d.sysctl.set('fullnat_uoa_mode', '0');
    a.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, proto: 17, sport: 40000, dport: 53, payload: new Uint8Array(1472) }));
    a.run();
    const o2 = a.p1.takeSent();
    expect(o2).toHaveLength(2);
    expectStandalone(o2[0]!.frame, 0);
    expect(parse(o2[1]!.frame)).toMatchObject({ proto: 17, ipOk: true, l4Ok: true });
    expect((o2[1]!.frame[16]! << 8) | o2[1]!.frame[17]!).toBe(1500);
    expect(a.d.uoaCounts[UOA_STANDALONE]).toBe(2);
    expect(a.d.uoaCounts[AO_SKIP_MTU]).toBe(0);
    expect(renderMetrics(a.d)).toContain('uvs_fullnat_uoa_total{result="standalone"} 2');
    // A first fragment (a new conn: the trail of the first is used up).
    const frag = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, proto: 17, sport: 40001, dport: 53, payload: 'x', df: false });
    frag[20] = 0x20; // MF
    setIpv4Checksum(frag, 14);
    a.p0.inject(frag);
    a.run();
    const o3 = a.p1.takeSent();
    expect(o3).toHaveLength(1);
    expect(o3[0]!.frame[23]).toBe(17);
    expect(a.d.uoaCounts[AO_SKIP_FRAGMENT]).toBe(1);
    expect(a.d.drops.snapshot()).toEqual({});
    const nat = setup(3, 0, FWD_MASQ);
    expect(parse(nat.send('q').frame)).toMatchObject({ proto: 17, ipOk: true, l4Ok: true });
  });

  it('the tracer shows the step; bad values are refused', () => {
    const { send, d } = setup(2, 0);
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: '', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    send('a');
    const uoa = events.map((e) => e.steps.filter((x) => x.stage === 'uoa').map((x) => x.text));
    expect(uoa).toEqual([[`UOA (${CIP}:40000) put in front of the UDP header behind IP protocol 248 (+12 bytes), client datagram 1 of 2`]]);
    expect(() => d.sysctl.set('fullnat_uoa_mode', '2')).toThrow(/out of range 0..1/);
    expect(() => d.sysctl.set('fullnat_uoa_max_trail', '256')).toThrow(/out of range 0..255/);
  });
});

/** The frame with its partial UDP checksum completed (as the sender's NIC would). */
function completed(frame: Uint8Array, meta: Uint16Array): Uint8Array {
  const b = new Uint8Array(frame);
  const cs = meta[4]!, co = meta[5]!;
  const c = checksum(b, cs, b.length - cs);
  b[cs + co] = c >> 8; b[cs + co + 1] = c & 0xff;
  return b;
}


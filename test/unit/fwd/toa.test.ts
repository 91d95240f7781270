import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { CLIENT_MAC, DIR0_MAC } from '../../helpers/lab-mem.js';
import { ACK, CIP, FIN, ISN, PSHACK, REQ, RS_ISN, RST, SYN, VIP, setup, tcpFields } from '../../helpers/fullnat-tcp.js';
import { FWD_MASQ } from '../../../src/model/constants.js';
import { checksum } from '../../../src/wire/checksum.js';
import { tcpOption } from '../../../src/wire/l4.js';
import { AO_ADDED, AO_SKIP_FRAGMENT, AO_SKIP_MTU, AO_SKIP_OPTION_ROOM } from '../../../src/fwd/addr-option.js';
import { renderMetrics } from '../../../src/control/metrics.js';
import { StepTracer, type TraceEvent } from '../../../src/trace/step-tracer.js';

/** The TOA option for the test client 192.168.10.6:40000. */
const TOA = [254, 8, 0x9c, 0x40, 192, 168, 10, 6];
/** A Linux SYN's options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (20 bytes). */
const LINUX_SYN = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

const ipLen = (f: Uint8Array) => (f[16]! << 8) | f[17]!;

describe('TOA (the client address in a TCP option) on FULLNAT conns', () => {
  it('the SYN, the handshake ACK and the first data carry kind 254 with the client port and address, in front of the other options; checksums right', () => {
    const { syn, handshakeAck, synAck, fromClient, d } = setup(0, undefined, { clientOptions: LINUX_SYN });
    const s = parse(syn);
    expect(s).toMatchObject({ saddr: '10.0.0.50', daddr: '10.0.1.7', ipOk: true, l4Ok: true });
    expect(tcpFields(syn).options).toEqual([...TOA, ...LINUX_SYN]);
    expect(ipLen(syn)).toBe(20 + 20 + 8 + LINUX_SYN.length);
    expect(tcpFields(syn).seq).toBe(ISN); // an option takes no sequence space
    // The server's MSS (1460) reaches the client lowered by the option's 8 bytes.
    expect(parse(synAck)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(synAck).options).toEqual([2, 4, 0x05, 0xb4 - 8]);
    // The ACK that completes the handshake (what the real server's TOA module reads).
    expect(parse(handshakeAck)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(handshakeAck).options).toEqual(TOA);
    // Data sent before the server's first byte acknowledges ISN + 1 too: it gets it, payload untouched.
    const first = fromClient(PSHACK, ISN + 1, REQ);
    const f = parse(first[0]!.frame, first[0]!.meta);
    expect(f).toMatchObject({ ipOk: true, l4Ok: true });
    expect(new TextDecoder().decode(f.payload)).toBe(REQ);
    expect(tcpFields(first[0]!.frame).options).toEqual(TOA);
    expect(d.toaCounts[AO_ADDED]).toBe(3);
    expect(d.drops.snapshot()).toEqual({});
  });

  it('not on segments acknowledging later server data, nor on FIN or RST; the server side never', () => {
    const { fromClient, fromRs, d } = setup(0);
    const back = fromRs(PSHACK, ISN + 1, [], 'hello');
    expect(tcpFields(back[0]!.frame).options).toEqual([]);
    const later = fromClient(PSHACK, ISN + 1, REQ, { ack: RS_ISN + 1 + 5 });
    expect(tcpFields(later[0]!.frame).options).toEqual([]);
    expect(parse(later[0]!.frame)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(fromClient(FIN | ACK, ISN + 1 + REQ.length)[0]!.frame).options).toEqual([]);
    expect(tcpFields(fromClient(RST | ACK, ISN + 1 + REQ.length + 1)[0]!.frame).options).toEqual([]);
    expect(d.toaCounts[AO_ADDED]).toBe(2); // the SYN and the handshake ACK only
  });

  it('partial checksums (local senders) stay partial and come out right', () => {
    const { fromClient } = setup(0);
    const out = fromClient(PSHACK, ISN + 1, REQ, { partial: true });
    expect(out[0]!.meta[0]).toBe(1);
    expect(parse(out[0]!.frame, out[0]!.meta)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(out[0]!.frame).options).toEqual(TOA);
  });

  it('a GSO super-frame gets it once (the kernel copies it into each segment): hdr_len grows by 8', () => {
    const { p0, p1, run } = setup(0);
    const payload = new Uint8Array(4000).fill(0x62);
    const f = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags: PSHACK, seq: ISN + 1, ack: RS_ISN + 1, payload, partial: true });
    p0.inject(f, { flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 });
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    expect([...out[0]!.meta.subarray(0, 4)]).toEqual([1, 1, 62, 1448]);
    expect(tcpFields(out[0]!.frame).options).toEqual(TOA);
    expect(parse(out[0]!.frame, out[0]!.meta)).toMatchObject({ ipOk: true, l4Ok: true });
  });

  it('left out, counted, the segment forwarded as it is: no option room, past the MTU, an IP fragment', () => {
    // A SYN whose options already fill the 40 bytes.
    const full = [...LINUX_SYN, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    const { syn, fromClient, p0, p1, run, d } = setup(0, undefined, { clientOptions: full });
    expect(tcpFields(syn).options).toEqual(full);
    expect(parse(syn)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(d.toaCounts[AO_SKIP_OPTION_ROOM]).toBe(1);
    // 1460 bytes of data: IP length 1500, no room for 8 more on the 1500-byte link.
    const big = fromClient(PSHACK, ISN + 1, new Uint8Array(1460).fill(0x61));
    expect(big).toHaveLength(1);
    expect(ipLen(big[0]!.frame)).toBe(1500);
    expect(tcpFields(big[0]!.frame).options).toEqual([]);
    expect(d.toaCounts[AO_SKIP_MTU]).toBe(1);
    // A first fragment (MF): the rest of the datagram could not follow a grown one.
    const frag = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags: PSHACK, seq: ISN + 1, ack: RS_ISN + 1, payload: REQ, df: false });
    frag[14 + 6] = 0x20;
    frag[14 + 10] = 0; frag[14 + 11] = 0;
    const c = checksum(frag, 14, 20);
    frag[14 + 10] = c >> 8; frag[14 + 11] = c & 0xff;
    p0.inject(frag);
    run();
    const out = p1.takeSent();
    expect(out).toHaveLength(1);
    expect(tcpFields(out[0]!.frame).options).toEqual([]);
    expect(d.toaCounts[AO_SKIP_FRAGMENT]).toBe(1);
    expect(d.drops.snapshot()).toEqual({});
    const m = renderMetrics(d);
    expect(m).toContain('uvs_fullnat_toa_total{result="added"} 1'); // the handshake ACK
    expect(m).toContain('uvs_fullnat_toa_total{result="no_option_room"} 1');
    expect(m).toContain('uvs_fullnat_toa_total{result="mtu"} 1');
    expect(m).toContain('uvs_fullnat_toa_total{result="fragment"} 1');
  });

  it('sysctl fullnat_toa_entry=0: only the SYN gets it; fullnat_mss_adjust_entry=0: the MSS is left alone', () => {
    const a = setup(0);
    a.d.sysctl.set('fullnat_toa_entry', '0');
    expect(tcpFields(a.fromClient(PSHACK, ISN + 1, REQ)[0]!.frame).options).toEqual([]);
    const b = setup(0);
    b.d.sysctl.set('net.ipv4.vs.fullnat_mss_adjust_entry', '0');
    b.d.sysctl.set('fullnat_toa_entry', '0');
    b.fromClient(SYN, ISN + 77); // a new handshake on the tuple (reused conn)
    const sa = b.fromRs(SYN | ACK, ISN + 78, [2, 4, 0x05, 0xb4]);
    expect(tcpFields(sa[0]!.frame).options).toEqual([2, 4, 0x05, 0xb4]);
    expect(b.d.sysctl.get('fullnat_mss_adjust_entry')).toBe('0');
    expect(() => b.d.sysctl.set('fullnat_toa_entry', '2')).toThrow(/out of range 0..1/);
  });

  it('a new SYN on the tuple forgets the old server ISN until the new SYN-ACK', () => {
    const { fromClient, fromRs, d } = setup(0);
    const syn2 = fromClient(SYN, ISN + 5000);
    expect(tcpFields(syn2[0]!.frame).options).toEqual(TOA);
    // An ACK acknowledging the old ISN + 1 before the new SYN-ACK: not the first data of anything known.
    expect(tcpFields(fromClient(ACK, ISN + 5001)[0]!.frame).options).toEqual([]);
    fromRs(SYN | ACK, ISN + 5001);
    expect(tcpFields(fromClient(ACK, ISN + 5001)[0]!.frame).options).toEqual(TOA);
    expect(d.drops.snapshot()).toEqual({});
  });

  it('not with --proxy-protocol (the header carries the address), not on NAT dests', () => {
    const pp = setup(2);
    expect(tcpFields(pp.syn).options).toEqual([]);
    expect(tcpFields(pp.synAck).options).toEqual([2, 4, 0x05, 0xb4 - 28]); // lowered for the PROXY header only
    const nat = setup(0, FWD_MASQ);
    expect(tcpFields(nat.syn).options).toEqual([]);
    expect(tcpFields(nat.synAck).options).toEqual([2, 4, 0x05, 0xb4]);
    expect(tcpFields(nat.handshakeAck).options).toEqual([]);
  });

  it('the tracer shows the step', () => {
    const { fromClient, d } = setup(0);
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: '', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    fromClient(PSHACK, ISN + 1, REQ);
    fromClient(PSHACK, ISN + 1, new Uint8Array(1460));
    const toa = events.map((e) => e.steps.filter((x) => x.stage === 'toa').map((x) => x.text));
    expect(toa).toEqual([
      [`TCP option 254 (TOA, ${CIP}:40000) put after the fixed TCP header (+8 bytes)`],
      ['not added: the packet would exceed the MTU toward the real server'],
    ]);
  });

  it('tcpOption finds an option of a kind and length, stops at EOL and at a bad length', () => {
    const b = new Uint8Array([1, 1, 4, 2, 2, 4, 5, 0xb4, 0, 2, 4, 1, 1]);
    expect(tcpOption(b, 0, 9, 2, 4)).toBe(4);
    expect(tcpOption(b, 0, 9, 4, 2)).toBe(2);
    expect(tcpOption(b, 0, 9, 2, 3)).toBe(-1);
    expect(tcpOption(b, 8, 13, 2, 4)).toBe(-1); // after EOL
    expect(tcpOption(new Uint8Array([3, 9, 2, 4, 5, 0xb4]), 0, 6, 2, 4)).toBe(-1); // length past the end
    expect(tcpOption(new Uint8Array([3, 1, 2, 4, 5, 0xb4]), 0, 6, 2, 4)).toBe(-1); // silly length
    // len 0: any length (SACK blocks: 10, 18, … bytes).
    const sack = new Uint8Array([1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    expect(tcpOption(sack, 0, 12, 5, 0)).toBe(2);
    expect(tcpOption(sack, 0, 12, 5, 18)).toBe(-1);
  });
});

import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, ROUTER_MAC } from '../../helpers/lab-mem.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ } from '../../../src/model/constants.js';
import { PP2_LEN_INET, PP1_MAX_LEN_INET, ppHeaderLen, writePpHeader } from '../../../src/fwd/proxy-proto.js';
import { parseIp } from '../../../src/model/addr.js';
import { checksum } from '../../../src/wire/checksum.js';
import { readProxyHeader } from '../../../src/lab/proxy-header.js';
import { parseHttpBody } from '../../../src/lab/client.js';
import { REPO_ROOT } from '../../../src/lab/netns.js';
import { StepTracer, type TraceEvent } from '../../../src/trace/step-tracer.js';
import { ACK, CIP, FIN, ISN, PSHACK, REQ, RS_ISN, SYN, VIP, setup, tcpFields } from '../../helpers/fullnat-tcp.js';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

const V1 = `PROXY TCP4 ${CIP} ${VIP} 40000 80\r\n`;
const V2 = [
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c,
  192, 168, 10, 6, 192, 168, 10, 110, 0x9c, 0x40, 0x00, 0x50,
];

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('PROXY protocol headers', () => {
  it('v1 is the haproxy text line, v2 the 28-byte binary header, both of the computed length', () => {
    const b = new Uint8Array(64);
    const c = parseIp(CIP), v = parseIp(VIP);
    expect(writePpHeader(b, 0, 1, c, 40000, v, 80)).toBe(V1.length);
    expect(text(b.subarray(0, V1.length))).toBe(V1);
    expect(ppHeaderLen(1, c, 40000, v, 80)).toBe(V1.length);
    expect(writePpHeader(b, 0, 2, c, 40000, v, 80)).toBe(PP2_LEN_INET);
    expect([...b.subarray(0, 28)]).toEqual(V2);
    const max = parseIp('255.255.255.255');
    expect(writePpHeader(b, 0, 1, max, 65535, max, 65535)).toBe(PP1_MAX_LEN_INET);
    expect(text(b.subarray(0, PP1_MAX_LEN_INET))).toBe('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n');
    expect(writePpHeader(b, 0, 1, parseIp('1.2.3.4'), 5, parseIp('10.0.0.1'), 7)).toBe('PROXY TCP4 1.2.3.4 10.0.0.1 5 7\r\n'.length);
    expect(text(b.subarray(0, 33))).toBe('PROXY TCP4 1.2.3.4 10.0.0.1 5 7\r\n');
  });
});

describe('--proxy-protocol on a FULLNAT service', () => {
  it('v2: the header goes in front of the first data, later seqs move up and acks/SACK edges move back', () => {
    const { fromClient, fromRs, synAck, d } = setup(2);
    // The SYN-ACK's MSS is lowered by the header length, checksums right.
    const sa = parse(synAck);
    expect(sa).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(synAck).options).toEqual([2, 4, 0x05, 0xb4 - 28]);

    const first = fromClient(PSHACK, ISN + 1, REQ);
    expect(first).toHaveLength(1);
    const f = parse(first[0]!.frame, first[0]!.meta);
    expect(f).toMatchObject({ saddr: '10.0.0.50', daddr: '10.0.1.7', ipOk: true, l4Ok: true });
    expect([...f.payload.subarray(0, 28)]).toEqual(V2);
    expect(text(f.payload.subarray(28))).toBe(REQ);
    expect(tcpFields(first[0]!.frame).seq).toBe(ISN + 1);
    const ipLen = new DataView(first[0]!.frame.buffer, first[0]!.frame.byteOffset).getUint16(16);
    expect(ipLen).toBe(20 + 20 + 28 + REQ.length);

    // The next segment: seq + 28.
    const second = fromClient(PSHACK, ISN + 1 + REQ.length, 'more');
    const g = parse(second[0]!.frame, second[0]!.meta);
    expect(g).toMatchObject({ ipOk: true, l4Ok: true });
    expect(text(g.payload)).toBe('more');
    expect(tcpFields(second[0]!.frame).seq).toBe(ISN + 1 + REQ.length + 28);

    // The RS acks everything (header included); the client sees its own numbers. A SACK block too.
    const end = ISN + 1 + 28 + REQ.length + 4;
    const sack = [1, 1, 5, 10, ...u32(end + 100), ...u32(end + 200)];
    const back = fromRs(ACK, end, sack);
    const h = parse(back[0]!.frame, back[0]!.meta);
    expect(h).toMatchObject({ saddr: VIP, daddr: CIP, ipOk: true, l4Ok: true });
    const tf = tcpFields(back[0]!.frame);
    expect(tf.ack).toBe(end - 28);
    expect(tf.options).toEqual([1, 1, 5, 10, ...u32(end + 100 - 28), ...u32(end + 200 - 28)]);
    // An ack inside the header (the RS took only part of it) maps to the start of the data.
    expect(tcpFields(fromRs(ACK, ISN + 1 + 10)[0]!.frame).ack).toBe(ISN + 1);
    // An ack of the SYN only is left alone.
    expect(tcpFields(fromRs(ACK, ISN + 1)[0]!.frame).ack).toBe(ISN + 1);

    // A retransmission of the first segment gets the header again (same seq).
    const again = fromClient(PSHACK, ISN + 1, REQ);
    const r = parse(again[0]!.frame, again[0]!.meta);
    expect(r).toMatchObject({ ipOk: true, l4Ok: true });
    expect([...r.payload.subarray(0, 28)]).toEqual(V2);
    expect(tcpFields(again[0]!.frame).seq).toBe(ISN + 1);
    // FIN moves too.
    expect(tcpFields(fromClient(FIN | ACK, ISN + 1 + REQ.length + 4)[0]!.frame).seq).toBe(ISN + 1 + REQ.length + 4 + 28);
    expect(d.drops.snapshot()).toEqual({});
  });

  it('sequence numbers that wrap past 2^32 move the same way (seq, ack, an ack inside the header)', () => {
    const isn = 0xfffffff0;
    const { fromClient, fromRs } = setup(2, FWD_FULLNAT, { isn });
    const first = (isn + 1) >>> 0;
    const out = fromClient(PSHACK, first, REQ);
    expect(tcpFields(out[0]!.frame).seq).toBe(first);
    const nextSeq = (first + REQ.length) >>> 0; // past the wrap
    expect(nextSeq).toBeLessThan(first);
    const next = fromClient(PSHACK, nextSeq, 'more');
    expect(tcpFields(next[0]!.frame).seq).toBe((nextSeq + 28) >>> 0);
    expect(parse(next[0]!.frame, next[0]!.meta)).toMatchObject({ ipOk: true, l4Ok: true });
    const end = (first + 28 + REQ.length + 4) >>> 0;
    const back = fromRs(ACK, end);
    expect(tcpFields(back[0]!.frame).ack).toBe((end - 28) >>> 0);
    expect(parse(back[0]!.frame, back[0]!.meta)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(fromRs(ACK, (first + 5) >>> 0)[0]!.frame).ack).toBe(first);
  });

  it('v1: the text header; the tracer says what was done to each segment', () => {
    const { fromClient, fromRs, d } = setup(1);
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: '', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    const out = fromClient(PSHACK, ISN + 1, REQ);
    const f = parse(out[0]!.frame, out[0]!.meta);
    expect(text(f.payload)).toBe(V1 + REQ);
    expect(f).toMatchObject({ ipOk: true, l4Ok: true });
    fromClient(PSHACK, ISN + 1 + REQ.length, 'x');
    fromRs(ACK, ISN + 1 + V1.length + REQ.length + 1);
    const pp = events.map((e) => e.steps.filter((x) => x.stage === 'proxy').map((x) => x.text));
    expect(pp[0]![0]).toBe(`v1 header (${V1.length} bytes: ${CIP}:40000 → ${VIP}:80) put in front of the client's first data (seq ${ISN + 1}); later client seqs +${V1.length}, server acks −${V1.length}`);
    expect(pp[1]![0]).toBe(`seq +${V1.length} (the v1 header sent before seq ${ISN + 1})`);
    expect(pp[2]![0]).toBe(`ack/SACK −${V1.length} (the v1 header is not the client's data)`);
  });

  it('partial checksums (local senders) stay partial and come out right', () => {
    const { fromClient } = setup(2);
    const out = fromClient(PSHACK, ISN + 1, REQ, { partial: true });
    expect(out[0]!.meta[0]).toBe(1);
    const f = parse(out[0]!.frame, out[0]!.meta);
    expect(f).toMatchObject({ ipOk: true, l4Ok: true });
    expect(text(f.payload.subarray(28))).toBe(REQ);
    const next = fromClient(PSHACK, ISN + 1 + REQ.length, 'x', { partial: true });
    expect(parse(next[0]!.frame, next[0]!.meta)).toMatchObject({ ipOk: true, l4Ok: true });
    expect(tcpFields(next[0]!.frame).seq).toBe(ISN + 1 + REQ.length + 28);
  });

  it('a DF first segment with no room for the header gets fragmentation-needed quoting MTU − header; the smaller resend gets it', () => {
    const { fromClient, p0, d } = setup(2);
    const big = new Uint8Array(1460).fill(0x61); // IP length 1500: the header would make it 1528
    expect(fromClient(PSHACK, ISN + 1, big)).toHaveLength(0);
    const icmp = p0.takeSent();
    expect(icmp).toHaveLength(1);
    const i = parse(icmp[0]!.frame);
    expect(i).toMatchObject({ proto: 1, daddr: CIP, ipOk: true, l4Ok: true });
    const l4 = 14 + 20;
    expect([icmp[0]!.frame[l4], icmp[0]!.frame[l4 + 1]]).toEqual([3, 4]);
    expect(new DataView(icmp[0]!.frame.buffer, icmp[0]!.frame.byteOffset).getUint16(l4 + 6)).toBe(1500 - 28);
    expect(d.drops.snapshot()['frag-needed']).toBe(1);
    const out = fromClient(PSHACK, ISN + 1, big.subarray(0, 1432));
    const f = parse(out[0]!.frame, out[0]!.meta);
    expect(f.payload.length).toBe(1460);
    expect(f).toMatchObject({ ipOk: true, l4Ok: true });
  });

  it('the first data in an IP fragment is a counted drop (no header in a fragment), the resend gets it', () => {
    const { fromClient, p1, p0, run, d } = setup(2);
    const frag = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags: PSHACK, seq: ISN + 1, ack: RS_ISN + 1, payload: REQ, df: false });
    frag[14 + 6] = 0x20; // MF
    frag[14 + 10] = 0; frag[14 + 11] = 0;
    const c = checksum(frag, 14, 20);
    frag[14 + 10] = c >> 8; frag[14 + 11] = c & 0xff;
    p0.inject(frag);
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()['proxy-protocol-fragment']).toBe(1);
    const out = fromClient(PSHACK, ISN + 1, REQ);
    expect([...parse(out[0]!.frame).payload.subarray(0, 28)]).toEqual(V2);
  });

  it('an ICMP error from the server side about a moved segment carries the seq the client sent', () => {
    const { fromClient, p1, p0, run } = setup(2);
    fromClient(PSHACK, ISN + 1, REQ);
    const moved = fromClient(PSHACK, ISN + 1 + REQ.length, 'more');
    const inner = moved[0]!.frame.subarray(14, 14 + 20 + 8); // IP header + 8 bytes
    expect(new DataView(inner.buffer, inner.byteOffset).getUint32(24)).toBe(ISN + 1 + REQ.length + 28);
    p1.inject(build({ proto: 1, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.200', daddr: '10.0.0.50', icmpType: 3, icmpCode: 4, sport: 0, dport: 1400, payload: new Uint8Array(inner) }));
    run();
    const out = p0.takeSent();
    expect(out).toHaveLength(1);
    const e = parse(out[0]!.frame);
    expect(e).toMatchObject({ proto: 1, daddr: CIP, ipOk: true, l4Ok: true });
    const dv = new DataView(out[0]!.frame.buffer, out[0]!.frame.byteOffset);
    expect(dv.getUint32(14 + 20 + 8 + 20 + 4)).toBe(ISN + 1 + REQ.length); // embedded seq
  });

  it('a new SYN with a new ISN on the tuple starts over: its first data gets the header', () => {
    const { fromClient } = setup(2);
    fromClient(PSHACK, ISN + 1, REQ);
    const NEW = 90000;
    fromClient(SYN, NEW);
    const out = fromClient(PSHACK, NEW + 1, REQ);
    expect(out).toHaveLength(1);
    expect(tcpFields(out[0]!.frame).seq).toBe(NEW + 1);
    expect([...parse(out[0]!.frame).payload.subarray(0, 28)]).toEqual(V2);
  });
});

describe('--proxy-protocol on other dests', () => {
  it('NAT dests get it too (the header names the client and the VIP)', () => {
    const { fromClient } = setup(1, FWD_MASQ);
    const out = fromClient(PSHACK, ISN + 1, REQ);
    const f = parse(out[0]!.frame, out[0]!.meta);
    expect(f).toMatchObject({ saddr: CIP, daddr: '10.0.0.7', ipOk: true, l4Ok: true });
    expect(text(f.payload)).toBe(V1 + REQ);
  });

  it('DR dests do not (their replies bypass the director, which could not move the acks back)', () => {
    const { p0, p1, cmd, run } = memLab();
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), proxyProtocol: 2 } });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.7', port: 80 }, opts: destOpts(FWD_DROUTE) });
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, flags: SYN, seq: ISN }));
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, flags: PSHACK, seq: ISN + 1, payload: REQ }));
    run();
    const out = p1.takeSent().map((s) => parse(s.frame, s.meta));
    expect(out).toHaveLength(2);
    expect(text(out[1]!.payload)).toBe(REQ);
  });

  it('control: UDP services refuse it, a bad version is refused, the listing snapshot carries it', () => {
    const { control, cmd } = memLab();
    const r = control.execute({ cmd: 'add-service', svc: udpSvc(VIP, 53), opts: { ...svcOpts('rr'), proxyProtocol: 2 } });
    expect(r).toMatchObject({ ok: false, errno: 'EINVAL' });
    const bad = control.execute({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), proxyProtocol: 3 } });
    expect(bad).toMatchObject({ ok: false, errno: 'EINVAL' });
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), proxyProtocol: 1 } });
    const list = control.execute({ cmd: 'get-services' });
    expect(JSON.stringify(list)).toContain('"proxyProtocol":1');
    cmd({ cmd: 'edit-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
    expect(JSON.stringify(control.execute({ cmd: 'get-services' }))).toContain('"proxyProtocol":0');
  });
});

function u32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

describe('the lab real server reads PROXY headers (src/lab/proxy-header.ts, http-server.ts)', () => {
  it('readProxyHeader: what writePpHeader writes comes back, byte by byte too; plain and malformed input told apart', () => {
    for (const v of [1, 2]) {
      const b = new Uint8Array(64);
      const n = writePpHeader(b, 0, v, parseIp(CIP), 40000, parseIp(VIP), 80);
      const full = Buffer.concat([Buffer.from(b.subarray(0, n)), Buffer.from(REQ)]);
      expect(readProxyHeader(full)).toEqual({ version: v, command: 'PROXY', src: CIP, dst: VIP, srcPort: 40000, dstPort: 80, length: n });
      for (let k = 1; k < n; k++) expect(readProxyHeader(full.subarray(0, k))).toBe('more');
    }
    expect(readProxyHeader(Buffer.from(REQ))).toBeNull();
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n'))).toMatchObject({ error: expect.stringContaining('malformed') });
    expect(readProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`))).toMatchObject({ error: expect.stringContaining('CRLF') });
    expect(readProxyHeader(Buffer.from('PROXY UNKNOWN\r\nGET'))).toMatchObject({ version: 1, command: 'UNKNOWN', length: 15 });
  });

  it('http-server on loopback answers with what the header said, counts a body, and serves plain connections', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/lab/http-server.js'), '--name', 'rsx', '--port', String(port), '--addr', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('http-server did not start')), 5000);
        child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('listening')) { clearTimeout(t); res(); } });
      });
      const ask = (pre: Uint8Array, req: string) => new Promise<string>((res, rej) => {
        const s = connect(port, '127.0.0.1', () => { s.write(pre); setTimeout(() => s.end(req), 20); });
        let out = '';
        s.on('data', (d) => { out += d.toString(); });
        s.on('close', () => res(out));
        s.on('error', rej);
        s.setTimeout(3000, () => { s.destroy(); rej(new Error('timeout')); });
      });
      const b = new Uint8Array(64);
      const n2 = writePpHeader(b, 0, 2, parseIp(CIP), 40000, parseIp(VIP), 80);
      const a2 = parseHttpBody((await ask(b.slice(0, n2), REQ)).split('\r\n\r\n')[1]!);
      expect(a2).toMatchObject({ ok: true, rs: 'rsx', peer: '127.0.0.1', proxy: `v2:${CIP}:40000>${VIP}:80` });
      const n1 = writePpHeader(b, 0, 1, parseIp(CIP), 40001, parseIp(VIP), 80);
      const body = 'x'.repeat(5000);
      const a1 = parseHttpBody((await ask(b.slice(0, n1), `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)).split('\r\n\r\n')[1]!);
      expect(a1).toMatchObject({ ok: true, proxy: `v1:${CIP}:40001>${VIP}:80`, bytes: 5000 });
      const plain = parseHttpBody((await ask(new Uint8Array(0), REQ)).split('\r\n\r\n')[1]!);
      expect(plain.ok).toBe(true);
      expect(plain.proxy).toBeUndefined();
      expect(await ask(Buffer.from('PROXY TCP4 nonsense\r\n'), REQ)).toBe(''); // closed, as nginx does
    } finally {
      child.kill('SIGTERM');
    }
  });
});

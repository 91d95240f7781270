/**
 * The FTP helper of NAT services (src/fwd/ftp.ts; K ip_vs_ftp): PASV/EPSV replies rewritten to the
 * VIP, the data connections they announce (and those PORT/EPRT announce) expected as conns, and the
 * server's sequence numbers moved by the length the rewrites added.
 */
import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC } from '../../helpers/lab-mem.js';
import { tcpFields, SYN, ACK, SYNACK, PSHACK } from '../../helpers/fullnat-tcp.js';
import { FWD_DROUTE, FWD_MASQ } from '../../../src/model/constants.js';
import { ftpAddrPort, ftpParsed } from '../../../src/fwd/ftp.js';
import { TCP_S_ESTABLISHED, TCP_S_LISTEN, TCP_S_SYN_RECV } from '../../../src/conn/tcp-state.js';
import { CF_NO_CPORT } from '../../../src/conn/conn-table.js';
import { renderMetrics } from '../../../src/control/metrics.js';
import { StepTracer, type TraceEvent } from '../../../src/trace/step-tracer.js';

const VIP = '192.168.10.100';
const CIP = '192.168.10.6';
const RIP = '10.0.0.7';
const C_ISN = 3_000_000_000; // above 2^31: int32 handling
const S_ISN = 4_000_000_000;
const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('ftpAddrPort (K ip_vs_ftp_get_addrport)', () => {
  const run = (s: string, pat: string, skip: string, ext = false, epsv = false) =>
    ftpAddrPort(enc(s), 0, s.length, enc(pat), skip.charCodeAt(0) || 0, ext, epsv);
  it('reads the old form with or without the parenthesis, and says what a rewrite replaces', () => {
    const s = '227 Entering Passive Mode (10,0,0,7,195,80).\r\n';
    expect(run(s, '227 ', '(')).toBe(1);
    expect([ftpParsed.addr >>> 0, ftpParsed.port]).toEqual([0x0a000007, 50000]);
    expect(s.slice(ftpParsed.start, ftpParsed.end)).toBe('10,0,0,7,195,80');
    expect(run('227 =10,0,0,7,4,1\r\n', '227 ', '(')).toBe(1); // no "(" (a digit starts it)
    expect(ftpParsed.port).toBe(1025);
    expect(run('PORT 192,168,10,6,200,10\r\n', 'PORT', ' ')).toBe(1);
    expect([ftpParsed.addr >>> 0, ftpParsed.port]).toEqual([0xc0a80a06, 51210]);
    expect(run('port 192,168,10,6,200,10\r\n', 'PORT', ' ')).toBe(1); // case-insensitive
  });
  it('refuses what does not match, and partial or malformed text', () => {
    expect(run('230 Logged in\r\n', '227 ', '(')).toBe(0);
    expect(run('22', '227 ', '(')).toBe(-1); // partial match of the pattern
    expect(run('227 Entering Passive Mode (10,0,0,7,195', '227 ', '(')).toBe(-1); // cut before its end
    expect(run('227 Entering Passive Mode (10,0,0,256,1,2)\r\n', '227 ', '(')).toBe(-1);
    expect(run('227 Entering Passive Mode (10,0,0,7,1)\r\n', '227 ', '(')).toBe(-1);
    expect(run('PORT 1,2,3\r\n', 'PORT', ' ')).toBe(-1);
  });
  it('reads RFC 2428: EPSV replies (port only) and EPRT commands (family 1 and an address)', () => {
    ftpParsed.addr = 0x0a000007;
    const s = '229 Entering Extended Passive Mode (|||50001|)\r\n';
    expect(run(s, '229 ', '(', true, true)).toBe(1);
    expect([ftpParsed.addr >>> 0, ftpParsed.port]).toEqual([0x0a000007, 50001]);
    expect(s.slice(ftpParsed.start, ftpParsed.end)).toBe('|||50001|');
    expect(run('EPRT |1|192.168.10.6|51210|\r\n', 'EPRT', ' ', true)).toBe(1);
    expect([ftpParsed.addr >>> 0, ftpParsed.port]).toEqual([0xc0a80a06, 51210]);
    expect(run('EPRT !1!192.168.10.6!51210!\r\n', 'EPRT', ' ', true)).toBe(1); // any delimiter 33..126
    expect(run('EPRT |2|::1|51210|\r\n', 'EPRT', ' ', true)).toBe(-1); // IPv6: not this family
    expect(run('EPRT |||51210|\r\n', 'EPRT', ' ', true)).toBe(-1); // only EPSV may leave the address out
    expect(run('EPRT |1|192.168.10|51210|\r\n', 'EPRT', ' ', true)).toBe(-1);
    expect(run('229 (|||0|)\r\n', '229 ', '(', true, true)).toBe(-1);
    expect(run('229 (|||70000|)\r\n', '229 ', '(', true, true)).toBe(-1);
  });
});

/** A NAT FTP service VIP:21 → RIP:21 and an established control connection (client port 40000). */
function setup(fwd: typeof FWD_MASQ | typeof FWD_DROUTE = FWD_MASQ, vport = 21, ftpPorts?: number[]) {
  const lab = memLab();
  const { d, p0, p1, cmd, run } = lab;
  if (ftpPorts) d.ftp.ports = ftpPorts;
  cmd({ cmd: 'add-service', svc: tcpSvc(VIP, vport), opts: svcOpts('rr') });
  cmd({ cmd: 'add-server', svc: tcpSvc(VIP, vport), dest: { addr: RIP, port: vport }, opts: destOpts(fwd) });
  const c = { seq: C_ISN + 1, ack: S_ISN + 1 }; // the client's next seq, and what it acks
  const s = { seq: S_ISN + 1 }; // the server's next raw seq
  /** A client segment on a tuple (default the control conn); returns what reached each side. */
  const client = (flags: number, seq: number, ack: number, payload: string | Uint8Array = '', o: { sport?: number; dport?: number; partial?: boolean; tcpOptions?: number[] } = {}) => {
    const f = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: o.sport ?? 40000, dport: o.dport ?? vport, flags, seq, ack, payload,
      ...(o.tcpOptions ? { tcpOptions: o.tcpOptions } : {}), ...(o.partial ? { partial: true } : {}) });
    if (o.partial) p0.inject(f, { flags: 1, csumStart: 34, csumOffset: 16 }); else p0.inject(f);
    run();
    return { toClient: p0.takeSent(), toServer: p1.takeSent() };
  };
  const server = (flags: number, seq: number, ack: number, payload: string | Uint8Array = '', o: { sport?: number; dport?: number; partial?: boolean } = {}) => {
    const f = build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: RIP, daddr: CIP, sport: o.sport ?? vport, dport: o.dport ?? 40000, flags, seq, ack, payload,
      ...(o.partial ? { partial: true } : {}) });
    if (o.partial) p1.inject(f, { flags: 1, csumStart: 34, csumOffset: 16 }); else p1.inject(f);
    run();
    return { toClient: p0.takeSent(), toServer: p1.takeSent() };
  };
  expect(client(SYN, C_ISN, 0).toServer).toHaveLength(1);
  // (DR: the real server answers the client directly; the director never sees it.)
  if (fwd === FWD_MASQ) expect(server(SYNACK, S_ISN, C_ISN + 1).toClient).toHaveLength(1);
  expect(client(ACK, c.seq, c.ack).toServer).toHaveLength(1);
  let control = -1;
  d.conns.forEach((i) => { if (d.conns.cport(i) === 40000) control = i; });
  expect(d.conns.state(control)).toBe(TCP_S_ESTABLISHED);
  /** The client sends a command line; returns the segment the server got. */
  const command = (line: string) => {
    const r = client(PSHACK, c.seq, c.ack, line);
    c.seq += line.length;
    expect(r.toServer).toHaveLength(1);
    return r.toServer[0]!;
  };
  /** The server sends a reply line; returns the segment the client got. */
  const reply = (line: string, o: { partial?: boolean } = {}) => {
    const r = server(PSHACK, s.seq, c.seq, line, o);
    s.seq += line.length;
    expect(r.toClient).toHaveLength(1);
    return r.toClient[0]!;
  };
  return { ...lab, client, server, command, reply, c, s, control: () => control };
}

/** The conns other than `except` (the data conns). */
function dataConns(d: ReturnType<typeof memLab>['d'], except: number): number[] {
  const out: number[] = [];
  d.conns.forEach((i) => { if (i !== except) out.push(i); });
  return out;
}

describe('FTP helper (NAT)', () => {
  it('PASV: the 227 reply names the VIP, the server seqs move by the added bytes, the client acks and SACKs move back', () => {
    const { d, command, reply, client, server, c, s, control } = setup();
    const pasv = command('PASV\r\n');
    expect(text(parse(pasv.frame).payload)).toBe('PASV\r\n'); // commands go through as they are
    const r = reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
    const got = parse(r.frame, r.meta);
    expect(got).toMatchObject({ saddr: VIP, daddr: CIP, sport: 21, dport: 40000, ipOk: true, l4Ok: true });
    expect(text(got.payload)).toBe('227 Entering Passive Mode (192,168,10,100,195,80).\r\n');
    const diff = '192,168,10,100'.length - '10,0,0,7'.length; // 6
    expect(tcpFields(r.frame).seq).toBe((s.seq - 46) >>> 0); // the rewritten segment keeps its seq
    // The data conn: client:* → VIP:50000 ⇒ RIP:50000, LISTEN, no client port yet, controlled by the control conn.
    const [n] = dataConns(d, control());
    expect(n).toBeDefined();
    expect({ c: d.conns.caddr(n!), cp: d.conns.cport(n!), v: d.conns.vaddr(n!), vp: d.conns.vport(n!), r: d.conns.daddr(n!), rp: d.conns.dport(n!) })
      .toEqual({ c: 0xc0a80a06, cp: 0, v: 0xc0a80a64, vp: 50000, r: 0x0a000007, rp: 50000 });
    expect(d.conns.state(n!)).toBe(TCP_S_LISTEN);
    expect(d.conns.flags(n!) & CF_NO_CPORT).toBe(CF_NO_CPORT);
    expect(d.conns.ctrl(n!)).toBe(control());
    expect(d.conns.nControl(control())).toBe(1);
    expect(d.ftp.counts[0]).toBe(1);
    // Later server segments: seq + 6.
    const r2 = reply('150 Here it comes.\r\n');
    expect(tcpFields(r2.frame).seq).toBe((s.seq - 20 + diff) >>> 0);
    expect(parse(r2.frame).l4Ok).toBe(true);
    // The client acks in its numbers (everything: +6); the server gets its own; SACK edges too.
    const ackAll = (s.seq + diff) >>> 0;
    const sackL = (s.seq - 20 + diff) >>> 0, sackR = (s.seq + diff) >>> 0;
    const a = client(ACK, c.seq, ackAll, '', { tcpOptions: [1, 1, 5, 10, sackL >>> 24, (sackL >>> 16) & 255, (sackL >>> 8) & 255, sackL & 255, sackR >>> 24, (sackR >>> 16) & 255, (sackR >>> 8) & 255, sackR & 255] });
    expect(a.toServer).toHaveLength(1);
    const af = tcpFields(a.toServer[0]!.frame);
    expect(af.ack).toBe(s.seq >>> 0);
    const dv = new DataView(Uint8Array.from(af.options).buffer);
    expect([dv.getUint32(4), dv.getUint32(8)]).toEqual([(s.seq - 20) >>> 0, s.seq >>> 0]);
    expect(parse(a.toServer[0]!.frame).l4Ok).toBe(true);
    // An ack up to the 227 reply only (before the rewritten bytes' end): the delta before it (0).
    const early = client(ACK, c.seq, (S_ISN + 1) >>> 0);
    expect(tcpFields(early.toServer[0]!.frame).ack).toBe((S_ISN + 1) >>> 0);
    // The client opens the data connection from port 50123: found without its port, filled in.
    const syn = client(SYN, 77, 0, '', { sport: 50123, dport: 50000 });
    expect(syn.toServer).toHaveLength(1);
    expect(parse(syn.toServer[0]!.frame)).toMatchObject({ saddr: CIP, daddr: RIP, sport: 50123, dport: 50000, dstMac: RS1_MAC, l4Ok: true });
    expect(d.conns.cport(n!)).toBe(50123);
    expect(d.conns.flags(n!) & CF_NO_CPORT).toBe(0);
    expect(d.conns.state(n!)).toBe(TCP_S_SYN_RECV);
    expect(d.conns.noCport).toBe(0);
    // …and the server's answer goes back from the VIP.
    const sa = server(SYNACK, 900, 78, '', { sport: 50000, dport: 50123 });
    expect(parse(sa.toClient[0]!.frame)).toMatchObject({ saddr: VIP, daddr: CIP, sport: 50000, dport: 50123, l4Ok: true });
  });

  it('a retransmitted 227 reply is rewritten again the same way, at the same seq', () => {
    const { d, command, server, s, c, control } = setup();
    command('PASV\r\n');
    const line = '227 Entering Passive Mode (10,0,0,7,195,80).\r\n';
    const first = server(PSHACK, s.seq, c.seq, line).toClient[0]!;
    const again = server(PSHACK, s.seq, c.seq, line).toClient[0]!;
    expect(text(parse(again.frame).payload)).toBe(text(parse(first.frame).payload));
    expect(tcpFields(again.frame).seq).toBe(tcpFields(first.frame).seq);
    expect(dataConns(d, control())).toHaveLength(1); // the same data conn
    // A later segment still moves by 6 only.
    s.seq += line.length;
    const later = server(PSHACK, s.seq, c.seq, '150 ok\r\n').toClient[0]!;
    expect(tcpFields(later.frame).seq).toBe((s.seq + 6) >>> 0);
  });

  it('a new SYN on the control conn\'s tuple (a reused conn) starts a new stream: nothing moved any more', () => {
    const { command, reply, client, server } = setup();
    command('PASV\r\n');
    reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
    expect(client(SYN, 7_000, 0).toServer).toHaveLength(1);
    const sa = server(SYNACK, 9_000, 7_001).toClient;
    expect(sa).toHaveLength(1);
    expect(tcpFields(sa[0]!.frame).seq).toBe(9_000);
    const a = client(ACK, 7_001, 9_001).toServer;
    expect(tcpFields(a[0]!.frame).ack).toBe(9_001);
  });

  it('two PASV rounds add up; a reply without a PASV before it is left alone', () => {
    const { command, reply, s } = setup();
    expect(text(parse(reply('227 Entering Passive Mode (10,0,0,7,1,2).\r\n').frame).payload)).toContain('(10,0,0,7,1,2)');
    command('PASV\r\n');
    reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
    command('pasv\r\n');
    const r = reply('227 Entering Passive Mode (10,0,0,7,195,81).\r\n');
    expect(text(parse(r.frame).payload)).toBe('227 Entering Passive Mode (192,168,10,100,195,81).\r\n');
    expect(tcpFields(r.frame).seq).toBe((s.seq - 46 + 6) >>> 0); // after the first rewrite
    const r3 = reply('226 done\r\n');
    expect(tcpFields(r3.frame).seq).toBe((s.seq - 10 + 12) >>> 0);
  });

  it('EPSV: the 229 reply keeps its form (|||port|), the data conn goes to the real server', () => {
    const { d, command, reply, control, client } = setup();
    command('EPSV\r\n');
    const r = reply('229 Entering Extended Passive Mode (|||50001|)\r\n');
    expect(text(parse(r.frame).payload)).toBe('229 Entering Extended Passive Mode (|||50001|)\r\n');
    const [n] = dataConns(d, control());
    expect([d.conns.vport(n!), d.conns.daddr(n!), d.conns.dport(n!), d.conns.cport(n!)]).toEqual([50001, 0x0a000007, 50001, 0]);
    expect(d.ftp.counts[1]).toBe(1);
    const syn = client(SYN, 1, 0, '', { sport: 50200, dport: 50001 });
    expect(parse(syn.toServer[0]!.frame)).toMatchObject({ daddr: RIP, dport: 50001, sport: 50200 });
    // "EPSV 2" (IPv6) and "EPSV ALL" are not watched.
    command('EPSV ALL\r\n');
    expect(text(parse(reply('229 Entering Extended Passive Mode (|||50002|)\r\n').frame).payload)).toContain('50002');
    expect(dataConns(d, control())).toHaveLength(1);
  });

  it('PORT and EPRT: a conn for the server\'s active data connection from port 20, sent out from VIP:20', () => {
    const { d, command, server, client, control } = setup();
    const cmdSeg = command('PORT 192,168,10,6,200,10\r\n');
    expect(text(parse(cmdSeg.frame).payload)).toBe('PORT 192,168,10,6,200,10\r\n'); // not rewritten (NAT: the client is reachable)
    const [n] = dataConns(d, control());
    expect([d.conns.caddr(n!), d.conns.cport(n!), d.conns.vaddr(n!), d.conns.vport(n!), d.conns.daddr(n!), d.conns.dport(n!)])
      .toEqual([0xc0a80a06, 51210, 0xc0a80a64, 20, 0x0a000007, 20]);
    expect(d.conns.state(n!)).toBe(TCP_S_LISTEN);
    expect(d.ftp.counts[2]).toBe(1);
    const syn = server(SYN, 500, 0, '', { sport: 20, dport: 51210 });
    expect(syn.toClient).toHaveLength(1);
    expect(parse(syn.toClient[0]!.frame)).toMatchObject({ saddr: VIP, daddr: CIP, sport: 20, dport: 51210, dstMac: CLIENT_MAC, l4Ok: true });
    const sa = client(SYNACK, 9, 501, '', { sport: 51210, dport: 20 });
    expect(parse(sa.toServer[0]!.frame)).toMatchObject({ saddr: CIP, daddr: RIP, sport: 51210, dport: 20, l4Ok: true });
    command('EPRT |1|192.168.10.6|51300|\r\n');
    expect(dataConns(d, control())).toHaveLength(2);
    expect(d.ftp.counts[3]).toBe(1);
    // A malformed PORT makes nothing.
    command('PORT 192,168,10,6,200\r\n');
    expect(dataConns(d, control())).toHaveLength(2);
  });

  it('partial checksums (local senders) stay partial and come out right', () => {
    const { command, reply } = setup();
    command('PASV\r\n');
    const r = reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n', { partial: true });
    const got = parse(r.frame, r.meta);
    expect(text(got.payload)).toBe('227 Entering Passive Mode (192,168,10,100,195,80).\r\n');
    expect(got.l4Ok).toBe(true);
    expect(got.ipOk).toBe(true);
  });

  it('a control segment with data and a bad checksum is dropped and counted', () => {
    const { d, p1, run, s, c, command } = setup();
    command('PASV\r\n');
    const f = build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: RIP, daddr: CIP, sport: 21, dport: 40000, flags: PSHACK, seq: s.seq, ack: c.seq, payload: '227 Entering Passive Mode (10,0,0,7,195,80).\r\n' });
    f[14 + 20 + 16]! ^= 0xff;
    p1.inject(f);
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.drops.snapshot()['ftp-bad-checksum']).toBe(1);
    expect(d.conns.count).toBe(1); // no data conn either
  });

  it('the control conn outlives its timeout while a data conn lives; removing all flushes both', () => {
    const { d, command, reply, control, clock, cmd } = setup();
    command('PASV\r\n');
    reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
    const [n] = dataConns(d, control());
    const ctl = control();
    expect(d.conns.nControl(ctl)).toBe(1);
    expect(d.conns.expire(ctl, clock.now())).toBe(false); // re-armed, not freed
    expect(d.conns.inUse(ctl)).toBe(true);
    cmd({ cmd: 'clear' });
    expect(d.conns.count).toBe(0);
    expect(d.conns.inUse(n!)).toBe(false);
    expect(d.conns.noCport).toBe(0);
  });

  it('is bound to NAT conns of the FTP ports only (DR, other ports, --ftp-ports none)', () => {
    for (const [fwd, port, ports] of [[FWD_DROUTE, 21, undefined], [FWD_MASQ, 2121, undefined], [FWD_MASQ, 21, []]] as const) {
      const lab = setup(fwd, port, ports ? [...ports] : undefined);
      if (fwd === FWD_DROUTE) {
        lab.command('PASV\r\n');
        expect(lab.d.ftp.counts[0]).toBe(0);
        continue;
      }
      lab.command('PASV\r\n');
      const r = lab.reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
      expect(text(parse(r.frame).payload)).toContain('(10,0,0,7,195,80)');
      expect(dataConns(lab.d, lab.control())).toHaveLength(0);
    }
    // --ftp-ports 2121: that port gets it.
    const lab = setup(FWD_MASQ, 2121, [2121]);
    lab.command('PASV\r\n');
    expect(text(parse(lab.reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n').frame).payload)).toContain('(192,168,10,100,195,80)');
  });

  it('the tracer shows each step, and the counters reach /metrics', () => {
    const { d, command, reply, client } = setup();
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: '', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    command('PASV\r\n');
    reply('227 Entering Passive Mode (10,0,0,7,195,80).\r\n');
    reply('150 ok\r\n');
    client(SYN, 1, 0, '', { sport: 50123, dport: 50000 });
    command('PORT 192,168,10,6,200,10\r\n');
    const ftp = events.map((e) => e.steps.filter((x) => x.stage === 'ftp' || (x.stage === 'track' && x.text.includes('client port'))).map((x) => x.text));
    expect(ftp[0]).toEqual([]);
    expect(ftp[1]![0]).toMatch(/^227 reply: the passive address rewritten to 192\.168\.10\.100 port 50000 \(\+6 bytes: later server seqs move\); data conn #\d+ 192\.168\.10\.6:\* → 192\.168\.10\.100:50000 ⇒ 10\.0\.0\.7:50000 \(LISTEN, controlled by conn #\d+\)$/);
    expect(ftp[2]).toEqual(['seq + 6 (the rewritten replies before it changed the stream\'s length)']);
    expect(ftp[3]![0]).toMatch(/client port 50123 filled in, state LISTEN$/);
    expect(ftp[4]![0]).toMatch(/^PORT command: the server's active data connection expected, data conn #\d+ 192\.168\.10\.6:51210 → 192\.168\.10\.100:20 ⇒ 10\.0\.0\.7:20 \(LISTEN/);
    const m = renderMetrics(d);
    expect(m).toContain('uvs_ftp_total{event="pasv_reply"} 1');
    expect(m).toContain('uvs_ftp_total{event="port_command"} 1');
    expect(m).toContain('uvs_ftp_total{event="epsv_reply"} 0');
  });

  it('DR/TUN FTP: a TCP packet to port 20 or ≥ 1024 of an FTP VIP is the port-21 service\'s (K ip_vs_service_find); persistence keeps the server', () => {
    const lab = memLab();
    const { p0, p1, cmd, run } = lab;
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 21), opts: svcOpts('rr', { flags: 1, timeout: 300 }) }); // -p 300
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 21), dest: { addr: RIP, port: 21 }, opts: destOpts(FWD_DROUTE) });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 21), dest: { addr: '10.0.0.17', port: 21 }, opts: destOpts(FWD_DROUTE) });
    const syn = (sport: number, dport: number) => {
      p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport, dport, flags: SYN, seq: 1, ack: 0 }));
      run();
      return p1.takeSent().map((x) => parse(x.frame));
    };
    const ctl = syn(40000, 21);
    expect(ctl).toHaveLength(1);
    const mac = ctl[0]!.dstMac;
    for (const port of [50000, 1024, 20, 60001]) {
      const data = syn(40001 + port % 1000, port);
      expect(data, `port ${port}`).toHaveLength(1);
      expect(data[0]).toMatchObject({ dstMac: mac, daddr: VIP, dport: port }); // DR: the same server, the port as sent
    }
    // A privileged port other than 20: no service (and nothing else on this VIP).
    expect(syn(40100, 1023)).toHaveLength(0);
    expect(syn(40101, 22)).toHaveLength(0);
    // No port-21 service: no fallback.
    cmd({ cmd: 'delete-service', svc: tcpSvc(VIP, 21) });
    cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 2121), opts: svcOpts('rr') });
    cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 2121), dest: { addr: RIP, port: 2121 }, opts: destOpts(FWD_DROUTE) });
    expect(syn(40200, 50000)).toHaveLength(0);
  });
});

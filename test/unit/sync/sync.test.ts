/**
 * IPVS connection sync (src/sync): the version 1 / 0 wire format byte for byte (K ip_vs_sync.c
 * structs, ipvs-semantics.md §7), the decoder's drop/skip rules, the master's choice of what to
 * send (K ip_vs_sync_conn_needed: sync_threshold 3 50, forced state changes, templates, one-packet
 * conns, sync_persist_mode, sync_version) through the whole Director on memory ports, and a
 * backup that takes over: the master's messages applied to a second director, which then
 * forwards the established flow to the same real server without a SYN.
 */
import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, udpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS1_MAC } from '../../helpers/lab-mem.js';
import { FWD_FULLNAT, FWD_MASQ } from '../../../src/model/constants.js';
import { parseIp } from '../../../src/model/addr.js';
import {
  decodeSync, emptyRecord, KF_INACTIVE, KF_SYNC, KF_TEMPLATE, OPT_UVS_LADDR, SyncWriter, type SyncRecord,
} from '../../../src/sync/proto.js';
import { SyncMaster } from '../../../src/sync/master.js';
import { renderMetrics } from '../../../src/control/metrics.js';

const VIP = '192.168.10.110';
const CIP = '192.168.10.6';
const RS1 = '10.0.0.7';
const RS2 = '10.0.0.17';
const FIN = 0x01;
const SYN = 0x02;
const ACK = 0x10;

type Lab = ReturnType<typeof memLab>;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function rec(over: Partial<SyncRecord>): SyncRecord {
  return { ...emptyRecord(), ...over };
}

function natLab(sched = 'rr', extra: Parameters<typeof svcOpts>[1] = {}, proto: 6 | 17 = 6): Lab {
  const l = memLab();
  const svc = proto === 6 ? tcpSvc(VIP, 80) : udpSvc(VIP, 80);
  l.cmd({ cmd: 'add-service', svc, opts: svcOpts(sched, extra) });
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_MASQ) });
  l.cmd({ cmd: 'add-server', svc, dest: { addr: RS2, port: 80 }, opts: destOpts(FWD_MASQ) });
  return l;
}

function withMaster(l: Lab, syncid = 5, maxlen = 1472): SyncMaster {
  const m = new SyncMaster(l.d.conns, l.d.config, l.d.sysctl, { syncid, maxlen });
  l.d.setSyncMaster(m);
  return m;
}

/** A client packet to the VIP; where it went (RIP) or null. */
function send(l: Lab, sport: number, flags: number, proto: 6 | 17 = 6): string | null {
  l.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport, dport: 80, flags, proto }));
  l.run();
  l.p0.takeSent();
  const out = l.p1.takeSent();
  return out.length === 0 ? null : parse(out[0]!.frame, out[0]!.meta).daddr;
}

/** Everything the master has (the partial message too), decoded. */
function drain(l: Lab, m: SyncMaster): SyncRecord[] {
  const out: SyncRecord[] = [];
  for (const msg of m.due(l.clock.now(), true)) {
    const recs: SyncRecord[] = [];
    const r = decodeSync(msg, 0, recs);
    expect(r.error).toBe('');
    out.push(...recs.slice(0, r.records).map((x) => ({ ...x })));
  }
  return out;
}

describe('the sync wire format (K ip_vs_sync.c, version 1 and 0)', () => {
  it('a version 1 message is the kernel header and 36-byte IPv4 records on 4-byte boundaries, in network order', () => {
    const w = new SyncWriter(1472, 5, 1);
    expect(w.add(rec({
      proto: 6, flags: FWD_MASQ, state: 1, caddr: parseIp(CIP), cport: 40000, vaddr: parseIp(VIP), vport: 80,
      daddr: parseIp(RS2), dport: 8080, fwmark: 0, timeout: 900,
    }), 0)).toBe(true);
    const m = w.take()!;
    expect(m.length).toBe(8 + 36);
    expect(hex(m)).toBe(
      '00' + '05' + '002c' + '01' + '01' + '0000' +                    // reserved, syncid 5, size 44, 1 conn, version 1, spare
      '00' + '06' + '0024' + '00000000' + '0001' +                     // IPv4, TCP, ver_size 36, flags, ESTABLISHED
      '9c40' + '0050' + '1f90' + '00000000' + '00000384' +             // cport 40000, vport 80, dport 8080, fwmark, 900 s
      'c0a80a06' + 'c0a80a6e' + '0a000011');                           // caddr, vaddr, daddr
    expect(w.take()).toBeNull();
  });

  it('a FULLNAT conn carries its local address in an optional option (0x50, skipped by kernel backups); the next record is padded to 4 bytes', () => {
    const w = new SyncWriter(1472, 1, 1);
    w.add(rec({ proto: 17, flags: FWD_FULLNAT, caddr: 1, cport: 2, vaddr: 3, vport: 4, daddr: 5, dport: 6, laddr: parseIp('10.0.0.50'), lport: 5001, timeout: 300 }), 0);
    w.add(rec({ proto: 17, caddr: 9, cport: 9, vaddr: 9, vport: 9, daddr: 9, dport: 9 }), 0);
    const m = w.take()!;
    expect(m.length).toBe(8 + 44 + 36);
    expect(hex(m.subarray(8, 8 + 4))).toBe('0011002c'); // ver_size 44 = 36 + option
    expect(hex(m.subarray(8 + 36, 8 + 44))).toBe(OPT_UVS_LADDR.toString(16) + '06' + '0a000032' + '1389');
    const out: SyncRecord[] = [];
    const r = decodeSync(m, 0, out);
    expect(r).toMatchObject({ error: '', syncid: 1, version: 1, records: 2, skipped: 0 });
    expect(out[0]).toMatchObject({ proto: 17, flags: FWD_FULLNAT | KF_SYNC, laddr: parseIp('10.0.0.50'), lport: 5001, timeout: 300 });
    expect(out[1]).toMatchObject({ caddr: 9, laddr: 0 });
  });

  it('version 0: 4-byte header, 24-byte records without timeout and fwmark', () => {
    const w = new SyncWriter(1472, 3, 0);
    w.add(rec({ proto: 6, flags: KF_INACTIVE, state: 3, caddr: 0x01020304, cport: 1, vaddr: 0x05060708, vport: 2, daddr: 0x090a0b0c, dport: 3, timeout: 60, fwmark: 7 }), 0);
    const m = w.take()!;
    expect(hex(m)).toBe('01' + '03' + '001c' + '00' + '06' + '0001' + '0002' + '0003' + '01020304' + '05060708' + '090a0b0c' + '0100' + '0003');
    const out: SyncRecord[] = [];
    expect(decodeSync(m, 3, out)).toMatchObject({ error: '', version: 0, records: 1 });
    expect(out[0]).toMatchObject({ proto: 6, state: 3, flags: KF_INACTIVE | KF_SYNC, timeout: 0, fwmark: 0, dport: 3 });
  });

  it('drops a whole message for a wrong size, a record past its end, an unknown record version or type, another SyncID', () => {
    const w = new SyncWriter(1472, 5, 1);
    w.add(rec({ proto: 6, state: 1, caddr: 1, vaddr: 2, daddr: 3 }), 0);
    const good = w.take()!;
    const out: SyncRecord[] = [];
    expect(decodeSync(good.subarray(0, 40), 0, out).error).toBe('bogus message size');
    expect(decodeSync(new Uint8Array(2), 0, out).error).toBe('message header too short');
    expect(decodeSync(good, 6, out).error).toBe('ignoring syncid 5');
    expect(decodeSync(good, 5, out).error).toBe('');
    const past = good.slice(); past[10] = 0x00; past[11] = 0x40; // ver_size 64 > the message
    expect(decodeSync(past, 0, out).error).toMatch(/runs past/);
    const ver = good.slice(); ver[10] = 0x10; // record version 1
    expect(decodeSync(ver, 0, out).error).toMatch(/unknown record version/);
    const typ = good.slice(); typ[8] = 2;
    expect(decodeSync(typ, 0, out).error).toMatch(/unknown record type/);
  });

  it('skips (and counts) one record for an unknown mandatory option, IPv6, an unknown protocol or state; keeps unknown optional options; forces template state 0', () => {
    const mk = (opt: number[] | null, over: Partial<SyncRecord> = {}): Uint8Array => {
      const w = new SyncWriter(1472, 0, 1);
      w.add(rec({ proto: 6, state: 1, caddr: 1, vaddr: 2, daddr: 3, ...over }), 0);
      w.add(rec({ proto: 17, caddr: 7, vaddr: 8, daddr: 9 }), 0);
      const m = w.take()!;
      if (opt === null) return m;
      // Insert the option into the first record (its ver_size and the message size grow).
      const ext = new Uint8Array(m.length + 4);
      ext.set(m.subarray(0, 8 + 36), 0);
      ext.set(opt, 8 + 36);
      ext.set(m.subarray(8 + 36), 8 + 40);
      ext[10] = 0; ext[11] = 40;
      ext[2] = ext.length >> 8; ext[3] = ext.length & 0xff;
      return ext;
    };
    const out: SyncRecord[] = [];
    expect(decodeSync(mk([0x09, 2, 0, 0]), 0, out)).toMatchObject({ error: '', records: 1, skipped: 1 });
    expect(out[0]!.caddr).toBe(7);
    expect(decodeSync(mk([0x49, 2, 0, 0]), 0, out)).toMatchObject({ error: '', records: 2, skipped: 0 });
    expect(decodeSync(mk([0x49, 0, 0, 0]), 0, out).error).toMatch(/bad option length/);
    expect(decodeSync(mk(null, { state: 11 }), 0, out)).toMatchObject({ records: 1, skipped: 1 });
    expect(decodeSync(mk(null, { proto: 132 }), 0, out)).toMatchObject({ records: 1, skipped: 1 });
    expect(decodeSync(mk(null, { flags: KF_TEMPLATE, proto: 0, state: 1 }), 0, out)).toMatchObject({ records: 2 });
    expect(out[0]).toMatchObject({ flags: KF_TEMPLATE | KF_SYNC, state: 0 });
    // An IPv6 record (type bit 0): 72 bytes, skipped.
    const v6 = new Uint8Array(8 + 72);
    v6.set([0, 0, 0, 80, 1, 1, 0, 0, 1, 6, 0, 72], 0);
    expect(decodeSync(v6, 0, out)).toMatchObject({ error: '', records: 0, skipped: 1 });
  });

  it('a message never exceeds maxlen: add() says when it is full, 255 records at most', () => {
    const w = new SyncWriter(8 + 36 * 3, 0, 1);
    for (let i = 0; i < 3; i++) expect(w.add(rec({ proto: 6, caddr: i }), 0)).toBe(true);
    expect(w.add(rec({ proto: 6 }), 0)).toBe(false);
    expect(w.take()!.length).toBe(8 + 108);
  });
});

describe('the master: what is sent when (K ip_vs_sync_conn_needed, defaults sync_threshold = 3 50)', () => {
  it('TCP: only from ESTABLISHED on, at the 3rd client packet and every 50th after; a change to CLOSE_WAIT at once', () => {
    const l = natLab();
    const m = withMaster(l);
    const rs = send(l, 40000, SYN)!;
    expect(drain(l, m)).toEqual([]);               // SYN_RECV: never
    send(l, 40000, ACK);                           // ESTABLISHED, 2 packets: waits for the packet test
    expect(drain(l, m)).toEqual([]);
    send(l, 40000, ACK);                           // 3rd packet
    const r = drain(l, m);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ proto: 6, state: 1, caddr: parseIp(CIP), cport: 40000, vaddr: parseIp(VIP), vport: 80, daddr: parseIp(rs), dport: 80, timeout: 900, flags: FWD_MASQ | KF_SYNC });
    for (let i = 4; i <= 52; i++) send(l, 40000, ACK);
    expect(drain(l, m)).toEqual([]);
    send(l, 40000, ACK);                           // 53 = 3 mod 50
    expect(drain(l, m)).toHaveLength(1);
    send(l, 40000, FIN | ACK);                     // client FIN: ESTABLISHED → CLOSE_WAIT (K tcp_states): forced
    expect(drain(l, m)).toMatchObject([{ state: 7, flags: FWD_MASQ | KF_SYNC | KF_INACTIVE, timeout: 60 }]);
    send(l, 40000, ACK);                           // no change, not a multiple: nothing
    expect(drain(l, m)).toEqual([]);
  });

  it('UDP by the packet test only; sync_threshold is read live', () => {
    const l = natLab('rr', {}, 17);
    const m = withMaster(l);
    for (let i = 1; i <= 3; i++) send(l, 5353, 0, 17);
    expect(drain(l, m)).toMatchObject([{ proto: 17, state: 0, timeout: 300 }]);
    l.cmd({ cmd: 'set-sysctl', name: 'sync_threshold', value: '1 2' });
    send(l, 5353, 0, 17); // 4 % 2 = 0
    expect(drain(l, m)).toEqual([]);
    send(l, 5353, 0, 17); // 5 % 2 = 1
    expect(drain(l, m)).toHaveLength(1);
  });

  it('a persistence template after every packet of a conn it controls; sync_persist_mode=1 sends only the templates', () => {
    const l = natLab('rr', { flags: 1, timeout: 300 });
    const m = withMaster(l);
    const rs = send(l, 40000, SYN)!;
    const r = drain(l, m);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ proto: 6, flags: FWD_MASQ | KF_TEMPLATE | KF_SYNC, cport: 0, vport: 80, daddr: parseIp(rs), timeout: 300 });
    send(l, 40000, ACK);
    send(l, 40000, ACK);
    const r2 = drain(l, m);
    expect(r2.map((x) => (x.flags & KF_TEMPLATE ? 'T' : 'C')).join('')).toBe('TCT'); // the 3rd packet: conn, then its template
    l.cmd({ cmd: 'set-sysctl', name: 'sync_persist_mode', value: '1' });
    for (let i = 4; i <= 53; i++) send(l, 40000, ACK);
    const r3 = drain(l, m);
    expect(r3.every((x) => (x.flags & KF_TEMPLATE) !== 0)).toBe(true);
    expect(r3).toHaveLength(50);
  });

  it('a template kept past its timeout because it still controls a conn is sent again at each 60 s re-arm (K ip_vs_conn_expire)', () => {
    const l = natLab('rr', { flags: 1, timeout: 30 });
    const m = withMaster(l);
    send(l, 40000, SYN);
    send(l, 40000, ACK);
    drain(l, m);
    l.clock.advance(31_000);           // the template is due; its conn (ESTABLISHED, 900 s) is alive
    l.d.tick();
    const r = drain(l, m);
    expect(r).toMatchObject([{ flags: FWD_MASQ | KF_TEMPLATE | KF_SYNC, timeout: 60 }]);
    l.clock.advance(61_000);
    l.d.tick();
    expect(drain(l, m)).toHaveLength(1);
    l.d.setSyncMaster(null);             // no master: re-arming sends nothing
    l.clock.advance(61_000);
    l.d.tick();
    expect(m.due(l.clock.now(), true)).toEqual([]);
  });

  it('one-packet (-o) UDP conns are never sent; sync_version=0 makes version 0 messages', () => {
    const l = natLab('rr', { flags: 4 }, 17);
    const m = withMaster(l);
    for (let i = 1; i <= 5; i++) send(l, 5000 + i, 0, 17);
    expect(drain(l, m)).toEqual([]);
    const l2 = natLab('rr', {}, 17);
    const m2 = withMaster(l2);
    l2.cmd({ cmd: 'set-sysctl', name: 'sync_version', value: '0' });
    for (let i = 1; i <= 3; i++) send(l2, 5353, 0, 17);
    const msgs = m2.due(l2.clock.now(), true);
    expect(msgs).toHaveLength(1);
    const out: SyncRecord[] = [];
    expect(decodeSync(msgs[0]!, 0, out)).toMatchObject({ version: 0, records: 1, syncid: 5 });
  });

  it('a partly filled message waits up to 2 s; full ones are queued at once', () => {
    const l = natLab('rr', {}, 17);
    const m = withMaster(l, 5, 8 + 36 * 2);
    for (let i = 1; i <= 3; i++) send(l, 6001, 0, 17);
    expect(m.due(l.clock.now())).toEqual([]);
    l.clock.advance(2000);
    expect(m.due(l.clock.now())).toHaveLength(1);
    for (const port of [6002, 6003, 6004]) for (let i = 1; i <= 3; i++) send(l, port, 0, 17);
    expect(m.due(l.clock.now()).map((x) => x.length)).toEqual([8 + 72]); // the 3rd record opened a new message
  });
});

describe('the backup: the master\'s conns in its table, forwarded after a takeover', () => {
  function pair(): { master: Lab; backup: Lab; m: SyncMaster; ship: () => void } {
    const master = natLab();
    const backup = natLab();
    backup.d.setSyncBackup(0);
    const m = withMaster(master);
    const ship = (): void => {
      for (const msg of m.due(master.clock.now(), true)) expect(backup.d.applySyncMessage(msg).error).toBe('');
    };
    return { master, backup, m, ship };
  }

  it('creates the conn bound to the same dest with the master\'s state and counts; updates it; forwards its packets without a SYN', () => {
    const { master, backup, ship } = pair();
    const first = send(master, 40001, SYN)!;
    const rs = send(master, 40002, SYN)!;          // rr: the second client goes to the other one
    expect(rs).not.toBe(first);
    for (let i = 0; i < 2; i++) send(master, 40002, ACK);
    ship();
    const conns = backup.d.conns.snapshot(backup.clock.now());
    expect(conns).toMatchObject([{ cport: 40002, daddr: rs, state: 'ESTABLISHED', expires: 900 }]);
    const rs2 = backup.d.config.services[0]!.dests.find((d) => d.addr === parseIp(rs))!;
    expect([rs2.activeConns, rs2.inactConns]).toEqual([1, 0]);
    expect(backup.d.syncApplied).toMatchObject({ created: 1, updated: 0 });
    expect(renderMetrics(backup.d)).toContain('uvs_sync_records_received_total{result="created"} 1\n');
    expect(renderMetrics(master.d)).toContain('uvs_sync_records_sent_total 1\n');
    // Takeover: the flow's next segment reaches the backup, which has never seen its SYN.
    expect(send(backup, 40002, ACK)).toBe(rs);
    // (the backup's own rr would have sent a new client to `first`)
    // Without the sync the backup drops it (not a SYN, sloppy_tcp=0).
    const cold = natLab();
    expect(send(cold, 40002, ACK)).toBeNull();
    // An update: CLOSE_WAIT on the master moves the backup's conn to CLOSE_WAIT and to the inactive count.
    send(master, 40002, FIN | ACK);
    ship();
    expect(backup.d.conns.snapshot(backup.clock.now()).find((c) => c.cport === 40002)).toMatchObject({ state: 'CLOSE_WAIT', expires: 60 });
    expect([rs2.activeConns, rs2.inactConns]).toEqual([0, 1]);
    expect(backup.d.syncApplied.updated).toBeGreaterThanOrEqual(1);
  });

  it('skips (and counts) a record whose service or dest the backup lacks; filters SyncIDs; FULLNAT takes the local address from the record', () => {
    const backup = memLab();
    backup.d.setSyncBackup(7);
    const svc = tcpSvc(VIP, 80);
    backup.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
    backup.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_FULLNAT) });
    backup.cmd({ cmd: 'add-laddr', svc, laddr: '10.0.0.50' });
    const w = new SyncWriter(1472, 7, 1);
    const base = { proto: 6, state: 1, caddr: parseIp(CIP), vaddr: parseIp(VIP), vport: 80, dport: 80, timeout: 900 };
    w.add(rec({ ...base, cport: 1, daddr: parseIp(RS2) }), 0);                                        // no such dest
    w.add(rec({ ...base, cport: 2, vaddr: parseIp('1.1.1.1'), daddr: parseIp(RS1) }), 0);              // no such service
    w.add(rec({ ...base, cport: 3, daddr: parseIp(RS1), flags: FWD_FULLNAT }), 0);                     // FULLNAT without its laddr
    w.add(rec({ ...base, cport: 4, daddr: parseIp(RS1), flags: FWD_FULLNAT, laddr: parseIp('10.0.0.50'), lport: 5005 }), 0);
    const msg = w.take()!;
    expect(backup.d.applySyncMessage(msg)).toMatchObject({ error: '', records: 4 });
    expect(backup.d.syncApplied).toMatchObject({ created: 1, noDest: 1, noService: 1, noLaddr: 1 });
    expect(backup.d.conns.snapshot(backup.clock.now())).toMatchObject([{ cport: 4, laddr: '10.0.0.50', lport: 5005, daddr: RS1 }]);
    const other = new SyncWriter(1472, 8, 1);
    other.add(rec({ ...base, cport: 9, daddr: parseIp(RS1) }), 0);
    expect(backup.d.applySyncMessage(other.take()!).error).toBe('ignoring syncid 8');
  });

  it('--proxy-protocol conns: the record goes out when the header is sent (option 0x51), and the backup keeps moving seqs and acks after a takeover', () => {
    const mk = (): Lab => {
      const l = memLab();
      const svc = tcpSvc(VIP, 80);
      l.cmd({ cmd: 'add-service', svc, opts: { ...svcOpts('rr'), proxyProtocol: 2 } });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 80 }, opts: destOpts(FWD_MASQ) });
      return l;
    };
    const master = mk();
    const backup = mk();
    backup.d.setSyncBackup(0);
    const m = withMaster(master);
    const seg = (l: Lab, flags: number, seq: number, payload = '') => {
      l.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40007, dport: 80, flags, seq, ack: 5001, payload }));
      l.run();
      l.p0.takeSent();
      return l.p1.takeSent();
    };
    const seqOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + 4);
    seg(master, SYN, 1000);
    seg(master, ACK, 1001);
    expect(drain(master, m)).toEqual([]); // 2 client packets: not yet (sync_threshold 3)
    const first = seg(master, 0x18, 1001, 'GET / HTTP/1.0\r\n\r\n');
    expect(parse(first[0]!.frame).payload.length).toBe(28 + 18);
    const msgs = m.due(master.clock.now(), true);
    const recs: SyncRecord[] = [];
    for (const msg of msgs) {
      recs.length = 0;
      expect(decodeSync(msg, 0, recs).error).toBe('');
      expect(backup.d.applySyncMessage(msg).error).toBe('');
    }
    // The 3rd client packet's record (sync_threshold; before the header went out), then the one the
    // header forces.
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ cport: 40007, pp: 2, ppSent: 0, ppSeq: 0 });
    expect(recs[1]).toMatchObject({ cport: 40007, pp: 2, ppSent: 1, ppSeq: 1001 });
    // The option on the wire: after each 36-byte record, type 0x51 (optional), 6 bytes.
    expect(hex(msgs[0]!.subarray(8 + 44 + 36, 8 + 44 + 44))).toBe('51060201000003e9');
    // Takeover: the backup moves the next segment's seq by the header, does not put a second header in.
    const next = seg(backup, 0x18, 1001 + 18, 'more');
    expect(next).toHaveLength(1);
    expect(seqOf(next[0]!.frame)).toBe(1001 + 18 + 28);
    expect(parse(next[0]!.frame).payload.length).toBe(4);
    // The server's ack comes back moved by the header.
    backup.p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: RS1, daddr: CIP, sport: 80, dport: 40007, flags: ACK, seq: 5001, ack: 1001 + 28 + 18 + 4 }));
    backup.run();
    const back = backup.p0.takeSent();
    expect(back).toHaveLength(1);
    expect(new DataView(back[0]!.frame.buffer, back[0]!.frame.byteOffset).getUint32(14 + 20 + 8)).toBe(1001 + 18 + 4);
  });

  it('FTP (NAT): a rewritten 227 reply sends the control conn\'s out_seq at once (IPVS_OPT_SEQ_DATA, as the kernel\'s); the backup binds the helper, moves seqs and acks, and takes the data conn too', () => {
    const mk = (): Lab => {
      const l = memLab();
      const svc = tcpSvc(VIP, 21);
      l.cmd({ cmd: 'add-service', svc, opts: svcOpts('rr') });
      l.cmd({ cmd: 'add-server', svc, dest: { addr: RS1, port: 21 }, opts: destOpts(FWD_MASQ) });
      return l;
    };
    const master = mk();
    const backup = mk();
    backup.d.setSyncBackup(0);
    const m = withMaster(master);
    const cli = (l: Lab, flags: number, seq: number, ack: number, payload = '', sport = 40009, dport = 21) => {
      l.p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport, dport, flags, seq, ack, payload }));
      l.run();
      l.p0.takeSent();
      return l.p1.takeSent();
    };
    const srv = (l: Lab, flags: number, seq: number, ack: number, payload = '', sport = 21, dport = 40009) => {
      l.p1.inject(build({ srcMac: RS1_MAC, dstMac: DIR1_MAC, saddr: RS1, daddr: CIP, sport, dport, flags, seq, ack, payload }));
      l.run();
      l.p1.takeSent();
      return l.p0.takeSent();
    };
    const u32 = (f: Uint8Array, at: number) => new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + at);
    cli(master, SYN, 1000, 0);
    srv(master, SYN | ACK, 5000, 1001);
    cli(master, ACK, 1001, 5001);
    cli(master, 0x18, 1001, 5001, 'PASV\r\n');
    drain(master, m);
    const reply = '227 Entering Passive Mode (10,0,0,7,195,80).\r\n';
    srv(master, 0x18, 5001, 1007, reply);
    const msgs = m.due(master.clock.now(), true);
    const recs: SyncRecord[] = [];
    for (const msg of msgs) {
      expect(decodeSync(msg, 0, recs).error).toBe('');
      expect(backup.d.applySyncMessage(msg).error).toBe('');
    }
    expect(recs).toHaveLength(1);
    // out_seq: init_seq = the rewritten reply's seq, delta 6 ("10,0,0,7" → "192,168,10,110"), previous 0.
    expect(recs[0]).toMatchObject({ cport: 40009, vport: 21, hasSeq: 1, seqInit: 5001, seqDelta: 6, seqPrev: 0 });
    expect(recs[0]!.flags & 0x0200).toBe(0x0200); // IP_VS_CONN_F_OUT_SEQ
    // On the wire: type 1, length 24, in_seq zeros, out_seq {5001, 6, 0}, right after the 36 bytes.
    expect(hex(msgs[0]!.subarray(8 + 36, 8 + 36 + 26))).toBe('0118' + '00'.repeat(12) + '00001389' + '00000006' + '00000000');
    // Takeover: the backup moves the server's next seq by 6 and the client's ack back by 6.
    const next = srv(backup, 0x18, 5001 + reply.length, 1007, '150 ok\r\n');
    expect(next).toHaveLength(1);
    expect(u32(next[0]!.frame, 4)).toBe(5001 + reply.length + 6);
    const ack = cli(backup, ACK, 1007, 5001 + reply.length + 6 + 8);
    expect(u32(ack[0]!.frame, 8)).toBe(5001 + reply.length + 8);
    // The data conn, once established on the master, is synced too and the backup finds its dest
    // (the control conn's server: the port-21 service has no dest on port 50000).
    cli(master, SYN, 1, 0, '', 41000, 50000);
    srv(master, SYN | ACK, 9, 2, '', 50000, 41000);
    for (let i = 0; i < 3; i++) cli(master, ACK, 2, 10, '', 41000, 50000);
    for (const msg of m.due(master.clock.now(), true)) expect(backup.d.applySyncMessage(msg).error).toBe('');
    expect(backup.d.syncApplied.noDest).toBe(0);
    const data = cli(backup, ACK, 2, 10, '', 41000, 50000);
    expect(data).toHaveLength(1);
    expect(parse(data[0]!.frame)).toMatchObject({ daddr: RS1, dport: 50000, sport: 41000 });
  });

  it('backup_only=1 while the backup runs: TCP/UDP is left to the host, as the kernel leaves it', () => {
    const l = natLab();
    l.cmd({ cmd: 'set-sysctl', name: 'backup_only', value: '1' });
    expect(send(l, 40000, SYN)).not.toBeNull();  // no backup runs: balanced
    l.d.setSyncBackup(0);
    expect(send(l, 40001, SYN)).toBeNull();
    l.cmd({ cmd: 'set-sysctl', name: 'backup_only', value: '0' });
    expect(send(l, 40002, SYN)).not.toBeNull();
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import {
  CF_ASSURED, CF_INACTIVE, CF_NOOUTPUT, CF_TEMPLATE, ConnTable, DIR_IN, DIR_OUT, persistConnDport, templateDport,
  templateProto, templateVaddr, templateVport,
} from '../../../src/conn/conn-table.js';
import { Service } from '../../../src/model/service.js';
import type { Scheduler } from '../../../src/sched/scheduler.js';
import {
  CTPL_S_ASSURED, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_S_CLOSE, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT,
  TCP_S_NONE, TCP_S_SYN_RECV, TCP_S_TIME_WAIT,
} from '../../../src/conn/tcp-state.js';
import { Timeouts } from '../../../src/conn/timeouts.js';
import {
  DEST_F_AVAILABLE, DEST_F_OVERLOAD, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_IP, IPPROTO_TCP,
  IPPROTO_UDP,
} from '../../../src/model/constants.js';
import { ip, mkDest, mkService } from './helpers.js';

const CIP = ip('198.51.100.7');
const VIP = ip('192.0.2.10');
const RIP = ip('10.0.0.11');
const LIP = ip('10.0.0.254');
const T0 = 1_000_000;

function mk(opts: Partial<ConstructorParameters<typeof ConnTable>[0]> = {}): ConnTable {
  return new ConnTable({ maxConns: 1024, seed: 12345, now: T0, ...opts });
}

describe('ConnTable: NAT flow', () => {
  let t: ConnTable;
  beforeEach(() => { t = mk(); });

  it('finds both directions with one lookup and accounts active/inactive', () => {
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 8080, FWD_MASQ);
    const c = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 8080, 0, 0, d, svc.id, -1, T0, 0);
    expect(c).toBeGreaterThanOrEqual(0);
    expect(t.lookup(IPPROTO_TCP, CIP, 40000, VIP, 80)).toBe((c << 1) | DIR_IN);
    expect(t.lookup(IPPROTO_TCP, RIP, 8080, CIP, 40000)).toBe((c << 1) | DIR_OUT);
    expect(t.lookup(IPPROTO_UDP, CIP, 40000, VIP, 80)).toBe(-1);
    expect(t.lookup(IPPROTO_TCP, CIP, 40001, VIP, 80)).toBe(-1);
    expect(t.flags(c) & CF_NOOUTPUT).toBe(0);
    expect(t.state(c)).toBe(TCP_S_NONE);
    expect(t.timeout(c)).toBe(3000);
    expect([d.activeConns, d.inactConns]).toEqual([0, 1]);

    expect(t.tcpTransition(c, DIR_IN, TCP_SYN, T0)).toBe(true);
    expect(t.lastOldState).toBe(TCP_S_NONE);
    expect(t.stateName(c)).toBe('SYN_RECV');
    expect([d.activeConns, d.inactConns]).toEqual([1, 0]);
    expect(t.tcpTransition(c, DIR_OUT, TCP_SYN | TCP_ACK, T0 + 1)).toBe(false);
    expect(t.stateName(c)).toBe('SYN_RECV');
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0 + 2);
    expect(t.stateName(c)).toBe('ESTABLISHED');
    expect(t.expires(c)).toBe(T0 + 2 + 900_000);
    t.tcpTransition(c, DIR_IN, TCP_FIN | TCP_ACK, T0 + 3);
    expect(t.stateName(c)).toBe('CLOSE_WAIT');
    expect([d.activeConns, d.inactConns]).toEqual([0, 1]);
    t.tcpTransition(c, DIR_OUT, TCP_FIN | TCP_ACK, T0 + 4);
    expect(t.stateName(c)).toBe('TIME_WAIT');
    expect(t.expires(c)).toBe(T0 + 4 + 120_000);

    t.tick(T0 + 4 + 119_999);
    expect(t.inUse(c)).toBe(true);
    t.tick(T0 + 4 + 120_000);
    expect(t.inUse(c)).toBe(false);
    expect(t.count).toBe(0);
    expect([d.activeConns, d.inactConns]).toEqual([0, 0]);
    expect(t.lookup(IPPROTO_TCP, CIP, 40000, VIP, 80)).toBe(-1);
    expect(t.lookup(IPPROTO_TCP, RIP, 8080, CIP, 40000)).toBe(-1);
  });

  it('expiry while active decrements activeConns', () => {
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_MASQ);
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    expect(d.activeConns).toBe(1);
    t.tick(T0 + 60_000);
    expect(t.count).toBe(0);
    expect([d.activeConns, d.inactConns]).toEqual([0, 0]);
  });
});

describe('ConnTable: DR flow (INPUT-ONLY)', () => {
  it('follows the INPUT-ONLY rows and hashes no OUT tuple', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_DROUTE);
    const c = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    expect(t.flags(c) & CF_NOOUTPUT).toBe(CF_NOOUTPUT);
    expect(t.fwd(c)).toBe(FWD_DROUTE);
    expect(t.lookup(IPPROTO_TCP, RIP, 80, CIP, 40000)).toBe(-1);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    expect(t.state(c)).toBe(TCP_S_SYN_RECV);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0);
    expect(t.state(c)).toBe(TCP_S_ESTABLISHED);
    expect(d.activeConns).toBe(1);
    t.tcpTransition(c, DIR_IN, TCP_FIN | TCP_ACK, T0 + 10);
    expect(t.state(c)).toBe(TCP_S_FIN_WAIT); // INPUT-ONLY: ES --fin--> FIN_WAIT (INPUT row says CLOSE_WAIT)
    expect([d.activeConns, d.inactConns]).toEqual([0, 1]);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0 + 20);
    expect(t.state(c)).toBe(TCP_S_FIN_WAIT);
    t.tick(T0 + 20 + 119_999);
    expect(t.inUse(c)).toBe(true);
    t.tick(T0 + 20 + 120_000);
    expect(t.inUse(c)).toBe(false);
    expect(d.inactConns).toBe(0);
  });

  it('an OUTPUT packet clears NOOUTPUT and uses the OUTPUT row from then on', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_TUNNEL);
    const c = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0);
    t.tcpTransition(c, DIR_OUT, TCP_ACK, T0);
    expect(t.flags(c) & CF_NOOUTPUT).toBe(0);
    t.tcpTransition(c, DIR_IN, TCP_FIN, T0);
    expect(t.stateName(c)).toBe('CLOSE_WAIT');
  });
});

describe('ConnTable: timeouts with a fake clock', () => {
  it('a new conn lives 3 s without a transition', () => {
    const t = mk();
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, null, 1, -1, T0, FWD_MASQ);
    t.tick(T0 + 2999);
    expect(t.inUse(c)).toBe(true);
    t.tick(T0 + 3000);
    expect(t.inUse(c)).toBe(false);
  });

  it('per-packet refresh keeps a conn alive beyond the wheel span (lazy re-slot)', () => {
    const t = mk({ wheelSlotMs: 100, wheelSlots: 64 }); // span 6.4 s
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, null, 1, -1, T0, FWD_MASQ);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0); // 900 s
    let now = T0;
    for (let i = 0; i < 100; i++) {
      now += 7_000;
      t.tick(now);
      t.tcpTransition(c, DIR_IN, TCP_ACK | TCP_PSH, now);
    }
    expect(t.inUse(c)).toBe(true);
    t.tick(now + 899_999);
    expect(t.inUse(c)).toBe(true);
    t.tick(now + 900_000);
    expect(t.inUse(c)).toBe(false);
  });

  it('a shorter timeout after a state change is honoured (ESTABLISHED → CLOSE by RST)', () => {
    const t = mk();
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, null, 1, -1, T0, FWD_MASQ);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0);
    t.tcpTransition(c, DIR_IN, TCP_RST, T0 + 1000);
    expect(t.state(c)).toBe(TCP_S_CLOSE);
    t.tick(T0 + 1000 + 9_999);
    expect(t.inUse(c)).toBe(true);
    t.tick(T0 + 1000 + 10_000);
    expect(t.inUse(c)).toBe(false);
  });

  it('--set tcp tcpfin udp: existing conns take the new value at their next packet', () => {
    const tos = new Timeouts();
    const t = mk({ timeouts: tos });
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, null, 1, -1, T0, FWD_MASQ);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0);
    tos.set(60, 0, 0);
    expect(tos.get()).toEqual({ tcp: 60, tcpfin: 120, udp: 300 });
    expect(t.expires(c)).toBe(T0 + 900_000); // not moved by the change itself
    t.tcpTransition(c, DIR_IN, TCP_ACK, T0 + 5);
    expect(t.expires(c)).toBe(T0 + 5 + 60_000);
    t.tick(T0 + 5 + 60_000);
    expect(t.inUse(c)).toBe(false);
    expect(() => tos.set(-1, 0, 0)).toThrow(RangeError);
    tos.set(0, 30, 10);
    expect(tos.get()).toEqual({ tcp: 60, tcpfin: 30, udp: 10 });
  });

  it('UDP: state UDP, 300 s re-armed per packet, always inactive', () => {
    const t = mk();
    const svc = mkService(2, IPPROTO_UDP, '192.0.2.10', 53);
    const d = mkDest(svc, '10.0.0.11', 53, FWD_MASQ);
    const c = t.create(IPPROTO_UDP, CIP, 5353, VIP, 53, RIP, 53, 0, 0, d, svc.id, -1, T0, 0);
    t.udpPacket(c, DIR_IN, T0);
    expect(t.stateName(c)).toBe('UDP');
    expect(t.expires(c)).toBe(T0 + 300_000);
    t.udpPacket(c, DIR_OUT, T0 + 100_000);
    expect(t.expires(c)).toBe(T0 + 400_000);
    expect([d.activeConns, d.inactConns]).toEqual([0, 1]);
    expect(t.flags(c) & CF_INACTIVE).toBe(CF_INACTIVE);
    t.tick(T0 + 399_999);
    expect(t.inUse(c)).toBe(true);
    t.tick(T0 + 400_000);
    expect(t.inUse(c)).toBe(false);
    expect(d.inactConns).toBe(0);
  });
});

describe('ConnTable: persistence templates', () => {
  it('keys, persistConns, n_control, re-arm by each new conn, the 60 s rule', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_DROUTE);
    const tp = t.createTemplate(IPPROTO_TCP, CIP & 0xffffff00, VIP, 80, RIP, 80, d, svc.id, 360_000, T0);
    expect(t.flags(tp) & CF_TEMPLATE).toBe(CF_TEMPLATE);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP & 0xffffff00, VIP, 80)).toBe(tp);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP & 0xffffff00, VIP, 443)).toBe(-1);
    expect(t.lookup(IPPROTO_TCP, CIP & 0xffffff00, 0, VIP, 80)).toBe(-1); // never a normal hit
    expect([d.persistConns, d.activeConns, d.inactConns]).toEqual([1, 0, 0]);
    expect(t.stateName(tp)).toBe('NONE');

    const c1 = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 80, 0, 0, d, svc.id, tp, T0 + 1000, 0);
    expect(t.nControl(tp)).toBe(1);
    expect(t.ctrl(c1)).toBe(tp);
    expect(t.expires(tp)).toBe(T0 + 1000 + 360_000);
    t.tcpTransition(c1, DIR_IN, TCP_SYN, T0 + 1000);
    t.tcpTransition(c1, DIR_IN, TCP_ACK, T0 + 1000);
    expect(t.state(tp)).toBe(CTPL_S_ASSURED);
    expect(t.flags(tp) & CF_ASSURED).toBe(CF_ASSURED);
    expect(t.stateName(tp)).toBe('ASSURED');

    // Template expires while it still controls c1 (900 s ESTABLISHED) ⇒ kept, 60 s from now on.
    t.tick(T0 + 1000 + 360_000);
    expect(t.inUse(tp)).toBe(true);
    expect(t.timeout(tp)).toBe(60_000);
    expect(t.expires(tp)).toBe(T0 + 1000 + 360_000 + 60_000);
    // A new conn re-arms it with its (now 60 s) timeout.
    const c2 = t.create(IPPROTO_TCP, CIP, 40001, VIP, 80, RIP, 80, 0, 0, d, svc.id, tp, T0 + 400_000, 0);
    expect(t.nControl(tp)).toBe(2);
    expect(t.expires(tp)).toBe(T0 + 460_000);
    t.tick(T0 + 403_000); // c2 (NONE, 3 s) expires
    expect(t.inUse(c2)).toBe(false);
    expect(t.nControl(tp)).toBe(1);
    // c1 ends with a RST; the template dies at the first expiry without controlled conns.
    t.tcpTransition(c1, DIR_IN, TCP_RST, T0 + 450_000);
    t.tick(T0 + 460_000);
    expect(t.inUse(tp)).toBe(true); // c1 still there (CLOSE until +10 s) ⇒ re-armed again
    t.tick(T0 + 460_001);
    expect(t.inUse(c1)).toBe(false);
    expect(t.nControl(tp)).toBe(0);
    t.tick(T0 + 520_000);
    expect(t.inUse(tp)).toBe(false);
    expect([d.persistConns, d.activeConns, d.inactConns]).toEqual([0, 0, 0]);
    expect(t.templates).toBe(0);
  });

  it('fwmark templates use proto IP and vaddr = mark; port-0 templates vport 0', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 0, FWD_DROUTE);
    const tp = t.createTemplate(IPPROTO_IP, CIP, 7, 0, RIP, 0, d, svc.id, 300_000, T0);
    expect(t.lookupTemplate(IPPROTO_IP, CIP, 7, 0)).toBe(tp);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP, 7, 0)).toBe(-1);
    const snap = t.snap(tp, T0 + 1500);
    expect(snap).toMatchObject({ protocol: 0, vaddr: '0.0.0.7', vport: 0, template: true, expires: 298, state: 'NONE' });
  });

  it('invalidation re-keys to port 0xffff: never matches again, lingers for its children', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_DROUTE);
    const tp = t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, RIP, 80, d, svc.id, 360_000, T0);
    const c = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 80, 0, 0, d, svc.id, tp, T0, 0);
    expect(t.checkTemplate(tp)).toBe(true);
    d.weight = 0;
    expect(t.checkTemplate(tp)).toBe(true); // quiescent: still valid by default
    expect(t.checkTemplate(tp, true)).toBe(false); // expire_quiescent_template=1
    expect(t.vport(tp)).toBe(0xffff);
    expect(t.dport(tp)).toBe(0xffff);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 80)).toBe(-1);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 0xffff)).toBe(-1);
    expect(t.inUse(tp)).toBe(true);
    expect(t.nControl(tp)).toBe(1);
    // A new template can be created next to it.
    const tp2 = t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, RIP, 80, d, svc.id, 360_000, T0);
    expect(t.lookupTemplate(IPPROTO_TCP, CIP, VIP, 80)).toBe(tp2);
    // Dest removed ⇒ invalid.
    d.weight = 1;
    d.flags &= ~DEST_F_AVAILABLE;
    expect(t.checkTemplate(tp2)).toBe(false);
    expect(t.invalidateTemplatesOf(d.id)).toBe(0); // both already invalid
    expect(t.inUse(c)).toBe(true);
  });
});

describe('ConnTable: capacity, FULLNAT, OVERLOAD, reuse, flush', () => {
  it('full ⇒ -1 and counted; memory never grows', () => {
    const t = mk({ maxConns: 4 });
    const bytes = t.memoryBytes();
    for (let i = 0; i < 4; i++) expect(t.create(IPPROTO_UDP, CIP, i, VIP, 53, RIP, 53, 0, 0, null, 1, -1, T0, FWD_MASQ)).toBe(i);
    expect(t.create(IPPROTO_UDP, CIP, 9, VIP, 53, RIP, 53, 0, 0, null, 1, -1, T0, FWD_MASQ)).toBe(-1);
    expect(t.createTemplate(IPPROTO_UDP, CIP, VIP, 53, RIP, 53, null, 1, 1000, T0)).toBe(-1);
    expect(t.fullDrops).toBe(2);
    expect(t.memoryBytes()).toBe(bytes);
  });

  it('create/free 1M times reuses slots', () => {
    const t = mk({ maxConns: 1000 });
    const bytes = t.memoryBytes();
    const live: number[] = [];
    let maxIdx = 0;
    let minIdx = 0;
    for (let n = 0; n < 1_000_000; n++) {
      if (live.length === 1000) {
        const k = (n * 7919) % 1000;
        t.expire(live[k]!, T0);
        live[k] = live[999]!;
        live.pop();
      }
      const c = t.create(IPPROTO_TCP, CIP + (n & 0xffff), n & 0xffff, VIP, 80, RIP, 80, 0, 0, null, 1, -1, T0, FWD_MASQ);
      if (c > maxIdx) maxIdx = c;
      if (c < minIdx) minIdx = c;
      live.push(c);
    }
    expect(minIdx).toBe(0);
    expect(maxIdx).toBe(999);
    expect(t.count).toBe(1000);
    expect(t.fullDrops).toBe(0);
    expect(t.memoryBytes()).toBe(bytes);
    for (const c of live) {
      const ref = t.lookup(IPPROTO_TCP, t.caddr(c), t.cport(c), VIP, 80);
      expect(ref >> 1).toBe(c);
    }
  });

  it('FULLNAT: the OUT tuple is <RIP:dport → LIP:lport>', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 8080, FWD_FULLNAT);
    const released: number[] = [];
    t.onExpire = (i) => released.push(t.lport(i));
    const c = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 8080, LIP, 5001, d, svc.id, -1, T0, 0);
    expect(t.flags(c) & CF_NOOUTPUT).toBe(0);
    expect(t.lookup(IPPROTO_TCP, RIP, 8080, LIP, 5001)).toBe((c << 1) | DIR_OUT);
    expect(t.lookup(IPPROTO_TCP, RIP, 8080, CIP, 40000)).toBe(-1);
    expect(t.lookup(IPPROTO_TCP, CIP, 40000, VIP, 80)).toBe(c << 1);
    expect(t.snap(c, T0)).toMatchObject({ laddr: '10.0.0.254', lport: 5001, fwd: FWD_FULLNAT, state: 'NONE', expires: 3 });
    t.tick(T0 + 3000);
    expect(released).toEqual([5001]);
    expect(t.lookup(IPPROTO_TCP, RIP, 8080, LIP, 5001)).toBe(-1);
  });

  it('OVERLOAD is set at bind (u_threshold) and cleared at unbind (3/4 rule, l_threshold)', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_MASQ);
    d.uThreshold = 4;
    const cs: number[] = [];
    for (let i = 0; i < 4; i++) cs.push(t.create(IPPROTO_TCP, CIP, i, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0));
    expect(d.flags & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD);
    t.expire(cs.pop()!, T0); // total 3: 3*4 < 4*3 false ⇒ still overloaded
    expect(d.flags & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD);
    t.expire(cs.pop()!, T0); // total 2: 8 < 12 ⇒ cleared
    expect(d.flags & DEST_F_OVERLOAD).toBe(0);
    d.lThreshold = 1;
    cs.push(t.create(IPPROTO_TCP, CIP, 10, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0));
    cs.push(t.create(IPPROTO_TCP, CIP, 11, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0));
    expect(d.flags & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD);
    t.expire(cs.pop()!, T0);
    t.expire(cs.pop()!, T0);
    t.expire(cs.pop()!, T0); // total 1, not < l_threshold 1 ⇒ still set
    expect(d.flags & DEST_F_OVERLOAD).toBe(DEST_F_OVERLOAD);
    t.expire(cs.pop()!, T0); // total 0 < l_threshold 1
    expect(d.flags & DEST_F_OVERLOAD).toBe(0);
    // Templates never count.
    d.lThreshold = 0;
    d.uThreshold = 1;
    t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, RIP, 80, d, svc.id, 1000, T0);
    expect(d.flags & DEST_F_OVERLOAD).toBe(0);
  });

  it('conn reuse: SYN on an uncontrolled TIME_WAIT/CLOSE conn expires it; controlled ones are reused', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_DROUTE);
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    t.tcpTransition(c, DIR_IN, TCP_SYN, T0);
    expect(t.reuseOnSyn(c)).toBe(false); // SYN_RECV
    t.tcpTransition(c, DIR_IN, TCP_FIN, T0); // SYN_RECV --fin--> TIME_WAIT
    expect(t.state(c)).toBe(TCP_S_TIME_WAIT);
    expect(t.reuseOnSyn(c)).toBe(true);
    expect(t.inUse(c)).toBe(false);
    expect(d.inactConns).toBe(0);

    const f = t.create(IPPROTO_TCP, CIP, 2, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    t.tcpTransition(f, DIR_IN, TCP_SYN, T0);
    t.tcpTransition(f, DIR_IN, TCP_ACK, T0);
    t.tcpTransition(f, DIR_IN, TCP_FIN, T0); // FIN_WAIT + NOOUTPUT
    expect(t.reuseOnSyn(f, 1)).toBe(false);
    expect(t.reuseOnSyn(f, 3)).toBe(true);

    const tp = t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, RIP, 80, d, svc.id, 60_000, T0);
    const g = t.create(IPPROTO_TCP, CIP, 3, VIP, 80, RIP, 80, 0, 0, d, svc.id, tp, T0, 0);
    t.tcpTransition(g, DIR_IN, TCP_RST, T0);
    expect(t.reuseOnSyn(g)).toBe(false);
    t.tcpTransition(g, DIR_IN, TCP_SYN, T0);
    expect(t.stateName(g)).toBe('SYN_RECV');
  });

  it('flushDest / flushService / flushAll', () => {
    const t = mk();
    const s1 = mkService(1);
    const s2 = mkService(2, IPPROTO_TCP, '192.0.2.20', 80);
    const d1 = mkDest(s1, '10.0.0.11', 80, FWD_MASQ);
    const d2 = mkDest(s1, '10.0.0.12', 80, FWD_MASQ);
    const d3 = mkDest(s2, '10.0.0.13', 80, FWD_MASQ);
    const tp = t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, d1.addr, 80, d1, s1.id, 60_000, T0);
    t.create(IPPROTO_TCP, CIP, 1, VIP, 80, d1.addr, 80, 0, 0, d1, s1.id, tp, T0, 0);
    t.create(IPPROTO_TCP, CIP, 2, VIP, 80, d2.addr, 80, 0, 0, d2, s1.id, -1, T0, 0);
    t.create(IPPROTO_TCP, CIP, 3, ip('192.0.2.20'), 80, d3.addr, 80, 0, 0, d3, s2.id, -1, T0, 0);
    expect(t.flushDest(d1.id)).toBe(2);
    expect([d1.inactConns, d1.persistConns]).toEqual([0, 0]);
    expect(t.count).toBe(2);
    expect(t.flushService(s1.id)).toBe(1);
    expect(t.count).toBe(1);
    expect(t.snapshot(T0).map((s) => s.cport)).toEqual([3]);
    expect(t.flushAll()).toBe(1);
    expect(t.count).toBe(0);
    expect(d3.inactConns).toBe(0);
  });
});

describe('ConnTable: expiry is bounded per tick', () => {
  it('100k simultaneous expiries are spread over several ticks', () => {
    const t = mk({ maxConns: 100_000, maxExpirePerTick: 10_000 });
    for (let i = 0; i < 100_000; i++) {
      t.create(IPPROTO_UDP, CIP + (i >>> 16), i & 0xffff, VIP, 53, RIP, 53, 0, 0, null, 1, -1, T0, FWD_MASQ);
    }
    const now = T0 + 3000;
    expect(t.tick(now)).toBe(10_000);
    expect(t.pending).toBe(true);
    let calls = 1;
    while (t.pending) {
      t.tick(now);
      calls++;
    }
    expect(calls).toBe(10);
    expect(t.count).toBe(0);
  });

  it('randomised create/refresh/expire agrees with a reference model', () => {
    const t = mk({ maxConns: 2000, wheelSlotMs: 50, wheelSlots: 256, maxExpirePerTick: 300 });
    const model = new Map<number, number>(); // key cport → expiry
    let now = T0;
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const idxOf = new Map<number, number>();
    t.onExpire = (i) => {
      idxOf.delete(t.cport(i));
    };
    for (let step = 0; step < 20_000; step++) {
      const op = rnd(10);
      const port = rnd(3000);
      if (op < 4) {
        if (!idxOf.has(port)) {
          const c = t.create(IPPROTO_UDP, CIP, port, VIP, 53, RIP, 53, 0, 0, null, 1, -1, now, FWD_MASQ);
          if (c >= 0) {
            t.udpPacket(c, DIR_IN, now);
            idxOf.set(port, c);
            model.set(port, now + 300_000);
          }
        }
      } else if (op < 8) {
        const c = idxOf.get(port);
        if (c !== undefined) {
          t.setTimeoutMs(c, 1000 + rnd(400_000)); // any timeout, longer or shorter than before
          t.touch(c, now);
          model.set(port, t.expires(c));
        }
      } else {
        now += rnd(20_000);
        do t.tick(now); while (t.pending);
        for (const [p, e] of model) if (e <= now) model.delete(p);
      }
      expect(t.count).toBe(model.size);
    }
    for (const [p] of model) expect(t.lookup(IPPROTO_UDP, CIP, p, VIP, 53) >> 1).toBe(idxOf.get(p));
  });
});

describe('ConnTable: open-addressing hash', () => {
  it('the smallest slot count (long runs, wrap-around) survives churn: every live tuple found, every dead one not', () => {
    const cap = 300;
    const t = mk({ maxConns: cap, slots: 1 }); // clamped up to 2 × cap + 4: nearly full when every conn is NAT
    expect(t.nSlots).toBe(2 * cap + 4);
    const svc = mkService();
    const nat = mkDest(svc, '10.0.0.11', 8080, FWD_MASQ);
    const dr = mkDest(svc, '10.0.0.12', 80, FWD_DROUTE);
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const live = new Map<number, number>(); // client port → idx
    const tmpl = new Map<number, number>(); // masked client addr → template idx
    const checkAll = (): void => {
      for (const [p, i] of live) {
        const isNat = t.daddr(i) === nat.addr;
        expect(t.lookup(IPPROTO_TCP, CIP, p, VIP, 80)).toBe(i << 1);
        expect(t.lookup(IPPROTO_TCP, isNat ? nat.addr : dr.addr, isNat ? 8080 : 80, CIP, p)).toBe(isNat ? (i << 1) | 1 : -1);
      }
      for (const [a, i] of tmpl) expect(t.lookupTemplate(IPPROTO_TCP, a, VIP, 80)).toBe(i);
    };
    let dead = 0;
    for (let step = 0; step < 30_000; step++) {
      const op = rnd(10);
      if (op < 5) {
        const p = 1 + rnd(2000);
        if (live.has(p)) continue;
        const d = rnd(4) === 0 ? dr : nat;
        const c = t.create(IPPROTO_TCP, CIP, p, VIP, 80, d.addr, d.port, 0, 0, d, svc.id, -1, T0, 0);
        if (c < 0) {
          expect(t.count).toBe(cap);
          continue;
        }
        live.set(p, c);
      } else if (op < 6) {
        const a = (CIP & ~0xff) + rnd(40);
        if (tmpl.has(a) || t.count === cap) continue;
        tmpl.set(a, t.createTemplate(IPPROTO_TCP, a, VIP, 80, nat.addr, 8080, nat, svc.id, 360_000, T0));
      } else if (op < 9 && live.size > 0) {
        const ports = [...live.keys()];
        const p = ports[rnd(ports.length)]!;
        expect(t.expire(live.get(p)!, T0)).toBe(true);
        live.delete(p);
        expect(t.lookup(IPPROTO_TCP, CIP, p, VIP, 80)).toBe(-1);
        dead++;
      } else if (tmpl.size > 0) {
        const as = [...tmpl.keys()];
        const a = as[rnd(as.length)]!;
        expect(t.expire(tmpl.get(a)!, T0)).toBe(true);
        tmpl.delete(a);
        expect(t.lookupTemplate(IPPROTO_TCP, a, VIP, 80)).toBe(-1);
      }
      expect(t.count).toBe(live.size + tmpl.size);
      if (step % 1000 === 0) checkAll();
    }
    checkAll();
    expect(dead).toBeGreaterThan(5000);
    // Empty again: every slot is free (no tombstones left behind).
    for (const i of live.values()) t.expire(i, T0);
    for (const i of tmpl.values()) t.expire(i, T0);
    expect(t.count).toBe(0);
    expect(t.slots.every((w) => w === 0)).toBe(true);
  });

  it('rejects a bad slot count', () => {
    expect(() => mk({ slots: 0 })).toThrow(RangeError);
    expect(() => mk({ slots: 1.5 })).toThrow(RangeError);
  });
});

describe('ConnTable: lookupBatch', () => {
  it('returns what lookup() returns, hits and misses, with offsets', () => {
    const t = mk({ maxConns: 5000 });
    const svc = mkService();
    const dn = mkDest(svc, '10.0.0.11', 80, FWD_MASQ);
    const dr = mkDest(svc, '10.0.0.12', 80, FWD_DROUTE);
    for (let i = 0; i < 5000; i++) {
      t.create(IPPROTO_TCP, CIP + i, 1000 + i, VIP, 80, i & 1 ? dn.addr : dr.addr, 80, 0, 0, i & 1 ? dn : dr, svc.id, -1, T0, 0);
    }
    const q = 3000;
    const pr = new Uint8Array(q), sa = new Uint32Array(q), sp = new Uint16Array(q), da = new Uint32Array(q), dp = new Uint16Array(q);
    for (let k = 0; k < q; k++) {
      const i = (k * 7919) % 6000; // some beyond 5000 ⇒ misses
      pr[k] = IPPROTO_TCP;
      if (k % 3 === 0) { sa[k] = i & 1 ? dn.addr : dr.addr; sp[k] = 80; da[k] = CIP + i; dp[k] = 1000 + i; }
      else { sa[k] = CIP + i; sp[k] = 1000 + i; da[k] = VIP; dp[k] = 80; }
    }
    const out = new Int32Array(q).fill(-7);
    t.lookupBatch(0, 100, pr, sa, sp, da, dp, out);
    t.lookupBatch(100, q - 100, pr, sa, sp, da, dp, out);
    let hits = 0, outHits = 0;
    for (let k = 0; k < q; k++) {
      const want = t.lookup(pr[k]!, sa[k]!, sp[k]!, da[k]!, dp[k]!);
      expect(out[k]).toBe(want);
      if (want >= 0) hits++;
      if (want >= 0 && (want & 1) === DIR_OUT) outHits++;
    }
    expect(hits).toBeGreaterThan(1000);
    expect(outHits).toBeGreaterThan(100);
  });

  it('prefetch() is only a hint: any tuples, more than a chunk, and nothing changes', () => {
    const t = mk({ maxConns: 1000 });
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_MASQ);
    for (let i = 0; i < 500; i++) t.create(IPPROTO_TCP, CIP + i, 1000 + i, VIP, 80, d.addr, 80, 0, 0, d, svc.id, -1, T0, 0);
    const n = 100; // beyond the 64-tuple chunk: the rest is ignored
    const pr = new Uint8Array(n), sa = new Uint32Array(n), sp = new Uint16Array(n), da = new Uint32Array(n), dp = new Uint16Array(n);
    for (let k = 0; k < n; k++) {
      pr[k] = k % 3 === 0 ? 0 : IPPROTO_TCP; // garbage mixed with real tuples
      sa[k] = k % 2 ? CIP + k : 0xffffffff; sp[k] = 1000 + k; da[k] = VIP; dp[k] = 80;
    }
    const before = [...Array(500).keys()].map((i) => t.lookup(IPPROTO_TCP, CIP + i, 1000 + i, VIP, 80));
    const refs = new Int32Array(n).fill(-7);
    t.prefetch(n, pr, sa, sp, da, dp, refs);
    for (let k = 0; k < 64; k++) expect(refs[k]).toBe(t.lookup(pr[k]!, sa[k]!, sp[k]!, da[k]!, dp[k]!));
    expect(refs[64]).toBe(-7);
    t.prefetch(0, pr, sa, sp, da, dp, refs);
    expect([...Array(500).keys()].map((i) => t.lookup(IPPROTO_TCP, CIP + i, 1000 + i, VIP, 80))).toEqual(before);
    expect(before.every((r) => r >= 0)).toBe(true);
    expect(t.count).toBe(500);
  });
});

describe('ConnTable.lookupHinted', () => {
  it('takes a hint only when the hinted conn is in use, hashed that way and holds exactly this tuple', () => {
    const t = mk();
    const svc = mkService();
    const nat = mkDest(svc, '10.0.0.11', 8080, FWD_MASQ);
    const fnat = mkDest(svc, '10.0.0.12', 80, FWD_FULLNAT);
    const dr = mkDest(svc, '10.0.0.13', 80, FWD_DROUTE);
    const a = t.create(IPPROTO_TCP, CIP, 40000, VIP, 80, RIP, 8080, 0, 0, nat, svc.id, -1, T0, 0);
    const b = t.create(IPPROTO_TCP, CIP, 40001, VIP, 80, fnat.addr, 80, LIP, 5000, fnat, svc.id, -1, T0, 0);
    const c = t.create(IPPROTO_TCP, CIP, 40002, VIP, 80, dr.addr, 80, 0, 0, dr, svc.id, -1, T0, 0);
    const tp = t.createTemplate(IPPROTO_TCP, CIP, VIP, 80, RIP, 8080, nat, svc.id, 360_000, T0);
    const tuples: [number, number, number, number][] = [
      [CIP, 40000, VIP, 80], [RIP, 8080, CIP, 40000], [CIP, 40001, VIP, 80], [fnat.addr, 80, LIP, 5000],
      [CIP, 40002, VIP, 80], [dr.addr, 80, CIP, 40002], [CIP, 40003, VIP, 80], [CIP, 0, VIP, 80],
    ];
    const hints = [-1, 0, 1, 2, 3, 4, 5, 6, 7, (tp << 1), (tp << 1) | 1, 1000 << 1];
    for (const [sa, sp, da, dp] of tuples) {
      const want = t.lookup(IPPROTO_TCP, sa, sp, da, dp);
      for (const h of hints) expect(t.lookupHinted(h, IPPROTO_TCP, sa, sp, da, dp)).toBe(want);
      expect(t.lookupHinted(want, IPPROTO_UDP, sa, sp, da, dp)).toBe(-1);
    }
    expect(t.lookupHinted(a << 1, IPPROTO_TCP, CIP, 40000, VIP, 80)).toBe(a << 1);
    expect(t.lookupHinted((b << 1) | 1, IPPROTO_TCP, fnat.addr, 80, LIP, 5000)).toBe((b << 1) | 1);
    // A stale hint: the conn is gone, its slot reused by another tuple.
    t.expire(a, T0);
    const a2 = t.create(IPPROTO_TCP, CIP, 41000, VIP, 80, RIP, 8080, 0, 0, nat, svc.id, -1, T0, 0);
    expect(a2).toBe(a);
    expect(t.lookupHinted(a << 1, IPPROTO_TCP, CIP, 40000, VIP, 80)).toBe(-1);
    expect(t.lookupHinted((a << 1) | 1, IPPROTO_TCP, RIP, 8080, CIP, 40000)).toBe(-1);
    expect(t.lookupHinted(c << 1, IPPROTO_TCP, CIP, 41000, VIP, 80)).toBe(a2 << 1);
  });
});

describe('persistence key helpers and the dest registry', () => {
  it('fwmark ⇒ <IP, mark, 0>; port 0 and FTP ⇒ vport 0; normal ⇒ service port', () => {
    const sched = {} as Scheduler;
    const fwm = new Service(10, 0, 0, 0, 7, sched);
    const p0 = new Service(11, IPPROTO_TCP, VIP, 0, 0, sched);
    const ftp = new Service(12, IPPROTO_TCP, VIP, 21, 0, sched);
    const web = new Service(13, IPPROTO_TCP, VIP, 80, 0, sched);
    const d = mkDest(web, '10.0.0.11', 8080, FWD_MASQ);
    expect([templateProto(fwm, IPPROTO_UDP), templateVaddr(fwm, VIP), templateVport(fwm), templateDport(fwm, d)]).toEqual([0, 7, 0, 0]);
    expect([templateProto(p0, IPPROTO_TCP), templateVport(p0), templateDport(p0, d)]).toEqual([IPPROTO_TCP, 0, 0]);
    expect([templateVport(ftp), templateDport(ftp, d)]).toEqual([0, 0]);
    expect([templateVaddr(web, VIP), templateVport(web), templateDport(web, d)]).toEqual([VIP, 80, 8080]);
    expect(persistConnDport(web, d, 80)).toBe(8080);
    expect(persistConnDport(p0, d, 443)).toBe(443);
  });

  it('forgetDest only drops an unreferenced dest', () => {
    const t = mk();
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 80, FWD_MASQ);
    const c = t.create(IPPROTO_TCP, CIP, 1, VIP, 80, RIP, 80, 0, 0, d, svc.id, -1, T0, 0);
    expect(t.dest(c)).toBe(d);
    expect(t.forgetDest(d.id)).toBe(false);
    t.expire(c, T0);
    expect(t.forgetDest(d.id)).toBe(true);
    expect(t.dests[d.id]).toBeUndefined();
  });
});

describe('ConnTable: record layout', () => {
  it('every field of a conn reads back what was written, and neighbouring records do not bleed into it', () => {
    const t = new ConnTable({ maxConns: 8, seed: 7, now: T0 });
    const svc = mkService();
    const d = mkDest(svc, '10.0.0.11', 8080, FWD_FULLNAT);
    // Slots 0 and 2 hold all-ones-ish values, slot 1 small distinct ones: any overlap shows.
    const hi = t.create(IPPROTO_UDP, 0xffffffff, 0xffff, 0xfffffffe, 0xfffe, 0xfffffffd, 0xfffd, 0xfffffffc, 0xfffc, d, 0x7fffffff, -1, T0, 0);
    const mid = t.create(IPPROTO_TCP, 1, 2, 3, 4, 5, 6, 7, 8, null, 9, -1, T0 + 1, FWD_MASQ);
    const hi2 = t.create(IPPROTO_UDP, 0xffffffff, 0xfff0, 0xfffffffe, 0xfffe, 0xfffffffd, 0xfffd, 0xfffffffc, 0xfffb, d, 0x7fffffff, -1, T0, 0);
    expect([hi, mid, hi2]).toEqual([0, 1, 2]);
    t.udpPacket(hi, DIR_IN, T0);
    t.udpPacket(hi2, DIR_IN, T0);
    expect([t.proto(mid), t.state(mid), t.caddr(mid), t.cport(mid), t.vaddr(mid), t.vport(mid), t.daddr(mid), t.dport(mid),
      t.laddr(mid), t.lport(mid), t.destId(mid), t.svcId(mid), t.ctrl(mid), t.nControl(mid), t.timeout(mid), t.expires(mid)])
      .toEqual([IPPROTO_TCP, TCP_S_NONE, 1, 2, 3, 4, 5, 6, 7, 8, -1, 9, -1, 0, 3000, T0 + 1 + 3000]);
    expect(t.fwd(mid)).toBe(FWD_MASQ);
    for (const c of [hi, hi2]) {
      expect([t.proto(c), t.caddr(c), t.vaddr(c), t.vport(c), t.daddr(c), t.dport(c), t.laddr(c), t.destId(c), t.svcId(c)])
        .toEqual([IPPROTO_UDP, 0xffffffff, 0xfffffffe, 0xfffe, 0xfffffffd, 0xfffd, 0xfffffffc, d.id, 0x7fffffff]);
      expect(t.fwd(c)).toBe(FWD_FULLNAT);
      expect(t.timeout(c)).toBe(300_000);
      expect(t.expires(c)).toBe(T0 + 300_000);
    }
    expect([t.cport(hi), t.lport(hi)]).toEqual([0xffff, 0xfffc]);
    expect([t.cport(hi2), t.lport(hi2)]).toEqual([0xfff0, 0xfffb]);
    // Both tuples of each conn are found; the scratch word is the caller's.
    expect(t.lookup(IPPROTO_TCP, 1, 2, 3, 4)).toBe(mid << 1);
    expect(t.lookup(IPPROTO_TCP, 5, 6, 7, 8)).toBe((mid << 1) | DIR_OUT);
    expect(t.lookup(IPPROTO_UDP, 0xfffffffd, 0xfffd, 0xfffffffc, 0xfffc)).toBe((hi << 1) | DIR_OUT);
    expect(t.lookup(IPPROTO_UDP, 0xfffffffd, 0xfffd, 0xfffffffc, 0xfffb)).toBe((hi2 << 1) | DIR_OUT);
    expect(t.lookup(IPPROTO_UDP, 0xffffffff, 0xfff0, 0xfffffffe, 0xfffe)).toBe(hi2 << 1);
    t.setScratch(mid, 0xdeadbeef);
    expect(t.scratch(mid)).toBe(0xdeadbeef);
    expect([t.timeout(mid), t.expires(mid), t.nControl(mid)]).toEqual([3000, T0 + 1 + 3000, 0]);
    expect(t.caddr(hi2)).toBe(0xffffffff);
    expect(t.expires(hi)).toBe(T0 + 300_000);
  });
});

describe('ConnTable: drop_entry\'s todrop_entry rate (K: one idle conn in k with k client packets, the first of each k)', () => {
  it('with a one-slot table every pass looks at that conn: with 3 packets the 1st, 4th, 7th … look drops it, with 1 every look, with 9 never', () => {
    const svc = mkService(1, IPPROTO_UDP);
    const d = mkDest(svc, '10.0.0.11', 53, FWD_DROUTE);
    const t = mk({ maxConns: 1 });
    const fresh = (pkts: number, now: number): number => {
      const c = t.create(IPPROTO_UDP, CIP, 5353, VIP, 53, RIP, 53, 0, 0, d, svc.id, -1, now, 0);
      expect(c).toBe(0);
      t.udpPacket(c, DIR_IN, now);
      t.setInPkts(c, pkts);
      return c;
    };
    let now = T0;
    const pattern = (pkts: number, looks: number): string => {
      let s = '';
      for (let k = 0; k < looks; k++) {
        if (!t.inUse(0)) fresh(pkts, now);
        now += 61_000; // idle for more than 60 s (its UDP timeout is 300 s: still in the table)
        s += t.dropRandomEntries(1, now) === 1 ? 'D' : '.';
      }
      t.expire(0, now);
      return s;
    };
    expect(pattern(3, 7)).toBe('D..D..D');
    expect(pattern(1, 4)).toBe('DDDD');
    expect(pattern(9, 4)).toBe('....');
    expect(pattern(2, 4)).toBe('D.D.');
    // Not idle long enough (less than 60 s since its last packet): kept whatever its count.
    const c = fresh(1, now);
    expect(t.dropRandomEntries(1, now + 30_000)).toBe(0);
    expect(t.inUse(c)).toBe(true);
  });
});

/**
 * The data path allocates nothing per packet: established conns of every forwarding method, both
 * directions where replies pass the director, with every address above 2^31 (a u32 that large
 * crossing a call in a double would be boxed in a new HeapNumber each time). Allocations are
 * sampled with V8's sampling heap profiler (collected objects included) after a warm-up long
 * enough for the optimizing compiler, and only those whose stack runs through uvs's own code
 * count.
 */
import { Session } from 'node:inspector/promises';
import { describe, expect, it } from 'vitest';
import { Director } from '../../../src/pipeline/director.js';
import { FakeClock, systemClock, type Clock } from '../../../src/pipeline/clock.js';
import { Control } from '../../../src/control/ops.js';
import { HEADROOM, SLOT_SIZE } from '../../../src/packet/arena.js';
import { parseIp } from '../../../src/model/addr.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL } from '../../../src/model/constants.js';
import type { Command } from '../../../src/control/types.js';
import { build, mac } from '../../helpers/frames.js';
import { NullPort } from '../../../src/port/null-port.js';
import { CF_PP_SENT, CF_TOA_SEQ } from '../../../src/conn/conn-table.js';
import { AO_ADDED } from '../../../src/fwd/addr-option.js';

const CIP = '200.1.1.6';
const VIP = '200.1.1.110';
const RIPS = ['172.20.0.7', '172.20.0.17'];
const DIR0_S = '02:00:00:00:00:01', DIR1_S = '02:00:00:00:00:02', PEER_S = '02:00:00:00:01:07';
const DIR0 = mac(DIR0_S);
const DIR1 = mac(DIR1_S);
const PEER = mac(PEER_S);
const CONNS = 256;
const BATCH = 32;

interface Lab { d: Director; frames: Uint8Array[]; ports: number[] }

/**
 * `proxyProtocol` 1 / 2: the service has --proxy-protocol; with `ppShift` each conn first sends
 * its first data (the header goes out) at a seq above 2^31, and the pumped segments come after it
 * (seq moved up) with replies acking past the header (ack moved back); without, every pumped
 * segment starts at the first data seq (the header put in each time).
 */
function lab(fwd: number, maxConns = 4096, clock: Clock = new FakeClock(), proxyProtocol = 0, ppShift = false, toa = false): Lab {
  const d = new Director({ clock, maxConns, batch: 64, maxPorts: 2 });
  d.addPort(new NullPort('cli0', DIR0), [parseIp('200.1.1.100')]);
  d.addPort(new NullPort('srv0', DIR1), [parseIp('172.20.0.8')]);
  d.routes.addAddress({ port: 0, addr: parseIp('200.1.1.100'), prefix: 24 });
  d.routes.addAddress({ port: 1, addr: parseIp('172.20.0.8'), prefix: 16 });
  const now = clock.now();
  d.neigh.learn(parseIp(CIP), PEER, 0, 0, now, true);
  for (const rip of RIPS) d.neigh.learn(parseIp(rip), PEER, 0, 1, now, true);
  const c = new Control(d);
  const x = (cmd: Command): void => { const r = c.execute(cmd); if (!r.ok) throw new Error(r.message); };
  const svc = { protocol: 6, af: 2, addr: VIP, port: 80, fwmark: 0 };
  x({ cmd: 'add-service', svc, opts: { sched: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', proxyProtocol } });
  for (const rip of RIPS) {
    x({ cmd: 'add-server', svc, dest: { addr: rip, port: 8080 }, opts: { fwd: fwd as 0, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 } });
  }
  if (fwd === FWD_FULLNAT) x({ cmd: 'add-laddr', svc, laddr: '172.20.1.10' });
  // Open the conns with a SYN each, one at a time.
  const rx = new Uint32Array([0]);
  const put = (slot: number, f: Uint8Array): void => {
    d.arena.reset(slot);
    d.arena.off[slot] = slot * SLOT_SIZE + HEADROOM;
    d.arena.bytes.set(f, d.arena.off[slot]!);
    d.arena.len[slot] = f.length;
  };
  for (let i = 0; i < CONNS; i++) {
    put(0, build({ srcMac: PEER_S, dstMac: DIR0_S, saddr: CIP, daddr: VIP, sport: 20000 + i, dport: 80, flags: 0x02 }));
    d.processBatch(0, rx, 1);
  }
  expect(d.conns.count).toBe(CONNS);
  const SEQ0 = 0xf0000000;
  if (ppShift) {
    for (let i = 0; i < CONNS; i++) {
      put(0, build({ srcMac: PEER_S, dstMac: DIR0_S, saddr: CIP, daddr: VIP, sport: 20000 + i, dport: 80, flags: 0x18, seq: SEQ0, payload: new Uint8Array(8) }));
      d.processBatch(0, rx, 1);
    }
    for (let i = 0; i < CONNS; i++) {
      const k = d.conns.lookup(6, parseIp(CIP), 20000 + i, parseIp(VIP), 80) >> 1;
      expect(d.conns.flags(k) & CF_PP_SENT).toBe(CF_PP_SENT);
      expect(d.conns.ppSeq(k) >>> 0).toBe(SEQ0);
    }
  }
  // TOA: each server's SYN-ACK (ISN above 2^31) noted; every client segment below acknowledges
  // ISN + 1, so each one gets the option put in (the costliest TOA path).
  const RS_ISN = 0xe0000000;
  if (toa) {
    for (let i = 0; i < CONNS; i++) {
      const k = d.conns.lookup(6, parseIp(CIP), 20000 + i, parseIp(VIP), 80) >> 1;
      put(0, build({ srcMac: PEER_S, dstMac: DIR1_S, saddr: ipStr(d.conns.daddr(k)), sport: 8080, daddr: ipStr(d.conns.laddr(k)), dport: d.conns.lport(k), flags: 0x12, seq: RS_ISN, ack: 1 }));
      d.processBatch(1, rx, 1);
      expect(d.conns.flags(k) & CF_TOA_SEQ).toBe(CF_TOA_SEQ);
    }
  }
  // Established traffic: client ACKs, and the servers' replies where they pass the director, in
  // batches of BATCH frames of one port each.
  const ins: Uint8Array[] = [];
  const outs: Uint8Array[] = [];
  const replies = fwd === FWD_MASQ || fwd === FWD_FULLNAT;
  for (let i = 0; i < CONNS; i++) {
    ins.push(build({
      srcMac: PEER_S, dstMac: DIR0_S, saddr: CIP, daddr: VIP, sport: 20000 + i, dport: 80, flags: 0x10, payload: new Uint8Array(8),
      ...(ppShift ? { seq: SEQ0 + 8 } : {}), ...(toa ? { ack: RS_ISN + 1 } : {}),
    }));
    if (replies) {
      const k = d.conns.lookup(6, parseIp(CIP), 20000 + i, parseIp(VIP), 80) >> 1;
      const la = d.conns.laddr(k);
      outs.push(build({
        srcMac: PEER_S, dstMac: DIR1_S, saddr: ipStr(d.conns.daddr(k)), sport: 8080,
        daddr: la !== 0 ? ipStr(la) : CIP, dport: la !== 0 ? d.conns.lport(k) : 20000 + i, flags: 0x10, payload: new Uint8Array(8),
        ...(ppShift ? { ack: SEQ0 + 8 + 8 + 60 } : {}),
      }));
    }
  }
  const frames: Uint8Array[] = [];
  const ports: number[] = [];
  for (let i = 0; i < CONNS; i += BATCH) {
    for (const f of ins.slice(i, i + BATCH)) { frames.push(f); ports.push(0); }
    for (const f of outs.slice(i, i + BATCH)) { frames.push(f); ports.push(1); }
  }
  return { d, frames, ports };
}

function ipStr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Runs `batches` batches of BATCH frames (per port) through processBatch; returns packets processed. */
function pump(l: Lab, batches: number): number {
  const { d, frames, ports } = l;
  const a = d.arena;
  const rx = new Uint32Array(BATCH);
  for (let i = 0; i < BATCH; i++) rx[i] = i;
  let k = 0;
  let n = 0;
  for (let b = 0; b < batches; b++) {
    const port = ports[k]!;
    let m = 0;
    while (m < BATCH && ports[k] === port) {
      const f = frames[k]!;
      a.off[m] = m * SLOT_SIZE + HEADROOM;
      a.bytes.set(f, a.off[m]!);
      a.len[m] = f.length;
      m++;
      if (++k === frames.length) k = 0;
    }
    d.processBatch(port, rx, m);
    n += m;
  }
  return n;
}

interface ProfileNode { callFrame: { url: string; functionName: string }; selfSize: number; children?: ProfileNode[] }

/** Runs `work` (returns packets processed) under V8's sampling heap profiler and expects
 * (almost) nothing allocated in uvs's own code per packet. */
async function expectNoAlloc(work: () => number): Promise<void> {
  const s = new Session();
  s.connect();
  try {
    await s.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    const packets = work();
    const { profile } = await s.post('HeapProfiler.stopSampling') as unknown as { profile: { head: ProfileNode } };
    let ours = 0;
    let clockBytes = 0;
    const sites: string[] = [];
    const walk = (n: ProfileNode, inUvs: boolean, inClock: boolean): void => {
      const here = inUvs || /\/src\/(pipeline|fwd|conn|wire|packet|model|sched)\//.test(n.callFrame.url);
      const clock = inClock || /\/src\/pipeline\/clock\./.test(n.callFrame.url);
      if (clock) clockBytes += n.selfSize;
      else if (here && n.selfSize > 0) {
        ours += n.selfSize;
        sites.push(`${n.callFrame.functionName} ${n.callFrame.url.split('/').slice(-2).join('/')}: ${n.selfSize} B`);
      }
      for (const c of n.children ?? []) walk(c, here, clock);
    };
    walk(profile.head, false, false);
    expect(packets).toBeGreaterThan(90_000);
    // One HeapNumber per packet would be 16 B/packet; allow a few stray bytes in total.
    expect(ours / packets, sites.join('\n')).toBeLessThan(0.5);
    // Reading the system clock (once per batch: performance.now() returns a fresh number) may
    // cost one HeapNumber per batch, not more.
    expect(clockBytes / (packets / BATCH)).toBeLessThanOrEqual(24);
  } finally {
    s.disconnect();
  }
}

const methods = [
  ['NAT', FWD_MASQ, false, false], ['DR', FWD_DROUTE, false, false], ['TUN', FWD_TUNNEL, false, false], ['FULLNAT', FWD_FULLNAT, false, false],
  ['NAT with the large-table batch prefetch', FWD_MASQ, true, false], ['FULLNAT with the large-table batch prefetch', FWD_FULLNAT, true, false],
  // uvsd's own clock: real time moving under the run (it gave fractional epoch ms once: 16 B/packet).
  ['NAT on the daemon\'s system clock', FWD_MASQ, false, true], ['DR on the daemon\'s system clock', FWD_DROUTE, false, true],
  // --proxy-protocol: every client segment here starts at the conn's first data seq, so each one is
  // a "retransmission of the first" and gets the header put in (the costliest PROXY path).
  ['FULLNAT with --proxy-protocol v1 (the header put into every segment)', FWD_FULLNAT, false, false, 1],
  ['NAT with --proxy-protocol v2 (the header put into every segment)', FWD_MASQ, false, false, 2],
  ['FULLNAT with --proxy-protocol v1 (seqs moved up, acks moved back, all above 2^31)', FWD_FULLNAT, false, false, 1, true],
  // A router's fragmentation-needed lowered the path MTU to both real servers (model/pmtu.ts): every
  // TUN packet's MTU test consults it, on the daemon's clock.
  ['TUN with learnt path MTUs on the daemon\'s system clock', FWD_TUNNEL, false, true, 0, false, true],
  // FULLNAT TOA (fwd/toa.ts) put into every client segment.
  ['FULLNAT with TOA in every client segment', FWD_FULLNAT, false, false, 0, false, false, true],
] as const;

describe('the data path allocates nothing per packet', () => {
  for (const [name, fwd, prefetch, system, pp, ppShift, pmtu, toa] of methods) {
    it(`${name}: established conns, addresses above 2^31`, async () => {
      const clock = system ? systemClock : new FakeClock();
      const l = lab(fwd, 4096, clock, pp ?? 0, ppShift ?? false, toa ?? false);
      const added = l.d.toaCounts[AO_ADDED]!;
      if (prefetch) l.d.prefetchMin = 0;
      if (pmtu) for (const rip of RIPS) expect(l.d.pmtu.learn(parseIp(rip), 1400, 1500, clock.now())).toBe(1400);
      const before = l.d.drops.counts.reduce((s, x) => s + x, 0);
      pump(l, 6000); // warm-up: the optimizing compiler has seen it all
      await expectNoAlloc(() => pump(l, 3000));
      // Everything was forwarded, nothing dropped.
      expect(l.d.drops.counts.reduce((s, x) => s + x, 0)).toBe(before);
      if (toa) expect(l.d.toaCounts[AO_ADDED]! - added).toBeGreaterThanOrEqual(9000 * BATCH / 2);
    });
  }

  for (const [name, fwd] of [['NAT', FWD_MASQ], ['DR', FWD_DROUTE], ['TUN', FWD_TUNNEL], ['FULLNAT', FWD_FULLNAT]] as const) {
    it(`${name} across 24.8 days of uptime (the millisecond clock passes 2^31: no longer a small integer)`, async () => {
      const clock = new FakeClock(2 ** 31 - 60_000);
      const l = lab(fwd, 4096, clock);
      const before = l.d.drops.counts.reduce((s, x) => s + x, 0);
      pump(l, 6000); // optimized while the clock is a small integer
      clock.advance(61_000); // now above 2^31 (the conns' timeouts are longer: nothing expires)
      pump(l, 6000); // deoptimized once, optimized again for the larger numbers
      await expectNoAlloc(() => pump(l, 3000));
      expect(l.d.drops.counts.reduce((s, x) => s + x, 0)).toBe(before);
      // Expiry still works there: 15 idle minutes later every conn (ESTABLISHED, 900 s) is gone.
      clock.advance(901_000);
      for (let k = 0; k < 100 && l.d.conns.count > 0; k++) l.d.conns.tick(clock.now());
      expect(l.d.conns.count).toBe(0);
    });
  }

  it('SYNs of new conns (rr, NAT): scheduling, conn creation, hashing', async () => {
    const l = lab(FWD_MASQ, 1 << 18);
    const syns: Uint8Array[] = [];
    for (let i = 0; i < 144_000; i++) {
      const cip = `200.1.${2 + (i >> 15)}.${6 + ((i >> 13) & 3)}`; // 8192 ports per client address
      syns.push(build({ srcMac: PEER_S, dstMac: DIR0_S, saddr: cip, daddr: VIP, sport: 1024 + (i & 0x1fff), dport: 80, flags: 0x02 }));
    }
    const lab2: Lab = { d: l.d, frames: syns.slice(0, 48_000), ports: Array(48_000).fill(0) };
    pump(lab2, 48_000 / BATCH); // warm-up on their own conns
    lab2.frames = syns.slice(48_000);
    lab2.ports = Array(lab2.frames.length).fill(0);
    const before = l.d.conns.count;
    await expectNoAlloc(() => pump(lab2, lab2.frames.length / BATCH));
    expect(l.d.conns.count - before).toBe(96_000);
  });

  it('a SYN flood against a SYN-proxy service (cookie SYN-ACKs), with forged ACKs', async () => {
    const l = lab(FWD_MASQ);
    const c = new Control(l.d);
    const svc = { protocol: 6, af: 2, addr: VIP, port: 80, fwmark: 0 };
    expect(c.execute({ cmd: 'edit-service', svc, opts: { sched: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', synproxy: true } }).ok).toBe(true);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 128_000; i++) {
      const cip = `200.1.${2 + (i >> 15)}.${6 + ((i >> 13) & 3)}`;
      frames.push(build({ srcMac: PEER_S, dstMac: DIR0_S, saddr: cip, daddr: VIP, sport: 1024 + (i & 0x1fff), dport: 80, flags: (i & 3) === 3 ? 0x10 : 0x02,
        seq: 0x9000_0000 + i, ack: 12345, tcpOptions: [2, 4, 0x05, 0xb4, 1, 1, 4, 2] }));
    }
    const l2: Lab = { d: l.d, frames: frames.slice(0, 32_000), ports: Array(32_000).fill(0) };
    const conns = l.d.conns.count;
    pump(l2, 32_000 / BATCH);
    l2.frames = frames.slice(32_000);
    l2.ports = Array(l2.frames.length).fill(0);
    await expectNoAlloc(() => pump(l2, l2.frames.length / BATCH));
    expect(l.d.conns.count).toBe(conns); // no state for any of them
    expect(l.d.spCounts[0]).toBe(96_000);
    expect(l.d.drops.snapshot()['synproxy-bad-ack']).toBe(32_000);
  });
});

/**
 * ICMP errors routers send the director about its own TUN packets (K ip_vs_in_icmp, "errors for
 * our tunnel"; ipvs-semantics.md §5.5): the client gets a fresh error from the VIP about its own
 * packet, and a fragmentation-needed lowers the path MTU to the real server for 600 s.
 */
import { describe, expect, it } from 'vitest';
import { build, parse } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR1_MAC, ROUTER_MAC } from '../../helpers/lab-mem.js';
import { FWD_TUNNEL } from '../../../src/model/constants.js';
import { PathMtuCache, PMTU_EXPIRES_MS } from '../../../src/model/pmtu.js';
import { parseIp } from '../../../src/model/addr.js';
import { renderMetrics } from '../../../src/control/metrics.js';

const VIPD = '10.0.0.100';
const CLIENT = '192.168.10.6';
const RIP = '10.0.0.17';
const SYN = 0x02, ACK = 0x10;

/** A TUN service (VIPD:80 → RIP), the client's SYN through it; `tun`: dest tunnel type/port. */
function tunLab(tun: { type: number; port: number } = { type: 0, port: 0 }) {
  const l = memLab({ gateway: '10.0.0.200' });
  l.cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
  l.cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: RIP, port: 80 }, opts: { ...destOpts(FWD_TUNNEL), tunType: tun.type, tunPort: tun.port } });
  l.p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CLIENT, daddr: VIPD, flags: SYN }));
  l.run();
  expect(l.p1.takeSent()).toHaveLength(1);
  /** A client data segment of `ipLen` bytes (IP total length) through the director. */
  const data = (ipLen: number, df = true) => build({
    srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: CLIENT, daddr: VIPD, flags: ACK, seq: 1001, df, payload: new Uint8Array(ipLen - 40).fill(0x61),
  });
  return { ...l, data };
}

/** What a Linux router sends about a packet it cannot forward: up to 576 bytes in all, quoting the packet from its IP header. */
function routerError(sent: Uint8Array, type: number, code: number, info: number, from = '10.0.0.200', to = '10.0.0.8'): Uint8Array {
  const quote = sent.subarray(14, Math.min(sent.length, 14 + 548));
  return build({ proto: 1, srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: from, daddr: to, icmpType: type, icmpCode: code, sport: info >>> 16, dport: info & 0xffff, payload: quote });
}

const mtuOf = (icmp: Uint8Array) => (icmp[40]! << 8) | icmp[41]!;

describe('ICMP errors about uvs\'s own tunnel packets', () => {
  it('frag-needed from a router for an IPIP packet: the client gets frag-needed (MTU − 20) from the VIP quoting its own packet; later packets obey the learnt path MTU', () => {
    const { d, p0, p1, run, data, clock } = tunLab();
    p1.inject(data(1300));
    run();
    const sent = p1.takeSent();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.frame.length).toBe(14 + 1320);
    // The router's link to the real server has MTU 1300.
    p1.inject(routerError(sent[0]!.frame, 3, 4, 1300));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    const out = p0.takeSent();
    expect(out).toHaveLength(1);
    const icmp = out[0]!.frame;
    expect(parse(icmp)).toMatchObject({ proto: 1, saddr: VIPD, daddr: CLIENT, dstMac: CLIENT_MAC, ipOk: true, l4Ok: true });
    expect([icmp[34], icmp[35]]).toEqual([3, 4]);
    expect(mtuOf(icmp)).toBe(1280);
    // The quote is the client's own packet (its IP header: client → VIP, and its TCP ports).
    const q = icmp.subarray(42);
    expect([...q.subarray(12, 16)].join('.')).toBe(CLIENT);
    expect([...q.subarray(16, 20)].join('.')).toBe(VIPD);
    expect((q[20]! << 8) | q[21]!).toBe(40000);
    expect(d.tunnelIcmpRelayed).toBe(1);
    expect(d.pmtu.entries(clock.now())).toEqual([{ addr: parseIp(RIP), mtu: 1300, expiresInMs: PMTU_EXPIRES_MS }]);
    const metrics = renderMetrics(d);
    expect(metrics).toMatch(/^uvs_tunnel_icmp_relayed_total 1$/m);
    expect(metrics).toMatch(/^uvs_path_mtu_learnt_entries 1$/m);

    // The client resends at 1300: now refused here with 1280, as the kernel's learnt route does.
    p1.inject(data(1300));
    run();
    expect(p1.takeSent()).toHaveLength(0);
    expect(mtuOf(p0.takeSent()[0]!.frame)).toBe(1280);
    expect(d.drops.snapshot()['frag-needed']).toBe(1);
    // 1280 fits the tunnel (1300 outer).
    p1.inject(data(1280));
    run();
    expect(p1.takeSent()[0]!.frame.length).toBe(14 + 1300);
    // Without DF a too-big packet is fragmented to the path MTU instead.
    p1.inject(data(1400, false));
    run();
    const frags = p1.takeSent();
    expect(frags.length).toBeGreaterThan(1);
    for (const f of frags) expect(f.frame.length).toBeLessThanOrEqual(14 + 1300);

    // 600 s later the route's own MTU is back.
    clock.advance(PMTU_EXPIRES_MS + 1);
    p1.inject(data(1300));
    run();
    expect(p1.takeSent()[0]!.frame.length).toBe(14 + 1320);
    expect(d.pmtu.size).toBe(0);
  });

  it('GUE and GRE: the quote is found behind the UDP + GUE / GRE header; the GUE overhead is then caught by the forwarder\'s own check', () => {
    for (const [type, port, overhead] of [[1, 6080, 32], [2, 0, 24]] as const) {
      const { p0, p1, run, data, d } = tunLab({ type, port });
      p1.inject(data(1300));
      run();
      const sent = p1.takeSent()[0]!.frame;
      expect(sent.length).toBe(14 + 1300 + overhead);
      p1.inject(routerError(sent, 3, 4, 1300));
      run();
      expect(mtuOf(p0.takeSent()[0]!.frame)).toBe(1280);
      expect(d.tunnelIcmpRelayed).toBe(1);
      // 1280 + 32 > 1300: the forwarder answers with the MTU that fits this tunnel.
      p1.inject(data(1280));
      run();
      if (overhead > 20) {
        expect(p1.takeSent()).toHaveLength(0);
        expect(mtuOf(p0.takeSent()[0]!.frame)).toBe(1300 - overhead);
      } else {
        expect(p1.takeSent()[0]!.frame.length).toBe(14 + 1280 + overhead);
      }
    }
  });

  it('other errors (host unreachable, TTL exceeded) reach the client with their type, code and info; no path MTU is learnt', () => {
    for (const [type, code] of [[3, 1], [11, 0]] as const) {
      const { d, p0, p1, run, data, clock } = tunLab();
      p1.inject(data(200));
      run();
      p1.inject(routerError(p1.takeSent()[0]!.frame, type, code, 0));
      run();
      const out = p0.takeSent();
      expect(out).toHaveLength(1);
      const icmp = out[0]!.frame;
      expect(parse(icmp)).toMatchObject({ saddr: VIPD, daddr: CLIENT, l4Ok: true });
      expect([icmp[34], icmp[35]]).toEqual([type, code]);
      expect(d.pmtu.entries(clock.now())).toEqual([]);
    }
  });

  it('frag-needed about a packet without DF: the path MTU is learnt, the client is told nothing', () => {
    const { d, p0, p1, run, data } = tunLab();
    p1.inject(data(600, false));
    run();
    p1.inject(routerError(p1.takeSent()[0]!.frame, 3, 4, 576));
    run();
    expect(p0.takeSent()).toHaveLength(0);
    expect(d.pmtu.size).toBe(1);
    expect(d.tunnelIcmpRelayed).toBe(0);
  });

  it('not ours: an error quoting an IPIP packet to an address that is no tunnel dest, or from another source, or with no conn inside, is no tunnel error; bad quotes and checksums are counted drops, never an exception', () => {
    const { d, p0, p1, run, data } = tunLab();
    p1.inject(data(1300));
    run();
    const sent = p1.takeSent()[0]!.frame;
    const edit = (f: (b: Uint8Array) => void) => { const b = sent.slice(); f(b); return b; };
    const before = d.drops.snapshot()['icmp-no-conn'] ?? 0;
    // IPIP to another address.
    p1.inject(routerError(edit((b) => { b[14 + 19] = 99; }), 3, 4, 1300));
    // IPIP from another source.
    p1.inject(routerError(edit((b) => { b[14 + 15] = 99; }), 3, 4, 1300));
    // The packet inside is no conn's (another client port).
    p1.inject(routerError(edit((b) => { b[34 + 20] = 0x12; }), 3, 4, 1300));
    // A quote cut short (the RFC 792 minimum: outer header + 8 bytes).
    p1.inject(routerError(sent.subarray(0, 14 + 28), 3, 4, 1300));
    run();
    expect(p0.takeSent()).toHaveLength(0);
    expect(p1.takeSent()).toHaveLength(0);
    expect(d.pmtu.size).toBe(0);
    expect((d.drops.snapshot()['icmp-no-conn'] ?? 0) - before).toBe(4);
    // A corrupted ICMP checksum.
    const bad = routerError(sent, 3, 4, 1300);
    bad[40] ^= 0x10;
    p1.inject(bad);
    run();
    expect(p0.takeSent()).toHaveLength(0);
    expect(d.pmtu.size).toBe(0);
    expect(d.drops.snapshot()['icmp-checksum']).toBe(1);
  });
});

describe('PathMtuCache (K __ip_rt_update_pmtu)', () => {
  it('only lowers, never below 552, refreshes on the same report, expires, and stays bounded', () => {
    const c = new PathMtuCache();
    expect(c.learn(1, 1600, 1500, 0)).toBe(1500);
    expect(c.size).toBe(0);
    expect(c.learn(1, 1400, 1500, 0)).toBe(1400);
    expect(c.learn(1, 1450, 1500, 10)).toBe(1400);
    expect(c.learn(1, 100, 1500, 20)).toBe(552);
    expect(c.min).toBe(552);
    expect(c.get(1, 1500, PMTU_EXPIRES_MS + 19)).toBe(552);
    expect(c.get(1, 1500, PMTU_EXPIRES_MS + 20)).toBe(1500);
    expect(c.min).toBe(65535);
    // A route MTU below the learnt one wins.
    c.learn(2, 1400, 1500, 0);
    expect(c.get(2, 1300, 1)).toBe(1300);
    for (let i = 0; i < 5000; i++) c.learn(1000 + i, 1000, 1500, 0);
    expect(c.size).toBe(4096);
    // Addresses above 2^31 are keyed by their int32 bits, either way they are given.
    c.learn(0xc0a80a06, 1200, 1500, 0);
    expect(c.get(0xc0a80a06 | 0, 1500, 1)).toBe(1200);
  });
});

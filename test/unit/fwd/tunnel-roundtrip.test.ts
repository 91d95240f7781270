/**
 * The TUN encapsulations end to end in memory: what the director's forwarder sends for IPIP, GUE
 * (each checksum flag) and GRE (with and without checksum) is decapsulated by `uvs
 * tunnel-endpoint`'s decapsulate() back into exactly the inner packet the client sent (TTL − 1) —
 * and what the endpoint must refuse: GUE to a port it was not given, GRE without --gre, a bad
 * UDP or GRE checksum, a GUE control message, a GRE packet that is not IPv4; GRE key and
 * sequence fields are skipped.
 */
import { describe, expect, it } from 'vitest';
import { build } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, ROUTER_MAC, DIR1_MAC } from '../../helpers/lab-mem.js';
import { FWD_TUNNEL } from '../../../src/model/constants.js';
import { Arena } from '../../../src/packet/arena.js';
import { parseIp } from '../../../src/model/addr.js';
import { DECAP_MALFORMED, DECAP_NOT_IPIP, DECAP_OK, decapsulate, type DecapOptions } from '../../../src/cli/tunnel-endpoint.js';
import { wr16 } from '../../../src/wire/bytes.js';
import { checksum } from '../../../src/wire/checksum.js';

const VIPD = '10.0.0.100';
const RIP = '10.0.0.17';
const locals = Uint32Array.of(parseIp(RIP));

/** The frame the director sends for one client SYN to a dest with this tunnel. */
function encapsulated(tunType: number, tunPort: number, tunFlags: number): { frame: Uint8Array; inner: Uint8Array } {
  const l = memLab({ gateway: '10.0.0.200' });
  l.cmd({ cmd: 'add-service', svc: tcpSvc(VIPD, 80), opts: svcOpts('rr') });
  l.cmd({ cmd: 'add-server', svc: tcpSvc(VIPD, 80), dest: { addr: RIP, port: 80 }, opts: { ...destOpts(FWD_TUNNEL), tunType, tunPort, tunFlags } });
  const sent = build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: VIPD, sport: 41000, flags: 0x02, payload: 'hello' });
  l.p1.inject(sent);
  l.run();
  const out = l.p1.takeSent();
  expect(out).toHaveLength(1);
  const inner = sent.slice(14);
  inner[8] = inner[8]! - 1; // TTL − 1, header checksum patched like the director does
  inner[10] = 0; inner[11] = 0;
  wr16(inner, 10, checksum(inner, 0, 20));
  return { frame: out[0]!.frame, inner };
}

function decap(frame: Uint8Array, opts: DecapOptions): { v: number; pkt: Uint8Array } {
  const a = new Arena(1);
  a.reset(0);
  a.bytes.set(frame, a.off[0]!);
  a.len[0] = frame.length;
  const v = decapsulate(a, 0, locals, undefined, 0, opts);
  return { v, pkt: a.bytes.slice(a.off[0]!, a.off[0]! + a.len[0]!) };
}

describe('director encapsulation → tunnel-endpoint decapsulation', () => {
  const all: DecapOptions = { guePorts: [6080], gre: true };
  for (const [name, type, port, flags] of [
    ['ipip', 0, 0, 0], ['gue nocsum', 1, 6080, 0], ['gue csum', 1, 6080, 1], ['gue remcsum', 1, 6080, 2], ['gre', 2, 0, 0], ['gre csum', 2, 0, 1],
  ] as const) {
    it(`${name}: the inner packet comes back byte for byte`, () => {
      const { frame, inner } = encapsulated(type, port, flags);
      const r = decap(frame, all);
      expect(r.v).toBe(DECAP_OK);
      expect(r.pkt).toEqual(inner);
    });
  }

  it('GUE only on the ports given, GRE only with --gre (else left to the host kernel)', () => {
    expect(decap(encapsulated(1, 6080, 1).frame, { guePorts: [6081] }).v).toBe(DECAP_NOT_IPIP);
    expect(decap(encapsulated(1, 6080, 1).frame, {}).v).toBe(DECAP_NOT_IPIP);
    expect(decap(encapsulated(2, 0, 0).frame, {}).v).toBe(DECAP_NOT_IPIP);
  });

  it('refuses a corrupted UDP or GRE checksum, a GUE control message, GRE carrying something else; skips GRE key and sequence', () => {
    const gue = encapsulated(1, 6080, 1).frame;
    const bad = gue.slice(); bad[bad.length - 1] ^= 0xff;
    expect(decap(bad, { guePorts: [6080] }).v).toBe(DECAP_MALFORMED);
    const ctl = gue.slice(); ctl[42] = 0x20; wr16(ctl, 40, 0); // C bit, no UDP checksum
    expect(decap(ctl, { guePorts: [6080] }).v).toBe(DECAP_MALFORMED);
    const gre = encapsulated(2, 0, 1).frame;
    const badg = gre.slice(); badg[badg.length - 1] ^= 0xff;
    expect(decap(badg, { gre: true }).v).toBe(DECAP_MALFORMED);
    const v6 = encapsulated(2, 0, 0).frame.slice(); wr16(v6, 36, 0x86dd);
    expect(decap(v6, { gre: true }).v).toBe(DECAP_MALFORMED);
    // A GRE header with key and sequence (K + S bits): 12 bytes, the inner packet after them.
    const { frame, inner } = encapsulated(2, 0, 0);
    const ks = new Uint8Array(frame.length + 8);
    ks.set(frame.subarray(0, 38), 0);
    ks.set([0, 0, 0, 7, 0, 0, 0, 1], 38);
    ks.set(frame.subarray(38), 46);
    wr16(ks, 34, 0x3000);
    wr16(ks, 16, ks.length - 14);
    ks[24] = 0; ks[25] = 0; wr16(ks, 24, checksum(ks, 14, 20));
    const r = decap(ks, { gre: true });
    expect(r.v).toBe(DECAP_OK);
    expect(r.pkt).toEqual(inner);
  });
});

/**
 * Pure parts of the lab tooling, no root needed: the tunnel endpoint's decapsulation (checksum
 * completion of partial inner packets, fragments, ECN), answer parsing, command formatting.
 */
import { describe, expect, it } from 'vitest';
import { Arena, META_CSUM_OFFSET, META_CSUM_START, META_FLAGS, VNET_F_NEEDS_CSUM } from '../../src/packet/arena.js';
import { DECAP_ECN_DROP, DECAP_FRAG_HELD, DECAP_FRAGMENT, DECAP_NOT_IPIP, DECAP_OK, decapsulate } from '../../src/cli/tunnel-endpoint.js';
import { Reassembler } from '../../src/wire/reassembly.js';
import { build, fragmentFrame } from '../helpers/frames.js';
import { parseIp } from '../../src/model/addr.js';
import { wr16, wr32 } from '../../src/wire/bytes.js';
import { fold, ipv4ChecksumOk, l4ChecksumOk, pseudoSum, setIpv4Checksum, setL4Checksum } from '../../src/wire/checksum.js';
import { parseHttpBody, tally } from '../../src/lab/client.js';
import { formatCommand } from '../../src/lab/topology.js';

const RIP = parseIp('10.0.0.7');
const CIP = parseIp('192.168.10.6');
const VIP = parseIp('10.0.0.100');

/** Ethernet + outer IPv4 (proto 4) + inner IPv4 + UDP "hello" in slot 0; returns offsets. */
function frame(arena: Arena, o: { partial?: boolean; frag?: number; outerTos?: number; innerTos?: number; dst?: number } = {}) {
  const b = arena.bytes;
  const s = arena.off[0]!;
  const payload = Buffer.from('hello');
  const udpLen = 8 + payload.length;
  const ip = (at: number, tot: number, proto: number, src: number, dst: number, tos: number, frag: number) => {
    b[at] = 0x45;
    b[at + 1] = tos;
    wr16(b, at + 2, tot);
    wr16(b, at + 4, 0);
    wr16(b, at + 6, frag);
    b[at + 8] = 64;
    b[at + 9] = proto;
    wr32(b, at + 12, src);
    wr32(b, at + 16, dst);
    setIpv4Checksum(b, at);
  };
  wr16(b, s + 12, 0x0800);
  ip(s + 14, 40 + udpLen, 4, parseIp('10.0.0.8'), o.dst ?? RIP, o.outerTos ?? 0, o.frag ?? 0x4000);
  const inner = s + 34;
  const udp = inner + 20;
  ip(inner, 20 + udpLen, 17, CIP, VIP, o.innerTos ?? 0, 0x4000);
  wr16(b, udp, 40000);
  wr16(b, udp + 2, 53);
  wr16(b, udp + 4, udpLen);
  b.set(payload, udp + 8);
  if (o.partial) {
    wr16(b, udp + 6, fold(pseudoSum(CIP, VIP, 17, udpLen)));
    arena.meta[META_FLAGS] = VNET_F_NEEDS_CSUM;
    arena.meta[META_CSUM_START] = udp - s;
    arena.meta[META_CSUM_OFFSET] = 6;
  } else setL4Checksum(b, CIP, VIP, 17, udp, udpLen, 6);
  arena.len[0] = 34 + 20 + udpLen;
  return { inner, udp, udpLen };
}

describe('tunnel endpoint decapsulation', () => {
  const locals = Uint32Array.of(RIP);

  it('strips Ethernet and the outer header, leaving the inner packet in place', () => {
    const a = new Arena(1);
    const { inner } = frame(a);
    expect(decapsulate(a, 0, locals)).toBe(DECAP_OK);
    expect(a.off[0]).toBe(inner);
    expect(a.len[0]).toBe(33);
  });

  it('completes a partial inner checksum and clears the metadata', () => {
    const a = new Arena(1);
    const { udp, udpLen } = frame(a, { partial: true });
    expect(l4ChecksumOk(a.bytes, CIP, VIP, 17, udp, udpLen)).toBe(false);
    expect(decapsulate(a, 0, locals)).toBe(DECAP_OK);
    expect(l4ChecksumOk(a.bytes, CIP, VIP, 17, udp, udpLen)).toBe(true);
    expect(Array.from(a.meta)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('ignores IPIP for other hosts and drops outer fragments', () => {
    const a = new Arena(1);
    frame(a, { dst: parseIp('10.0.0.17') });
    expect(decapsulate(a, 0, locals)).toBe(DECAP_NOT_IPIP);
    a.reset(0);
    frame(a, { frag: 0x2000 });
    expect(decapsulate(a, 0, locals)).toBe(DECAP_FRAGMENT);
  });

  it('reassembles outer fragments (a kernel director\'s, or uvs with pmtu_disc=0) and decapsulates the whole packet', () => {
    // Inner: a 1500-byte UDP packet with DF; outer IPIP 1520 bytes, fragmented for MTU 1500.
    const inner = build({ proto: 17, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', saddr: '192.168.10.6', daddr: '10.0.0.100',
      dport: 53, payload: new Uint8Array(1472).map((_, i) => i & 255) });
    const outer = new Uint8Array(inner.length + 20);
    outer.set(inner.subarray(0, 14), 0);
    outer.set(inner.subarray(14), 34);
    outer[14] = 0x45;
    wr16(outer, 16, inner.length - 14 + 20);
    wr16(outer, 18, 99);
    outer[22] = 63;
    outer[23] = 4;
    wr32(outer, 26, parseIp('10.0.0.8'));
    wr32(outer, 30, RIP);
    setIpv4Checksum(outer, 14);
    const frags = fragmentFrame(outer, 1500);
    expect(frags.length).toBe(2);
    const a = new Arena(1);
    const reasm = new Reassembler();
    for (const [i, f] of [...frags].reverse().entries()) {
      a.reset(0);
      a.bytes.set(f, a.off[0]!);
      a.len[0] = f.length;
      const v = decapsulate(a, 0, locals, reasm, 0);
      if (i === 0) { expect(v).toBe(DECAP_FRAG_HELD); continue; }
      expect(v).toBe(DECAP_OK);
      expect(a.bytes.subarray(a.off[0]!, a.off[0]! + a.len[0]!)).toEqual(inner.subarray(14));
    }
  });

  it('propagates outer CE to an ECN-capable inner packet and drops a not-ECT one (RFC 6040)', () => {
    const a = new Arena(1);
    const { inner } = frame(a, { outerTos: 3, innerTos: 2 });
    expect(decapsulate(a, 0, locals)).toBe(DECAP_OK);
    expect(a.bytes[inner + 1]! & 3).toBe(3);
    expect(ipv4ChecksumOk(a.bytes, inner)).toBe(true);
    a.reset(0);
    frame(a, { outerTos: 3, innerTos: 0 });
    expect(decapsulate(a, 0, locals)).toBe(DECAP_ECN_DROP);
  });
});

describe('lab client helpers', () => {
  it('parses the real servers\' answers and tallies them', () => {
    const a = parseHttpBody('rs2 peer=10.0.0.50 local=10.0.1.17:8080\n');
    expect(a).toMatchObject({ ok: true, rs: 'rs2', peer: '10.0.0.50', local: '10.0.1.17:8080' });
    expect(parseHttpBody('<html>').ok).toBe(false);
    expect(tally([a, a, { ok: true, rs: 'rs1' }, { ok: false }])).toEqual({ rs2: 2, rs1: 1, error: 1 });
  });

  it('formats uvsadm commands as a user types them', () => {
    expect(formatCommand(['-A', '-t', '192.168.10.110:80', '-s', 'wrr'])).toBe('uvsadm -A -t 192.168.10.110:80 -s wrr');
    expect(formatCommand(['--x', 'a b'], 'uvsd')).toBe("uvsd --x 'a b'");
  });
});

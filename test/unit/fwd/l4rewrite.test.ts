/**
 * rewriteDst / rewriteSrc (src/fwd/l4rewrite.ts): the one incremental checksum update for an
 * address and a port change must leave exactly the checksums a full recomputation gives — checked
 * over many random TCP and UDP frames and rewrites (address only, port only, both, neither).
 */
import { describe, expect, it } from 'vitest';
import { Arena } from '../../../src/packet/arena.js';
import { Packet } from '../../../src/packet/packet.js';
import { parsePacket } from '../../../src/pipeline/parse.js';
import { rewriteDst, rewriteSrc } from '../../../src/fwd/l4rewrite.js';
import { ipv4ChecksumOk, l4ChecksumOk } from '../../../src/wire/checksum.js';
import { ipToString } from '../../../src/model/addr.js';
import { build } from '../../helpers/frames.js';

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0);
}

describe('l4rewrite: combined address + port checksum update', () => {
  it('matches a full recomputation for 2000 random TCP/UDP rewrites', () => {
    const r = rng(7);
    const arena = new Arena(1);
    const p = new Packet(arena, 0);
    for (let i = 0; i < 2000; i++) {
      const proto = i & 1 ? 17 : 6;
      const payload = new Uint8Array(r() % 40);
      for (let k = 0; k < payload.length; k++) payload[k] = r() & 0xff;
      const f = build({ proto, saddr: ipToString(r()), daddr: ipToString(r()), sport: r() & 0xffff, dport: r() & 0xffff, payload });
      arena.reset(0);
      arena.bytes.set(f, arena.off[0]!);
      arena.len[0] = f.length;
      expect(parsePacket(p)).toBe(0);
      const kind = r() % 4; // 0 address, 1 port, 2 both, 3 neither
      const addr = kind === 1 || kind === 3 ? (i % 3 === 0 ? p.saddr : p.daddr) : r();
      const port = kind === 0 || kind === 3 ? (i % 3 === 0 ? p.sport : p.dport) : r() & 0xffff;
      if (i % 3 === 0) rewriteSrc(p, addr, port);
      else rewriteDst(p, addr, port);
      expect(parsePacket(p)).toBe(0); // re-read what is now in the bytes
      expect(ipv4ChecksumOk(p.b, p.l3)).toBe(true);
      expect(l4ChecksumOk(p.b, p.saddr, p.daddr, proto, p.l4, p.l4len), `frame ${i} kind ${kind}`).toBe(true);
      if (i % 3 === 0) expect([p.saddr, p.sport]).toEqual([addr >>> 0, port]);
      else expect([p.daddr, p.dport]).toEqual([addr >>> 0, port]);
    }
  });

  it('leaves a UDP datagram without checksum (0) without one', () => {
    const arena = new Arena(1);
    const p = new Packet(arena, 0);
    const f = build({ proto: 17, saddr: '192.168.10.6', daddr: '192.168.10.110', sport: 5000, dport: 53, payload: 'q' });
    f[40] = 0; f[41] = 0;
    arena.bytes.set(f, arena.off[0]!);
    arena.len[0] = f.length;
    expect(parsePacket(p)).toBe(0);
    rewriteDst(p, 0x0a000007, 5353);
    expect(p.b[p.l4 + 6]).toBe(0);
    expect(p.b[p.l4 + 7]).toBe(0);
    expect(ipv4ChecksumOk(p.b, p.l3)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { ipv4ChecksumOk, setIpv4Checksum } from '../../../src/wire/checksum.js';
import { build, fragmentFrame } from '../../helpers/frames.js';

const frag = (f: Uint8Array) => (f[20]! << 8) | f[21]!;
const totLen = (f: Uint8Array) => (f[16]! << 8) | f[17]!;

describe('IPv4 fragmentation (wire/fragment)', () => {
  it('splits a 3000-byte UDP datagram for MTU 1500 into 8-byte aligned fragments that add up to it', () => {
    const payload = new Uint8Array(3000).map((_, i) => (i * 7) & 255);
    const f = build({ proto: 17, saddr: '192.168.10.6', daddr: '10.0.0.100', dport: 53, payload, df: false, id: 0x4242 });
    const frags = fragmentFrame(f, 1500);
    expect(frags).toHaveLength(3);
    const body: number[] = [];
    frags.forEach((g, k) => {
      expect(totLen(g)).toBeLessThanOrEqual(1500);
      expect(g.length).toBe(14 + totLen(g));
      expect(ipv4ChecksumOk(g, 14)).toBe(true);
      expect((g[18]! << 8) | g[19]!).toBe(0x4242);
      const fr = frag(g);
      expect(fr & 0x4000).toBe(0);
      expect((fr & 0x2000) !== 0).toBe(k < 2); // MF on all but the last
      expect((fr & 0x1fff) * 8).toBe(body.length);
      if (k < 2) expect((totLen(g) - 20) % 8).toBe(0);
      expect(g.subarray(0, 14)).toEqual(f.subarray(0, 14));
      body.push(...g.subarray(34));
    });
    expect(new Uint8Array(body)).toEqual(f.subarray(34));
  });

  it('a fragment that is itself not the last keeps MF on every piece and continues its offset', () => {
    const f = build({ proto: 17, saddr: '1.2.3.4', daddr: '5.6.7.8', payload: new Uint8Array(1972), df: false });
    f[20] = 0x20; f[21] = 100; // MF, offset 100 × 8
    setIpv4Checksum(f, 14);
    const frags = fragmentFrame(f, 1000);
    expect(frags).toHaveLength(3);
    expect(frags.map((g) => frag(g) & 0x2000)).toEqual([0x2000, 0x2000, 0x2000]);
    // (1000 - 20) & ~7 = 976 bytes a piece.
    expect(frags.map((g) => frag(g) & 0x1fff)).toEqual([100, 100 + 976 / 8, 100 + 1952 / 8]);
  });

  it('keeps copied options in every fragment and blanks the others with NOPs after the first', () => {
    const base = build({ proto: 17, saddr: '1.2.3.4', daddr: '5.6.7.8', payload: new Uint8Array(2000), df: false });
    // Insert 8 bytes of options: router alert (0x94, copied), a timestamp (0x44, not copied).
    const opts = [0x94, 4, 0, 0, 0x44, 4, 5, 0];
    const f = new Uint8Array(base.length + 8);
    f.set(base.subarray(0, 34), 0);
    f.set(opts, 34);
    f.set(base.subarray(34), 42);
    f[14] = 0x47;
    f[16] = ((totLen(base) + 8) >> 8) & 255; f[17] = (totLen(base) + 8) & 255;
    setIpv4Checksum(f, 14);
    const frags = fragmentFrame(f, 1500);
    expect(frags).toHaveLength(2);
    expect([...frags[0]!.subarray(34, 42)]).toEqual(opts);
    expect([...frags[1]!.subarray(34, 42)]).toEqual([0x94, 4, 0, 0, 1, 1, 1, 1]);
    for (const g of frags) expect(ipv4ChecksumOk(g, 14)).toBe(true);
    expect(new Uint8Array([...frags[0]!.subarray(42), ...frags[1]!.subarray(42)])).toEqual(f.subarray(42));
  });
});

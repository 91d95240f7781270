/**
 * IPv4 reassembly (src/wire/reassembly.ts): any arrival order gives back the datagram the
 * fragments came from; duplicates, overlaps, over-long datagrams, expiry and eviction as Linux's
 * ip_fragment.c handles them.
 */
import { describe, expect, it } from 'vitest';
import { build, fragmentFrame, parse } from '../../helpers/frames.js';
import { REASM_DISCARDED, REASM_DUPLICATE, REASM_HELD, Reassembler } from '../../../src/wire/reassembly.js';
import { wr16 } from '../../../src/wire/bytes.js';
import { setIpv4Checksum } from '../../../src/wire/checksum.js';

const MACS = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' };

function datagram(size: number, id = 7, saddr = '10.0.0.8'): Uint8Array {
  const f = build({ proto: 17, ...MACS, saddr, daddr: '10.0.0.7', dport: 53, df: false, payload: new Uint8Array(size).map((_, i) => (i * 7) & 255) });
  wr16(f, 18, id);
  setIpv4Checksum(f, 14);
  return f;
}

/** Feeds frames in order; returns the last add() result and the output buffer. */
function feed(r: Reassembler, frames: Uint8Array[], now = 0): { n: number; out: Uint8Array } {
  const out = new Uint8Array(70_000);
  let n = 0;
  for (const f of frames) n = r.add(f, 0, now, out, 0);
  return { n, out };
}

describe('Reassembler', () => {
  it('gives back the whole datagram (headers, payload, checksums) from fragments in any order', () => {
    const whole = datagram(4000);
    const frags = fragmentFrame(whole, 1500);
    expect(frags.length).toBe(3);
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]]) {
      const r = new Reassembler();
      const fs = order.map((i) => frags[i]!);
      for (const f of fs.slice(0, -1)) expect(r.add(f, 0, 0, new Uint8Array(70_000), 0)).toBe(REASM_HELD);
      const { n, out } = feed(r, fs.slice(-1));
      expect(n).toBe(whole.length);
      expect(out.subarray(0, n)).toEqual(whole);
      expect(parse(out.subarray(0, n))).toMatchObject({ ipOk: true, l4Ok: true });
      expect(r.pending).toBe(0);
      expect([r.fragments, r.completed]).toEqual([3, 1]);
    }
  });

  it('keeps datagrams apart by <saddr, daddr, proto, id> and fits the largest one (65535 bytes)', () => {
    const r = new Reassembler();
    const a = fragmentFrame(datagram(3000, 1), 1500);
    const b = fragmentFrame(datagram(3000, 2), 1500);
    const c = fragmentFrame(datagram(3000, 1, '10.0.0.9'), 1500);
    const out = new Uint8Array(70_000);
    expect(r.add(a[0]!, 0, 0, out, 0)).toBe(REASM_HELD);
    expect(r.add(b[1]!, 0, 0, out, 0)).toBe(REASM_HELD);
    expect(r.add(c[0]!, 0, 0, out, 0)).toBe(REASM_HELD);
    expect(r.pending).toBe(3);
    expect(feed(r, [b[0]!, b[2]!]).n).toBe(3000 + 42);
    expect(feed(r, [a[2]!, a[1]!]).n).toBe(3000 + 42);
    expect(r.pending).toBe(1);
    const big = datagram(65535 - 28);
    const { n, out: o } = feed(new Reassembler(), fragmentFrame(big, 1500).reverse());
    expect(n).toBe(big.length);
    expect(o.subarray(0, n)).toEqual(big);
  });

  it('drops an exact duplicate; an overlap, a second end or data past the end discards the datagram', () => {
    const frags = fragmentFrame(datagram(4000), 1500);
    let r = new Reassembler();
    const out = new Uint8Array(70_000);
    r.add(frags[0]!, 0, 0, out, 0);
    expect(r.add(frags[0]!, 0, 0, out, 0)).toBe(REASM_DUPLICATE);
    expect(feed(r, [frags[1]!, frags[2]!]).n).toBe(4042);
    // Overlap: the second fragment moved back by 8 bytes.
    r = new Reassembler();
    r.add(frags[0]!, 0, 0, out, 0);
    const moved = frags[1]!.slice();
    wr16(moved, 20, (moved[20]! << 8 | moved[21]!) - 1);
    setIpv4Checksum(moved, 14);
    expect(r.add(moved, 0, 0, out, 0)).toBe(REASM_DISCARDED);
    expect(r.pending).toBe(0);
    expect(r.discarded).toBe(1);
    // Data past the end: the last fragment first, then one beyond it.
    r = new Reassembler();
    const short = fragmentFrame(datagram(2000), 1500); // 2 fragments: the last ends at 1980 + 8
    r.add(short[1]!, 0, 0, out, 0);
    expect(r.add(frags[2]!, 0, 0, out, 0)).toBe(REASM_DISCARDED);
  });

  it('discards a datagram that would exceed 65535 bytes or a non-final fragment not a multiple of 8', () => {
    const r = new Reassembler();
    const out = new Uint8Array(70_000);
    const f = fragmentFrame(datagram(3000), 1500)[1]!.slice();
    wr16(f, 20, 0x2000 | 8100); // offset 64800 + 1480 > 65515
    setIpv4Checksum(f, 14);
    expect(r.add(f, 0, 0, out, 0)).toBe(REASM_DISCARDED);
    const g = fragmentFrame(datagram(3000), 1500)[0]!.slice(0, 14 + 20 + 1001);
    wr16(g, 16, 20 + 1001);
    setIpv4Checksum(g, 14);
    expect(r.add(g, 0, 0, out, 0)).toBe(REASM_DISCARDED);
    expect(r.pending).toBe(0);
  });

  it('expires a datagram not completed within the timeout, and evicts the oldest when every context is busy', () => {
    const r = new Reassembler(2, 30_000);
    const out = new Uint8Array(70_000);
    const a = fragmentFrame(datagram(3000, 1), 1500);
    r.add(a[0]!, 0, 0, out, 0);
    expect(r.add(a[1]!, 0, 30_000, out, 0)).toBe(REASM_HELD); // the old context expired: a fresh one
    expect(r.expired).toBe(1);
    expect(r.add(a[2]!, 0, 30_001, out, 0)).toBe(REASM_HELD); // first fragment is gone
    r.add(fragmentFrame(datagram(3000, 2), 1500)[0]!, 0, 30_002, out, 0);
    r.add(fragmentFrame(datagram(3000, 3), 1500)[0]!, 0, 30_003, out, 0); // evicts id 1
    expect(r.evicted).toBe(1);
    expect(r.pending).toBe(2);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { carveTable, HUGE_MIN_BYTES } from '../../../src/conn/table-memory.js';
import { ConnTable } from '../../../src/conn/conn-table.js';
import { hugeAllocator } from '../../../src/port/native.js';
import { IPPROTO_TCP } from '../../../src/model/constants.js';

describe('table memory', () => {
  it('carves 64-byte aligned, non-overlapping views out of one block', () => {
    const { views, huge, bytes } = carveTable([[Uint8Array, 3], [Float64Array, 5], [Uint16Array, 33]] as const);
    const [a, b, c] = views;
    expect(huge).toBe(false);
    expect([a.byteOffset, b.byteOffset, c.byteOffset]).toEqual([0, 64, 128]);
    expect(bytes).toBe(128 + 128);
    expect(a.buffer).toBe(b.buffer);
    a.fill(0xff);
    b.fill(-1);
    c.fill(7);
    expect([...a]).toEqual([0xff, 0xff, 0xff]);
    expect([...b]).toEqual([-1, -1, -1, -1, -1]);
    expect(c.every((x) => x === 7)).toBe(true);
    expect(b instanceof Float64Array && c.length === 33).toBe(true);
  });

  it('uses the allocator only for blocks of at least HUGE_MIN_BYTES', () => {
    const asked: number[] = [];
    const alloc = (n: number): ArrayBuffer => {
      asked.push(n);
      return new ArrayBuffer(n);
    };
    expect(carveTable([[Uint32Array, 1000]] as const, alloc).huge).toBe(false);
    const big = carveTable([[Uint32Array, HUGE_MIN_BYTES / 4]] as const, alloc);
    expect(big.huge).toBe(true);
    expect(asked).toEqual([HUGE_MIN_BYTES]);
  });

  it('the addon allocator gives zeroed memory of the asked size, and a conn table works in it', () => {
    const alloc = hugeAllocator();
    expect(alloc).toBeDefined(); // the addon is built by the README's install step
    const rss = () => Number(/RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const before = rss();
    const ab = alloc!(HUGE_MIN_BYTES + 100);
    expect(ab.byteLength).toBe(HUGE_MIN_BYTES + 100);
    // resident before the first touch (faulted in by the allocator, not on the data path)
    expect(rss() - before).toBeGreaterThanOrEqual(HUGE_MIN_BYTES);
    const u = new Uint32Array(ab);
    expect(u.every((x) => x === 0)).toBe(true);
    const t = new ConnTable({ maxConns: 80_000, seed: 1, allocate: alloc });
    expect(t.hugePages).toBe(true);
    for (let i = 0; i < 80_000; i++) t.create(IPPROTO_TCP, 0x0a000000 + i, 1000, 0xc0000201, 80, 0x0a010001, 80, 0, 0, null, 1, -1, 0, 0);
    expect(t.lookup(IPPROTO_TCP, 0x0a010001, 80, 0x0a000000 + 79_999, 1000)).toBe((79_999 << 1) | 1);
    let bound = 0;
    for (let i = 0; i < 80_000; i++) if (t.destId(i) !== -1) bound++;
    expect(bound).toBe(0);
    expect(t.daddr(79_999)).toBe(0x0a010001);
  });
});

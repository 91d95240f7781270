import { describe, expect, it } from 'vitest';
import { FRAG_TIMEOUT_MS, FragTable } from '../../../src/conn/frag-table.js';

const A = 0xc0a80a06, B = 0xc0a80a6e; // addresses above 2^31

describe('FragTable', () => {
  it('remembers a datagram’s conn by <proto, saddr, daddr, id> until all of it went through, or 30 s', () => {
    const t = new FragTable(64);
    t.put(17, A, B, 0x4242, 7 << 1, 1480, 1000);
    expect(t.get(17, A, B, 0x4242, 1000)).toBe(14);
    expect(t.get(17, A | 0, B | 0, 0x4242, 1000)).toBe(14); // int32 bits: the same key
    expect(t.get(6, A, B, 0x4242, 1000)).toBe(-1);
    expect(t.get(17, B, A, 0x4242, 1000)).toBe(-1);
    expect(t.get(17, A, B, 0x4243, 1000)).toBe(-1);
    expect(t.size(1000)).toBe(1);
    // The last fragment (payload 2960..3008) comes before the middle one: the datagram is not complete yet.
    t.passed(17, A, B, 0x4242, 48, 3008, true, 1000);
    expect(t.get(17, A, B, 0x4242, 1000)).toBe(14);
    t.passed(17, A, B, 0x4242, 1480, 2960, false, 1000);
    expect(t.get(17, A, B, 0x4242, 1000)).toBe(-1); // 1480 + 48 + 1480 = 3008: complete, forgotten
    t.passed(17, A, B, 0x4242, 8, 16, true, 1000); // unknown datagram: nothing happens
    t.put(17, A, B, 1, 3, 8, 1000);
    expect(t.get(17, A, B, 1, 1000 + FRAG_TIMEOUT_MS - 1)).toBe(3);
    expect(t.get(17, A, B, 1, 1000 + FRAG_TIMEOUT_MS)).toBe(-1);
    expect(t.size(1000 + FRAG_TIMEOUT_MS)).toBe(0);
  });

  it('stays bounded: a put into a full window replaces the entry that expires first', () => {
    const t = new FragTable(8); // one probe window: every key competes for the same 8 slots
    for (let id = 0; id < 8; id++) t.put(17, A, B, id, id, 8, 1000 + id);
    expect(t.size(1000)).toBe(8);
    t.put(17, A, B, 100, 100, 8, 2000);
    expect(t.evicted).toBe(1);
    expect(t.get(17, A, B, 0, 2000)).toBe(-1); // the oldest went
    for (let id = 1; id < 8; id++) expect(t.get(17, A, B, id, 2000)).toBe(id);
    expect(t.get(17, A, B, 100, 2000)).toBe(100);
    // Refreshing an existing key does not take another slot.
    t.put(17, A, B, 100, 101, 8, 2001);
    expect(t.size(2001)).toBe(8);
    expect(t.get(17, A, B, 100, 2001)).toBe(101);
    expect(() => new FragTable(12)).toThrow(RangeError);
  });
});

import { describe, expect, it } from 'vitest';
import { Arena, HEADROOM, META_WORDS, SLOT_SIZE, VNET_F_NEEDS_CSUM } from '../../../src/packet/arena.js';
import { MemoryPort, parseMac } from '../../../src/port/memory-port.js';

const frameOf = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe('MemoryPort', () => {
  it('has the documented defaults and takes a name, MAC and MTU', () => {
    const p = new MemoryPort();
    expect(p.name).toBe('mem0');
    expect([...p.mac]).toEqual([2, 0, 0, 0, 0, 1]);
    expect(p.mtu).toBe(1500);
    const q = new MemoryPort({ name: 'client', mac: '02:00:00:00:00:0a', mtu: 9000, index: 3 });
    expect([q.name, q.mtu, q.index]).toEqual(['client', 9000, 3]);
    expect([...q.mac]).toEqual([2, 0, 0, 0, 0, 0x0a]);
  });

  it('receives injected frames in order into the listed slots, with their meta', () => {
    const arena = new Arena(8);
    const p = new MemoryPort();
    p.inject(frameOf(60, 0xa1));
    p.inject(frameOf(74, 0xb2), { flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16 });
    p.inject(frameOf(42, 0xc3));
    const slots = Uint32Array.of(5, 2, 7);
    expect(p.recv(arena, slots, 2)).toBe(2);
    expect(arena.len[5]).toBe(60);
    expect(arena.bytes[arena.off[5]!]).toBe(0xa1);
    expect(arena.off[5]).toBe(5 * SLOT_SIZE + HEADROOM);
    expect(arena.len[2]).toBe(74);
    expect(arena.bytes.subarray(arena.off[2]!, arena.off[2]! + 74).every((b) => b === 0xb2)).toBe(true);
    expect([...arena.meta.subarray(2 * META_WORDS, 3 * META_WORDS)]).toEqual([1, 0, 0, 0, 34, 16]);
    expect([...arena.meta.subarray(5 * META_WORDS, 6 * META_WORDS)]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(p.pending).toBe(1);
    expect(p.recv(arena, slots.subarray(2), 4)).toBe(1);
    expect(arena.len[7]).toBe(42);
    expect(p.recv(arena, slots, 3)).toBe(0);
    expect(p.rxFrames).toBe(3);
  });

  it('copies injected frames, so the caller may reuse its buffer', () => {
    const arena = new Arena(1);
    const p = new MemoryPort();
    const buf = frameOf(20, 1);
    p.inject(buf);
    buf.fill(9);
    p.recv(arena, Uint32Array.of(0), 1);
    expect(arena.bytes[arena.off[0]!]).toBe(1);
  });

  it('drops frames larger than a slot and counts them', () => {
    const arena = new Arena(2);
    const p = new MemoryPort();
    p.inject(frameOf(SLOT_SIZE - HEADROOM + 1, 1));
    p.inject(frameOf(64, 2));
    expect(p.recv(arena, Uint32Array.of(0, 1), 2)).toBe(1);
    expect(arena.len[0]).toBe(64);
    expect(p.rxTruncated).toBe(1);
  });

  it('keeps copies of sent frames and meta; takeSent returns and clears them', () => {
    const arena = new Arena(4);
    const p = new MemoryPort();
    arena.bytes.fill(0x11, arena.off[1]!, arena.off[1]! + 50);
    arena.len[1] = 50;
    arena.meta.set([1, 0, 0, 0, 34, 6], 1 * META_WORDS);
    arena.off[3] = 3 * SLOT_SIZE + 10; // a frame moved into its headroom is sent from there
    arena.bytes.fill(0x33, arena.off[3]!, arena.off[3]! + 30);
    arena.len[3] = 30;
    expect(p.send(arena, Uint32Array.of(1, 3), 2)).toBe(2);
    arena.bytes.fill(0, 0); // the director reuses its slots right away
    arena.meta.fill(0);
    const sent = p.takeSent();
    expect(sent).toHaveLength(2);
    expect(sent[0]!.frame.length).toBe(50);
    expect(sent[0]!.frame.every((b) => b === 0x11)).toBe(true);
    expect([...sent[0]!.meta]).toEqual([1, 0, 0, 0, 34, 6]);
    expect(sent[1]!.frame.length).toBe(30);
    expect(sent[1]!.frame.every((b) => b === 0x33)).toBe(true);
    expect(p.takeSent()).toEqual([]);
    expect(p.txFrames).toBe(2);
  });

  it('calls onReadable after inject, again while a reader makes progress, never when nobody reads', async () => {
    const arena = new Arena(4);
    const p = new MemoryPort();
    let calls = 0;
    let got = 0;
    p.onReadable(() => {
      calls++;
      got += p.recv(arena, Uint32Array.of(0), 1); // one frame per call: needs re-arming
    });
    p.inject(frameOf(10, 1));
    p.inject(frameOf(10, 2));
    p.inject(frameOf(10, 3));
    expect(calls).toBe(0); // never synchronous
    for (let i = 0; i < 20 && got < 3; i++) await new Promise((r) => setImmediate(r));
    expect(got).toBe(3);
    expect(calls).toBe(3);

    let idle = 0;
    p.onReadable(() => idle++); // reads nothing
    p.inject(frameOf(10, 4));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(idle).toBe(1);
    p.close();
  });

  it('parses MAC strings and rejects bad ones', () => {
    expect([...parseMac('aa-bb-cc-dd-ee-0f')]).toEqual([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
    expect(() => parseMac('02:00:00:00:00')).toThrow(/not a MAC/);
    expect(() => parseMac(new Uint8Array(5))).toThrow(RangeError);
  });
});

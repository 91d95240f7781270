import { describe, expect, it } from 'vitest';
import { fls, gcd, hash32, hsiphash32, SipKey, sipHashRef } from '../../../src/sched/hash.js';
import { ip } from './helpers.js';

function le32(v: number): Uint8Array {
  return new Uint8Array([v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255]);
}

describe('hash_32', () => {
  it('matches the kernel multiplicative hash', () => {
    expect(hash32(ip('203.0.113.7'), 8)).toBe(124);
    expect(hash32((ip('203.0.113.7') + 40000) >>> 0, 8)).toBe(32);
    expect(hash32(0, 8)).toBe(0);
    expect(hash32(1, 32)).toBe(0x61c88647);
  });
  it('gcd and fls', () => {
    expect(gcd(12, 18)).toBe(6);
    expect(gcd(7, 3)).toBe(1);
    expect(fls(0)).toBe(0);
    expect(fls(1)).toBe(1);
    expect(fls(64)).toBe(7);
  });
});

describe('SipHash', () => {
  it('reference implementation reproduces the official SipHash-2-4 vectors', () => {
    const k0 = 0x0706050403020100n;
    const k1 = 0x0f0e0d0c0b0a0908n;
    expect(sipHashRef(2, 4, k0, k1, new Uint8Array(0))).toBe(0x726fdb47dd0e0e31n);
    const m15 = Uint8Array.from({ length: 15 }, (_, i) => i);
    expect(sipHashRef(2, 4, k0, k1, m15)).toBe(0xa129ca6149be45e5n);
  });

  it('hsiphash32 (32-bit halves) equals the BigInt SipHash-1-3 low 32 bits', () => {
    const keys: [number, number, number, number][] = [
      [0, 2654435761, 0, 2654435761],
      [0, 2654446892, 0, 2654446892],
      [0x01234567, 0x89abcdef, 0xfedcba98, 0x76543210],
    ];
    for (const [k0h, k0l, k1h, k1l] of keys) {
      const key = new SipKey(k0h, k0l, k1h, k1l);
      const bk0 = (BigInt(k0h) << 32n) | BigInt(k0l);
      const bk1 = (BigInt(k1h) << 32n) | BigInt(k1l);
      for (const v of [0, 1, 0xffffffff, ip('10.0.0.1') + 80, ip('203.0.113.7'), 0x80000000, 123456789]) {
        const want = Number(sipHashRef(1, 3, bk0, bk1, le32(v >>> 0)) & 0xffffffffn);
        expect(hsiphash32(key, v)).toBe(want);
      }
    }
  });

  it('gives the reference mh vector for 10.0.0.1:80', () => {
    const key1 = new SipKey(0, 2654435761, 0, 2654435761);
    expect(hsiphash32(key1, (ip('10.0.0.1') + 80) >>> 0)).toBe(0x439c0cbe);
  });
});

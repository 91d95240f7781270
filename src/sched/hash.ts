/**
 * Hash functions of the IPVS schedulers, bit-exact with the kernel.
 *
 * - hash32(): the kernel's `hash_32(val, bits)` (include/linux/hash.h): multiply by
 *   GOLDEN_RATIO_32 = 0x61C88647 modulo 2^32 and keep the top `bits` bits. Used by sh, dh (8 bits)
 *   and lblc/lblcr (10 bits).
 * - gcd(): the kernel's lib/math/gcd.c result for positive ints (wrr, mh weight reduction).
 * - SipKey + hsiphash32(): the kernel's `hsiphash(&v, 4, key)` as it runs on 64-bit kernels,
 *   i.e. SipHash-1-3 (one compression round, three finalisation rounds) over the 4-byte
 *   little-endian encoding of a u32, returning the low 32 bits of v0^v1^v2^v3. mh uses it for
 *   both the table build and the per-packet lookup, so it is written on 32-bit halves with plain
 *   numbers: no BigInt and no allocation per call. (32-bit kernels run HalfSipHash-1-3 instead and
 *   would give other numbers; uvs follows the 64-bit kernel.)
 * - sipHashRef(): a straightforward BigInt SipHash-c-d over bytes, for verification only
 *   (tests check it against the official SipHash-2-4 vector and hsiphash32 against it).
 */

export const GOLDEN_RATIO_32 = 0x61c88647;

/** Kernel hash_32(val, bits): ((val * 0x61C88647) mod 2^32) >> (32 - bits). */
export function hash32(val: number, bits: number): number {
  return Math.imul(val, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** Greatest common divisor of two positive integers. */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Position of the most significant set bit, 1-based; fls(0) = 0 (kernel fls()). */
export function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

const C0H = 0x736f6d65, C0L = 0x70736575; // "somepseu"
const C1H = 0x646f7261, C1L = 0x6e646f6d; // "dorandom"
const C2H = 0x6c796765, C2L = 0x6e657261; // "lygenera"
const C3H = 0x74656462, C3L = 0x79746573; // "tedbytes"

/**
 * A SipHash key, held as the state (v0..v3) after the key has been mixed in, in 32-bit halves.
 * k0 and k1 are the kernel's `hsiphash_key_t.key[0]/[1]` (unsigned long, 64-bit); each is given
 * as (high, low) u32 halves.
 */
export class SipKey {
  readonly v0h: number; readonly v0l: number;
  readonly v1h: number; readonly v1l: number;
  readonly v2h: number; readonly v2l: number;
  readonly v3h: number; readonly v3l: number;

  constructor(k0h: number, k0l: number, k1h: number, k1l: number) {
    this.v0h = (C0H ^ k0h) >>> 0; this.v0l = (C0L ^ k0l) >>> 0;
    this.v1h = (C1H ^ k1h) >>> 0; this.v1l = (C1L ^ k1l) >>> 0;
    this.v2h = (C2H ^ k0h) >>> 0; this.v2l = (C2L ^ k0l) >>> 0;
    this.v3h = (C3H ^ k1h) >>> 0; this.v3l = (C3L ^ k1l) >>> 0;
  }
}

/**
 * hsiphash(&v, sizeof(u32), key) on a 64-bit little-endian kernel: SipHash-1-3 of the 4 bytes of
 * `v` (LE), low 32 bits of the result. The message is shorter than one 8-byte word, so the only
 * block is the final one: b = (4 << 56) | v.
 */
export function hsiphash32(k: SipKey, v: number): number {
  let v0h = k.v0h, v0l = k.v0l, v1h = k.v1h, v1l = k.v1l;
  let v2h = k.v2h, v2l = k.v2l, v3h = k.v3h, v3l = k.v3l;
  const bh = 0x04000000;
  const bl = v >>> 0;
  v3h = (v3h ^ bh) >>> 0;
  v3l = (v3l ^ bl) >>> 0;
  let s = 0, th = 0, tl = 0;
  for (let r = 0; r < 4; r++) {
    // SIPROUND on 64-bit words split into (h, l) u32 halves.
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    s = v0l + v1l; v0h = (v0h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0; v0l = s >>> 0;
    th = ((v1h << 13) | (v1l >>> 19)) >>> 0; tl = ((v1l << 13) | (v1h >>> 19)) >>> 0;
    v1h = (th ^ v0h) >>> 0; v1l = (tl ^ v0l) >>> 0;
    th = v0h; v0h = v0l; v0l = th;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    s = v2l + v3l; v2h = (v2h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0; v2l = s >>> 0;
    th = ((v3h << 16) | (v3l >>> 16)) >>> 0; tl = ((v3l << 16) | (v3h >>> 16)) >>> 0;
    v3h = (th ^ v2h) >>> 0; v3l = (tl ^ v2l) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    s = v0l + v3l; v0h = (v0h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0; v0l = s >>> 0;
    th = ((v3h << 21) | (v3l >>> 11)) >>> 0; tl = ((v3l << 21) | (v3h >>> 11)) >>> 0;
    v3h = (th ^ v0h) >>> 0; v3l = (tl ^ v0l) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    s = v2l + v1l; v2h = (v2h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0; v2l = s >>> 0;
    th = ((v1h << 17) | (v1l >>> 15)) >>> 0; tl = ((v1l << 17) | (v1h >>> 15)) >>> 0;
    v1h = (th ^ v2h) >>> 0; v1l = (tl ^ v2l) >>> 0;
    th = v2h; v2h = v2l; v2l = th;
    if (r === 0) {
      // End of the (only) compression round: v0 ^= b; then finalisation: v2 ^= 0xff.
      v0h = (v0h ^ bh) >>> 0;
      v0l = (v0l ^ bl) >>> 0;
      v2l = (v2l ^ 0xff) >>> 0;
    }
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

const M64 = (1n << 64n) - 1n;
function rotl64(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & M64;
}

/**
 * Reference SipHash-c-d (BigInt) over `msg`, returning the full 64-bit result. Verification only:
 * never on the data path.
 */
export function sipHashRef(c: number, d: number, k0: bigint, k1: bigint, msg: Uint8Array): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & M64; v1 = rotl64(v1, 13n); v1 ^= v0; v0 = rotl64(v0, 32n);
    v2 = (v2 + v3) & M64; v3 = rotl64(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M64; v3 = rotl64(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M64; v1 = rotl64(v1, 17n); v1 ^= v2; v2 = rotl64(v2, 32n);
  };
  const full = msg.length - (msg.length % 8);
  for (let i = 0; i < full; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(msg[i + j]!);
    v3 ^= m;
    for (let r = 0; r < c; r++) round();
    v0 ^= m;
  }
  let b = BigInt(msg.length & 0xff) << 56n;
  for (let j = msg.length - 1; j >= full; j--) b |= BigInt(msg[j]!) << BigInt(8 * (j - full));
  v3 ^= b;
  for (let r = 0; r < c; r++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let r = 0; r < d; r++) round();
  return (v0 ^ v1 ^ v2 ^ v3) & M64;
}

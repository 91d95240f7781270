/** IPv4 addresses are unsigned 32-bit numbers in host order on the hot path; strings only at the edges. */

export function ipToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parses a dotted quad strictly; returns -1 when it is not one. */
export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return -1;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function prefixToMask(prefix: number): number {
  return prefix <= 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function maskToPrefix(mask: number): number {
  let n = 0;
  let m = mask >>> 0;
  while (m & 0x80000000) { n++; m = (m << 1) >>> 0; }
  return m === 0 ? n : -1;
}

export function macToString(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + b[off + i]!.toString(16).padStart(2, '0');
  return s;
}

export function parseMac(s: string): Uint8Array | null {
  const parts = s.split(':');
  if (parts.length !== 6) return null;
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(parts[i]!)) return null;
    out[i] = parseInt(parts[i]!, 16);
  }
  return out;
}

/**
 * The receiving side of the PROXY protocol (haproxy.org proxy-protocol.txt) for the lab's real
 * servers: what nginx `listen … proxy_protocol` or haproxy `accept-proxy` do with the header uvs
 * puts in front of a connection's first bytes (`--proxy-protocol v1|v2`, fwd/proxy-proto.ts).
 *
 * readProxyHeader(buf) looks at the first bytes a connection received:
 *   'more'  — they could still become a header: wait for more bytes;
 *   null    — not a PROXY header (a plain connection);
 *   a ProxyHeader — the header's version, addresses, ports and length in bytes.
 * A malformed header (bad signature tail, unknown command, v1 line without CRLF within 107
 * bytes) is reported as `{ error }` so a server can close the connection, as nginx does.
 */
export interface ProxyHeader {
  version: 1 | 2;
  /** 'PROXY' (addresses below) or 'LOCAL' (v2) / 'UNKNOWN' (v1): no addresses. */
  command: 'PROXY' | 'LOCAL' | 'UNKNOWN';
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** Bytes to skip before the application data. */
  length: number;
}

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** v1: at most 107 bytes, CRLF included. */
const V1_MAX = 107;

function isPrefixOf(have: Buffer, full: Buffer): boolean {
  const n = Math.min(have.length, full.length);
  return have.subarray(0, n).equals(full.subarray(0, n));
}

export function readProxyHeader(buf: Buffer): ProxyHeader | { error: string } | 'more' | null {
  if (isPrefixOf(buf, V2_SIG)) {
    if (buf.length < 16) return 'more';
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) return { error: `v2: version ${verCmd >> 4}` };
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return 'more';
    const cmd = verCmd & 15;
    if (cmd === 0) return { version: 2, command: 'LOCAL', src: '', dst: '', srcPort: 0, dstPort: 0, length: 16 + len };
    if (cmd !== 1) return { error: `v2: command ${cmd}` };
    const fam = buf[13]!;
    if (fam !== 0x11 && fam !== 0x12) return { error: `v2: family/protocol 0x${fam.toString(16)} (only TCP/UDP over IPv4 here)` };
    if (len < 12) return { error: `v2: address block of ${len} bytes` };
    const ip = (o: number) => `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`;
    return {
      version: 2, command: 'PROXY', src: ip(16), dst: ip(20), srcPort: buf.readUInt16BE(24), dstPort: buf.readUInt16BE(26), length: 16 + len,
    };
  }
  if (isPrefixOf(buf, V1_PREFIX)) {
    const end = buf.indexOf('\r\n');
    if (end < 0) return buf.length >= V1_MAX ? { error: 'v1: no CRLF within 107 bytes' } : 'more';
    if (end + 2 > V1_MAX) return { error: 'v1: line longer than 107 bytes' };
    const f = buf.subarray(0, end).toString('latin1').split(' ');
    if (f[1] === 'UNKNOWN') return { version: 1, command: 'UNKNOWN', src: '', dst: '', srcPort: 0, dstPort: 0, length: end + 2 };
    const quad = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
    const port = (s: string | undefined) => (s !== undefined && /^(0|[1-9]\d{0,4})$/.test(s) && Number(s) <= 65535 ? Number(s) : -1);
    if (f.length !== 6 || f[1] !== 'TCP4' || !quad.test(f[2]!) || !quad.test(f[3]!) || port(f[4]) < 0 || port(f[5]) < 0) {
      return { error: `v1: malformed line ${JSON.stringify(buf.subarray(0, end).toString('latin1'))}` };
    }
    return { version: 1, command: 'PROXY', src: f[2]!, dst: f[3]!, srcPort: port(f[4]), dstPort: port(f[5]), length: end + 2 };
  }
  return null;
}

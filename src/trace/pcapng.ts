/**
 * pcapng — write traced frames so Wireshark/tshark tell the same story as the text trace, and
 * read captures (pcap or pcapng) back for `uvs explain --pcap FILE`.
 *
 * Writer layout (pcapng spec, little-endian): one Section Header Block, one Interface
 * Description Block per port (LINKTYPE_ETHERNET, if_name, microsecond timestamps), then one
 * Enhanced Packet Block per frame whose `opt_comment` (option 1) is that packet's trace text,
 * so `tshark -r FILE -T fields -e frame.comment` prints it and Wireshark shows it as the packet
 * comment.
 *
 *   SHB  0x0A0D0D0A len | 0x1A2B3C4D | 1 0 | section length -1 | opt_endofopt | len
 *   IDB  0x00000001 len | linktype 1 | 0 | snaplen | if_name | opt_endofopt | len
 *   EPB  0x00000006 len | if id | ts hi | ts lo | caplen | origlen | data (pad 4) | opt_comment | end | len
 *
 * PcapDir keeps one file per port and direction: DIR/<port>-in.pcapng (frames as received),
 * DIR/<port>-out.pcapng (frames as sent); both carry the same comment for a packet.
 *
 * readCapture() accepts classic pcap (µs or ns, either byte order) and pcapng (EPB, SPB,
 * obsolete PB); Ethernet frames are returned as they are, raw-IP (101, 228) and Linux
 * cooked (113) frames get a synthetic Ethernet header.
 *
 * See also: step-tracer.ts (events), attach.ts (`--pcap DIR`), cli/explain.ts (replay).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LINKTYPE_ETHERNET = 1;

const pad4 = (n: number): number => (n + 3) & ~3;

function block(type: number, body: Uint8Array): Uint8Array {
  const total = 12 + pad4(body.length);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, total, true);
  out.set(body, 8);
  dv.setUint32(total - 4, total, true);
  return out;
}

function option(code: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + pad4(value.length));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, code, true);
  dv.setUint16(2, value.length, true);
  out.set(value, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const END_OF_OPT = new Uint8Array(4);
const utf8 = new TextEncoder();

/** Section Header Block bytes. */
export function shb(): Uint8Array {
  const body = new Uint8Array(16);
  const dv = new DataView(body.buffer);
  dv.setUint32(0, 0x1a2b3c4d, true);
  dv.setUint16(4, 1, true);
  dv.setUint16(6, 0, true);
  dv.setInt32(8, -1, true);
  dv.setInt32(12, -1, true);
  return block(0x0a0d0d0a, concat([body, END_OF_OPT]));
}

/** Interface Description Block bytes (Ethernet, µs timestamps). */
export function idb(name: string, snaplen = 262144): Uint8Array {
  const head = new Uint8Array(8);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, LINKTYPE_ETHERNET, true);
  dv.setUint32(4, snaplen, true);
  return block(1, concat([head, option(2, utf8.encode(name)), END_OF_OPT]));
}

/** Enhanced Packet Block bytes; `timeMs` is the capture time in milliseconds. */
export function epb(ifId: number, timeMs: number, frame: Uint8Array, comment?: string): Uint8Array {
  const head = new Uint8Array(20);
  const dv = new DataView(head.buffer);
  const us = BigInt(Math.round(timeMs * 1000));
  dv.setUint32(0, ifId, true);
  dv.setUint32(4, Number(us >> 32n), true);
  dv.setUint32(8, Number(us & 0xffffffffn), true);
  dv.setUint32(12, frame.length, true);
  dv.setUint32(16, frame.length, true);
  const data = new Uint8Array(pad4(frame.length));
  data.set(frame);
  const opts = comment ? [option(1, utf8.encode(comment)), END_OF_OPT] : [];
  return block(6, concat([head, data, ...opts]));
}

/**
 * A pcapng file being written synchronously (tracing is a control-path activity: a blocking
 * write per traced packet is fine, and nothing is lost if the process stops).
 */
export class PcapngWriter {
  private fd: number;
  private readonly ifaces = new Map<string, number>();

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, shb());
  }

  /** The interface id of `name`, writing its IDB the first time. */
  iface(name: string): number {
    let i = this.ifaces.get(name);
    if (i === undefined) {
      i = this.ifaces.size;
      this.ifaces.set(name, i);
      writeSync(this.fd, idb(name));
    }
    return i;
  }

  write(ifName: string, timeMs: number, frame: Uint8Array, comment?: string): void {
    if (this.fd < 0) return;
    writeSync(this.fd, epb(this.iface(ifName), timeMs, frame, comment));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** One pcapng file per port and direction under `dir` (created if missing). */
export class PcapDir {
  private readonly files = new Map<string, PcapngWriter>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  write(port: string, direction: 'in' | 'out', timeMs: number, frame: Uint8Array, comment: string): void {
    const key = `${port}-${direction}`;
    let w = this.files.get(key);
    if (w === undefined) {
      w = new PcapngWriter(join(this.dir, `${safeName(port)}-${direction}.pcapng`));
      this.files.set(key, w);
    }
    w.write(port, timeMs, frame, comment);
  }

  /** Paths written so far. */
  paths(): string[] {
    return [...this.files.values()].map((w) => w.path);
  }

  close(): void {
    for (const w of this.files.values()) w.close();
  }
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.@-]/g, '_') || 'port';
}

// ------------------------------------------------------------------------------ reading

export interface CapturedFrame {
  /** An Ethernet frame. */
  frame: Uint8Array;
  timeMs: number;
}

/** Ethernet header for frames captured without one (raw IP, Linux cooked). */
function withEthernet(payload: Uint8Array, ethertype: number): Uint8Array {
  const out = new Uint8Array(14 + payload.length);
  out.set([2, 0, 0, 0, 0, 0xee, 2, 0, 0, 0, 0, 0xff], 0);
  out[12] = ethertype >> 8;
  out[13] = ethertype & 255;
  out.set(payload, 14);
  return out;
}

function toEthernet(linktype: number, data: Uint8Array): Uint8Array | null {
  switch (linktype) {
    case 1: return data;
    case 101: case 228: case 12: case 14: // raw IPv4
      return data.length > 0 && data[0]! >> 4 === 4 ? withEthernet(data, 0x0800) : null;
    case 113: // Linux cooked v1: 16-byte header, protocol at 14
      return data.length >= 16 ? withEthernet(data.subarray(16), (data[14]! << 8) | data[15]!) : null;
    case 276: // Linux cooked v2: 20-byte header, protocol at 0
      return data.length >= 20 ? withEthernet(data.subarray(20), (data[0]! << 8) | data[1]!) : null;
    default: return null;
  }
}

/** Frames of a pcap or pcapng capture, as Ethernet frames; throws on an unknown format. */
export function readCapture(buf: Uint8Array): CapturedFrame[] {
  if (buf.length < 24) throw new Error('not a pcap/pcapng file (too short)');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const m = dv.getUint32(0, true);
  if (m === 0x0a0d0d0a) return readPcapng(buf, dv);
  const le = m === 0xa1b2c3d4 || m === 0xa1b23c4d;
  const be = m === 0xd4c3b2a1 || m === 0x4d3cb2a1;
  if (!le && !be) throw new Error('not a pcap/pcapng file (unknown magic number)');
  const nano = m === 0xa1b23c4d || m === 0x4d3cb2a1;
  const linktype = dv.getUint32(20, le) & 0xffff;
  const out: CapturedFrame[] = [];
  let o = 24;
  while (o + 16 <= buf.length) {
    const sec = dv.getUint32(o, le);
    const frac = dv.getUint32(o + 4, le);
    const incl = dv.getUint32(o + 8, le);
    if (o + 16 + incl > buf.length) break;
    const f = toEthernet(linktype, buf.slice(o + 16, o + 16 + incl));
    if (f) out.push({ frame: f, timeMs: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3) });
    o += 16 + incl;
  }
  return out;
}

function readPcapng(buf: Uint8Array, dv0: DataView): CapturedFrame[] {
  const out: CapturedFrame[] = [];
  let le = true;
  let links: { type: number; tsDiv: number }[] = [];
  let o = 0;
  while (o + 12 <= buf.length) {
    let type = dv0.getUint32(o, le);
    if (dv0.getUint32(o, true) === 0x0a0d0d0a) {
      type = 0x0a0d0d0a;
      le = dv0.getUint32(o + 8, true) === 0x1a2b3c4d;
      links = [];
    }
    const len = dv0.getUint32(o + 4, le);
    if (len < 12 || o + len > buf.length) break;
    const body = o + 8;
    if (type === 1) {
      let tsDiv = 1000; // µs → ms
      // Options: find if_tsresol (9).
      let p = body + 8;
      while (p + 4 <= o + len - 4) {
        const code = dv0.getUint16(p, le);
        const olen = dv0.getUint16(p + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = buf[p + 4]!;
          const perSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
          tsDiv = perSec / 1000;
        }
        p += 4 + pad4(olen);
      }
      links.push({ type: dv0.getUint16(body, le), tsDiv });
    } else if (type === 6 || type === 2) {
      const ifId = type === 6 ? dv0.getUint32(body, le) : dv0.getUint16(body, le);
      const link = links[ifId];
      const hi = dv0.getUint32(body + 4, le);
      const lo = dv0.getUint32(body + 8, le);
      const cap = dv0.getUint32(body + 12, le);
      const data = buf.slice(body + 20, body + 20 + cap);
      if (link) {
        const f = toEthernet(link.type, data);
        if (f) out.push({ frame: f, timeMs: (hi * 2 ** 32 + lo) / link.tsDiv });
      }
    } else if (type === 3) {
      const link = links[0];
      const orig = dv0.getUint32(body, le);
      const cap = Math.min(orig, len - 16);
      if (link) {
        const f = toEthernet(link.type, buf.slice(body + 4, body + 4 + cap));
        if (f) out.push({ frame: f, timeMs: 0 });
      }
    }
    o += len;
  }
  return out;
}

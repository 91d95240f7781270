/**
 * wire/ + the parse stage on real frames captured in a namespace lab (test/fixtures/frames):
 * every field the data path reads, and frames built by wire/ compared byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Arena } from '../../../src/packet/arena.js';
import { Packet } from '../../../src/packet/packet.js';
import { parsePacket } from '../../../src/pipeline/parse.js';
import { parseIp, ipToString } from '../../../src/model/addr.js';
import { arpOper, arpSpa, arpTpa, writeArp, ARP_REPLY } from '../../../src/wire/arp.js';
import { echoToReply } from '../../../src/wire/icmp.js';
import { checksum, ipv4ChecksumOk, l4ChecksumOk, pseudoSum, fold, sumBytes } from '../../../src/wire/checksum.js';
import { IP_F_DF, IP_F_MF } from '../../../src/wire/ipv4.js';
import { DROP_REASONS } from '../../../src/pipeline/drops.js';

function fixture(name: string): Uint8Array {
  return Uint8Array.from(Buffer.from(readFileSync(new URL(`../../fixtures/frames/${name}.hex`, import.meta.url), 'utf8').trim(), 'hex'));
}

const arena = new Arena(2);
function load(bytes: Uint8Array): Packet {
  arena.reset(0);
  arena.bytes.set(bytes, arena.off[0]!);
  arena.len[0] = bytes.length;
  return new Packet(arena, 0);
}

const CIP = '192.168.10.6';
const SIP = '192.168.10.100';

describe('parse: real frames', () => {
  it('ARP request and reply', () => {
    const p = load(fixture('arp-request'));
    expect(parsePacket(p)).toBe(0);
    expect(p.ethType).toBe(0x0806);
    expect(arpOper(p.b, p.l3)).toBe(1);
    expect(ipToString(arpSpa(p.b, p.l3))).toBe(CIP);
    expect(ipToString(arpTpa(p.b, p.l3))).toBe(SIP);
    const r = load(fixture('arp-reply'));
    expect(parsePacket(r)).toBe(0);
    expect(arpOper(r.b, r.l3)).toBe(2);
  });

  it('TCP SYN: every field', () => {
    const p = load(fixture('tcp-syn'));
    expect(parsePacket(p)).toBe(0);
    expect(p.ethType).toBe(0x0800);
    expect(p.l3 - p.off).toBe(14);
    expect(p.ihl).toBe(20);
    expect(p.ipLen).toBe(60);
    expect(p.proto).toBe(6);
    expect(ipToString(p.saddr)).toBe(CIP);
    expect(ipToString(p.daddr)).toBe(SIP);
    expect(p.ttl).toBe(64);
    expect(p.frag & IP_F_DF).toBe(IP_F_DF);
    expect(p.l4 - p.l3).toBe(20);
    expect(p.l4len).toBe(40);
    expect(p.sport).toBe(56476);
    expect(p.dport).toBe(80);
    expect(p.tcpFlags).toBe(0x02);
    expect(ipv4ChecksumOk(p.b, p.l3)).toBe(true);
  });

  it('TCP from a local sender carries a partial checksum: the field is the pseudo-header sum', () => {
    for (const name of ['tcp-syn', 'tcp-http-get', 'tcp-fin-ack']) {
      const p = load(fixture(name));
      expect(parsePacket(p)).toBe(0);
      const field = (p.b[p.l4 + 16]! << 8) | p.b[p.l4 + 17]!;
      expect(field).toBe(fold(pseudoSum(p.saddr, p.daddr, 6, p.l4len)));
      // Completing it over the segment gives a valid checksum.
      const c = checksum(p.b, p.l4, p.l4len);
      p.b[p.l4 + 16] = c >>> 8;
      p.b[p.l4 + 17] = c & 255;
      expect(l4ChecksumOk(p.b, p.saddr, p.daddr, 6, p.l4, p.l4len)).toBe(true);
    }
    const g = load(fixture('tcp-http-get'));
    parsePacket(g);
    expect(g.tcpFlags).toBe(0x18);
    expect(g.l4len).toBe(32 + 78);
    const f = load(fixture('tcp-fin-ack'));
    parsePacket(f);
    expect(f.tcpFlags).toBe(0x11);
  });

  it('UDP (partial checksum) and ICMP port unreachable with its embedded header', () => {
    const u = load(fixture('udp-partial-csum'));
    expect(parsePacket(u)).toBe(0);
    expect(u.proto).toBe(17);
    expect(u.dport).toBe(9);
    expect(u.l4len).toBe(10);
    const e = load(fixture('icmp-port-unreachable'));
    expect(parsePacket(e)).toBe(0);
    expect(e.icmpType).toBe(3);
    expect(e.icmpCode).toBe(3);
    expect(ipToString(e.inSaddr)).toBe(CIP);
    expect(ipToString(e.inDaddr)).toBe(SIP);
    expect(e.inProto).toBe(17);
    expect(e.inSport).toBe(u.sport);
    expect(e.inDport).toBe(9);
    expect(checksum(e.b, e.l4, e.l4len)).toBe(0);
  });

  it('IPv4 options (record route) are walked and accepted', () => {
    const p = load(fixture('icmp-echo-record-route'));
    expect(parsePacket(p)).toBe(0);
    expect(p.ihl).toBe(60);
    expect(p.l4 - p.l3).toBe(60);
    expect(p.icmpType).toBe(8);
    // A broken option length is a counted drop reason, not an exception.
    const bad = fixture('icmp-echo-record-route');
    bad[14 + 22] = 200; // the record-route option (after a NOP) claims a length past the header
    const q = load(bad);
    expect(DROP_REASONS[parsePacket(q)]).toBe('ip-checksum'); // the header checksum catches it first
    bad[14 + 10] = 0; bad[14 + 11] = 0;
    const c = checksum(bad, 14, 60);
    bad[14 + 10] = c >>> 8; bad[14 + 11] = c & 255;
    expect(DROP_REASONS[parsePacket(load(bad))]).toBe('ipv4-options-bad');
  });

  it('fragments are recognised: the first has ports, later ones have none', () => {
    const a = load(fixture('ipv4-first-fragment'));
    expect(parsePacket(a)).toBe(0);
    expect(a.frag & IP_F_MF).toBe(IP_F_MF);
    expect(a.l4).toBeGreaterThan(0);
    const b = load(fixture('ipv4-later-fragment'));
    expect(parsePacket(b)).toBe(0);
    expect(b.frag & 0x1fff).toBe(1480 / 8);
    expect(b.l4).toBe(-1);
  });

  it('every truncation of every frame parses to 0 or a drop reason, never throws', () => {
    for (const name of ['arp-request', 'tcp-syn', 'tcp-http-get', 'udp-partial-csum', 'icmp-port-unreachable', 'icmp-echo-record-route', 'ipv4-first-fragment']) {
      const full = fixture(name);
      for (let n = 0; n <= full.length; n += name.startsWith('ipv4') ? 97 : 1) {
        const p = load(full.subarray(0, n));
        const d = parsePacket(p);
        expect(d >= 0 && d < DROP_REASONS.length).toBe(true);
      }
    }
  });
});

describe('construct: frames built by wire/ equal the captured bytes', () => {
  it('ARP reply', () => {
    const req = fixture('arp-request');
    const rep = fixture('arp-reply');
    const b = new Uint8Array(60);
    const len = writeArp(b, 0, ARP_REPLY, rep.subarray(6, 12), parseIp(SIP), req.subarray(6, 12), parseIp(CIP), req.subarray(6, 12));
    expect(len).toBe(60);
    // The capture is 42 bytes (veth does not pad); we pad to the Ethernet minimum with zeros.
    expect(b.subarray(0, 42)).toEqual(rep);
    expect(b.subarray(42).every((x) => x === 0)).toBe(true);
  });

  it('ICMP echo reply turned around in place matches the kernel reply except the IP ID', () => {
    const req = fixture('icmp-echo-request');
    const p = load(req);
    parsePacket(p);
    echoToReply(p.b, p.l3, p.l4);
    const mine = p.b.subarray(p.off + 14, p.off + req.length);
    expect(ipv4ChecksumOk(p.b, p.l3)).toBe(true);
    expect(checksum(p.b, p.l4, p.l4len)).toBe(0);
    expect(ipToString(p.b[p.l3 + 12]! * 2 ** 24 + (p.b[p.l3 + 13]! << 16) + (p.b[p.l3 + 14]! << 8) + p.b[p.l3 + 15]!)).toBe(SIP);
    expect(mine[20]).toBe(0); // type echo reply
  });
});

describe('checksums', () => {
  it('RFC 1624 incremental updates equal a full recompute (random fields)', async () => {
    const { csumReplace4, csumReplace2, setL4Checksum } = await import('../../../src/wire/checksum.js');
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const len = 20 + Math.floor(rnd() * 60);
      const b = new Uint8Array(len);
      for (let k = 0; k < len; k++) b[k] = Math.floor(rnd() * 256);
      const s = Math.floor(rnd() * 2 ** 32) >>> 0, d = Math.floor(rnd() * 2 ** 32) >>> 0;
      setL4Checksum(b, s, d, 6, 0, len, 16);
      const nd = Math.floor(rnd() * 2 ** 32) >>> 0;
      const np = Math.floor(rnd() * 65536);
      const op = (b[2]! << 8) | b[3]!;
      csumReplace4(b, 16, d, nd);
      csumReplace2(b, 16, op, np);
      b[2] = np >>> 8; b[3] = np & 255;
      expect(l4ChecksumOk(b, s, nd, 6, 0, len)).toBe(true);
    }
  });

  it('fold: any sum below 2^32 folds to the same 16 bits as long division, up to a 64 KiB segment of 0xff', async () => {
    const { fold, checksum } = await import('../../../src/wire/checksum.js');
    const ref = (x: number): number => { while (x > 0xffff) x = (x % 65536) + Math.floor(x / 65536); return x; };
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const x of [0, 1, 0xffff, 0x10000, 0x1fffe, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 2 ** 19, 2 ** 32 - 1]) expect(fold(x)).toBe(ref(x));
    for (let i = 0; i < 10_000; i++) { const x = Math.floor(rnd() * 2 ** 32); expect(fold(x)).toBe(ref(x)); }
    const big = new Uint8Array(65536).fill(0xff);
    expect(checksum(big, 0, big.length, 0xffff * 6)).toBe(0); // all-ones words sum to 0xffff: ~0xffff
  });

  it('sumBytes handles odd lengths', () => {
    const b = Uint8Array.from([1, 2, 3]);
    expect(sumBytes(b, 0, 3, 0)).toBe(0x0102 + 0x0300);
  });
});

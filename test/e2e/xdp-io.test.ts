/**
 * End to end: XdpPort (AF_XDP socket + raw-eBPF redirect program, native-bindings/src/xdp.cc)
 * against the real kernel. Two namespaces joined by a veth pair (va in A, vb in B); the XdpPort
 * sits on vb, A's kernel stack is the peer. Needs root, bpf(2) and a built addon.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Arena, META_CSUM_OFFSET, META_CSUM_START, META_FLAGS, META_WORDS, VNET_F_NEEDS_CSUM } from '../../src/packet/arena.js';
import type { NativeError } from '../../src/port/native.js';
import { XdpPort } from '../../src/port/xdp-port.js';
import { PacketSocketPort } from '../../src/port/packet-socket-port.js';

const isRoot = process.getuid?.() === 0;
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const nsA = `uvst-xdp-${tag}-a`;
const nsB = `uvst-xdp-${tag}-b`;

function sh(...args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(ms: number, step: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (step()) return true;
    await sleep(2);
  }
  return step();
}

const ipBytes = (ip: string) => Uint8Array.from(ip.split('.').map(Number));
const macBytes = (s: string) => Uint8Array.from(s.trim().split(':').map((h) => parseInt(h, 16)));
function sum16(b: Uint8Array, start: number, len: number, s = 0): number {
  for (let i = 0; i < len; i += 2) s += (b[start + i]! << 8) | (i + 1 < len ? b[start + i + 1]! : 0);
  return s;
}
const fold = (s: number) => {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
};

/** Ethernet + IPv4 + UDP; `partial` leaves only the pseudo-header sum in the UDP checksum. */
function udpFrame(dst: Uint8Array, src: Uint8Array, sip: string, dip: string, sport: number, dport: number, payload: Uint8Array, partial: boolean): Uint8Array {
  const f = new Uint8Array(14 + 28 + payload.length);
  const v = new DataView(f.buffer);
  f.set(dst, 0);
  f.set(src, 6);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 28 + payload.length);
  f[22] = 64;
  f[23] = 17;
  f.set(ipBytes(sip), 26);
  f.set(ipBytes(dip), 30);
  v.setUint16(24, ~fold(sum16(f, 14, 20)) & 0xffff);
  v.setUint16(34, sport);
  v.setUint16(36, dport);
  v.setUint16(38, 8 + payload.length);
  f.set(payload, 42);
  const pseudo = sum16(f, 26, 8) + 17 + 8 + payload.length;
  v.setUint16(40, partial ? fold(pseudo) : ~fold(sum16(f, 34, 8 + payload.length, pseudo)) & 0xffff || 0xffff);
  return f;
}

describe.skipIf(!isRoot)('AF_XDP port (root, network namespaces)', () => {
  let port: XdpPort | null = null;
  let macA: Uint8Array;

  beforeAll(() => {
    sh('ip', 'netns', 'add', nsA);
    sh('ip', 'netns', 'add', nsB);
    for (const ns of [nsA, nsB]) {
      sh('ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    sh('ip', 'link', 'add', 'va', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'vb', 'netns', nsB);
    sh('ip', '-n', nsA, 'addr', 'add', '10.78.0.1/24', 'dev', 'va');
    sh('ip', '-n', nsB, 'addr', 'add', '10.78.0.2/24', 'dev', 'vb');
    sh('ip', '-n', nsA, 'link', 'set', 'va', 'up');
    sh('ip', '-n', nsB, 'link', 'set', 'vb', 'up');
    macA = macBytes(sh('ip', 'netns', 'exec', nsA, 'cat', '/sys/class/net/va/address'));
  });

  afterAll(() => {
    try {
      port?.close();
    } catch {
      /* closed */
    }
    for (const ns of [nsA, nsB]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        /* never created */
      }
    }
  });

  it('attaches the filter program to a veth in native mode, copy-mode socket', () => {
    port = XdpPort.open('vb', { netns: nsB });
    expect(port.attach).toBe('drv');
    expect(port.zeroCopy).toBe(false);
    expect(port.mtu).toBe(1500);
    expect(sh('ip', '-n', nsB, 'link', 'show', 'vb')).toMatch(/prog\/xdp/);
  });

  const frames: Uint8Array[] = [];
  const metas: number[][] = [];
  const udpTo = (dport: number) => frames.findIndex((f) => f.length >= 42 && f[23] === 17 && ((f[36]! << 8) | f[37]!) === dport);
  const macStr = (m: Uint8Array) => [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');

  it('passes the host its own traffic and ARP, and gives uvs a copy of the ARP', async () => {
    const p = port!;
    const arena = new Arena(64);
    const slots = Uint32Array.from({ length: 32 }, (_, i) => i);
    p.onReadable(() => {
      for (let r = 0; r < 16; r++) {
        const n = p.recv(arena, slots, slots.length);
        for (let i = 0; i < n; i++) {
          const s = slots[i]!;
          frames.push(arena.bytes.slice(arena.off[s]!, arena.off[s]! + arena.len[s]!));
          metas.push([...arena.meta.subarray(s * META_WORDS, s * META_WORDS + META_WORDS)]);
        }
        if (n < slots.length) break;
      }
    });
    p.setAddrs([], [], [0x0a4e0002]);
    expect(p.filterEntries).toBe(1);
    // A resolves 10.78.0.2 by ARP and pings it: B's kernel answers both (XDP_PASS) ...
    sh('ip', '-n', nsA, 'neigh', 'flush', 'dev', 'va');
    expect(sh('ip', 'netns', 'exec', nsA, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '10.78.0.2')).toMatch(/2 received/);
    // ... uvs saw the ARP request through its ARP socket, and none of the ICMP.
    expect(await until(2000, () => frames.some((f) => f[12] === 0x08 && f[13] === 0x06))).toBe(true);
    expect(frames.some((f) => f[12] === 0x08 && f[13] === 0x00)).toBe(false);
    expect(p.rxErrors).toBe(0);
  });

  it('gives uvs a copy of the ICMP errors that quote a tunnel packet (IPIP, UDP, GRE) — routers\' errors about its TUN packets — and of TCP to its probe ports, nothing else', async () => {
    const p = port!;
    const tx = PacketSocketPort.open('va', { netns: nsA });
    try {
      const arena = new Arena(16);
      /** ICMP type/code from A to B's host address quoting a packet B sent with protocol `quoted`. */
      const icmpErr = (type: number, quoted: number, mark: number): Uint8Array => {
        const q = new Uint8Array(48);
        q[0] = 0x45; q[3] = 48; q[8] = 64; q[9] = quoted;
        q.set(ipBytes('10.78.0.2'), 12); q.set(ipBytes('10.78.0.77'), 16);
        q[47] = mark;
        const f = new Uint8Array(14 + 28 + q.length);
        const v = new DataView(f.buffer);
        f.set(p.mac, 0); f.set(macA, 6); v.setUint16(12, 0x0800);
        f[14] = 0x45; v.setUint16(16, 28 + q.length); f[22] = 64; f[23] = 1;
        f.set(ipBytes('10.78.0.1'), 26); f.set(ipBytes('10.78.0.2'), 30);
        v.setUint16(24, ~fold(sum16(f, 14, 20)) & 0xffff);
        f[34] = type; f[35] = type === 3 ? 4 : 0; v.setUint16(40, type === 3 ? 1300 : 0);
        f.set(q, 42);
        v.setUint16(36, ~fold(sum16(f, 34, 8 + q.length)) & 0xffff);
        return f;
      };
      const cases: [number, number, boolean][] = [[3, 4, true], [11, 17, true], [3, 47, true], [4, 4, true], [3, 6, false], [12, 4, false], [8, 4, false]];
      cases.forEach(([type, quoted], i) => {
        const f = icmpErr(type, quoted, 0xa0 + i);
        arena.reset(i);
        arena.bytes.set(f, arena.off[i]!);
        arena.len[i] = f.length;
      });
      // TCP and UDP to the health-check probe ports 61000-61255 (and not just below or above them).
      const tcpCases: [number, boolean, number][] = [[61000, true, 6], [61255, true, 6], [60999, false, 6], [61256, false, 6], [61001, true, 17], [53, false, 17]];
      tcpCases.forEach(([dport, , proto], j) => {
        const i = cases.length + j;
        const f = new Uint8Array(14 + 20 + 20 + 1);
        const v = new DataView(f.buffer);
        f.set(p.mac, 0); f.set(macA, 6); v.setUint16(12, 0x0800);
        f[14] = 0x45; v.setUint16(16, 41); f[22] = 64; f[23] = proto;
        f.set(ipBytes('10.78.0.1'), 26); f.set(ipBytes('10.78.0.2'), 30);
        v.setUint16(24, ~fold(sum16(f, 14, 20)) & 0xffff);
        v.setUint16(34, 80); v.setUint16(36, dport); f[46] = 0x50; f[47] = 0x12;
        f[54] = 0xb0 + j;
        arena.reset(i);
        arena.bytes.set(f, arena.off[i]!);
        arena.len[i] = f.length;
      });
      const total = cases.length + tcpCases.length;
      expect(tx.send(arena, Uint32Array.from({ length: total }, (_, i) => i), total)).toBe(total);
      const seenTcp = (j: number) => frames.some((f) => f.length === 55 && f[54] === 0xb0 + j);
      expect(await until(3000, () => tcpCases.every(([, want], j) => !want || seenTcp(j)))).toBe(true);
      const seen = (i: number) => frames.some((f) => f.length === 14 + 28 + 48 && f[23] === 1 && f[14 + 28 + 47] === 0xa0 + i);
      expect(await until(3000, () => cases.every(([, , want], i) => !want || seen(i)))).toBe(true);
      await sleep(200);
      cases.forEach(([, , want], i) => expect(seen(i), `case ${i}`).toBe(want));
      tcpCases.forEach(([dport, want, proto], j) => expect(seenTcp(j), `${proto === 6 ? 'TCP' : 'UDP'} to ${dport}`).toBe(want));
    } finally {
      tx.close();
    }
  });

  it('redirects frames to owned addresses, with a partial UDP checksum reported as NEEDS_CSUM', async () => {
    const p = port!;
    p.setAddrs([0x0a4e0063 /* 10.78.0.99 */], [], [0x0a4e0002]);
    expect(p.filterEntries).toBe(2);
    sh('ip', '-n', nsA, 'neigh', 'replace', '10.78.0.99', 'lladdr', macStr(p.ifMac), 'dev', 'va');
    sh('ip', 'netns', 'exec', nsA, 'bash', '-c', `printf 'hello xdp' > /dev/udp/10.78.0.99/5599`);
    expect(await until(3000, () => udpTo(5599) >= 0)).toBe(true);
    const i = udpTo(5599);
    expect(Buffer.from(frames[i]!.subarray(42)).toString()).toBe('hello xdp');
    // veth hands CHECKSUM_PARTIAL frames to XDP as they are: the port says so like AF_PACKET would.
    expect(metas[i]![META_FLAGS]).toBe(VNET_F_NEEDS_CSUM);
    expect(metas[i]![META_CSUM_START]).toBe(34);
    expect(metas[i]![META_CSUM_OFFSET]).toBe(6);
    expect(p.stats()!.rxPartialCsum).toBeGreaterThanOrEqual(1);
    expect(p.rxErrors).toBe(0);
  });

  it('redirects frames from a NAT real server unless they are for the host itself', async () => {
    const p = port!;
    p.setAddrs([], [0x0a4e0001 /* A = "real server" */], [0x0a4e0002]);
    sh('ip', '-n', nsA, 'neigh', 'replace', '10.78.0.50', 'lladdr', macStr(p.ifMac), 'dev', 'va');
    sh('ip', 'netns', 'exec', nsA, 'bash', '-c', `printf 'to client' > /dev/udp/10.78.0.50/5601; printf 'to host' > /dev/udp/10.78.0.2/5602`);
    expect(await until(3000, () => udpTo(5601) >= 0)).toBe(true);
    await sleep(200);
    expect(udpTo(5602)).toBe(-1);
    // With an empty map nothing is redirected any more (10.78.0.99 was owned before).
    p.setAddrs([], [], []);
    expect(p.filterEntries).toBe(0);
    sh('ip', 'netns', 'exec', nsA, 'bash', '-c', `printf 'again' > /dev/udp/10.78.0.99/5603; printf 'again' > /dev/udp/10.78.0.50/5604`);
    await sleep(200);
    expect(udpTo(5603)).toBe(-1);
    expect(udpTo(5604)).toBe(-1);
  });

  it('sends a batch the peer kernel accepts, completing NEEDS_CSUM checksums in software', async () => {
    const p = port!;
    // A UDP listener in A counts what its kernel delivers (bad checksums would be dropped).
    const N = 300;
    const child = spawn('ip', ['netns', 'exec', nsA, process.execPath, '-e', `
      const s = require('node:dgram').createSocket('udp4'); let n = 0, partial = 0;
      s.on('message', (m) => { n++; if (m.toString().startsWith('partial')) partial++; });
      s.bind(5600, '10.78.0.1', () => process.stdout.write('ready\\n'));
      setTimeout(() => { process.stdout.write(JSON.stringify({ n, partial }) + '\\n'); process.exit(0); }, 2500);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    expect(await until(5000, () => out.includes('ready'))).toBe(true);

    const arena = new Arena(N + 8);
    const slots = Uint32Array.from({ length: N }, (_, i) => i);
    for (let i = 0; i < N; i++) {
      const partial = i % 3 === 0;
      const payload = new TextEncoder().encode(`${partial ? 'partial' : 'full'} ${i} ${'x'.repeat(i % 50)}`);
      const f = udpFrame(macA, p.mac, '10.78.0.2', '10.78.0.1', 7000 + (i % 16), 5600, payload, partial);
      arena.reset(i);
      arena.bytes.set(f, arena.off[i]!);
      arena.len[i] = f.length;
      if (partial) {
        arena.meta[i * META_WORDS + META_FLAGS] = VNET_F_NEEDS_CSUM;
        arena.meta[i * META_WORDS + META_CSUM_START] = 34;
        arena.meta[i * META_WORDS + META_CSUM_OFFSET] = 6;
      }
    }
    // Paced in batches of 32 (the listener's socket buffer, not the port, is the small queue here).
    let sent = 0;
    for (let k = 0; k < N; k += 32) {
      sent += p.send(arena, slots.subarray(k), Math.min(32, N - k));
      await sleep(5);
    }
    expect(sent).toBe(N);
    expect(p.txDropped).toBe(0);
    expect(await until(5000, () => out.includes('"n"'))).toBe(true);
    const res = JSON.parse(out.split('\n').find((l) => l.includes('"n"'))!) as { n: number; partial: number };
    expect(res.n).toBe(N);
    expect(res.partial).toBe(N / 3);
    expect(p.stats()!.txCsumDone).toBe(N / 3);
  });

  it('does not send frames longer than the MTU (GSO frames have no AF_XDP path)', () => {
    const p = port!;
    const arena = new Arena(2);
    const f = udpFrame(macA, p.mac, '10.78.0.2', '10.78.0.1', 7000, 5600, new Uint8Array(3000), false);
    arena.bytes.set(f, arena.off[0]!);
    arena.len[0] = f.length;
    expect(p.send(arena, Uint32Array.of(0), 1)).toBe(0);
    expect(p.stats()!.txTooBig).toBe(1);
  });

  it('detaches the program on close', () => {
    port!.close();
    port = null;
    expect(sh('ip', '-n', nsB, 'link', 'show', 'vb')).not.toMatch(/prog\/xdp/);
  });

  it('throws a NativeError naming the interface when there is no such interface', () => {
    let err: NativeError | null = null;
    try {
      XdpPort.open('nosuchif0', { netns: nsB }).close();
    } catch (e) {
      err = e as NativeError;
    }
    expect(err?.code).toBe('ENODEV');
    expect(err?.message).toMatch(/nosuchif0/);
  });
});

/**
 * End to end: the uvs_io addon and the ports on top of it against the real kernel, in network
 * namespaces this file creates and removes. Two namespaces joined by a veth pair (va in A, vb in
 * B); a PacketSocketPort on each end; a TAP and a TUN inside A. Needs root and a built addon
 * (`npm run build:native`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Arena,
  META_CSUM_OFFSET,
  META_CSUM_START,
  META_FLAGS,
  META_GSO_SIZE,
  META_GSO_TYPE,
  META_WORDS,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
} from '../../src/packet/arena.js';
import { uvsIo, type NativeError } from '../../src/port/native.js';
import { PacketSocketPort } from '../../src/port/packet-socket-port.js';
import { TapPort } from '../../src/port/tap-port.js';
import { TunDevice } from '../../src/port/tun-device.js';

const isRoot = process.getuid?.() === 0;
const IFF_UP = 1;
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const nsA = `uvst-io-${tag}-a`;
const nsB = `uvst-io-${tag}-b`;

function sh(...args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}
/** Sends one UDP datagram from inside a namespace with the kernel's own stack (bash /dev/udp). */
function kernelUdp(ns: string, ip: string, port: number, text: string): void {
  sh('ip', 'netns', 'exec', ns, 'bash', '-c', `printf '%s' '${text}' > /dev/udp/${ip}/${port}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `step` until it returns true or `ms` pass; bounded in both time and iterations. */
async function until(ms: number, step: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (step()) return true;
    await sleep(2);
  }
  return step();
}

// ---- frame helpers (test-local so this file depends only on the port layer) ----

const MAC_X = Uint8Array.of(0x02, 0xaa, 0, 0, 0, 0x01); // nobody's MAC: frames arrive as OTHERHOST
const ipBytes = (ip: string) => Uint8Array.from(ip.split('.').map(Number));

function ipChecksum(b: Uint8Array, start: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[start + i]! << 8) | (b[start + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** IPv4/UDP packet (UDP checksum 0 = none). */
function ipUdp(src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(4, 0x1234);
  p[8] = 64;
  p[9] = 17;
  p.set(ipBytes(src), 12);
  p.set(ipBytes(dst), 16);
  v.setUint16(10, ipChecksum(p, 0, 20));
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

function ether(dst: Uint8Array, src: Uint8Array, type: number, body: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + body.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(body, 14);
  return f;
}

function arp(op: 1 | 2, sha: Uint8Array, spa: string, tha: Uint8Array, tpa: string): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 8, 0, 6, 4, 0, op]);
  a.set(sha, 8);
  a.set(ipBytes(spa), 14);
  a.set(tha, 18);
  a.set(ipBytes(tpa), 24);
  return a;
}

const etherType = (f: Uint8Array) => (f[12]! << 8) | f[13]!;
const udpDport = (f: Uint8Array, l3 = 14) => (f[l3 + 9] === 17 ? (f[l3 + 22]! << 8) | f[l3 + 23]! : -1);
const hexMac = (m: Uint8Array) => [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');

function put(arena: Arena, slot: number, frame: Uint8Array): void {
  arena.reset(slot);
  arena.bytes.set(frame, arena.off[slot]!);
  arena.len[slot] = frame.length;
}
const frameAt = (arena: Arena, slot: number) => arena.bytes.slice(arena.off[slot]!, arena.off[slot]! + arena.len[slot]!);
const metaAt = (arena: Arena, slot: number) => [...arena.meta.subarray(slot * META_WORDS, slot * META_WORDS + META_WORDS)];

/** Receives everything ready on `port` into fresh slots; returns frames, metas and batch sizes. */
function drain(
  port: { recv(a: Arena, s: Uint32Array, n: number): number },
  arena: Arena,
  slots: Uint32Array,
  out: { frames: Uint8Array[]; metas: number[][]; batches: number[] },
): void {
  for (let rounds = 0; rounds < 64; rounds++) {
    for (const s of slots) arena.reset(s);
    const n = port.recv(arena, slots, slots.length);
    if (n === 0) return;
    out.batches.push(n);
    for (let i = 0; i < n; i++) {
      out.frames.push(frameAt(arena, slots[i]!));
      out.metas.push(metaAt(arena, slots[i]!));
    }
  }
}
const collected = () => ({ frames: [] as Uint8Array[], metas: [] as number[][], batches: [] as number[] });

describe.skipIf(!isRoot)('native packet I/O (root, network namespaces)', () => {
  const opened: { close(): void }[] = [];
  const track = <T extends { close(): void }>(p: T): T => (opened.push(p), p);

  beforeAll(() => {
    sh('ip', 'netns', 'add', nsA);
    sh('ip', 'netns', 'add', nsB);
    for (const ns of [nsA, nsB]) {
      // No IPv6 chatter (router/neighbour solicitations) on the links under test.
      sh('ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    sh('ip', 'link', 'add', 'va', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'vb', 'netns', nsB);
    sh('ip', '-n', nsA, 'addr', 'add', '10.77.0.1/24', 'dev', 'va');
    sh('ip', '-n', nsB, 'addr', 'add', '10.77.0.2/24', 'dev', 'vb');
    sh('ip', '-n', nsA, 'link', 'set', 'va', 'up');
    sh('ip', '-n', nsB, 'link', 'set', 'vb', 'up');
  });

  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill();
    for (const p of opened) {
      try {
        p.close();
      } catch {
        /* already closed */
      }
    }
    for (const ns of [nsA, nsB]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        /* never created */
      }
    }
  });

  it('moves a batch of UDP frames across a veth intact, in batches, woken by readiness', async () => {
    const a = track(PacketSocketPort.open('va', { netns: nsA }));
    const b = track(PacketSocketPort.open('vb', { netns: nsB }));
    expect(a.mtu).toBe(1500);
    expect(hexMac(a.mac)).toBe(sh('ip', 'netns', 'exec', nsA, 'cat', '/sys/class/net/va/address').trim());
    expect(a.ifindex).toBeGreaterThan(0);

    const arena = new Arena(192);
    const N = 48;
    const sent: Uint8Array[] = [];
    const txSlots = Uint32Array.from({ length: N }, (_, i) => i);
    for (let i = 0; i < N; i++) {
      const payload = new Uint8Array(18 + i * 7).fill(i);
      const f = ether(MAC_X, a.mac, 0x0800, ipUdp('10.77.0.1', '10.77.0.9', 4000 + i, 5555, payload));
      put(arena, i, f);
      sent.push(f);
    }

    const got = collected();
    const rxSlots = Uint32Array.from({ length: 64 }, (_, i) => 64 + i);
    let wakeups = 0;
    b.onReadable(() => {
      wakeups++;
      drain(b, arena, rxSlots, got);
    });
    expect(a.send(arena, txSlots, N)).toBe(N);
    expect(a.txFrames).toBe(N);
    expect(a.txDropped).toBe(0);

    const ours = () => got.frames.filter((f) => udpDport(f) === 5555);
    expect(await until(3000, () => ours().length >= N)).toBe(true);
    expect(wakeups).toBeGreaterThan(0);
    expect(ours()).toEqual(sent); // every byte, in order
    expect(Math.max(...got.batches)).toBeGreaterThan(1); // one native call moved several frames
    for (const m of got.metas) expect(m[META_FLAGS]! & VNET_F_NEEDS_CSUM).toBe(0);

    // The sender never sees its own transmissions (PACKET_IGNORE_OUTGOING).
    await sleep(50);
    const own = collected();
    drain(a, arena, rxSlots, own);
    expect(own.frames.filter((f) => udpDport(f) === 5555)).toEqual([]);
    expect(a.rxErrors + a.txErrors + b.rxErrors + b.txErrors).toBe(0);
    a.close();
    b.close();
    expect(a.recv(arena, rxSlots, 4)).toBe(0); // closed: nothing, no throw
  });

  it('carries partial-checksum metadata: crafted on send, and from the kernel on veth', async () => {
    const a = track(PacketSocketPort.open('va', { netns: nsA }));
    const b = track(PacketSocketPort.open('vb', { netns: nsB }));
    const arena = new Arena(80);
    const rxSlots = Uint32Array.from({ length: 64 }, (_, i) => 16 + i);

    // 1. uvs hands the kernel a frame whose UDP checksum is still to be finished.
    const f = ether(MAC_X, a.mac, 0x0800, ipUdp('10.77.0.1', '10.77.0.9', 4000, 5556, new Uint8Array(32).fill(7)));
    put(arena, 0, f);
    arena.meta.set([VNET_F_NEEDS_CSUM, 0, 0, 0, 34, 6], 0);
    expect(a.send(arena, Uint32Array.of(0), 1)).toBe(1);
    const got = collected();
    expect(await until(3000, () => (drain(b, arena, rxSlots, got), got.frames.some((x) => udpDport(x) === 5556)))).toBe(true);
    const i = got.frames.findIndex((x) => udpDport(x) === 5556);
    expect(got.metas[i]![META_FLAGS]! & VNET_F_NEEDS_CSUM).toBe(VNET_F_NEEDS_CSUM);
    expect(got.metas[i]![META_CSUM_START]).toBe(34);
    expect(got.metas[i]![META_CSUM_OFFSET]).toBe(6);

    // 2. The kernel of A sends UDP to B: veth offloads the checksum, so it arrives PARTIAL.
    kernelUdp(nsA, '10.77.0.2', 7777, 'hello-uvs');
    const k = collected();
    expect(await until(3000, () => (drain(b, arena, rxSlots, k), k.frames.some((x) => udpDport(x) === 7777)))).toBe(true);
    const j = k.frames.findIndex((x) => udpDport(x) === 7777);
    expect(Buffer.from(k.frames[j]!.subarray(42)).toString()).toBe('hello-uvs');
    expect(k.metas[j]![META_FLAGS]! & VNET_F_NEEDS_CSUM).toBe(VNET_F_NEEDS_CSUM);
    expect(k.metas[j]![META_CSUM_START]).toBe(34); // 14 ethernet + 20 IPv4
    expect(k.metas[j]![META_CSUM_OFFSET]).toBe(6); // UDP checksum field
    a.close();
    b.close();
  });

  it('reports TCP super-frames (GSO) from the kernel with their size and type', async () => {
    const b = track(PacketSocketPort.open('vb', { netns: nsB }));
    const arena = new Arena(66);
    const rxSlots = Uint32Array.from({ length: 64 }, (_, i) => 2 + i);
    const server = nsNode(
      nsB,
      `const srv=require('net').createServer(c=>{let n=0;c.on('data',d=>{n+=d.length;if(n>=262144){process.stdout.write('MSG '+n+'\\n');process.exit(0)}})});` +
        `srv.listen(8080,'10.77.0.2',()=>process.stdout.write('READY\\n'));setTimeout(()=>process.exit(2),5000);`,
    );
    await server.ready;
    const client = nsNode(
      nsA,
      `const c=require('net').connect(8080,'10.77.0.2',()=>{c.write(Buffer.alloc(262144,97));process.stdout.write('READY\\n')});` +
        `c.on('error',()=>process.exit(3));setTimeout(()=>process.exit(0),5000);`,
    );
    client.ready.catch(() => {});
    client.result.catch(() => {});
    const got = collected();
    const big = () => got.frames.findIndex((x) => etherType(x) === 0x0800 && x[23] === 6 && x.length > 1514);
    expect(await until(4000, () => (drain(b, arena, rxSlots, got), big() >= 0))).toBe(true);
    expect(await server.result).toBe('262144');
    const m = got.metas[big()]!;
    expect(m[META_GSO_TYPE]! & 0x7f).toBe(VNET_GSO_TCPV4);
    expect(m[META_GSO_SIZE]).toBeGreaterThan(0);
    expect(m[META_GSO_SIZE]).toBeLessThanOrEqual(1460);
    expect(m[META_FLAGS]! & VNET_F_NEEDS_CSUM).toBe(VNET_F_NEEDS_CSUM);
    expect(m[META_CSUM_START]).toBe(34);
    expect(m[META_CSUM_OFFSET]).toBe(16); // TCP checksum field
    b.close();
  });

  it('TAP: uvs has its own MAC, sees the kernel ARP for a neighbour, answers it, gets the UDP', async () => {
    const tap = track(TapPort.create('uvstap0', { netns: nsA }));
    expect(tap.name).toBe('uvstap0');
    expect(tap.mac[0]).toBe(0x02);
    expect(hexMac(tap.mac)).not.toBe(hexMac(tap.kernelMac));
    expect(sh('ip', '-n', nsA, 'link', 'show', 'uvstap0')).toMatch(/[<,]UP[,>]/);
    sh('ip', '-n', nsA, 'addr', 'add', '10.78.0.1/24', 'dev', 'uvstap0');

    const arena = new Arena(40);
    const rxSlots = Uint32Array.from({ length: 32 }, (_, i) => 8 + i);
    kernelUdp(nsA, '10.78.0.2', 9999, 'via-tap');
    const got = collected();
    const isArpFor = (x: Uint8Array, ip: string) =>
      etherType(x) === 0x0806 && x[21] === 1 && x.subarray(38, 42).join('.') === ip;
    expect(await until(3000, () => (drain(tap, arena, rxSlots, got), got.frames.some((x) => isArpFor(x, '10.78.0.2'))))).toBe(
      true,
    );
    const req = got.frames.find((x) => isArpFor(x, '10.78.0.2'))!;
    expect(hexMac(req.subarray(6, 12))).toBe(hexMac(tap.kernelMac));

    // uvs answers as 10.78.0.2 with its own MAC; the kernel then sends the queued datagram to it.
    put(arena, 0, ether(tap.kernelMac, tap.mac, 0x0806, arp(2, tap.mac, '10.78.0.2', tap.kernelMac, '10.78.0.1')));
    expect(tap.send(arena, Uint32Array.of(0), 1)).toBe(1);
    const u = collected();
    expect(await until(3000, () => (drain(tap, arena, rxSlots, u), u.frames.some((x) => udpDport(x) === 9999)))).toBe(true);
    const j = u.frames.findIndex((x) => udpDport(x) === 9999);
    expect(hexMac(u.frames[j]!.subarray(0, 6))).toBe(hexMac(tap.mac));
    expect(Buffer.from(u.frames[j]!.subarray(42)).toString()).toBe('via-tap');
    // TUNSETOFFLOAD(CSUM): the kernel leaves the UDP checksum to us and says so.
    expect(u.metas[j]![META_FLAGS]! & VNET_F_NEEDS_CSUM).toBe(VNET_F_NEEDS_CSUM);
    expect(u.metas[j]![META_CSUM_START]).toBe(34);
    expect(sh('ip', '-n', nsA, 'neigh', 'show', '10.78.0.2')).toContain(hexMac(tap.mac));
    tap.close();
    expect(() => sh('ip', '-n', nsA, 'link', 'show', 'uvstap0')).toThrow(); // gone with its fd
  });

  it('TAP MAC is stable per name and overridable', () => {
    const t1 = track(TapPort.create('uvstap1', { netns: nsA }));
    const mac1 = hexMac(t1.mac);
    t1.close();
    const t2 = track(TapPort.create('uvstap1', { netns: nsA }));
    expect(hexMac(t2.mac)).toBe(mac1);
    t2.close();
    const t3 = track(TapPort.create('uvstap1', { netns: nsA, mac: Uint8Array.of(2, 1, 2, 3, 4, 5) }));
    expect(hexMac(t3.mac)).toBe('02:01:02:03:04:05');
    t3.close();
  });

  it('TUN: the kernel routes IP packets into it, and packets written to it reach local sockets', async () => {
    const tun = track(TunDevice.open('uvstun0', { netns: nsA }));
    expect(tun.mtu).toBeGreaterThan(0);
    sh('ip', '-n', nsA, 'addr', 'add', '10.79.0.1/24', 'dev', 'uvstun0');
    const arena = new Arena(40);
    const rxSlots = Uint32Array.from({ length: 32 }, (_, i) => 8 + i);

    kernelUdp(nsA, '10.79.0.2', 6000, 'into-tun');
    const got = collected();
    const isOurs = (x: Uint8Array) => x[0] === 0x45 && udpDport(x, 0) === 6000;
    expect(await until(3000, () => (drain(tun, arena, rxSlots, got), got.frames.some(isOurs)))).toBe(true);
    const p = got.frames.find(isOurs)!;
    expect(Buffer.from(p.subarray(28)).toString()).toBe('into-tun');
    expect(got.metas.every((m) => m.every((w) => w === 0))).toBe(true);

    // Inject a datagram "from 10.79.0.2" and read it with a kernel socket inside A.
    const listener = nsNode(
      nsA,
      `const s=require('dgram').createSocket('udp4');s.on('message',m=>{process.stdout.write('MSG '+m+'\\n');process.exit(0)});` +
        `s.bind(6001,'10.79.0.1',()=>process.stdout.write('READY\\n'));setTimeout(()=>process.exit(2),4000);`,
    );
    await listener.ready;
    put(arena, 0, ipUdp('10.79.0.2', '10.79.0.1', 5000, 6001, new TextEncoder().encode('from-tun')));
    expect(tun.send(arena, Uint32Array.of(0), 1)).toBe(1);
    expect(await listener.result).toBe('from-tun');
    tun.close();
  });

  it('a frame the kernel refuses is skipped and counted, the rest of the batch still goes', async () => {
    const a = track(PacketSocketPort.open('va', { netns: nsA }));
    const b = track(PacketSocketPort.open('vb', { netns: nsB }));
    const arena = new Arena(40);
    const before = uvsIo().stats().txInvalid;
    put(arena, 0, ether(MAC_X, a.mac, 0x0800, ipUdp('10.77.0.1', '10.77.0.9', 1, 5557, new Uint8Array(100))));
    put(arena, 1, ether(MAC_X, a.mac, 0x0800, ipUdp('10.77.0.1', '10.77.0.9', 2, 5557, new Uint8Array(3000)))); // > MTU, no GSO
    put(arena, 2, ether(MAC_X, a.mac, 0x0800, ipUdp('10.77.0.1', '10.77.0.9', 3, 5557, new Uint8Array(100))));
    expect(a.send(arena, Uint32Array.of(0, 1, 2), 3)).toBe(2);
    expect(a.txDropped).toBe(1);
    expect(a.txErrors).toBe(0);
    expect(uvsIo().stats().txInvalid).toBe(before + 1);
    const got = collected();
    const rxSlots = Uint32Array.from({ length: 32 }, (_, i) => 8 + i);
    const ours = () => got.frames.filter((f) => udpDport(f) === 5557);
    expect(await until(3000, () => (drain(b, arena, rxSlots, got), ours().length >= 2))).toBe(true);
    expect(ours().map((f) => f[35])).toEqual([1, 3]); // UDP source ports 1 and 3
    a.close();
    b.close();
  });

  it('reads interface info and brings links up inside a namespace', () => {
    const io = uvsIo();
    sh('ip', '-n', nsA, 'link', 'add', 'vx', 'type', 'veth', 'peer', 'name', 'vy');
    expect(io.getIfInfo('vx', { netns: nsA }).flags & IFF_UP).toBe(0);
    io.setLinkUp('vx', { netns: nsA });
    const info = io.getIfInfo('vx', { netns: nsA });
    expect(info.flags & IFF_UP).toBe(IFF_UP);
    expect(hexMac(info.mac)).toBe(sh('ip', 'netns', 'exec', nsA, 'cat', '/sys/class/net/vx/address').trim());
    expect(info.ifindex).toBe(Number(sh('ip', 'netns', 'exec', nsA, 'cat', '/sys/class/net/vx/ifindex').trim()));
    expect(info.mtu).toBe(1500);
    expect(() => io.getIfInfo('vx')).toThrow(/"vx".*ENODEV/); // not in this namespace
    sh('ip', '-n', nsA, 'link', 'del', 'vx');
  });

  it('errors name the errno and the interface', () => {
    let err: NativeError | undefined;
    try {
      PacketSocketPort.open('uvsnope0', { netns: nsA });
    } catch (e) {
      err = e as NativeError;
    }
    expect(err?.code).toBe('ENODEV');
    expect(err?.message).toContain('"uvsnope0"');
    expect(err?.message).toContain('ENODEV');
    expect(typeof err?.syscall).toBe('string');

    let nsErr: NativeError | undefined;
    try {
      TapPort.create('uvstap9', { netns: `${nsA}-missing` });
    } catch (e) {
      nsErr = e as NativeError;
    }
    expect(nsErr?.code).toBe('ENOENT');
    expect(nsErr?.message).toContain('uvstap9');
    // The failed attempt left this thread in its own namespace: the veth is still not visible here.
    let leaked: NativeError | undefined;
    try {
      PacketSocketPort.open('va');
    } catch (e) {
      leaked = e as NativeError;
    }
    expect(leaked?.code).toBe('ENODEV');
  });
});

/**
 * Runs a node script inside `ns`. `ready` resolves at its first "READY" line, `result` with the
 * text after its first "MSG " line; both reject if it exits first. The script bounds its own life.
 */
function nsNode(ns: string, code: string): { child: ChildProcess; ready: Promise<void>; result: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let buf = '';
  let onReady: () => void = () => {};
  let onMsg: (s: string) => void = () => {};
  let fail: (e: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    fail = reject;
  });
  const result = new Promise<string>((resolve, reject) => {
    onMsg = resolve;
    const prev = fail;
    fail = (e) => (prev(e), reject(e));
  });
  child.on('exit', (c) => fail(new Error(`node in ${ns} exited with ${c} before answering`)));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    if (buf.includes('READY\n')) onReady();
    const m = /MSG (.*)\n/.exec(buf);
    if (m) onMsg(m[1]!);
  });
  return { child, ready, result };
}
const children: ChildProcess[] = [];

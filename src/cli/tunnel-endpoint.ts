/**
 * `uvs tunnel-endpoint` — a userspace tunnel endpoint for LVS-TUN real servers whose kernel has no
 * ipip (or fou / ip_gre) module: LVS-TUN real servers normally carry the VIP on tunl0 (IPIP), or
 * on a fou port + ipip device (GUE), or on a gre device (GRE).
 *
 *   uvs tunnel-endpoint --iface eth0 --vip 10.0.0.100 [--vip …] [--dev uvstun0] [--gue-port P …] [--gre]
 *
 * What it does, in order (and undoes on SIGINT/SIGTERM or a start-up error):
 *  1. installs its own nftables table `ip uvs_tep_<pid>` that drops, arriving on IF before
 *     routing, IPIP (protocol 4 — numeric: in /etc/protocols the name "ipip" is 94, "ipencap" is
 *     4), UDP to each --gue-port and, with --gre, GRE (47), so the host kernel does not answer
 *     "protocol / port unreachable" (AF_PACKET still sees the frames: packet taps run before netfilter);
 *  2. creates the TUN device DEV (up), assigns each VIP /32 to it, sets rp_filter=0 (all, DEV) and
 *     arp_ignore=1 / arp_announce=2 (all, IF) so the VIP is never answered or announced on IF —
 *     the previous sysctl values are restored on exit;
 *  3. opens an AF_PACKET socket on IF and, one batch at a time, takes every IPv4 packet addressed
 *     to one of IF's addresses that is IPIP, GUE (UDP to a --gue-port: version 0, proto_ctype 4,
 *     its options skipped; a non-zero UDP checksum verified) or GRE (--gre: version 0, protocol
 *     0x0800, checksum verified when present, key and sequence skipped), strips the Ethernet and
 *     outer headers and writes the inner packet into DEV, so the local stack receives it as if
 *     from tunl0.
 *
 * Inner packets whose checksum was left partial by a local sender (virtio-net NEEDS_CSUM) are
 * completed in software first: a TUN device has no way to carry "checksum pending" (a partial
 * outer UDP checksum is simply not verified). Outer ECN CE is propagated to the inner header
 * (RFC 6040 normal mode). Outer fragments are reassembled (src/wire/reassembly.ts: 16 datagrams
 * in progress, 30 s) and the whole packet decapsulated: a kernel IPVS director fragments the
 * outer packet when the inner one has no DF, and so does uvs with sysctl pmtu_disc=0 (by
 * default uvs fragments before encapsulating instead). No allocation per packet.
 *
 * Prints `tunnel-endpoint ready …` when up and its counters when it stops.
 */
import { execFile } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Arena, META_CSUM_OFFSET, META_CSUM_START, META_FLAGS, META_WORDS, VNET_F_NEEDS_CSUM } from '../packet/arena.js';
import { PacketSocketPort } from '../port/packet-socket-port.js';
import { TunDevice } from '../port/tun-device.js';
import { parseIp } from '../model/addr.js';
import { rd16, rd32, wr16 } from '../wire/bytes.js';
import { fold, l4ChecksumOk, setIpv4Checksum, sumBytes } from '../wire/checksum.js';
import { GRE_F_CSUM, GRE_HLEN, greInner, gueInner } from '../wire/tunnel.js';
import { REASM_DUPLICATE, REASM_HELD, Reassembler } from '../wire/reassembly.js';
import { IP_F_MF, IP_OFFMASK, ipFrag } from '../wire/ipv4.js';

const ETH_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const PROTO_IPIP = 4;
const PROTO_UDP = 17;
const PROTO_GRE = 47;

/** Which encapsulations an endpoint takes besides IPIP. */
export interface DecapOptions {
  /** UDP ports carrying GUE (empty: none). */
  guePorts?: readonly number[];
  /** Take GRE. */
  gre?: boolean;
}
const BATCH = 64;

/** What happened to one received frame. */
export const DECAP_OK = 0;
export const DECAP_NOT_IPIP = 1; // not a tunnel packet (IPIP/GUE/GRE) addressed to us: ignored (the kernel handles it)
export const DECAP_FRAGMENT = 2;
export const DECAP_MALFORMED = 3;
export const DECAP_ECN_DROP = 4; // outer CE on a not-ECT inner packet (RFC 6040: drop)
export const DECAP_FRAG_HELD = 5; // an outer fragment kept until its datagram is whole

const NO_OPTS: DecapOptions = {};

export interface DecapCounters {
  decapsulated: number;
  checksummed: number;
  ignored: number;
  /** Outer fragments received, datagrams reassembled from them, datagrams discarded (overlap, expiry, eviction). */
  fragments: number;
  reassembled: number;
  fragDiscarded: number;
  malformed: number;
  ecnDrops: number;
  tunDropped: number;
}

/**
 * Decapsulates the frame in arena slot `slot` in place: on DECAP_OK the slot's off/len describe
 * the inner IPv4 packet (checksum completed when it was partial, meta cleared). `locals` holds
 * the addresses (host-order numbers) the outer destination must match.
 */
export function decapsulate(arena: Arena, slot: number, locals: Uint32Array, reasm?: Reassembler, now = 0, opts: DecapOptions = NO_OPTS): number {
  const b = arena.bytes;
  const start = arena.off[slot]!;
  const len = arena.len[slot]!;
  if (len < ETH_HLEN + 20 || rd16(b, start + 12) !== ETHERTYPE_IPV4) return DECAP_NOT_IPIP;
  const l3 = start + ETH_HLEN;
  if (b[l3]! >>> 4 !== 4) return DECAP_NOT_IPIP;
  const oproto = b[l3 + 9]!;
  if (oproto !== PROTO_IPIP && !(oproto === PROTO_GRE && opts.gre === true) && !(oproto === PROTO_UDP && (opts.guePorts?.length ?? 0) > 0)) return DECAP_NOT_IPIP;
  const daddr = rd32(b, l3 + 16);
  let mine = false;
  for (let i = 0; i < locals.length; i++) if (locals[i] === daddr) mine = true;
  if (!mine) return DECAP_NOT_IPIP;
  const ihl = (b[l3]! & 15) << 2;
  const totLen = rd16(b, l3 + 2);
  if (ihl < 20 || totLen < ihl + 20 || l3 + totLen > start + len) return DECAP_MALFORMED;
  if ((ipFrag(b, l3) & (IP_F_MF | IP_OFFMASK)) !== 0) {
    if (reasm === undefined) return DECAP_FRAGMENT;
    // The whole datagram replaces the fragment in its slot (add() copied the fragment first).
    const n = reasm.add(b, start, now, b, start);
    if (n === REASM_HELD || n === REASM_DUPLICATE) return DECAP_FRAG_HELD;
    if (n < 0) return DECAP_MALFORMED;
    arena.len[slot] = n;
    arena.meta.fill(0, slot * META_WORDS, slot * META_WORDS + META_WORDS);
    return decapsulate(arena, slot, locals, undefined, now, opts);
  }
  const m = slot * META_WORDS;
  const partial = (arena.meta[m + META_FLAGS]! & VNET_F_NEEDS_CSUM) !== 0;
  const pcs = partial ? start + arena.meta[m + META_CSUM_START]! : -1;
  const l4 = l3 + ihl;
  const end = l3 + totLen;
  let in3 = l4;
  if (oproto === PROTO_UDP) {
    // GUE (K fou/gue, the receive side of ipvs_gue_encap): UDP to one of our ports, version 0.
    if (l4 + 12 > end) return DECAP_NOT_IPIP;
    const dport = rd16(b, l4 + 2);
    let ours = false;
    for (const p of opts.guePorts!) if (p === dport) ours = true;
    if (!ours) return DECAP_NOT_IPIP;
    const ulen = rd16(b, l4 + 4);
    if (ulen !== end - l4) return DECAP_MALFORMED;
    // A non-zero checksum is verified, unless a local sender left it to offload (partial at the UDP header).
    if (rd16(b, l4 + 6) !== 0 && pcs !== l4 && !l4ChecksumOk(b, rd32(b, l3 + 12), rd32(b, l3 + 16), PROTO_UDP, l4, ulen)) return DECAP_MALFORMED;
    in3 = gueInner(b, l4 + 8); // a version-0 data message carrying IPv4 only
    if (in3 < 0) return DECAP_MALFORMED;
  } else if (oproto === PROTO_GRE) {
    if (l4 + GRE_HLEN > end) return DECAP_MALFORMED;
    in3 = greInner(b, l4); // version 0, no routing, IPv4 inside; key and sequence skipped
    if (in3 < 0) return DECAP_MALFORMED;
    if ((rd16(b, l4) & GRE_F_CSUM) !== 0 && pcs !== l4 && fold(sumBytes(b, l4, end - l4, 0)) !== 0xffff) return DECAP_MALFORMED;
  }
  if (in3 + 20 > end) return DECAP_MALFORMED;
  const inLen = end - in3;
  if (b[in3]! >>> 4 !== 4 || rd16(b, in3 + 2) > inLen || ((b[in3]! & 15) << 2) < 20) return DECAP_MALFORMED;
  // RFC 6040: outer CE marks an ECN-capable inner packet CE; a not-ECT inner packet is dropped.
  if ((b[l3 + 1]! & 3) === 3 && (b[in3 + 1]! & 3) !== 3) {
    if ((b[in3 + 1]! & 3) === 0) return DECAP_ECN_DROP;
    b[in3 + 1] = b[in3 + 1]! | 3;
    setIpv4Checksum(b, in3);
  }
  if (partial && pcs !== l4) {
    // csum_start counts from the frame start; the field holds the pseudo-header sum.
    const cs = pcs;
    const at = cs + arena.meta[m + META_CSUM_OFFSET]!;
    const iend = in3 + rd16(b, in3 + 2);
    if (cs < in3 || at + 2 > iend) return DECAP_MALFORMED;
    let c = ~fold(sumBytes(b, cs, iend - cs, 0)) & 0xffff;
    if (c === 0 && b[in3 + 9] === PROTO_UDP) c = 0xffff;
    wr16(b, at, c);
  }
  arena.meta.fill(0, m, m + META_WORDS);
  arena.off[slot] = in3;
  arena.len[slot] = rd16(b, in3 + 2);
  return DECAP_OK;
}

function sh(argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => undefined); // a command that exits without reading stdin
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

const USAGE = `usage: uvs tunnel-endpoint --iface IF --vip VIP [--vip VIP …] [--dev NAME] [--gue-port P …] [--gre]

A userspace tunnel endpoint for LVS-TUN real servers whose kernel has no ipip (fou, ip_gre)
module: decapsulates IPIP packets — and GUE to UDP port P (uvsadm --tun-type gue --tun-port P),
and GRE with --gre (--tun-type gre) — arriving on IF into a TUN device NAME (default uvstun0) that
carries the VIP(s). Needs root. Stops on Ctrl-C / SIGTERM and removes everything it installed.
`;

export async function tunnelEndpoint(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        iface: { type: 'string' },
        vip: { type: 'string', multiple: true },
        dev: { type: 'string', default: 'uvstun0' },
        'gue-port': { type: 'string', multiple: true },
        gre: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`uvs tunnel-endpoint: ${(err as Error).message}\n${USAGE}`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const iface = values.iface;
  const vips = values.vip ?? [];
  const dev = values.dev ?? 'uvstun0';
  if (!iface || vips.length === 0) {
    process.stderr.write(`uvs tunnel-endpoint: --iface and at least one --vip are required\n${USAGE}`);
    return 64;
  }
  for (const v of vips) {
    if (parseIp(v) < 0) {
      process.stderr.write(`uvs tunnel-endpoint: --vip ${v} is not an IPv4 address\n`);
      return 64;
    }
  }
  const guePorts: number[] = [];
  for (const g of values['gue-port'] ?? []) {
    if (!/^\d+$/.test(g) || Number(g) < 1 || Number(g) > 65535) {
      process.stderr.write(`uvs tunnel-endpoint: --gue-port ${g} is not a port (1..65535)\n`);
      return 64;
    }
    guePorts.push(Number(g));
  }
  const decapOpts: DecapOptions = { guePorts, gre: values.gre === true };
  if (process.getuid?.() !== 0) {
    process.stderr.write('uvs tunnel-endpoint: needs root (TUN device, AF_PACKET socket, nftables)\n');
    return 77;
  }

  const undo: (() => Promise<unknown> | void)[] = [];
  const cleanup = async () => {
    while (undo.length > 0) {
      try {
        await undo.pop()!();
      } catch (err) {
        process.stderr.write(`uvs tunnel-endpoint: cleanup: ${(err as Error).message}\n`);
      }
    }
  };

  const counters: DecapCounters = {
    decapsulated: 0, checksummed: 0, ignored: 0, fragments: 0, reassembled: 0, fragDiscarded: 0, malformed: 0, ecnDrops: 0, tunDropped: 0,
  };
  const reasm = new Reassembler();
  try {
    const addrJson = JSON.parse(await sh(['ip', '-j', '-4', 'addr', 'show', 'dev', iface])) as { addr_info?: { local: string }[] }[];
    const localList = addrJson.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
    if (localList.length === 0) throw new Error(`${iface} has no IPv4 address: the director's IPIP packets are sent to the RIP on it`);
    const locals = Uint32Array.from(localList.map(parseIp));

    const table = `uvs_tep_${process.pid}`;
    const rules = [`iifname "${iface}" ip protocol 4 counter drop`];
    if (guePorts.length > 0) rules.push(`iifname "${iface}" udp dport { ${guePorts.join(', ')} } counter drop`);
    if (decapOpts.gre) rules.push(`iifname "${iface}" ip protocol 47 counter drop`);
    await sh(['nft', '-f', '-'], `table ip ${table} {\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n}\n`);
    undo.push(() => sh(['nft', 'delete', 'table', 'ip', table]));

    const tun = TunDevice.open(dev);
    undo.push(() => tun.close());
    for (const v of vips) await sh(['ip', 'addr', 'add', `${v}/32`, 'dev', tun.name]);

    const sysctls: [string, string][] = [
      ['net.ipv4.conf.all.rp_filter', '0'],
      [`net.ipv4.conf.${tun.name}.rp_filter`, '0'],
      ['net.ipv4.conf.all.arp_ignore', '1'],
      [`net.ipv4.conf.${iface}.arp_ignore`, '1'],
      ['net.ipv4.conf.all.arp_announce', '2'],
      [`net.ipv4.conf.${iface}.arp_announce`, '2'],
    ];
    for (const [k, v] of sysctls) {
      const old = (await sh(['sysctl', '-n', k])).trim();
      if (old === v) continue;
      await sh(['sysctl', '-q', '-w', `${k}=${v}`]);
      if (!k.includes(`.${tun.name}.`)) undo.push(() => sh(['sysctl', '-q', '-w', `${k}=${old}`]));
    }

    const port = PacketSocketPort.open(iface);
    undo.push(() => port.close());

    const arena = new Arena(BATCH);
    const rxSlots = new Uint32Array(BATCH);
    const txSlots = new Uint32Array(BATCH);
    for (let i = 0; i < BATCH; i++) rxSlots[i] = i;
    const meta = arena.meta;

    const pump = () => {
      for (;;) {
        for (let i = 0; i < BATCH; i++) arena.reset(i);
        const n = port.recv(arena, rxSlots, BATCH);
        if (n <= 0) return;
        let out = 0;
        for (let i = 0; i < n; i++) {
          const slot = rxSlots[i]!;
          const partial = (meta[slot * META_WORDS + META_FLAGS]! & VNET_F_NEEDS_CSUM) !== 0;
          const v = decapsulate(arena, slot, locals, reasm, performance.now(), decapOpts);
          if (v === DECAP_OK) {
            txSlots[out++] = slot;
            if (partial) counters.checksummed++;
          } else if (v === DECAP_NOT_IPIP) counters.ignored++;
          else if (v === DECAP_FRAG_HELD) { /* kept */ }
          else if (v === DECAP_ECN_DROP) counters.ecnDrops++;
          else counters.malformed++;
        }
        if (out > 0) {
          const sent = tun.send(arena, txSlots, out);
          counters.decapsulated += sent;
          counters.tunDropped += out - sent;
        }
        if (n < BATCH) return;
      }
    };
    port.onReadable(pump);

    process.stdout.write(
      `tunnel-endpoint ready iface=${iface} (${localList.join(', ')}) dev=${tun.name} vips=${vips.join(',')} ipip${guePorts.length ? ` gue=${guePorts.join(',')}` : ''}${decapOpts.gre ? ' gre' : ''} nft=ip ${table}\n`,
    );
    const sig = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    await cleanup();
    counters.fragments = reasm.fragments;
    counters.reassembled = reasm.completed;
    counters.fragDiscarded = reasm.discarded + reasm.expired + reasm.evicted;
    process.stdout.write(`tunnel-endpoint stopped (${sig}): ${JSON.stringify(counters)}\n`);
    return 0;
  } catch (err) {
    await cleanup();
    process.stderr.write(`uvs tunnel-endpoint: ${(err as Error).message}\n`);
    return 1;
  }
}


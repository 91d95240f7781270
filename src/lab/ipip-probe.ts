/**
 * Sends one hand-built IPIP frame out of an interface through an AF_PACKET socket — what a TUN
 * director sends to a real server — so a lab can check a real server's tunnel endpoint without a
 * director: Ethernet → outer IPv4 (proto 4, DF) → inner IPv4 → UDP → payload.
 *
 *   node dist/lab/ipip-probe.js --iface eth0 --dst-mac MAC --src 10.0.0.8 --dst 10.0.0.7 \
 *        --inner-src 192.168.10.6 --inner-dst 10.0.0.100 --sport 40000 --dport 53 --payload hi [--partial]
 *
 * --partial leaves the UDP checksum partial (pseudo-header sum, virtio-net NEEDS_CSUM), as a
 * local sender with checksum offload would: the receiver must complete it.
 */
import { parseArgs } from 'node:util';
import { Arena, META_CSUM_OFFSET, META_CSUM_START, META_FLAGS, META_WORDS, VNET_F_NEEDS_CSUM } from '../packet/arena.js';
import { PacketSocketPort } from '../port/packet-socket-port.js';
import { parseIp, parseMac } from '../model/addr.js';
import { wr16, wr32 } from '../wire/bytes.js';
import { fold, pseudoSum, setIpv4Checksum, setL4Checksum } from '../wire/checksum.js';

const { values } = parseArgs({
  options: {
    iface: { type: 'string', default: 'eth0' },
    'dst-mac': { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string' },
    'inner-src': { type: 'string' },
    'inner-dst': { type: 'string' },
    sport: { type: 'string', default: '40000' },
    dport: { type: 'string', default: '53' },
    payload: { type: 'string', default: 'probe' },
    partial: { type: 'boolean', default: false },
  },
});

const need = (k: string, v: string | undefined): string => {
  if (!v) throw new Error(`--${k} is required`);
  return v;
};
const dstMac = parseMac(need('dst-mac', values['dst-mac']));
if (!dstMac) throw new Error('bad --dst-mac');
const port = PacketSocketPort.open(values.iface!);
const arena = new Arena(1);
const b = arena.bytes;
const o = arena.off[0]!;
const payload = Buffer.from(values.payload!);
const udpLen = 8 + payload.length;
const innerLen = 20 + udpLen;
const outerLen = 20 + innerLen;

b.set(dstMac, o);
b.set(port.mac, o + 6);
wr16(b, o + 12, 0x0800);
const writeIp = (at: number, totLen: number, proto: number, src: number, dst: number) => {
  b[at] = 0x45;
  b[at + 1] = 0;
  wr16(b, at + 2, totLen);
  wr16(b, at + 4, 0);
  wr16(b, at + 6, 0x4000);
  b[at + 8] = 64;
  b[at + 9] = proto;
  wr32(b, at + 12, src);
  wr32(b, at + 16, dst);
  setIpv4Checksum(b, at);
};
const outer = o + 14;
const inner = outer + 20;
const udp = inner + 20;
const isrc = parseIp(need('inner-src', values['inner-src']));
const idst = parseIp(need('inner-dst', values['inner-dst']));
writeIp(outer, outerLen, 4, parseIp(need('src', values.src)), parseIp(need('dst', values.dst)));
writeIp(inner, innerLen, 17, isrc, idst);
wr16(b, udp, Number(values.sport));
wr16(b, udp + 2, Number(values.dport));
wr16(b, udp + 4, udpLen);
b.set(payload, udp + 8);
if (values.partial) {
  wr16(b, udp + 6, fold(pseudoSum(isrc, idst, 17, udpLen)));
  arena.meta[META_FLAGS] = VNET_F_NEEDS_CSUM;
  arena.meta[META_CSUM_START] = udp - o;
  arena.meta[META_CSUM_OFFSET] = 6;
} else {
  setL4Checksum(b, isrc, idst, 17, udp, udpLen, 6);
  arena.meta.fill(0, 0, META_WORDS);
}
arena.len[0] = 14 + outerLen;
const sent = port.send(arena, Uint32Array.of(0), 1);
port.close();
if (sent !== 1) {
  process.stderr.write(`ipip-probe: send failed: ${port.lastError?.message ?? 'not taken'}\n`);
  process.exitCode = 1;
} else process.stdout.write(`sent ${arena.len[0]} bytes\n`);

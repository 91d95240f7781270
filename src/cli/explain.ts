/**
 * `uvs explain --mode nat|dr|tun|fullnat [--tun-type ipip|gue|gre] [--proxy-protocol v1|v2] [--ftp] [--sched NAME] [--packets N] [--pcap FILE] [--json]`
 *
 * The step-by-step walk without root: the REAL director pipeline (parse, host, track,
 * classify, schedule, forward, route) runs on memory ports with a fake clock; a scripted
 * client and emulated real servers talk TCP through it, and the step tracer prints every
 * packet's walk. The topology and addresses are the LVS documents' (the same as `uvs lab`):
 *
 *   NAT      client 192.168.10.6 ─ eth0 192.168.10.100 [director] eth1 10.0.0.8 ─ rs1 10.0.0.7:80 w1,
 *            rs2 10.0.0.17:8080 w3 (their gateway: 10.0.0.8); VIP 192.168.10.110
 *   DR, TUN  client 192.168.10.6 ─ router 10.0.0.200 ─ eth0 10.0.0.8 [director], rs1 10.0.0.7,
 *            rs2 10.0.0.17 (VIP 10.0.0.100 on their lo / tunnel device); replies go direct
 *   FULLNAT  client ─ eth0 192.168.10.100 [director] eth1 10.0.0.8 ─ router 10.0.0.200 ─
 *            rs1 10.0.1.7, rs2 10.0.1.17; VIP 192.168.10.110, local address (LIP) 10.0.0.50
 *
 * It prints the uvsadm commands it applies (parsed by the real ipvsadm parser, so they are
 * exactly what a user would type), each connection's packets (SYN, SYN-ACK, ACK, request,
 * response, FIN from both sides; for DR/TUN the server's packets are shown as going direct),
 * and at the end `uvsadm -Ln --stats` and `uvsadm -Lnc`. `--ftp` (NAT) makes the service FTP on port
 * 21 and each connection a passive-mode download: the 227 reply rewritten to the VIP, the data
 * connection the director expected, the sequence numbers the rewrite moved. `--pcap FILE` replays the IPv4 frames
 * of a capture as client traffic instead. `--json` prints the trace events as pino JSON lines.
 *
 * Nothing here loads the native addon (memory ports only): it runs as an ordinary user.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { Director } from '../pipeline/director.js';
import { FakeClock } from '../pipeline/clock.js';
import { MemoryPort } from '../port/memory-port.js';
import { Control } from '../control/ops.js';
import { parseIp, parseMac } from '../model/addr.js';
import { checksum, pseudoSum } from '../wire/checksum.js';
import { parseArgs } from './ipvsadm/parse.js';
import { ServicesDb, formatConnections, formatListAll, NO_FORMAT } from './ipvsadm/format.js';
import type { ConnSnap, InfoSnap, ServiceSnap } from '../control/types.js';
import { StepTracer, renderEvent } from '../trace/step-tracer.js';
import { installTracer, wantColor } from '../trace/attach.js';
import { decodeFrame } from '../trace/describe.js';
import { ppHeaderLen } from '../fwd/proxy-proto.js';
import { PP_V1, PP_V2 } from '../model/constants.js';
import { readCapture } from '../trace/pcapng.js';

export type ExplainMode = 'nat' | 'dr' | 'tun' | 'fullnat';
export const EXPLAIN_MODES: readonly ExplainMode[] = ['nat', 'dr', 'tun', 'fullnat'];

export interface ExplainIo {
  stdout?: { write(s: string): unknown; isTTY?: boolean };
  stderr?: { write(s: string): unknown };
}

export interface ExplainOptions {
  mode: ExplainMode;
  sched: string;
  /** Client connections. */
  packets: number;
  /** Capture to replay instead of the scripted conversation. */
  pcap?: string;
  json: boolean;
  /** Only the trace (no banner, commands or summary): the golden tests use it. */
  traceOnly?: boolean;
  /** ANSI colours in the trace text (explainMain: stdout is a TTY and NO_COLOR unset). */
  color?: boolean;
  /** TUN: the encapsulation (`--tun-type`; default ipip). */
  tunType?: 'ipip' | 'gue' | 'gre';
  /** NAT/FULLNAT: the service's `--proxy-protocol` (the emulated servers read the header). */
  proxyProtocol?: 'v1' | 'v2';
  /** NAT: an FTP service on port 21 and a passive-mode download (the FTP helper at work). */
  ftp?: boolean;
}

/** The uvsadm switches of each TUN encapsulation in explain (GUE on the TUN lab's port). */
const TUN_SWITCHES: Record<NonNullable<ExplainOptions['tunType']>, string> = {
  ipip: '-i', gue: '-i --tun-type gue --tun-port 6080 --tun-csum', gre: '-i --tun-type gre --tun-csum',
};

const CLIENT = '192.168.10.6';
const CLIENT_MAC = '02:00:00:00:00:aa';
const ROUTER = '10.0.0.200';
const ROUTER_MAC = '02:00:00:00:00:c8';
const DIR0_MAC = '02:00:00:00:00:01';
const DIR1_MAC = '02:00:00:00:00:02';
const LIP = '10.0.0.50';

interface RealServer {
  name: string;
  addr: string;
  port: number;
  weight: number;
  mac: string;
}

interface Plan {
  title: string;
  vip: string;
  vport: number;
  /** Director ports: name, MAC, address/prefix. */
  ports: { name: string; mac: string; addr: string; prefix: number }[];
  gateway?: string;
  servers: RealServer[];
  /** ipvsadm switch of the forwarding method. */
  fwdSwitch: string;
  laddr?: string;
  /** Index of the port the client's frames arrive on, and of the port toward the servers. */
  clientPort: number;
  serverPort: number;
  /** Source MAC of client frames at the director (the client itself, or the router). */
  clientSrcMac: string;
  /** Replies from the servers pass through the director (NAT, FULLNAT). */
  replyThrough: boolean;
  topology: string[];
  needs: string;
}

function plan(mode: ExplainMode, tunType: NonNullable<ExplainOptions['tunType']> = 'ipip'): Plan {
  const tun = tunType === 'gue' ? 'GUE (UDP port 6080, with a UDP checksum)' : tunType === 'gre' ? 'GRE (with a checksum)' : 'IPIP';
  switch (mode) {
    case 'nat': return {
      title: 'NAT (VS/NAT): the director rewrites the destination to a real server and the replies back to the VIP',
      vip: '192.168.10.110', vport: 80,
      ports: [{ name: 'eth0', mac: DIR0_MAC, addr: '192.168.10.100', prefix: 24 }, { name: 'eth1', mac: DIR1_MAC, addr: '10.0.0.8', prefix: 24 }],
      servers: [
        { name: 'rs1', addr: '10.0.0.7', port: 80, weight: 1, mac: '02:00:00:00:01:07' },
        { name: 'rs2', addr: '10.0.0.17', port: 8080, weight: 3, mac: '02:00:00:00:01:17' },
      ],
      fwdSwitch: '-m', clientPort: 0, serverPort: 1, clientSrcMac: CLIENT_MAC, replyThrough: true,
      topology: [
        `client ${CLIENT} ─[192.168.10.0/24]─ eth0 192.168.10.100 [director] eth1 10.0.0.8 ─[10.0.0.0/24]─ rs1 10.0.0.7, rs2 10.0.0.17`,
        'VIP 192.168.10.110 (owned by the director)',
      ],
      needs: 'the real servers use the director (10.0.0.8) as their default gateway, so replies come back through it',
    };
    case 'dr':
    case 'tun': return {
      title: mode === 'dr'
        ? 'DR (VS/DR, direct routing): the director only changes the destination MAC; the real server answers the client itself'
        : `TUN (VS/TUN, IP tunnelling): the director wraps the packet in an outer ${tun} header to the real server, which answers the client itself`,
      vip: '10.0.0.100', vport: 80,
      ports: [{ name: 'eth0', mac: DIR0_MAC, addr: '10.0.0.8', prefix: 24 }],
      gateway: ROUTER,
      servers: [
        { name: 'rs1', addr: '10.0.0.7', port: 80, weight: 1, mac: '02:00:00:00:01:07' },
        { name: 'rs2', addr: '10.0.0.17', port: 80, weight: 3, mac: '02:00:00:00:01:17' },
      ],
      fwdSwitch: mode === 'dr' ? '-g' : TUN_SWITCHES[tunType], clientPort: 0, serverPort: 0, clientSrcMac: ROUTER_MAC, replyThrough: false,
      topology: [
        `client ${CLIENT} ─[192.168.10.0/24]─ router ${ROUTER} ─[10.0.0.0/24]─ eth0 10.0.0.8 [director], rs1 10.0.0.7, rs2 10.0.0.17`,
        'VIP 10.0.0.100 (on the director, and on every real server)',
      ],
      needs: mode === 'dr'
        ? 'the real servers have the VIP on lo with arp_ignore=1 / arp_announce=2 (they accept it but never answer ARP for it), and are on the director\'s LAN'
        : tunType === 'ipip'
          ? 'the real servers decapsulate IPIP (a tunl0 device or `uvs tunnel-endpoint`) and hold the VIP there; they can be anywhere routable'
          : `the real servers decapsulate ${tunType.toUpperCase()} (${tunType === 'gue' ? 'a fou port 6080 with an ipip device' : 'a gre device'}, or \`uvs tunnel-endpoint --${tunType === 'gue' ? 'gue-port 6080' : 'gre'}\`) and hold the VIP there; they can be anywhere routable`,
    };
    case 'fullnat': return {
      title: 'FULLNAT: the director rewrites both ends — source to a local address (LIP), destination to a real server',
      vip: '192.168.10.110', vport: 80,
      ports: [{ name: 'eth0', mac: DIR0_MAC, addr: '192.168.10.100', prefix: 24 }, { name: 'eth1', mac: DIR1_MAC, addr: '10.0.0.8', prefix: 24 }],
      gateway: ROUTER,
      servers: [
        { name: 'rs1', addr: '10.0.1.7', port: 80, weight: 1, mac: ROUTER_MAC },
        { name: 'rs2', addr: '10.0.1.17', port: 80, weight: 3, mac: ROUTER_MAC },
      ],
      fwdSwitch: '-b', laddr: LIP, clientPort: 0, serverPort: 1, clientSrcMac: CLIENT_MAC, replyThrough: true,
      topology: [
        `client ${CLIENT} ─ eth0 192.168.10.100 [director] eth1 10.0.0.8 ─ router ${ROUTER} / 10.0.1.200 ─[10.0.1.0/24]─ rs1 10.0.1.7, rs2 10.0.1.17`,
        `VIP 192.168.10.110, local address (LIP) ${LIP} (both owned by the director)`,
      ],
      needs: 'nothing special on the real servers: they answer the LIP, which any route brings back to the director',
    };
  }
}

// ------------------------------------------------------------------------------ frames

interface TcpSpec {
  srcMac: string;
  dstMac: string;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  flags: number;
  seq: number;
  ack: number;
  payload?: string;
  ttl?: number;
  /** IP identification. */
  id: number;
}

/** An Ethernet/IPv4/TCP frame with valid checksums (control path: allocates). */
export function tcpFrame(f: TcpSpec): Uint8Array {
  const payload = new TextEncoder().encode(f.payload ?? '');
  const l4len = 20 + payload.length;
  const b = new Uint8Array(14 + 20 + l4len);
  const dv = new DataView(b.buffer);
  b.set(parseMac(f.dstMac)!, 0);
  b.set(parseMac(f.srcMac)!, 6);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 20 + l4len);
  dv.setUint16(18, f.id & 0xffff);
  dv.setUint16(20, 0x4000);
  b[22] = f.ttl ?? 64;
  b[23] = 6;
  const s = parseIp(f.saddr);
  const d = parseIp(f.daddr);
  dv.setUint32(26, s);
  dv.setUint32(30, d);
  dv.setUint16(24, checksum(b, 14, 20));
  dv.setUint16(34, f.sport);
  dv.setUint16(36, f.dport);
  dv.setUint32(38, f.seq >>> 0);
  dv.setUint32(42, f.ack >>> 0);
  b[46] = 0x50;
  b[47] = f.flags;
  dv.setUint16(48, 64240);
  b.set(payload, 54);
  dv.setUint16(50, checksum(b, 34, l4len, pseudoSum(s, d, 6, l4len)));
  return b;
}

const SYN = 0x02, ACK = 0x10, FIN = 0x01, PSH = 0x08;
const FLAG_NAME: Record<number, string> = { [SYN | ACK]: 'SYN-ACK', [PSH | ACK]: 'data', [FIN | ACK]: 'FIN', [ACK]: 'ACK' };

// ------------------------------------------------------------------------------ the run

export interface ExplainLab {
  director: Director;
  clock: FakeClock;
  ports: MemoryPort[];
  control: Control;
  plan: Plan;
  /** The uvsadm command lines applied. */
  commands: string[];
  /** IP identification of the next emulated host's packet. */
  ipId: number;
  /** The service's PROXY protocol version (0: none). */
  pp: number;
}

/** Builds the director of `mode` on memory ports and applies the rules with uvsadm commands. */
export async function buildExplainLab(mode: ExplainMode, sched: string, tunType: ExplainOptions['tunType'] = 'ipip',
  proxyProtocol?: ExplainOptions['proxyProtocol'], ftp = false): Promise<ExplainLab> {
  let pl = plan(mode, tunType);
  if (ftp) {
    pl = {
      ...pl, vport: 21, servers: pl.servers.map((x) => ({ ...x, port: 21 })),
      title: `${pl.title}; an FTP service, whose passive-mode replies the director's FTP helper (ip_vs_ftp) rewrites`,
    };
  }
  const clock = new FakeClock();
  const director = new Director({ clock, maxConns: 4096, batch: 16, maxPorts: pl.ports.length, pendingMax: 16, seed: 1 });
  const ports: MemoryPort[] = [];
  pl.ports.forEach((p, i) => {
    const port = new MemoryPort({ name: p.name, mac: p.mac });
    ports.push(port);
    director.addPort(port, [parseIp(p.addr)]);
    director.routes.addAddress({ port: i, addr: parseIp(p.addr), prefix: p.prefix });
  });
  if (pl.gateway) director.routes.add({ net: 0, prefix: 0, gw: parseIp(pl.gateway), port: pl.serverPort, src: 0 });
  // Neighbours as `ip neigh` would show them after a first exchange (static, so the walk is
  // the same every run; ARP itself is traced when a real director resolves a next hop).
  const now = clock.now();
  const learn = (addr: string, mac: string, port: number): void => {
    director.neigh.learn(parseIp(addr), parseMac(mac)!, 0, port, now, true);
  };
  if (pl.clientSrcMac === CLIENT_MAC) learn(CLIENT, CLIENT_MAC, pl.clientPort);
  if (pl.gateway) learn(pl.gateway, ROUTER_MAC, pl.serverPort);
  for (const s of pl.servers) if (s.mac !== ROUTER_MAC) learn(s.addr, s.mac, pl.serverPort);

  const control = new Control(director);
  const svc = `${pl.vip}:${pl.vport}`;
  const commands = [`uvsadm -A -t ${svc} -s ${sched}${proxyProtocol ? ` --proxy-protocol ${proxyProtocol}` : ''}`];
  for (const s of pl.servers) commands.push(`uvsadm -a -t ${svc} -r ${s.addr}:${s.port} ${pl.fwdSwitch} -w ${s.weight}`);
  if (pl.laddr) commands.push(`uvsadm -P -t ${svc} -z ${pl.laddr}`);
  const deps = { program: 'uvsadm', services: new ServicesDb([]) };
  for (const line of commands) {
    const r = await parseArgs(line.split(' ').slice(1), deps);
    if (r.kind !== 'command') throw new Error(`${line}: ${r.kind === 'error' ? r.message.trim() : r.kind}`);
    const res = control.execute(r.command);
    if (!res.ok) throw new Error(`${line}: ${res.errno} ${res.message}`);
  }
  const pp = proxyProtocol === 'v2' ? PP_V2 : proxyProtocol === 'v1' ? PP_V1 : 0;
  return { director, clock, ports, control, plan: pl, commands, ipId: 0x100, pp };
}

/** Runs every port until nothing is queued; returns the frames each port sent. */
function runAll(lab: ExplainLab): Uint8Array[][] {
  const sent = lab.ports.map(() => [] as Uint8Array[]);
  for (let round = 0; round < 8; round++) {
    let n = 0;
    lab.ports.forEach((_, i) => { n += lab.director.pollPort(i); });
    lab.ports.forEach((p, i) => { for (const f of p.takeSent()) sent[i]!.push(f.frame); });
    if (n === 0) break;
  }
  return sent;
}

interface Conversation {
  cport: number;
  cseq: number;
  sseq: number;
  rs?: RealServer;
  /** Where the server's packets go (client, or LIP:lport for FULLNAT). */
  replyAddr: string;
  replyPort: number;
  /** Bytes of PROXY header the server received in front of the client's data (0: none yet). */
  ppBytes: number;
  /** Bytes the director added to the server's stream (the FTP helper's rewrites). */
  delta: number;
}

/** TCP payload bytes of an Ethernet/IPv4/TCP frame. */
function tcpPayloadLen(f: Uint8Array): number {
  const ihl = (f[14]! & 15) * 4;
  return ((f[16]! << 8) | f[17]!) - ihl - ((f[14 + ihl + 12]! >> 4) * 4);
}

/**
 * One emulated TCP connection client:cport → VIP:vport through the director: `fromClient` and
 * `fromServer` send a segment of either side and keep the sequence numbers (the client acks what it
 * received, which a rewrite in the director may have lengthened). `server` pins the real server and
 * its port (a data connection the director expected); otherwise the director's choice is learnt
 * from the first packet it sends on.
 */
function session(lab: ExplainLab, cport: number, vport: number, print: (s: string) => void, server?: { rs: RealServer; port: number }) {
  const pl = lab.plan;
  const c: Conversation = { cport, cseq: 1000, sseq: 5000, replyAddr: CLIENT, replyPort: cport, ppBytes: 0, delta: 0 };
  if (server) c.rs = server.rs;
  const rsPort = (rs: RealServer): number => server?.port ?? rs.port;
  const clientDirMac = pl.ports[pl.clientPort]!.mac;
  const serverDirMac = pl.ports[pl.serverPort]!.mac;
  let alive = true;

  const fromClient = (flags: number, payload = ''): void => {
    if (!alive) return;
    const f = tcpFrame({
      srcMac: pl.clientSrcMac, dstMac: clientDirMac, saddr: CLIENT, daddr: pl.vip, sport: c.cport, dport: vport,
      flags, seq: c.cseq, ack: flags & ACK ? c.sseq + c.delta : 0, payload, id: lab.ipId++, ttl: pl.clientSrcMac === ROUTER_MAC ? 63 : 64,
    });
    lab.ports[pl.clientPort]!.inject(f);
    lab.clock.advance(1);
    const sent = runAll(lab);
    c.cseq += payload.length + (flags & (SYN | FIN) ? 1 : 0);
    if (lab.pp !== 0 && payload.length > 0 && c.ppBytes === 0) c.ppBytes = ppHeaderLen(lab.pp, parseIp(CLIENT), c.cport, parseIp(pl.vip), vport);
    const out = sent[pl.serverPort]!;
    const o = out.length > 0 ? decodeFrame(out[out.length - 1]!, 0, out[out.length - 1]!.length) : undefined;
    if (!o?.ip) { alive = false; return; }
    if (c.rs === undefined) {
      if (pl.fwdSwitch === '-m' || pl.fwdSwitch === '-b') {
        c.rs = pl.servers.find((s) => s.addr === o.ip!.daddr && rsPort(s) === o.l4?.dport);
        if (pl.fwdSwitch === '-b') { c.replyAddr = o.ip.saddr; c.replyPort = o.l4?.sport ?? 0; }
      } else if (pl.fwdSwitch.startsWith('-i')) {
        c.rs = pl.servers.find((s) => s.addr === o.outer?.daddr);
      } else {
        c.rs = pl.servers.find((s) => s.mac === o.eth.dst);
      }
      if (c.rs === undefined) alive = false;
    }
  };

  const fromServer = (flags: number, payload = ''): void => {
    if (!alive || c.rs === undefined) return;
    const rs = c.rs;
    const ack = c.cseq + c.ppBytes; // the server's stream has the PROXY header in it
    if (pl.replyThrough) {
      lab.ports[pl.serverPort]!.inject(tcpFrame({
        srcMac: rs.mac, dstMac: serverDirMac, saddr: rs.addr, daddr: c.replyAddr, sport: rsPort(rs), dport: c.replyPort,
        flags, seq: c.sseq, ack, payload, id: lab.ipId++, ttl: rs.mac === ROUTER_MAC ? 63 : 64,
      }));
      lab.clock.advance(1);
      const toClient = runAll(lab)[pl.clientPort]!;
      const got = toClient[toClient.length - 1];
      if (got !== undefined && payload.length > 0) c.delta += tcpPayloadLen(got) - new TextEncoder().encode(payload).length;
    } else {
      print(`~ ${rs.name} ${rs.addr} answers ${FLAG_NAME[flags] ?? 'a packet'} ${pl.vip}:${vport} → ${CLIENT}:${c.cport} `
        + `from the VIP straight to the client via router ${ROUTER} (not through the director)\n`);
      lab.clock.advance(1);
    }
    c.sseq += payload.length + (flags & (SYN | FIN) ? 1 : 0);
  };
  return { c, fromClient, fromServer, alive: () => alive };
}

/**
 * The scripted TCP conversation of one client connection (HTTP/1.0: the server closes first).
 * `print` receives the remarks between trace events (server packets that bypass the director).
 */
function converse(lab: ExplainLab, i: number, print: (s: string) => void): void {
  const pl = lab.plan;
  const { c, fromClient, fromServer } = session(lab, 40000 + i, pl.vport, print);
  fromClient(SYN);
  fromServer(SYN | ACK);
  fromClient(ACK);
  fromClient(PSH | ACK, `GET / HTTP/1.0\r\nHost: ${pl.vip}\r\n\r\n`);
  const body = `hello from ${c.rs?.name ?? 'rs'}\n`;
  fromServer(PSH | ACK, `HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  fromServer(FIN | ACK);
  fromClient(FIN | ACK);
  fromServer(ACK);
}

/**
 * One passive-mode FTP download (NAT, --ftp): the control connection (greeting, PASV, the 227 reply
 * naming the real server's own address and port 50000 + i), the client's data connection to that
 * port of the VIP, RETR, the file, QUIT.
 */
function converseFtp(lab: ExplainLab, i: number, print: (s: string) => void): void {
  const ctl = session(lab, 40000 + i, 21, print);
  ctl.fromClient(SYN);
  ctl.fromServer(SYN | ACK);
  ctl.fromClient(ACK);
  const rs = ctl.c.rs;
  if (rs === undefined || !ctl.alive()) return;
  ctl.fromServer(PSH | ACK, `220 ${rs.name} FTP server ready.\r\n`);
  ctl.fromClient(PSH | ACK, 'PASV\r\n');
  const dport = 50000 + i;
  ctl.fromServer(PSH | ACK, `227 Entering Passive Mode (${rs.addr.replace(/\./g, ',')},${dport >> 8},${dport & 255}).\r\n`);
  print(`~ the client opens the data connection to the address and port of the reply it got: ${lab.plan.vip}:${dport}`);
  const data = session(lab, 41000 + i, dport, print, { rs, port: dport });
  data.fromClient(SYN);
  data.fromServer(SYN | ACK);
  data.fromClient(ACK);
  ctl.fromClient(PSH | ACK, 'RETR hello.txt\r\n');
  ctl.fromServer(PSH | ACK, '150 Opening data connection.\r\n');
  data.fromServer(PSH | ACK, `hello from ${rs.name}\n`);
  data.fromServer(FIN | ACK);
  data.fromClient(FIN | ACK);
  data.fromServer(ACK);
  ctl.fromServer(PSH | ACK, '226 Transfer complete.\r\n');
  ctl.fromClient(ACK);
  ctl.fromClient(PSH | ACK, 'QUIT\r\n');
  ctl.fromServer(PSH | ACK, '221 Goodbye.\r\n');
  ctl.fromServer(FIN | ACK);
  ctl.fromClient(FIN | ACK);
  ctl.fromServer(ACK);
}

/** Replays the IPv4 frames of a capture as client traffic on the client-facing port. */
function replay(lab: ExplainLab, path: string): number {
  const frames = readCapture(new Uint8Array(readFileSync(path)));
  const pl = lab.plan;
  const dstMac = parseMac(pl.ports[pl.clientPort]!.mac)!;
  const srcMac = parseMac(pl.clientSrcMac)!;
  let n = 0;
  for (const { frame } of frames) {
    if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) continue;
    const f = Uint8Array.from(frame);
    f.set(dstMac, 0);
    f.set(srcMac, 6);
    lab.ports[pl.clientPort]!.inject(f);
    lab.clock.advance(1);
    runAll(lab);
    n++;
  }
  return n;
}

/** Runs an explain session and returns its output (used by explainMain and the tests). */
export async function runExplain(o: ExplainOptions, write: (s: string) => void): Promise<void> {
  const lab = await buildExplainLab(o.mode, o.sched, o.tunType, o.proxyProtocol, o.ftp === true);
  const pl = lab.plan;
  const tracer = new StepTracer({ filter: '' });
  if (o.json) {
    const logger = pino({ base: undefined, timestamp: false }, { write: (s: string) => write(s) } as pino.DestinationStream);
    tracer.onEvent((ev) => logger.info(ev, 'trace'));
  } else {
    tracer.onEvent((ev) => write(renderEvent(ev, { color: o.color === true }) + '\n'));
  }
  const text = (s: string): void => { if (!o.json && !o.traceOnly) write(s); };
  const remark = (s: string): void => { if (!o.json) write(s + '\n'); };

  text(`uvs explain — ${pl.title}\n\n`);
  text(`topology:\n${pl.topology.map((l) => `  ${l}\n`).join('')}`);
  text(`real servers need: ${pl.needs}\n\n`);
  text('rules, as you would type them:\n');
  for (const c of lab.commands) text(`$ ${c}\n`);
  text('\n');

  const stop = installTracer(lab.director, tracer);
  try {
    if (o.pcap) {
      const n = replay(lab, o.pcap);
      text(`(replayed ${n} IPv4 frames of ${o.pcap} as client traffic)\n\n`);
    } else {
      for (let i = 0; i < o.packets; i++) {
        text(o.ftp
          ? `── FTP download ${i + 1}: control connection ${CLIENT}:${40000 + i} → ${pl.vip}:21, data connection ${CLIENT}:${41000 + i} → ${pl.vip}:${50000 + i} ──\n\n`
          : `── connection ${i + 1}: ${CLIENT}:${40000 + i} → ${pl.vip}:${pl.vport} ──\n\n`);
        if (o.ftp) converseFtp(lab, i, remark); else converse(lab, i, remark);
        if (!o.json) write('\n');
      }
    }
  } finally {
    stop();
  }

  if (o.json || o.traceOnly) return;
  const services = lab.control.execute({ cmd: 'get-services' });
  const info = lab.control.execute({ cmd: 'get-info' });
  const conns = lab.control.execute({ cmd: 'get-conns' });
  const svcs = (services.ok ? services.data : []) as ServiceSnap[];
  write('$ uvsadm -Ln --stats\n');
  write(formatListAll(info.ok ? (info.data as InfoSnap) : undefined, svcs, { ...NO_FORMAT, numeric: true, stats: true }));
  write('\n$ uvsadm -Lnc\n');
  write(formatConnections((conns.ok ? conns.data : []) as ConnSnap[], { numeric: true, persistentConn: false }));
  if (!pl.replyThrough) {
    write(`\nOutPkts stay 0: with ${o.mode.toUpperCase()} the replies never pass through the director.\n`);
  }
}

export const EXPLAIN_USAGE = 'usage: uvs explain --mode nat|dr|tun|fullnat [--tun-type ipip|gue|gre] [--proxy-protocol v1|v2] [--ftp] [--sched NAME] [--packets N] [--pcap FILE] [--json]\n';

/** Parses argv; returns options or an error message. */
export function parseExplainArgs(argv: string[]): ExplainOptions | { error: string } | { help: true } {
  const o: ExplainOptions = { mode: 'nat', sched: 'wrr', packets: 2, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string | undefined => (a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '-h': case '--help': return { help: true };
      case '--json': o.json = true; break;
      case '--ftp': o.ftp = true; break;
      case '--mode': case '-m': {
        const v = value();
        if (!v || !EXPLAIN_MODES.includes(v as ExplainMode)) return { error: `--mode must be one of ${EXPLAIN_MODES.join(', ')}${v ? ` (got "${v}")` : ''}` };
        o.mode = v as ExplainMode;
        break;
      }
      case '--sched': case '-s': {
        const v = value();
        if (!v) return { error: '--sched needs a scheduler name' };
        o.sched = v;
        break;
      }
      case '--packets': case '-n': {
        const v = value();
        if (!v || !/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) return { error: '--packets needs a number of connections (1-1000)' };
        o.packets = Number(v);
        break;
      }
      case '--tun-type': {
        const v = value();
        if (v !== 'ipip' && v !== 'gue' && v !== 'gre') return { error: `--tun-type must be ipip, gue or gre${v ? ` (got "${v}")` : ''}` };
        o.tunType = v;
        break;
      }
      case '--proxy-protocol': {
        const v = value();
        if (v !== 'v1' && v !== 'v2') return { error: `--proxy-protocol must be v1 or v2${v ? ` (got "${v}")` : ''}` };
        o.proxyProtocol = v;
        break;
      }
      case '--pcap': {
        const v = value();
        if (!v) return { error: '--pcap needs a capture file (pcap or pcapng)' };
        o.pcap = v;
        break;
      }
      default:
        if (EXPLAIN_MODES.includes(a as ExplainMode)) { o.mode = a as ExplainMode; break; }
        return { error: `unknown option "${a}"` };
    }
  }
  if (o.tunType !== undefined && o.tunType !== 'ipip' && o.mode !== 'tun') return { error: '--tun-type goes with --mode tun' };
  if (o.proxyProtocol !== undefined && o.mode !== 'nat' && o.mode !== 'fullnat') return { error: '--proxy-protocol goes with --mode nat or fullnat (DR/TUN replies bypass the director)' };
  if (o.ftp && (o.mode !== 'nat' || o.proxyProtocol !== undefined || o.pcap !== undefined)) {
    return { error: '--ftp goes with --mode nat (the FTP helper; DR/TUN FTP needs only persistence), without --proxy-protocol or --pcap' };
  }
  return o;
}

export async function explainMain(argv: string[], io: ExplainIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const o = parseExplainArgs(argv);
  if ('help' in o) { stdout.write(EXPLAIN_USAGE); return 0; }
  if ('error' in o) { stderr.write(`uvs explain: ${o.error}\n${EXPLAIN_USAGE}`); return 64; }
  try {
    await runExplain({ ...o, color: wantColor(stdout) }, (s) => { stdout.write(s); });
    return 0;
  } catch (e) {
    stderr.write(`uvs explain: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

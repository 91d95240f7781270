/**
 * The director: ports, the shared frame arena, and the one-way pipeline every frame walks.
 *
 *   Port.recv(batch)
 *     → parse     ethernet / arp / ipv4 / l4 offsets and 5-tuple            DROP(malformed…)
 *     → host      ARP for owned addresses, ICMP echo, neighbour learning      (consumes)
 *     → track     conn table lookup, both directions in one table
 *     → classify  only on a miss: service by proto+VIP+port (port 0: all)    PASS(no service)
 *     → schedule  only on a miss: persistence template, then Scheduler.pick  DROP(no-dest)
 *     → forward   the conn's bound Forwarder rewrites in place (in/out)
 *     → route     next hop + egress port; ARP resolve (queue while pending)
 *     → egress    write L2 header → Port.send(batch)
 *
 * (DESIGN.md lists classify before track; the conn lookup comes first here because an
 * established packet never needs the service — the kernel's ip_vs_in does the same.)
 *
 * Nothing on this path throws or allocates: a bad frame is a counted drop reason. Control
 * changes (services, dests) are applied between batches, since everything runs on one thread.
 */
import type { BlockAllocator } from '../conn/table-memory.js';
import { Arena, META_WORDS, SLOT_SIZE, HEADROOM } from '../packet/arena.js';
import { Packet } from '../packet/packet.js';
import type { Port } from '../port/port.js';
import { ConnTable, CF_IN_USE, CF_NO_CPORT, CF_ONE_PACKET, CF_PP_MASK, CF_PP_V2, CF_SYNPROXY, CF_TEMPLATE, DIR_IN, FTP_APP_BITS, FTP_APP_MASK } from '../conn/conn-table.js';
import { FtpHelper, FTP_EV_EPRT, FTP_EV_PASV, ftpLast } from '../fwd/ftp.js';
import { Timeouts } from '../conn/timeouts.js';
import { TCP_STATE_NAMES, TCP_S_CLOSE, TCP_S_SYN_RECV, TCP_S_TIME_WAIT } from '../conn/tcp-state.js';
import { Config } from '../model/config.js';
import type { Service } from '../model/service.js';
import type { Dest } from '../model/dest.js';
import { Stats } from '../model/stats.js';
import { RouteTable } from '../model/routes.js';
import { NeighborTable, N_INCOMPLETE, N_REACHABLE, N_STALE, NEIGH_MAX_PROBES, NEIGH_RETRANS_MS } from '../model/neighbors.js';
import {
  FTP_PORT, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, TUN_TYPE_GRE, TUN_TYPE_GUE,
  TUN_TYPE_IPIP,
} from '../model/constants.js';
import { PathMtuCache } from '../model/pmtu.js';
import { SchedKey, SchedNote } from '../sched/scheduler.js';
import { parsePacket } from './parse.js';
import {
  DropCounters, DROP_REASONS, D_ARP_QUEUE_FULL, D_ARP_UNRESOLVED, D_CONN_FULL, D_DEST_UNAVAIL,
  D_FRAG_NEEDED, D_FRAG_NO_CONN, D_ICMP_NO_CONN, D_LADDR_EXHAUSTED, D_MALFORMED_ARP, D_NO_DEST, D_NO_LADDR,
  D_NO_ROUTE, D_NON_SYN, D_GSO, D_NOT_FOR_US, D_TOO_BIG, D_ECHO_FRAG, D_DEFENCE, D_NAT_NO_CONN, D_TTL, D_TX_FAILED, D_NO_SVC_PORT,
  D_ICMP_CSUM, D_SP_ABORTED, D_SP_ACK_STORM, D_SP_BAD_ACK, D_SP_NOT_ACK, D_SP_NULL_ACK, D_SP_QUEUE_FULL,
} from './drops.js';
import { SP_DATA_SACK, SP_MSSTAB, SynCookies, cookieData, spEmbeddedBack, spInbound, spOutbound, synackInPlace, writeRsSyn } from '../fwd/synproxy.js';
import type { Clock } from './clock.js';
import { rd16, rd32, rd32Bits, wr16, wr32, copyMac, macEquals } from '../wire/bytes.js';
import { ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, ETHERTYPE_IPV4, isBroadcast } from '../wire/ethernet.js';
import {
  ARP_REPLY, ARP_REQUEST, ARP_SHA, arpOper, arpSpa, arpTpa, arpValid, writeArp,
} from '../wire/arp.js';
import { IP_F_DF, IP_F_MF, IP_ID, IP_OFFMASK, decTtl, ipIhl, ipTotLen, IP_SADDR, IP_DADDR } from '../wire/ipv4.js';
import { fragmentCount, fragmentPayload, writeFragment } from '../wire/fragment.js';
import { FRAG_TIMEOUT_MS, FragTable } from '../conn/frag-table.js';
import { checksum, setIpv4Checksum } from '../wire/checksum.js';
import {
  ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED, TCP_ACK, TCP_ACKF, TCP_FIN, TCP_RST, TCP_SEQ, TCP_SYN, tcpOption,
  icmpIsError,
} from '../wire/l4.js';
import { echoToReply, writeIcmpError } from '../wire/icmp.js';
import type { Forwarder, FwdContext } from '../fwd/forwarder.js';
import { natForwarder } from '../fwd/nat.js';
import { drForwarder } from '../fwd/dr.js';
import { tunForwarder } from '../fwd/tun.js';
import { fullnatForwarder } from '../fwd/fullnat.js';
import { TOA_CODES, TOA_TEXT, toaInbound, toaOutbound } from '../fwd/toa.js';
import { UOA_CODES, UOA_M_IPO, UOA_STANDALONE, UOA_TEXT, uoaInbound, writeUoaDatagram } from '../fwd/uoa.js';
import { AO_ADDED, AO_NOTHING, AO_SKIP_MTU, AO_SKIP_OPTION_ROOM } from '../fwd/addr-option.js';
import { LaddrPool } from '../fwd/laddr-pool.js';
import { segmentCount, writeTcpSegment } from '../fwd/segment.js';
import { tunEncap, tunOverhead, tunnelQuoteInner } from '../fwd/tun.js';
import {
  PROBE_PAYLOAD_MAX, PROBE_PORT_MIN, PROBE_SLOTS, Prober, writeProbeDatagram, writeProbeSegment,
  type ProbeResult, type ProbeTarget,
} from './probe.js';
import {
  PP_ACK_ADJUSTED, PP_INSERTED, PP_MSS_LOWERED, PP_REINSERTED, PP_SEQ_SHIFTED, connPpLen, ppEmbeddedBack, ppInbound,
  ppLastAction, ppOutbound,
} from '../fwd/proxy-proto.js';
import { noTracer, type Tracer } from '../trace/tracer.js';
import { ipToString } from '../model/addr.js';
import { Sysctls } from '../model/sysctl.js';
import { estimate } from '../model/estimator.js';
import type { SyncMaster } from '../sync/master.js';
import { SyncApplyStats, applySyncRecord } from '../sync/backup.js';
import { decodeSync, type DecodeResult, type SyncRecord } from '../sync/proto.js';

/** Forwarder per method (index = FWD_* value); LOCAL/BYPASS are not offered by uvs. */
const FORWARDERS: (Forwarder | null)[] = [natForwarder, null, tunForwarder, drForwarder, null, fullnatForwarder];
/** Conn count from which a batch's conn-table lines are prefetched: below it the table stays in
 * the CPU caches (≈ 4 MiB of buckets + records at 32k conns) and the extra hash would only cost. */
export const PREFETCH_MIN = 32_768;

/** Later fragments held while their first fragment has not come (copies in pending slots). */
export const HELD_FRAGS = 16;
/** Client segments of SYN-proxied conns held while the real servers' SYN-ACKs are awaited (copies in pending slots). */
export const SP_HELD = 64;
/** SYN proxy event counters (uvs_synproxy_total{event}). */
export const SP_SYNACK = 0, SP_ACK_OK = 1, SP_SERVER_SYNACK = 2, SP_SYN_RETRY = 3, SP_EVENTS = ['syn_cookie_sent', 'ack_cookie_ok', 'server_synack', 'server_syn_resent'] as const;

export interface DirectorOptions {
  clock: Clock;
  /** Conn table capacity (conns + templates). */
  maxConns?: number;
  /** Where the conn table's block comes from when large (ConnTableOptions.allocate: uvsd passes
   * the addon's huge-page allocator). */
  allocate?: BlockAllocator | null;
  /** Frames per receive batch. */
  batch?: number;
  maxPorts?: number;
  /** Frames that may wait for ARP resolution, all neighbours together. */
  pendingMax?: number;
  tracer?: Tracer;
  /** Conn hash seed (tests fix it for a stable -Lc order). */
  seed?: number;
  /** Virtual ports of the FTP helper (fwd/ftp.ts; K ip_vs_ftp `ports`); default [21], [] = off. */
  ftpPorts?: number[];
}

interface PortState {
  port: Port;
  /** Receive slots of this port. */
  rx: Uint32Array;
  /** Frames queued for sending on this port (slot ids) and how many. */
  tx: Uint32Array;
  txn: number;
  /** Addresses uvs itself owns on this port as an L2 host (tap mode). */
  hostAddrs: number[];
  rxFrames: number;
  txFrames: number;
}

export class Director implements FwdContext {
  readonly clock: Clock;
  readonly arena: Arena;
  readonly packets: Packet[];
  readonly config = new Config();
  readonly timeouts = new Timeouts();
  readonly conns: ConnTable;
  readonly routes = new RouteTable();
  readonly neigh = new NeighborTable();
  readonly drops = new DropCounters();
  readonly stats = new Stats();
  readonly laddrPool = new LaddrPool();
  tracer: Tracer;
  /** Frames not for any service, left to the host kernel (iface mode). */
  passed = 0;
  readonly ports: PortState[] = [];

  private readonly batch: number;
  private readonly maxPorts: number;
  private readonly scratchFree: number[] = [];
  private readonly scratchUsed: number[] = [];
  private readonly pendingFree: number[] = [];
  /** Pending frames: slot, neighbour index, egress port; -1 slot = empty entry. */
  private readonly pendSlot: Int32Array;
  private readonly pendNeigh: Int32Array;
  private readonly pendPort: Int32Array;
  private pendCount = 0;
  private readonly pendingReleased: number[] = [];
  private readonly key = new SchedKey();
  /** Conn count from which processBatch prefetches (PREFETCH_MIN; benches switch it). */
  prefetchMin = PREFETCH_MIN;
  /**
   * The IPVS sysctls (src/model/sysctl.ts), read here as they are set (uvsd --sysctl, uvsadm
   * --sysctl): expire_nodest_conn, expire_quiescent_template, conn_reuse_mode, sloppy_tcp,
   * schedule_icmp, nat_icmp_send, pmtu_disc (TUN), secure_tcp, drop_packet (amemthresh, am_droprate) and the
   * locality schedulers' expirations.
   */
  readonly sysctl = new Sysctls();
  /** The connection-sync master while one runs (K ipvs->sync_state & IP_VS_STATE_MASTER); set it with setSyncMaster(). */
  syncMaster: SyncMaster | null = null;
  /** The running sync backup's syncid (0 = takes every SyncID), -1 when none runs. */
  syncBackupId = -1;
  /** What the backup made of the records it received. */
  readonly syncApplied = new SyncApplyStats();
  /** Records the sync master wrote (all masters since start: uvs_sync_records_sent_total). */
  syncRecordsSent = 0;
  private readonly syncRecs: SyncRecord[] = [];
  /**
   * Whether uvs answers ARP for its service addresses (VIPs, FULLNAT local addresses): true by
   * default (`uvsd --vip-arp uvs`); false (`--vip-arp host`) leaves ARP for them to the host,
   * which answers while one of its interfaces carries the address — keepalived's
   * virtual_ipaddress moving with VRRP — so only the active director of a pair attracts the
   * traffic, as with kernel IPVS. uvs's own addresses (tap mode) are answered either way.
   */
  serviceArp = true;
  /** backup_only=1 while a backup runs: uvs leaves TCP/UDP to the host (K sysctl_backup_only). */
  private backupOnly = false;
  /** K ip_vs_todrop: drop one new conn in dropRate (0 = off), counting down in dropCounter. */
  private dropRate = 0;
  private dropCounter = 0;
  /** drop_entry in effect (K ipvs->dropentry): a random pass over the conn table every second. */
  private dropEntryOn = false;
  /** Conns drop_entry freed. */
  droppedEntries = 0;
  /** When updateDefence() runs next (every second from tick(), as K defense_work). */
  private nextDefence = 0;
  /** Tuples of the batch being prefetched (see processBatch). */
  private readonly pf = {
    proto: new Uint8Array(64), saddr: new Uint32Array(64), sport: new Uint16Array(64), daddr: new Uint32Array(64), dport: new Uint16Array(64),
    ref: new Int32Array(64),
  };
  /** The prefetched ref of the packet being processed (ConnTable.lookupHinted), -1 none. */
  private hint = -1;
  private readonly note = new SchedNote();
  private ipId = 1;
  private readonly bcast = new Uint8Array([255, 255, 255, 255, 255, 255]);

  /** The smallest MTU of the ports: a packet this short after encapsulation fits any route
   * (the TUN fragmentation test also takes pmtu.min, the smallest learnt path MTU). */
  private minMtu = 65535;
  /** Path MTUs learnt from routers' fragmentation-needed about uvs's own tunnel packets. */
  readonly pmtu = new PathMtuCache();
  /** ICMP errors about uvs's tunnel packets turned into errors to the client (K §5.5). */
  tunnelIcmpRelayed = 0;
  /** FULLNAT TOA outcomes by TOA_* code (fwd/toa.ts): added, and each reason it was left out. */
  readonly toaCounts = new Float64Array(TOA_CODES);
  /** FULLNAT UOA outcomes by UOA_* code (fwd/uoa.ts). */
  readonly uoaCounts = new Float64Array(UOA_CODES);
  /** Health-check probes through the data path (probe.ts). */
  readonly prober = new Prober();
  /** Which conn the later fragments of a datagram follow (its first fragment's). */
  readonly frags = new FragTable(4096);
  /** Later fragments that came before their first one, held (copies in pending slots) until it
   * comes: slot (-1 free), datagram key, receiving port, when held. */
  private readonly heldSlot = new Int32Array(HELD_FRAGS).fill(-1);
  private readonly heldK0 = new Int32Array(HELD_FRAGS);
  private readonly heldSa = new Int32Array(HELD_FRAGS);
  private readonly heldDa = new Int32Array(HELD_FRAGS);
  private readonly heldPort = new Int32Array(HELD_FRAGS);
  private readonly heldAt = new Float64Array(HELD_FRAGS);
  private heldCount = 0;
  /** A first fragment came whose datagram has held fragments: processBatch releases them. */
  private heldWake = false;
  /** SYN proxy (fwd/synproxy.ts): the cookie key, the event counts (SP_*), and the client segments
   * held per conn: slot (-1 free), conn, port, when held, order, the cookie data and whether it is
   * the conn's opening ACK (which drives the SYN's retransmission: when last sent, how often). */
  readonly cookies = new SynCookies();
  readonly spCounts = new Float64Array(SP_EVENTS.length);
  /** The FTP helper of NAT services (fwd/ftp.ts): its ports, per-conn state and counters. */
  readonly ftp = new FtpHelper();
  private readonly spSlot = new Int32Array(SP_HELD).fill(-1);
  private readonly spConn = new Int32Array(SP_HELD);
  private readonly spPort = new Int32Array(SP_HELD);
  private readonly spAt = new Float64Array(SP_HELD);
  private readonly spOrder = new Float64Array(SP_HELD);
  private readonly spData = new Int32Array(SP_HELD);
  private readonly spFirst = new Uint8Array(SP_HELD);
  private readonly spReady = new Uint8Array(SP_HELD);
  private readonly spSynAt = new Float64Array(SP_HELD);
  private readonly spTries = new Uint8Array(SP_HELD);
  private spCount = 0;
  private spNext = 0;
  /** A real server's SYN-ACK came: processBatch releases that conn's held segments. */
  private spWake = false;
  /** The SYN to a real server is going through forwardConn (not held as a client segment). */
  private spSending = false;

  constructor(opts: DirectorOptions) {
    this.clock = opts.clock;
    this.prober.send = (s, flags, seq, now, ack, payload) => this.sendProbeSegment(s, flags, seq, now, ack, payload);
    this.batch = opts.batch ?? 64;
    this.maxPorts = opts.maxPorts ?? 8;
    const scratch = Math.max(128, this.batch * 2);
    const pending = opts.pendingMax ?? 128;
    const slots = this.maxPorts * this.batch + scratch + pending;
    this.arena = new Arena(slots);
    this.packets = [];
    for (let i = 0; i < slots; i++) this.packets.push(new Packet(this.arena, i));
    let s = this.maxPorts * this.batch;
    for (let i = 0; i < scratch; i++) this.scratchFree.push(s++);
    for (let i = 0; i < pending; i++) this.pendingFree.push(s++);
    this.pendSlot = new Int32Array(pending).fill(-1);
    this.pendNeigh = new Int32Array(pending);
    this.pendPort = new Int32Array(pending);
    this.tracer = opts.tracer ?? noTracer;
    if (opts.ftpPorts !== undefined) this.ftp.ports = opts.ftpPorts.slice();
    this.conns = new ConnTable({
      maxConns: opts.maxConns ?? 1 << 20,
      timeouts: this.timeouts,
      dests: this.config.dests,
      now: this.clock.now(),
      allocate: opts.allocate ?? null,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    });
  }

  // ------------------------------------------------------------------ ports

  /**
   * Adds a port. `hostAddrs` are addresses uvs itself owns on it (tap mode: it is the L2 host;
   * iface mode: empty, the kernel owns the interface addresses). Returns the port index.
   */
  addPort(port: Port, hostAddrs: number[] = []): number {
    if (this.ports.length >= this.maxPorts) throw new Error(`too many ports (max ${this.maxPorts})`);
    const i = this.ports.length;
    port.index = i;
    const rx = new Uint32Array(this.batch);
    for (let k = 0; k < this.batch; k++) rx[k] = i * this.batch + k;
    this.ports.push({
      port, rx, tx: new Uint32Array(this.batch * 2 + 64), txn: 0, hostAddrs, rxFrames: 0, txFrames: 0,
    });
    this.minMtu = Math.min(this.minMtu, port.mtu);
    return i;
  }

  /** Starts receiving: each port's readiness drives pollPort. */
  start(): void {
    for (let i = 0; i < this.ports.length; i++) {
      const pi = i;
      this.ports[i]!.port.onReadable(() => this.pollPort(pi));
    }
  }

  /**
   * Receives and processes batches from port pi until it is empty (at most `maxBatches` per
   * call, so one busy port cannot starve the others). Returns frames processed.
   */
  pollPort(pi: number, maxBatches = 16): number {
    const ps = this.ports[pi]!;
    const arena = this.arena;
    let total = 0;
    for (let it = 0; it < maxBatches; it++) {
      const rx = ps.rx;
      for (let k = 0; k < rx.length; k++) {
        const slot = rx[k]!;
        arena.off[slot] = slot * SLOT_SIZE + HEADROOM;
      }
      const n = ps.port.recv(arena, rx, rx.length);
      if (n <= 0) break;
      ps.rxFrames += n;
      this.processBatch(pi, rx, n);
      total += n;
      if (n < rx.length) break;
    }
    return total;
  }

  /**
   * Runs the n frames in slots rx[0..n) received on port pi through the pipeline, then sends
   * what they produced. Above PREFETCH_MIN conns the conn-table lines of the whole batch are
   * loaded first (ConnTable.prefetch), so their cache misses overlap, and each packet's conn
   * lookup starts from the ref found there (ConnTable.lookupHinted checks it).
   */
  processBatch(pi: number, rx: Uint32Array, n: number): void {
    const now = this.clock.now();
    if (this.pmtu.size !== 0) this.pmtu.now = now;
    const hinted = this.conns.count >= this.prefetchMin ? this.prefetchBatch(rx, n) : 0;
    const refs = this.pf.ref;
    for (let k = 0; k < n; k++) {
      const p = this.packets[rx[k]!]!;
      p.port = pi;
      this.hint = k < hinted ? refs[k]! : -1;
      this.process(p, now);
      if (this.heldWake) this.releaseHeld(now);
      if (this.spWake) this.releaseSynproxy(now);
    }
    this.hint = -1;
    this.flush();
  }

  /** Reads the 5-tuple of each IPv4 frame straight from its bytes (no checks beyond bounds:
   * it is only a hint), lets the conn table look them up together and touch the lines the
   * packets will read; pf.ref[k] is then the hint for frame k. Returns how many were hinted. */
  private prefetchBatch(rx: Uint32Array, n: number): number {
    const a = this.arena;
    const b = a.bytes;
    const pf = this.pf;
    const m = Math.min(n, pf.proto.length);
    for (let k = 0; k < m; k++) {
      const slot = rx[k]!;
      const f = a.off[slot]!;
      const len = a.len[slot]!;
      let proto = 0, sa = 0, da = 0, sp = 0, dp = 0;
      if (len >= 42 && b[f + 12] === 0x08 && b[f + 13] === 0x00) {
        const l4 = f + 14 + ((b[f + 14]! & 15) << 2);
        if (l4 + 4 <= f + len) {
          proto = b[f + 23]!;
          sa = rd32Bits(b, f + 26);
          da = rd32Bits(b, f + 30);
          sp = rd16(b, l4);
          dp = rd16(b, l4 + 2);
        }
      }
      pf.proto[k] = proto; pf.saddr[k] = sa; pf.daddr[k] = da; pf.sport[k] = sp; pf.dport[k] = dp;
    }
    this.conns.prefetch(m, pf.proto, pf.saddr, pf.sport, pf.daddr, pf.dport, pf.ref);
    return m;
  }

  /** Sends everything queued, then recycles scratch and released pending slots. */
  flush(): void {
    for (let i = 0; i < this.ports.length; i++) {
      const ps = this.ports[i]!;
      if (ps.txn === 0) continue;
      const sent = ps.port.send(this.arena, ps.tx, ps.txn);
      ps.txFrames += sent;
      if (sent < ps.txn) this.drops.counts[D_TX_FAILED]! += ps.txn - sent;
      ps.txn = 0;
    }
    while (this.scratchUsed.length > 0) {
      const s = this.scratchUsed.pop()!;
      this.arena.reset(s);
      this.scratchFree.push(s);
    }
    while (this.pendingReleased.length > 0) {
      const s = this.pendingReleased.pop()!;
      this.arena.reset(s);
      this.pendingFree.push(s);
    }
  }

  private queueTx(pi: number, slot: number): void {
    const ps = this.ports[pi]!;
    if (ps.txn >= ps.tx.length) {
      // Never expected (tx is sized for a full batch plus generated frames); keep the data path safe.
      this.drops.counts[D_TX_FAILED]!++;
      return;
    }
    ps.tx[ps.txn++] = slot;
  }

  private dropPkt(p: Packet, reason: number): void {
    this.drops.counts[reason]!++;
    p.drop = reason;
    // A one-packet (-o) conn lives for its one packet only, forwarded or not.
    if (p.conn >= 0 && (this.conns.flags(p.conn) & CF_ONE_PACKET) !== 0) this.conns.expire(p.conn, this.clock.now());
    if (this.tracer.on) this.tracer.end(p, '', DROP_REASONS[reason]!);
  }

  // ------------------------------------------------------------------ the pipeline

  /** Runs one frame through every stage. */
  process(p: Packet, now: number): void {
    const tr = this.tracer.on && this.tracer.begin(p, this.ports[p.port]!.port.name);
    const d = parsePacket(p);
    if (d !== 0) {
      if (tr) this.tracer.step(p, 'parse', `malformed: ${DROP_REASONS[d]}`);
      this.dropPkt(p, d);
      return;
    }
    if (p.ethType === 0x0806) {
      this.handleArp(p, now, tr);
      return;
    }
    const b = p.b;
    const ps = this.ports[p.port]!;
    const f = p.off;
    if (!macEquals(b, f + ETH_DST, ps.port.mac, 0) && !isBroadcast(b, f + ETH_DST)) {
      this.passed++;
      if (tr) this.tracer.end(p, '', 'not-for-us');
      return;
    }
    if (tr) this.tracer.step(p, 'parse', '');
    if (p.l4 < 0) {
      // A later fragment (no ports): it follows the conn its first fragment took (frag-table.ts).
      const c = this.fragmentConn(p, now);
      if (c >= 0) {
        if (tr) this.tracer.step(p, 'track', `fragment at offset ${(p.frag & IP_OFFMASK) * 8} of IP id ${rd16(b, p.l3 + IP_ID)}: conn #${c >> 1} of its first fragment`);
        this.forwardConn(p, c >> 1, c & 1, now, tr);
      } else if (this.isOwned(p.daddr, p.port) || this.isNatDest(p.saddr)) {
        this.holdFragment(p, now, tr);
      } else this.pass(p, tr);
      return;
    }
    const proto = p.proto;
    if (proto === 1) {
      if (icmpIsError(p.icmpType) && p.inL4 >= 0) {
        this.handleIcmpError(p, now, tr);
        return;
      }
      if (p.icmpType === ICMP_ECHO && this.isOwned(p.daddr, p.port)) {
        if ((p.frag & IP_F_MF) !== 0) { this.dropPkt(p, D_ECHO_FRAG); return; }
        this.echoReply(p, tr);
        return;
      }
      this.pass(p, tr);
      return;
    }
    // A reply to one of uvs's health-check probes (probe.ts): one counter test when none is in flight.
    if (this.prober.pending !== 0 && (proto === IPPROTO_TCP || proto === IPPROTO_UDP) && ((p.dport - PROBE_PORT_MIN) >>> 0) < PROBE_SLOTS &&
      this.probeReply(p, tr)) return;
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP || this.backupOnly) {
      if (tr && this.backupOnly) this.tracer.step(p, 'classify', 'backup_only=1 and a sync backup runs: left to the host');
      this.pass(p, tr);
      return;
    }
    const conns = this.conns;
    const hint = this.hint;
    this.hint = -1;
    // Addresses cross calls as int32 (`| 0`): a u32 above 2^31 would be boxed in a new HeapNumber
    // per call (the conn table compares them as u32 again).
    let ref = conns.lookupHinted(hint, proto, p.saddr | 0, p.sport, p.daddr | 0, p.dport);
    if (ref < 0 && conns.noCport !== 0) ref = this.noCportLookup(p, tr);
    let c: number;
    let dir: number;
    if (ref >= 0) {
      c = ref >> 1;
      dir = ref & 1;
      // K ip_vs_in_hook: with conn_reuse_mode != 0 a new SYN may end the conn it matches.
      const reuse = this.sysctl.connReuseMode;
      const newSyn = reuse !== 0 && dir === DIR_IN && proto === IPPROTO_TCP && (p.tcpFlags & (TCP_SYN | TCP_RST)) === TCP_SYN;
      if (newSyn && this.sysctl.expireNodestConn !== 0 && this.config.dests[conns.destId(c)]?.weight === 0 && conns.expire(c, now)) {
        // K ip_vs_in_hook: with expire_nodest_conn, a new SYN on a conn to a quiescent dest reschedules.
        if (tr) this.tracer.step(p, 'track', `conn #${c} to a quiescent dest (weight 0) expired by a new SYN (expire_nodest_conn=1), rescheduling`);
        ref = -1;
      } else if (newSyn && conns.reuseOnSyn(c, reuse)) {
        if (tr) this.tracer.step(p, 'track', `conn #${c} in TIME_WAIT/CLOSE${(reuse & 2) !== 0 ? '/FIN_WAIT' : ''} ended by a new SYN (conn_reuse_mode=${reuse}): expired, rescheduling`);
        ref = -1;
      } else if (this.sysctl.expireNodestConn !== 0 && dir === DIR_IN && conns.destId(c) >= 0 && !this.config.dests[conns.destId(c)]?.available &&
        conns.expire(c, now)) {
        // K ip_vs_in_hook with sysctl_expire_nodest_conn: expire now, schedule this packet anew.
        if (tr) this.tracer.step(p, 'track', `conn #${c} to a removed dest expired (expire_nodest_conn=1), rescheduling`);
        ref = -1;
      } else if (dir === DIR_IN && (conns.flags(c) & CF_SYNPROXY) !== 0 && (p.tcpFlags & (TCP_SYN | TCP_ACKF | TCP_RST | TCP_FIN)) === TCP_ACKF &&
        (conns.state(c) === TCP_S_TIME_WAIT || conns.state(c) === TCP_S_CLOSE) && this.spCookie(p, now) >= 0 && conns.expire(c, now)) {
        // F1 ip_vs_synproxy_reuse_conn (synproxy_conn_reuse_cl/_tw): a new cookie ACK on a closed SYN-proxied conn's tuple.
        if (tr) this.tracer.step(p, 'track', `SYN-proxied conn #${c} in ${conns.stateName(c)} ended by a new cookie ACK on its tuple`);
        ref = -1;
      } else if (tr) {
        this.tracer.step(p, 'track', `conn #${c} found (${dir === DIR_IN ? 'client→server' : 'server→client'}), state ${conns.stateName(c)}`);
      }
    }
    if (ref < 0) {
      const svc = this.classify(p);
      if (svc === undefined) {
        if (tr) this.tracer.step(p, 'classify', `no virtual service for ${protoStr(proto)} ${ipToString(p.daddr)}:${p.dport}`);
        if (this.config.hasVip(p.daddr)) this.noDestination(p, D_NO_SVC_PORT, tr);
        else if (this.sysctl.natIcmpSend !== 0 && (proto === IPPROTO_UDP || (p.tcpFlags & TCP_RST) === 0) &&
          !this.isOwned(p.daddr, p.port) && this.isNatDest(p.saddr, p.sport)) {
          // K ip_vs_out_hook with nat_icmp_send: a NAT real service's packet without a conn (not a
          // RST) is answered with ICMP port unreachable instead of leaving un-NATed.
          if (tr) this.tracer.step(p, 'track', `from NAT real server ${ipToString(p.saddr)}:${p.sport} without a conn: ICMP port unreachable to it (nat_icmp_send=1)`);
          this.icmpError(p, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, this.routeSrc(p.saddr));
          this.dropPkt(p, D_NAT_NO_CONN);
        } else this.pass(p, tr);
        return;
      }
      if (tr) this.tracer.step(p, 'classify', `service ${svcStr(svc)} (${svc.schedName}${svc.persistent ? `, persistent ${svc.timeout}s` : ''})`);
      if (svc.synproxy && proto === IPPROTO_TCP && p.l4 >= 0) {
        const fl = p.tcpFlags & (TCP_SYN | TCP_ACKF | TCP_RST | TCP_FIN);
        if (fl === TCP_SYN) { this.synproxySyn(p, now, tr); return; }
        if (fl === TCP_ACKF) { this.synproxyAck(p, svc, now, tr); return; }
      }
      // Field stores, not a key.set(…) call: a u32 address above 2^31 passed to a call that V8
      // does not inline is boxed in a HeapNumber (tried: the no-alloc SYN test caught it).
      const key = this.key;
      key.proto = proto;
      key.saddr = p.saddr;
      key.sport = p.sport;
      key.daddr = p.daddr;
      key.dport = p.dport;
      key.icmpError = false;
      c = this.newConn(p, svc, now, tr);
      if (c < 0) return;
      dir = DIR_IN;
    } else {
      c = ref >> 1;
      dir = ref & 1;
    }
    this.forwardConn(p, c, dir, now, tr);
  }

  /**
   * K ip_vs_conn_in_get's second try while conns without a client port exist (the FTP helper's
   * passive data conns): the packet's tuple with client port 0; a hit gets the port filled in
   * (K ip_vs_nat_xmit → ip_vs_conn_fill_cport). Returns the ref or -1.
   */
  private noCportLookup(p: Packet, tr: boolean): number {
    const conns = this.conns;
    const ref = conns.lookup(p.proto, p.saddr | 0, 0, p.daddr | 0, p.dport);
    if (ref < 0 || (ref & 1) !== DIR_IN || (conns.flags(ref >> 1) & (CF_NO_CPORT | CF_TEMPLATE)) !== CF_NO_CPORT) return -1;
    conns.fillCport(ref >> 1, p.sport);
    if (tr) this.tracer.step(p, 'track', `conn #${ref >> 1} found, made without a client port (an FTP passive data conn): client port ${p.sport} filled in, state ${conns.stateName(ref >> 1)}`);
    return ref;
  }

  /**
   * The conn ref (c << 1 | dir) the first fragment of p's datagram took, when that conn still
   * holds p's addresses in that direction (it may have expired and its slot been reused), else -1.
   */
  private fragmentConn(p: Packet, now: number): number {
    const proto = p.proto;
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return -1;
    const sa = p.saddr | 0, da = p.daddr | 0;
    const ref = this.frags.get(proto, sa, da, rd16(p.b, p.l3 + IP_ID), now);
    if (ref < 0) return -1;
    const conns = this.conns;
    const c = ref >> 1;
    if ((conns.flags(c) & (CF_IN_USE | CF_TEMPLATE)) !== CF_IN_USE || conns.proto(c) !== proto) return -1;
    if ((ref & 1) === DIR_IN) return conns.caddrBits(c) === sa && conns.vaddrBits(c) === da ? ref : -1;
    const la = conns.laddrBits(c);
    return conns.daddrBits(c) === sa && (la !== 0 ? la : conns.caddrBits(c)) === da ? ref : -1;
  }

  /** A first fragment remembers its conn for the rest of its datagram; the later ones count
   * what went through, so it is forgotten once the whole datagram has, in any order. */
  private trackFragment(p: Packet, c: number, dir: number, now: number): void {
    const id = rd16(p.b, p.l3 + IP_ID);
    const bytes = p.ipLen - p.ihl;
    if (p.l4 >= 0) {
      this.frags.put(p.proto, p.saddr | 0, p.daddr | 0, id, (c << 1) | dir, bytes, now);
      if (this.heldCount > 0) this.heldWake = true;
    } else this.frags.passed(p.proto, p.saddr | 0, p.daddr | 0, id, bytes, (p.frag & IP_OFFMASK) * 8 + bytes, (p.frag & IP_F_MF) === 0, now);
  }

  /**
   * A later fragment to a uvs address whose first fragment has not come (yet): a copy is held in a
   * pending slot until it does (the kernel would queue it for reassembly). At most HELD_FRAGS are
   * held; the oldest makes room (dropped, counted `fragment-no-conn`), and tick() drops those
   * held longer than FRAG_TIMEOUT_MS.
   */
  private holdFragment(p: Packet, now: number, tr: boolean): void {
    if (p.proto !== IPPROTO_TCP && p.proto !== IPPROTO_UDP) {
      if (tr) this.tracer.step(p, 'track', 'fragment of a protocol uvs does not balance: no conn');
      this.dropPkt(p, D_FRAG_NO_CONN);
      return;
    }
    let k = this.heldSlot.indexOf(-1);
    if (k < 0) {
      // Full: the oldest held fragment gives way.
      k = 0;
      for (let i = 1; i < HELD_FRAGS; i++) if (this.heldAt[i]! < this.heldAt[k]!) k = i;
      this.dropHeld(k);
    }
    const slot = this.pendingFree.pop();
    if (slot === undefined) {
      if (tr) this.tracer.step(p, 'track', 'fragment before its first fragment, and no slot to hold it: dropped');
      this.dropPkt(p, D_FRAG_NO_CONN);
      return;
    }
    this.copyToSlot(p, slot);
    this.heldSlot[k] = slot;
    this.heldK0[k] = (p.proto << 16) | rd16(p.b, p.l3 + IP_ID);
    this.heldSa[k] = p.saddr | 0;
    this.heldDa[k] = p.daddr | 0;
    this.heldPort[k] = p.port;
    this.heldAt[k] = now;
    this.heldCount++;
    if (tr) {
      this.tracer.step(p, 'track', `fragment at offset ${(p.frag & IP_OFFMASK) * 8} came before its first fragment: held until that comes (${this.heldCount} held)`);
      this.tracer.end(p, '', '');
    }
  }

  /** Copies p's frame and its offload metadata into `slot` (same offset within the slot). */
  private copyToSlot(p: Packet, slot: number): void {
    const a = this.arena;
    const f = p.off;
    const dst = a.slotStart(slot) + (f - a.slotStart(p.slot));
    p.b.copyWithin(dst, f, f + p.len);
    a.off[slot] = dst;
    a.len[slot] = p.len;
    a.meta.copyWithin(slot * META_WORDS, p.slot * META_WORDS, p.slot * META_WORDS + META_WORDS);
  }

  /** Runs the held fragments whose first fragment has come through the pipeline again. */
  private releaseHeld(now: number): void {
    this.heldWake = false;
    for (let k = 0; k < HELD_FRAGS; k++) {
      const s = this.heldSlot[k]!;
      if (s < 0) continue;
      const k0 = this.heldK0[k]!;
      if (this.frags.get(k0 >>> 16, this.heldSa[k]!, this.heldDa[k]!, k0 & 0xffff, now) < 0) continue;
      this.heldSlot[k] = -1;
      this.heldCount--;
      const q = this.packets[s]!;
      q.port = this.heldPort[k]!;
      this.process(q, now);
      this.pendingReleased.push(s); // recycled after the flush that sends it
    }
  }

  /** Drops held fragment k (counted `fragment-no-conn`), its slot back to the pool. */
  private dropHeld(k: number): void {
    const s = this.heldSlot[k]!;
    this.heldSlot[k] = -1;
    this.heldCount--;
    this.arena.reset(s);
    this.pendingFree.push(s);
    this.drops.counts[D_FRAG_NO_CONN]!++;
  }

  /**
   * The rest of the pipeline for a packet of conn c in direction dir: state, counters, TTL, the
   * forwarder, egress. A first fragment (MF, offset 0) leaves its conn in the fragment table for
   * the fragments after it; those (p.l4 < 0) skip the state machine, and the entry goes once all
   * of the datagram went through.
   */
  private forwardConn(p: Packet, c: number, dir: number, now: number, tr: boolean): void {
    const conns = this.conns;
    const proto = p.proto;
    const b = p.b;
    p.conn = c;
    p.dir = dir;
    p.traceId = c + 1;
    const dest = this.config.dests[conns.destId(c)];
    if (dest === undefined || !dest.available) {
      // expire_nodest_conn=0: packets of conns to a removed dest are dropped until they expire.
      if (tr) this.tracer.step(p, 'track', 'dest of this conn was removed: dropped (expire_nodest_conn=0)');
      this.dropPkt(p, D_DEST_UNAVAIL);
      return;
    }
    const cf = conns.flags(c);
    // SYN proxy: awaiting the real server's SYN-ACK, the client's segments are held (fwd/synproxy.ts).
    if ((cf & CF_SYNPROXY) !== 0 && p.l4 >= 0 && proto === IPPROTO_TCP && !this.spSending && conns.state(c) === TCP_S_SYN_RECV &&
      this.synproxyWaiting(p, c, dir, dest.fwd, now, tr)) return;
    // F1 syn_proxy_is_ack_storm: the real server repeating one ACK (same seq and ack) over and over.
    if ((cf & CF_SYNPROXY) !== 0 && dir !== DIR_IN && p.l4 >= 0 && proto === IPPROTO_TCP && (p.tcpFlags & TCP_ACKF) !== 0 &&
      this.sysctl.synproxyDupAckThresh !== 0 &&
      conns.spAckStorm(c, rd32Bits(b, p.l4 + TCP_SEQ), rd32Bits(b, p.l4 + TCP_ACK), this.sysctl.synproxyDupAckThresh)) {
      if (tr) this.tracer.step(p, 'synproxy', `the real server's ACK repeated (seq and ack as before) ${this.sysctl.synproxyDupAckThresh} times or more: dropped (ACK storm, synproxy_dup_ack_thresh)`);
      this.dropPkt(p, D_SP_ACK_STORM);
      return;
    }
    if ((p.frag & IP_F_MF) !== 0 || p.l4 < 0) this.trackFragment(p, c, dir, now);
    if (dir === DIR_IN && p.l4 >= 0) conns.countIn(c); // K cp->in_pkts (per datagram): drop_entry, sync
    if (p.l4 < 0) {
      // A later fragment: the datagram's state change came with its first fragment.
    } else if (proto === IPPROTO_TCP) {
      const changed = conns.tcpTransition(c, dir, p.tcpFlags, now);
      if (tr) this.tracer.step(p, 'state', changed
        ? `${stateNameOf(conns, conns.lastOldState)} → ${conns.stateName(c)} (timeout ${conns.timeout(c) / 1000}s)`
        : `${conns.stateName(c)} (unchanged, timeout ${conns.timeout(c) / 1000}s)`);
    } else {
      conns.udpPacket(c, dir, now);
      if (tr) this.tracer.step(p, 'state', `UDP (timeout ${conns.timeout(c) / 1000}s)`);
    }
    if (this.syncMaster !== null && dir === DIR_IN && p.l4 >= 0) {
      // K ip_vs_in → ip_vs_sync_conn
      const n = this.syncMaster.connPacket(c, now);
      this.syncRecordsSent += n;
      if (tr) this.tracer.step(p, 'sync', n > 0 ? `sent to the backup (${n} record${n > 1 ? 's' : ''}; client packet ${conns.inPkts(c)})` : `not sent this time (client packet ${conns.inPkts(c)}; sync_threshold ${this.sysctl.syncThreshold} ${this.sysctl.syncPeriod})`);
    }
    // Counters (kernel ip_vs_in_stats / ip_vs_out_stats: IP length). The kernel counts a
    // fragmented datagram once, reassembled: its first fragment counts the packet, each later
    // one only the payload it adds.
    const svc = dest.svc;
    const pkts = p.l4 < 0 ? 0 : 1;
    const bytes = p.l4 < 0 ? p.ipLen - p.ihl : p.ipLen;
    if (dir === DIR_IN) {
      dest.stats.inpkts += pkts; dest.stats.inbytes += bytes;
      svc.stats.inpkts += pkts; svc.stats.inbytes += bytes;
      this.stats.inpkts += pkts; this.stats.inbytes += bytes;
    } else {
      dest.stats.outpkts += pkts; dest.stats.outbytes += bytes;
      svc.stats.outpkts += pkts; svc.stats.outbytes += bytes;
      this.stats.outpkts += pkts; this.stats.outbytes += bytes;
    }
    if (p.ttl <= 1) {
      this.icmpError(p, ICMP_TIME_EXCEEDED, 0, 0, this.routeSrc(p.saddr) || p.daddr);
      this.dropPkt(p, D_TTL);
      return;
    }
    if (tr) this.tracer.before(p);
    decTtl(b, p.l3);
    p.ttl--;
    const fwd = FORWARDERS[dest.fwd]!;
    if ((cf & CF_SYNPROXY) !== 0 && proto === IPPROTO_TCP && p.l4 >= 0) {
      const delta = conns.spSeq(c);
      if (dir === DIR_IN) spInbound(p, delta);
      else spOutbound(p, delta);
      if (tr && delta !== 0) this.tracer.step(p, 'synproxy', dir === DIR_IN ? `ack (and SACK blocks) − ${delta >>> 0} into the real server's numbers` : `seq + ${delta >>> 0} into the cookie's numbers`);
    }
    if ((cf & CF_PP_MASK) !== 0 && p.l4 >= 0 && proto === IPPROTO_TCP) {
      const r = dir === DIR_IN ? ppInbound(p, c, this) : ppOutbound(p, c, this);
      if (tr) this.tracePp(p, c, r);
      if (r !== 0) { this.dropPkt(p, r); return; }
      if (ppLastAction === PP_INSERTED && this.syncMaster !== null) {
        this.syncRecordsSent += this.syncMaster.sendNow(c, now); // the backup must know the header went out
        if (tr) this.tracer.step(p, 'sync', 'sent to the backup (the PROXY header went out)');
      }
    } else if ((cf & FTP_APP_MASK) === FTP_APP_BITS && dest.fwd === FWD_MASQ && proto === IPPROTO_TCP && p.l4 >= 0) {
      // The FTP helper (fwd/ftp.ts): PASV/EPSV replies rewritten to the VIP, data conns expected.
      const r = dir === DIR_IN ? this.ftp.inbound(p, c, dest, this, now) : this.ftp.outbound(p, c, dest, this, now);
      if (tr) this.traceFtp(p, c, dir, r);
      if (r !== 0) { this.dropPkt(p, r); return; }
      if (ftpLast.rewritten && ftpLast.diff !== 0 && this.syncMaster !== null) {
        this.syncRecordsSent += this.syncMaster.sendNow(c, now); // a backup must move the seqs by as much
        if (tr) this.tracer.step(p, 'sync', 'sent to the backup (the stream\'s length changed)');
      }
    } else if (dest.fwd === FWD_FULLNAT && proto === IPPROTO_TCP && p.l4 >= 0) {
      // TOA (fwd/toa.ts): the client's address in a TCP option of the first segments.
      const r = dir === DIR_IN ? toaInbound(p, c, this) : toaOutbound(p, c, this);
      if (r !== AO_NOTHING) {
        this.toaCounts[r]++;
        if (tr) this.tracer.step(p, 'toa', r === AO_ADDED
          ? `TCP option 254 (TOA, ${ipToString(conns.caddr(c))}:${conns.cport(c)}) put after the fixed TCP header (+8 bytes)` : TOA_TEXT[r]!);
      }
    } else if (dest.fwd === FWD_FULLNAT && proto === IPPROTO_UDP && dir === DIR_IN && p.l4 >= 0 && this.sysctl.fullnatUoaMaxTrail !== 0) {
      // UOA (fwd/uoa.ts): the client's address in the first datagrams.
      let r = uoaInbound(p, c, this);
      if ((r === AO_SKIP_OPTION_ROOM || r === AO_SKIP_MTU) && this.sendUoaDatagram(p, c, now)) r = UOA_STANDALONE;
      if (r !== AO_NOTHING) {
        this.uoaCounts[r]++;
        if (tr) this.tracer.step(p, 'uoa', r === AO_ADDED
          ? `UOA (${ipToString(conns.caddr(c))}:${conns.cport(c)}) ${this.sysctl.fullnatUoaMode === UOA_M_IPO ? 'put in as IPv4 option 31 (+8 bytes)' : 'put in front of the UDP header behind IP protocol 248 (+12 bytes)'}, client datagram ${conns.inPkts(c)} of ${this.sysctl.fullnatUoaMaxTrail}`
          : r === UOA_STANDALONE ? `UOA (${ipToString(conns.caddr(c))}:${conns.cport(c)}) sent in an empty datagram of its own first (no room in this one)` : UOA_TEXT[r]!);
      }
    }
    if (p.gsoType !== 0 && dest.fwd === FWD_TUNNEL && dir === DIR_IN) {
      this.forwardSegmented(p, c, fwd, now, tr);
      return;
    }
    if (dest.fwd === FWD_TUNNEL && dir === DIR_IN && (p.frag & IP_F_DF) === 0 &&
      p.ipLen + tunOverhead(dest) > (this.minMtu < this.pmtu.min ? this.minMtu : this.pmtu.min)) {
      const mtu = this.routeMtu(conns.daddrBits(c)) - tunOverhead(dest);
      if (mtu >= 68 && p.ipLen > mtu) {
        this.forwardInnerFragments(p, c, fwd, mtu, now, tr);
        return;
      }
    }
    const r = dir === DIR_IN ? fwd.inbound(p, c, this) : fwd.outbound(p, c, this);
    if (r !== 0) {
      if (tr) this.tracer.step(p, 'forward', `${fwd.name}: ${DROP_REASONS[r]}`);
      this.dropPkt(p, r);
      return;
    }
    if (tr) { this.tracer.after(p); this.tracer.step(p, 'forward', fwd.name); }
    this.onePacketDone(c, p, now);
    this.egress(p, now, tr);
  }

  /** The tracer's lines for what the FTP helper did to p (drop reason r). */
  private traceFtp(p: Packet, c: number, dir: number, r: number): void {
    if (r !== 0) { this.tracer.step(p, 'ftp', `dropped: ${DROP_REASONS[r]}`); return; }
    const conns = this.conns;
    if (ftpLast.seqMoved !== 0) this.tracer.step(p, 'ftp', `seq ${ftpLast.seqMoved > 0 ? '+' : '−'} ${Math.abs(ftpLast.seqMoved)} (the rewritten replies before it changed the stream's length)`);
    if (ftpLast.ackMoved !== 0) this.tracer.step(p, 'ftp', `ack (and SACK) ${ftpLast.ackMoved > 0 ? '−' : '+'} ${Math.abs(ftpLast.ackMoved)} back into the server's numbers`);
    const ev = ftpLast.event;
    if (ev < 0) return;
    const n = ftpLast.data;
    const dc = `data conn #${n} ${ipToString(conns.caddr(n))}:${conns.cport(n) || '*'} → ${ipToString(conns.vaddr(n))}:${conns.vport(n)} ⇒ ${ipToString(conns.daddr(n))}:${conns.dport(n)} (${conns.stateName(n)}, controlled by conn #${c})`;
    if (dir === DIR_IN) {
      this.tracer.step(p, 'ftp', `${ev === FTP_EV_EPRT ? 'EPRT' : 'PORT'} command: the server's active data connection expected, ${dc}`);
    } else {
      const how = ev === FTP_EV_PASV ? `227 reply: the passive address rewritten to ${ipToString(conns.vaddr(n))} port ${conns.vport(n)}` : `229 reply (port ${conns.vport(n)})`;
      this.tracer.step(p, 'ftp', `${how}${ftpLast.diff !== 0 ? ` (${ftpLast.diff > 0 ? '+' : ''}${ftpLast.diff} bytes: later server seqs move)` : ''}; ${dc}`);
    }
  }

  /** The tracer's line for what the PROXY protocol step did to p (drop reason r). */
  private tracePp(p: Packet, c: number, r: number): void {
    const n = connPpLen(this, c);
    const v = (this.conns.flags(c) & CF_PP_V2) !== 0 ? 'v2' : 'v1';
    const first = this.conns.ppSeq(c) >>> 0;
    let text: string;
    if (r !== 0) text = `not sent: ${DROP_REASONS[r]}`;
    else if (ppLastAction === PP_INSERTED) text = `${v} header (${n} bytes: ${ipToString(this.conns.caddr(c))}:${this.conns.cport(c)} → ${ipToString(this.conns.vaddr(c))}:${this.conns.vport(c)}) put in front of the client's first data (seq ${first}); later client seqs +${n}, server acks −${n}`;
    else if (ppLastAction === PP_REINSERTED) text = `retransmission of the first data (seq ${first}): the ${v} header (${n} bytes) again`;
    else if (ppLastAction === PP_SEQ_SHIFTED) text = `seq +${n} (the ${v} header sent before seq ${first})`;
    else if (ppLastAction === PP_ACK_ADJUSTED) text = `ack/SACK −${n} (the ${v} header is not the client's data)`;
    else if (ppLastAction === PP_MSS_LOWERED) text = `SYN-ACK MSS lowered by ${n} (room for the ${v} header)`;
    else return;
    this.tracer.step(p, 'proxy', text);
  }

  /** DPVS's standalone UOA datagram for FULLNAT UDP conn c (fwd/uoa.ts), sent ahead of client
   * datagram p, which had no room for the option. False when no scratch slot was free. */
  private sendUoaDatagram(p: Packet, c: number, now: number): boolean {
    const k = this.scratchFree.pop();
    if (k === undefined) return false;
    this.scratchUsed.push(k);
    const a = this.arena;
    a.reset(k);
    a.len[k] = writeUoaDatagram(a.bytes, a.off[k]!, c, this, p.ttl, p.b[p.l3 + 1]!);
    const q = this.packets[k]!;
    parsePacket(q);
    q.port = p.port;
    q.nextHop = this.conns.daddr(c);
    this.egress(q, now, false);
    return true;
  }

  /**
   * A GSO super-frame for a TUN dest: the kernel cannot segment TCP inside IPIP from a
   * virtio-net header, so it is cut into segments here (each fitting the tunnel MTU), and each
   * segment is encapsulated and sent on its own.
   */
  private forwardSegmented(p: Packet, c: number, fwd: Forwarder, now: number, tr: boolean): void {
    if (p.proto !== IPPROTO_TCP) { this.dropPkt(p, D_GSO); return; }
    const b = p.b;
    const doff = (b[p.l4 + 12]! >>> 4) << 2;
    const room = this.routeMtu(this.conns.daddr(c)) - tunOverhead(this.conns.dest(c)) - p.ihl - doff;
    if (room < 8) { this.dropPkt(p, D_GSO); return; }
    const mss = p.gsoSize > 0 ? Math.min(p.gsoSize, room) : room;
    const n = segmentCount(b, p.off, p.len, mss);
    if (tr) this.tracer.step(p, 'forward', `GSO super-frame of ${p.len} bytes: segmented in software into ${n} segments of ≤ ${mss} bytes for the tunnel`);
    const a = this.arena;
    for (let k = 0; k < n; k++) {
      const s = this.scratchFree.pop();
      if (s === undefined) { this.drops.counts[D_GSO]! += n - k; break; }
      this.scratchUsed.push(s);
      a.reset(s);
      const len = writeTcpSegment(b, p.off, p.len, mss, k, a.off[s]!);
      a.len[s] = len;
      const q = this.packets[s]!;
      parsePacket(q);
      q.port = p.port;
      q.conn = c;
      q.dir = DIR_IN;
      q.traceId = p.traceId;
      const r = fwd.inbound(q, c, this);
      if (r !== 0) { this.drops.counts[r]!++; continue; }
      this.egress(q, now, false);
    }
    if (tr) this.tracer.end(p, '', '');
  }

  /**
   * A packet without DF too big for the IPIP tunnel: it is fragmented BEFORE encapsulation (inner
   * fragmentation, RFC 4459 §3.1) and each fragment is encapsulated and sent on its own, so no
   * IPIP packet is itself a fragment: the real server's tunnel endpoint (a kernel tunl0, or `uvs
   * tunnel-endpoint`, which does not reassemble) decapsulates each, and the real server's stack
   * reassembles the datagram. (The kernel's IPVS fragments the IPIP packet instead, leaving the
   * reassembly to the tunnel endpoint; the datagram the real server gets is the same.)
   */
  private forwardInnerFragments(p: Packet, c: number, fwd: Forwarder, mtu: number, now: number, tr: boolean): void {
    const ihl = p.ihl;
    const totLen = p.ipLen;
    const n = fragmentCount(totLen, ihl, mtu);
    if (n > this.scratchFree.length || !this.completePartial(p)) { this.dropPkt(p, D_TOO_BIG); return; }
    if (tr) this.tracer.step(p, 'forward', `${totLen} bytes > tunnel MTU ${mtu}, no DF: cut into ${n} fragments, each encapsulated`);
    for (let k = 0; k < n; k++) {
      const q = this.fragmentInto(p, ihl, totLen, mtu, k);
      const r = fwd.inbound(q, c, this);
      if (r !== 0) { this.drops.counts[r]!++; continue; }
      this.egress(q, now, false);
    }
    this.onePacketDone(c, p, now);
    if (tr) this.tracer.end(p, '', '');
  }

  /** A one-packet (-o) conn ends with its packet — with the last fragment of a fragmented one,
   * whose later fragments still follow it (the kernel sees the datagram reassembled). */
  private onePacketDone(c: number, p: Packet, now: number): void {
    if ((this.conns.flags(c) & CF_ONE_PACKET) !== 0 && (p.frag & IP_F_MF) === 0) this.conns.expire(c, now);
  }

  /**
   * Service for a packet without a conn (K ip_vs_service_find): the fwmark service of the mark
   * the mark rules give it (uvs has no kernel marks: src/model/mark-rules.ts, first match wins),
   * else proto + VIP + port, else the VIP's port-0 service. The kernel checks the fwmark table
   * first, so a marked packet goes to its fwmark service even when a proto/VIP/port service
   * exists; a mark without a fwmark service falls through. Runs only on a conn miss.
   */
  private classify(p: Packet): Service | undefined {
    const config = this.config;
    if (config.markRules.count !== 0) {
      const mark = config.markRules.match(p.proto, p.saddr, p.daddr, p.dport);
      if (mark !== 0) {
        const s = config.findMark(mark);
        if (s !== undefined) return s;
      }
    }
    return config.lookup(p.proto, p.daddr | 0, p.dport); // int32 across calls: see process()
  }

  /**
   * A new conn for p in svc (K ip_vs_schedule / ip_vs_sched_persist): TCP needs a SYN; then a
   * persistence template or the scheduler picks the dest; FULLNAT takes a local address/port.
   * Returns the conn index, or -1 after dropping the packet. `synproxied`: the client's cookie ACK
   * opens it (fwd/synproxy.ts), not a SYN.
   */
  private newConn(p: Packet, svc: Service, now: number, tr: boolean, synproxied = false): number {
    const key = this.key;
    const proto = key.proto;
    const icmp = key.icmpError;
    // The conn's client and virtual address: the key's source and destination, or the other way
    // round for an ICMP error, whose key is its quoted packet (VIP → client; K ip_vs_schedule
    // with an inverse iph).
    const caddr = icmp ? key.daddr : key.saddr;
    const cport = icmp ? key.dport : key.sport;
    const vaddr = icmp ? key.saddr : key.daddr;
    const vport = icmp ? key.sport : key.dport;
    // K tcp_conn_schedule: only a SYN without RST starts a conn — any packet without RST with
    // sloppy_tcp=1 (a director taking over established flows, e.g. after a failover); an ICMP
    // error's quoted header is not checked.
    if (!icmp && !synproxied && proto === IPPROTO_TCP && ((p.tcpFlags & TCP_RST) !== 0 || ((p.tcpFlags & TCP_SYN) === 0 && this.sysctl.sloppyTcp === 0))) {
      if (tr) this.tracer.step(p, 'schedule', (p.tcpFlags & TCP_RST) !== 0 ? 'RST and no conn: not scheduled' : 'not a SYN and no conn: not scheduled (sloppy_tcp=0)');
      this.dropPkt(p, D_NON_SYN);
      return -1;
    }
    // K ip_vs_todrop (drop_packet): under pressure, one new conn in dropRate is refused.
    if (this.dropRate !== 0 && --this.dropCounter <= 0) {
      this.dropCounter = this.dropRate;
      if (tr) this.tracer.step(p, 'schedule', `drop_packet: 1 new conn in ${this.dropRate} dropped (conn table ${this.conns.count}/${this.conns.capacity})`);
      this.dropPkt(p, D_DEFENCE);
      return -1;
    }
    const conns = this.conns;
    let dest: Dest | null = null;
    let ctrl = -1;
    const note = tr ? this.note : null;
    if (svc.persistent) {
      const cm = (caddr & svc.netmask) >>> 0;
      let tproto = proto;
      let tvaddr = vaddr;
      let tvport = svc.port;
      if (svc.fwmark) { tproto = IPPROTO_IP; tvaddr = svc.fwmark; tvport = 0; } else if (svc.port === 0 || svc.port === FTP_PORT) tvport = 0;
      let t = conns.lookupTemplate(tproto, cm, tvaddr, tvport);
      if (t >= 0 && !conns.checkTemplate(t, this.sysctl.expireQuiescentTemplate !== 0)) {
        if (tr) this.tracer.step(p, 'schedule', `persistence template #${t} invalid (dest gone${this.sysctl.expireQuiescentTemplate !== 0 ? ' or quiescent' : ''}): rescheduling`);
        t = -1;
      }
      if (t >= 0) {
        dest = this.config.dests[conns.destId(t)] ?? null;
        if (tr) this.tracer.step(p, 'schedule', `persistence template #${t} ${ipToString(cm)} → ${dest ? ipToString(dest.addr) : '?'}:${conns.dport(t)}`);
      } else {
        dest = svc.sched.pick(key, now, note);
        if (dest !== null) {
          // K ip_vs_sched_persist: dport = dest port only for a packet to the service port of a
          // non-FTP service; FTP, port-0 and fwmark templates carry dport 0.
          const tdport = vport === svc.port && svc.port !== FTP_PORT ? dest.port : 0;
          t = conns.createTemplate(tproto, cm, tvaddr, tvport, dest.addr, tdport, dest, svc.id, svc.timeout * 1000, now);
          if (t < 0) { this.dropPkt(p, D_CONN_FULL); return -1; }
          if (tr) this.tracer.step(p, 'schedule', `${note!.text || svc.schedName} ; new persistence template #${t} for ${ipToString(cm)} (${svc.timeout}s)`);
        }
      }
      ctrl = t;
    } else {
      dest = svc.sched.pick(key, now, note);
      if (tr) this.tracer.step(p, 'schedule', note!.text || `${svc.schedName} → ${dest ? `${ipToString(dest.addr)}:${dest.port}` : 'none'}`);
    }
    if (dest === null) {
      if (icmp) this.dropPkt(p, D_NO_DEST); // no ICMP about an ICMP error
      else this.noDestination(p, D_NO_DEST, tr);
      return -1;
    }
    // Port: the dest's port when the packet is for the service port; port-0 and fwmark services
    // (and dests with port 0) keep the client's destination port.
    const dport = dest.port !== 0 && (vport === svc.port || !svc.persistent) ? dest.port : vport;
    let laddr = 0;
    let lport = 0;
    if (dest.fwd === FWD_FULLNAT) {
      if (svc.laddrs.length === 0) { if (tr) this.tracer.step(p, 'schedule', 'FULLNAT dest but no local address (-P)'); this.dropPkt(p, D_NO_LADDR); return -1; }
      if (!this.laddrPool.allocate(svc, proto, dest.addr, dport, conns)) {
        if (tr) this.tracer.step(p, 'schedule', 'FULLNAT local address pool exhausted');
        this.dropPkt(p, D_LADDR_EXHAUSTED);
        return -1;
      }
      laddr = this.laddrPool.laddr;
      lport = this.laddrPool.lport;
    }
    const onePacket = proto === IPPROTO_UDP && (svc.flags & 0x0004) !== 0 ? CF_ONE_PACKET : 0;
    // Addresses as int32 bits (see process()); the table stores the same 32 bits.
    const c = conns.create(proto, caddr | 0, cport, vaddr | 0, vport, dest.addr | 0, dport, laddr | 0, lport, dest, svc.id, ctrl, now, onePacket);
    if (c < 0) {
      if (tr) this.tracer.step(p, 'track', 'conn table full');
      this.dropPkt(p, D_CONN_FULL);
      return -1;
    }
    // --proxy-protocol: TCP conns whose replies come back through the director (NAT, FULLNAT).
    if (svc.proxyProtocol !== 0 && proto === IPPROTO_TCP && (dest.fwd === FWD_MASQ || dest.fwd === FWD_FULLNAT)) {
      conns.setProxyProtocol(c, svc.proxyProtocol);
    } else if (proto === IPPROTO_TCP && dest.fwd === FWD_MASQ && !synproxied && this.ftp.bindsTo(vport)) {
      // K ip_vs_bind_app (tcp_app_conn_bind): NAT conns to an FTP port get the helper.
      this.ftp.bind(conns, c);
      if (tr) this.tracer.step(p, 'track', `FTP helper bound (NAT, port ${vport}): PASV/EPSV replies will name the VIP, PORT/EPRT data connections are expected`);
    }
    dest.stats.conns++;
    svc.stats.conns++;
    this.stats.conns++;
    if (tr) this.tracer.step(p, 'track', `new conn #${c} ${ipToString(caddr)}:${cport} → ${ipToString(vaddr)}:${vport} ⇒ ${ipToString(dest.addr)}:${dport}${laddr ? ` via ${ipToString(laddr)}:${lport}` : ''} (${fwdStr(dest.fwd)})`);
    return c;
  }

  // ---------------------------------------------------------------- SYN proxy (fwd/synproxy.ts)

  /** The data-path clock's minute (the cookie's time counter). */
  private spMinute(now: number): number {
    return Math.floor(now / 60_000) | 0;
  }

  /** The cookie data of client ACK p (its ack − 1 checked against its addresses, ports and seq − 1), or -1. */
  private spCookie(p: Packet, now: number): number {
    const b = p.b;
    const l4 = p.l4;
    return this.cookies.check(p.saddr | 0, p.sport, p.daddr | 0, p.dport, (rd32Bits(b, l4 + 4) - 1) | 0, (rd32Bits(b, l4 + 8) - 1) | 0,
      this.spMinute(now));
  }

  /** Step 1: a client's SYN to a SYN-proxy service is answered with a cookie SYN-ACK, in place; nothing is kept. */
  private synproxySyn(p: Packet, now: number, tr: boolean): void {
    const b = p.b;
    const l4 = p.l4;
    const end = l4 + ((b[l4 + 12]! >>> 4) << 2);
    const o = tcpOption(b, l4 + 20, end, 2, 4);
    const sack = this.sysctl.synproxySack !== 0 && tcpOption(b, l4 + 20, end, 4, 2) >= 0;
    const data = cookieData(o < 0 ? 0 : rd16(b, o + 2), this.sysctl.synproxyInitMss, sack);
    const cookie = this.cookies.make(p.saddr | 0, p.sport, p.daddr | 0, p.dport, rd32Bits(b, l4 + 4), this.spMinute(now), data);
    if (tr) this.tracer.before(p);
    synackInPlace(p, cookie, data, this.sysctl.synproxySynackTtl);
    this.spCounts[SP_SYNACK]++;
    this.sendBack(p);
    if (tr) {
      parsePacket(p);
      this.tracer.after(p);
      this.tracer.step(p, 'synproxy', `SYN answered by the director: SYN-ACK with cookie ISN ${cookie >>> 0} (MSS ${SP_MSSTAB[data & 3]}${(data & SP_DATA_SACK) !== 0 ? ', SACK permitted' : ''}); no conn, no real server yet`);
      this.tracer.end(p, this.ports[p.port]!.port.name, '');
    }
  }

  /**
   * Step 2: a client's ACK without a conn to a SYN-proxy service. A valid cookie opens the conn
   * (scheduled now), the client's SYN goes to the real server, the ACK is held until its SYN-ACK.
   */
  private synproxyAck(p: Packet, svc: Service, now: number, tr: boolean): void {
    const b = p.b;
    const l4 = p.l4;
    const data = this.spCookie(p, now);
    if (data < 0) {
      if (tr) this.tracer.step(p, 'synproxy', 'ACK without a conn whose cookie is not valid (a forged or stale ACK): dropped');
      this.dropPkt(p, D_SP_BAD_ACK);
      return;
    }
    const doff = (b[l4 + 12]! >>> 4) << 2;
    if (this.sysctl.synproxyDefer !== 0 && p.ipLen - p.ihl - doff <= 0) {
      if (tr) this.tracer.step(p, 'synproxy', 'cookie ACK without data (synproxy_defer=1): dropped, the client sends its data with it again');
      this.dropPkt(p, D_SP_NULL_ACK);
      return;
    }
    this.spCounts[SP_ACK_OK]++;
    if (tr) this.tracer.step(p, 'synproxy', `cookie ACK valid (MSS ${SP_MSSTAB[data & 3]}${(data & SP_DATA_SACK) !== 0 ? ', SACK permitted' : ''}): the conn opens now`);
    const key = this.key;
    key.proto = IPPROTO_TCP;
    key.saddr = p.saddr;
    key.sport = p.sport;
    key.daddr = p.daddr;
    key.dport = p.dport;
    key.icmpError = false;
    const c = this.newConn(p, svc, now, tr, true);
    if (c < 0) return;
    const isn = (rd32Bits(b, l4 + 4) - 1) | 0;
    this.spSendSyn(c, p.port, isn, rd16(b, l4 + 14), data, now);
    this.conns.setSynproxy(c, (rd32Bits(b, l4 + 8) - 1) | 0);
    if (tr) this.tracer.step(p, 'synproxy', `the client's SYN (ISN ${isn >>> 0}) sent to the real server; this ACK is held until its SYN-ACK`);
    this.spHold(p, c, data, true, now, tr);
  }

  /** The client's SYN for conn c to its real server, through the conn's forwarder (NAT/FULLNAT rewrite, TOA). */
  private spSendSyn(c: number, port: number, isn: number, win: number, data: number, now: number): void {
    const k = this.scratchFree.pop();
    if (k === undefined) { this.drops.counts[D_TX_FAILED]!++; return; }
    this.scratchUsed.push(k);
    const a = this.arena;
    a.reset(k);
    const q = this.packets[k]!;
    const conns = this.conns;
    a.len[k] = writeRsSyn(a.bytes, a.off[k]!, conns.caddr(c), conns.cport(c), conns.vaddr(c), conns.vport(c), isn, win, data);
    parsePacket(q);
    q.port = port;
    this.spSending = true;
    this.forwardConn(q, c, DIR_IN, now, false);
    this.spSending = false;
  }

  /** Holds a copy of client segment p of SYN-proxied conn c (at most synproxy_skb_store_thresh per conn). */
  private spHold(p: Packet, c: number, data: number, first: boolean, now: number, tr: boolean): void {
    let n = 0;
    let k = -1;
    for (let i = 0; i < SP_HELD; i++) {
      if (this.spSlot[i]! >= 0) { if (this.spConn[i] === c) n++; } else if (k < 0) k = i;
    }
    const slot = n < this.sysctl.synproxySkbStoreThresh && k >= 0 ? this.pendingFree.pop() : undefined;
    if (slot === undefined) {
      if (tr) this.tracer.step(p, 'synproxy', `awaiting the real server's SYN-ACK and ${n} segments held already: dropped (the client sends it again)`);
      this.dropPkt(p, D_SP_QUEUE_FULL);
      return;
    }
    this.copyToSlot(p, slot);
    this.spSlot[k] = slot;
    this.spConn[k] = c;
    this.spPort[k] = p.port;
    this.spAt[k] = now;
    this.spOrder[k] = this.spNext++;
    this.spData[k] = data;
    this.spFirst[k] = first ? 1 : 0;
    this.spReady[k] = 0;
    this.spSynAt[k] = now;
    this.spTries[k] = 0;
    this.spCount++;
    if (tr) this.tracer.end(p, '', 'held');
  }

  /**
   * A segment of SYN-proxied conn c while the real server's SYN-ACK is awaited. The client's are
   * held; the server's SYN-ACK gives the sequence delta, establishes the conn and releases them (it
   * is not forwarded: the client has had its SYN-ACK); a RST from the server goes on to the client.
   * True when p was consumed.
   */
  private synproxyWaiting(p: Packet, c: number, dir: number, fwd: number, now: number, tr: boolean): boolean {
    const conns = this.conns;
    const fl = p.tcpFlags;
    if (dir === DIR_IN) {
      if ((fl & TCP_ACKF) === 0) {
        if (tr) this.tracer.step(p, 'synproxy', 'awaiting the real server\'s SYN-ACK: a client segment without ACK is dropped');
        this.dropPkt(p, D_SP_NOT_ACK);
      } else {
        if (tr) this.tracer.step(p, 'synproxy', 'awaiting the real server\'s SYN-ACK: held');
        this.spHold(p, c, 0, false, now, tr);
      }
      return true;
    }
    const seq = rd32Bits(p.b, p.l4 + 4);
    if ((fl & (TCP_SYN | TCP_ACKF | TCP_RST)) === (TCP_SYN | TCP_ACKF)) {
      const delta = (conns.spSeq(c) - seq) | 0;
      conns.setSpSeq(c, delta);
      if (fwd === FWD_FULLNAT) toaOutbound(p, c, this); // notes the server's ISN for TOA
      conns.tcpTransition(c, DIR_IN, TCP_ACKF, now); // SYN_RECV → ESTABLISHED, an active conn
      this.spCounts[SP_SERVER_SYNACK]++;
      for (let i = 0; i < SP_HELD; i++) if (this.spSlot[i]! >= 0 && this.spConn[i] === c) this.spReady[i] = 1;
      this.spWake = true;
      if (tr) {
        this.tracer.step(p, 'synproxy', `the real server's SYN-ACK (ISN ${seq >>> 0}): delta ${delta >>> 0}, conn ${conns.stateName(c)}; the held client segments go on, this SYN-ACK does not`);
        this.tracer.end(p, '', 'consumed');
      }
      return true;
    }
    if ((fl & TCP_RST) !== 0) {
      // Its seq becomes the cookie + 1 the client expects (F1 ip_vs_synproxy_synack_rcv).
      conns.setSpSeq(c, (conns.spSeq(c) + 1 - seq) | 0);
      this.spDropConn(c);
      if (tr) this.tracer.step(p, 'synproxy', 'the real server refused (RST): on to the client, the held segments dropped');
      return false;
    }
    if (tr) this.tracer.step(p, 'synproxy', 'awaiting the real server\'s SYN-ACK: another segment from it is dropped');
    this.dropPkt(p, D_SP_NOT_ACK);
    return true;
  }

  /** Drops held segment i (counted `synproxy-aborted`). */
  private spDrop(i: number): void {
    const s = this.spSlot[i]!;
    this.spSlot[i] = -1;
    this.spCount--;
    this.arena.reset(s);
    this.pendingFree.push(s);
    this.drops.counts[D_SP_ABORTED]!++;
  }

  private spDropConn(c: number): void {
    for (let i = 0; i < SP_HELD; i++) if (this.spSlot[i]! >= 0 && this.spConn[i] === c) this.spDrop(i);
  }

  /** Runs the released held segments through the pipeline again, oldest first. */
  private releaseSynproxy(now: number): void {
    this.spWake = false;
    for (;;) {
      let k = -1;
      for (let i = 0; i < SP_HELD; i++) {
        if (this.spSlot[i]! >= 0 && this.spReady[i] === 1 && (k < 0 || this.spOrder[i]! < this.spOrder[k]!)) k = i;
      }
      if (k < 0) return;
      const s = this.spSlot[k]!;
      this.spSlot[k] = -1;
      this.spCount--;
      const q = this.packets[s]!;
      q.port = this.spPort[k]!;
      this.process(q, now);
      this.pendingReleased.push(s); // recycled after the flush that sends it
    }
  }

  /** From tick(): the SYN to a silent real server sent again (1 s, 2 s, 4 s …); segments of conns no longer waiting, or held 30 s, dropped. */
  private spTick(now: number): void {
    const conns = this.conns;
    for (let i = 0; i < SP_HELD; i++) {
      if (this.spSlot[i]! < 0 || this.spReady[i] === 1) continue;
      const c = this.spConn[i]!;
      if (!conns.inUse(c) || (conns.flags(c) & CF_SYNPROXY) === 0 || conns.state(c) !== TCP_S_SYN_RECV || now - this.spAt[i]! >= 30_000) {
        this.spDrop(i);
        continue;
      }
      const tries = this.spTries[i]!;
      if (this.spFirst[i] === 1 && tries < this.sysctl.synproxySynRetry && now - this.spSynAt[i]! >= 1000 << tries) {
        const q = this.packets[this.spSlot[i]!]!;
        this.spSendSyn(c, this.spPort[i]!, (rd32Bits(q.b, q.l4 + 4) - 1) | 0, rd16(q.b, q.l4 + 14), this.spData[i]!, now);
        this.spTries[i] = tries + 1;
        this.spSynAt[i] = now;
        this.spCounts[SP_SYN_RETRY]++;
      }
    }
  }

  /** K ip_vs_leave: ICMP port unreachable to the client (even for TCP), then drop. */
  private noDestination(p: Packet, reason: number, tr: boolean): void {
    if (tr) this.tracer.step(p, 'schedule', 'no destination available: ICMP port unreachable to the client');
    this.icmpError(p, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, p.daddr);
    this.dropPkt(p, reason);
  }

  /** Not ours: in iface mode the host kernel deals with it; uvs only counts it. */
  private pass(p: Packet, tr: boolean): void {
    if (this.ports[p.port]!.hostAddrs.length > 0 && this.isOwned(p.daddr, p.port)) {
      this.dropPkt(p, D_NOT_FOR_US);
      return;
    }
    this.passed++;
    if (tr) this.tracer.end(p, '', 'passed to host');
  }

  /** Whether addr (and port, when given) is a NAT real server's (its replies pass the director;
   * K ip_vs_has_real_service). Only for rare paths: it walks the dests. */
  private isNatDest(addr: number, port = -1): boolean {
    const ds = this.config.dests;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i];
      if (d !== undefined && d.fwd === FWD_MASQ && d.addr === addr && (port < 0 || d.port === port)) return true;
    }
    return false;
  }

  /** Addresses uvs answers for on port pi: VIPs, local addresses, and its own host addresses. */
  isOwned(addr: number, pi: number): boolean {
    if (this.config.owned.has(addr)) return true;
    const h = this.ports[pi]!.hostAddrs;
    for (let i = 0; i < h.length; i++) if (h[i] === addr) return true;
    return false;
  }

  // ------------------------------------------------------------------ host: ARP, ICMP

  private handleArp(p: Packet, now: number, tr: boolean): void {
    const b = p.b;
    const o = p.l3;
    if (!arpValid(b, o)) { this.dropPkt(p, D_MALFORMED_ARP); return; }
    const op = arpOper(b, o);
    const spa = arpSpa(b, o);
    const tpa = arpTpa(b, o);
    const pi = p.port;
    const forUs = this.isOwned(tpa, pi);
    if (spa !== 0) {
      const existing = this.neigh.find(spa);
      if (existing >= 0 || forUs) {
        const ni = this.neigh.learn(spa, b, o + ARP_SHA, pi, now, forUs);
        if (ni >= 0) this.releasePending(ni);
      }
    }
    if (op === ARP_REQUEST && forUs && (this.serviceArp || this.ports[pi]!.hostAddrs.includes(tpa))) {
      const port = this.ports[pi]!.port;
      // Turn the request around in place: reply from our MAC for tpa to the asker.
      const sha = this.tmpMac;
      copyMac(sha, 0, b, o + ARP_SHA);
      const len = writeArp(b, p.off, ARP_REPLY, port.mac, tpa, sha, spa, sha);
      p.len = len;
      this.arena.meta.fill(0, p.slot * META_WORDS, p.slot * META_WORDS + META_WORDS);
      this.queueTx(pi, p.slot);
      if (tr) { this.tracer.step(p, 'host', `ARP who-has ${ipToString(tpa)} tell ${ipToString(spa)}: reply ${ipToString(tpa)} is-at our MAC`); this.tracer.end(p, port.name, ''); }
      return;
    }
    if (tr) this.tracer.end(p, '', op === ARP_REPLY ? 'arp reply learnt' : 'arp not for us');
  }

  private readonly tmpMac = new Uint8Array(6);

  /** Queues p back out of the port it came in on, to the MAC it came from (an answer uvs makes in place). */
  private sendBack(p: Packet): void {
    const b = p.b;
    const f = p.off;
    const tmp = this.tmpMac;
    copyMac(tmp, 0, b, f + ETH_SRC);
    copyMac(b, f + ETH_DST, tmp, 0);
    copyMac(b, f + ETH_SRC, this.ports[p.port]!.port.mac, 0);
    this.queueTx(p.port, p.slot);
  }

  private echoReply(p: Packet, tr: boolean): void {
    echoToReply(p.b, p.l3, p.l4);
    this.sendBack(p);
    if (tr) { this.tracer.step(p, 'host', `ICMP echo request to ${ipToString(p.saddr)} (ours): echo reply`); this.tracer.end(p, this.ports[p.port]!.port.name, ''); }
  }

  /**
   * ICMP errors about a conn's packets (K ip_vs_in_icmp / ip_vs_out_icmp): the embedded header,
   * reversed, is looked up as a conn; NAT/FULLNAT rewrite the outer and embedded addresses and
   * ports back the other way; DR/TUN forward it as it is with the conn's forwarder.
   */
  private handleIcmpError(p: Packet, now: number, tr: boolean): void {
    const conns = this.conns;
    // Only protocols IPVS tracks (K: no proto data ⇒ not ours); this also keeps a crafted quote
    // with protocol 255 from matching a persistence template's key (lookup() wants a real proto).
    const inProto = p.inProto;
    if ((inProto === 4 || inProto === 17 || inProto === 47) && this.tunnelIcmp(p, now, tr)) return;
    if (this.prober.pending !== 0 && inProto === IPPROTO_UDP && ((p.inSport - PROBE_PORT_MIN) >>> 0) < PROBE_SLOTS && this.probeIcmp(p, tr)) return;
    let ref = inProto === IPPROTO_TCP || inProto === IPPROTO_UDP
      ? conns.lookup(inProto, p.inDaddr, p.inDport, p.inSaddr, p.inSport) : -1;
    if (ref < 0 && this.sysctl.scheduleIcmp !== 0 && (inProto === IPPROTO_TCP || inProto === IPPROTO_UDP) &&
      this.isOwned(p.daddr, p.port)) {
      // K ip_vs_in_icmp with schedule_icmp=1: an error about a packet a real server sent from a
      // service (VIP:vport → client) that has no conn here (another director's, or DR replies
      // that never pass) schedules one, as the client's next packet would, and is forwarded on it.
      const svc = this.config.lookup(inProto, p.inSaddr | 0, p.inSport);
      if (svc !== undefined) {
        if (tr) this.tracer.step(p, 'classify', `ICMP error about ${ipToString(p.inSaddr)}:${p.inSport} → ${ipToString(p.inDaddr)}:${p.inDport}: service ${svcStr(svc)}, scheduling (schedule_icmp=1)`);
        const key = this.key;
        key.proto = inProto;
        key.saddr = p.inSaddr;
        key.sport = p.inSport;
        key.daddr = p.inDaddr;
        key.dport = p.inDport;
        key.icmpError = true;
        const c = this.newConn(p, svc, now, tr);
        if (c < 0) return;
        ref = c << 1;
      }
    }
    if (ref < 0) {
      if (tr) this.tracer.step(p, 'track', 'ICMP error about no known conn');
      if (this.isOwned(p.daddr, p.port)) this.dropPkt(p, D_ICMP_NO_CONN);
      else this.pass(p, tr);
      return;
    }
    const c = ref >> 1;
    const dir = ref & 1; // IN: travels toward the real server; OUT: toward the client
    // K ip_vs_in_icmp verifies the checksum of an error from the client side before it forwards
    // it (NAT recomputes it: a corrupted error must not leave with a valid one).
    if (dir === DIR_IN && (p.frag & (IP_F_MF | IP_OFFMASK)) === 0 && checksum(p.b, p.l4, p.l4len) !== 0) {
      if (tr) this.tracer.step(p, 'track', `ICMP error for conn #${c}: bad ICMP checksum`);
      this.dropPkt(p, D_ICMP_CSUM);
      return;
    }
    p.conn = c;
    p.dir = dir;
    p.traceId = c + 1;
    const dest = this.config.dests[conns.destId(c)];
    if (dest === undefined || !dest.available) { this.dropPkt(p, D_DEST_UNAVAIL); return; }
    conns.touch(c, now);
    if (p.ttl <= 1) { this.dropPkt(p, D_TTL); return; }
    if (tr) this.tracer.before(p);
    decTtl(p.b, p.l3);
    p.ttl--;
    const fwd = dest.fwd;
    if (fwd === FWD_MASQ || fwd === FWD_FULLNAT) {
      const full = fwd === FWD_FULLNAT;
      if (dir === DIR_IN) {
        // Embedded = our reply as the client side saw it (VIP:vport → CIP:cport).
        // Make it what the RS sent: RIP:dport → (LIP:lport | CIP:cport).
        if ((conns.flags(c) & CF_SYNPROXY) !== 0) spEmbeddedBack(p, conns.spSeq(c)); // its seq as the server sent it
        this.setEmbedded(p, conns.daddr(c), conns.dport(c), full ? conns.laddr(c) : p.inDaddr, full ? conns.lport(c) : p.inDport);
        this.setOuter(p, full ? conns.laddr(c) : p.saddr, conns.daddr(c));
      } else {
        // Embedded = our rewritten request ((LIP|CIP) → RIP:dport); make it CIP:cport → VIP:vport.
        if ((conns.flags(c) & CF_PP_MASK) !== 0) ppEmbeddedBack(p, c, this); // its seq as the client sent it
        this.setEmbedded(p, conns.caddr(c), conns.cport(c), conns.vaddr(c), conns.vport(c));
        this.setOuter(p, conns.vaddr(c), full ? conns.caddr(c) : p.daddr);
      }
      p.nextHop = p.daddr;
      if (tr) { this.tracer.after(p); this.tracer.step(p, 'forward', `ICMP error for conn #${c}: outer and embedded headers rewritten (${fwdStr(fwd)})`); }
    } else if (dir === DIR_IN) {
      const r = FORWARDERS[fwd]!.inbound(p, c, this);
      if (r !== 0) { this.dropPkt(p, r); return; }
      if (tr) { this.tracer.after(p); this.tracer.step(p, 'forward', `ICMP error for conn #${c} forwarded as is (${fwdStr(fwd)})`); }
    } else {
      p.nextHop = p.daddr;
    }
    this.egress(p, now, tr);
  }

  /**
   * K ip_vs_in_icmp, "errors for our tunnel" (§5.5): an ICMP error a router sent the director
   * about one of its own TUN packets — IPIP, GUE to the dest's port, GRE — to a real server that
   * is a tunnel dest of that type. The client's packet inside is looked up as a conn. A
   * fragmentation-needed lowers the path MTU to the real server (PathMtuCache: later packets get
   * fragmentation-needed, or are fragmented, here) and, when the client's packet had DF, the
   * client is told that MTU − 20 (the kernel's figure; a larger tunnel header is then caught by
   * the TUN forwarder's own check). Other errors (unreachable, TTL exceeded, source quench) pass
   * on with their type, code and info. The client gets a fresh ICMP from the VIP quoting its own
   * packet; the router's error is consumed. False: not about a tunnel packet of ours (the caller
   * goes on with it as an error about a conn's packet).
   */
  private tunnelIcmp(p: Packet, now: number, tr: boolean): boolean {
    if (p.inL4 < 0) return false;
    const outerProto = p.inProto;
    const rip = p.inDaddr | 0;
    if (!this.isTunnelDest(rip, outerProto === 4 ? TUN_TYPE_IPIP : outerProto === 17 ? TUN_TYPE_GUE : TUN_TYPE_GRE,
      outerProto === 17 ? p.inDport : 0)) return false;
    // Only about packets uvs sent (its source address toward that server), reported to uvs.
    const src = this.routeSrc(rip);
    if (src === 0 || (p.inSaddr | 0) !== src || (p.daddr | 0) !== src) return false;
    const b = p.b;
    const end = p.l3 + p.ipLen;
    const inner = tunnelQuoteInner(b, p.inL4, end, outerProto);
    const cproto = inner < 0 ? 0 : b[inner + 9]!;
    let ref = -1;
    if ((cproto === IPPROTO_TCP || cproto === IPPROTO_UDP) && (rd16(b, inner + 6) & IP_OFFMASK) === 0) {
      const l4 = inner + ((b[inner]! & 15) << 2);
      ref = this.conns.lookup(cproto, rd32(b, inner + IP_SADDR), rd16(b, l4), rd32(b, inner + IP_DADDR), rd16(b, l4 + 2));
    }
    if (ref < 0 || (ref & 1) !== DIR_IN) {
      if (tr) this.tracer.step(p, 'track', `ICMP error about our tunnel packet to ${ipToString(rip)}: no conn for the packet inside`);
      if (this.isOwned(p.daddr, p.port)) this.dropPkt(p, D_ICMP_NO_CONN);
      else this.pass(p, tr);
      return true;
    }
    if ((p.frag & (IP_F_MF | IP_OFFMASK)) === 0 && checksum(b, p.l4, p.l4len) !== 0) { this.dropPkt(p, D_ICMP_CSUM); return true; }
    const c = ref >> 1;
    p.conn = c;
    p.dir = DIR_IN;
    p.traceId = c + 1;
    const type = p.icmpType;
    const code = p.icmpCode;
    let info = rd32Bits(b, p.l4 + 4);
    const caddr = rd32(b, inner + IP_SADDR);
    const vaddr = rd32(b, inner + IP_DADDR);
    if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) {
      const reported = rd16(b, p.l4 + 6);
      const ri = this.routes.lookup(rip);
      const mtu = this.pmtu.learn(rip, reported, ri < 0 ? reported : this.ports[this.routes.get(ri).port]!.port.mtu, now);
      if (tr) this.tracer.step(p, 'track', `ICMP fragmentation needed (MTU ${reported}) from ${ipToString(p.saddr)} about our tunnel packet to ${ipToString(rip)}, conn #${c}: path MTU to ${ipToString(rip)} now ${mtu} (for 600 s)`);
      if ((rd16(b, inner + 6) & IP_F_DF) === 0) {
        // K: the client does not do PMTU discovery; later packets are fragmented here.
        if (tr) this.tracer.end(p, '', 'consumed (the client packet had no DF)');
        return true;
      }
      info = mtu > 88 ? mtu - 20 : mtu;
    } else if (tr) {
      this.tracer.step(p, 'track', `ICMP type ${type} code ${code} from ${ipToString(p.saddr)} about our tunnel packet to ${ipToString(rip)}, conn #${c}`);
    }
    this.icmpErrorQuoting(p, inner, end - inner, caddr, type, code, info, vaddr);
    this.tunnelIcmpRelayed++;
    if (tr) {
      this.tracer.step(p, 'forward', `ICMP type ${type} code ${code}${type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED ? ` (MTU ${info})` : ''} from ${ipToString(vaddr)} to the client ${ipToString(caddr)}, quoting its packet; this error consumed`);
      this.tracer.end(p, '', 'consumed');
    }
    return true;
  }

  /**
   * A health-check probe through the data path (probe.ts): a SYN from the director's address to
   * t.vip:t.vport, to the real server t.rip as DR (its MAC) or TUN (inside its tunnel). Resolves
   * ok on a SYN-ACK for it, not ok on a RST, a timeout, or when it cannot be sent.
   */
  probe(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      if (t.src !== undefined && !this.routes.isPortAddr(t.src)) {
        resolve({ ok: false, detail: `bindto ${ipToString(t.src)} is not an address of this director's ports` });
        return;
      }
      const src = t.src ?? this.routeSrc(t.rip);
      if (src === 0) { resolve({ ok: false, detail: `no route to ${ipToString(t.rip)}` }); return; }
      if ((t.payload?.length ?? 0) > PROBE_PAYLOAD_MAX || (t.request?.length ?? 0) > PROBE_PAYLOAD_MAX) {
        resolve({ ok: false, detail: `payload over ${PROBE_PAYLOAD_MAX} bytes` });
        return;
      }
      const s = this.prober.alloc();
      if (s < 0) { resolve({ ok: false, detail: 'too many probes in flight' }); return; }
      const iss = (Math.random() * 4294967296) >>> 0;
      this.prober.start(s, t, src, iss, timeoutMs, resolve);
      const r = this.sendProbeSegment(s, TCP_SYN, iss, true);
      if (r !== 0) this.prober.finish(s, { ok: false, detail: `probe not sent: ${DROP_REASONS[r]}` });
      else t.stream?.open(this.prober.writer(s));
    });
  }

  /** Builds probe slot s's segment (flags, seq) in a scratch slot and sends it its target's way
   * (at once with `now`; else with the batch being processed). */
  private sendProbeSegment(s: number, flags: number, seq: number, now: boolean, ack = 0, payload?: Uint8Array): number {
    const t = this.prober.targets[s]!;
    const k = this.scratchFree.pop();
    if (k === undefined) return D_TX_FAILED;
    this.scratchUsed.push(k);
    const a = this.arena;
    a.reset(k);
    const q = this.packets[k]!;
    a.len[k] = t.proto === IPPROTO_UDP
      ? writeProbeDatagram(a.bytes, a.off[k]!, this.prober.src[s]!, PROBE_PORT_MIN + s, t.vip, t.vport, t.payload ?? new Uint8Array(0))
      : writeProbeSegment(a.bytes, a.off[k]!, this.prober.src[s]!, PROBE_PORT_MIN + s, t.vip, t.vport, flags, seq, ack, payload);
    parsePacket(q);
    q.port = 0;
    let r = 0;
    if (t.fwd === FWD_TUNNEL) r = tunEncap(q, t.rip | 0, t.tun, -1, this);
    else q.nextHop = t.rip >>> 0;
    if (r === 0) this.egress(q, this.clock.now(), false);
    if (now) this.flush();
    return r !== 0 ? r : q.drop;
  }

  /** A TCP segment to a probe port (probe.ts): the answer of the probe in that slot, if it is one.
   * True when it was (the segment is consumed). */
  private probeReply(p: Packet, tr: boolean): boolean {
    const pr = this.prober;
    const s = p.dport - PROBE_PORT_MIN;
    const t = pr.targets[s];
    if (!pr.active(s) || t === null || t === undefined || p.saddr !== t.vip || p.sport !== t.vport || p.daddr !== pr.src[s] ||
      p.proto !== (t.proto ?? IPPROTO_TCP)) return false;
    const b = p.b;
    const via = `${ipToString(t.rip)} (${t.fwd === FWD_TUNNEL ? 'TUN' : 'DR'})`;
    if (p.proto === IPPROTO_UDP) {
      const end = p.l3 + p.ipLen;
      const msg = Buffer.from(b.subarray(p.l4 + 8, end > p.l4 + 8 ? end : p.l4 + 8));
      if (t.accept === undefined || t.accept(msg)) pr.finish(s, { ok: true, detail: `reply from ${ipToString(t.vip)}:${t.vport} via ${via}`, reply: msg });
      if (tr) { this.tracer.step(p, 'host', `reply to health-check probe ${PROBE_PORT_MIN + s} (UDP)`); this.tracer.end(p, '', 'consumed'); }
      return true;
    }
    const ackOk = (rd32(b, p.l4 + 8) >>> 0) === ((pr.iss[s]! + 1) >>> 0);
    const flags = p.tcpFlags;
    if (pr.streams[s] !== null) {
      const doff = (b[p.l4 + 12]! >>> 4) << 2;
      pr.tcpInput(s, b, p.l4, doff, p.ipLen - p.ihl - doff, flags, via);
    } else if ((flags & (TCP_SYN | TCP_ACKF)) === (TCP_SYN | TCP_ACKF) && ackOk) {
      // Close the half-open connection on the real server the way the SYN went.
      this.sendProbeSegment(s, TCP_RST, pr.iss[s]! + 1, false);
      pr.finish(s, { ok: true, detail: `SYN-ACK from ${ipToString(t.vip)}:${t.vport} via ${via}` });
    } else if ((flags & TCP_RST) !== 0 && ackOk) {
      pr.finish(s, { ok: false, detail: `connection refused (RST from ${ipToString(t.vip)}:${t.vport} via ${via})` });
    }
    if (tr) { this.tracer.step(p, 'host', `reply to health-check probe ${PROBE_PORT_MIN + s} (${ipToString(t.vip)}:${t.vport} via ${via})`); this.tracer.end(p, '', 'consumed'); }
    return true;
  }

  /** An ICMP error about a UDP probe's datagram (port unreachable from the real server, a router's
   * unreachable): the probe fails with it. True when it was about one (consumed). */
  private probeIcmp(p: Packet, tr: boolean): boolean {
    const pr = this.prober;
    const s = p.inSport - PROBE_PORT_MIN;
    const t = pr.targets[s];
    if (!pr.active(s) || t === null || t === undefined || t.proto !== IPPROTO_UDP || p.inDaddr !== t.vip || p.inDport !== t.vport ||
      p.inSaddr !== pr.src[s]) return false;
    pr.finish(s, { ok: false, detail: `ICMP type ${p.icmpType} code ${p.icmpCode} from ${ipToString(p.saddr)} (via ${ipToString(t.rip)})` });
    if (tr) { this.tracer.step(p, 'host', `ICMP error about health-check probe ${PROBE_PORT_MIN + s}`); this.tracer.end(p, '', 'consumed'); }
    return true;
  }

  /** Whether addr is the address of a TUN dest of tunnel `type` (GUE: and UDP port `port`) —
   * K ip_vs_find_tunnel. Only for rare paths: it walks the dests. */
  private isTunnelDest(addr: number, type: number, port: number): boolean {
    const ds = this.config.dests;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i];
      if (d !== undefined && d.fwd === FWD_TUNNEL && (d.addr | 0) === addr && d.tunType === type && (type !== TUN_TYPE_GUE || d.tunPort === port)) return true;
    }
    return false;
  }

  private setEmbedded(p: Packet, saddr: number, sport: number, daddr: number, dport: number): void {
    const b = p.b;
    const e = p.inL3;
    wr32(b, e + IP_SADDR, saddr);
    wr32(b, e + IP_DADDR, daddr);
    setIpv4Checksum(b, e);
    wr16(b, p.inL4, sport);
    wr16(b, p.inL4 + 2, dport);
    p.inSaddr = saddr; p.inDaddr = daddr; p.inSport = sport; p.inDport = dport;
    const l4 = p.l4;
    b[l4 + 2] = 0;
    b[l4 + 3] = 0;
    wr16(b, l4 + 2, checksum(b, l4, p.l4len));
  }

  private setOuter(p: Packet, saddr: number, daddr: number): void {
    const b = p.b;
    wr32(b, p.l3 + IP_SADDR, saddr);
    wr32(b, p.l3 + IP_DADDR, daddr);
    setIpv4Checksum(b, p.l3);
    p.saddr = saddr;
    p.daddr = daddr;
  }

  /**
   * Builds ICMP type/code about packet p back to its sender, from address `from`, in a scratch
   * slot, and routes it. Used for port unreachable (no dest), fragmentation needed, TTL exceeded.
   */
  icmpError(p: Packet, type: number, code: number, info: number, from: number): void {
    this.icmpErrorQuoting(p, p.l3, p.ipLen, p.saddr, type, code, info, from);
  }

  /** icmpError about the IPv4 packet at `q` (`qlen` bytes of it in p's buffer) to `to`. */
  private icmpErrorQuoting(p: Packet, q: number, qlen: number, to: number, type: number, code: number, info: number, from: number): void {
    const s = this.scratchFree.pop();
    if (s === undefined) return;
    this.scratchUsed.push(s);
    const e = this.packets[s]!;
    const a = this.arena;
    a.reset(s);
    const f = a.off[s]!;
    const len = writeIcmpError(a.bytes, f, type, code, info, from, to, p.b, q, qlen);
    a.len[s] = len;
    e.resetAnnotations();
    e.port = p.port;
    e.l3 = f + ETH_HLEN;
    e.ipLen = len - ETH_HLEN;
    e.proto = 1;
    e.saddr = from >>> 0;
    e.daddr = to >>> 0;
    e.frag = 0;
    e.nextHop = to >>> 0;
    e.traceId = p.traceId;
    this.egress(e, this.clock.now(), false);
  }

  // ------------------------------------------------------------------ route + egress

  /** Source address for packets to `addr` (u32 or int32 bits), as int32 (`| 0`), 0 = no route. */
  routeSrc(addr: number): number {
    const ri = this.routes.lookup(addr | 0);
    return ri < 0 ? 0 : this.routes.get(ri).src | 0;
  }

  /** MTU toward addr: its route's port's, or a smaller path MTU learnt for it (PathMtuCache). */
  routeMtu(addr: number): number {
    const ri = this.routes.lookup(addr | 0);
    if (ri < 0) return 0;
    const m = this.ports[this.routes.get(ri).port]!.port.mtu;
    return this.pmtu.size === 0 ? m : this.pmtu.get(addr, m); // at the batch's time (no clock read per packet)
  }

  nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  /**
   * p is larger than the MTU and may be fragmented (no DF): it leaves as fragments (wire/fragment.ts,
   * as the kernel's output path fragments it), each in a scratch slot and through egress on its
   * own. A partial L4 checksum is completed first (a fragment cannot carry one).
   */
  private fragmentOut(p: Packet, mtu: number, now: number, tr: boolean): void {
    // p.l3 is the outermost header (the IPIP one after TUN encapsulation), right after Ethernet.
    const ihl = ipIhl(p.b, p.l3);
    const totLen = ipTotLen(p.b, p.l3);
    if (fragmentPayload(ihl, mtu) < 8) { this.dropPkt(p, D_TOO_BIG); return; }
    const n = fragmentCount(totLen, ihl, mtu);
    if (n > this.scratchFree.length || !this.completePartial(p)) { this.dropPkt(p, D_TOO_BIG); return; }
    if (tr) this.tracer.step(p, 'route', `${totLen} bytes > MTU ${mtu}, no DF: sent as ${n} fragments`);
    for (let k = 0; k < n; k++) {
      const q = this.fragmentInto(p, ihl, totLen, mtu, k);
      q.nextHop = p.nextHop;
      this.egress(q, now, false);
    }
    if (tr) this.tracer.end(p, '', '');
  }

  /** Fragment k of p (IP header at p.off + 14) for `mtu`, written into a scratch slot (the caller
   * checked there are enough) and parsed; it belongs to p's conn. */
  private fragmentInto(p: Packet, ihl: number, totLen: number, mtu: number, k: number): Packet {
    const a = this.arena;
    const s = this.scratchFree.pop()!;
    this.scratchUsed.push(s);
    a.reset(s);
    a.len[s] = writeFragment(p.b, p.off, ihl, totLen, mtu, k, a.off[s]!);
    const q = this.packets[s]!;
    parsePacket(q);
    q.port = p.port;
    q.conn = p.conn;
    q.dir = p.dir;
    q.traceId = p.traceId;
    return q;
  }

  /** Completes a partial L4 checksum in software (before the packet is cut into pieces, which
   * cannot carry one). False when csum_start/offset do not fit the packet. */
  completePartial(p: Packet): boolean {
    if (!p.csumPartial) return true;
    const b = p.b;
    const l3 = p.l3;
    const end = l3 + ipTotLen(b, l3);
    const cs = p.off + p.csumStart;
    const at = cs + p.csumOffset;
    if (cs < l3 + ipIhl(b, l3) || at + 2 > end) return false;
    let sum = checksum(b, cs, end - cs); // the field holds the pseudo-header sum
    if (sum === 0 && p.proto === IPPROTO_UDP) sum = 0xffff; // UDP: 0 means "no checksum"
    wr16(b, at, sum);
    p.clearOffload();
    return true;
  }

  /** Route toward p.nextHop, check the MTU, resolve the next hop's MAC, queue for sending. */
  private egress(p: Packet, now: number, tr: boolean): void {
    const target = p.nextHop;
    const ri = this.routes.lookup(target | 0); // int32 across calls: see process()
    if (ri < 0) {
      if (tr) this.tracer.step(p, 'route', `no route to ${ipToString(target)}`);
      this.dropPkt(p, D_NO_ROUTE);
      return;
    }
    const r = this.routes.get(ri);
    const nh = r.gw !== 0 ? r.gw : target;
    const ps = this.ports[r.port]!;
    const mtu = this.pmtu.size === 0 ? ps.port.mtu : this.pmtu.get(target, ps.port.mtu, now);
    if (p.len - ETH_HLEN > mtu && p.gsoType === 0) {
      if ((rd16(p.b, p.l3 + 6) & IP_F_DF) !== 0) {
        if (!(p.proto === 1 && p.inL3 >= 0)) this.icmpError(p, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, p.daddr);
        if (tr) this.tracer.step(p, 'route', `${p.len - ETH_HLEN} bytes > MTU ${mtu} with DF: ICMP fragmentation needed`);
        this.dropPkt(p, D_FRAG_NEEDED);
      } else {
        this.fragmentOut(p, mtu, now, tr);
      }
      return;
    }
    const b = p.b;
    const f = p.off;
    copyMac(b, f + ETH_SRC, ps.port.mac, 0);
    wr16(b, f + ETH_TYPE, ETHERTYPE_IPV4);
    const neigh = this.neigh;
    let ni = neigh.find(nh | 0);
    if (ni >= 0 && neigh.usable(ni)) {
      copyMac(b, f + ETH_DST, neigh.mac, ni * 6);
      if (neigh.state[ni] === N_REACHABLE && neigh.expires[ni]! < now) {
        neigh.state[ni] = N_STALE;
        neigh.probes[ni] = 0;
        neigh.nextProbe[ni] = now;
      }
      this.queueTx(r.port, p.slot);
      if (tr) {
        this.tracer.step(p, 'route', `to ${ipToString(target)} via ${r.gw ? ipToString(r.gw) : 'connected'} on ${ps.port.name}, next hop ${ipToString(nh)} is-at ${macStr(neigh.mac, ni * 6)}`);
        this.tracer.end(p, ps.port.name, '');
      }
      return;
    }
    if (ni < 0) {
      ni = neigh.create(nh, r.port, now);
      if (ni < 0) { this.dropPkt(p, D_ARP_QUEUE_FULL); return; }
    }
    // Queue a copy while the next hop resolves; send a request unless one is in flight.
    const slot = this.pendingFree.pop();
    if (slot === undefined || this.pendCount >= this.pendSlot.length) {
      if (slot !== undefined) this.pendingFree.push(slot);
      if (tr) this.tracer.step(p, 'route', `ARP pending queue full for ${ipToString(nh)}`);
      this.dropPkt(p, D_ARP_QUEUE_FULL);
      return;
    }
    this.copyToSlot(p, slot);
    for (let k = 0; k < this.pendSlot.length; k++) {
      if (this.pendSlot[k] === -1) {
        this.pendSlot[k] = slot;
        this.pendNeigh[k] = ni;
        this.pendPort[k] = r.port;
        this.pendCount++;
        break;
      }
    }
    if (neigh.state[ni] === N_INCOMPLETE && neigh.nextProbe[ni]! <= now) this.sendArpRequest(ni, now);
    if (tr) {
      this.tracer.step(p, 'route', `to ${ipToString(target)} on ${ps.port.name}: next hop ${ipToString(nh)} unresolved, frame queued, ARP who-has sent`);
      this.tracer.end(p, ps.port.name, '');
    }
  }

  private sendArpRequest(ni: number, now: number): void {
    const neigh = this.neigh;
    const pi = neigh.port[ni]!;
    const s = this.scratchFree.pop();
    if (s === undefined) return;
    this.scratchUsed.push(s);
    const a = this.arena;
    a.reset(s);
    const port = this.ports[pi]!.port;
    const tpa = neigh.addr[ni]!;
    const spa = this.routeSrcOnPort(pi, tpa);
    a.len[s] = writeArp(a.bytes, a.off[s]!, ARP_REQUEST, port.mac, spa, null, tpa, this.bcast);
    this.queueTx(pi, s);
    neigh.probes[ni]!++;
    neigh.nextProbe[ni] = now + NEIGH_RETRANS_MS;
  }

  private routeSrcOnPort(pi: number, target: number): number {
    return this.routes.sourceFor(pi, target);
  }

  /** The next hop resolved: send every frame waiting for it. */
  private releasePending(ni: number): void {
    if (this.pendCount === 0) return;
    const a = this.arena;
    for (let k = 0; k < this.pendSlot.length; k++) {
      const s = this.pendSlot[k]!;
      if (s < 0 || this.pendNeigh[k] !== ni) continue;
      copyMac(a.bytes, a.off[s]! + ETH_DST, this.neigh.mac, ni * 6);
      this.queueTx(this.pendPort[k]!, s);
      this.pendingReleased.push(s);
      this.pendSlot[k] = -1;
      this.pendCount--;
    }
  }

  private dropPending(ni: number): void {
    for (let k = 0; k < this.pendSlot.length; k++) {
      const s = this.pendSlot[k]!;
      if (s < 0 || this.pendNeigh[k] !== ni) continue;
      this.drops.counts[D_ARP_UNRESOLVED]!++;
      this.arena.reset(s);
      this.pendingFree.push(s);
      this.pendSlot[k] = -1;
      this.pendCount--;
    }
  }

  // ------------------------------------------------------------------ time

  /**
   * K update_defense_level, on each sysctl set and every second: uvs's "available memory" is the
   * conn table's free slots (src/model/sysctl.ts). drop_entry 1/2 turn the random pass
   * (ConnTable.dropRandomEntries) on while free < amemthresh (the sysctl reads 2 then), 3 always;
   * drop_packet 1/2 drop one new conn in
   * amemthresh / (amemthresh − free) while free < amemthresh (the sysctl reads 2 then, 1
   * again after), 3 one in am_droprate always; secure_tcp 1/2 switch the TCP defence table on
   * while free < amemthresh (reads 2 then), 3 always.
   */
  updateDefence(): void {
    const s = this.sysctl;
    const avail = this.conns.capacity - this.conns.count;
    const nomem = avail < s.amemthresh;
    switch (s.dropPacket) {
      case 1:
      case 2:
        if (nomem) {
          this.dropRate = this.dropCounter = Math.floor(s.amemthresh / (s.amemthresh - avail));
          s.dropPacket = 2;
        } else {
          this.dropRate = 0;
          s.dropPacket = 1;
        }
        break;
      case 3: this.dropRate = s.amDroprate; break;
      default: this.dropRate = 0;
    }
    switch (s.dropEntry) {
      case 1:
      case 2:
        this.dropEntryOn = nomem;
        s.dropEntry = nomem ? 2 : 1;
        break;
      case 3: this.dropEntryOn = true; break;
      default: this.dropEntryOn = false;
    }
    if (s.secureTcp === 1 && nomem) s.secureTcp = 2;
    else if (s.secureTcp === 2 && !nomem) s.secureTcp = 1;
    this.conns.useDefenceTable(s.secureTcp > 1);
  }

  /**
   * The rate estimator's pass (K ip_vs_est.c; uvsd runs it every ESTIMATOR_PERIOD_MS): totals,
   * every service and every dest. Suspended while the sysctl run_estimation is 0: the rates keep
   * their last values, and, as in the kernel, the first pass after re-enabling is not accurate
   * (it counts the whole pause as one period).
   */
  estimateRates(): void {
    if (this.sysctl.runEstimation === 0) return;
    estimate(this.stats);
    for (const s of this.config.services) {
      estimate(s.stats);
      for (const d of s.dests) estimate(d.stats);
    }
  }

  /** Sets an IPVS sysctl (throws SysctlError, nothing changed) and applies it at once. */
  /**
   * A sync message a backup received (K ip_vs_process_message): decoded, each record applied
   * to the conn table (src/sync/backup.ts). Returns what the decoder said.
   */
  applySyncMessage(msg: Uint8Array): DecodeResult {
    const r = decodeSync(msg, this.syncBackupId < 0 ? 0 : this.syncBackupId, this.syncRecs);
    if (r.error !== '') return r;
    const now = this.clock.now();
    for (let i = 0; i < r.records; i++) {
      applySyncRecord(this.conns, this.config, this.timeouts, this.syncRecs[i]!, this.sysctl.syncThreshold, now, this.syncApplied, this.ftp);
    }
    return r;
  }

  /** Starts (syncid ≥ 0) or stops (-1) the backup role; backup_only follows. */
  /**
   * Starts (a SyncMaster) or stops (null) the sync master. While one runs, a template kept
   * because it still controls conns is sent again each time it is re-armed (K ip_vs_conn_expire).
   */
  setSyncMaster(m: SyncMaster | null): void {
    this.syncMaster = m;
    if (m !== null) m.ftp = this.ftp;
    this.conns.onRearm = m === null ? null : (t, now) => { this.syncRecordsSent += m.connPacket(t, now); };
  }

  setSyncBackup(syncid: number): void {
    this.syncBackupId = syncid;
    this.backupOnly = this.sysctl.backupOnly !== 0 && syncid >= 0;
  }

  setSysctl(name: string, value: string): void {
    this.sysctl.set(name, value);
    this.updateDefence();
    this.backupOnly = this.sysctl.backupOnly !== 0 && this.syncBackupId >= 0;
  }

  /**
   * Housekeeping driven by the injected clock: conn expiry (bounded work per call), ARP
   * retransmits and failures, stale neighbours, scheduler sweeps. Call every ~100 ms.
   */
  tick(): void {
    const now = this.clock.now();
    this.conns.tick(now);
    if (now >= this.nextDefence) {
      this.nextDefence = now + 1000;
      this.updateDefence();
      // K defense_work: while drop_entry is in effect, 1/32 of the table is looked at every second.
      if (this.dropEntryOn) this.droppedEntries += this.conns.dropRandomEntries(Math.max(1, this.conns.capacity >> 5), now);
    }
    if (this.heldCount > 0) {
      for (let k = 0; k < HELD_FRAGS; k++) if (this.heldSlot[k]! >= 0 && now - this.heldAt[k]! >= FRAG_TIMEOUT_MS) this.dropHeld(k);
    }
    if (this.spCount > 0) this.spTick(now);
    const neigh = this.neigh;
    for (const { addr, index: ni } of neigh.entries()) {
      const st = neigh.state[ni];
      if (st === N_INCOMPLETE || st === N_STALE) {
        if (neigh.nextProbe[ni]! > now) continue;
        if (neigh.probes[ni]! >= NEIGH_MAX_PROBES) {
          this.dropPending(ni);
          neigh.remove(addr);
          continue;
        }
        this.sendArpRequest(ni, now);
      } else if (st === N_REACHABLE && neigh.expires[ni]! < now) {
        neigh.state[ni] = N_STALE;
        neigh.probes[ni] = 0;
        neigh.nextProbe[ni] = now;
      }
    }
    for (const s of this.config.services) s.sched.sweep(now);
    this.flush();
  }
}

function protoStr(proto: number): string {
  return proto === IPPROTO_TCP ? 'TCP' : proto === IPPROTO_UDP ? 'UDP' : String(proto);
}

function svcStr(s: Service): string {
  return s.fwmark ? `FWM ${s.fwmark}` : `${protoStr(s.protocol)} ${ipToString(s.addr)}:${s.port}`;
}

function fwdStr(fwd: number): string {
  return fwd === FWD_MASQ ? 'NAT' : fwd === FWD_DROUTE ? 'DR' : fwd === FWD_TUNNEL ? 'TUN' : fwd === FWD_FULLNAT ? 'FULLNAT' : String(fwd);
}

function macStr(b: Uint8Array, o: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + b[o + i]!.toString(16).padStart(2, '0');
  return s;
}

function stateNameOf(_conns: ConnTable, st: number): string {
  return TCP_STATE_NAMES[st] ?? String(st);
}

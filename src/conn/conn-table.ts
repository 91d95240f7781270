/**
 * conn-table — the IPVS connection table: fixed-capacity storage (one 64-byte record per conn), both
 * directions of every conn in ONE open-addressing hash, the TCP/UDP state machine with
 * active/inactive accounting on the dests, persistence templates, and expiry on a lazy timing
 * wheel driven by an injected clock (ms).
 *
 * Layout. A conn is a slot index `idx` in [0, capacity) and one 64-byte record (a cache line:
 * everything a packet of an established conn reads is one miss, not one per field), read
 * through accessors (`t.state(idx)`, `t.daddr(idx)`; each is one typed-array load):
 *
 *     proto u8  state u8  flags u16              |  4 B
 *     caddr vaddr daddr laddr u32                 | 16 B   (host-order addresses)
 *     cport vport dport lport u16                 |  8 B
 *     destId svcId ctrl nControl i32              | 16 B
 *     timeout u32 (ms)  scratch u32  inPkts u32  | 12 B
 *     expires f64 (absolute ms)                   |  8 B   = the 64-byte record
 *     wheel next/prev i32                         |  8 B
 *     hash slots: 3.25 × 16 B by default          | 52 B   key + ref, see below
 *                                                 = 124 B per conn, allocated once, never grown.
 *
 * Hash. A hash entry is a ref = (idx << 1) | dir. dir 0 = IN tuple
 * <proto, caddr, cport, vaddr, vport> (client → VIP); dir 1 = OUT tuple
 * <proto, daddr, dport, laddr||caddr, lport||cport> (RIP → client, or RIP → LIP for FULLNAT).
 * The table is linear probing over 16-byte slots holding the key itself (`slots`, 4 words):
 *
 *     +0 saddr   +1 daddr   +2 sport << 16 | dport   +3 (ref + 1) << 8 | proto   (0 = empty)
 *
 * A key's home slot comes from the tuple hash by multiply-shift, and the probe runs on from
 * there to the first empty slot. So a hit costs one cache line read (two when the run crosses
 * a line), not a bucket head and then a record (at 1M conns each is a DRAM miss); at the
 * default size at most 2 of 3.25 slots per conn are used (NAT/FULLNAT hash two tuples, others
 * one), so runs are short (homes at line starts instead, 4 slots a line, measured slower: the
 * runs pile up). Deletion shifts the rest of the run back (no tombstones), so
 * the table does not degrade with churn. `lookupBatch()` reads the home slots of a whole batch
 * before probing so their misses overlap. Templates carry proto byte 0xff (IPPROTO_RAW) in
 * their slot so `lookup()` never returns one; their real protocol is checked by
 * `lookupTemplate()`. 24 bits of ref limit maxConns to 2^23 - 1. Only NAT and FULLNAT conns
 * hash an OUT tuple: replies of DR/TUN/LOCAL/BYPASS conns never pass through the director.
 * ONE_PACKET conns are not hashed at all (K ip_vs_conn_hash).
 *
 * Free conn slots form a stack threaded through `scratch` (create() zeroes it).
 *
 * Accounting (K ip_vs_bind_dest / ip_vs_unbind_dest, set_tcp_state): a new normal conn is
 * INACTIVE (dest.inactConns++); entering an active TCP state moves it to activeConns, leaving
 * moves it back; freeing decrements the right counter. Templates count in persistConns only.
 * OVERLOAD is set on bind when u_threshold != 0 and active+inactive >= u_threshold, and
 * cleared on unbind by the l_threshold / 3/4·u_threshold / always rule.
 *
 * Expiry. `tick(now)` advances the wheel with a visit budget (maxExpirePerTick) and reports
 * `pending` when due work remains. A due conn is freed: both tuples unhashed, dest counters
 * updated, its template's n_control decremented, `onExpire(idx)` called while its fields are
 * still readable (FULLNAT releases the lport there), the slot pushed on the free stack. A due
 * template that still controls conns is kept and re-armed with a 60 s timeout instead (K
 * ip_vs_conn_expire). `onExpire` must not free other conns.
 *
 * Data-path contract: after create(), call tcpTransition()/udpPacket() for the packet that
 * created the conn too (the kernel runs ip_vs_set_state right after scheduling), and call it
 * (or touch()) for every later packet. Run tick(now) every 10–100 ms and again from
 * setImmediate while `pending`.
 *
 * Example:
 *     const t = new ConnTable({ maxConns: 1 << 20 });
 *     const c = t.create(IPPROTO_TCP, cip, 40000, vip, 80, rip, 80, 0, 0, dest, svc.id, -1, now, 0);
 *     t.tcpTransition(c, DIR_IN, TCP_SYN, now);            // NONE → SYN_RECV
 *     const ref = t.lookup(IPPROTO_TCP, rip, 80, cip, 40000); // (c << 1) | DIR_OUT for NAT
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import {
  DEST_F_OVERLOAD, FTP_PORT, FWD_FULLNAT, FWD_MASQ, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, type FwdMethod,
} from '../model/constants.js';
import { ipToString } from '../model/addr.js';
import type { ConnSnap } from '../control/types.js';
import { randomSeed, tupleHash } from './hash.js';
import { carveTable, type BlockAllocator } from './table-memory.js';
import {
  CTPL_S_ASSURED, CTPL_S_NONE, CTPL_STATE_NAMES, TCP_DIR_INPUT, TCP_DIR_INPUT_ONLY, TCP_DIR_OUTPUT,
  TCP_STATE_ACTIVE, TCP_STATE_NAMES, TCP_S_CLOSE, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_LAST, TCP_S_SYNACK, TCP_S_SYN_RECV,
  TCP_S_LISTEN, TCP_S_NONE, TCP_S_TIME_WAIT, TCP_TABLE, TCP_TABLE_DOS, tcpEventIndex,
} from './tcp-state.js';
import { NEW_CONN_TIMEOUT_MS, TEMPLATE_REARM_MS, Timeouts } from './timeouts.js';
import { TimerWheel, type DueHandler } from './timer-wheel.js';

/** Conn flags (u16). Kernel IP_VS_CONN_F_* values where one exists. */
export const CF_FWD_MASK = 0x0007;
/** uvs: slot allocated. */
export const CF_IN_USE = 0x0008;
/** uvs: template invalidated (re-keyed to port 0xffff, never matches lookupTemplate). */
export const CF_INVALID = 0x0010;
/** uvs: the OUT tuple is hashed (NAT, FULLNAT). */
export const CF_OUT_HASHED = 0x0020;
export const CF_HASHED = 0x0040;
export const CF_NOOUTPUT = 0x0080;
export const CF_INACTIVE = 0x0100;
export const CF_TEMPLATE = 0x1000;
export const CF_ONE_PACKET = 0x2000;
/** uvs: template ASSURED (mirrors state CTPL_S_ASSURED). */
export const CF_ASSURED = 0x4000;
/** uvs: the conn carries a PROXY protocol header (fwd/proxy-proto.ts), v1 or v2. */
export const CF_PP_V1 = 0x0400;
export const CF_PP_V2 = 0x0800;
export const CF_PP_MASK = CF_PP_V1 | CF_PP_V2;
/** uvs: the PROXY header went out; ppSeq(idx) is where the client's data starts. */
export const CF_PP_SENT = 0x0200;
/** uvs: FULLNAT TOA — the server's ISN + 1 is known (toaSeq(idx)); fwd/toa.ts. */
export const CF_TOA_SEQ = 0x8000;
/** uvs: a SYN-proxied conn (fwd/synproxy.ts; spSeq(idx)). The bit is CF_INVALID's, which only templates use. */
export const CF_SYNPROXY = 0x0010;
/**
 * K IP_VS_CONN_F_NO_CPORT: a conn whose client port is not known yet (the FTP data conn ip_vs_ftp
 * makes for a PASV reply): its IN tuple is hashed with cport 0 and the client's first packet fills
 * it in (fillCport). The bit is CF_ASSURED's, which only templates use.
 */
export const CF_NO_CPORT = 0x4000;
/**
 * uvs: the FTP helper (fwd/ftp.ts, K ip_vs_ftp) is bound to this NAT control conn. The bit is
 * CF_TOA_SEQ's, which only FULLNAT conns use: test it together with the fwd method (FTP_APP_BITS).
 */
export const CF_APP_FTP = 0x8000;
/** Flags & FTP_APP_MASK === FTP_APP_BITS: a NAT conn with the FTP helper bound. */
export const FTP_APP_MASK = CF_APP_FTP | CF_FWD_MASK;
export const FTP_APP_BITS = CF_APP_FTP | FWD_MASQ;

/** countIn's ceiling. */
const IN_PKTS_MAX = 1 << 30;

/** Largest maxConns: refs (idx << 1 | dir) + 1 must fit the 24-bit link of a hash record. */
export const MAX_CONNS = (1 << 23) - 1;
/** Proto byte of template hash records (IPPROTO_RAW, never a balanced protocol). */
const REC_PROTO_TEMPLATE = 0xff;

/*
 * Conn record layout: 16 words (64 bytes, one cache line) per conn, at word (idx << REC_SHIFT).
 *
 *   byte 0 proto  byte 1 state  bytes 2-3 flags      | word 0
 *   caddr  vaddr  daddr  laddr (u32, host order)      | words 1-4
 *   cport vport | dport lport (u16)                   | words 5-6
 *   destId  svcId  ctrl  nControl (i32)               | words 7-10
 *   timeout (ms)  scratch (free list; sync old state) | words 11-12
 *   inPkts (client→server packets)                  | word 13
 *   expires (f64, absolute ms)                        | words 14-15
 */
const REC_SHIFT = 4;
const REC_WORDS = 1 << REC_SHIFT;
/** Byte / u16 / word / f64 offsets inside a record. */
const B_PROTO = 0, B_STATE = 1;
const H_FLAGS = 1, H_CPORT = 10, H_VPORT = 11, H_DPORT = 12, H_LPORT = 13;
const W_CADDR = 1, W_VADDR = 2, W_DADDR = 3, W_LADDR = 4;
const W_DEST = 7, W_SVC = 8, W_CTRL = 9, W_NCTRL = 10, W_TIMEOUT = 11, W_SCRATCH = 12, W_INPKTS = 13;
const D_EXPIRES = 7;

/** lookupBatch() works in chunks of this many keys. */
const BATCH_CHUNK = 64;

/** Direction bit of a lookup result. */
export const DIR_IN = 0;
export const DIR_OUT = 1;

export interface ConnTableOptions {
  /** Fixed capacity (conns + templates). */
  maxConns: number;
  /** Hash slots (16 B each; at least 2 × maxConns + 4, so a probe always meets an empty
   * slot); default 3.25 × maxConns. */
  slots?: number;
  /** Hash seed; default random. Fix it for reproducible tests. */
  seed?: number;
  /** Shared timeouts (`--set`); default a fresh Timeouts. */
  timeouts?: Timeouts;
  /** Clock value at construction (ms), where the wheel starts. Default 0. */
  now?: number;
  /** Wheel slot width in ms (default 64) and slot count (power of two, default 16384 ≈ 17.5 min). */
  wheelSlotMs?: number;
  wheelSlots?: number;
  /** Max conns visited per tick() call (default 1024, ≈ 0.5 ms at 1M conns on an idle core): bounds the event-loop stall. */
  maxExpirePerTick?: number;
  /** Dest registry indexed by Dest.id; default a new array owned by the table. */
  dests?: (Dest | undefined)[];
  /** Where the table's block comes from when it is large (e.g. the addon's huge-page mapping,
   * port/native.ts hugeAllocator()); default a plain ArrayBuffer. */
  allocate?: BlockAllocator | null;
  /** Called with the slot index just before a conn's slot is freed (any reason). */
  onExpire?: ((idx: number) => void) | null;
}

/**
 * Template key parts for a persistent service (K ip_vs_sched_persist), so the data path builds
 * `lookupTemplate(templateProto(svc, p), caddr & svc.netmask, templateVaddr(svc, vip),
 * templateVport(svc))` and `createTemplate(..., d.addr, templateDport(svc, d), ...)`:
 * fwmark services key on <IPPROTO_IP, mark, 0>, port-0 and FTP services on vport 0.
 */
export function templateProto(svc: Service, pktProto: number): number {
  return svc.fwmark !== 0 ? IPPROTO_IP : pktProto;
}
export function templateVaddr(svc: Service, pktVaddr: number): number {
  return svc.fwmark !== 0 ? svc.fwmark : pktVaddr;
}
export function templateVport(svc: Service): number {
  return svc.fwmark !== 0 || svc.port === 0 || svc.port === FTP_PORT ? 0 : svc.port;
}
export function templateDport(svc: Service, dest: Dest): number {
  return svc.fwmark !== 0 || svc.port === 0 || svc.port === FTP_PORT ? 0 : dest.port;
}
/** Real conn's dport through a template: the dest port when the packet hit the service port
 * and the dest port is non-zero, else the packet's own port (port-0 / fwmark services). */
export function persistConnDport(svc: Service, dest: Dest, pktDport: number): number {
  return pktDport === svc.port && dest.port !== 0 ? dest.port : pktDport;
}

export class ConnTable implements DueHandler {
  readonly capacity: number;
  /**
   * The conn records: REC_WORDS words (64 bytes) per conn, one cache line (carveTable aligns the block),
   * viewed five ways. Read fields through the accessors below (`t.daddr(idx)`); they compile to
   * one load each.
   */
  private readonly r8: Uint8Array;
  private readonly r16: Uint16Array;
  private readonly r32: Uint32Array;
  private readonly ri32: Int32Array;
  private readonly r64: Float64Array;
  /** The hash: open addressing, 4 words per slot (see the header). */
  readonly slots: Uint32Array;
  readonly wheel: TimerWheel;
  readonly timeouts: Timeouts;
  readonly dests: (Dest | undefined)[];
  onExpire: ((idx: number) => void) | null;
  /** Called when a due conn is kept because it still controls others (re-armed for 60 s). */
  onRearm: ((idx: number, now: number) => void) | null = null;
  maxExpirePerTick: number;

  /** Conns + templates in use. */
  count = 0;
  templates = 0;
  /** Conns with CF_NO_CPORT (K ip_vs_conn_no_cport_cnt): while 0, a miss needs no second lookup. */
  noCport = 0;
  /** create() refused for lack of a free slot. */
  fullDrops = 0;
  /** drop_entry's random source (xorshift32, seeded from the hash seed) and todrop_entry's counters per packet count. */
  private rng = 1;
  private readonly todropCounter = new Int8Array(9);
  /** The TCP transition table in effect: normal, or the defence one (secure_tcp, useDefenceTable). */
  private tcpTable: Uint8Array = TCP_TABLE;
  /** State before the last tcpTransition() (for the tracer). */
  lastOldState = 0;

  /** Whether the table's block came from opts.allocate (huge pages, see table-memory.ts). */
  readonly hugePages: boolean;
  /** Number of hash slots, and their length in words (4 per slot). */
  readonly nSlots: number;
  private readonly slotWords: number;
  /** nSlots / 2^32. */
  private readonly homeScale: number;
  private readonly batchCur = new Int32Array(BATCH_CHUNK);
  /** Where the touch loops put what they read (so the loads are not dead code). */
  private sink = 0;
  private readonly seed: number;
  private freeHead = -1;

  constructor(opts: ConnTableOptions) {
    const cap = opts.maxConns;
    if (!Number.isInteger(cap) || cap < 1 || cap > MAX_CONNS) throw new RangeError('maxConns out of range');
    this.capacity = cap;
    const minSlots = 2 * cap + 4;
    const want = opts.slots ?? Math.ceil(cap * 3.25);
    if (!Number.isInteger(want) || want < 1) throw new RangeError('slots out of range');
    this.nSlots = Math.max(minSlots, want);
    this.slotWords = this.nSlots * 4;
    this.homeScale = this.nSlots / 4294967296;
    // One block (huge-page backed when large): the slots first, then the records.
    const mem = carveTable([[Uint32Array, this.slotWords], [Uint32Array, cap * REC_WORDS]] as const, opts.allocate);
    this.hugePages = mem.huge;
    const [slots, rec] = mem.views;
    this.slots = slots;
    this.r32 = rec;
    this.r8 = new Uint8Array(rec.buffer, rec.byteOffset, rec.byteLength);
    this.r16 = new Uint16Array(rec.buffer, rec.byteOffset, rec.byteLength >>> 1);
    this.ri32 = new Int32Array(rec.buffer, rec.byteOffset, rec.length);
    this.r64 = new Float64Array(rec.buffer, rec.byteOffset, rec.byteLength >>> 3);
    for (let i = 0; i < cap; i++) {
      this.ri32[(i << REC_SHIFT) + W_DEST] = -1;
      this.ri32[(i << REC_SHIFT) + W_SVC] = -1;
      this.ri32[(i << REC_SHIFT) + W_CTRL] = -1;
    }
    this.seed = (opts.seed ?? randomSeed()) | 0; // int32: passed to tupleHash, never boxed
    this.rng = this.seed | 1;
    this.timeouts = opts.timeouts ?? new Timeouts();
    this.dests = opts.dests ?? [];
    this.onExpire = opts.onExpire ?? null;
    this.maxExpirePerTick = opts.maxExpirePerTick ?? 1024;
    this.wheel = new TimerWheel(cap, this.r64, REC_SHIFT - 1, D_EXPIRES, opts.now ?? 0, opts.wheelSlotMs ?? 64, opts.wheelSlots ?? 16384);
    // Free stack: 0 on top, so slots are handed out in ascending order.
    for (let i = cap - 1; i >= 0; i--) {
      this.setScratch(i, this.freeHead + 1);
      this.freeHead = i;
    }
  }

  // ---------------------------------------------------------------- PROXY protocol, TOA

  /**
   * One sequence number per conn, in a side table made when the first conn needs one: the
   * 64-byte record has no spare word, and directors without `--proxy-protocol` services or FULLNAT
   * TCP conns pay nothing (4 B per conn when one exists). A PROXY-protocol conn keeps where the
   * client's data starts (ppSeq); any other FULLNAT TCP conn the server's ISN + 1 for TOA (toaSeq).
   */
  private seqs: Int32Array | null = null;

  /** Marks conn idx (just created) as carrying a PROXY header of `version` (1 or 2). */
  setProxyProtocol(idx: number, version: number): void {
    if (this.seqs === null) this.seqs = new Int32Array(this.capacity);
    this.setFlags(idx, (this.flags(idx) & ~(CF_PP_MASK | CF_PP_SENT)) | (version === 2 ? CF_PP_V2 : CF_PP_V1));
  }

  /** The seq of conn idx's first client data byte as int32 bits (`>>> 0` for the number; valid with CF_PP_SENT). */
  ppSeq(idx: number): number { return this.seqs === null ? 0 : this.seqs[idx]!; }

  /** The header went out in front of the client data starting at seq. */
  setPpSent(idx: number, seq: number): void {
    if (this.seqs === null) return;
    this.seqs[idx] = seq;
    this.setFlags(idx, this.flags(idx) | CF_PP_SENT);
  }

  /** A new connection on the tuple: the header goes out again. */
  clearPpSent(idx: number): void { this.setFlags(idx, this.flags(idx) & ~CF_PP_SENT); }

  /** FULLNAT TOA: the server's ISN + 1 as int32 bits (valid with CF_TOA_SEQ). */
  toaSeq(idx: number): number { return this.seqs === null ? 0 : this.seqs[idx]!; }

  /** The server's SYN-ACK went by: segments acknowledging seq (its ISN + 1) get the TOA. */
  setToaSeq(idx: number, seq: number): void {
    if (this.seqs === null) this.seqs = new Int32Array(this.capacity);
    this.seqs[idx] = seq;
    this.setFlags(idx, this.flags(idx) | CF_TOA_SEQ);
  }

  /** A new handshake on the tuple: its server ISN is not known yet. */
  clearToaSeq(idx: number): void {
    const f = this.flags(idx);
    if ((f & CF_TOA_SEQ) !== 0) this.setFlags(idx, f & ~CF_TOA_SEQ);
  }

  /**
   * SYN proxy (fwd/synproxy.ts): per conn, in a side table of its own made with the first such
   * conn (a FULLNAT conn may need its TOA seq too), the cookie ISN while the real server's SYN-ACK
   * is awaited (state SYN_RECV), then the delta cookie − server ISN.
   */
  private sp: Int32Array | null = null;
  /** …and the ACK-storm guard's last server seq and ack (2 per conn) and its count of repeats. */
  private spLast: Int32Array | null = null;
  private spDup: Uint16Array | null = null;

  /** Marks conn idx (just created, its SYN sent) as SYN-proxied with cookie ISN `cookie`. */
  setSynproxy(idx: number, cookie: number): void {
    if (this.sp === null) {
      this.sp = new Int32Array(this.capacity);
      this.spLast = new Int32Array(this.capacity * 2);
      this.spDup = new Uint16Array(this.capacity);
    }
    this.sp[idx] = cookie;
    this.spLast![idx * 2] = 0;
    this.spLast![idx * 2 + 1] = 0;
    this.spDup![idx] = 0;
    this.setFlags(idx, this.flags(idx) | CF_SYNPROXY);
  }

  /**
   * F1 syn_proxy_is_ack_storm, for a real server's segment with ACK of SYN-proxied conn idx (seq and
   * ack as int32 bits, in the server's numbers): true when it repeats the previous one's seq and ack
   * for the `thresh`th time in a row or more (it is dropped: the two ends disagree and would ping-pong).
   */
  spAckStorm(idx: number, seq: number, ack: number, thresh: number): boolean {
    const last = this.spLast, dup = this.spDup;
    if (last === null || dup === null) return false;
    if (last[idx * 2] === seq && last[idx * 2 + 1] === ack) {
      const n = dup[idx]! + 1;
      if (n >= thresh) { dup[idx] = thresh; return true; }
      dup[idx] = n;
      return false;
    }
    last[idx * 2] = seq;
    last[idx * 2 + 1] = ack;
    dup[idx] = 0;
    return false;
  }

  /** The cookie ISN (awaiting the SYN-ACK) or the delta (after it), int32 bits; valid with CF_SYNPROXY. */
  spSeq(idx: number): number { return this.sp === null ? 0 : this.sp[idx]!; }

  setSpSeq(idx: number, v: number): void { if (this.sp !== null) this.sp[idx] = v; }

  // ---------------------------------------------------------------- fields of conn idx

  proto(idx: number): number { return this.r8[(idx << 6) + B_PROTO]!; }
  /** TCP_S_* for TCP, UDP_S_NORMAL (0) for UDP, CTPL_S_* for templates. */
  state(idx: number): number { return this.r8[(idx << 6) + B_STATE]!; }
  flags(idx: number): number { return this.r16[(idx << 5) + H_FLAGS]!; }
  caddr(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_CADDR]!; }
  cport(idx: number): number { return this.r16[(idx << 5) + H_CPORT]!; }
  /** VIP, or the fwmark for fwmark templates. */
  vaddr(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_VADDR]!; }
  vport(idx: number): number { return this.r16[(idx << 5) + H_VPORT]!; }
  /** RIP and its port. */
  daddr(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_DADDR]!; }
  dport(idx: number): number { return this.r16[(idx << 5) + H_DPORT]!; }
  /** FULLNAT local address/port; 0 otherwise. */
  laddr(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_LADDR]!; }
  lport(idx: number): number { return this.r16[(idx << 5) + H_LPORT]!; }
  /** Dest.id (index into `dests`), -1 none. */
  destId(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_DEST]!; }
  svcId(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_SVC]!; }
  /** Controlling template slot, -1 none. */
  ctrl(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_CTRL]!; }
  /** Number of conns this template controls. */
  nControl(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_NCTRL]!; }
  /** Absolute expiry (ms, injected clock). */
  expires(idx: number): number { return this.r64[(idx << 3) + D_EXPIRES]!; }
  /** Current timeout (ms) re-applied on each refresh. */
  timeout(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_TIMEOUT]!; }
  /**
   * The same four addresses as int32 bits (`addr | 0`), for the data path: a u32 above 2^31
   * returned from (or passed to) a call that is not inlined is boxed in a new HeapNumber each
   * time; an int32 never is. Bit operations and wr32 treat both forms alike.
   */
  caddrBits(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_CADDR]!; }
  vaddrBits(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_VADDR]!; }
  daddrBits(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_DADDR]!; }
  laddrBits(idx: number): number { return this.ri32[(idx << REC_SHIFT) + W_LADDR]!; }
  /** Free for the data path (e.g. a cached next-hop index). Zeroed on create. */
  scratch(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_SCRATCH]!; }
  setScratch(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_SCRATCH] = v; }
  /**
   * Sets the timeout the next refresh applies (tests; the data path goes through
   * tcpTransition/udpPacket, which set it from the state).
   */
  setTimeoutMs(idx: number, ms: number): void { this.r32[(idx << REC_SHIFT) + W_TIMEOUT] = ms; }

  private setProto(idx: number, v: number): void { this.r8[(idx << 6) + B_PROTO] = v; }
  private setState(idx: number, v: number): void { this.r8[(idx << 6) + B_STATE] = v; }
  private setFlags(idx: number, v: number): void { this.r16[(idx << 5) + H_FLAGS] = v; }
  private setCaddr(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_CADDR] = v; }
  private setCport(idx: number, v: number): void { this.r16[(idx << 5) + H_CPORT] = v; }
  private setVaddr(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_VADDR] = v; }
  private setVport(idx: number, v: number): void { this.r16[(idx << 5) + H_VPORT] = v; }
  private setDaddr(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_DADDR] = v; }
  private setDport(idx: number, v: number): void { this.r16[(idx << 5) + H_DPORT] = v; }
  private setLaddr(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_LADDR] = v; }
  private setLport(idx: number, v: number): void { this.r16[(idx << 5) + H_LPORT] = v; }
  private setDestId(idx: number, v: number): void { this.ri32[(idx << REC_SHIFT) + W_DEST] = v; }
  private setSvcId(idx: number, v: number): void { this.ri32[(idx << REC_SHIFT) + W_SVC] = v; }
  private setCtrl(idx: number, v: number): void { this.ri32[(idx << REC_SHIFT) + W_CTRL] = v; }
  private setNControl(idx: number, v: number): void { this.ri32[(idx << REC_SHIFT) + W_NCTRL] = v; }
  private setExpires(idx: number, v: number): void { this.r64[(idx << 3) + D_EXPIRES] = v; }
  private setTimeout(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_TIMEOUT] = v; }

  /** Bytes held by this table's typed arrays (for benches and `--info`). */
  memoryBytes(): number {
    let n = 0;
    for (const a of [this.r32, this.slots, this.wheel.next, this.wheel.prev, this.wheel.head, this.wheel.slotMin]) n += a.byteLength;
    return n + (this.seqs?.byteLength ?? 0) + (this.sp?.byteLength ?? 0) + (this.spLast?.byteLength ?? 0) + (this.spDup?.byteLength ?? 0);
  }

  /** Makes `dest` reachable by its id (bind() does this too). */
  registerDest(dest: Dest): void {
    this.dests[dest.id] = dest;
  }

  dest(idx: number): Dest | undefined {
    const id = this.destId(idx);
    return id >= 0 ? this.dests[id] : undefined;
  }

  fwd(idx: number): FwdMethod {
    return (this.flags(idx) & CF_FWD_MASK) as FwdMethod;
  }

  isTemplate(idx: number): boolean {
    return (this.flags(idx) & CF_TEMPLATE) !== 0;
  }

  inUse(idx: number): boolean {
    return idx >= 0 && idx < this.capacity && (this.flags(idx) & CF_IN_USE) !== 0;
  }

  // ---------------------------------------------------------------- hash

  /** Word offset of the slot a tuple hash `h` (its int32 bits, see tupleHash) homes to. */
  private home(h: number): number {
    // Multiply-shift range reduction (Lemire): floor(h · slots / 2^32), exact in a double.
    return (((h >>> 0) * this.homeScale) | 0) << 2;
  }

  private insertRef(ref: number, proto: number, saddr: number, sport: number, daddr: number, dport: number): void {
    const s = this.slots;
    const end = this.slotWords;
    let o = this.home(tupleHash(proto, saddr | 0, sport, daddr | 0, dport, this.seed));
    while (s[o + 3] !== 0) {
      o += 4;
      if (o === end) o = 0;
    }
    s[o] = saddr;
    s[o + 1] = daddr;
    s[o + 2] = ((sport << 16) | dport) >>> 0;
    s[o + 3] = (((ref + 1) << 8) | proto) >>> 0;
  }

  /**
   * Removes ref (hashed under this key) and closes the gap by backward shifting (Knuth's
   * algorithm R): every later entry of the run that may live in the hole moves into it, so the
   * table never holds tombstones and a probe always ends at the first empty slot.
   */
  private removeRef(ref: number, proto: number, saddr: number, sport: number, daddr: number, dport: number): void {
    const s = this.slots;
    const end = this.slotWords;
    const seed = this.seed;
    const want = ref + 1;
    let o = this.home(tupleHash(proto, saddr | 0, sport, daddr | 0, dport, seed));
    for (;;) {
      const w = s[o + 3]!;
      if (w === 0) throw new Error(`conn table: ref ${ref} not found where it was hashed`);
      if (w >>> 8 === want) break;
      o += 4;
      if (o === end) o = 0;
    }
    let hole = o;
    let j = o;
    for (;;) {
      j += 4;
      if (j === end) j = 0;
      const w = s[j + 3]!;
      if (w === 0) break;
      const p = s[j + 2]!;
      const hj = this.home(tupleHash(w & 0xff, s[j]! | 0, p >>> 16, s[j + 1]! | 0, p & 0xffff, seed));
      // j may move to the hole when the hole lies cyclically in [hj, j].
      const dHome = j >= hj ? j - hj : j - hj + end;
      const dHole = j >= hole ? j - hole : j - hole + end;
      if (dHome >= dHole) {
        s[hole] = s[j]!;
        s[hole + 1] = s[j + 1]!;
        s[hole + 2] = p;
        s[hole + 3] = w;
        hole = j;
      }
    }
    s[hole] = 0;
    s[hole + 1] = 0;
    s[hole + 2] = 0;
    s[hole + 3] = 0;
  }

  private hash(idx: number): void {
    const f = this.flags(idx);
    if (f & CF_ONE_PACKET) return;
    const inRef = idx << 1;
    const tmpl = (f & CF_TEMPLATE) !== 0;
    // Addresses as int32 bits (see caddrBits): a new conn does not box them either.
    this.insertRef(inRef, tmpl ? REC_PROTO_TEMPLATE : this.proto(idx), this.caddrBits(idx), this.cport(idx),
      this.vaddrBits(idx), this.vport(idx));
    let nf = f | CF_HASHED;
    if (!tmpl) {
      const fwd = f & CF_FWD_MASK;
      if (fwd === FWD_MASQ || fwd === FWD_FULLNAT) {
        const la = this.laddrBits(idx);
        const lp = this.lport(idx);
        this.insertRef(inRef | 1, this.proto(idx), this.daddrBits(idx), this.dport(idx),
          la !== 0 ? la : this.caddrBits(idx), lp !== 0 ? lp : this.cport(idx));
        nf |= CF_OUT_HASHED;
      }
    }
    this.setFlags(idx, nf);
  }

  /** Unhashes both tuples. The key fields must be those hash() saw (only create and
   * invalidateTemplate write them, around a hash/unhash pair). */
  private unhash(idx: number): void {
    const f = this.flags(idx);
    const inRef = idx << 1;
    if (f & CF_HASHED) {
      this.removeRef(inRef, f & CF_TEMPLATE ? REC_PROTO_TEMPLATE : this.proto(idx), this.caddrBits(idx),
        this.cport(idx), this.vaddrBits(idx), this.vport(idx));
    }
    if (f & CF_OUT_HASHED) {
      const la = this.laddrBits(idx);
      const lp = this.lport(idx);
      this.removeRef(inRef | 1, this.proto(idx), this.daddrBits(idx), this.dport(idx),
        la !== 0 ? la : this.caddrBits(idx), lp !== 0 ? lp : this.cport(idx));
    }
    this.setFlags(idx, f & ~(CF_HASHED | CF_OUT_HASHED));
  }

  /**
   * Finds the non-template conn whose IN or OUT tuple equals the packet's tuple.
   * Returns (idx << 1) | dir (dir 0 = client→server, 1 = server→client) or -1. Addresses may be
   * passed as u32 or int32 (`addr | 0`, the same bits): the data path passes int32, because a u32
   * above 2^31 crossing a call is boxed in a fresh HeapNumber each time.
   * proto must be a real packet protocol (never 255).
   */
  lookup(proto: number, saddr: number, sport: number, daddr: number, dport: number): number {
    saddr >>>= 0;
    daddr >>>= 0;
    const ports = ((sport << 16) | dport) >>> 0;
    const s = this.slots;
    const end = this.slotWords;
    let o = this.home(tupleHash(proto, saddr | 0, sport, daddr | 0, dport, this.seed));
    for (;;) {
      const w = s[o + 3]!;
      if (w === 0) return -1;
      if (s[o] === saddr && s[o + 1] === daddr && s[o + 2] === ports && (w & 0xff) === proto) return (w >>> 8) - 1;
      o += 4;
      if (o === end) o = 0;
    }
  }

  /**
   * Batched lookup: out[k] = lookup(proto[k], saddr[k], sport[k], daddr[k], dport[k]) for
   * from <= k < from + n. Same results as n lookup() calls, but in phases: hash every key of a
   * chunk, read every home slot in a tight loop of its own (so the cache misses of the whole
   * chunk are in flight together instead of one after the other: at 1M conns the table is far
   * larger than the caches and a lone lookup is one DRAM miss), then probe. No allocation.
   */
  lookupBatch(from: number, n: number, proto: ArrayLike<number>, saddr: ArrayLike<number>, sport: ArrayLike<number>,
    daddr: ArrayLike<number>, dport: ArrayLike<number>, out: Int32Array): void {
    const cur = this.batchCur;
    const s = this.slots;
    const end = this.slotWords;
    const seed = this.seed;
    const stop = from + n;
    for (let base = from; base < stop; base += BATCH_CHUNK) {
      const m = Math.min(BATCH_CHUNK, stop - base);
      for (let k = 0; k < m; k++) {
        const j = base + k;
        cur[k] = this.home(tupleHash(proto[j]!, saddr[j]! | 0, sport[j]!, daddr[j]! | 0, dport[j]!, seed));
      }
      this.touchHomes(m);
      for (let k = 0; k < m; k++) {
        const j = base + k;
        const sa = saddr[j]! >>> 0, da = daddr[j]! >>> 0, pr = proto[j]!;
        const ports = ((sport[j]! << 16) | dport[j]!) >>> 0;
        let o = cur[k]!;
        let r = -1;
        for (;;) {
          const w = s[o + 3]!;
          if (w === 0) break;
          if (s[o] === sa && s[o + 1] === da && s[o + 2] === ports && (w & 0xff) === pr) {
            r = (w >>> 8) - 1;
            break;
          }
          o += 4;
          if (o === end) o = 0;
        }
        out[j] = r;
      }
    }
  }

  /**
   * Reads the home slot of each key in batchCur[0..m) in a tight loop of its own, so the
   * misses of the whole chunk are in flight together (a probe loop is too long for the CPU to
   * look that far ahead).
   */
  private touchHomes(m: number): void {
    const cur = this.batchCur;
    const s = this.slots;
    let touched = 0;
    for (let k = 0; k < m; k++) touched ^= s[cur[k]! + 3]!;
    this.sink ^= touched;
  }

  /**
   * Cache warm-up for a batch of packet tuples (k < n, at most BATCH_CHUNK), before they are
   * processed one by one: looks them all up with lookupBatch (the misses of the hash lines
   * overlap) and reads the first word of each hit's record (so those misses overlap too).
   * out[k] is the ref found for tuple k (-1 none): a hint for lookupHinted(), which checks it
   * against the record, so the tuples may be anything (a malformed frame only wastes a load).
   * Worth it only once the table outgrows the caches (the director calls it above PREFETCH_MIN
   * conns).
   */
  prefetch(n: number, proto: Uint8Array, saddr: Uint32Array, sport: Uint16Array, daddr: Uint32Array, dport: Uint16Array,
    out: Int32Array): void {
    const m = Math.min(n, BATCH_CHUNK, out.length);
    this.lookupBatch(0, m, proto, saddr, sport, daddr, dport, out);
    let touched = 0;
    // The record every packet of an established conn reads next (state machine, timer, the
    // forwarder's addresses): one line per conn.
    const r32 = this.r32;
    for (let k = 0; k < m; k++) {
      const r = out[k]!;
      if (r >= 0) touched ^= r32[(r >> 1) << REC_SHIFT]!;
    }
    this.sink ^= touched;
  }

  /**
   * lookup() with a hint: `hint` is a ref prefetch() found for (what should be) this tuple.
   * When the hinted conn is in use, hashed in that direction and its tuple in that direction is
   * exactly this one, it is the answer (tuples are unique in the hash, so lookup() would return
   * it too) and the hash is not probed again; otherwise (hint -1, stale, or another tuple) this
   * is lookup().
   */
  lookupHinted(hint: number, proto: number, saddr: number, sport: number, daddr: number, dport: number): number {
    if (hint >= 0) {
      const i = hint >> 1;
      const f = this.flags(i);
      if ((f & (CF_IN_USE | CF_TEMPLATE)) === CF_IN_USE && this.proto(i) === proto) {
        // Compared as int32 bits (callers pass int32, see lookup(); the Bits accessors never box).
        const sa = saddr | 0, da = daddr | 0;
        if ((hint & 1) === DIR_IN) {
          if ((f & CF_HASHED) !== 0 && this.caddrBits(i) === sa && this.cport(i) === sport && this.vaddrBits(i) === da &&
            this.vport(i) === dport) return hint;
        } else if ((f & CF_OUT_HASHED) !== 0 && this.daddrBits(i) === sa && this.dport(i) === sport) {
          const la = this.laddrBits(i), lp = this.lport(i);
          if ((la !== 0 ? la : this.caddrBits(i)) === da && (lp !== 0 ? lp : this.cport(i)) === dport) return hint;
        }
      }
    }
    return this.lookup(proto, saddr, sport, daddr, dport);
  }

  /**
   * Finds a valid (not invalidated) template <proto, caddr&mask, 0, vaddr, vport>; the caller
   * masks caddr and passes vport 0 for port-0/FTP/fwmark services (proto 0 and vaddr = mark
   * for fwmark). Returns the template idx or -1.
   */
  lookupTemplate(proto: number, caddr: number, vaddr: number, vport: number): number {
    caddr >>>= 0;
    vaddr >>>= 0;
    const ports = vport & 0xffff;
    const s = this.slots;
    const end = this.slotWords;
    let o = this.home(tupleHash(REC_PROTO_TEMPLATE, caddr | 0, 0, vaddr | 0, vport, this.seed));
    for (;;) {
      const w = s[o + 3]!;
      if (w === 0) return -1;
      if (s[o] === caddr && s[o + 1] === vaddr && s[o + 2] === ports && (w & 0xff) === REC_PROTO_TEMPLATE) {
        const i = ((w >>> 8) - 1) >> 1;
        if (this.proto(i) === proto && (this.flags(i) & CF_INVALID) === 0) return i;
      }
      o += 4;
      if (o === end) o = 0;
    }
  }

  // ---------------------------------------------------------------- create / bind

  private alloc(): number {
    const idx = this.freeHead;
    if (idx < 0) {
      this.fullDrops++;
      return -1;
    }
    this.freeHead = this.scratch(idx) - 1;
    return idx;
  }

  /**
   * Takes a free slot and writes every field of its record (unbound: destId/ctrl -1, no
   * controlled conns, expires = now + timeoutMs). Returns idx, or -1 when the table is full.
   */
  private fill(proto: number, state: number, flags: number, caddr: number, cport: number, vaddr: number, vport: number,
    daddr: number, dport: number, laddr: number, lport: number, svcId: number, timeoutMs: number, now: number): number {
    const idx = this.alloc();
    if (idx < 0) return -1;
    this.setProto(idx, proto);
    this.setState(idx, state);
    this.setFlags(idx, flags);
    this.setCaddr(idx, caddr);
    this.setCport(idx, cport);
    this.setVaddr(idx, vaddr);
    this.setVport(idx, vport);
    this.setDaddr(idx, daddr);
    this.setDport(idx, dport);
    this.setLaddr(idx, laddr);
    this.setLport(idx, lport);
    this.setDestId(idx, -1);
    this.setSvcId(idx, svcId);
    this.setCtrl(idx, -1);
    this.setNControl(idx, 0);
    this.setScratch(idx, 0);
    this.r32[(idx << REC_SHIFT) + W_INPKTS] = 0;
    this.setTimeout(idx, timeoutMs);
    this.setExpires(idx, now + timeoutMs);
    return idx;
  }

  /**
   * Creates a normal conn bound to `dest` (its forwarding method copied into the flags, as the
   * kernel's bind does; with dest null the fwd comes from `extraFlags & CF_FWD_MASK`).
   * `ctrl` is the controlling template (-1 none): its n_control++ and its timer is re-armed to
   * now + its timeout. The conn starts in state NONE with a 3 s timeout. `extraFlags` may carry
   * CF_ONE_PACKET (UDP only: the conn is not hashed; free it after the packet).
   * Returns idx, or -1 when the table is full (fullDrops++).
   */
  create(proto: number, caddr: number, cport: number, vaddr: number, vport: number, daddr: number, dport: number,
    laddr: number, lport: number, dest: Dest | null, svcId: number, ctrl: number, now: number, extraFlags: number): number {
    let f = CF_IN_USE | (extraFlags & (CF_FWD_MASK | CF_ONE_PACKET | CF_NOOUTPUT | CF_INACTIVE | CF_NO_CPORT));
    if (proto !== IPPROTO_UDP) f &= ~CF_ONE_PACKET;
    if ((f & CF_NO_CPORT) !== 0) this.noCport++;
    const idx = this.fill(proto, TCP_S_NONE, f, caddr, cport, vaddr, vport, daddr, dport, laddr, lport, svcId,
      NEW_CONN_TIMEOUT_MS, now);
    if (idx < 0) return -1;
    if (dest !== null) this.bind(idx, dest);
    this.hash(idx);
    if (ctrl >= 0) {
      this.setCtrl(idx, ctrl);
      this.setNControl(ctrl, this.nControl(ctrl) + 1);
      this.touch(ctrl, now);
    }
    this.wheel.insert(idx, this.expires(idx));
    this.count++;
    return idx;
  }

  /**
   * Creates a persistence template <proto, caddr(masked), 0, vaddr, vport> → <daddr, dport>
   * bound to `dest` (persistConns++), IN tuple only, timeout `timeoutMs` (the service's
   * persistence timeout). Returns idx or -1 when full.
   */
  createTemplate(proto: number, caddr: number, vaddr: number, vport: number, daddr: number, dport: number,
    dest: Dest | null, svcId: number, timeoutMs: number, now: number): number {
    const idx = this.fill(proto, CTPL_S_NONE, CF_IN_USE | CF_TEMPLATE, caddr, 0, vaddr, vport, daddr, dport, 0, 0, svcId,
      timeoutMs, now);
    if (idx < 0) return -1;
    if (dest !== null) this.bind(idx, dest);
    this.hash(idx);
    this.wheel.insert(idx, this.expires(idx));
    this.count++;
    this.templates++;
    return idx;
  }

  /**
   * Binds conn idx to dest (K ip_vs_bind_dest): copies the fwd method, sets INACTIVE and, for
   * non-NAT methods, NOOUTPUT; counts it (inact/active or persist) and sets OVERLOAD when
   * u_threshold != 0 and active+inactive >= u_threshold. Call before the conn is hashed.
   */
  bind(idx: number, dest: Dest): void {
    if (this.dests[dest.id] !== dest) this.dests[dest.id] = dest;
    this.setDestId(idx, dest.id);
    let f = (this.flags(idx) & ~CF_FWD_MASK) | dest.fwd;
    if (f & CF_TEMPLATE) {
      dest.persistConns++;
    } else {
      // dest->conn_flags always carries INACTIVE, and NOOUTPUT for every method but MASQ
      // (FULLNAT replies come back through the director too).
      f |= CF_INACTIVE;
      if (dest.fwd !== FWD_MASQ && dest.fwd !== FWD_FULLNAT) f |= CF_NOOUTPUT;
      dest.inactConns++;
    }
    this.setFlags(idx, f);
    if (dest.uThreshold !== 0 && dest.activeConns + dest.inactConns >= dest.uThreshold) dest.flags |= DEST_F_OVERLOAD;
  }

  /** K ip_vs_unbind_dest: uncounts conn idx and applies the OVERLOAD clearing rule. */
  private unbind(idx: number): void {
    const id = this.destId(idx);
    if (id < 0) return;
    this.setDestId(idx, -1);
    const dest = this.dests[id];
    if (dest === undefined) return;
    const f = this.flags(idx);
    if (f & CF_TEMPLATE) dest.persistConns--;
    else if (f & CF_INACTIVE) dest.inactConns--;
    else dest.activeConns--;
    const total = dest.activeConns + dest.inactConns;
    if (dest.lThreshold !== 0) {
      if (total < dest.lThreshold) dest.flags &= ~DEST_F_OVERLOAD;
    } else if (dest.uThreshold !== 0) {
      if (total * 4 < dest.uThreshold * 3) dest.flags &= ~DEST_F_OVERLOAD;
    } else {
      dest.flags &= ~DEST_F_OVERLOAD;
    }
  }

  // ---------------------------------------------------------------- per packet

  /**
   * Re-arms conn idx: expires = now + timeout[idx]. O(1); when the expiry moves earlier (a
   * shorter timeout) the wheel entry is relinked, otherwise only the field is written.
   */
  touch(idx: number, now: number): void {
    const e = now + this.timeout(idx);
    if (e < this.expires(idx)) this.wheel.relink(idx, e);
    this.setExpires(idx, e);
  }

  /**
   * Counts a client→server packet of conn idx (K cp->in_pkts: drop_entry's todrop_entry and the
   * sync master's threshold/period test read it); returns the new count (saturates at 2^30).
   */
  countIn(idx: number): number {
    const o = (idx << REC_SHIFT) + W_INPKTS;
    const v = this.r32[o]!;
    if (v < IN_PKTS_MAX) this.r32[o] = v + 1;
    return v + 1;
  }

  /** Client→server packets seen on conn idx (see countIn). */
  inPkts(idx: number): number {
    return this.r32[(idx << REC_SHIFT) + W_INPKTS]!;
  }

  /** Sets conn idx's packet count (K: a synced conn starts at sync_threshold). */
  setInPkts(idx: number, v: number): void {
    this.r32[(idx << REC_SHIFT) + W_INPKTS] = v;
  }

  /**
   * K cp->old_state: the state conn idx had when the sync master last sent it (a state change
   * forces a sync). Kept in the scratch word, which only free slots use otherwise.
   */
  syncedState(idx: number): number { return this.r32[(idx << REC_SHIFT) + W_SCRATCH]!; }
  setSyncedState(idx: number, v: number): void { this.r32[(idx << REC_SHIFT) + W_SCRATCH] = v; }

  /**
   * A backup's update of conn idx from a sync record (K ip_vs_proc_conn): the state, the
   * master's INACTIVE bit (moving the conn between its dest's active and inactive counts), the
   * timeout and expiry, the packet count; the synced state is the state.
   */
  applySync(idx: number, state: number, inactive: boolean, timeoutMs: number, inPkts: number, now: number): void {
    let f = this.flags(idx);
    if (!(f & CF_TEMPLATE) && ((f & CF_INACTIVE) !== 0) !== inactive) {
      const id = this.destId(idx);
      const dest = id >= 0 ? this.dests[id] : undefined;
      if (dest !== undefined) {
        if (inactive) { dest.activeConns--; dest.inactConns++; } else { dest.activeConns++; dest.inactConns--; }
      }
      f = inactive ? f | CF_INACTIVE : f & ~CF_INACTIVE;
      this.setFlags(idx, f);
    }
    if (f & CF_TEMPLATE) {
      this.setState(idx, CTPL_S_NONE);
      this.setFlags(idx, f & ~CF_ASSURED);
    } else {
      this.setState(idx, state);
    }
    this.setSyncedState(idx, state);
    this.setInPkts(idx, inPkts);
    this.setTimeout(idx, timeoutMs);
    this.touch(idx, now);
  }

  /**
   * drop_entry's pass (K ip_vs_random_dropentry, run every second while in effect): looks at
   * `n` slots picked at random (the kernel: 1/32 of its hash buckets) and frees the conns an attacker
   * would leave behind — TCP in SYN_RECV or SYNACK; an ESTABLISHED TCP conn, a UDP conn or a
   * non-ASSURED template only when todrop() says so (idle for 60 s or more, and 1..8 client
   * packets: one in k of those with k packets). Conns controlling others are kept. Returns how
   * many were freed.
   */
  dropRandomEntries(n: number, now: number): number {
    let freed = 0;
    const cap = this.capacity;
    for (let k = 0; k < n; k++) {
      let x = this.rng;
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      this.rng = x;
      const idx = (x >>> 0) % cap;
      if (!this.inUse(idx) || this.nControl(idx) > 0) continue;
      let drop: boolean;
      if (this.flags(idx) & CF_TEMPLATE) drop = this.state(idx) !== CTPL_S_ASSURED && this.todrop(idx, now);
      else if (this.proto(idx) === IPPROTO_TCP) {
        const st = this.state(idx);
        drop = st === TCP_S_SYN_RECV || st === TCP_S_SYNACK || (st === TCP_S_ESTABLISHED && this.todrop(idx, now));
      } else drop = this.todrop(idx, now);
      if (drop) {
        this.free(idx);
        freed++;
      }
    }
    return freed;
  }

  /** K todrop_entry: not within 60 s of its last packet; i = inPkts in 1..8 ⇒ one in i is dropped. */
  private todrop(idx: number, now: number): boolean {
    if (now < this.expires(idx) - this.timeout(idx) + 60_000) return false;
    const i = this.inPkts(idx);
    if (i < 1 || i > 8) return false;
    if (--this.todropCounter[i]! > 0) return false;
    this.todropCounter[i] = i;
    return true;
  }

  /** Switches every TCP conn to the defence transition table (K tcp_timeout_change: secure_tcp > 1) or back. */
  useDefenceTable(on: boolean): void {
    this.tcpTable = on ? TCP_TABLE_DOS : TCP_TABLE;
  }

  /** Whether the defence table is in effect. */
  get defenceTable(): boolean {
    return this.tcpTable === TCP_TABLE_DOS;
  }

  /**
   * TCP packet on conn idx in direction dir (DIR_IN / DIR_OUT) with header flags `tcpFlags`
   * (K set_tcp_state + ip_vs_conn_put): picks the INPUT, OUTPUT or INPUT-ONLY row (an OUTPUT
   * packet clears NOOUTPUT), moves the state, updates active/inactive on a state change,
   * marks the controlling template ASSURED on entering ESTABLISHED, applies
   * timeout = timeouts.tcp[newState] and re-arms. Returns true when the state changed;
   * the previous state is left in `lastOldState`.
   */
  tcpTransition(idx: number, dir: number, tcpFlags: number, now: number): boolean {
    let f = this.flags(idx);
    let off = dir === DIR_IN ? TCP_DIR_INPUT : TCP_DIR_OUTPUT;
    if (f & CF_NOOUTPUT) {
      if (dir !== DIR_IN) {
        f &= ~CF_NOOUTPUT;
        this.setFlags(idx, f);
      } else {
        off = TCP_DIR_INPUT_ONLY;
      }
    }
    const old = this.state(idx);
    this.lastOldState = old;
    const ev = tcpEventIndex(tcpFlags);
    const ns = ev < 0 ? TCP_S_CLOSE : this.tcpTable[(off + ev) * TCP_S_LAST + old]!;
    const changed = ns !== old;
    if (changed) {
      const id = this.destId(idx);
      const dest = id >= 0 ? this.dests[id] : undefined;
      if (dest !== undefined) {
        if (!(f & CF_INACTIVE) && !TCP_STATE_ACTIVE[ns]) {
          dest.activeConns--;
          dest.inactConns++;
          f |= CF_INACTIVE;
        } else if ((f & CF_INACTIVE) && TCP_STATE_ACTIVE[ns]) {
          dest.activeConns++;
          dest.inactConns--;
          f &= ~CF_INACTIVE;
        }
        this.setFlags(idx, f);
      }
      if (ns === TCP_S_ESTABLISHED) this.assureControl(idx);
      this.setState(idx, ns);
    }
    this.setTimeout(idx, this.timeouts.tcp[ns]!);
    this.touch(idx, now);
    return changed;
  }

  /**
   * UDP packet on conn idx (K udp_state_transition + ip_vs_conn_put): timeout = UDP timeout,
   * re-armed; a reply (DIR_OUT) marks the controlling template ASSURED. UDP conns stay
   * INACTIVE forever.
   */
  udpPacket(idx: number, dir: number, now: number): void {
    if (dir !== DIR_IN) this.assureControl(idx);
    this.setTimeout(idx, this.timeouts.udp);
    this.touch(idx, now);
  }

  /** K ip_vs_control_assure_ct. */
  private assureControl(idx: number): void {
    const t = this.ctrl(idx);
    if (t >= 0 && this.state(t) !== CTPL_S_ASSURED) {
      this.setState(t, CTPL_S_ASSURED);
      this.setFlags(t, this.flags(t) | CF_ASSURED);
    }
  }

  /**
   * Conn reuse (sysctl conn_reuse_mode, default 1; call on a SYN that hit conn idx in the IN
   * direction): an uncontrolled TCP conn in TIME_WAIT or CLOSE (mode bit 2: also FIN_WAIT with
   * NOOUTPUT) is expired now and true is returned: the caller schedules afresh. Otherwise
   * false (the conn is reused and its state follows the table).
   */
  reuseOnSyn(idx: number, reuseMode = 1): boolean {
    if (reuseMode === 0 || this.ctrl(idx) !== -1 || this.proto(idx) !== IPPROTO_TCP) return false;
    const s = this.state(idx);
    if (s === TCP_S_TIME_WAIT || s === TCP_S_CLOSE ||
      ((reuseMode & 2) !== 0 && s === TCP_S_FIN_WAIT && (this.flags(idx) & CF_NOOUTPUT) !== 0)) {
      this.free(idx);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- templates

  /**
   * K ip_vs_check_template: a template is invalid when its dest is gone or not AVAILABLE, or
   * (expire_quiescent_template=1) its weight is 0. An invalid template is re-keyed with
   * vport = dport = 0xffff, cport = 0 so it never matches again, and lingers until its
   * controlled conns end. Returns validity.
   */
  checkTemplate(t: number, expireQuiescent = false): boolean {
    if (this.flags(t) & CF_INVALID) return false;
    const d = this.dest(t);
    if (d !== undefined && d.available && !(expireQuiescent && d.weight === 0)) return true;
    this.invalidateTemplate(t);
    return false;
  }

  invalidateTemplate(t: number): void {
    if (this.flags(t) & CF_INVALID) return;
    this.unhash(t);
    this.setVport(t, 0xffff);
    this.setDport(t, 0xffff);
    this.setCport(t, 0);
    this.setFlags(t, this.flags(t) | CF_INVALID);
    this.hash(t);
  }

  /**
   * K ip_vs_conn_fill_cport: the client's first packet to a CF_NO_CPORT conn (found by a lookup
   * with cport 0) gives it its port: rehashed under the full tuple.
   */
  fillCport(idx: number, cport: number): void {
    const f = this.flags(idx);
    if ((f & (CF_NO_CPORT | CF_TEMPLATE)) !== CF_NO_CPORT) return;
    this.unhash(idx);
    this.setCport(idx, cport);
    this.setFlags(idx, this.flags(idx) & ~CF_NO_CPORT);
    this.noCport--;
    this.hash(idx);
  }

  /** Binds the FTP helper to NAT conn idx (fwd/ftp.ts). */
  setAppFtp(idx: number): void { this.setFlags(idx, this.flags(idx) | CF_APP_FTP); }

  /**
   * K ip_vs_tcp_conn_listen: a conn made for an expected FTP data connection waits in LISTEN
   * (timeout 2 min) for its first packet.
   */
  setListen(idx: number, now: number): void {
    this.setState(idx, TCP_S_LISTEN);
    this.setTimeout(idx, this.timeouts.tcp[TCP_S_LISTEN]!);
    this.touch(idx, now);
  }

  // ---------------------------------------------------------------- expiry

  /**
   * Expires conn idx now (data path: ONE_PACKET conns, conn reuse, expire_nodest_conn). A
   * template that still controls conns is not freed: it is re-armed for 60 s (K ip_vs_conn_expire)
   * (returns false). Returns true when the slot was freed.
   */
  expire(idx: number, now: number): boolean {
    if (!this.inUse(idx)) return false;
    if (this.nControl(idx) > 0) {
      this.setTimeout(idx, TEMPLATE_REARM_MS);
      this.wheel.remove(idx);
      this.setExpires(idx, now + TEMPLATE_REARM_MS);
      this.wheel.insert(idx, this.expires(idx));
      return false;
    }
    this.free(idx);
    return true;
  }

  /** Wheel callback: idx is due and unlinked. */
  onDue(idx: number, now: number): void {
    if (this.nControl(idx) > 0) {
      // K ip_vs_conn_expire: still controlling conns ⇒ keep, timeout becomes 60 s.
      this.setTimeout(idx, TEMPLATE_REARM_MS);
      this.setExpires(idx, now + TEMPLATE_REARM_MS);
      this.wheel.insert(idx, this.expires(idx));
      if (this.onRearm !== null) this.onRearm(idx, now); // K: and the sync master sends it again
      return;
    }
    this.free(idx);
  }

  /**
   * Processes due conns up to `now`, at most maxExpirePerTick visits; `pending` is then true
   * when more are due (call again soon, e.g. from setImmediate). Returns the number of due
   * entries handled (freed or re-armed templates).
   */
  tick(now: number): number {
    return this.wheel.advance(now, this.maxExpirePerTick, this);
  }

  get pending(): boolean {
    return this.wheel.pending;
  }

  private free(idx: number): void {
    this.unhash(idx);
    this.wheel.remove(idx);
    const t = this.ctrl(idx);
    if (t >= 0) {
      this.setNControl(t, this.nControl(t) - 1);
      this.setCtrl(idx, -1);
    }
    if (this.onExpire !== null) this.onExpire(idx);
    if ((this.flags(idx) & (CF_NO_CPORT | CF_TEMPLATE)) === CF_NO_CPORT) this.noCport--;
    this.unbind(idx);
    if (this.flags(idx) & CF_TEMPLATE) this.templates--;
    this.setFlags(idx, 0);
    this.count--;
    this.setScratch(idx, this.freeHead + 1);
    this.freeHead = idx;
  }

  // ---------------------------------------------------------------- control path

  /**
   * Drops dest id from the registry once nothing references it (its active, inactive and
   * persist counters are 0); the dest trash calls this before freeing a removed dest.
   * Returns whether it was dropped.
   */
  forgetDest(id: number): boolean {
    const d = this.dests[id];
    if (d === undefined) return true;
    if (d.activeConns !== 0 || d.inactConns !== 0 || d.persistConns !== 0) return false;
    this.dests[id] = undefined;
    return true;
  }

  /** Calls fn for every conn and template in use (slot order). */
  forEach(fn: (idx: number) => void): void {
    const total = this.count; // fn may free the conn it is given
    let seen = 0;
    for (let i = 0; i < this.capacity && seen < total; i++) {
      if (this.flags(i) & CF_IN_USE) {
        seen++;
        fn(i);
      }
    }
  }

  /** The state as the kernel prints it: TCP names, `UDP`, NONE/ASSURED for templates. */
  stateName(idx: number): string {
    const s = this.state(idx);
    if (this.flags(idx) & CF_TEMPLATE) return CTPL_STATE_NAMES[s] ?? 'ERR!';
    const p = this.proto(idx);
    if (p === IPPROTO_TCP) return TCP_STATE_NAMES[s] ?? 'ERR!';
    if (p === IPPROTO_UDP) return 'UDP';
    return 'NONE';
  }

  /** Listing row for conn idx at clock `now`. */
  snap(idx: number, now: number): ConnSnap {
    const la = this.laddr(idx);
    const proto = this.proto(idx);
    return {
      protocol: proto,
      caddr: ipToString(this.caddr(idx)),
      cport: this.cport(idx),
      vaddr: ipToString(this.vaddr(idx)),
      vport: this.vport(idx),
      daddr: ipToString(this.daddr(idx)),
      dport: this.dport(idx),
      laddr: la !== 0 ? ipToString(la) : '',
      lport: this.lport(idx),
      state: this.stateName(idx),
      expires: Math.max(0, Math.floor((this.expires(idx) - now) / 1000)),
      template: (this.flags(idx) & CF_TEMPLATE) !== 0,
      fwd: this.fwd(idx),
    };
  }

  snapshot(now: number): ConnSnap[] {
    const out: ConnSnap[] = [];
    this.forEach((i) => out.push(this.snap(i, now)));
    return out;
  }

  /**
   * Frees every conn matching `pred`: normal conns first, then templates (whose controlled
   * conns are then gone too, or have been orphaned: their ctrl link is cleared). Returns count.
   */
  private flushWhere(pred: (idx: number) => boolean): number {
    let n = 0;
    const tmpl: number[] = [];
    this.forEach((i) => {
      if (!pred(i)) return;
      // Templates and conns controlling others (an FTP control conn) go last, after what they control.
      if ((this.flags(i) & CF_TEMPLATE) !== 0 || this.nControl(i) > 0) tmpl.push(i);
      else {
        this.free(i);
        n++;
      }
    });
    for (const t of tmpl) {
      if (this.nControl(t) > 0) {
        // Controlled conns outside the flushed set (rare): detach them so no stale link survives.
        for (let i = 0; i < this.capacity; i++) if (this.ctrl(i) === t) this.setCtrl(i, -1);
        this.setNControl(t, 0);
      }
      this.free(t);
      n++;
    }
    return n;
  }

  /** Removes every conn and template bound to dest id (ipvsadm -d with expire, trash purge). */
  flushDest(destId: number): number {
    return this.flushWhere((i) => this.destId(i) === destId);
  }

  /** Removes every conn and template of service id (ipvsadm -D). */
  flushService(svcId: number): number {
    return this.flushWhere((i) => this.svcId(i) === svcId);
  }

  /** Removes everything (ipvsadm -C). */
  flushAll(): number {
    return this.flushWhere(() => true);
  }

  /** Invalidates every template pointing at dest id (dest removed / quiesced with expire). */
  invalidateTemplatesOf(destId: number): number {
    let n = 0;
    this.forEach((i) => {
      if ((this.flags(i) & CF_TEMPLATE) && this.destId(i) === destId && !(this.flags(i) & CF_INVALID)) {
        this.invalidateTemplate(i);
        n++;
      }
    });
    return n;
  }

  /** Whether fwmark templates use IPPROTO_IP: re-exported for callers building template keys. */
  static readonly FWMARK_PROTO = IPPROTO_IP;
}

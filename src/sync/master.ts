/**
 * SyncMaster — the sending half of IPVS connection sync (K ip_vs_sync_conn and
 * ip_vs_sync_conn_needed, the master thread's queue): which conns are sent when, packed into
 * messages of at most `maxlen` bytes.
 *
 * The data path calls connPacket(c) for every client→server packet of a conn (K ip_vs_in), after
 * its state transition. A conn is sent:
 *   - TCP only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT; a change of state since it
 *     was last sent forces it, except a change into ESTABLISHED, which waits for the packet test;
 *   - the packet test: in_pkts % sync_period == sync_threshold (sync_period 0: in_pkts ==
 *     sync_threshold); UDP only by it;
 *   - ONE_PACKET conns never; a persistence template after each packet of a conn it controls
 *     (templates skip the packet test; their in_pkts counts those packets).
 * sync_threshold, sync_persist_mode and sync_version are read on every call (sysctls). sync_refresh_period
 * and sync_retries stay at 0: not implemented (the sysctl list says so).
 * A message is queued when the next record does not fit; queued messages go out every
 * SEND_INTERVAL_MS, and a partly filled one once it is FLUSH_AFTER_MS old (K: 20 ms, 2 s).
 * Allocation: one copy per full message, nothing per packet.
 */
import type { ConnTable } from '../conn/conn-table.js';
import { CF_FWD_MASK, CF_INACTIVE, CF_NOOUTPUT, CF_ONE_PACKET, CF_PP_SENT, CF_PP_V1, CF_PP_V2, CF_SYNPROXY, CF_TEMPLATE, FTP_APP_BITS, FTP_APP_MASK } from '../conn/conn-table.js';
import type { FtpHelper } from '../fwd/ftp.js';
import {
  TCP_S_CLOSE, TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_TIME_WAIT,
} from '../conn/tcp-state.js';
import type { Config } from '../model/config.js';
import type { Sysctls } from '../model/sysctl.js';
import { IPPROTO_TCP } from '../model/constants.js';
import { emptyRecord, KF_FWD_MASK, KF_INACTIVE, KF_NOOUTPUT, KF_ONE_PACKET, KF_TEMPLATE, SyncWriter } from './proto.js';

export const SEND_INTERVAL_MS = 20;
export const FLUSH_AFTER_MS = 2000;
/** Messages waiting to be sent at most (beyond: the oldest is dropped, counted). */
export const QUEUE_MAX = 256;

const SYNC_TCP_STATES = (1 << TCP_S_ESTABLISHED) | (1 << TCP_S_FIN_WAIT) | (1 << TCP_S_CLOSE) | (1 << TCP_S_CLOSE_WAIT) | (1 << TCP_S_TIME_WAIT);

export interface SyncMasterOptions {
  syncid: number;
  /** Message size limit (bytes of UDP payload). */
  maxlen: number;
}

/** The smallest message uvs builds (one version-1 record with uvs's option). */
export const SYNC_MAXLEN_MIN = 52;

export class SyncMaster {
  writer: SyncWriter;
  /** Full messages waiting for due() to hand them to the socket. */
  readonly queue: Uint8Array[] = [];
  /** Counters: records written, messages queued, messages dropped because the queue was full. */
  records = 0;
  messages = 0;
  queueDrops = 0;
  private readonly rec = emptyRecord();

  /** The director's FTP helper (its conns' sequence deltas travel in IPVS_OPT_SEQ_DATA); set by Director.setSyncMaster. */
  ftp: FtpHelper | null = null;

  constructor(private readonly conns: ConnTable, private readonly config: Config, private readonly sysctl: Sysctls,
    readonly opts: SyncMasterOptions) {
    this.writer = this.newWriter();
  }

  private newWriter(): SyncWriter {
    return new SyncWriter(Math.max(this.opts.maxlen, SYNC_MAXLEN_MIN), this.opts.syncid, this.sysctl.syncVersion === 0 ? 0 : 1);
  }

  /**
   * K ip_vs_sync_conn for a client→server packet of conn c (after countIn and the state change).
   * Returns how many records it wrote (the conn's and its template's).
   */
  connPacket(c: number, now: number): number {
    const before = this.records;
    const conns = this.conns;
    const version = this.sysctl.syncVersion === 0 ? 0 : 1;
    if (version !== this.writer.version) {
      // sync_version changed: the message being built goes out as it is, the next one in the new format.
      this.enqueue();
      this.writer = this.newWriter();
    }
    let pkts = (conns.flags(c) & CF_ONE_PACKET) !== 0 ? this.sysctl.syncThreshold : conns.inPkts(c);
    if (version === 1 && (conns.flags(c) & CF_ONE_PACKET) !== 0) {
      // K: ONE_PACKET conns are not sent; their controller still is.
    } else if (this.needed(c, pkts)) {
      this.write(c, now);
    } else if (version === 0) {
      return 0; // K ip_vs_sync_conn_v0 returns before the controller when the conn is not sent
    }
    // K: then its controller (a template: its in_pkts counts these calls).
    let t = conns.ctrl(c);
    for (let guard = 0; t >= 0 && guard < 4; guard++) {
      if (conns.flags(t) & CF_TEMPLATE) pkts = conns.countIn(t);
      else pkts = this.sysctl.syncThreshold;
      if (this.needed(t, pkts)) this.write(t, now);
      t = conns.ctrl(t);
    }
    return this.records - before;
  }

  /** K ip_vs_sync_conn_needed with sync_refresh_period = 0. */
  needed(c: number, pkts: number): boolean {
    const conns = this.conns;
    const f = conns.flags(c);
    let force = false;
    if (f & CF_TEMPLATE) {
      // templates: no state test, no packet test
    } else if (f & CF_SYNPROXY) {
      return false; // a backup could not translate its sequence numbers (the delta has no record field)
    } else if (this.sysctl.syncPersistMode !== 0 && this.inPersistence(c)) {
      return false; // sync_persist_mode: only the templates of persistent services are sent
    } else if (conns.proto(c) === IPPROTO_TCP) {
      const st = conns.state(c);
      if (!((1 << st) & SYNC_TCP_STATES)) return false;
      force = st !== conns.syncedState(c);
      if (force && st !== TCP_S_ESTABLISHED) {
        conns.setSyncedState(c, st);
        return true;
      }
    }
    if (!(f & CF_TEMPLATE)) {
      const period = this.sysctl.syncPeriod, threshold = this.sysctl.syncThreshold;
      if (period > 0) {
        if (pkts % period !== threshold) return false;
      } else if (pkts !== threshold) {
        return false;
      }
    }
    conns.setSyncedState(c, conns.state(c));
    return true;
  }

  /**
   * Conn c's stream just changed in a way a backup must know before it takes over — a
   * `--proxy-protocol` conn sent its header (the backup must not put a second one in), the FTP
   * helper lengthened a reply (the backup must move the seqs by as much): its record goes out now,
   * not at the next sync_threshold packet. Returns the records written (0 or 1).
   */
  sendNow(c: number, now: number): number {
    if (this.sysctl.syncPersistMode !== 0 && this.inPersistence(c)) return 0;
    this.conns.setSyncedState(c, this.conns.state(c));
    this.write(c, now);
    return 1;
  }

  /** K in_persistence: a template controls c (directly or up its chain). */
  private inPersistence(c: number): boolean {
    const conns = this.conns;
    for (let t = conns.ctrl(c), g = 0; t >= 0 && g < 4; t = conns.ctrl(t), g++) if (conns.flags(t) & CF_TEMPLATE) return true;
    return false;
  }

  /** Appends conn c's record, queueing the current message first when it does not fit. */
  private write(c: number, now: number): void {
    const conns = this.conns;
    const r = this.rec;
    const f = conns.flags(c);
    r.proto = conns.proto(c);
    r.flags = (f & CF_FWD_MASK & KF_FWD_MASK) | (f & CF_NOOUTPUT ? KF_NOOUTPUT : 0) | (f & CF_INACTIVE ? KF_INACTIVE : 0) |
      (f & CF_TEMPLATE ? KF_TEMPLATE : 0) | (f & CF_ONE_PACKET ? KF_ONE_PACKET : 0);
    r.state = conns.state(c);
    r.caddr = conns.caddr(c); r.cport = conns.cport(c);
    r.vaddr = conns.vaddr(c); r.vport = conns.vport(c);
    r.daddr = conns.daddr(c); r.dport = conns.dport(c);
    r.laddr = conns.laddr(c); r.lport = conns.lport(c);
    r.pp = (f & CF_PP_V2) !== 0 ? 2 : (f & CF_PP_V1) !== 0 ? 1 : 0;
    r.ppSent = (f & CF_PP_SENT) !== 0 ? 1 : 0;
    r.ppSeq = r.ppSent ? conns.ppSeq(c) >>> 0 : 0;
    r.hasSeq = 0;
    if (this.ftp !== null && (f & FTP_APP_MASK) === FTP_APP_BITS) this.ftp.fillSync(c, r);
    r.fwmark = this.config.svcById[conns.svcId(c)]?.fwmark ?? 0;
    r.timeout = Math.floor(conns.timeout(c) / 1000);
    if (!this.writer.add(r, now)) {
      this.enqueue();
      this.writer.add(r, now);
    }
    this.records++;
  }

  private enqueue(): void {
    const m = this.writer.take();
    if (m === null) return;
    if (this.queue.length >= QUEUE_MAX) {
      this.queue.shift();
      this.queueDrops++;
    }
    this.queue.push(m);
    this.messages++;
  }

  /**
   * The master thread's turn (call every SEND_INTERVAL_MS): a partly filled message older than
   * FLUSH_AFTER_MS (or any, with `all`, when the daemon stops) is queued; returns the queue's
   * messages, emptied.
   */
  due(now: number, all = false): Uint8Array[] {
    if (this.writer.count > 0 && (all || now - this.writer.firstUse >= FLUSH_AFTER_MS)) this.enqueue();
    if (this.queue.length === 0) return EMPTY;
    return this.queue.splice(0, this.queue.length);
  }
}

const EMPTY: Uint8Array[] = [];

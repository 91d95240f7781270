/**
 * The IPVS connection-sync wire format (K ip_vs_sync.c), versions 1 and 0, IPv4.
 *
 * Version 1 message: an 8-byte header {reserved = 0, SyncID, Size u16, nr_conns u8, version = 1,
 * spare u16 = 0}, then up to 255 conn records, each on a 4-byte boundary:
 *   type u8 (0 = IPv4) | protocol u8 | ver_size u16 (version 0 << 12 | length incl. options)
 *   flags u32 | state u16 | cport u16 | vport u16 | dport u16 | fwmark u32 | timeout u32 (s)
 *   caddr | vaddr | daddr                                   = 36 bytes, then options
 * Options are {type u8, length u8 (> 0), data}; a type with IPVS_OPT_F_PARAM (0x40) set is
 * optional: a receiver that does not know it skips it, an unknown type without it makes the
 * receiver drop that record. uvs adds one optional type, OPT_UVS_LADDR (0x50: 0x40 | 0x10, a
 * value the kernel does not use): a FULLNAT conn's local address and port (6 bytes), which the
 * kernel's format has no field for; kernel backups skip it.
 * Version 0 message (sysctl sync_version=0): a 4-byte header {nr_conns, SyncID, Size}, 24-byte
 * records {reserved, protocol, cport, vport, dport, caddr, vaddr, daddr, flags u16, state u16};
 * no timeout, no fwmark.
 * All multi-byte fields are in network order. Addresses here are host-order u32.
 *
 * Decoding follows K ip_vs_process_message / ip_vs_proc_sync_conn: a message whose length is
 * not its Size, or a record that runs past it, drops the whole message; a record with an unknown
 * mandatory option, an IPv6 record (uvs is IPv4 only) or an unknown protocol/state is skipped.
 */

export const SYNC_GROUP = '224.0.0.81';
export const SYNC_PORT = 8848;
export const SYNC_TTL = 1;
/** Kernel default master message size: 1500 − IP and UDP headers. */
export const SYNC_MAXLEN_DEFAULT = 1500 - 20 - 8;

/** Kernel IP_VS_CONN_F_* bits as they travel. */
export const KF_FWD_MASK = 0x0007;
export const KF_SYNC = 0x0020;
export const KF_HASHED = 0x0040;
export const KF_NOOUTPUT = 0x0080;
export const KF_INACTIVE = 0x0100;
export const KF_SEQ_MASK = 0x0600;
/** K IP_VS_CONN_F_OUT_SEQ: the conn's out_seq is in use. */
export const KF_OUT_SEQ = 0x0200;
export const KF_NO_CPORT = 0x0800;
export const KF_TEMPLATE = 0x1000;
export const KF_ONE_PACKET = 0x2000;
/** K IP_VS_CONN_F_BACKUP_MASK: what a backup keeps of a record's flags. */
export const KF_BACKUP_MASK = KF_FWD_MASK | KF_NOOUTPUT | KF_INACTIVE | KF_SEQ_MASK | KF_NO_CPORT | KF_TEMPLATE;

export const OPT_SEQ_DATA = 1;
export const OPT_PE_DATA = 2;
export const OPT_PE_NAME = 3;
export const OPT_F_PARAM = 0x40;
export const OPT_UVS_LADDR = 0x50;
/**
 * uvs option 0x51 (0x40 | 0x11, optional: kernel receivers skip it): a `--proxy-protocol` conn's
 * header version (1, 2), whether the header went out (0, 1) and the seq of the client's first data
 * byte (fwd/proxy-proto.ts), so a backup keeps moving seqs and acks after a failover. 6 bytes.
 */
export const OPT_UVS_PP = 0x51;

export const V1_HEADER = 8;
export const V1_RECORD = 36;
export const V0_HEADER = 4;
export const V0_RECORD = 24;
const V0_SEQ_BLOCK = 24;

/** One conn as it travels (host-order addresses; laddr/lport 0 unless FULLNAT). */
export interface SyncRecord {
  proto: number;
  /** Kernel flag bits (KF_*). */
  flags: number;
  state: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  fwmark: number;
  /** Seconds; 0 = not given (version 0): the receiver takes the state's timeout. */
  timeout: number;
  laddr: number;
  lport: number;
  /** PROXY protocol: header version (0 none, 1, 2), whether it went out, where the client data starts. */
  pp: number;
  ppSent: number;
  ppSeq: number;
  /**
   * K out_seq {init_seq, delta, previous_delta} of a conn whose server → client stream the FTP
   * helper lengthened (IPVS_OPT_SEQ_DATA; `hasSeq` 0: none). in_seq is never used (always 0).
   */
  hasSeq: number;
  seqInit: number;
  seqDelta: number;
  seqPrev: number;
}

export function emptyRecord(): SyncRecord {
  return {
    proto: 0, flags: 0, state: 0, caddr: 0, cport: 0, vaddr: 0, vport: 0, daddr: 0, dport: 0, fwmark: 0, timeout: 0, laddr: 0, lport: 0,
    pp: 0, ppSent: 0, ppSeq: 0, hasSeq: 0, seqInit: 0, seqDelta: 0, seqPrev: 0,
  };
}

/**
 * Builds messages of at most `maxlen` bytes in one preallocated buffer: add() appends a record
 * (false when it does not fit: take() the message first), take() returns a copy of the message
 * so far and starts a new one.
 */
export class SyncWriter {
  private readonly buf: Uint8Array;
  private readonly dv: DataView;
  private head = 0;
  private n = 0;
  /** Clock value (ms) when the message being built got its first record. */
  firstUse = 0;

  constructor(readonly maxlen: number, readonly syncid: number, readonly version: 0 | 1) {
    if (maxlen < (version === 1 ? V1_HEADER + V1_RECORD + 8 : V0_HEADER + V0_RECORD)) throw new RangeError(`sync maxlen ${maxlen} too small`);
    this.buf = new Uint8Array(maxlen);
    this.dv = new DataView(this.buf.buffer);
    this.reset();
  }

  get count(): number { return this.n; }
  get size(): number { return this.head; }

  private reset(): void {
    this.buf.fill(0);
    this.n = 0;
    this.head = this.version === 1 ? V1_HEADER : V0_HEADER;
  }

  /** Appends r; false (nothing written) when it does not fit or the message holds 255 records. */
  add(r: SyncRecord, now: number): boolean {
    if (this.n >= 255) return false;
    const dv = this.dv;
    if (this.version === 0) {
      if (this.head + V0_RECORD > this.maxlen) return false;
      const o = this.head;
      dv.setUint8(o + 1, r.proto);
      dv.setUint16(o + 2, r.cport);
      dv.setUint16(o + 4, r.vport);
      dv.setUint16(o + 6, r.dport);
      dv.setUint32(o + 8, r.caddr >>> 0);
      dv.setUint32(o + 12, r.vaddr >>> 0);
      dv.setUint32(o + 16, r.daddr >>> 0);
      dv.setUint16(o + 20, r.flags & 0xffff & ~KF_HASHED & ~KF_SEQ_MASK);
      dv.setUint16(o + 22, r.state);
      this.head += V0_RECORD;
    } else {
      const seqLen = r.hasSeq !== 0 ? 26 : 0;
      const len = V1_RECORD + seqLen + (r.laddr !== 0 ? 8 : 0) + (r.pp !== 0 ? 8 : 0);
      const pad = (4 - (this.head & 3)) & 3;
      if (this.head + pad + len > this.maxlen) return false;
      const o = this.head + pad;
      dv.setUint8(o, 0);
      dv.setUint8(o + 1, r.proto);
      dv.setUint16(o + 2, len & 0x0fff);
      dv.setUint32(o + 4, ((r.flags & ~KF_HASHED & ~KF_SEQ_MASK) | (r.hasSeq !== 0 ? KF_OUT_SEQ : 0)) >>> 0);
      dv.setUint16(o + 8, r.state);
      dv.setUint16(o + 10, r.cport);
      dv.setUint16(o + 12, r.vport);
      dv.setUint16(o + 14, r.dport);
      dv.setUint32(o + 16, r.fwmark >>> 0);
      dv.setUint32(o + 20, r.timeout >>> 0);
      dv.setUint32(o + 24, r.caddr >>> 0);
      dv.setUint32(o + 28, r.vaddr >>> 0);
      dv.setUint32(o + 32, r.daddr >>> 0);
      if (seqLen !== 0) {
        // K IPVS_OPT_SEQ_DATA: in_seq (unused: zeros) then out_seq, network order.
        const q = o + V1_RECORD;
        dv.setUint8(q, OPT_SEQ_DATA);
        dv.setUint8(q + 1, 24);
        for (let k = 2; k < 14; k++) dv.setUint8(q + k, 0);
        dv.setUint32(q + 14, r.seqInit >>> 0);
        dv.setUint32(q + 18, r.seqDelta >>> 0);
        dv.setUint32(q + 22, r.seqPrev >>> 0);
      }
      if (r.laddr !== 0) {
        const q = o + V1_RECORD + seqLen;
        dv.setUint8(q, OPT_UVS_LADDR);
        dv.setUint8(q + 1, 6);
        dv.setUint32(q + 2, r.laddr >>> 0);
        dv.setUint16(q + 6, r.lport);
      }
      if (r.pp !== 0) {
        const q = o + V1_RECORD + seqLen + (r.laddr !== 0 ? 8 : 0);
        dv.setUint8(q, OPT_UVS_PP);
        dv.setUint8(q + 1, 6);
        dv.setUint8(q + 2, r.pp);
        dv.setUint8(q + 3, r.ppSent ? 1 : 0);
        dv.setUint32(q + 4, r.ppSeq >>> 0);
      }
      this.head = o + len;
    }
    if (this.n === 0) this.firstUse = now;
    this.n++;
    return true;
  }

  /** The message built so far (a copy; null when it holds no record), and a fresh one begun. */
  take(): Uint8Array | null {
    if (this.n === 0) return null;
    const dv = this.dv;
    if (this.version === 0) {
      dv.setUint8(0, this.n);
      dv.setUint8(1, this.syncid);
      dv.setUint16(2, this.head);
    } else {
      dv.setUint8(0, 0);
      dv.setUint8(1, this.syncid);
      dv.setUint16(2, this.head);
      dv.setUint8(4, this.n);
      dv.setUint8(5, 1);
      dv.setUint16(6, 0);
    }
    const out = this.buf.slice(0, this.head);
    this.reset();
    return out;
  }
}

/** What decodeSync made of a message. */
export interface DecodeResult {
  /** Why the whole message was dropped (K: "BACKUP, …"), or '' when it was read. */
  error: string;
  /** The message's SyncID. */
  syncid: number;
  version: 0 | 1;
  /** Records read into `out` (out[0..records)). */
  records: number;
  /** Records skipped (IPv6, unknown mandatory option, protocol or state). */
  skipped: number;
}

const TCP_STATES = 11;   // K IP_VS_TCP_S_LAST
const UDP_STATES = 1;    // K IP_VS_UDP_S_LAST

/** Whether a non-template record's protocol/state is one the kernel (and uvs) accepts. */
function stateOk(proto: number, state: number): boolean {
  if (proto === 6) return state < TCP_STATES;
  if (proto === 17) return state < UDP_STATES;
  return false;
}

/**
 * Decodes one received message into out[] (records reused, grown as needed). `ownSyncid` 0
 * accepts every SyncID; another value drops messages of other SyncIDs (error 'syncid').
 */
export function decodeSync(msg: Uint8Array, ownSyncid: number, out: SyncRecord[]): DecodeResult {
  const res: DecodeResult = { error: '', syncid: 0, version: 1, records: 0, skipped: 0 };
  const len = msg.length;
  if (len < V0_HEADER) { res.error = 'message header too short'; return res; }
  const dv = new DataView(msg.buffer, msg.byteOffset, len);
  if (dv.getUint16(2) !== len) { res.error = 'bogus message size'; return res; }
  res.syncid = dv.getUint8(1);
  if (ownSyncid !== 0 && res.syncid !== ownSyncid) { res.error = `ignoring syncid ${res.syncid}`; return res; }
  const take = (): SyncRecord => {
    if (out.length <= res.records) out.push(emptyRecord());
    return out[res.records]!;
  };
  if (len >= V1_HEADER && dv.getUint8(5) === 1 && dv.getUint8(0) === 0 && dv.getUint16(6) === 0) {
    const n = dv.getUint8(4);
    let end = V1_HEADER;
    for (let i = 0; i < n; i++) {
      const p = end;
      if (p + V1_RECORD > len) { res.error = 'dropping message: too small for its records'; return res; }
      const vs = dv.getUint16(p + 2);
      const size = vs & 0x0fff;
      const recEnd = p + size;
      if (recEnd > len) { res.error = 'dropping message: record runs past it'; return res; }
      if (vs >> 12 !== 0) { res.error = `dropping message: unknown record version ${vs >> 12}`; return res; }
      const type = dv.getUint8(p);
      let skip = false;
      let laddr = 0, lport = 0, pp = 0, ppSent = 0, ppSeq = 0, hasSeq = 0, seqInit = 0, seqDelta = 0, seqPrev = 0;
      if (type & 1) {
        skip = true; // IPv6: uvs is IPv4 only (K skips IPv6 silently without CONFIG_IP_VS_IPV6)
        if (p + 72 > recEnd) { res.error = 'dropping message: short IPv6 record'; return res; }
      } else if (type !== 0) {
        res.error = `dropping message: unknown record type ${type}`; return res;
      } else if (p + V1_RECORD > recEnd) {
        res.error = 'dropping message: record shorter than its fields'; return res;
      }
      if (!skip) {
        let q = p + V1_RECORD;
        let seen = 0;
        while (q < recEnd) {
          if (q + 2 > recEnd) { res.error = 'dropping message: truncated option'; return res; }
          const t = dv.getUint8(q), l = dv.getUint8(q + 1);
          q += 2;
          if (l === 0 || q + l > recEnd) { res.error = 'dropping message: bad option length'; return res; }
          const base = t & ~OPT_F_PARAM;
          if (base === OPT_SEQ_DATA || base === OPT_PE_DATA || base === OPT_PE_NAME) {
            // Sequence adjustment (the FTP helper's out_seq; in_seq is never used) and
            // persistence-engine data (uvs has no SIP engine: checked like the kernel, not used).
            if (seen & (1 << base)) { res.error = 'dropping message: option found twice'; return res; }
            seen |= 1 << base;
            if (base === OPT_SEQ_DATA && l !== 24) { res.error = 'dropping message: bogus sequence option length'; return res; }
            if (base === OPT_SEQ_DATA) {
              hasSeq = 1;
              seqInit = dv.getUint32(q + 12) | 0;
              seqDelta = dv.getUint32(q + 16) | 0;
              seqPrev = dv.getUint32(q + 20) | 0;
            }
            if (base === OPT_PE_NAME && l > 16) { res.error = 'dropping message: bogus PE name length'; return res; }
            if (base === OPT_PE_DATA) skip = true; // K: no such PE engine ⇒ record skipped
          } else if (t === OPT_UVS_LADDR && l === 6) {
            laddr = dv.getUint32(q);
            lport = dv.getUint16(q + 4);
          } else if (t === OPT_UVS_PP && l === 6) {
            const v = dv.getUint8(q);
            if (v === 1 || v === 2) { pp = v; ppSent = dv.getUint8(q + 1) & 1; ppSeq = dv.getUint32(q + 2); }
          } else if (!(t & OPT_F_PARAM)) {
            skip = true; // unknown mandatory option: this record is dropped
            break;
          }
          q += l;
        }
      }
      if (!skip) {
        const flags = (dv.getUint32(p + 4) & KF_BACKUP_MASK) | KF_SYNC;
        let state = dv.getUint16(p + 8);
        const proto = dv.getUint8(p + 1);
        if (flags & KF_TEMPLATE) state = 0;
        else if (!stateOk(proto, state)) skip = true;
        if (!skip) {
          const r = take();
          r.proto = proto; r.flags = flags; r.state = state;
          r.cport = dv.getUint16(p + 10); r.vport = dv.getUint16(p + 12); r.dport = dv.getUint16(p + 14);
          r.fwmark = dv.getUint32(p + 16); r.timeout = dv.getUint32(p + 20);
          r.caddr = dv.getUint32(p + 24); r.vaddr = dv.getUint32(p + 28); r.daddr = dv.getUint32(p + 32);
          r.laddr = laddr; r.lport = lport; r.pp = pp; r.ppSent = ppSent; r.ppSeq = ppSeq;
          r.hasSeq = hasSeq; r.seqInit = seqInit; r.seqDelta = seqDelta; r.seqPrev = seqPrev;
          res.records++;
        }
      }
      if (skip) res.skipped++;
      end = p + ((size + 3) & ~3);
    }
    return res;
  }
  // Version 0.
  res.version = 0;
  const n = dv.getUint8(0);
  let p = V0_HEADER;
  for (let i = 0; i < n; i++) {
    if (p + V0_RECORD > len) { res.error = 'v0: bogus conn'; return res; }
    let flags = (dv.getUint16(p + 20) | KF_SYNC) & ~KF_HASHED;
    const rp = p;
    if (flags & KF_SEQ_MASK) {
      p += V0_RECORD + V0_SEQ_BLOCK;
      if (p > len) { res.error = 'v0: dropping message: bogus conn options'; return res; }
    } else {
      p += V0_RECORD;
    }
    flags &= KF_BACKUP_MASK | KF_SYNC;
    let state = dv.getUint16(rp + 22);
    const proto = dv.getUint8(rp + 1);
    if (flags & KF_TEMPLATE) state = 0;
    else if (!stateOk(proto, state)) { res.skipped++; continue; }
    const r = take();
    r.proto = proto; r.flags = flags; r.state = state;
    r.cport = dv.getUint16(rp + 2); r.vport = dv.getUint16(rp + 4); r.dport = dv.getUint16(rp + 6);
    r.caddr = dv.getUint32(rp + 8); r.vaddr = dv.getUint32(rp + 12); r.daddr = dv.getUint32(rp + 16);
    r.fwmark = 0; r.timeout = 0; r.laddr = 0; r.lport = 0; r.pp = 0; r.ppSent = 0; r.ppSeq = 0;
    r.hasSeq = 0; r.seqInit = 0; r.seqDelta = 0; r.seqPrev = 0;
    res.records++;
  }
  return res;
}

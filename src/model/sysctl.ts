/**
 * sysctl — the IPVS sysctls (`net.ipv4.vs.*`, K ip_vs_ctl.c vs_vars and the lblc/lblcr
 * modules' tables) as uvs keeps them: one Sysctls per director, read by the data path as plain
 * numeric fields, set at start (`uvsd --sysctl NAME=VALUE`) or at run time (`uvsadm --sysctl
 * NAME=VALUE`, the control command `set-sysctl`).
 *
 * Every kernel name is listed, in the kernel's table order, with the kernel's default. Those uvs
 * gives the kernel's meaning can be set (range-checked: a value out of range is refused with a
 * clear message, where the kernel's proc_dointvec takes any int and proc_do_defense_mode silently
 * keeps the old value); the others are fixed at the default and a set is refused with the reason
 * (no netfilter conntrack, one sync port, …).
 *
 * uvs's memory is its fixed-size connection table, so the defence sysctls' "available memory"
 * (K update_defense_level: free + buffer pages vs amemthresh pages) is the table's free conn
 * slots here: `amemthresh` is a number of free conn slots below which secure_tcp, drop_entry and
 * drop_packet 1/2 take effect.
 */

export interface SysctlDef {
  readonly name: string;
  /** The kernel's default, as `sysctl` prints it. */
  readonly def: string;
  /** Settable range (integers); absent = fixed in uvs. */
  readonly range?: readonly [number, number];
  /** Why uvs keeps it fixed (shown when a set is refused). */
  readonly fixed?: string;
  /** The value is in seconds in the sysctl but kept in ms (proc_dointvec_jiffies). */
  readonly seconds?: true;
}

const INT_MAX = 2147483647;
const NO_SYNC = 'not implemented by the uvs sync daemon';

/**
 * K ip_vs_ctl.c vs_vars order, then lblc_expiration and lblcr_expiration (their own modules), then
 * the two FULLNAT sysctls of the Alibaba kernel (F1 ip_vs_ctl.c) that uvs gives their meaning:
 * TOA on the first data segments, and the SYN-ACK MSS lowered to leave it room (fwd/toa.ts); then
 * DPVS's UDP counterpart, its `uoa_max_trail` and `uoa_mode` settings under these names (fwd/uoa.ts;
 * off by default here, DPVS sends 3); then F1's SYN proxy sysctls uvs implements, with F1's defaults
 * (fwd/synproxy.ts; its window-scale and timestamp options stay off, as F1's defaults have them).
 */
export const SYSCTL_DEFS: readonly SysctlDef[] = [
  { name: 'amemthresh', def: '1024', range: [0, INT_MAX] },
  { name: 'am_droprate', def: '10', range: [0, INT_MAX] },
  { name: 'drop_entry', def: '0', range: [0, 3] },
  { name: 'drop_packet', def: '0', range: [0, 3] },
  { name: 'conntrack', def: '0', fixed: 'uvs forwards without netfilter, so there is no conntrack to keep' },
  { name: 'secure_tcp', def: '0', range: [0, 3] },
  { name: 'snat_reroute', def: '1', fixed: 'uvs routes every packet it sends by its destination address' },
  { name: 'sync_version', def: '1', range: [0, 1] },
  { name: 'sync_ports', def: '1', fixed: 'the uvs sync daemon uses one port' },
  { name: 'sync_persist_mode', def: '0', range: [0, 1] },
  { name: 'sync_qlen_max', def: '0', fixed: 'the uvs sync master queues at most 256 messages' },
  { name: 'sync_sock_size', def: '0', fixed: 'the uvs sync daemon keeps the socket buffer sizes of the system' },
  { name: 'cache_bypass', def: '0', fixed: 'bypass conns (fwmark services with no dest) are not implemented in uvs' },
  { name: 'expire_nodest_conn', def: '0', range: [0, 1] },
  { name: 'sloppy_tcp', def: '0', range: [0, 1] },
  { name: 'sloppy_sctp', def: '0', fixed: 'uvs does not balance SCTP' },
  { name: 'expire_quiescent_template', def: '0', range: [0, 1] },
  { name: 'sync_threshold', def: '3\t50', range: [0, INT_MAX] },
  { name: 'sync_refresh_period', def: '0', fixed: NO_SYNC },
  { name: 'sync_retries', def: '0', fixed: NO_SYNC },
  { name: 'nat_icmp_send', def: '0', range: [0, 1] },
  { name: 'pmtu_disc', def: '1', range: [0, 1] },
  { name: 'backup_only', def: '0', range: [0, 1] },
  { name: 'conn_reuse_mode', def: '1', range: [0, 3] },
  { name: 'schedule_icmp', def: '0', range: [0, 1] },
  { name: 'ignore_tunneled', def: '0', fixed: 'uvs does not receive tunnelled packets for its services' },
  { name: 'run_estimation', def: '1', range: [0, 1] },
  { name: 'lblc_expiration', def: '86400', range: [1, 2147483], seconds: true },
  { name: 'lblcr_expiration', def: '86400', range: [1, 2147483], seconds: true },
  { name: 'fullnat_mss_adjust_entry', def: '1', range: [0, 1] },
  { name: 'fullnat_toa_entry', def: '1', range: [0, 1] },
  { name: 'fullnat_uoa_max_trail', def: '0', range: [0, 255] },
  { name: 'fullnat_uoa_mode', def: '0', range: [0, 1] },
  { name: 'synproxy_init_mss', def: '1452', range: [536, 65535] },
  { name: 'synproxy_sack', def: '1', range: [0, 1] },
  { name: 'synproxy_synack_ttl', def: '63', range: [1, 255] },
  { name: 'synproxy_defer', def: '0', range: [0, 1] },
  { name: 'synproxy_skb_store_thresh', def: '3', range: [1, 16] },
  { name: 'synproxy_syn_retry', def: '3', range: [0, 6] },
  { name: 'synproxy_dup_ack_thresh', def: '10', range: [0, 65535] },
];

const BY_NAME = new Map(SYSCTL_DEFS.map((d) => [d.name, d]));

/** A refused get or set: errno as the kernel's sysctl would give (ENOENT unknown name, EINVAL/EPERM). */
export class SysctlError extends Error {
  readonly errno: string;
  constructor(errno: string, message: string) {
    super(message);
    this.errno = errno;
  }
}

/** A duration the locality schedulers read at each GC pass (so a set applies to existing services). */
export interface Expiration {
  ms: number;
}

/** Strips `net.ipv4.vs.` (or `net/ipv4/vs/`) from a name. */
export function sysctlName(name: string): string {
  return name.replace(/^net[./]ipv4[./]vs[./]/, '');
}

export class Sysctls {
  amemthresh = 1024;
  amDroprate = 10;
  /** drop_entry as set (1 and 2 switch with the pressure, as drop_packet). */
  dropEntry = 0;
  /** drop_packet as set (1 and 2 switch as the pressure comes and goes, as in the kernel). */
  dropPacket = 0;
  secureTcp = 0;
  expireNodestConn = 0;
  sloppyTcp = 0;
  expireQuiescentTemplate = 0;
  natIcmpSend = 0;
  pmtuDisc = 1;
  connReuseMode = 1;
  scheduleIcmp = 0;
  runEstimation = 1;
  syncVersion = 1;
  syncPersistMode = 0;
  backupOnly = 0;
  /** sync_threshold's two numbers: the packet count at which, and the period with which, a conn is synced. */
  syncThreshold = 3;
  /** F1 FULLNAT: lower the server's SYN-ACK MSS by the TOA's 8 bytes. */
  fullnatMssAdjustEntry = 1;
  /** F1 FULLNAT: TOA on the segments acknowledging the server's ISN + 1 (the SYN always gets it). */
  fullnatToaEntry = 1;
  /** DPVS uoa_max_trail: UOA on this many first client datagrams of a FULLNAT UDP conn (0: off). */
  fullnatUoaMaxTrail = 0;
  /** DPVS uoa_mode: 0 opp (IP protocol 248), 1 ipo (IPv4 option). */
  fullnatUoaMode = 0;
  /** F1 SYN proxy (fwd/synproxy.ts): the largest MSS the cookie SYN-ACK offers. */
  synproxyInitMss = 1452;
  /** F1: SACK permitted kept through the SYN proxy. */
  synproxySack = 1;
  /** F1: the cookie SYN-ACK's TTL. */
  synproxySynackTtl = 63;
  /** F1: only an ACK carrying data opens the connection to the real server. */
  synproxyDefer = 0;
  /** F1: client packets held per conn while the real server's SYN-ACK is awaited. */
  synproxySkbStoreThresh = 3;
  /** F1: times the SYN to the real server is sent again. */
  synproxySynRetry = 3;
  /** F1: the real server's identical ACKs (same seq and ack) after which more are dropped (0: off). */
  synproxyDupAckThresh = 10;
  syncPeriod = 50;
  readonly lblcExpiration: Expiration = { ms: 86400_000 };
  readonly lblcrExpiration: Expiration = { ms: 86400_000 };

  /** Current text value of a sysctl (`sysctl -n` form). */
  get(name: string): string {
    const n = sysctlName(String(name));
    const d = BY_NAME.get(n);
    if (d === undefined) throw new SysctlError('ENOENT', `net.ipv4.vs.${n}: no such IPVS sysctl`);
    const v = this.value(n);
    return v === undefined ? d.def : String(v);
  }

  /** Every sysctl with its value, in the kernel's order. */
  list(): { name: string; value: string }[] {
    return SYSCTL_DEFS.map((d) => ({ name: d.name, value: this.get(d.name) }));
  }

  /**
   * Sets a sysctl from its text form. Throws SysctlError (nothing changed) for an unknown name,
   * a fixed one, or a value that is not an integer in range. Returns the canonical name.
   */
  set(name: string, text: string): string {
    const n = sysctlName(String(name));
    text = String(text);
    const d = BY_NAME.get(n);
    if (d === undefined) throw new SysctlError('ENOENT', `net.ipv4.vs.${n}: no such IPVS sysctl`);
    if (d.range === undefined) {
      if (text.trim() === d.def) return n; // setting the value it has is harmless (sysctl -p of a saved file)
      throw new SysctlError('EPERM', `net.ipv4.vs.${n} is fixed at ${d.def} in uvs: ${d.fixed}`);
    }
    const t = text.trim();
    if (n === 'sync_threshold') {
      // K proc_do_sync_threshold: two ints, threshold < period unless period is 0.
      const m = /^(-?\d+)\s+(-?\d+)$/.exec(t);
      if (m === null) throw new SysctlError('EINVAL', `net.ipv4.vs.sync_threshold=${text}: two integers, threshold and period`);
      const th = Number(m[1]), pe = Number(m[2]);
      if (th < 0 || pe < 0 || th > INT_MAX || pe > INT_MAX || (th >= pe && pe !== 0)) {
        throw new SysctlError('EINVAL', `net.ipv4.vs.sync_threshold=${t}: need 0 <= threshold < period (or period 0)`);
      }
      this.syncThreshold = th;
      this.syncPeriod = pe;
      return n;
    }
    if (!/^-?\d+$/.test(t)) throw new SysctlError('EINVAL', `net.ipv4.vs.${n}=${text}: not an integer`);
    const v = Number(t);
    const [lo, hi] = d.range;
    if (v < lo || v > hi) throw new SysctlError('EINVAL', `net.ipv4.vs.${n}=${t}: out of range ${lo}..${hi}`);
    this.assign(n, d.seconds ? v * 1000 : v);
    return n;
  }

  private value(n: string): number | string | undefined {
    if (n === 'sync_threshold') return `${this.syncThreshold}\t${this.syncPeriod}`;
    const f = FIELD[n];
    if (f !== undefined) return this[f];
    const e = this.expiration(n);
    return e === undefined ? undefined : Math.floor(e.ms / 1000);
  }

  private assign(n: string, v: number): void {
    const f = FIELD[n];
    const e = this.expiration(n);
    if (f !== undefined) this[f] = v;
    else if (e !== undefined) e.ms = v;
    else throw new SysctlError('EPERM', `net.ipv4.vs.${n} cannot be set in uvs`);
  }

  private expiration(n: string): Expiration | undefined {
    return n === 'lblc_expiration' ? this.lblcExpiration : n === 'lblcr_expiration' ? this.lblcrExpiration : undefined;
  }
}

type IntField = 'amemthresh' | 'amDroprate' | 'dropEntry' | 'dropPacket' | 'secureTcp' | 'expireNodestConn' | 'sloppyTcp' |
  'expireQuiescentTemplate' | 'natIcmpSend' | 'pmtuDisc' | 'connReuseMode' | 'scheduleIcmp' | 'runEstimation' |
  'syncVersion' | 'syncPersistMode' | 'backupOnly' | 'fullnatMssAdjustEntry' | 'fullnatToaEntry' |
  'fullnatUoaMaxTrail' | 'fullnatUoaMode' | 'synproxyInitMss' | 'synproxySack' | 'synproxySynackTtl' | 'synproxyDefer' |
  'synproxySkbStoreThresh' | 'synproxySynRetry' | 'synproxyDupAckThresh';

/** Sysctl name → the Sysctls field that holds it (the integer ones). */
const FIELD: Readonly<Record<string, IntField>> = {
  amemthresh: 'amemthresh', am_droprate: 'amDroprate', drop_entry: 'dropEntry', drop_packet: 'dropPacket',
  secure_tcp: 'secureTcp', expire_nodest_conn: 'expireNodestConn', sloppy_tcp: 'sloppyTcp',
  expire_quiescent_template: 'expireQuiescentTemplate', nat_icmp_send: 'natIcmpSend', pmtu_disc: 'pmtuDisc',
  conn_reuse_mode: 'connReuseMode', schedule_icmp: 'scheduleIcmp', run_estimation: 'runEstimation',
  sync_version: 'syncVersion', sync_persist_mode: 'syncPersistMode', backup_only: 'backupOnly',
  fullnat_mss_adjust_entry: 'fullnatMssAdjustEntry', fullnat_toa_entry: 'fullnatToaEntry',
  fullnat_uoa_max_trail: 'fullnatUoaMaxTrail', fullnat_uoa_mode: 'fullnatUoaMode',
  synproxy_init_mss: 'synproxyInitMss', synproxy_sack: 'synproxySack', synproxy_synack_ttl: 'synproxySynackTtl',
  synproxy_defer: 'synproxyDefer', synproxy_skb_store_thresh: 'synproxySkbStoreThresh', synproxy_syn_retry: 'synproxySynRetry',
  synproxy_dup_ack_thresh: 'synproxyDupAckThresh',
};

/** `sysctl net.ipv4.vs` output: one `net.ipv4.vs.NAME = VALUE` line each. */
export function formatSysctls(list: readonly { name: string; value: string }[]): string {
  return list.map((s) => `net.ipv4.vs.${s.name} = ${s.value}\n`).join('');
}

/**
 * The control protocol between uvsadm (and other clients) and uvsd: one JSON object per line over
 * the unix control socket, one response line per request. Addresses are dotted strings here;
 * the daemon converts them to numbers. Errors carry the kernel errno name the equivalent
 * IPVS setsockopt/netlink call would return, so uvsadm can print ipvsadm's ipvs_strerror text.
 */
import type { FwdMethod } from '../model/constants.js';
import type { MarkRuleSpec } from '../model/mark-rules.js';

export type { MarkRuleSpec };

export interface ServiceSpec {
  /** 6 TCP, 17 UDP, 132 SCTP; 0 for a fwmark service. */
  protocol: number;
  /** 2 (AF_INET) or 10 (AF_INET6); only 2 is forwarded today. */
  af: number;
  /** VIP, '' for fwmark services. */
  addr: string;
  port: number;
  fwmark: number;
}

export interface ServiceOpts {
  sched: string;
  /** SVC_F_* (persistent, onepacket, sched flags). */
  flags: number;
  /** Persistence timeout, seconds (when persistent). */
  timeout: number;
  /** Dotted IPv4 mask (IPv6: prefix length as a string). */
  netmask: string;
  pe: string;
  /** `--proxy-protocol` (DPVS): 0 disable (the default), 1 v1, 2 v2. TCP services only. */
  proxyProtocol?: number;
  /** `-j|--synproxy enable` (Alibaba fork, DPVS): SYN proxy. TCP services with NAT/FULLNAT dests only. */
  synproxy?: boolean;
}

export interface DestSpec {
  addr: string;
  port: number;
}

export interface DestOpts {
  fwd: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

export type Command =
  | { cmd: 'add-service'; svc: ServiceSpec; opts: ServiceOpts }
  | { cmd: 'edit-service'; svc: ServiceSpec; opts: ServiceOpts }
  | { cmd: 'delete-service'; svc: ServiceSpec }
  | { cmd: 'clear' }
  | { cmd: 'add-server'; svc: ServiceSpec; dest: DestSpec; opts: DestOpts }
  | { cmd: 'edit-server'; svc: ServiceSpec; dest: DestSpec; opts: DestOpts }
  | { cmd: 'delete-server'; svc: ServiceSpec; dest: DestSpec }
  | { cmd: 'zero'; svc?: ServiceSpec }
  | { cmd: 'set-timeouts'; tcp: number; tcpfin: number; udp: number }
  | { cmd: 'add-laddr'; svc: ServiceSpec; laddr: string }
  | { cmd: 'del-laddr'; svc: ServiceSpec; laddr: string }
  /** Firewall-mark rules (uvsadm --mark-rule / --del-mark-rule); -C clears them too. */
  | { cmd: 'add-mark-rule'; rule: MarkRuleSpec }
  | { cmd: 'del-mark-rule'; rule: MarkRuleSpec }
  /** All-or-nothing: either every command applies or none does (state unchanged). */
  | { cmd: 'batch'; commands: Command[] }
  | { cmd: 'get-services' }
  | { cmd: 'get-conns' }
  | { cmd: 'get-timeouts' }
  /** The mark rules in evaluation order (MarkRuleSpec[]). */
  | { cmd: 'get-mark-rules' }
  | { cmd: 'get-info' }
  /** The IPVS sysctls: { name, value }[] in the kernel's order (src/model/sysctl.ts). */
  | { cmd: 'get-sysctls' }
  /** Sets one (name with or without `net.ipv4.vs.`); refused with EINVAL/EPERM/ENOENT, nothing changed. */
  | { cmd: 'set-sysctl'; name: string; value: string }
  /**
   * The connection-sync daemons (src/sync/daemon.ts, handled by uvsd, not Control):
   * `--start-daemon master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N]
   * [--mcast-group G] [--mcast-port P] [--mcast-ttl T]`, `--stop-daemon`, `-L --daemon`.
   */
  | { cmd: 'start-daemon'; daemon: { state: 'master' | 'backup'; mcastIfn: string; syncid: number; maxlen?: number; group?: string; port?: number; ttl?: number } }
  | { cmd: 'stop-daemon'; state: 'master' | 'backup' }
  | { cmd: 'get-daemons' }
  /** Streams one JSON trace event per line until the client disconnects (`uvsadm trace`). */
  | { cmd: 'trace'; filter: string }
  /**
   * Health checks (src/health, handled by uvsd, not Control): (re)load a keepalived.conf or
   * ldirectord.cf (absolute path, read by the daemon) and apply the difference as one batch;
   * omitted file = reload the one loaded. Data: { message, changes, warnings }.
   */
  | { cmd: 'load-keepalived'; file?: string; format?: 'keepalived' | 'ldirectord' }
  /** Each check with its state and last result (ChecksSnapshot from src/health/manager.ts). */
  | { cmd: 'get-checks' };

export interface StatsSnap {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** Rates as the kernel reports them (already scaled back and rounded). */
export interface RateSnap {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export interface DestSnap {
  addr: string;
  port: number;
  fwd: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
  stats: StatsSnap;
  rates: RateSnap;
}

export interface ServiceSnap {
  protocol: number;
  af: number;
  addr: string;
  port: number;
  fwmark: number;
  sched: string;
  flags: number;
  timeout: number;
  netmask: string;
  pe: string;
  /** 0 disable, 1 v1, 2 v2 (`--proxy-protocol`); absent = 0. */
  proxyProtocol?: number;
  /** `-j enable`; absent = disabled. */
  synproxy?: boolean;
  /** Kernel list order (most recently added first). */
  dests: DestSnap[];
  laddrs: string[];
  stats: StatsSnap;
  rates: RateSnap;
}

export interface ConnSnap {
  /** Protocol number; 0 (shown `IP`) for fwmark persistence templates. */
  protocol: number;
  caddr: string;
  cport: number;
  /** For fwmark templates: the mark written as an address, as the kernel shows it. */
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  /** FULLNAT local address/port ('' / 0 otherwise). */
  laddr: string;
  lport: number;
  /** Kernel state name: ESTABLISHED, SYN_RECV, ..., UDP, NONE (templates), ... */
  state: string;
  /** Remaining lifetime in whole seconds. */
  expires: number;
  template: boolean;
  fwd: FwdMethod;
}

export interface InfoSnap {
  version: string;
  connTabSize: number;
  conns: number;
  stats: StatsSnap;
  rates: RateSnap;
}

export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export type Response =
  | { ok: true; data?: unknown }
  /** errno: EEXIST, ENOENT, ESRCH, EINVAL, ERANGE, EPERM, EOPNOTSUPP, ENOMEM, ...; index: the refused command of a batch. */
  | { ok: false; errno: string; message: string; index?: number };

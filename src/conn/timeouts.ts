/**
 * timeouts — per-state connection timeouts in ms (K ip_vs_proto_tcp.c tcp_timeouts,
 * ip_vs_proto_udp.c udp_timeouts), shared by every conn of a table.
 *
 * Only three values are tunable (`ipvsadm --set tcp tcpfin udp`, seconds, 0 = unchanged):
 * TCP ESTABLISHED, TCP FIN_WAIT and UDP. As in the kernel, a change applies to new conns and
 * to existing conns at their next packet: every packet re-applies `timeout = table[state]`
 * and re-arms the timer; a conn's already-armed expiry is not moved by the change itself.
 *
 * Example: new Timeouts().set(3600, 0, 0) ⇒ ESTABLISHED 3600 s, FIN_WAIT and UDP unchanged.
 */
import {
  TCP_S_CLOSE, TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_LAST, TCP_S_LAST_ACK,
  TCP_S_LISTEN, TCP_S_NONE, TCP_S_SYNACK, TCP_S_SYN_RECV, TCP_S_SYN_SENT, TCP_S_TIME_WAIT,
} from './tcp-state.js';

/** A brand-new conn (state NONE before its first transition): 3 s (K ip_vs_conn_new). */
export const NEW_CONN_TIMEOUT_MS = 3000;
/** A template that expires while it still controls conns is kept and re-armed for 60 s. */
export const TEMPLATE_REARM_MS = 60_000;
/** Largest accepted `--set` value in seconds (INT_MAX / HZ with HZ=1000, as the kernel checks). */
export const MAX_TIMEOUT_S = Math.floor(0x7fffffff / 1000);

const S = 1000;

export class Timeouts {
  /** Timeout in ms per TCP state (index = TCP_S_*). */
  readonly tcp = new Uint32Array(TCP_S_LAST);
  /** UDP timeout in ms (the single UDP state). */
  udp = 300 * S;

  constructor() {
    const t = this.tcp;
    t[TCP_S_NONE] = 2 * S;
    t[TCP_S_ESTABLISHED] = 900 * S;
    t[TCP_S_SYN_SENT] = 120 * S;
    t[TCP_S_SYN_RECV] = 60 * S;
    t[TCP_S_FIN_WAIT] = 120 * S;
    t[TCP_S_TIME_WAIT] = 120 * S;
    t[TCP_S_CLOSE] = 10 * S;
    t[TCP_S_CLOSE_WAIT] = 60 * S;
    t[TCP_S_LAST_ACK] = 30 * S;
    t[TCP_S_LISTEN] = 120 * S;
    t[TCP_S_SYNACK] = 120 * S;
  }

  /**
   * `--set tcp tcpfin udp` in seconds; 0 leaves a value unchanged. Throws RangeError for a
   * negative, non-integer or > INT_MAX/HZ value (control path; the kernel answers -EINVAL).
   */
  set(tcpS: number, tcpFinS: number, udpS: number): void {
    for (const v of [tcpS, tcpFinS, udpS]) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_TIMEOUT_S) throw new RangeError(`invalid timeout ${v}`);
    }
    if (tcpS) this.tcp[TCP_S_ESTABLISHED] = tcpS * S;
    if (tcpFinS) this.tcp[TCP_S_FIN_WAIT] = tcpFinS * S;
    if (udpS) this.udp = udpS * S;
  }

  /** The three tunables in seconds, as `ipvsadm -L --timeout` prints them. */
  get(): { tcp: number; tcpfin: number; udp: number } {
    return {
      tcp: Math.floor(this.tcp[TCP_S_ESTABLISHED]! / S),
      tcpfin: Math.floor(this.tcp[TCP_S_FIN_WAIT]! / S),
      udp: Math.floor(this.udp / S),
    };
  }
}

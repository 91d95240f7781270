/**
 * FULLNAT local address/port allocation (Alibaba LVS ip_vs_get_laddr / ip_vs_hbind_laddr):
 * the service's local addresses are taken round-robin; the local port of that address is
 * `LPORT_MIN + (++counter mod (LPORT_MAX − LPORT_MIN + 1))`, retried up to LPORT_TRIES times
 * until the conn's reply tuple <proto, RIP:rport → LIP:lport> is not in the conn table, so two
 * conns never share a reply tuple. Nothing is allocated per packet; exhaustion is reported to
 * the caller, which counts a drop.
 */
import type { ConnTable } from '../conn/conn-table.js';
import { LPORT_MAX, LPORT_MIN, LPORT_TRIES } from '../model/constants.js';
import type { Service } from '../model/service.js';

export class LaddrPool {
  /** Result of the last successful allocate(). */
  laddr = 0;
  lport = 0;
  /** Collisions seen (the fork's port_conflict counter). */
  conflicts = 0;
  private readonly counters = new Map<number, number>();
  portMin = LPORT_MIN;
  portMax = LPORT_MAX;
  tries = LPORT_TRIES;

  /** Picks LIP:lport for a conn to rip:rport; false when the service has no LIP or all are busy. */
  allocate(svc: Service, proto: number, rip: number, rport: number, conns: ConnTable): boolean {
    const n = svc.laddrs.length;
    if (n === 0) return false;
    const range = this.portMax - this.portMin + 1;
    for (let k = 0; k < n; k++) {
      const lip = svc.laddrs[svc.laddrCursor % n]!;
      svc.laddrCursor = (svc.laddrCursor + 1) % n;
      let ctr = this.counters.get(lip) ?? 0;
      const tries = Math.min(this.tries, range);
      for (let i = 0; i < tries; i++) {
        ctr = (ctr + 1) % range;
        const lport = this.portMin + ctr;
        if (conns.lookup(proto, rip, rport, lip, lport) < 0) {
          this.counters.set(lip, ctr);
          this.laddr = lip;
          this.lport = lport;
          return true;
        }
        this.conflicts++;
      }
      this.counters.set(lip, ctr);
    }
    return false;
  }
}

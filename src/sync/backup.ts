/**
 * The receiving half of IPVS connection sync (K ip_vs_proc_conn): a decoded record creates or
 * updates a conn in the backup's table, so the backup forwards the master's established flows
 * to the same real servers when it takes over.
 *
 * A record of a conn the table has (the IN tuple; a template by <proto, caddr, vaddr, vport>)
 * updates it: state, the master's INACTIVE bit (the dest's active/inactive counts follow),
 * timeout. Otherwise the service is found (fwmark first, then proto/VIP/port, then the VIP's
 * port-0 service) and in it the dest <daddr, dport> (for a fwmark service and a method other
 * than NAT, <daddr, 0> first, K ip_vs_find_dest); the conn is created bound to it, taking the
 * forwarding method of the backup's dest (K ip_vs_bind_dest for SYNC conns), no controlling
 * template. Its timeout is the record's (0: the state's, 180 s for a template), in_pkts =
 * sync_threshold. Synced conns are not counted in the services' conn statistics (the kernel
 * counts a conn where it is scheduled).
 * Unlike the kernel, which keeps a conn whose dest it cannot find unbound until one appears,
 * uvs skips such a record (counted `noDest`): a uvs conn always has its dest. A FULLNAT conn
 * needs uvs's local-address option, and that address configured on the backup's service.
 */
import type { ConnTable } from '../conn/conn-table.js';
import { CF_PP_SENT, CF_PP_V1, CF_PP_V2, FTP_APP_BITS, FTP_APP_MASK } from '../conn/conn-table.js';
import type { FtpHelper } from '../fwd/ftp.js';
import type { Timeouts } from '../conn/timeouts.js';
import type { Config } from '../model/config.js';
import type { Dest } from '../model/dest.js';
import { FTP_PORT, FWD_FULLNAT, FWD_MASQ, IPPROTO_IP, IPPROTO_TCP } from '../model/constants.js';
import type { Service } from '../model/service.js';
import { KF_FWD_MASK, KF_INACTIVE, KF_TEMPLATE, type SyncRecord } from './proto.js';

/** K: a synced template without a timeout lives 3 minutes. */
export const SYNC_TEMPLATE_TIMEOUT_MS = 180_000;

/** What happened to each record (counters of a backup daemon). */
export class SyncApplyStats {
  created = 0;
  updated = 0;
  noService = 0;
  noDest = 0;
  noLaddr = 0;
  tableFull = 0;
}

function findService(config: Config, r: SyncRecord): Service | undefined {
  if (r.fwmark !== 0) {
    const s = config.findMark(r.fwmark);
    if (s !== undefined) return s;
  }
  if (r.proto === IPPROTO_IP) return undefined;
  return config.lookup(r.proto, r.vaddr, r.vport);
}

function findDest(svc: Service, r: SyncRecord): Dest | undefined {
  let port = r.dport;
  if (r.fwmark !== 0 && (r.flags & KF_FWD_MASK) !== FWD_MASQ) port = 0;
  const d = svc.findDest(r.daddr, port) ?? svc.findDest(r.daddr, port ^ r.dport);
  if (d !== undefined || svc.port !== FTP_PORT || svc.fwmark !== 0) return d;
  // An FTP data conn (port 20 or the passive port, the port-21 service's by ip_vs_service_find):
  // the dest of its control conn, the real server with that address.
  return svc.dests.find((x) => x.addr === r.daddr >>> 0);
}

/** The master's FTP sequence delta (IPVS_OPT_SEQ_DATA) for conn c, when the helper is bound to it. */
function applyFtp(conns: ConnTable, c: number, r: SyncRecord, ftp: FtpHelper | null): void {
  if (ftp !== null && r.hasSeq !== 0 && (conns.flags(c) & FTP_APP_MASK) === FTP_APP_BITS) ftp.applySync(c, r.seqInit, r.seqDelta, r.seqPrev);
}

/** Applies one record at `now`; `threshold` is sync_threshold's first number. */
export function applySyncRecord(conns: ConnTable, config: Config, timeouts: Timeouts, r: SyncRecord, threshold: number,
  now: number, st: SyncApplyStats, ftp: FtpHelper | null = null): void {
  const template = (r.flags & KF_TEMPLATE) !== 0;
  let timeoutMs: number;
  if (r.timeout !== 0) timeoutMs = Math.min(r.timeout, 0x7fffffff / 1000) * 1000;
  else if (template) timeoutMs = SYNC_TEMPLATE_TIMEOUT_MS;
  else timeoutMs = r.proto === IPPROTO_TCP ? timeouts.tcp[r.state]! : timeouts.udp;
  const inactive = (r.flags & KF_INACTIVE) !== 0;
  let c: number;
  if (template) {
    c = conns.lookupTemplate(r.proto, r.caddr, r.vaddr, r.vport);
  } else {
    const ref = conns.lookup(r.proto, r.caddr | 0, r.cport, r.vaddr | 0, r.vport);
    c = ref >= 0 && (ref & 1) === 0 ? ref >> 1 : -1;
  }
  if (c >= 0) {
    conns.applySync(c, r.state, inactive, timeoutMs, threshold, now);
    if (!template) applyPp(conns, c, r);
    if (!template) applyFtp(conns, c, r, ftp);
    st.updated++;
    return;
  }
  const svc = findService(config, r);
  if (svc === undefined) { st.noService++; return; }
  const dest = findDest(svc, r);
  if (dest === undefined) { st.noDest++; return; }
  if (template) {
    c = conns.createTemplate(r.proto, r.caddr, r.vaddr, r.vport, r.daddr, r.dport, dest, svc.id, timeoutMs, now);
  } else {
    let laddr = 0, lport = 0;
    if (dest.fwd === FWD_FULLNAT) {
      if (r.laddr === 0 || !svc.laddrs.includes(r.laddr >>> 0) || conns.lookup(r.proto, dest.addr | 0, r.dport, r.laddr | 0, r.lport) >= 0) {
        st.noLaddr++;
        return;
      }
      laddr = r.laddr;
      lport = r.lport;
    }
    c = conns.create(r.proto, r.caddr | 0, r.cport, r.vaddr | 0, r.vport, dest.addr | 0, r.dport, laddr | 0, lport, dest, svc.id, -1, now, 0);
  }
  if (c < 0) { st.tableFull++; return; }
  // bind() counted it INACTIVE; the master's bit decides (K ip_vs_bind_dest for SYNC conns).
  conns.applySync(c, r.state, inactive, timeoutMs, threshold, now);
  if (!template) {
    applyPp(conns, c, r);
    // K ip_vs_conn_new → ip_vs_bind_app: a NAT conn to an FTP port gets the helper on the backup too.
    if (ftp !== null && r.proto === IPPROTO_TCP && dest.fwd === FWD_MASQ && r.pp === 0 && ftp.bindsTo(r.vport)) ftp.bind(conns, c);
    applyFtp(conns, c, r, ftp);
  }
  st.created++;
}

/** The master's PROXY-protocol state of the conn (option 0x51): version, header sent, data start. */
function applyPp(conns: ConnTable, c: number, r: SyncRecord): void {
  if (r.pp === 0 || r.proto !== IPPROTO_TCP) return;
  const f = conns.flags(c);
  const have = (f & CF_PP_V2) !== 0 ? 2 : (f & CF_PP_V1) !== 0 ? 1 : 0;
  if (have !== r.pp) conns.setProxyProtocol(c, r.pp);
  if (r.ppSent) conns.setPpSent(c, r.ppSeq);
  else if ((f & CF_PP_SENT) !== 0 && have === r.pp) conns.clearPpSent(c);
}

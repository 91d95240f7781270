/**
 * The director's rule set: virtual services, their dests and FULLNAT local addresses, plus the
 * lookups the data path needs (service by proto/VIP/port, by fwmark; dest by id; the addresses
 * uvs answers ARP for). Written only by control (src/control/ops.ts), between batches; the data
 * path reads it. `generation` changes on every write so caches can tell they are stale.
 */
import { FTP_DATA_PORT, FTP_PORT, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './constants.js';
import type { Dest } from './dest.js';
import type { Service } from './service.js';
import { MarkRules } from './mark-rules.js';

/** ip_unprivileged_port_start's default. */
const UNPRIVILEGED_PORT_START = 1024;

function protoSlot(proto: number): number {
  return proto === IPPROTO_TCP ? 0 : proto === IPPROTO_UDP ? 1 : proto === IPPROTO_SCTP ? 2 : 3;
}

/** Numeric key of proto+addr+port (exact in a double: 32 + 16 + 2 bits). */
export function svcKey(proto: number, addr: number, port: number): number {
  return ((addr >>> 0) * 65536 + port) * 4 + protoSlot(proto);
}

export class Config {
  /** Services in the order they were added (the listing sorts; --nosort shows this order). */
  readonly services: Service[] = [];
  private readonly byKey = new Map<number, Service>();
  /**
   * The same services for the data path: VIP as int32 bits (`addr | 0`) → (port × 4 + proto
   * slot) → service. Both keys are Smis, so a lookup allocates nothing (svcKey's 50-bit double
   * would be boxed in a HeapNumber on every Map call).
   */
  private readonly byAddr = new Map<number, Map<number, Service>>();
  private readonly byMark = new Map<number, Service>();
  /** Dest registry by id (ids are reused after a dest is forgotten). */
  readonly dests: (Dest | undefined)[] = [];
  private freeDestIds: number[] = [];
  private nextSvcId = 1;
  /** Addresses uvs answers ARP and ICMP echo for: VIPs and FULLNAT local addresses. */
  owned = new Set<number>();
  /** Service ids → service. */
  readonly svcById: (Service | undefined)[] = [];
  generation = 0;

  allocSvcId(): number {
    return this.nextSvcId++;
  }

  allocDestId(): number {
    const id = this.freeDestIds.pop();
    return id === undefined ? this.dests.length : id;
  }

  registerDest(d: Dest): void {
    this.dests[d.id] = d;
  }

  /** Forgets a dest id once no conn refers to it any more. */
  releaseDest(d: Dest): void {
    if (this.dests[d.id] === d) {
      this.dests[d.id] = undefined;
      this.freeDestIds.push(d.id);
    }
  }

  find(proto: number, addr: number, port: number): Service | undefined {
    return this.byKey.get(svcKey(proto, addr, port));
  }

  findMark(mark: number): Service | undefined {
    return this.byMark.get(mark >>> 0);
  }

  /**
   * Service for a packet to addr:port (addr as u32 or int32 bits), as K ip_vs_service_find: the
   * exact match; else, for TCP to port 20 or an unprivileged port (≥ 1024) of a VIP with an FTP
   * service, that port-21 service (the packet may open an FTP data connection: with persistence its
   * template, port 0, sends it to the control connection's server — LVS-DR/TUN FTP); else the
   * port-0 (all ports) service.
   */
  lookup(proto: number, addr: number, port: number): Service | undefined {
    const m = this.byAddr.get(addr | 0);
    if (m === undefined) return undefined;
    const slot = protoSlot(proto);
    const s = m.get(port * 4 + slot);
    if (s !== undefined) return s;
    if (this.ftpServices !== 0 && slot === 0 && (port === FTP_DATA_PORT || port >= UNPRIVILEGED_PORT_START)) {
      const f = m.get(FTP_PORT * 4);
      if (f !== undefined) return f;
    }
    return port !== 0 ? m.get(slot) : undefined;
  }

  /** Services on port 21, any protocol (K ftpsvc_counter): while 0 a miss needs no FTP lookup. */
  private ftpServices = 0;

  /** Whether any service (any proto/port) uses this VIP. */
  hasVip(addr: number): boolean {
    for (const s of this.services) if (!s.fwmark && s.addr === addr) return true;
    return false;
  }

  add(s: Service): void {
    this.services.push(s);
    this.svcById[s.id] = s;
    if (s.fwmark) {
      this.byMark.set(s.fwmark, s);
    } else {
      this.byKey.set(svcKey(s.protocol, s.addr, s.port), s);
      let m = this.byAddr.get(s.addr | 0);
      if (m === undefined) this.byAddr.set(s.addr | 0, m = new Map());
      m.set(s.port * 4 + protoSlot(s.protocol), s);
    }
    this.changed();
  }

  remove(s: Service): void {
    const i = this.services.indexOf(s);
    if (i >= 0) this.services.splice(i, 1);
    this.svcById[s.id] = undefined;
    if (s.fwmark) {
      this.byMark.delete(s.fwmark);
    } else {
      this.byKey.delete(svcKey(s.protocol, s.addr, s.port));
      const m = this.byAddr.get(s.addr | 0);
      if (m !== undefined && m.get(s.port * 4 + protoSlot(s.protocol)) === s) {
        m.delete(s.port * 4 + protoSlot(s.protocol));
        if (m.size === 0) this.byAddr.delete(s.addr | 0);
      }
    }
    this.changed();
  }

  /** Recomputes derived lookups after any change. */
  changed(): void {
    const owned = new Set<number>();
    for (const s of this.services) {
      if (!s.fwmark) owned.add(s.addr);
      for (const l of s.laddrs) owned.add(l);
    }
    for (const a of this.extraOwned) owned.add(a);
    this.owned = owned;
    this.ftpServices = this.services.filter((x) => !x.fwmark && x.port === FTP_PORT).length;
    this.generation++;
  }

  /** Addresses owned for other reasons (fwmark rule VIPs). */
  extraOwned: number[] = [];

  /**
   * Firewall-mark rules (uvsadm --mark-rule): classify conn-less packets into fwmark services.
   * After changing them, set `extraOwned = markRules.ownedAddrs()` and call changed().
   */
  readonly markRules = new MarkRules();
}

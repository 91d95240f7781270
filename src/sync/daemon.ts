/**
 * SyncDaemons — `ipvsadm --start-daemon master|backup` / `--stop-daemon` in uvsd: the IPVS
 * connection-sync daemons on UDP multicast (K ip_vs_sync.c start_sync_thread), through the host
 * kernel's sockets on the interface named by --mcast-interface (an interface of uvsd's network
 * namespace with an IPv4 address; under `--iface` usually the director's own, or a dedicated
 * link between the directors).
 *
 *   master  a socket bound to the interface's address, IP_MULTICAST_IF that address, TTL
 *           `ttl` (default 1), multicast loop off; the director's SyncMaster fills messages,
 *           sent every SEND_INTERVAL_MS to group:port (default 224.0.0.81:8848).
 *   backup  a socket bound to group:port (SO_REUSEADDR) that joined the group on the interface;
 *           every datagram goes to Director.applySyncMessage (SyncID filter: its own unless 0).
 * Both may run at once (one of each), as in the kernel. Refusals carry the kernel's errno:
 * EEXIST a daemon of that state already runs ("Daemon has already run"), ESRCH stopping one
 * that does not ("No daemon is running"), ENODEV no such interface, EADDRNOTAVAIL an interface
 * without an IPv4 address.
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Director } from '../pipeline/director.js';
import type { Command, Response } from '../control/types.js';
import { SEND_INTERVAL_MS, SyncMaster } from './master.js';
import { SYNC_GROUP, SYNC_MAXLEN_DEFAULT, SYNC_PORT, SYNC_TTL } from './proto.js';

export interface SyncDaemonSpec {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  maxlen?: number;
  group?: string;
  port?: number;
  ttl?: number;
}

/** What `ipvsadm -L --daemon` lists, plus uvs's counters. */
export interface SyncDaemonSnap {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  syncMaxlen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
  /** master: records, messages sent, send errors, messages dropped (queue full); backup: messages,
   * records applied (created/updated), skipped, messages dropped (malformed or other SyncID). */
  counters: Record<string, number>;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Running {
  spec: Required<SyncDaemonSpec>;
  sock: Socket;
  timer?: NodeJS.Timeout;
  master?: SyncMaster;
  counters: Record<string, number>;
}

class DaemonError extends Error {
  constructor(readonly errno: string, message: string) { super(message); }
}

/** The interface's first IPv4 address, or the errno to refuse with. */
export type IfaceAddr = (ifname: string) => { addr: string; mtu: number } | 'ENODEV' | 'EADDRNOTAVAIL';

export const hostIfaceAddr: IfaceAddr = (ifname) => {
  const list = networkInterfaces()[ifname];
  if (list === undefined) return 'ENODEV';
  const v4 = list.find((a) => a.family === 'IPv4');
  // node does not report the MTU; the kernel's backup default is max(MTU, 1500) − 28 = 1472 for ≤ 1500.
  return v4 === undefined ? 'EADDRNOTAVAIL' : { addr: v4.address, mtu: 1500 };
};

export class SyncDaemons {
  private readonly running = new Map<'master' | 'backup', Running>();

  constructor(private readonly director: Director, private readonly log: Logger, private readonly ifaceAddr: IfaceAddr = hostIfaceAddr) {}

  /** The control commands this handles (start-daemon, stop-daemon, get-daemons); null for others. */
  async handle(cmd: Command): Promise<Response | null> {
    try {
      switch (cmd.cmd) {
        case 'start-daemon': await this.start(cmd.daemon); return { ok: true };
        case 'stop-daemon': await this.stop(cmd.state); return { ok: true };
        case 'get-daemons': return { ok: true, data: this.list() };
        default: return null;
      }
    } catch (e) {
      if (e instanceof DaemonError) return { ok: false, errno: e.errno, message: e.message };
      return { ok: false, errno: 'EINVAL', message: e instanceof Error ? e.message : String(e) };
    }
  }

  list(): SyncDaemonSnap[] {
    const out: SyncDaemonSnap[] = [];
    for (const state of ['master', 'backup'] as const) {
      const r = this.running.get(state);
      if (r === undefined) continue;
      const counters = { ...r.counters };
      if (r.master) Object.assign(counters, { records: r.master.records, queueDrops: r.master.queueDrops });
      if (state === 'backup') Object.assign(counters, { ...this.director.syncApplied });
      out.push({
        state, mcastIfn: r.spec.mcastIfn, syncid: r.spec.syncid, syncMaxlen: r.spec.maxlen, mcastGroup: r.spec.group,
        mcastPort: r.spec.port, mcastTtl: r.spec.ttl, counters,
      });
    }
    return out;
  }

  async start(spec: SyncDaemonSpec): Promise<void> {
    if (spec.state !== 'master' && spec.state !== 'backup') throw new DaemonError('EINVAL', `daemon state must be master or backup`);
    if (this.running.has(spec.state)) throw new DaemonError('EEXIST', `a ${spec.state} sync daemon already runs`);
    if (!Number.isInteger(spec.syncid) || spec.syncid < 0 || spec.syncid > 255) throw new DaemonError('EINVAL', `syncid ${spec.syncid}: 0..255`);
    const ia = this.ifaceAddr(spec.mcastIfn);
    if (ia === 'ENODEV') throw new DaemonError('ENODEV', `no interface ${spec.mcastIfn}`);
    if (ia === 'EADDRNOTAVAIL') throw new DaemonError('EADDRNOTAVAIL', `interface ${spec.mcastIfn} has no IPv4 address`);
    const group = spec.group ?? SYNC_GROUP;
    if (group.includes(':')) throw new DaemonError('EAFNOSUPPORT', 'IPv6 sync groups are not supported by uvs yet');
    const hlen = 20 + 8;
    let maxlen = spec.maxlen ?? (spec.state === 'master' ? SYNC_MAXLEN_DEFAULT : Math.max(ia.mtu, 1500) - hlen);
    // K: clamped to [1 (master) or 1024 (backup), 65535 − headers].
    maxlen = Math.min(Math.max(maxlen, spec.state === 'master' ? 1 : 1024), 65535 - hlen);
    const full: Required<SyncDaemonSpec> = {
      state: spec.state, mcastIfn: spec.mcastIfn, syncid: spec.syncid, maxlen, group, port: spec.port ?? SYNC_PORT, ttl: spec.ttl ?? SYNC_TTL,
    };
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    const counters: Record<string, number> = {};
    const r: Running = { spec: full, sock, counters };
    try {
      if (full.state === 'master') {
        await bind(sock, ia.addr, 0);
        sock.setMulticastInterface(ia.addr);
        sock.setMulticastTTL(full.ttl);
        sock.setMulticastLoopback(false);
        counters.messages = 0;
        counters.sendErrors = 0;
        const master = new SyncMaster(this.director.conns, this.director.config, this.director.sysctl, { syncid: full.syncid, maxlen: full.maxlen });
        r.master = master;
        this.director.setSyncMaster(master);
        r.timer = setInterval(() => this.sendDue(r, false), SEND_INTERVAL_MS);
        r.timer.unref();
      } else {
        await bind(sock, group, full.port);
        sock.addMembership(group, ia.addr);
        counters.messages = 0;
        counters.dropped = 0;
        counters.skipped = 0;
        sock.on('message', (msg) => {
          counters.messages!++;
          if (msg.length > full.maxlen) { counters.dropped!++; return; } // the kernel reads maxlen bytes: size mismatch
          const res = this.director.applySyncMessage(msg);
          if (res.error !== '') counters.dropped!++;
          counters.skipped! += res.skipped;
        });
        this.director.setSyncBackup(full.syncid);
      }
    } catch (e) {
      sock.close();
      if (full.state === 'master') this.director.setSyncMaster(null);
      const err = e as NodeJS.ErrnoException;
      throw new DaemonError(err.code ?? 'EINVAL', `${full.state} sync daemon on ${full.mcastIfn}: ${err.message}`);
    }
    sock.on('error', (e) => this.log.warn({ err: String(e), state: full.state }, 'sync daemon socket error'));
    this.running.set(full.state, r);
    this.log.info({ ...full }, `${full.state} sync daemon started`);
  }

  private sendDue(r: Running, all: boolean): void {
    const m = r.master!;
    const msgs = m.due(this.director.clock.now(), all);
    for (const msg of msgs) {
      r.sock.send(msg, r.spec.port, r.spec.group, (err) => {
        if (err) r.counters.sendErrors!++;
        else r.counters.messages!++;
      });
    }
  }

  async stop(state: 'master' | 'backup'): Promise<void> {
    const r = this.running.get(state);
    if (r === undefined) throw new DaemonError('ESRCH', `no ${state} sync daemon runs`);
    this.running.delete(state);
    if (r.timer) clearInterval(r.timer);
    if (state === 'master') {
      this.director.setSyncMaster(null);
      this.sendDue(r, true); // what was queued still goes out (K: the master thread sends its queue before it stops)
    } else {
      this.director.setSyncBackup(-1);
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 20)); // let the last sends leave
    r.sock.close();
    this.log.info({ state }, `${state} sync daemon stopped`);
  }

  /** Stops whatever runs (uvsd exit). */
  async close(): Promise<void> {
    for (const s of [...this.running.keys()]) await this.stop(s);
  }
}

function bind(sock: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(e);
    sock.once('error', onErr);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
}

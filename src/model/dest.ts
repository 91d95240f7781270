import { DEST_F_AVAILABLE, FWD_DROUTE, TUN_F_NOCSUM, TUN_TYPE_IPIP, type FwdMethod } from './constants.js';
import { Stats } from './stats.js';
import type { Service } from './service.js';

/**
 * A real server (IPVS "dest") of one service. Written by control; the data path reads it and
 * updates the connection counters and stats.
 */
export class Dest {
  /** Unique small integer, stable for the dest's life; the conn table stores it. */
  readonly id: number;
  readonly addr: number;
  readonly port: number;
  fwd: FwdMethod = FWD_DROUTE;
  weight = 1;
  /** Most recent non-zero weight (mh uses it); set on add even when 0. */
  lastWeight = 1;
  uThreshold = 0;
  lThreshold = 0;
  tunType = TUN_TYPE_IPIP;
  tunPort = 0;
  tunFlags = TUN_F_NOCSUM;
  flags = DEST_F_AVAILABLE;
  activeConns = 0;
  inactConns = 0;
  persistConns = 0;
  readonly stats = new Stats();
  svc: Service;

  constructor(id: number, svc: Service, addr: number, port: number) {
    this.id = id;
    this.svc = svc;
    this.addr = addr >>> 0;
    this.port = port;
  }

  get available(): boolean {
    return (this.flags & DEST_F_AVAILABLE) !== 0;
  }
}

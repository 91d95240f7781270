/**
 * Traffic counters of a service, a dest or the whole director, as the kernel keeps them
 * (struct ip_vs_stats): conns, in/out packets, in/out bytes. Incremented on the data path
 * (plain number fields: monomorphic and cheap); the rate estimator reads them every 2 s.
 */
export class Stats {
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;
  // Estimator state (ip_vs_est.c): last totals and smoothed rates, scaled as the kernel scales them.
  lastConns = 0;
  lastInpkts = 0;
  lastOutpkts = 0;
  lastInbytes = 0;
  lastOutbytes = 0;
  cps = 0; // << 10
  inpps = 0; // << 10
  outpps = 0; // << 10
  inbps = 0; // << 5
  outbps = 0; // << 5

  zero(): void {
    this.conns = this.inpkts = this.outpkts = this.inbytes = this.outbytes = 0;
    this.lastConns = this.lastInpkts = this.lastOutpkts = this.lastInbytes = this.lastOutbytes = 0;
    this.cps = this.inpps = this.outpps = this.inbps = this.outbps = 0;
  }
}

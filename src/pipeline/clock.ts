/**
 * Time in milliseconds, injected everywhere time matters (conn expiry, ARP, rates, lblc).
 *
 * The data path passes `now()` through calls V8 does not inline (the conn table's state machine,
 * egress). A number crossing such a call is tagged: an integer below 2^31 travels as a Smi, any
 * other number (a fraction, or epoch ms ≈ 1.7e12) is boxed in a new 16-byte HeapNumber — per
 * packet. So a Clock's `now()` gives whole milliseconds counted from a recent origin, and
 * `epochMs` says what wall-clock time (ms since 1970) that origin was, for whatever needs one
 * (pcap timestamps of the tracer).
 */
export interface Clock {
  /** Whole ms since the clock's origin (monotonic). */
  now(): number;
  /** Wall-clock time of the origin, ms since 1970; 0 (or absent): now() is already wall time. */
  readonly epochMs?: number;
}

/**
 * The daemon's clock: whole ms since the process started (performance.now(), monotonic), a Smi for
 * 24.8 days of uptime. Past 2^31 the data path is re-optimized once for the larger numbers and
 * stays allocation-free (test/unit/pipeline/no-alloc.test.ts crosses that boundary); every time
 * is kept in a double (Float64Array fields), so expiry is exact either side of it.
 */
export const systemClock: Clock = {
  now: () => Math.floor(performance.now()),
  epochMs: performance.timeOrigin,
};

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  t: number;
  constructor(start = 1_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}


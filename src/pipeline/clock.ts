/** Time in milliseconds, injected everywhere time matters (conn expiry, ARP, rates, lblc). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
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

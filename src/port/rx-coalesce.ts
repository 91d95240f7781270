/**
 * Receive coalescing for AF_XDP ports: what a NIC's (adaptive) interrupt moderation does, for the
 * devices whose receive side runs in NAPI (veth with an XDP program, virtio-net, …).
 *
 * Without it every frame that finds the NAPI idle schedules it (on veth: the sender wakes the NAPI,
 * one IPI + one context switch into it, then one into uvsd), so at a few hundred thousand frames/s
 * uvs polls a handful of frames per wakeup and the wakeups cost more than the frames. The kernel's
 * knobs for this are per device: `napi_defer_hard_irqs` (how many empty polls keep the "interrupt"
 * masked) and `gro_flush_timeout` (the timer, in ns, that polls instead while it is masked); the
 * kernel documents them as the IRQ mitigation for AF_XDP and busy-polling applications
 * (Documentation/networking/napi.rst). With them a busy port is polled every T µs, T × rate frames
 * at a time, and a quiet port is back to one wakeup per frame after DEFER_POLLS empty polls.
 *
 * Modes (`uvsd --rx-coalesce`):
 *   auto (default)  adaptive, like a NIC's adaptive moderation: off below AUTO_OFF_BELOW frames/s
 *                   (latency as without it), above AUTO_ON_ABOVE a timer of AUTO_BATCH frames' worth
 *                   of time, clamped to [AUTO_MIN_US, AUTO_MAX_US] and rounded to 10 µs; a device the
 *                   administrator already configured (either knob non-zero) is left alone.
 *   off             never touches the device.
 *   USECS           a fixed timer of USECS µs (1–1000), whatever the rate.
 * Whatever it changed is written back on restore() (uvsd stop, error, process exit).
 *
 * Never throws after construction: a sysfs read or write that fails (no such file on an old kernel,
 * read-only sysfs) takes the port out of management and is reported once through `onError`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export type CoalesceMode = { kind: 'auto' } | { kind: 'off' } | { kind: 'fixed'; usecs: number };

/** Rates (frames/s) between which auto keeps its state (hysteresis). */
export const AUTO_OFF_BELOW = 15_000;
export const AUTO_ON_ABOVE = 30_000;
/** Frames per timer poll auto aims at. */
export const AUTO_BATCH = 24;
export const AUTO_MIN_US = 20;
export const AUTO_MAX_US = 100;
/** Empty timer polls before the device's notification is re-enabled. */
export const DEFER_POLLS = 2;

export function parseCoalesce(s: string): CoalesceMode {
  if (s === 'auto') return { kind: 'auto' };
  if (s === 'off' || s === '0') return { kind: 'off' };
  if (/^\d+$/.test(s)) {
    const usecs = Number(s);
    if (usecs >= 1 && usecs <= 1000) return { kind: 'fixed', usecs };
  }
  throw new Error(`--rx-coalesce ${s}: auto, off, or a timer in µs (1–1000)`);
}

/** A running timer is only changed for a difference of at least this much (µs). */
export const AUTO_STEP_US = 20;

/**
 * The timer auto mode wants (µs, 0 = off) for a port receiving `rate` frames/s whose timer is now
 * `currentUs`: between the two rate thresholds the on/off state holds, and a running timer within
 * AUTO_STEP_US of the ideal one is kept (no rewriting the device every tick for a jittery rate).
 */
export function autoTimerUs(rate: number, currentUs: number): number {
  if (!(rate >= AUTO_ON_ABOVE)) {
    if (currentUs === 0 || rate < AUTO_OFF_BELOW || !Number.isFinite(rate)) return 0;
  }
  const us = (AUTO_BATCH / Math.max(rate, 1)) * 1e6;
  const want = Math.min(AUTO_MAX_US, Math.max(AUTO_MIN_US, Math.round(us / 10) * 10));
  return currentUs !== 0 && Math.abs(want - currentUs) < AUTO_STEP_US ? currentUs : want;
}

/** The two per-device files, relative to a device's directory. */
export interface CoalesceSysfs {
  read(ifname: string, file: 'napi_defer_hard_irqs' | 'gro_flush_timeout'): number;
  write(ifname: string, file: 'napi_defer_hard_irqs' | 'gro_flush_timeout', value: number): void;
}

/** /sys/class/net of the namespace uvsd runs in (where its --iface ports are). */
export const sysfsCoalesce: CoalesceSysfs = {
  read: (ifname, file) => {
    const v = Number(readFileSync(`/sys/class/net/${ifname}/${file}`, 'utf8').trim());
    if (!Number.isFinite(v)) throw new Error(`/sys/class/net/${ifname}/${file}: not a number`);
    return v;
  },
  write: (ifname, file, value) => writeFileSync(`/sys/class/net/${ifname}/${file}`, `${value}\n`),
};

/** What the coalescer needs of a port: its name and a running count of received frames. */
export interface CoalescedPort {
  readonly name: string;
  readonly rxFrames: number;
}

interface Managed {
  port: CoalescedPort;
  origDefer: number;
  origTimeoutNs: number;
  /** Timer now set by us (µs; 0 = the device's original settings). */
  us: number;
  lastFrames: number;
  lastMs: number;
}

export class RxCoalescer {
  private managed: Managed[] = [];
  /** Ports auto left alone because the administrator configured them (name → their settings). */
  readonly leftAlone: { port: string; napiDeferHardIrqs: number; groFlushTimeoutNs: number }[] = [];

  constructor(
    private readonly mode: CoalesceMode,
    private readonly io: CoalesceSysfs = sysfsCoalesce,
    private readonly onError: (port: string, err: Error) => void = () => undefined,
    private readonly onChange: (port: string, us: number, rate: number) => void = () => undefined,
  ) {}

  /** Takes a port under management (reads its settings; a fixed mode applies at once). */
  add(port: CoalescedPort, nowMs: number): void {
    if (this.mode.kind === 'off') return;
    let origDefer: number, origTimeoutNs: number;
    try {
      origDefer = this.io.read(port.name, 'napi_defer_hard_irqs');
      origTimeoutNs = this.io.read(port.name, 'gro_flush_timeout');
    } catch (e) {
      this.onError(port.name, e as Error);
      return;
    }
    if (this.mode.kind === 'auto' && (origDefer !== 0 || origTimeoutNs !== 0)) {
      this.leftAlone.push({ port: port.name, napiDeferHardIrqs: origDefer, groFlushTimeoutNs: origTimeoutNs });
      return;
    }
    const m: Managed = { port, origDefer, origTimeoutNs, us: 0, lastFrames: port.rxFrames, lastMs: nowMs };
    this.managed.push(m);
    if (this.mode.kind === 'fixed') this.set(m, this.mode.usecs, NaN);
  }

  /** Names of the ports under management. */
  get ports(): string[] {
    return this.managed.map((m) => m.port.name);
  }

  /** Current timer of a managed port (µs, 0 = off), undefined if not managed. */
  timerUs(name: string): number | undefined {
    return this.managed.find((m) => m.port.name === name)?.us;
  }

  /** Auto mode: re-decides each port's timer from its receive rate since the last tick. */
  tick(nowMs: number): void {
    if (this.mode.kind !== 'auto') return;
    for (const m of [...this.managed]) {
      const dt = nowMs - m.lastMs;
      if (dt < 50) continue; // too short a window to say a rate
      const rate = ((m.port.rxFrames - m.lastFrames) * 1000) / dt;
      m.lastFrames = m.port.rxFrames;
      m.lastMs = nowMs;
      const want = autoTimerUs(rate, m.us);
      if (want !== m.us) this.set(m, want, rate);
    }
  }

  /** Writes every managed port's original settings back; idempotent, synchronous (exit hooks). */
  restore(): void {
    for (const m of this.managed) {
      if (m.us === 0) continue;
      try {
        this.io.write(m.port.name, 'gro_flush_timeout', m.origTimeoutNs);
        this.io.write(m.port.name, 'napi_defer_hard_irqs', m.origDefer);
        m.us = 0;
      } catch (e) {
        this.onError(m.port.name, e as Error);
      }
    }
    this.managed = [];
  }

  private set(m: Managed, us: number, rate: number): void {
    try {
      // Timer first when turning on, last when turning off: the notification is never masked
      // without a timer to poll instead.
      if (us > 0) {
        this.io.write(m.port.name, 'gro_flush_timeout', us * 1000);
        this.io.write(m.port.name, 'napi_defer_hard_irqs', DEFER_POLLS);
      } else {
        this.io.write(m.port.name, 'napi_defer_hard_irqs', m.origDefer);
        this.io.write(m.port.name, 'gro_flush_timeout', m.origTimeoutNs);
      }
      m.us = us;
      this.onChange(m.port.name, us, rate);
    } catch (e) {
      this.onError(m.port.name, e as Error);
      // Best effort back to what it was, then out of management.
      try {
        this.io.write(m.port.name, 'napi_defer_hard_irqs', m.origDefer);
        this.io.write(m.port.name, 'gro_flush_timeout', m.origTimeoutNs);
      } catch { /* reported above */ }
      this.managed = this.managed.filter((x) => x !== m);
    }
  }
}

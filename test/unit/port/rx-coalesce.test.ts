import { describe, expect, it } from 'vitest';
import {
  AUTO_MAX_US, AUTO_MIN_US, AUTO_OFF_BELOW, AUTO_ON_ABOVE, autoTimerUs, DEFER_POLLS, parseCoalesce, RxCoalescer,
  type CoalesceSysfs,
} from '../../../src/port/rx-coalesce.js';

type File = 'napi_defer_hard_irqs' | 'gro_flush_timeout';

/** In-memory sysfs: per device the two files; `failWrite` makes writes to a device throw. */
function fakeSysfs(init: Record<string, [number, number]>) {
  const files = new Map<string, number>();
  for (const [dev, [defer, timeout]] of Object.entries(init)) {
    files.set(`${dev}/napi_defer_hard_irqs`, defer);
    files.set(`${dev}/gro_flush_timeout`, timeout);
  }
  const writes: string[] = [];
  const failWrite = new Set<string>();
  const io: CoalesceSysfs = {
    read: (dev, f: File) => {
      const v = files.get(`${dev}/${f}`);
      if (v === undefined) throw new Error(`ENOENT /sys/class/net/${dev}/${f}`);
      return v;
    },
    write: (dev, f: File, value) => {
      if (failWrite.has(dev)) throw new Error(`EACCES /sys/class/net/${dev}/${f}`);
      if (!files.has(`${dev}/${f}`)) throw new Error(`ENOENT /sys/class/net/${dev}/${f}`);
      files.set(`${dev}/${f}`, value);
      writes.push(`${dev}/${f}=${value}`);
    },
  };
  const get = (dev: string) => [files.get(`${dev}/napi_defer_hard_irqs`), files.get(`${dev}/gro_flush_timeout`)];
  return { io, writes, failWrite, get };
}

class FakePort {
  rxFrames = 0;
  constructor(readonly name: string) {}
}

describe('parseCoalesce', () => {
  it('takes auto, off (or 0) and a timer in µs', () => {
    expect(parseCoalesce('auto')).toEqual({ kind: 'auto' });
    expect(parseCoalesce('off')).toEqual({ kind: 'off' });
    expect(parseCoalesce('0')).toEqual({ kind: 'off' });
    expect(parseCoalesce('50')).toEqual({ kind: 'fixed', usecs: 50 });
    expect(parseCoalesce('1000')).toEqual({ kind: 'fixed', usecs: 1000 });
  });
  it('refuses anything else with a message naming the option', () => {
    for (const bad of ['', 'on', '-5', '1001', '2.5', '50us']) expect(() => parseCoalesce(bad)).toThrow(/--rx-coalesce/);
  });
});

describe('autoTimerUs', () => {
  it('is off at low rates and on above the threshold, clamped', () => {
    expect(autoTimerUs(0, 0)).toBe(0);
    expect(autoTimerUs(AUTO_ON_ABOVE - 1, 0)).toBe(0);
    expect(autoTimerUs(AUTO_ON_ABOVE, 0)).toBe(AUTO_MAX_US);
    expect(autoTimerUs(480_000, 0)).toBe(50); // 24 frames' worth of time
    expect(autoTimerUs(10_000_000, 0)).toBe(AUTO_MIN_US);
    expect(autoTimerUs(NaN, 80)).toBe(0);
  });
  it('holds its state between the two thresholds (hysteresis)', () => {
    const mid = (AUTO_OFF_BELOW + AUTO_ON_ABOVE) / 2;
    expect(autoTimerUs(mid, 0)).toBe(0);
    expect(autoTimerUs(mid, AUTO_MAX_US)).toBe(AUTO_MAX_US);
    expect(autoTimerUs(AUTO_OFF_BELOW - 1, AUTO_MAX_US)).toBe(0);
  });
  it('keeps a running timer close to the ideal one instead of flapping', () => {
    expect(autoTimerUs(255_000, 100)).toBe(100); // ideal 90
    expect(autoTimerUs(480_000, 100)).toBe(50);
  });
});

describe('RxCoalescer', () => {
  it('auto: switches a port on when busy and off when quiet, then restores the original settings', () => {
    const fs = fakeSysfs({ eth0: [0, 0] });
    const changes: [string, number][] = [];
    const c = new RxCoalescer({ kind: 'auto' }, fs.io, undefined, (p, us) => changes.push([p, us]));
    const p = new FakePort('eth0');
    c.add(p, 0);
    expect(c.ports).toEqual(['eth0']);
    expect(fs.writes).toEqual([]); // nothing until there is traffic
    p.rxFrames += 25_000; // 250k frames/s over 100 ms
    c.tick(100);
    expect(fs.get('eth0')).toEqual([DEFER_POLLS, AUTO_MAX_US * 1000]);
    expect(c.timerUs('eth0')).toBe(AUTO_MAX_US);
    // timer written before the notification is masked
    expect(fs.writes).toEqual(['eth0/gro_flush_timeout=100000', `eth0/napi_defer_hard_irqs=${DEFER_POLLS}`]);
    p.rxFrames += 25_000;
    c.tick(200);
    expect(fs.writes.length).toBe(2); // steady rate: no rewrite
    p.rxFrames += 100; // 1k frames/s
    c.tick(300);
    expect(fs.get('eth0')).toEqual([0, 0]);
    expect(c.timerUs('eth0')).toBe(0);
    expect(changes).toEqual([['eth0', AUTO_MAX_US], ['eth0', 0]]);
    p.rxFrames += 25_000;
    c.tick(400);
    expect(fs.get('eth0')).toEqual([DEFER_POLLS, AUTO_MAX_US * 1000]);
    c.restore();
    expect(fs.get('eth0')).toEqual([0, 0]);
    c.restore(); // idempotent
    expect(fs.get('eth0')).toEqual([0, 0]);
  });

  it('auto: ignores windows too short to give a rate', () => {
    const fs = fakeSysfs({ eth0: [0, 0] });
    const c = new RxCoalescer({ kind: 'auto' }, fs.io);
    const p = new FakePort('eth0');
    c.add(p, 0);
    p.rxFrames += 10_000;
    c.tick(10);
    expect(fs.writes).toEqual([]);
    c.tick(100); // 10k frames in 100 ms: 100k/s
    expect(c.timerUs('eth0')).toBe(AUTO_MAX_US);
  });

  it('auto: leaves alone a device the administrator already configured', () => {
    const fs = fakeSysfs({ eth0: [1, 20_000], eth1: [0, 0] });
    const c = new RxCoalescer({ kind: 'auto' }, fs.io);
    const p0 = new FakePort('eth0');
    const p1 = new FakePort('eth1');
    c.add(p0, 0);
    c.add(p1, 0);
    expect(c.ports).toEqual(['eth1']);
    expect(c.leftAlone).toEqual([{ port: 'eth0', napiDeferHardIrqs: 1, groFlushTimeoutNs: 20_000 }]);
    p0.rxFrames += 50_000;
    p1.rxFrames += 50_000;
    c.tick(100);
    c.restore();
    expect(fs.get('eth0')).toEqual([1, 20_000]);
    expect(fs.writes.every((w) => w.startsWith('eth1/'))).toBe(true);
  });

  it('fixed: sets the timer at once whatever the rate, and restores what the device had', () => {
    const fs = fakeSysfs({ eth0: [1, 5000] });
    const c = new RxCoalescer({ kind: 'fixed', usecs: 40 }, fs.io);
    const p = new FakePort('eth0');
    c.add(p, 0);
    expect(fs.get('eth0')).toEqual([DEFER_POLLS, 40_000]);
    c.tick(1000); // no rate logic in fixed mode
    expect(fs.get('eth0')).toEqual([DEFER_POLLS, 40_000]);
    c.restore();
    expect(fs.get('eth0')).toEqual([1, 5000]);
  });

  it('off: never reads or writes the device', () => {
    const fs = fakeSysfs({});
    const c = new RxCoalescer({ kind: 'off' }, fs.io, () => { throw new Error('no error expected'); });
    c.add(new FakePort('eth0'), 0);
    c.tick(1000);
    c.restore();
    expect(c.ports).toEqual([]);
    expect(fs.writes).toEqual([]);
  });

  it('a device without the files, or a failing write, is reported once and dropped, never thrown', () => {
    const fs = fakeSysfs({ eth1: [0, 0] });
    const errors: string[] = [];
    const c = new RxCoalescer({ kind: 'auto' }, fs.io, (p, e) => errors.push(`${p}: ${e.message}`));
    c.add(new FakePort('tap0'), 0); // no such files
    expect(c.ports).toEqual([]);
    const p = new FakePort('eth1');
    c.add(p, 0);
    fs.failWrite.add('eth1');
    p.rxFrames += 50_000;
    expect(() => c.tick(100)).not.toThrow();
    expect(c.ports).toEqual([]);
    expect(errors.length).toBe(2);
    expect(errors[0]).toMatch(/^tap0: ENOENT/);
    expect(errors[1]).toMatch(/^eth1: EACCES/);
    fs.failWrite.delete('eth1');
    p.rxFrames += 50_000;
    c.tick(200); // out of management: nothing more happens
    expect(fs.get('eth1')).toEqual([0, 0]);
  });
});

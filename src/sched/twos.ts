/**
 * twos — power of two choices (K net/netfilter/ipvs/ip_vs_twos.c).
 *
 *   W = sum of weights of dests with !OVERLOAD and weight > 0        (none: NULL)
 *   r1 = random in [0, W]; r2 = random in [0, W]    (get_random_u32_below(W + 1), drawn in order)
 *   for d in list with !OVERLOAD and weight > 0:
 *     r1 -= d.weight; r2 -= d.weight
 *     choice1 = first d where r1 <= 0; choice2 = first d where r2 <= 0
 *   return choice2 if w2 * overhead1 > w1 * overhead2 (strict), else choice1
 *
 * overhead = active * 256 + inactive. Because the draw is inclusive of W and the test is "<= 0",
 * the first eligible dest is chosen with probability (w1 + 1)/(W + 1), the others wi/(W + 1).
 *
 * Randomness is injectable: `setTwosRandom(fn)` for the process, or createTwosFactory({ random })
 * per factory. `fn(max)` must return a uniform integer in [0, max] INCLUSIVE.
 * Quirk not modelled: the kernel's products are C ints and could wrap; here they are exact.
 */
import type { Dest } from '../model/dest.js';
import type { Service } from '../model/service.js';
import { DEST_F_OVERLOAD } from '../model/constants.js';
import type { DestChange, SchedKey, SchedNote, Scheduler, SchedulerFactory } from './scheduler.js';
import { destOverhead } from './overhead.js';
import { destName } from './note.js';

/** Returns a uniform integer in [0, max] inclusive. */
export type RandomInclusive = (max: number) => number;

export const defaultRandom: RandomInclusive = (max) => Math.floor(Math.random() * (max + 1));

let moduleRandom: RandomInclusive = defaultRandom;

/** Replaces the random source of every twos scheduler created without its own. */
export function setTwosRandom(fn: RandomInclusive | null): void {
  moduleRandom = fn ?? defaultRandom;
}

export class TwosScheduler implements Scheduler {
  readonly name = 'twos';
  private readonly svc: Service;
  private readonly random: RandomInclusive | null;

  constructor(svc: Service, random: RandomInclusive | null) {
    this.svc = svc;
    this.random = random;
  }

  pick(_key: SchedKey, _now: number, note: SchedNote | null): Dest | null {
    const dests = this.svc.dests;
    const n = dests.length;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight > 0) total += d.weight;
    }
    if (total === 0) {
      if (note !== null) note.text = 'twos: no dest with weight > 0 and no OVERLOAD → no destination available';
      return null;
    }
    const random = this.random ?? moduleRandom;
    const r1 = random(total);
    const r2 = random(total);
    let rw1 = r1;
    let rw2 = r2;
    let c1: Dest | null = null;
    let c2: Dest | null = null;
    let w1 = -1, w2 = -1, oh1 = 0, oh2 = 0;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
      const w = d.weight;
      if (w <= 0) continue;
      rw1 -= w;
      rw2 -= w;
      if (rw1 <= 0 && w1 === -1) {
        c1 = d;
        w1 = w;
        oh1 = destOverhead(d);
      }
      if (rw2 <= 0 && w2 === -1) {
        c2 = d;
        w2 = w;
        oh2 = destOverhead(d);
      }
      if (w1 !== -1 && w2 !== -1) break;
    }
    const pick2 = c2 !== null && w2 * oh1 > w1 * oh2;
    const chosen = pick2 ? c2 : c1;
    if (note !== null) {
      note.text = `twos: W=${total} r1=${r1} → ${destName(c1)} (${oh1}/${w1}), r2=${r2} → ${destName(c2)} (${oh2}/${w2}) → ${destName(chosen)}`;
    }
    return chosen;
  }

  onDestChange(_kind: DestChange, _dest: Dest): void {}
  sweep(_now: number): void {}
}

export interface TwosOptions {
  /** Random source for schedulers of this factory; default: the module's (see setTwosRandom). */
  random?: RandomInclusive;
}

export function createTwosFactory(opts: TwosOptions = {}): SchedulerFactory {
  const random = opts.random ?? null;
  return { name: 'twos', create: (svc) => new TwosScheduler(svc, random) };
}

export const twosFactory: SchedulerFactory = createTwosFactory();

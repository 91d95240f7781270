/**
 * The destination-address cache shared by lblc and lblcr (K ip_vs_lblc.c / ip_vs_lblcr.c
 * "ip_vs_lblc_table"), with the kernel's garbage collection, driven by `sweep(now)` instead of a
 * kernel timer.
 *
 * The kernel hashes entries into 1024 chained buckets (hash_32(daddr, 10)); lookups here use a
 * Map keyed by the address number, and the bucket number is only used where it changes behaviour:
 * the order in which the size-driven GC visits entries.
 *
 * GC (ip_vs_lblc_check_expire), a timer every 60 s, first run 60 s after the table starts (here:
 * the first pick() or sweep() seen):
 *
 *   if counter % 30 == 0:                 full pass: delete every entry with now >= lastuse + expiration
 *     counter = 1                           (expiration = lblc[r]_expiration sysctl, default 24 h)
 *   else if entries <= max_size (16384):  counter++          (note: counter only advances here)
 *   else:                                 goal = min((entries - max_size) * 4 / 3, max_size / 2)
 *     for buckets rover+1, rover+2, ...:  delete entries idle >= 6 min; stop once goal <= 0
 *     rover = last bucket visited           (the whole bucket is swept even past the goal)
 *
 * `entries` is the kernel's counter, not the Map size: lblc's "replace the entry of an address"
 * path frees the old entry without decrementing it (kernel quirk, reproduced), so it can drift up.
 * If sweep() is called more than an hour behind, the missed timer runs are collapsed into one
 * full pass at `now`.
 */
import { hash32 } from './hash.js';
import type { Expiration } from '../model/sysctl.js';

export const LBLC_TAB_BITS = 10;
export const LBLC_TAB_SIZE = 1 << LBLC_TAB_BITS;
const LBLC_TAB_MASK = LBLC_TAB_SIZE - 1;
export const LBLC_MAX_SIZE = LBLC_TAB_SIZE * 16;
export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
export const COUNT_FOR_FULL_EXPIRATION = 30;
export const DEFAULT_EXPIRATION_MS = 24 * 60 * 60_000;
const MAX_CATCH_UP_RUNS = 60;

export interface LocalityEntry {
  readonly addr: number;
  lastuse: number;
}

export class LocalityTable<E extends LocalityEntry> {
  readonly map = new Map<number, E>();
  /** The kernel's atomic `entries` counter (see the lblc replace quirk above). */
  entries = 0;
  readonly maxSize = LBLC_MAX_SIZE;
  rover = 0;
  counter = 1;
  /** When the GC timer fires next; -1 until armed. */
  nextCheck = -1;
  /** The expiration sysctl's cell, read at each use (so a set applies to existing tables). */
  private readonly expiration: Expiration;

  constructor(expiration: Expiration) {
    this.expiration = expiration;
  }

  get expirationMs(): number {
    return this.expiration.ms;
  }

  get(addr: number): E | undefined {
    return this.map.get(addr);
  }

  /** Hashes a new entry in (replacing any entry of the same address) and counts it. */
  insert(e: E): void {
    this.map.set(e.addr, e);
    this.entries++;
  }

  /** Starts the GC timer the first time the table sees the clock. */
  arm(now: number): void {
    if (this.nextCheck < 0) this.nextCheck = now + CHECK_EXPIRE_INTERVAL_MS;
  }

  sweep(now: number): void {
    if (this.nextCheck < 0) {
      this.arm(now);
      return;
    }
    if (now - this.nextCheck >= MAX_CATCH_UP_RUNS * CHECK_EXPIRE_INTERVAL_MS) {
      this.fullCheck(now);
      this.counter = 1;
      this.nextCheck = now + CHECK_EXPIRE_INTERVAL_MS;
      return;
    }
    while (now >= this.nextCheck) {
      this.checkExpire(this.nextCheck);
      this.nextCheck += CHECK_EXPIRE_INTERVAL_MS;
    }
  }

  /** One run of the kernel's periodic timer at time `now`. */
  checkExpire(now: number): void {
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.fullCheck(now);
      this.counter = 1;
      return;
    }
    if (this.entries <= this.maxSize) {
      this.counter++;
      return;
    }
    let goal = Math.trunc(((this.entries - this.maxSize) * 4) / 3);
    if (goal > this.maxSize / 2) goal = this.maxSize / 2;
    // Group entries by kernel bucket; this pass is rare (only above 16384 entries).
    const buckets: E[][] = [];
    for (let b = 0; b < LBLC_TAB_SIZE; b++) buckets.push([]);
    for (const e of this.map.values()) buckets[hash32(e.addr, LBLC_TAB_BITS)]!.push(e);
    let j = this.rover;
    for (let i = 0; i < LBLC_TAB_SIZE; i++) {
      j = (j + 1) & LBLC_TAB_MASK;
      for (const e of buckets[j]!) {
        if (now < e.lastuse + ENTRY_TIMEOUT_MS) continue;
        this.map.delete(e.addr);
        this.entries--;
        goal--;
      }
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** Deletes every entry unused for the expiration time (the rover ends where it started). */
  fullCheck(now: number): void {
    for (const e of this.map.values()) {
      if (now < e.lastuse + this.expirationMs) continue;
      this.map.delete(e.addr);
      this.entries--;
    }
  }
}

/**
 * timer-wheel — a lazy hashed timing wheel over item indexes 0..capacity-1 (conn slots).
 *
 * Layout (all typed arrays, no object per item):
 *
 *     head[slot]   first item of the slot's doubly linked list, -1 empty     (nSlots + 1:
 *                  head[nSlots] is the resume list of a walk cut by its budget)
 *     slotMin[s]   lower bound of the expiries linked in slot s (skip test)  (nSlots)
 *     next[i]      next item, -1 end of list, -2 not linked                  (capacity)
 *     prev[i]      previous item, or -1 - slot when i is the slot's head     (capacity)
 *
 * The due time of an item lives in the caller's `expires` array (absolute ms). A slot covers
 * `slotMs` ms: time t belongs to slot key floor(t / slotMs), stored at key & (nSlots - 1).
 * Items further away than the wheel span wait in the farthest slot and are re-slotted when it
 * fires. Invariant: an item's slot fires no later than its expiry.
 *
 * - Refresh to a later time is O(1) and touches only `expires` (the caller writes it): when
 *   the old slot fires, the item is found not due and re-slotted ("lazy").
 * - Moving an expiry earlier must call `relink` (O(1) unlink + link), which keeps the
 *   invariant; state changes to a shorter timeout (ESTABLISHED → CLOSE) do this.
 * - `advance(now, budget, onDue)` visits at most `budget` items, so a million simultaneous
 *   expiries are spread over several calls; `pending` says more work is due now.
 */

const NOT_LINKED = -2;

export interface DueHandler {
  /** Item `idx` is due (expires <= now) and already unlinked; it may relink itself. */
  onDue(idx: number, now: number): void;
}

export class TimerWheel {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly head: Int32Array;
  readonly slotMin: Float64Array;
  readonly slotMs: number;
  readonly nSlots: number;
  private readonly mask: number;
  /** expires of item i is expires[(i << shift) + offset] (a field of the caller's records). */
  private readonly expires: Float64Array;
  private readonly shift: number;
  private readonly offset: number;
  /** Next slot key to process (absolute: floor(time / slotMs)). */
  private cur: number;
  /** True when the last advance() stopped on its budget with due work left. */
  pending = false;

  constructor(capacity: number, expires: Float64Array, shift: number, offset: number, now: number, slotMs = 64, nSlots = 16384) {
    if ((nSlots & (nSlots - 1)) !== 0 || nSlots < 2) throw new RangeError('nSlots must be a power of two');
    this.next = new Int32Array(capacity).fill(NOT_LINKED);
    this.prev = new Int32Array(capacity);
    this.head = new Int32Array(nSlots + 1).fill(-1); // + the resume list
    this.slotMin = new Float64Array(nSlots).fill(Infinity);
    this.slotMs = slotMs;
    this.nSlots = nSlots;
    this.mask = nSlots - 1;
    this.expires = expires;
    this.shift = shift;
    this.offset = offset;
    this.cur = Math.floor(now / slotMs);
  }

  isLinked(i: number): boolean {
    return this.next[i] !== NOT_LINKED;
  }

  /** Links item i at time `at` (its expiry). i must not be linked. */
  insert(i: number, at: number): void {
    let k = Math.floor(at / this.slotMs);
    const cur = this.cur;
    if (k < cur) k = cur;
    else if (k > cur + this.mask) k = cur + this.mask;
    const s = k & this.mask;
    const h = this.head[s]!;
    this.next[i] = h;
    this.prev[i] = -1 - s;
    if (h >= 0) this.prev[h] = i;
    this.head[s] = i;
    if (at < this.slotMin[s]!) this.slotMin[s] = at;
  }

  /** Unlinks item i (no-op when not linked). */
  remove(i: number): void {
    const n = this.next[i]!;
    if (n === NOT_LINKED) return;
    const p = this.prev[i]!;
    if (p >= 0) this.next[p] = n;
    else this.head[-1 - p] = n;
    if (n >= 0) this.prev[n] = p;
    this.next[i] = NOT_LINKED;
  }

  /** Moves item i to time `at` (use when its expiry moved earlier). */
  relink(i: number, at: number): void {
    this.remove(i);
    this.insert(i, at);
  }

  /**
   * Processes slots up to `now`: items with expires <= now are unlinked and handed to
   * `handler.onDue`; the others are re-slotted. Stops after `budget` visited items (then
   * `pending` is true and the unvisited rest of the slot waits on the resume list, which the
   * next call drains first). Returns the number of due items handed out.
   */
  advance(now: number, budget: number, handler: DueHandler): number {
    const target = Math.floor(now / this.slotMs);
    const mask = this.mask;
    if (target - this.cur > mask) this.cur = target - mask; // every physical slot is visited once
    const head = this.head, slotMin = this.slotMin;
    const res = this.nSlots; // the resume list lives in head[nSlots]
    this.pending = false;
    this.visits = 0;
    this.dueCount = 0;
    if (head[res]! >= 0) {
      const i = head[res]!;
      head[res] = -1;
      if (!this.walk(i, now, budget, handler)) return this.dueCount;
    }
    while (this.cur <= target) {
      const key = this.cur;
      const s = key & mask;
      const i = head[s]!;
      if (i >= 0 && (key < target || slotMin[s]! <= now)) {
        head[s] = -1;
        slotMin[s] = Infinity;
        if (!this.walk(i, now, budget, handler)) return this.dueCount;
      }
      if (key === target) break;
      this.cur = key + 1;
    }
    return this.dueCount;
  }

  private visits = 0;
  private dueCount = 0;

  /** Walks a detached chain; false when the budget ran out (rest parked on the resume list). */
  private walk(i: number, now: number, budget: number, handler: DueHandler): boolean {
    const next = this.next, prev = this.prev, expires = this.expires, shift = this.shift, offset = this.offset;
    while (i >= 0) {
      if (this.visits >= budget) {
        const res = this.nSlots;
        this.head[res] = i;
        prev[i] = -1 - res;
        this.pending = true;
        return false;
      }
      this.visits++;
      const n = next[i]!;
      const e = expires[(i << shift) + offset]!;
      next[i] = NOT_LINKED;
      if (n >= 0) prev[n] = -1 - this.nSlots; // n is now the head of the detached rest
      if (e <= now) {
        this.dueCount++;
        handler.onDue(i, now);
      } else {
        this.insert(i, e);
      }
      i = n;
    }
    return true;
  }
}

/**
 * NullPort — a Port that never receives and "sends" everything into the void (counts nothing,
 * copies nothing). For measuring the pipeline alone: the per-packet micro-benchmark
 * (bench/packet-bench.ts) and the no-allocation test feed frames with Director.processBatch and
 * let egress end here.
 */
import type { Port } from './port.js';
import type { Arena } from '../packet/arena.js';

export class NullPort implements Port {
  index = 0;
  readonly mtu = 1500;
  constructor(readonly name: string, readonly mac: Uint8Array) {}
  recv(_a: Arena, _s: Uint32Array, _n: number): number { return 0; }
  send(_a: Arena, _s: Uint32Array, n: number): number { return n; }
  onReadable(): void {}
  close(): void {}
}

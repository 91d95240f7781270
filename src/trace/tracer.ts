/**
 * The hook every stage calls to describe its decision, free when tracing is off: stages test
 * `tracer.on` (one branch) before building any string. The real tracer (trace/step-tracer.ts)
 * filters packets, correlates replies with requests by conn, and renders text/JSON/pcapng.
 */
import type { Packet } from '../packet/packet.js';

export interface Tracer {
  /** True when at least one consumer listens; stages check it before doing any work. */
  readonly on: boolean;
  /** A frame entered on port `port`; returns whether this packet is traced (filter match). */
  begin(p: Packet, portName: string): boolean;
  /** One stage's note for the packet being traced (only called when begin() returned true). */
  step(p: Packet, stage: string, text: string): void;
  /** Header snapshot before a rewrite (the tracer copies what it needs). */
  before(p: Packet): void;
  /** Header snapshot after a rewrite. */
  after(p: Packet): void;
  /** The packet left on port `portName` or was dropped (`drop` = reason name, '' if sent). */
  end(p: Packet, portName: string, drop: string): void;
}

export const noTracer: Tracer = {
  on: false,
  begin: () => false,
  step: () => {},
  before: () => {},
  after: () => {},
  end: () => {},
};

/**
 * attach — puts step tracers on a running director and sends their events somewhere:
 *
 *   attachTracer(director, { filter, out: 'text' | 'json', pcapDir })   uvsd --trace [FILTER] [--pcap DIR]
 *   new TraceStream(director, filter, (line) => socket.write(line))     uvsadm trace [FILTER] (control socket)
 *   renderEventLine(line, { color })                                    the uvsadm side: JSON line → text
 *
 * Several tracers may be attached at once (the daemon's own --trace and any number of
 * `uvsadm trace` clients, each with its filter): the director gets one fan-out tracer that
 * asks each of them; when the last one stops, the director's tracer is `noTracer` again and
 * the data path is back to one boolean test per packet.
 *
 * Text goes out coloured only when the stream is a TTY and NO_COLOR is unset (or empty);
 * JSON is one pino line per packet event, with TraceEvent's fields at the top level.
 *
 * See also: step-tracer.ts (TraceEvent, renderEvent), pcapng.ts (PcapDir).
 */
import pino from 'pino';
import type { Packet } from '../packet/packet.js';
import { noTracer, type Tracer } from './tracer.js';
import { StepTracer, renderEvent, type TraceEvent, type TraceFrames, type TraceHost } from './step-tracer.js';
import { PcapDir } from './pcapng.js';

export { renderEvent, renderEventLine } from './step-tracer.js';
export type { TraceEvent } from './step-tracer.js';

/** What attach needs from the director: its conn table and clock, and a swappable tracer. */
export interface TraceableDirector extends TraceHost {
  tracer: Tracer;
}

/** Calls every attached tracer; a packet is traced when any of them wants it. */
class FanoutTracer implements Tracer {
  on = false;
  readonly tracers: StepTracer[] = [];

  begin(p: Packet, portName: string): boolean {
    let any = false;
    for (const t of this.tracers) if (t.begin(p, portName)) any = true;
    return any;
  }
  step(p: Packet, stage: string, text: string): void {
    for (const t of this.tracers) t.step(p, stage, text);
  }
  before(p: Packet): void {
    for (const t of this.tracers) t.before(p);
  }
  after(p: Packet): void {
    for (const t of this.tracers) t.after(p);
  }
  end(p: Packet, portName: string, drop: string): void {
    for (const t of this.tracers) t.end(p, portName, drop);
  }
}

const fanouts = new WeakMap<TraceableDirector, FanoutTracer>();

/**
 * Installs `t` on the director (next to any tracer already attached this way); returns the
 * function that removes it. A tracer set on the director some other way is replaced.
 */
export function installTracer(director: TraceableDirector, t: StepTracer): () => void {
  let f = fanouts.get(director);
  if (f === undefined) {
    f = new FanoutTracer();
    fanouts.set(director, f);
  }
  const fan = f;
  t.host = director;
  fan.tracers.push(t);
  fan.on = true;
  director.tracer = fan.tracers.length === 1 ? t : fan;
  return () => {
    const i = fan.tracers.indexOf(t);
    if (i < 0) return;
    fan.tracers.splice(i, 1);
    fan.on = fan.tracers.length > 0;
    director.tracer = fan.tracers.length === 0 ? noTracer : fan.tracers.length === 1 ? fan.tracers[0]! : fan;
  };
}

/** Colour for a stream: a TTY, and NO_COLOR unset or empty (https://no-color.org). */
export function wantColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env['NO_COLOR'];
}

export interface WritableLike {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface AttachOptions {
  /** pcap-filter-like expression; '' or absent = every packet. Throws FilterError if invalid. */
  filter?: string;
  /** 'text' (default), 'json' (pino), or 'none' (only pcap / listeners). */
  out?: 'text' | 'json' | 'none';
  /** Where text/JSON go (default process.stdout). */
  stream?: WritableLike;
  /** Override colour detection for text. */
  color?: boolean;
  /** Write DIR/<port>-in.pcapng and DIR/<port>-out.pcapng with the trace text as comments. */
  pcapDir?: string;
  /** Logger for the JSON form (default: pino to `stream`, no pid/hostname). */
  logger?: pino.Logger;
}

export interface TraceAttachment {
  readonly tracer: StepTracer;
  /** Files written under pcapDir so far. */
  pcapPaths(): string[];
  /** Detaches (tracing off again when it was the last) and closes pcap files. */
  stop(): void;
}

/** `uvsd --trace [FILTER] [--pcap DIR]`: traces matching packets to stdout and/or pcapng. */
export function attachTracer(director: TraceableDirector, opts: AttachOptions = {}): TraceAttachment {
  const tracer = new StepTracer({ filter: opts.filter ?? '', host: director });
  const stream = opts.stream ?? process.stdout;
  const out = opts.out ?? 'text';
  if (out === 'text') {
    const color = opts.color ?? wantColor(stream);
    tracer.onEvent((ev) => { stream.write(renderEvent(ev, { color })); });
  } else if (out === 'json') {
    const logger = opts.logger ?? pino({ base: undefined }, stream as pino.DestinationStream);
    tracer.onEvent((ev) => { logger.info(ev, 'trace'); });
  }
  const pcap = opts.pcapDir !== undefined ? new PcapDir(opts.pcapDir) : undefined;
  if (pcap) tracer.onEvent((ev, frames) => writePcap(pcap, ev, frames));
  const remove = installTracer(director, tracer);
  return {
    tracer,
    pcapPaths: () => pcap?.paths() ?? [],
    stop: () => {
      remove();
      pcap?.close();
    },
  };
}

/** The frame as received into <inPort>-in, as sent into <outPort>-out, the trace text as comment. */
export function writePcap(pcap: PcapDir, ev: TraceEvent, frames: TraceFrames): void {
  const comment = renderEvent(ev, { color: false }).trimEnd();
  pcap.write(ev.inPort, 'in', ev.at, frames.in, comment);
  if (frames.out && ev.outPort) pcap.write(ev.outPort, 'out', ev.at, frames.out, comment);
}

/**
 * `uvsadm trace [FILTER]` on the daemon side: each traced packet becomes one JSON line (a
 * TraceEvent, no trailing newline) handed to `send`; the client prints renderEventLine(line).
 * The filter is checked at construction (FilterError → report it to the client).
 */
export class TraceStream {
  readonly tracer: StepTracer;
  private readonly remove: () => void;

  constructor(director: TraceableDirector, filter: string, send: (line: string) => void) {
    this.tracer = new StepTracer({ filter, host: director });
    this.tracer.onEvent((ev) => send(JSON.stringify(ev)));
    this.remove = installTracer(director, this.tracer);
  }

  stop(): void {
    this.remove();
  }
}

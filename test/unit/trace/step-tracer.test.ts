import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runExplain, type ExplainMode } from '../../../src/cli/explain.js';
import { attachTracer, TraceStream, renderEventLine, wantColor, type TraceEvent } from '../../../src/trace/attach.js';
import { StepTracer, renderEvent, REPLY_DIRECT_NOTE } from '../../../src/trace/step-tracer.js';
import { noTracer } from '../../../src/trace/tracer.js';
import { build } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, RS2_MAC, DIR1_MAC } from '../../helpers/lab-mem.js';
import { FWD_MASQ } from '../../../src/model/constants.js';
import { runTraceBench } from '../../../src/bench/trace-bench.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/trace');
const VIP = '192.168.10.110';
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12;

/** The scripted conversation of one connection (SYN, SYN-ACK, ACK, data both ways, FIN both ways). */
async function scenario(mode: ExplainMode): Promise<string> {
  let out = '';
  await runExplain({ mode, sched: 'wrr', packets: 1, json: false, traceOnly: true }, (s) => { out += s; });
  return out;
}

describe('golden trace text per forwarding method', () => {
  for (const mode of ['nat', 'dr', 'tun', 'fullnat'] as const) {
    it(`${mode}: the scripted connection renders exactly as test/fixtures/trace/${mode}.txt`, async () => {
      const text = await scenario(mode);
      const file = join(FIXTURES, `${mode}.txt`);
      if (process.env['UPDATE_GOLDEN']) writeFileSync(file, text); // UPDATE_GOLDEN=1 npx vitest run … rewrites them
      expect(text).toBe(readFileSync(file, 'utf8'));
      // Deterministic: a second run in the same process prints the same text.
      expect(await scenario(mode)).toBe(text);
    });
  }

  it('NAT shows the request and the reply of the same conn, with headers before and after', async () => {
    const text = await scenario('nat');
    expect(text).toMatch(/^#1 conn #0 client→server {2}in eth0 {2}02:00:00:00:00:aa → 02:00:00:00:00:01 {2}192\.168\.10\.6:40000 → 192\.168\.10\.110:80 TCP \[S\]/m);
    expect(text).toMatch(/^#2 conn #0 server→client {2}in eth1 .*10\.0\.0\.17:8080 → 192\.168\.10\.6:40000 TCP \[S\.\]/m);
    expect(text).toMatch(/schedule {2}wrr: .*→ 10\.0\.0\.17:8080/);
    expect(text).toMatch(/state {5}NONE → SYN_RECV/);
    expect(text).toMatch(/before {2}192\.168\.10\.6:40000 → 192\.168\.10\.110:80 {2}ttl 64 {2}ip-csum 0x[0-9a-f]{4} {2}tcp-csum 0x[0-9a-f]{4}/);
    expect(text).toMatch(/after {3}192\.168\.10\.6:40000 → 10\.0\.0\.17:8080 {2}ttl 63/);
    expect(text).toMatch(/changed dst 192\.168\.10\.110 → 10\.0\.0\.17, dport 80 → 8080, ttl 64 → 63, ip-csum, tcp-csum/);
    expect(text).toMatch(/out {7}eth1 {2}02:00:00:00:00:02 → 02:00:00:00:01:17/);
    expect(text).not.toContain('\x1b[');
    expect(text).not.toContain(REPLY_DIRECT_NOTE);
  });

  it('DR and TUN note that the reply goes direct; TUN shows the outer IPIP header', async () => {
    const dr = await scenario('dr');
    expect(dr).toContain(`note      ${REPLY_DIRECT_NOTE}`);
    expect(dr).toContain('changed ttl 63 → 62, ip-csum');
    expect(dr).not.toMatch(/server→client/);
    const tun = await scenario('tun');
    expect(tun).toMatch(/after {3}outer 10\.0\.0\.8 → 10\.0\.0\.17 IPIP {2}ttl 62/);
    expect(tun).toMatch(/inner 192\.168\.10\.6:40000 → 10\.0\.0\.100:80/);
    expect(tun).toContain('outer IPIP header added (10.0.0.8 → 10.0.0.17)');
  });

  it('FULLNAT rewrites both ends and maps the reply from the LIP back to the client', async () => {
    const text = await scenario('fullnat');
    expect(text).toMatch(/changed src 192\.168\.10\.6 → 10\.0\.0\.50, sport 40000 → \d+, dst 192\.168\.10\.110 → 10\.0\.1\.17/);
    expect(text).toMatch(/server→client {2}in eth1 .*10\.0\.1\.17:80 → 10\.0\.0\.50:\d+/);
  });
});

function natLab() {
  const lab = memLab();
  lab.cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
  lab.cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.17', port: 8080 }, opts: destOpts(FWD_MASQ) });
  const syn = (sport = 40000) => build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport, dport: 80, flags: SYN });
  const synack = (dport = 40000) => build({ srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.17', daddr: '192.168.10.6', sport: 8080, dport, flags: SYNACK });
  return { ...lab, syn, synack };
}

describe('StepTracer', () => {
  it('follows a reply by its conn even when only the reply matched the filter, and the request after it', () => {
    const { d, p0, p1, run, syn, synack } = natLab();
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: 'src host 10.0.0.17', host: d });
    t.onEvent((ev) => events.push(structuredClone(ev)));
    d.tracer = t;
    p0.inject(syn());
    run();
    expect(events).toHaveLength(0); // the SYN does not match `src host 10.0.0.17`
    p1.inject(synack());
    run();
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80, flags: ACK }));
    p0.inject(syn(40001)); // another conn: not traced
    run();
    expect(events.map((e) => [e.id, e.conn, e.dir, e.method, e.verdict])).toEqual([
      [1, 0, 'out', 'NAT', 'sent'],
      [2, 0, 'in', 'NAT', 'sent'],
    ]);
    expect(events[1]!.state).toBe('ESTABLISHED');
  });

  it('records drops with their reason, and untraced drops do not disturb a traced packet', () => {
    const { d, p0, run } = natLab();
    const events: TraceEvent[] = [];
    const t = new StepTracer({ filter: 'tcp and dst port 80', host: d });
    t.onEvent((ev) => events.push(ev));
    d.tracer = t;
    p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, flags: ACK }));
    p0.inject(build({ proto: 17, srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, dport: 53 }));
    run();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ verdict: 'drop', reason: 'non-syn-no-conn', outPort: '' });
    const text = renderEvent(events[0]!);
    expect(text).toMatch(/schedule {2}not a SYN and no conn/);
    expect(text).toMatch(/drop {6}non-syn-no-conn/);
  });

  it('an invalid filter is refused with a clear message', () => {
    expect(() => new StepTracer({ filter: 'host nowhere' })).toThrow(/"nowhere" is not an IPv4 address/);
  });
});

describe('attachTracer / TraceStream', () => {
  it('text to a stream, plain when not a TTY, coloured when asked; stop() turns tracing off', () => {
    const { d, p0, run, syn } = natLab();
    let out = '';
    const a = attachTracer(d, { filter: 'port 80', stream: { write: (s: string) => { out += s; } } });
    expect(d.tracer.on).toBe(true);
    p0.inject(syn());
    run();
    expect(out).toMatch(/^#1 conn #0 client→server/);
    expect(out).not.toContain('\x1b[');
    a.stop();
    expect(d.tracer).toBe(noTracer);
    let col = '';
    const b = attachTracer(d, { color: true, stream: { write: (s: string) => { col += s; } } });
    p0.inject(syn(40001));
    run();
    b.stop();
    expect(col).toContain('\x1b[');
    expect(wantColor({ isTTY: true }, {})).toBe(true);
    expect(wantColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(wantColor({ isTTY: false }, {})).toBe(false);
  });

  it('JSON through pino: one object per packet with the stable fields', () => {
    const { d, p0, run, syn } = natLab();
    const lines: string[] = [];
    const a = attachTracer(d, { out: 'json', stream: { write: (s: string) => { lines.push(s); } } });
    p0.inject(syn());
    run();
    a.stop();
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!);
    expect(o).toMatchObject({ level: 30, msg: 'trace', id: 1, conn: 0, dir: 'in', method: 'NAT', state: 'SYN_RECV', inPort: 'cli0', outPort: 'srv0', verdict: 'sent' });
    expect(o.steps.map((s: { stage: string }) => s.stage)).toEqual(['parse', 'classify', 'schedule', 'track', 'state', 'forward', 'route']);
    expect(o.before.ip).toMatchObject({ daddr: VIP, ttl: 64 });
    expect(o.after.ip).toMatchObject({ daddr: '10.0.0.17', ttl: 63, csumOk: true });
    expect(o.after.l4).toMatchObject({ dport: 8080, flags: '[S]', csumOk: true });
    expect(o.frameOut.eth).toMatchObject({ src: DIR1_MAC, dst: RS2_MAC });
  });

  it('two attachments with different filters share the director; the stream renders like renderEvent', () => {
    const { d, p0, p1, run, syn, synack } = natLab();
    const lines: string[] = [];
    const s = new TraceStream(d, 'dst port 80', (l) => lines.push(l));
    let text = '';
    const a = attachTracer(d, { filter: 'src port 8080', stream: { write: (x: string) => { text += x; } } });
    p0.inject(syn());
    run();
    p1.inject(synack());
    run();
    // The stream saw the SYN, then the SYN-ACK by correlation; the text attachment only the SYN-ACK.
    expect(lines).toHaveLength(2);
    expect(text.match(/^#\d+/gm)).toEqual(['#1']);
    expect(text).toContain('server→client');
    const ev = JSON.parse(lines[1]!) as TraceEvent;
    expect(renderEventLine(lines[1]!)).toBe(renderEvent(ev));
    s.stop();
    expect(d.tracer.on).toBe(true);
    a.stop();
    expect(d.tracer).toBe(noTracer);
  });
});

describe('trace-bench', () => {
  it('produces its markdown table (a smoke run: numbers are measured in bench/, never asserted here)', async () => {
    const md = await runTraceBench({ packets: 2000, rounds: 1 });
    expect(md).toMatch(/^\| tracing off \(noTracer: one boolean test\) \| \d+ \|/m);
    expect(md).toMatch(/^\| every packet traced and rendered as text \|/m);
  });
});

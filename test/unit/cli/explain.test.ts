import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { explainMain, parseExplainArgs } from '../../../src/cli/explain.js';
import { PcapngWriter } from '../../../src/trace/pcapng.js';
import { REPLY_DIRECT_NOTE } from '../../../src/trace/step-tracer.js';
import { build } from '../../helpers/frames.js';

async function explain(...argv: string[]): Promise<{ rc: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const rc = await explainMain(argv, { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } } });
  return { rc, out, err };
}

describe('uvs explain', () => {
  it('nat: commands as typed, every packet of the conversation both ways, -Ln --stats and -Lnc', async () => {
    const { rc, out, err } = await explain('--mode', 'nat');
    expect(err).toBe('');
    expect(rc).toBe(0);
    expect(out).toContain('$ uvsadm -A -t 192.168.10.110:80 -s wrr\n');
    expect(out).toContain('$ uvsadm -a -t 192.168.10.110:80 -r 10.0.0.7:80 -m -w 1\n');
    expect(out).toContain('$ uvsadm -a -t 192.168.10.110:80 -r 10.0.0.17:8080 -m -w 3\n');
    // Two connections (default), 8 packets each, all through the director.
    expect(out.match(/^#\d+ conn/gm)).toHaveLength(16);
    expect(out.match(/^#\d+ conn #\d+ server→client/gm)).toHaveLength(8);
    expect(out).toMatch(/schedule {2}wrr: .*→ 10\.0\.0\.17:8080/);
    expect(out).toMatch(/state {5}ESTABLISHED → FIN_WAIT/);
    expect(out).toMatch(/state {5}FIN_WAIT → TIME_WAIT/);
    expect(out).toContain('$ uvsadm -Ln --stats\n');
    expect(out).toMatch(/TCP {2}192\.168\.10\.110:80 +2 +8 +8/);
    expect(out).toContain('$ uvsadm -Lnc\n');
    expect(out).toMatch(/TCP \d\d:\d\d {2}TIME_WAIT {3}192\.168\.10\.6:40000/);
  });

  it('fullnat --proxy-protocol v2: the rule as typed, the header put in, the server\'s acks moved back, the conversation completes', async () => {
    const { rc, out, err } = await explain('--mode', 'fullnat', '--proxy-protocol', 'v2', '--packets', '1');
    expect(err).toBe('');
    expect(rc).toBe(0);
    expect(out).toContain('$ uvsadm -A -t 192.168.10.110:80 -s wrr --proxy-protocol v2\n');
    expect(out).toContain("proxy     v2 header (28 bytes: 192.168.10.6:40000 → 192.168.10.110:80) put in front of the client's first data (seq 1001)");
    expect(out).toMatch(/TCP \[P\.\] seq 1001 ack 5001 win \d+ len 68 ttl 63/); // 40-byte request + 28
    expect(out).toMatch(/proxy {5}ack\/SACK −28/);
    expect(out).toMatch(/proxy {5}seq \+28/); // the client's FIN
    expect(out).toMatch(/TCP \d\d:\d\d {2}TIME_WAIT {3}192\.168\.10\.6:40000/);
    const bad = await explain('--mode', 'dr', '--proxy-protocol', 'v2');
    expect(bad.rc).toBe(64);
    expect(bad.err).toContain('--proxy-protocol goes with --mode nat or fullnat');
  });

  it('nat --ftp: a passive-mode download — the 227 reply rewritten to the VIP, the expected data connection, the moved sequence numbers', async () => {
    const { rc, out, err } = await explain('--mode', 'nat', '--ftp', '--packets', '1');
    expect(err).toBe('');
    expect(rc).toBe(0);
    expect(out).toContain('$ uvsadm -A -t 192.168.10.110:21 -s wrr\n');
    expect(out).toContain('$ uvsadm -a -t 192.168.10.110:21 -r 10.0.0.17:21 -m -w 3\n');
    expect(out).toMatch(/track {5}FTP helper bound \(NAT, port 21\)/);
    // "10,0,0,17" became "192,168,10,110": 5 bytes more.
    expect(out).toMatch(/ftp {7}227 reply: the passive address rewritten to 192\.168\.10\.110 port 50000 \(\+5 bytes: later server seqs move\); data conn #1 192\.168\.10\.6:\* → 192\.168\.10\.110:50000 ⇒ 10\.0\.0\.17:50000 \(LISTEN, controlled by conn #0\)/);
    expect(out).toMatch(/TCP \[P\.\] seq 5028 ack 1007 win \d+ len 52 ttl 63/); // 47 bytes in, 52 out
    expect(out).toMatch(/client port 41000 filled in, state LISTEN/);
    expect(out).toMatch(/ftp {7}ack \(and SACK\) − 5 back into the server's numbers/);
    expect(out).toMatch(/ftp {7}seq \+ 5 /);
    // Both connections end in TIME_WAIT; the data connection went to the control connection's server.
    expect(out).toMatch(/TCP \d\d:\d\d {2}TIME_WAIT {3}192\.168\.10\.6:40000 +192\.168\.10\.110:21 +10\.0\.0\.17:21/);
    expect(out).toMatch(/TCP \d\d:\d\d {2}TIME_WAIT {3}192\.168\.10\.6:41000 +192\.168\.10\.110:50000 +10\.0\.0\.17:50000/);
    const bad = await explain('--mode', 'dr', '--ftp');
    expect(bad.rc).toBe(64);
    expect(bad.err).toContain('--ftp goes with --mode nat');
  });

  it('tun --tun-type gue / gre: the rules as typed and each packet shown with its outer GUE (UDP ports) or GRE header', async () => {
    const gue = await explain('--mode', 'tun', '--tun-type', 'gue', '--packets', '1');
    expect(gue.rc).toBe(0);
    expect(gue.out).toContain('$ uvsadm -a -t 10.0.0.100:80 -r 10.0.0.17:80 -i --tun-type gue --tun-port 6080 --tun-csum -w 3\n');
    expect(gue.out).toMatch(/after {3}outer 10\.0\.0\.8 → 10\.0\.0\.(7|17) GUE {2}ttl 62/);
    expect(gue.out).toMatch(/changed outer GUE header added \(10\.0\.0\.8 → 10\.0\.0\.(7|17), udp \d+ → 6080\)/);
    expect(gue.out).toMatch(/out {7}eth0 .* GUE 10\.0\.0\.8 → 10\.0\.0\.(7|17) udp \d+ → 6080 ttl 62 \| 192\.168\.10\.6:40000 → 10\.0\.0\.100:80 TCP \[S\]/);
    const gre = await explain('--mode', 'tun', '--tun-type', 'gre', '--packets', '1');
    expect(gre.rc).toBe(0);
    expect(gre.out).toMatch(/changed outer GRE header added \(10\.0\.0\.8 → 10\.0\.0\.(7|17)\)/);
    expect((await explain('--mode', 'dr', '--tun-type', 'gue')).err).toContain('--tun-type goes with --mode tun');
    expect((await explain('--mode', 'tun', '--tun-type', 'vxlan')).err).toContain('--tun-type must be ipip, gue or gre');
  });

  it('dr and tun: only client packets cross the director; the direct reply is explained', async () => {
    for (const mode of ['dr', 'tun']) {
      const { rc, out } = await explain('--mode', mode, '--packets', '1');
      expect(rc).toBe(0);
      expect(out).toContain(`-r 10.0.0.7:80 ${mode === 'dr' ? '-g' : '-i'} -w 1`);
      expect(out.match(/^#\d+ conn/gm)).toHaveLength(4);
      expect(out).not.toContain('server→client');
      expect(out).toContain(REPLY_DIRECT_NOTE);
      expect(out).toMatch(/^~ rs2 10\.0\.0\.17 answers SYN-ACK 10\.0\.0\.100:80 → 192\.168\.10\.6:40000 .*not through the director/m);
      expect(out).toContain(`OutPkts stay 0: with ${mode.toUpperCase()}`);
      if (mode === 'tun') expect(out).toContain('outer IPIP header added (10.0.0.8 → 10.0.0.17)');
    }
  });

  it('fullnat: the local address is configured and both ends are rewritten', async () => {
    const { rc, out } = await explain('fullnat', '--packets', '1', '--sched', 'rr');
    expect(rc).toBe(0);
    expect(out).toContain('$ uvsadm -A -t 192.168.10.110:80 -s rr\n');
    expect(out).toContain('$ uvsadm -P -t 192.168.10.110:80 -z 10.0.0.50\n');
    expect(out).toMatch(/schedule {2}rr/);
    expect(out).toMatch(/changed src 192\.168\.10\.6 → 10\.0\.0\.50/);
    expect(out).toMatch(/server→client {2}in eth1 .*10\.0\.1\.\d+:80 → 10\.0\.0\.50/);
  });

  it('--json prints one pino object per packet and nothing else', async () => {
    const { rc, out } = await explain('--mode', 'nat', '--packets', '1', '--json');
    expect(rc).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    const evs = lines.map((l) => JSON.parse(l));
    expect(evs.map((e) => e.dir).join(',')).toBe('in,out,in,in,out,out,in,out');
    expect(evs.every((e) => e.msg === 'trace' && e.conn === 0 && e.method === 'NAT')).toBe(true);
  });

  it('--pcap FILE replays a capture as client traffic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uvs-explain-'));
    try {
      const file = join(dir, 'in.pcapng');
      const w = new PcapngWriter(file);
      w.write('eth0', 1, build({ saddr: '192.168.10.6', daddr: '192.168.10.110', sport: 41000, dport: 80, flags: 0x02 }));
      w.write('eth0', 2, build({ saddr: '192.168.10.6', daddr: '192.168.10.99', sport: 41001, dport: 80, flags: 0x02 }));
      w.close();
      const { rc, out } = await explain('--mode', 'nat', '--pcap', file);
      expect(rc).toBe(0);
      expect(out).toContain(`(replayed 2 IPv4 frames of ${file} as client traffic)`);
      expect(out).toMatch(/#1 conn #0 client→server .*192\.168\.10\.6:41000 → 192\.168\.10\.110:80/);
      expect(out).toMatch(/classify  no virtual service for TCP 192\.168\.10\.99:80/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('colours the trace only on a TTY without NO_COLOR', async () => {
    let out = '';
    const tty = { isTTY: true, write: (s: string) => { out += s; } };
    const saved = process.env['NO_COLOR'];
    delete process.env['NO_COLOR'];
    try {
      expect(await explainMain(['--packets', '1'], { stdout: tty })).toBe(0);
      expect(out).toContain('\x1b[');
      out = '';
      process.env['NO_COLOR'] = '1';
      expect(await explainMain(['--packets', '1'], { stdout: tty })).toBe(0);
      expect(out).not.toContain('\x1b[');
    } finally {
      if (saved === undefined) delete process.env['NO_COLOR']; else process.env['NO_COLOR'] = saved;
    }
  });

  it('bad arguments: exit 64 with a message', async () => {
    const r = await explain('--mode', 'bogus');
    expect(r.rc).toBe(64);
    expect(r.err).toMatch(/--mode must be one of nat, dr, tun, fullnat \(got "bogus"\)/);
    expect((await explain('--packets', '0')).rc).toBe(64);
    expect((await explain('--frob')).err).toMatch(/unknown option "--frob"/);
    const s = await explain('--sched', 'nosuch', '--packets', '1');
    expect(s.rc).toBe(1);
    expect(s.err).toMatch(/uvsadm -A -t 192\.168\.10\.110:80 -s nosuch/);
    expect(parseExplainArgs(['--mode=tun', '--packets=3'])).toMatchObject({ mode: 'tun', packets: 3 });
    expect((await explain('--help')).out).toMatch(/^usage: uvs explain/);
  });

  it('loads nothing that needs root: the native addon and the lab code are not in its import graph', () => {
    const root = resolve(import.meta.dirname, '../../../src');
    const seen = new Set<string>();
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      // Static imports only (dynamic import() is lazy by definition).
      for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gm)) {
        if (/^import\s+type\s/.test(m[0]) || /^export\s+type\s/.test(m[0])) continue;
        walk(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
      }
    };
    walk(join(root, 'cli/explain.ts'));
    const rel = [...seen].map((f) => f.slice(root.length + 1));
    expect(rel).toContain('pipeline/director.ts');
    expect(rel.filter((f) => /^(port\/(native|tap-port|packet-socket-port|tun-device)|lab\/)/.test(f))).toEqual([]);
  });
});

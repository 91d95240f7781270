import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachTracer } from '../../../src/trace/attach.js';
import { PcapngWriter, readCapture } from '../../../src/trace/pcapng.js';
import { build } from '../../helpers/frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, RS2_MAC } from '../../helpers/lab-mem.js';
import { FWD_MASQ } from '../../../src/model/constants.js';

// tshark is in scripts/setup.sh's package list, so CI always runs the tshark half.
const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const VIP = '192.168.10.110';

function tshark(file: string, ...fields: string[]): string[] {
  const args = ['-r', file, '-T', 'fields'];
  for (const f of fields) args.push('-e', f);
  // -T fields prints one line per frame (newlines inside a comment come out escaped as \\n).
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '').split('\n');
}

function tracedNatRun(dir: string) {
  const { d, p0, p1, cmd, run } = memLab();
  cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: svcOpts('rr') });
  cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: '10.0.0.17', port: 8080 }, opts: destOpts(FWD_MASQ) });
  const a = attachTracer(d, { out: 'none', pcapDir: dir });
  p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40000, dport: 80, flags: 0x02 }));
  run();
  p1.inject(build({ srcMac: RS2_MAC, dstMac: DIR1_MAC, saddr: '10.0.0.17', daddr: '192.168.10.6', sport: 8080, dport: 40000, flags: 0x12 }));
  run();
  p0.inject(build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: '192.168.10.6', daddr: VIP, sport: 40001, dport: 80, flags: 0x10 })); // dropped
  run();
  const paths = a.pcapPaths();
  a.stop();
  return paths;
}

describe('pcapng', () => {
  it('--pcap DIR writes <port>-in / <port>-out files whose frames read back unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uvs-pcap-'));
    try {
      tracedNatRun(dir);
      expect(readdirSync(dir).sort()).toEqual(['cli0-in.pcapng', 'cli0-out.pcapng', 'srv0-in.pcapng', 'srv0-out.pcapng']);
      const cliIn = readCapture(new Uint8Array(readFileSync(join(dir, 'cli0-in.pcapng'))));
      expect(cliIn).toHaveLength(2); // the SYN and the dropped ACK
      const srvOut = readCapture(new Uint8Array(readFileSync(join(dir, 'srv0-out.pcapng'))));
      expect(srvOut).toHaveLength(1);
      const f = srvOut[0]!.frame;
      expect([...f.subarray(30, 34)]).toEqual([10, 0, 0, 17]); // NAT: the SYN left toward the RS
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads classic pcap (µs, little-endian) too', () => {
    const frame = build({ saddr: '192.168.10.6', daddr: VIP });
    const b = new Uint8Array(24 + 16 + frame.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 0xa1b2c3d4, true); dv.setUint16(4, 2, true); dv.setUint16(6, 4, true);
    dv.setUint32(16, 65535, true); dv.setUint32(20, 1, true);
    dv.setUint32(24, 10, true); dv.setUint32(28, 500, true); dv.setUint32(32, frame.length, true); dv.setUint32(36, frame.length, true);
    b.set(frame, 40);
    const got = readCapture(b);
    expect(got).toHaveLength(1);
    expect(got[0]!.timeMs).toBeCloseTo(10000.5);
    expect(got[0]!.frame).toEqual(frame);
    expect(() => readCapture(new Uint8Array(32))).toThrow(/not a pcap/);
  });

  describe.skipIf(!hasTshark)('tshark', () => {
    it('opens the files and shows the trace text as each packet comment', () => {
      const dir = mkdtempSync(join(tmpdir(), 'uvs-pcap-'));
      try {
        tracedNatRun(dir);
        const inRows = tshark(join(dir, 'cli0-in.pcapng'), 'frame.interface_name', 'ip.dst', 'tcp.dstport', 'frame.comment');
        expect(inRows).toHaveLength(2);
        const [ifname, dst, dport, comment] = inRows[0]!.split('\t');
        expect([ifname, dst, dport]).toEqual(['cli0', VIP, '80']);
        expect(comment).toMatch(/^#1 conn #0 client→server {2}in cli0/);
        expect(comment).toContain('schedule');
        expect(comment).toContain('changed dst 192.168.10.110 → 10.0.0.17, dport 80 → 8080');
        expect(inRows[1]).toMatch(/drop\s+non-syn-no-conn/);
        const outRows = tshark(join(dir, 'srv0-out.pcapng'), 'ip.dst', 'tcp.dstport', 'frame.comment');
        expect(outRows).toHaveLength(1);
        expect(outRows[0]).toMatch(/^10\.0\.0\.17\t8080\t#1 conn #0/);
        const reply = tshark(join(dir, 'cli0-out.pcapng'), 'ip.src', 'tcp.srcport', 'frame.comment');
        expect(reply[0]).toMatch(/^192\.168\.10\.110\t80\t#2 conn #0 server→client/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a PcapngWriter file with several interfaces is valid for tshark', () => {
      const dir = mkdtempSync(join(tmpdir(), 'uvs-pcap-'));
      try {
        const file = join(dir, 'x.pcapng');
        const w = new PcapngWriter(file);
        w.write('a', 1000, build({ saddr: '1.1.1.1', daddr: '2.2.2.2' }), 'first');
        w.write('b', 1001.5, build({ saddr: '3.3.3.3', daddr: '4.4.4.4', payload: 'abc' }), 'second, with ünïcode');
        w.write('a', 1002, build({ saddr: '5.5.5.5', daddr: '6.6.6.6' }));
        w.close();
        expect(tshark(file, 'frame.interface_name', 'ip.src', 'frame.comment')).toEqual([
          'a\t1.1.1.1\tfirst', 'b\t3.3.3.3\tsecond, with ünïcode', 'a\t5.5.5.5\t',
        ]);
        expect(readCapture(new Uint8Array(readFileSync(file))).map((f) => f.timeMs)).toEqual([1000, 1001.5, 1002]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

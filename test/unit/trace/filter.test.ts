import { describe, expect, it } from 'vitest';
import { compileFilter, FilterError, MatchView } from '../../../src/trace/filter.js';
import { build, arp } from '../../helpers/frames.js';

const view = (b: Uint8Array) => MatchView.of(b);
const synToVip = view(build({ saddr: '192.168.10.6', daddr: '192.168.10.110', sport: 40000, dport: 80 }));
const udpDns = view(build({ proto: 17, saddr: '10.0.0.7', daddr: '10.0.0.53', sport: 5353, dport: 53 }));
const ping = view(build({ proto: 1, saddr: '192.168.10.6', daddr: '192.168.10.100' }));
const arpReq = view(arp(1, '02:00:00:00:00:aa', '192.168.10.6', '192.168.10.110'));

const m = (expr: string, v = synToVip) => compileFilter(expr)(v);

describe('trace filter', () => {
  it('empty matches everything', () => {
    for (const v of [synToVip, udpDns, ping, arpReq]) expect(compileFilter('')(v)).toBe(true);
    expect(compileFilter(undefined)(arpReq)).toBe(true);
  });

  it('host / src host / dst host', () => {
    expect(m('host 192.168.10.6')).toBe(true);
    expect(m('host 192.168.10.110')).toBe(true);
    expect(m('host 10.0.0.7')).toBe(false);
    expect(m('src host 192.168.10.6')).toBe(true);
    expect(m('dst host 192.168.10.6')).toBe(false);
    expect(m('dst 192.168.10.110')).toBe(true); // host implied after src/dst
    expect(m('host 192.168.10.110', arpReq)).toBe(true); // ARP target address
    expect(m('src host 192.168.10.110', arpReq)).toBe(false);
  });

  it('net, port, src port, dst port', () => {
    expect(m('net 192.168.10.0/24')).toBe(true);
    expect(m('dst net 10.0.0.0/8')).toBe(false);
    expect(m('port 80')).toBe(true);
    expect(m('port 40000')).toBe(true);
    expect(m('src port 80')).toBe(false);
    expect(m('dst port 80')).toBe(true);
    expect(m('port 53', udpDns)).toBe(true);
    expect(m('port 80', ping)).toBe(false);
  });

  it('protocols, with qualifiers (tcp port 80)', () => {
    expect(m('tcp')).toBe(true);
    expect(m('udp')).toBe(false);
    expect(m('udp', udpDns)).toBe(true);
    expect(m('icmp', ping)).toBe(true);
    expect(m('arp', arpReq)).toBe(true);
    expect(m('arp')).toBe(false);
    expect(m('tcp port 80')).toBe(true);
    expect(m('udp port 80')).toBe(false);
    expect(m('udp dst port 53', udpDns)).toBe(true);
  });

  it('IPIP: host matches the outer and the inner addresses, port the inner ports', () => {
    const inner = build({ saddr: '192.168.10.6', daddr: '10.0.0.100', sport: 40000, dport: 80 });
    const f = new Uint8Array(inner.length + 20);
    f.set(inner.subarray(0, 14), 0);
    f.set([0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 4, 0, 0, 10, 0, 0, 8, 10, 0, 0, 17], 14);
    f.set(inner.subarray(14), 34);
    const v = view(f);
    expect(m('host 10.0.0.17', v)).toBe(true);
    expect(m('src host 192.168.10.6 and port 80 and tcp', v)).toBe(true);
  });

  it('GUE and GRE (as the TUN forwarder builds them): host matches the outer and the inner addresses, port the inner ports; plain UDP stays UDP', async () => {
    const { memLab, tcpSvc, svcOpts, destOpts, ROUTER_MAC, DIR1_MAC } = await import('../../helpers/lab-mem.js');
    for (const [type, port] of [[1, 6080], [2, 0]] as const) {
      const l = memLab({ gateway: '10.0.0.200' });
      l.cmd({ cmd: 'add-service', svc: tcpSvc('10.0.0.100', 80), opts: svcOpts('rr') });
      l.cmd({ cmd: 'add-server', svc: tcpSvc('10.0.0.100', 80), dest: { addr: '10.0.0.17', port: 80 }, opts: { ...destOpts(2), tunType: type, tunPort: port, tunFlags: 1 } });
      l.p1.inject(build({ srcMac: ROUTER_MAC, dstMac: DIR1_MAC, saddr: '192.168.10.6', daddr: '10.0.0.100', sport: 40000, dport: 80 }));
      l.run();
      const v = view(l.p1.takeSent()[0]!.frame);
      expect(m('host 10.0.0.17', v)).toBe(true);
      expect(m('src host 192.168.10.6 and port 80 and tcp', v)).toBe(true);
      expect(m('udp', v)).toBe(false);
    }
    expect(m('udp and port 53', udpDns)).toBe(true);
  });

  it('and / or / not / parentheses, with precedence and symbols', () => {
    expect(m('tcp and port 80')).toBe(true);
    expect(m('udp or port 80')).toBe(true);
    expect(m('not tcp')).toBe(false);
    expect(m('! udp')).toBe(true);
    expect(m('udp or tcp and port 81')).toBe(false); // and binds tighter
    expect(m('(udp or tcp) and not port 81')).toBe(true);
    expect(m('host 10.0.0.7 || (host 192.168.10.6 && dst port 80)')).toBe(true);
    expect(m('NOT UDP AND HOST 192.168.10.6')).toBe(true);
  });

  it('parse errors say what is wrong and where', () => {
    const err = (e: string) => { try { compileFilter(e); return ''; } catch (x) { expect(x).toBeInstanceOf(FilterError); return (x as Error).message; } };
    expect(err('host')).toMatch(/"host" needs a value/);
    expect(err('host 300.1.1.1')).toMatch(/"300\.1\.1\.1" is not an IPv4 address/);
    expect(err('port http')).toMatch(/"http" is not a port number/);
    expect(err('port 70000')).toMatch(/not a port number/);
    expect(err('tcp and')).toMatch(/ends too early/);
    expect(err('(tcp')).toMatch(/expected "\)"/);
    expect(err('tcp)')).toMatch(/unexpected "\)" at position 4/);
    expect(err('frobnicate')).toMatch(/unknown word "frobnicate".*at position 1/);
    expect(err('net 10.0.0.0')).toMatch(/not a network/);
  });
});

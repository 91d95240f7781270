import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { ConnSnap, DestSnap, ServiceSnap } from '../../../src/control/types.js';
import {
  FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
  SVC_F_SCHED1, SVC_F_SCHED2, type FwdMethod,
} from '../../../src/model/constants.js';
import {
  buildResolver, cmpServices, formatConnections, formatDaemons, formatLaddrs, formatListAll, formatOneService,
  formatSave, formatTimeouts, largenum, NO_FORMAT, qsortGlibc, ServicesDb, type ListFormat,
} from '../../../src/cli/ipvsadm/format.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../fixtures/ipvsadm/${name}`, import.meta.url), 'utf8');

const zeroStats = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const zeroRates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function dest(addr: string, port: number, over: Partial<DestSnap> = {}): DestSnap {
  return {
    addr, port, fwd: FWD_DROUTE as FwdMethod, weight: 1, uThreshold: 0, lThreshold: 0, activeConns: 0, inactConns: 0,
    persistConns: 0, tunType: 0, tunPort: 0, tunFlags: 0, stats: { ...zeroStats }, rates: { ...zeroRates }, ...over,
  };
}

function service(addr: string, port: number, over: Partial<ServiceSnap> = {}): ServiceSnap {
  return {
    protocol: IPPROTO_TCP, af: 2, addr, port, fwmark: 0, sched: 'wlc', flags: 0, timeout: 0,
    netmask: '255.255.255.255', pe: '', dests: [], laddrs: [], stats: { ...zeroStats }, rates: { ...zeroRates }, ...over,
  };
}

/** The reference's §6.4 example, dests in kernel order (last added first). */
function example(): ServiceSnap {
  return service('192.168.1.100', 80, {
    stats: { conns: 470, inpkts: 5800, outpkts: 0, inbytes: 379000, outbytes: 0 },
    rates: { cps: 4, inpps: 47, outpps: 0, inbps: 3600, outbps: 0 },
    dests: [
      dest('10.0.0.2', 80, {
        weight: 3, activeConns: 6, inactConns: 11,
        stats: { conns: 350, inpkts: 4300, outpkts: 0, inbytes: 281000, outbytes: 0 },
        rates: { cps: 3, inpps: 35, outpps: 0, inbps: 2700, outbps: 0 },
      }),
      dest('10.0.0.1', 80, {
        weight: 1, activeConns: 2, inactConns: 5,
        stats: { conns: 120, inpkts: 1500, outpkts: 0, inbytes: 98000, outbytes: 0 },
        rates: { cps: 1, inpps: 12, outpps: 0, inbps: 900, outbps: 0 },
      }),
    ],
  });
}

const info = { version: '1.2.1', connTabSize: 4096, conns: 0, stats: zeroStats, rates: zeroRates };
const fmt = (over: Partial<ListFormat> = {}): ListFormat => ({ ...NO_FORMAT, numeric: true, ...over });

describe('golden listings (reference §6.4, byte for byte)', () => {
  test('-Ln', () => {
    expect(formatListAll(info, [example()], fmt())).toBe(fixture('ln.txt'));
  });
  test('-Ln --stats', () => {
    expect(formatListAll(info, [example()], fmt({ stats: true }))).toBe(fixture('ln-stats.txt'));
  });
  test('-Ln --rate', () => {
    expect(formatListAll(info, [example()], fmt({ rate: true }))).toBe(fixture('ln-rate.txt'));
  });
  test('-Lnc', () => {
    const c = (caddr: string, cport: number, daddr: string, state: string, expires: number): ConnSnap => ({
      protocol: IPPROTO_TCP, caddr, cport, vaddr: '192.168.1.100', vport: 80, daddr, dport: 80, laddr: '', lport: 0,
      state, expires, template: false, fwd: FWD_DROUTE,
    });
    const conns = [
      c('203.0.113.7', 51234, '10.0.0.2', 'ESTABLISHED', 899),
      c('203.0.113.9', 40112, '10.0.0.1', 'FIN_WAIT', 62),
      c('198.51.100.23', 33001, '10.0.0.2', 'TIME_WAIT', 118),
    ];
    expect(formatConnections(conns, { numeric: true, persistentConn: false })).toBe(fixture('lnc.txt'));
  });
  test('-S -n', () => {
    expect(formatSave([example()], true)).toBe(fixture('save-n.txt'));
  });
  test('trailing spaces from %-10u are kept', () => {
    const line = formatListAll(info, [example()], fmt()).split('\n')[4]!;
    expect(line).toBe('  -> 10.0.0.1:80                  Route   1      2          5         ');
  });
});

describe('other listing modes', () => {
  test('persistent service line, mask, ops and scheduler flags', () => {
    const s = service('192.168.1.100', 443, { flags: SVC_F_PERSISTENT, timeout: 360, netmask: '255.255.255.0' });
    expect(formatOneService(s, fmt()).split('\n')[2]).toBe('TCP  192.168.1.100:443 wlc persistent 360 mask 255.255.255.0');
    expect(formatSave([s], true)).toBe('-A -t 192.168.1.100:443 -s wlc -p 360 -M 255.255.255.0\n');
    const u = service('10.1.1.1', 53, { protocol: IPPROTO_UDP, sched: 'sh', flags: SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_ONEPACKET });
    expect(formatOneService(u, fmt()).split('\n')[2]).toBe('UDP  10.1.1.1:53 sh (sh-fallback,sh-port) ops');
    expect(formatSave([u], true)).toBe('-A -u 10.1.1.1:53 -s sh -o -b sh-fallback,sh-port\n');
  });

  test('--proxy-protocol: " ppv2" on the service line (DPVS ipvsadm), "--proxy-protocol v2" when saved', () => {
    const s = service('192.0.2.40', 80, { sched: 'rr', proxyProtocol: 2 });
    expect(formatOneService(s, fmt()).split('\n')[2]).toBe('TCP  192.0.2.40:80 rr ppv2');
    expect(formatSave([s], true)).toBe('-A -t 192.0.2.40:80 -s rr --proxy-protocol v2\n');
    const p = service('192.0.2.40', 80, { sched: 'rr', flags: SVC_F_PERSISTENT, timeout: 60, proxyProtocol: 1 });
    expect(formatOneService(p, fmt()).split('\n')[2]).toBe('TCP  192.0.2.40:80 rr persistent 60 ppv1');
    expect(formatSave([service('192.0.2.40', 80, { sched: 'rr' })], true)).toBe('-A -t 192.0.2.40:80 -s rr\n');
  });

  test('-L -t prints no header', () => {
    const out = formatOneService(example(), fmt());
    expect(out.startsWith('Prot LocalAddress:Port Scheduler Flags\n')).toBe(true);
  });

  test('--thresholds, --persistent-conn, --tun-info', () => {
    const s = service('1.2.3.4', 80, {
      dests: [dest('10.0.0.1', 80, { uThreshold: 100, lThreshold: 50, activeConns: 3, inactConns: 4, persistConns: 2, weight: 2 })],
    });
    expect(formatOneService(s, fmt({ thresholds: true }))).toBe(
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n'
      + '  -> RemoteAddress:Port\n'
      + 'TCP  1.2.3.4:80 wlc\n'
      + '  -> 10.0.0.1:80                  100        50         3          4         \n');
    expect(formatOneService(s, fmt({ persistentConn: true }))).toBe(
      'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n'
      + '  -> RemoteAddress:Port\n'
      + 'TCP  1.2.3.4:80 wlc\n'
      + '  -> 10.0.0.1:80                  2         2           3          4         \n');
    const t = service('1.2.3.4', 80, {
      dests: [dest('10.0.0.1', 80, { fwd: FWD_TUNNEL }), dest('10.0.0.2', 80, { fwd: FWD_MASQ })],
    });
    expect(formatOneService(t, fmt({ tunInfo: true }))).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n'
      + '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n'
      + 'TCP  1.2.3.4:80 wlc\n'
      + '  -> 10.0.0.1:80                  Tunnel  ipip          1      0          0         \n'
      + '  -> 10.0.0.2:80                  Masq    n/a           1      0          0         \n');
  });

  test('FULLNAT dests list as FullNat, save as -b, local addresses saved as -P lines', () => {
    const s = service('1.2.3.4', 80, { sched: 'rr', dests: [dest('10.0.0.1', 8080, { fwd: FWD_FULLNAT })], laddrs: ['10.9.0.1', '10.9.0.2'] });
    expect(formatOneService(s, fmt()).split('\n')[3]).toBe('  -> 10.0.0.1:8080                FullNat 1      0          0         ');
    expect(formatSave([s], true)).toBe(
      '-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -b -w 1\n-P -t 1.2.3.4:80 -z 10.9.0.1\n-P -t 1.2.3.4:80 -z 10.9.0.2\n');
  });

  test('-G in the Alibaba layout', () => {
    const s = service('1.2.3.4', 80, { laddrs: ['10.9.0.1'] });
    expect(formatLaddrs([s])).toBe(
      'VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n'
      + '1.2.3.4:80           1        \n'
      + '                              10.9.0.1             0          0         \n');
    expect(formatLaddrs([])).toBe('');
  });

  test('fwmark services and tunnel save lines', () => {
    const f = service('', 0, { fwmark: 7, protocol: 0, sched: 'rr', dests: [dest('10.0.4.11', 0)] });
    expect(formatListAll(info, [f], fmt()).split('\n').slice(3, 5)).toEqual([
      'FWM  7 rr',
      '  -> 10.0.4.11:0                  Route   1      0          0         ',
    ]);
    expect(formatSave([f], true)).toBe('-A -f 7 -s rr\n-a -f 7 -r 10.0.4.11:0 -g -w 1\n');
    const t = service('1.2.3.4', 80, { dests: [dest('10.0.0.1', 80, { fwd: FWD_TUNNEL })] });
    expect(formatSave([t], true)).toContain('-a -t 1.2.3.4:80 -r 10.0.0.1:80 -i -w 1 --tun-type ipip\n');
  });

  test('--timeout and --daemon', () => {
    expect(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 })).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
    expect(formatDaemons([])).toBe('');
    expect(formatDaemons([{ state: 'master', mcastIfn: 'eth0', syncid: 0, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 }]))
      .toBe('master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
  });

  test('connections: templates, fwmark templates, UDP, long expiry', () => {
    const conns: ConnSnap[] = [
      { protocol: IPPROTO_TCP, caddr: '203.0.113.0', cport: 0, vaddr: '192.168.1.100', vport: 443, daddr: '10.0.0.2', dport: 443, laddr: '', lport: 0, state: 'NONE', expires: 359, template: true, fwd: FWD_DROUTE },
      { protocol: 0, caddr: '203.0.113.5', cport: 0, vaddr: '0.0.0.7', vport: 0, daddr: '10.0.0.2', dport: 0, laddr: '', lport: 0, state: 'ASSURED', expires: 6000, template: true, fwd: FWD_DROUTE },
      { protocol: IPPROTO_UDP, caddr: '203.0.113.5', cport: 5353, vaddr: '10.1.1.1', vport: 53, daddr: '10.0.0.3', dport: 53, laddr: '', lport: 0, state: 'UDP', expires: 5, template: false, fwd: FWD_MASQ },
    ];
    expect(formatConnections(conns, { numeric: true, persistentConn: false }).split('\n').slice(2, 5)).toEqual([
      'TCP 05:59  NONE        203.0.113.0:0      192.168.1.100:443  10.0.0.2:443',
      'IP  100:00 ASSURED     203.0.113.5:0      0.0.0.7:0          10.0.0.2:0',
      'UDP 00:05  UDP         203.0.113.5:5353   10.1.1.1:53        10.0.0.3:53',
    ]);
    expect(formatConnections([], { numeric: true, persistentConn: true })).toBe(
      'IPVS connection entries\npro expire state       source             virtual            destination        pe name          pe_data\n');
  });
});

describe('numbers and sorting', () => {
  test('print_largenum', () => {
    expect(largenum(123456789, false)).toBe('  123456K');
    expect(largenum(123456789, true)).toBe(' 123456789');
    expect(largenum(99999999, false)).toBe(' 99999999');
    expect(largenum(12345678901, false)).toBe('   12345M');
    expect(largenum(123456789012345, false)).toBe('     123T');
    expect(largenum(5, true)).toBe('        5');
  });

  test('signed 32-bit difference quirk: 200.0.0.1 sorts before 10.0.0.1', () => {
    const s = service('1.2.3.4', 80, { dests: [dest('10.0.0.1', 80), dest('200.0.0.1', 80)] });
    const lines = formatOneService(s, fmt()).split('\n');
    expect(lines[3]!.startsWith('  -> 200.0.0.1:80')).toBe(true);
    expect(lines[4]!.startsWith('  -> 10.0.0.1:80')).toBe(true);
    const svcs = [service('10.0.0.1', 80), service('200.0.0.1', 80), service('10.0.0.1', 22)];
    expect(qsortGlibc(svcs, cmpServices).map((x) => `${x.addr}:${x.port}`)).toEqual(['200.0.0.1:80', '10.0.0.1:22', '10.0.0.1:80']);
  });

  test('--nosort keeps kernel order', () => {
    const out = formatOneService(example(), fmt({ nosort: true })).split('\n');
    expect(out[3]!.startsWith('  -> 10.0.0.2:80')).toBe(true);
  });
});

describe('name resolution without -n', () => {
  const services = ServicesDb.parse('http\t\t80/tcp\t\twww\t# WorldWideWeb HTTP\nhttp 80/udp\ndomain 53/udp\n');
  test('service and host names, truncation to 33/28 chars', async () => {
    const names = await buildResolver(['192.168.1.100', '10.0.0.1', '10.0.0.2'], services, async (a) =>
      (a === '10.0.0.1' ? 'a-very-long-real-server-name.example.com' : a === '192.168.1.100' ? 'www.example.com' : undefined));
    const out = formatListAll(info, [example()], { ...NO_FORMAT, names }).split('\n');
    expect(out[3]).toBe('TCP  www.example.com:http wlc');
    expect(out[4]).toBe('  -> a-very-long-real-server-name Route   1      2          5         ');
    expect(out[5]).toBe('  -> 10.0.0.2:http                Route   3      6          11        ');
    expect(formatSave([example()], false, names).split('\n')[0]).toBe('-A -t www.example.com:http -s wlc');
  });
  test('/etc/services lookups by protocol', () => {
    expect(services.portOf('www', IPPROTO_TCP)).toBe(80);
    expect(services.portOf('domain', IPPROTO_TCP)).toBe(-1);
    expect(services.nameOf(53, IPPROTO_UDP)).toBe('domain');
  });
});

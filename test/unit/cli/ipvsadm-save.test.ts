import { describe, expect, test } from 'vitest';
import type { Command, DestSnap, ServiceSnap } from '../../../src/control/types.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, SVC_F_PERSISTENT, type FwdMethod } from '../../../src/model/constants.js';
import { parseRestore, saveText, tokenizeLine } from '../../../src/cli/ipvsadm/save.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';

const deps = { services: ServicesDb.parse('http 80/tcp www\n'), lookupHost: async () => null };
const zs = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const zr = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function dest(addr: string, port: number, fwd: FwdMethod, weight: number): DestSnap {
  return { addr, port, fwd, weight, uThreshold: 0, lThreshold: 0, activeConns: 0, inactConns: 0, persistConns: 0, tunType: 0, tunPort: 0, tunFlags: 0, stats: zs, rates: zr };
}
function svc(protocol: number, addr: string, port: number, over: Partial<ServiceSnap>): ServiceSnap {
  return { protocol, af: 2, addr, port, fwmark: 0, sched: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', dests: [], laddrs: [], stats: zs, rates: zr, ...over };
}

const table: ServiceSnap[] = [
  svc(IPPROTO_TCP, '192.0.2.10', 80, { sched: 'wrr', dests: [dest('10.0.1.12', 8080, FWD_MASQ, 1), dest('10.0.1.11', 8080, FWD_MASQ, 3)] }),
  svc(IPPROTO_UDP, '192.0.2.20', 53, { sched: 'sh', flags: SVC_F_PERSISTENT, timeout: 120, netmask: '255.255.255.0', dests: [dest('10.0.2.11', 53, FWD_DROUTE, 1)] }),
  svc(0, '', 0, { fwmark: 7, sched: 'rr', dests: [dest('10.0.4.11', 0, FWD_DROUTE, 1)] }),
  svc(IPPROTO_TCP, '192.0.2.30', 443, { dests: [dest('10.0.3.11', 443, FWD_TUNNEL, 2)] }),
  svc(IPPROTO_TCP, '192.0.2.40', 80, { sched: 'rr', dests: [dest('10.0.5.11', 8080, FWD_FULLNAT, 1)], laddrs: ['10.0.9.1', '10.0.9.2'] }),
];

describe('save / restore', () => {
  test('round trip: -S -n then parseRestore gives the commands that rebuild the table', async () => {
    const text = saveText(table, true);
    const r = await parseRestore(text, deps);
    if ('error' in r) throw new Error(r.error);
    const tcp = (addr: string, port: number) => ({ protocol: 6, af: 2, addr, port, fwmark: 0 });
    const dopts = (fwd: FwdMethod, weight: number) => ({ fwd, weight, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 });
    const expected: Command[] = [
      { cmd: 'add-service', svc: tcp('192.0.2.10', 80), opts: { sched: 'wrr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } },
      { cmd: 'add-server', svc: tcp('192.0.2.10', 80), dest: { addr: '10.0.1.11', port: 8080 }, opts: dopts(FWD_MASQ, 3) },
      { cmd: 'add-server', svc: tcp('192.0.2.10', 80), dest: { addr: '10.0.1.12', port: 8080 }, opts: dopts(FWD_MASQ, 1) },
      { cmd: 'add-service', svc: tcp('192.0.2.30', 443), opts: { sched: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } },
      { cmd: 'add-server', svc: tcp('192.0.2.30', 443), dest: { addr: '10.0.3.11', port: 443 }, opts: dopts(FWD_TUNNEL, 2) },
      { cmd: 'add-service', svc: tcp('192.0.2.40', 80), opts: { sched: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } },
      { cmd: 'add-server', svc: tcp('192.0.2.40', 80), dest: { addr: '10.0.5.11', port: 8080 }, opts: dopts(FWD_FULLNAT, 1) },
      { cmd: 'add-laddr', svc: tcp('192.0.2.40', 80), laddr: '10.0.9.1' },
      { cmd: 'add-laddr', svc: tcp('192.0.2.40', 80), laddr: '10.0.9.2' },
      { cmd: 'add-service', svc: { protocol: 17, af: 2, addr: '192.0.2.20', port: 53, fwmark: 0 }, opts: { sched: 'sh', flags: SVC_F_PERSISTENT, timeout: 120, netmask: '255.255.255.0', pe: '' } },
      { cmd: 'add-server', svc: { protocol: 17, af: 2, addr: '192.0.2.20', port: 53, fwmark: 0 }, dest: { addr: '10.0.2.11', port: 53 }, opts: dopts(FWD_DROUTE, 1) },
      // fwmark services sort after address services (fwmark 0 < 7)
      { cmd: 'add-service', svc: { protocol: 0, af: 2, addr: '', port: 0, fwmark: 7 }, opts: { sched: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } },
      { cmd: 'add-server', svc: { protocol: 0, af: 2, addr: '', port: 0, fwmark: 7 }, dest: { addr: '10.0.4.11', port: 0 }, opts: dopts(FWD_DROUTE, 1) },
    ];
    expect(r.commands).toEqual(expected);
    expect(r.warnings).toEqual([]);
  });

  test('a hand-written ipvsadm save file (comments, leading ipvsadm, newer trailing options) restores', async () => {
    const text = [
      '# /etc/sysconfig/ipvsadm',
      '-A -t 192.0.2.10:80 -s wrr',
      '-a -t 192.0.2.10:80 -r 10.0.1.11:8080 -m -w 3   # backend 1',
      '',
      '   ',
      'ipvsadm -a -t 192.0.2.10:80 -r 10.0.1.12:8080 -m -w 1 -x 0 -y 0',
      '-A -u 192.0.2.20:53 -s sh -p 120 -M 255.255.255.0',
      '-a -u 192.0.2.20:53 -r 10.0.2.11:53 -g -w 1 --tun-type ipip',
      'ipvsadm -a -t 192.0.2.30:443 -r 10.0.3.11:443 -i -w 1 --tun-type ipip',
      '-A -t 192.0.2.50:80 -s rr -j disable',
    ].join('\n');
    const r = await parseRestore(text, deps);
    if ('error' in r) throw new Error(`${r.line}: ${r.error}`);
    expect(r.commands.map((c) => c.cmd)).toEqual(['add-service', 'add-server', 'add-server', 'add-service', 'add-server', 'add-server', 'add-service']);
    expect(r.commands[2]).toMatchObject({ dest: { addr: '10.0.1.12', port: 8080 }, opts: { weight: 1, uThreshold: 0, lThreshold: 0 } });
    expect(r.commands[5]).toMatchObject({ opts: { fwd: FWD_TUNNEL, tunType: 0 } });
    expect(r.warnings).toEqual([
      "line 8: ignoring `--tun-type ipip' on a non-tunnel real server",
    ]);
    // The Alibaba fork's trailing `-j disable` is understood (the SYN proxy, off).
    expect(r.commands[6]).toMatchObject({ cmd: 'add-service', opts: { sched: 'rr' } });
    expect((r.commands[6] as { opts: { synproxy?: boolean } }).opts.synproxy).toBeUndefined();
  });

  test('one bad line: error naming the line, no commands', async () => {
    const text = '-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 10.0.1.11:8080 -m -w 99999\n-C\n';
    expect(await parseRestore(text, deps)).toEqual({ error: 'illegal weight specified', line: 2, exitCode: 2 });
    expect(await parseRestore('-L -n\n', deps)).toMatchObject({ line: 1, exitCode: 2 });
    expect(await parseRestore('-A -t 1.2.3.4:80 -A\n', deps)).toEqual({ error: "invalid option `-A'", line: 1, exitCode: 2 });
  });

  test('tokenizer', () => {
    expect(tokenizeLine('ipvsadm  -A\t-t 1.2.3.4:80 # c')).toEqual(['-A', '-t', '1.2.3.4:80']);
    expect(tokenizeLine('/sbin/ipvsadm -C')).toEqual(['-C']);
    expect(tokenizeLine('# only a comment')).toEqual([]);
  });
});

describe('save / restore of -j enable (SYN proxy)', () => {
  test('a SYN-proxy service is saved with -j enable, as the Alibaba fork\'s ipvsadm, and restores with it', async () => {
    const text = saveText([svc(IPPROTO_TCP, '192.0.2.41', 80, { sched: 'wlc', synproxy: true, dests: [dest('10.0.5.11', 8080, FWD_FULLNAT, 1)] })], true);
    expect(text).toContain('-A -t 192.0.2.41:80 -s wlc -j enable\n');
    const r = await parseRestore(text, deps);
    if ('error' in r) throw new Error(r.error);
    expect(r.commands[0]).toMatchObject({ cmd: 'add-service', opts: { sched: 'wlc', synproxy: true } });
  });
});

describe('save / restore of --proxy-protocol', () => {
  test('a service saved with --proxy-protocol v1 restores with it', async () => {
    const text = saveText([svc(IPPROTO_TCP, '192.0.2.40', 80, { sched: 'rr', proxyProtocol: 1, dests: [dest('10.0.5.11', 8080, FWD_FULLNAT, 1)] })], true);
    expect(text).toContain('-A -t 192.0.2.40:80 -s rr --proxy-protocol v1\n');
    const r = await parseRestore(text, deps);
    if ('error' in r) throw new Error(r.error);
    expect(r.commands[0]).toMatchObject({ cmd: 'add-service', opts: { sched: 'rr', proxyProtocol: 1 } });
  });
});

import { describe, expect, test } from 'vitest';
import { parseArgs, type ParseResult } from '../../../src/cli/ipvsadm/parse.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2 } from '../../../src/model/constants.js';

const services = ServicesDb.parse('http 80/tcp www\nhttp 80/udp\nhttps 443/tcp\ndomain 53/udp\n');
const hosts: Record<string, string> = { 'vip.example': '192.0.2.10', 'rs1.example': '10.0.1.11' };
const deps = { services, lookupHost: async (n: string) => hosts[n] ?? null };
const parse = (line: string | string[]): Promise<ParseResult> =>
  parseArgs(Array.isArray(line) ? line : line.split(' ').filter((x) => x), deps);

async function cmd(line: string) {
  const r = await parse(line);
  if (r.kind !== 'command') throw new Error(`expected a command, got ${JSON.stringify(r)}`);
  return r.command;
}

async function err(line: string | string[]) {
  const r = await parse(line);
  if (r.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return [r.message, r.exitCode] as const;
}

describe('commands and defaults', () => {
  test('-A defaults: wlc, not persistent', async () => {
    expect(await cmd('-A -t 192.0.2.10:80')).toEqual({
      cmd: 'add-service', svc: { protocol: 6, af: 2, addr: '192.0.2.10', port: 80, fwmark: 0 },
      opts: { sched: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' },
    });
  });
  test('-E resets omitted fields (wlc, not persistent)', async () => {
    const c = await cmd('-E -t 192.0.2.10:80');
    expect(c).toMatchObject({ cmd: 'edit-service', opts: { sched: 'wlc', flags: 0, timeout: 0 } });
  });
  test('-p bare = 360; -p N; --persistent=N; -p followed by an option', async () => {
    expect(await cmd('-A -t 1.2.3.4:80 -p')).toMatchObject({ opts: { flags: SVC_F_PERSISTENT, timeout: 360 } });
    expect(await cmd('-A -t 1.2.3.4:80 -p 120 -s rr')).toMatchObject({ opts: { sched: 'rr', timeout: 120 } });
    expect(await cmd('-A -t 1.2.3.4:80 -p -s rr')).toMatchObject({ opts: { sched: 'rr', timeout: 360 } });
    expect(await cmd('-A -t 1.2.3.4:80 --persistent=90')).toMatchObject({ opts: { timeout: 90 } });
    expect(await cmd('-A -t 1.2.3.4:80 -p600')).toMatchObject({ opts: { timeout: 600 } });
    expect(await cmd('-A -u 192.0.2.20:53 -s sh -p 120 -M 255.255.255.0')).toMatchObject({
      svc: { protocol: 17, port: 53 }, opts: { sched: 'sh', netmask: '255.255.255.0', timeout: 120 },
    });
  });
  test('-a defaults: weight 1, DR, dest port = service port', async () => {
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1')).toEqual({
      cmd: 'add-server', svc: { protocol: 6, af: 2, addr: '1.2.3.4', port: 80, fwmark: 0 }, dest: { addr: '10.0.0.1', port: 80 },
      opts: { fwd: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 0, tunPort: 0, tunFlags: 0 },
    });
  });
  test('DR/TUN force the service port; NAT and FULLNAT map ports', async () => {
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1:8080')).toMatchObject({ dest: { port: 80 } });
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -i')).toMatchObject({ dest: { port: 80 }, opts: { fwd: FWD_TUNNEL } });
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -m -w 3')).toMatchObject({ dest: { port: 8080 }, opts: { fwd: FWD_MASQ, weight: 3 } });
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1:8080 -b')).toMatchObject({ dest: { port: 8080 }, opts: { fwd: FWD_FULLNAT } });
    expect(await cmd('-e -t 1.2.3.4:80 -r 10.0.0.1:8080 --fullnat -w 0')).toMatchObject({ cmd: 'edit-server', opts: { fwd: FWD_FULLNAT, weight: 0 } });
  });
  test('-e resets weight to 1 and method to DR', async () => {
    expect(await cmd('-e -t 1.2.3.4:80 -r 10.0.0.1')).toMatchObject({ opts: { fwd: FWD_DROUTE, weight: 1 } });
  });
  test('-D -C -d -Z --set', async () => {
    expect(await cmd('-D -t 1.2.3.4:80')).toEqual({ cmd: 'delete-service', svc: { protocol: 6, af: 2, addr: '1.2.3.4', port: 80, fwmark: 0 } });
    expect(await cmd('-C')).toEqual({ cmd: 'clear' });
    expect(await cmd('--clear')).toEqual({ cmd: 'clear' });
    expect(await cmd('-d -t 1.2.3.4:80 -r 10.0.0.1:8080')).toMatchObject({ cmd: 'delete-server', dest: { addr: '10.0.0.1', port: 8080 } });
    expect(await cmd('-Z')).toEqual({ cmd: 'zero' });
    expect(await cmd('-Z -u 1.2.3.4:53')).toMatchObject({ cmd: 'zero', svc: { protocol: 17 } });
    expect(await cmd('--set 900 120 300')).toEqual({ cmd: 'set-timeouts', tcp: 900, tcpfin: 120, udp: 300 });
  });
  test('GUE and GRE tunnel dests (--tun-type, --tun-port, checksum flags) reach the daemon', async () => {
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gue --tun-port 6080 --tun-csum')).toMatchObject({
      cmd: 'add-server', opts: { fwd: 2, tunType: 1, tunPort: 6080, tunFlags: 1 },
    });
    expect(await cmd('-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gre')).toMatchObject({ cmd: 'add-server', opts: { fwd: 2, tunType: 2, tunFlags: 0 } });
  });
  test('--start-daemon / --stop-daemon: the sync daemon commands, ipvsadm defaults (mcast interface eth0, syncid 0)', async () => {
    expect(await cmd('--start-daemon master')).toEqual({ cmd: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth0', syncid: 0 } });
    expect(await cmd('--start-daemon backup --mcast-interface sync0 --syncid 7 --sync-maxlen 1200 --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 2')).toEqual({
      cmd: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'sync0', syncid: 7, maxlen: 1200, group: '239.1.2.3', port: 9000, ttl: 2 },
    });
    expect(await cmd('--stop-daemon backup')).toEqual({ cmd: 'stop-daemon', state: 'backup' });
  });
  test('fwmark services', async () => {
    expect(await cmd('-A -f 7 -s rr')).toMatchObject({ svc: { protocol: 0, addr: '', port: 0, fwmark: 7 } });
    expect(await cmd('-A -f 7 -o')).toMatchObject({ opts: { flags: SVC_F_ONEPACKET } });
    expect(await cmd('-a -f 7 -r 10.0.4.11 -g')).toMatchObject({ dest: { addr: '10.0.4.11', port: 0 } });
  });
  test('scheduler flags only for their scheduler', async () => {
    expect(await cmd('-A -t 1.2.3.4:80 -s mh -b mh-fallback,mh-port')).toMatchObject({ opts: { flags: SVC_F_SCHED1 | SVC_F_SCHED2 } });
    expect(await err('-A -t 1.2.3.4:80 -s rr -b sh-port')).toEqual(["incompatible scheduler flag `sh-port'", 2]);
    expect(await err('-A -t 1.2.3.4:80 -b sh-port')).toEqual(["incompatible scheduler flag `sh-port'", 2]);
    expect(await err('-A -t 1.2.3.4:80 -b bogus')).toEqual(["invalid scheduler flag `bogus'", 2]);
  });
  test('names: /etc/services ports and resolver hosts', async () => {
    expect(await cmd('-A -t vip.example:http')).toMatchObject({ svc: { addr: '192.0.2.10', port: 80 } });
    expect(await cmd('-a -t vip.example:www -r rs1.example:https -m')).toMatchObject({ dest: { addr: '10.0.1.11', port: 443 } });
    expect(await err('-A -t nowhere.example:80')).toEqual(['illegal virtual server address[:port] specified', 2]);
    expect(await err('-A -u 1.2.3.4:https')).toEqual(['illegal virtual server address[:port] specified', 2]);
  });
  test('FULLNAT local addresses', async () => {
    expect(await cmd('-P -t 1.2.3.4:80 -z 10.9.0.1')).toEqual({ cmd: 'add-laddr', svc: { protocol: 6, af: 2, addr: '1.2.3.4', port: 80, fwmark: 0 }, laddr: '10.9.0.1' });
    expect(await cmd('--del-laddr -t 1.2.3.4:80 --laddr 10.9.0.1')).toMatchObject({ cmd: 'del-laddr', laddr: '10.9.0.1' });
    expect(await parse('-G')).toEqual({ kind: 'get-laddr' });
    expect(await parse('-G -t 1.2.3.4:80')).toMatchObject({ kind: 'get-laddr', service: { port: 80 } });
    expect(await err('-P -t 1.2.3.4:80')).toEqual(["You need to supply the 'laddr' option for the 'add-laddr' command", 2]);
  });
});

describe('listing options', () => {
  test('clustering and long forms', async () => {
    expect(await parse('-Ln')).toMatchObject({ kind: 'list', numeric: true, connections: false });
    expect(await parse('-Lnc')).toMatchObject({ kind: 'list', numeric: true, connections: true });
    expect(await parse('--list --numeric --stats --exact')).toMatchObject({ kind: 'list', stats: true, exact: true });
    expect(await parse('-l -n --rate --nosort --sort')).toMatchObject({ kind: 'list', rate: true, nosort: true });
    expect(await parse('-L -t 1.2.3.4:80')).toMatchObject({ kind: 'list', service: { addr: '1.2.3.4', port: 80 } });
    expect(await parse('-L --timeout')).toMatchObject({ kind: 'list', timeout: true });
    expect(await parseArgs([])).toMatchObject({ kind: 'list', numeric: false });
  });
  test('popt forms: clustered command+option, attached and = values, inet_aton addresses', async () => {
    expect(await cmd('-At 1.2.3.4:80')).toMatchObject({ cmd: 'add-service', svc: { addr: '1.2.3.4', port: 80 } });
    expect(await cmd('-At1.2.3.4:80 -srr')).toMatchObject({ svc: { port: 80 }, opts: { sched: 'rr' } });
    expect(await cmd('--add-service --tcp-service=1.2.3.4:80 --scheduler=rr')).toMatchObject({ opts: { sched: 'rr' } });
    expect(await cmd('-A -t 10.1:80')).toMatchObject({ svc: { addr: '10.0.0.1' } });
    // ipvsadm takes the real server's default port from the service parsed so far
    expect(await cmd('-a -r 10.0.0.1 -t 1.2.3.4:80 -m')).toMatchObject({ dest: { port: 0 } });
    expect(await cmd('-A -t 1.2.3.4:80 -- ')).toMatchObject({ cmd: 'add-service' });
    expect(await err('-A -t 1.2.3.4:80 -- -s')).toEqual(['unexpected argument -s', 2]);
  });
  test('-S, -R, -h, -v', async () => {
    expect(await parse('-S -n')).toEqual({ kind: 'save', numeric: true });
    expect(await parse('-Sn')).toEqual({ kind: 'save', numeric: true });
    expect(await parse('-R')).toEqual({ kind: 'restore' });
    expect(await parse('-h')).toEqual({ kind: 'help' });
    expect(await parse('--version')).toEqual({ kind: 'version' });
  });
});

describe('errors and exit codes (reference §6.3)', () => {
  const cases: Array<[string, string, number]> = [
    ['-A -t 300.1.1.1:80', 'illegal virtual server address[:port] specified', 2],
    ['-A -t 80', 'illegal virtual server address[:port] specified', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1:99999', 'illegal real server address[:port] specified', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w 70000', 'illegal weight specified', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w -1', 'illegal weight specified', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -x x', 'illegal u_threshold specified', 2],
    ['-A -t 1.2.3.4:80 -p 0', "invalid timeout value `0' specified", 2],
    ['-A -t 1.2.3.4:80 -p abc', "invalid timeout value `abc' specified", 2],
    ['-A -t 1.2.3.4:80 -p 2678401', "invalid timeout value `2678401' specified", 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w 1 -w 2', "multiple 'weight' options specified", 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -g -m', "multiple 'forwarding-method' options specified", 2],
    ['-A -t 1.2.3.4:80 -u 1.2.3.4:80', "multiple 'service-address' options specified", 2],
    ['-A -s rr', "You need to supply the 'service-address' option for the 'add-service' command", 2],
    ['-a -t 1.2.3.4:80', "You need to supply the 'real-server' option for the 'add-server' command", 2],
    ['-A -t 1.2.3.4:80 -w 3', "Illegal 'weight' option with the 'add-service' command", 2],
    ['-D -t 1.2.3.4:80 -s rr', "Illegal 'scheduler' option with the 'delete-service' command", 2],
    ['-C -n', "Illegal 'numeric' option with the 'flush' command", 2],
    ['-S -c', "Illegal 'connection' option with the 'save' command", 2],
    ['-L -c --timeout', "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2],
    ['-L -c -t 1.2.3.4:80', "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2],
    ['-L -c --stats', 'options conflicts in the list command', 2],
    ['-L --daemon --persistent-conn', 'options conflicts in the list command', 2],
    ['-A -t 1.2.3.4:0', 'Zero port specified for non-persistent service', 2],
    ['-E -t 1.2.3.4:0 -s rr', 'Zero port specified for non-persistent service', 2],
    ['-A -t 1.2.3.4:53 -o', 'One-Packet Scheduling is only for UDP virtual services', 2],
    ['--set 900 120', '--set option requires 3 timeout values', 2],
    ['--set 900 120 x', "invalid timeout value `x' specified", 2],
    ['--set 900 120 300 7', 'unexpected argument 7', 2],
    ['-L foo', 'unexpected argument foo', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 --tun-type ipip', 'Tunnel options conflict with forward method', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type vxlan', 'illegal tunnel type specified', 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gue', "You need to supply the 'tun-port' option for the 'gue' tunnel type", 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-port 6080', "Illegal 'tun-port' option with the 'ipip' tunnel type", 2],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gre --tun-csum --tun-nocsum', "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type", 2],
    ['-a -t 1.2.3.4:80 -r [2001:db8::1]:80 -m', 'Different address family is allowed only for tunneling servers', 2],
    ['--start-daemon primary', 'illegal start-daemon parameter specified', 2],
    ['-A -t 1.2.3.4:80 -6', '-6 used before -f\n', 2],
    ['-A -f 0', "invalid fwmark value `0' specified", 2],
    ['-A -t 1.2.3.4:80 -p -M 300.0.0.0', 'illegal virtual server persistent mask specified', 2],
    ['-A -t 1.2.3.4:80 -E', "invalid option `-E'", 2],
    ['-L -h', "invalid option `-h'", 2],
    // popt errors and a missing/unknown first option: exit 255
    ['', "Try `uvsadm -h' or 'uvsadm --help' for more information.", 255],
    ['-n -L', "Try `uvsadm -h' or 'uvsadm --help' for more information.", 255],
    ['--bogus', "Try `uvsadm -h' or 'uvsadm --help' for more information.", 255],
    ['foo', "Try `uvsadm -h' or 'uvsadm --help' for more information.", 255],
    ['-L --bogus', '--bogus: unknown option', 255],
    ['-A -t', '-t: missing argument', 255],
    ['-L --numeric=1', '--numeric=1: option does not take an argument', 255],
    // uvs cannot honour these yet: refused like a kernel refusal, nothing sent
    ['-A -t [2001:db8::1]:80', 'uvsadm: IPv6 virtual service is not supported by uvs yet', 255],
    ['-A -f 1 -6', 'uvsadm: IPv6 (-6) fwmark service is not supported by uvs yet', 255],
    ['-A -t 1.2.3.4:5060 -p --pe sip', "uvsadm: persistence engine 'sip' is not supported by uvs yet", 255],
  ];
  test.each(cases)('%s', async (line, message, code) => {
    if (line === '') {
      // no argv at all lists; an empty first option is the `Try` case
      expect(await parseArgs(['--'], deps)).toEqual({ kind: 'error', message, exitCode: code });
      return;
    }
    expect(await err(line)).toEqual([message, code]);
  });
});

describe('-j / --synproxy (Alibaba fork, DPVS)', () => {
  test('enable / disable on -A and -E; bad values, UDP and dest commands refused', async () => {
    expect(await cmd('-A -t 192.0.2.10:80 -s rr -j enable')).toMatchObject({ cmd: 'add-service', opts: { sched: 'rr', synproxy: true } });
    expect(await cmd('-E -t 192.0.2.10:80 --synproxy ENABLE')).toMatchObject({ cmd: 'edit-service', opts: { synproxy: true } });
    const off = await cmd('-E -t 192.0.2.10:80 -j disable');
    expect(off.cmd === 'edit-service' && off.opts.synproxy).toBeFalsy();
    expect((await err('-A -t 192.0.2.10:80 -j yes'))[0]).toContain('illegal synproxy option specified: yes');
    expect((await err('-A -u 192.0.2.10:53 -j enable'))[0]).toContain('only for TCP virtual services');
    expect((await err('-a -t 192.0.2.10:80 -r 10.0.0.7 -m -j enable'))[0]).toMatch(/illegal|not allowed|option/i);
  });
});

describe('--proxy-protocol (DPVS)', () => {
  test('v1 / v2 / disable on -A and -E; any case', async () => {
    expect(await cmd('-A -t 192.0.2.10:80 -s rr --proxy-protocol v2')).toMatchObject({ cmd: 'add-service', opts: { sched: 'rr', proxyProtocol: 2 } });
    expect(await cmd('-E -t 192.0.2.10:80 --proxy-protocol V1')).toMatchObject({ cmd: 'edit-service', opts: { proxyProtocol: 1 } });
    const off = await cmd('-E -t 192.0.2.10:80 --proxy-protocol disable');
    expect(off.cmd === 'edit-service' && off.opts.proxyProtocol).toBeFalsy();
    // -E without it turns it off, as every other omitted service option.
    const plain = await cmd('-E -t 192.0.2.10:80');
    expect(plain.cmd === 'edit-service' && plain.opts.proxyProtocol).toBeFalsy();
  });
  test('refusals: a bad value, the insecure variants, UDP services, non-service commands', async () => {
    expect((await err('-A -t 192.0.2.10:80 --proxy-protocol v3'))[0]).toContain('illegal proxy protocol specified: v3');
    const [m, code] = await err('-A -t 192.0.2.10:80 --proxy-protocol v2-insecure');
    expect(m).toContain('is not supported by uvs yet');
    expect(code).toBe(255);
    expect((await err('-A -u 192.0.2.10:53 --proxy-protocol v2'))[0]).toContain('the PROXY protocol for UDP services is not supported by uvs yet');
    expect((await err('-a -t 192.0.2.10:80 -r 10.0.0.7 -b --proxy-protocol v2'))[0]).toMatch(/illegal|not allowed|option/i);
  });
});

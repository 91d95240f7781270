/**
 * keepalived.conf reader: the real-world formats of the reference (keepalived's own sample style,
 * the DPVS FNAT fork, includes with globs relative to the including file, comments, nested braces
 * on one line), keepalived's defaults, and one error per kind of mistake (file, line, keyword; and
 * nothing returned).
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseKeepalived, readKeepalived } from '../../../src/health/keepalived.js';
import { ConfigError, markDataPathChecks } from '../../../src/health/config.js';
import { FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2 } from '../../../src/model/constants.js';

const FIX = fileURLToPath(new URL('../../fixtures/keepalived/', import.meta.url));
const fx = (name: string) => join(FIX, name);

function parseErr(text: string, files: Record<string, string> = {}, file = '/etc/keepalived/keepalived.conf'): ConfigError {
  try {
    parseKeepalived(text, file, { readFile: (p) => { if (p in files) return files[p]!; throw new Error('ENOENT: no such file'); } });
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('keepalived.conf: the reference example', () => {
  const c = readKeepalived(fx('reference.conf'));
  const vs = c.services[0]!;

  it('reads one virtual server with its real servers', () => {
    expect(c.services).toHaveLength(1);
    expect(vs.key).toBe('TCP 192.0.2.10:80');
    expect(vs.spec).toEqual({ protocol: 6, af: 2, addr: '192.0.2.10', port: 80, fwmark: 0 });
    expect(vs.rs.map((r) => `${r.addr}:${r.port}`)).toEqual(['10.0.1.11:80', '10.0.1.12:80', '10.0.1.13:80', '10.0.1.14:80']);
  });

  it('lb_algo / lb_kind aliases, persistence, quorum, hysteresis, alpha, omega, sorry_server', () => {
    expect(vs.sched).toBe('wlc');
    expect(vs.rs.every((r) => r.fwd === FWD_DROUTE)).toBe(true);
    expect(vs.flags & SVC_F_PERSISTENT).toBeTruthy();
    expect(vs.timeout).toBe(300);
    expect(vs.delayLoop).toBe(5);
    expect([vs.quorum, vs.hysteresis, vs.alpha, vs.omega]).toEqual([2, 1, true, true]);
    expect(vs.quorumDown).toBe('/usr/local/bin/withdraw-vip 192.0.2.10');
    expect(vs.sorry).toMatchObject({ addr: '10.0.9.9', port: 80, fwd: FWD_DROUTE, weight: 1 });
  });

  it('checkers with their options inherited and defaulted', () => {
    const [a, b, s, m] = vs.rs;
    expect(a!.weight).toBe(3);
    expect(a!.inhibit).toBe(true);
    expect(a!.checks[0]).toMatchObject({
      type: 'HTTP_GET', connectIp: '10.0.1.11', connectPort: 80, connectTimeout: 3, retry: 2, delayBeforeRetry: 2, delayLoop: 5,
      urls: [{ path: '/healthz', digest: '', statusCodes: [[200, 200]], regex: '' }],
    });
    expect(b!.inhibit).toBe(false);
    expect(b!.checks[0]).toMatchObject({ type: 'TCP_CHECK', connectPort: 80, connectTimeout: 2, retry: 1, delayBeforeRetry: 1 });
    expect(s!.checks[0]).toMatchObject({ type: 'SSL_GET', connectPort: 443, connectTimeout: 5, urls: [{ path: '/', digest: '9b3a0c85a887a256d6939da88aabd8cd' }] });
    expect(m!.checks[0]).toMatchObject({ type: 'MISC_CHECK', miscPath: '/usr/local/bin/check-app 10.0.1.14', miscTimeout: 5, miscDynamic: true, retry: 0 });
  });

  it('reports the sections it does not act on once, by name and line', () => {
    expect(c.ignored.map((s) => `${s.name}:${s.line}`)).toEqual(['global_defs:2', 'vrrp_instance:6']);
    expect(c.ignored[0]!.file).toBe(fx('reference.conf'));
  });
});

describe('keepalived.conf: keepalived defaults (not ipvsadm\'s)', () => {
  const c = parseKeepalived('virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  TCP_CHECK {\n  }\n }\n}\n');
  const vs = c.services[0]!;
  it('NAT, wlc, delay_loop 60, connect_timeout 5, retry 1, delay_before_retry 1, weight 1, quorum 1; no protocol ⇒ UDP with a warning', () => {
    expect(vs.rs[0]!.fwd).toBe(FWD_MASQ);
    // keepalived (check_data.c validate_check_config): "no protocol set - defaulting to UDP".
    expect(vs.spec.protocol).toBe(17);
    expect(c.warnings.some((w) => /no protocol set - defaulting to UDP/.test(w))).toBe(true);
    expect(vs.sched).toBe('wlc');
    expect(vs.flags).toBe(0);
    expect([vs.delayLoop, vs.quorum, vs.hysteresis, vs.alpha]).toEqual([60, 1, 0, false]);
    expect(vs.rs[0]!.weight).toBe(1);
    expect(vs.rs[0]!.checks[0]).toMatchObject({ connectTimeout: 5, retry: 1, delayBeforeRetry: 1, delayLoop: 60 });
  });
  it('port 0 without persistence: persistence 360 s is set with a warning, as keepalived does', () => {
    const c = parseKeepalived('virtual_server 10.1.1.1 0 {\n protocol TCP\n real_server 10.0.0.7 0 { }\n}\n');
    expect(c.services[0]!.flags & SVC_F_PERSISTENT).toBeTruthy();
    expect(c.services[0]!.timeout).toBe(360);
    expect(c.warnings.some((w) => /zero port/.test(w))).toBe(true);
  });
  it('bare persistence_timeout is 6 minutes; DNS_CHECK retries 3, MISC_CHECK 0 and misc_timeout = delay_loop', () => {
    const d = parseKeepalived(`virtual_server 10.1.1.1 53 { protocol UDP persistence_timeout
      real_server 10.0.0.7 53 { DNS_CHECK { } MISC_CHECK { misc_path /bin/true } } }`).services[0]!;
    expect(d.timeout).toBe(360);
    expect(d.flags & SVC_F_PERSISTENT).toBeTruthy();
    expect(d.rs[0]!.checks.map((x) => x.retry)).toEqual([3, 0]);
    expect(d.rs[0]!.checks[1]!.miscTimeout).toBe(60);
    expect(d.rs[0]!.checks[0]).toMatchObject({ dnsType: 'A', dnsName: '.', connectPort: 53 });
  });
});

describe('keepalived.conf: sample style (groups, fwmark, UDP, SSL, DNS)', () => {
  const c = readKeepalived(fx('sample.conf'));
  it('global_defs (mail settings), vrrp_sync_group and vrrp_instance are ignored', () => {
    expect(c.ignored.map((s) => s.name)).toEqual(['global_defs', 'vrrp_sync_group', 'vrrp_instance']);
  });
  it('expands a virtual_server_group (addresses, a range, a fwmark) into services', () => {
    expect(c.services.map((s) => s.key)).toEqual([
      'TCP 10.10.10.2:1358', 'TCP 192.168.201.100:443', 'TCP 192.168.201.101:443', 'TCP 192.168.201.102:443', 'FWM 7', 'FWM 9', 'UDP 10.10.10.3:53',
    ]);
    const g = c.services[1]!;
    expect(g.sched).toBe('wrr');
    expect(g.netmask).toBe('255.255.255.0');
    expect(g.timeout).toBe(360);
    expect(g.rs[0]!.checks[0]).toMatchObject({ type: 'SSL_GET', virtualhost: 'www.example.test', enableSni: true, urls: [{ statusCodes: [[200, 299], [301, 301]] }] });
  });
  it('two urls with digests, nb_get_retry as retry, sorry server with the service port', () => {
    const s = c.services[0]!;
    expect(s.rs[0]!.checks[0]!.urls).toHaveLength(2);
    expect(s.rs[0]!.checks[0]!.retry).toBe(3);
    expect(s.sorry).toMatchObject({ addr: '192.168.200.200', port: 1358, fwd: FWD_MASQ });
  });
  it('fwmark service: TUN, sh flags, connect_ip/bindto/bind_port', () => {
    const f = c.services.find((s) => s.key === 'FWM 9')!;
    expect(f.spec).toEqual({ protocol: 0, af: 2, addr: '', port: 0, fwmark: 9 });
    expect(f.flags).toBe(SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2);
    expect(f.rs[0]!.fwd).toBe(FWD_TUNNEL);
    expect(f.rs[0]!.checks[0]).toMatchObject({ connectIp: '10.0.2.77', connectPort: 22, bindto: '10.0.2.8', bindPort: 4000 });
  });
  it('UDP service with ops, DNS_CHECK, UDP_CHECK payload / require_reply, thresholds', () => {
    const u = c.services.find((s) => s.key === 'UDP 10.10.10.3:53')!;
    expect(u.flags & SVC_F_ONEPACKET).toBeTruthy();
    expect(u.rs[0]!.checks[0]).toMatchObject({ type: 'DNS_CHECK', dnsName: 'www.example.test', retry: 2 });
    expect(u.rs[1]!.checks[0]!.payload?.toString()).toBe('hello');
    expect(u.rs[1]!.checks[0]!.requireReply).toEqual(Buffer.from('h'));
    expect([u.rs[1]!.uThreshold, u.rs[1]!.lThreshold]).toEqual([100, 10]);
  });
});

describe('keepalived.conf: DPVS FNAT fork', () => {
  it('lb_kind FNAT with a local_address_group and syn_proxy', () => {
    const c = readKeepalived(fx('dpvs-fnat.conf'));
    const vs = c.services[0]!;
    expect(vs.rs[0]).toMatchObject({ fwd: FWD_FULLNAT, weight: 100, inhibit: true });
    expect(vs.laddrs).toEqual(['10.0.0.200', '10.0.0.201']);
    expect(vs.synproxy).toBe(true);
    expect(c.warnings).toEqual([]);
  });
  it('proxy_protocol v1|v2|disable is read (not a warning); insecure variants, bad values and UDP are refused', () => {
    const vs = (pp: string, proto = 'TCP') => `virtual_server 10.1.1.1 80 {\n  protocol ${proto}\n  proxy_protocol ${pp}\n  real_server 10.0.0.7 80 { }\n}\n`;
    const c = parseKeepalived(vs('v2'));
    expect(c.services[0]!.proxyProtocol).toBe(2);
    expect(c.warnings.some((w) => w.includes('proxy_protocol'))).toBe(false);
    expect(parseKeepalived(vs('V1')).services[0]!.proxyProtocol).toBe(1);
    expect(parseKeepalived(vs('disable')).services[0]!.proxyProtocol ?? 0).toBe(0);
    expect(() => parseKeepalived(vs('v2-insecure'))).toThrow(/:3: .*not supported by uvs yet/s);
    expect(() => parseKeepalived(vs('v9'))).toThrow(/:3: .*not a proxy protocol/s);
    expect(() => parseKeepalived(vs('v2', 'UDP'))).toThrow(/:3: .*UDP services is not supported/s);
  });
  it('syn_proxy (the Alibaba/DPVS fork keyword) turns the SYN proxy on (not a warning); not for UDP', () => {
    const vs = (sp: string, proto = 'TCP') => `virtual_server 10.1.1.1 80 {\n  protocol ${proto}\n  ${sp}\n  real_server 10.0.0.7 80 { lb_kind NAT }\n}\n`;
    const c = parseKeepalived(vs('syn_proxy'));
    expect(c.services[0]!.synproxy).toBe(true);
    expect(c.warnings.some((w) => w.includes('syn_proxy'))).toBe(false);
    expect(parseKeepalived(vs('syn_proxy disable')).services[0]!.synproxy ?? false).toBe(false);
    expect(parseKeepalived(vs('lb_algo rr')).services[0]!.synproxy).toBeUndefined();
    expect(() => parseKeepalived(vs('syn_proxy maybe'))).toThrow(/:3: .*not enable or disable/s);
    expect(() => parseKeepalived(vs('syn_proxy', 'UDP'))).toThrow(/:3: .*SYN proxy is for TCP/s);
  });
});

describe('keepalived.conf: includes, comments, one-line blocks', () => {
  it('include globs relative to the including file, nested includes, in sorted order', () => {
    const c = readKeepalived(fx('main.conf'));
    expect(c.services.map((s) => s.key)).toEqual(['TCP 192.0.2.20:80', 'UDP 192.0.2.20:53']);
    const web = c.services[0]!;
    expect(web.rs.map((r) => `${r.addr}:${r.port}/${r.weight}`)).toEqual(['10.0.0.7:80/1', '10.0.0.17:8080/3']);
    expect(web.rs[0]!.checks[0]).toMatchObject({ type: 'TCP_CHECK', connectTimeout: 1, delayLoop: 2 });
    expect(c.services[1]!.rs[0]!.checks[0]!.type).toBe('UDP_CHECK');
  });
  it('a whole virtual server on one line', () => {
    const vs = readKeepalived(fx('oneline.conf')).services[0]!;
    expect(vs.rs).toHaveLength(2);
    expect(vs.rs[0]).toMatchObject({ weight: 2, inhibit: true });
    expect(vs.rs[0]!.checks[0]).toMatchObject({ type: 'HTTP_GET', connectTimeout: 1, retry: 1, delayBeforeRetry: 0.5, delayLoop: 1 });
    expect(vs.rs[1]!.checks[0]).toMatchObject({ type: 'TCP_CHECK', connectPort: 8080 });
  });
  it('comments with # and ! anywhere, quoted strings keep them', () => {
    const c = parseKeepalived(`# top
virtual_server 10.1.1.1 80 { ! after a brace
  lb_algo rr# glued
  quorum_up "/bin/echo up # not a comment"  ! comment
  real_server 10.0.0.7 80 { weight 2 } # trailing
}`);
    expect(c.services[0]!.sched).toBe('rr');
    expect(c.services[0]!.quorumUp).toBe('/bin/echo up # not a comment');
    expect(c.services[0]!.rs[0]!.weight).toBe(2);
  });
  it('block braces on their own lines', () => {
    const c = parseKeepalived('virtual_server 10.1.1.1 80\n{\n  real_server 10.0.0.7 80\n  {\n    weight 4\n  }\n}\n');
    expect(c.services[0]!.rs[0]!.weight).toBe(4);
  });
  it('@id conditional lines and $PARAM substitution', () => {
    const c = parseKeepalived(`$RS=10.0.0.7
virtual_server 10.1.1.1 80 {
@lb1  lb_algo rr
@^lb1 lb_algo lc
  real_server \${RS} 80 { weight 1 }
  real_server $RS 81 { weight 1 }
}`, 'k.conf', { configId: 'lb1' });
    expect(c.services[0]!.sched).toBe('rr');
    expect(c.services[0]!.rs.map((r) => `${r.addr}:${r.port}`)).toEqual(['10.0.0.7:80', '10.0.0.7:81']);
  });
  it('an include glob that matches nothing is a warning, not an error', () => {
    const c = parseKeepalived('include /nonexistent-dir/*.conf\n');
    expect(c.services).toEqual([]);
    expect(c.warnings[0]).toMatch(/matched no file/);
  });
});

describe('keepalived.conf: each kind of mistake names file, line and keyword, and loads nothing', () => {
  const F = '/etc/keepalived/keepalived.conf';
  const cases: [string, string, number, string, RegExp][] = [
    ['missing closing brace', 'virtual_server 10.1.1.1 80 {\n  lb_algo rr\n', 1, '', /never closed/],
    ['extra closing brace', 'virtual_server 10.1.1.1 80 {\n}\n}\n', 3, '}', /unexpected '}'/],
    ['unknown keyword in virtual_server', 'virtual_server 10.1.1.1 80 {\n  lb_algoo rr\n}\n', 2, 'lb_algoo', /unknown keyword in virtual_server/],
    ['unknown keyword in real_server', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  wieght 2\n }\n}\n', 3, 'wieght', /unknown keyword in real_server/],
    ['unknown top-level keyword', 'virtual_servr 10.1.1.1 80 {\n}\n', 1, 'virtual_servr', /unknown keyword at top level/],
    ['invalid address', 'virtual_server 10.1.1.300 80 {\n}\n', 1, 'virtual_server', /invalid IPv4 address '10.1.1.300'/],
    ['invalid port', 'virtual_server 10.1.1.1 70000 {\n}\n', 1, 'virtual_server', /invalid number '70000'/],
    ['invalid number', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  weight heavy\n }\n}\n', 3, 'weight', /invalid number 'heavy'/],
    ['missing argument', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  weight\n }\n}\n', 3, 'weight', /needs 1 argument/],
    ['too many arguments', 'virtual_server 10.1.1.1 80 {\n  lb_algo rr wrr\n}\n', 2, 'lb_algo', /too many arguments/],
    ['unknown forwarding method', 'virtual_server 10.1.1.1 80 {\n  lb_kind MASQ\n}\n', 2, 'lb_kind', /unknown forwarding method 'MASQ'/],
    ['unknown scheduler', 'virtual_server 10.1.1.1 80 {\n  lvs_sched fastest\n}\n', 2, 'lvs_sched', /unknown scheduler 'fastest'/],
    ['unknown protocol', 'virtual_server 10.1.1.1 80 {\n  protocol ICMP\n}\n', 2, 'protocol', /unknown protocol/],
    ['bad time', 'virtual_server 10.1.1.1 80 {\n  delay_loop soon\n}\n', 2, 'delay_loop', /invalid time/],
    ['block missing', 'virtual_server 10.1.1.1 80\nlb_algo rr\n', 1, 'virtual_server', /needs a '\{ … \}' block/],
    ['a block where none is taken', 'virtual_server 10.1.1.1 80 {\n  lb_algo rr { }\n}\n', 2, 'lb_algo', /takes no block/],
    ['HTTP_GET without url', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  HTTP_GET {\n   connect_timeout 2\n  }\n }\n}\n', 3, 'HTTP_GET', /url/],
    ['url without path', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  HTTP_GET { url { status_code 200 } }\n }\n}\n', 3, 'url', /path/],
    ['bad digest', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  HTTP_GET { url { path / digest xyz } }\n }\n}\n', 3, 'digest', /MD5/],
    ['bad status code', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  HTTP_GET { url { path / status_code 2xx } }\n }\n}\n', 3, 'status_code', /status code/],
    ['MISC_CHECK without misc_path', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  MISC_CHECK { misc_dynamic }\n }\n}\n', 3, 'MISC_CHECK', /misc_path/],
    ['keyword of another checker', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n  TCP_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n', 4, 'misc_path', /not valid in TCP_CHECK/],
    ['duplicate virtual_server', 'virtual_server 10.1.1.1 80 {\n protocol TCP\n}\nvirtual_server 10.1.1.1 80 {\n protocol TCP\n}\n', 4, 'virtual_server', /duplicate virtual_server TCP 10.1.1.1:80/],
    ['duplicate real_server', 'virtual_server 10.1.1.1 80 {\n real_server 10.0.0.7 80 {\n }\n real_server 10.0.0.7 80 {\n }\n}\n', 4, 'real_server', /duplicate real_server/],
    ['unknown laddr group', 'virtual_server 10.1.1.1 80 {\n  lb_kind FNAT\n  laddr_group_name nope\n}\n', 3, 'laddr_group_name', /unknown local_address_group/],
    ['FNAT without local addresses', 'virtual_server 10.1.1.1 80 {\n  lb_kind FNAT\n}\n', 1, 'lb_kind', /laddr_group_name/],
    ['unknown virtual_server_group', 'virtual_server group nope {\n}\n', 1, 'virtual_server', /unknown virtual_server_group/],
    ['unterminated quote', 'virtual_server 10.1.1.1 80 {\n  quorum_up "/bin/x\n}\n', 2, '', /unterminated/],
    ['IPv6 (not yet)', 'virtual_server 2001:db8::1 80 {\n}\n', 1, 'virtual_server', /IPv6/],
  ];
  for (const [what, text, line, kw, re] of cases) {
    it(what, () => {
      const e = parseErr(text);
      expect(e.file).toBe(F);
      expect(e.line).toBe(line);
      expect(e.keyword).toBe(kw);
      expect(e.message).toMatch(re);
      expect(e.message.startsWith(`${F}:${line}: `)).toBe(true);
    });
  }

  it('a missing include file names the including file and line', () => {
    const e = parseErr('\ninclude missing.conf\n');
    expect([e.file, e.line, e.keyword]).toEqual([F, 2, 'include']);
    expect(e.message).toMatch(/cannot read \/etc\/keepalived\/missing\.conf/);
  });
  it('a mistake inside an included file names that file and its line', () => {
    const e = parseErr('include sub.conf\n', { '/etc/keepalived/sub.conf': 'virtual_server 10.1.1.1 80 {\n\n  weight 3\n}\n' });
    expect([e.file, e.line, e.keyword]).toEqual(['/etc/keepalived/sub.conf', 3, 'weight']);
  });
  it('an include loop is refused', () => {
    const e = parseErr('include a.conf\n', { '/etc/keepalived/a.conf': 'include keepalived.conf\n', [F]: 'include a.conf\n' });
    expect(e.keyword).toBe('include');
    expect(e.message).toMatch(/include loop/);
  });
});

describe('keepalived.conf: global_defs lvs_sync_daemon', () => {
  it('reads the interface, the optional VRRP instance and the options', () => {
    expect(parseKeepalived('global_defs {\n  lvs_sync_daemon eth1 VI_1 id 51\n}\n').syncDaemon).toEqual({ mcastIfn: 'eth1', instance: 'VI_1', syncid: 51 });
    expect(parseKeepalived('global_defs {\n  lvs_sync_daemon eth0 maxlen 1200 port 9000 ttl 2 group 239.1.1.1\n}\n').syncDaemon)
      .toEqual({ mcastIfn: 'eth0', syncid: 0, maxlen: 1200, port: 9000, ttl: 2, group: '239.1.1.1' });
    expect(parseKeepalived('global_defs {\n router_id x\n}\n').syncDaemon).toBeUndefined();
  });
  it('a mistake names the line', () => {
    for (const [line, msg] of [
      ['lvs_sync_daemon', 'requires an interface'],
      ['lvs_sync_daemon eth0 id 256', "invalid id '256' (0..255)"],
      ['lvs_sync_daemon eth0 VI_1 ttl', "invalid ttl '' (1..255)"],
      ['lvs_sync_daemon eth0 group 10.0.0.1', "invalid group '10.0.0.1'"],
      ['lvs_sync_daemon eth0 VI_1 weight 3', "unknown option 'weight'"],
    ] as const) {
      const e = parseErr(`global_defs {\n  ${line}\n}\n`);
      expect(e.line).toBe(2);
      expect(e.message).toContain(msg);
    }
  });
});

describe('keepalived.conf: global_defs lvs_timeouts', () => {
  it('is read (the rest of global_defs is not acted on); several lines add up; absent = no timeouts', () => {
    const c = parseKeepalived('global_defs {\n  router_id LVS1\n  lvs_timeouts tcp 7200 udp 60\n  lvs_timeouts tcpfin 30\n}\nvirtual_server 10.1.1.1 80 { protocol TCP }\n');
    expect(c.timeouts).toEqual({ tcp: 7200, tcpfin: 30, udp: 60 });
    expect(c.ignored.map((s) => s.name)).toEqual(['global_defs']);
    expect(parseKeepalived('global_defs {\n router_id x\n}\n').timeouts).toBeUndefined();
  });

  it('a mistake names the line: unknown option, missing or bad value, over 31 days', () => {
    for (const [line, msg] of [
      ['lvs_timeouts tcp', 'requires at least one option'],
      ['lvs_timeouts tcp 10 udp', 'no value for udp'],
      ['lvs_timeouts tcpfn 10', "unknown option 'tcpfn'"],
      ['lvs_timeouts udp -1', "invalid udp timeout '-1'"],
      ['lvs_timeouts tcp 2678401', "invalid tcp timeout '2678401' (0..2678400 seconds)"],
    ] as const) {
      const e = parseErr(`global_defs {\n  ${line}\n}\n`);
      expect(e.line).toBe(2);
      expect(e.message).toContain(msg);
    }
  });
});

describe('keepalived.conf: checks through the data path (connect_ip = the VIP of a DR/TUN real server)', () => {
  it('marks TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK of DR and TUN real servers whose connect_ip is the VIP; leaves RIP checks, NAT and MISC_CHECK alone (a warning for that)', () => {
    const conf = markDataPathChecks(parseKeepalived(`
virtual_server 10.0.0.100 80 {
  lb_kind DR
  protocol TCP
  real_server 10.0.0.7 80 {
    TCP_CHECK { connect_ip 10.0.0.100 connect_timeout 2 }
    TCP_CHECK { connect_port 80 }
  }
  real_server 10.0.0.17 80 {
    lb_kind TUN
    HTTP_GET { url { path / } connect_ip 10.0.0.100 }
    TCP_CHECK { connect_ip 10.0.0.100 }
    SSL_GET { url { path / } connect_ip 10.0.0.100 }
    UDP_CHECK { connect_ip 10.0.0.100 connect_port 53 }
    DNS_CHECK { connect_ip 10.0.0.100 }
    MISC_CHECK { misc_path /bin/true connect_ip 10.0.0.100 }
  }
}
virtual_server 192.168.10.110 80 {
  lb_kind NAT
  protocol TCP
  real_server 10.0.0.7 80 { TCP_CHECK { connect_ip 192.168.10.110 } }
}
`, '/etc/keepalived/keepalived.conf'));
    const [dr, nat] = conf.services;
    const [rs1, rs2] = dr!.rs;
    expect(rs1!.checks[0]!.dataPath).toEqual({ rip: '10.0.0.7', fwd: FWD_DROUTE, tunType: 0, tunPort: 0, tunFlags: 0 });
    expect(rs1!.checks[1]!.dataPath).toBeUndefined();
    expect(rs2!.checks[0]!.dataPath).toMatchObject({ rip: '10.0.0.17', fwd: FWD_TUNNEL }); // HTTP_GET
    expect(rs2!.checks[1]!.dataPath).toMatchObject({ rip: '10.0.0.17', fwd: FWD_TUNNEL });
    expect(rs2!.checks[3]!.dataPath).toMatchObject({ rip: '10.0.0.17', fwd: FWD_TUNNEL });
    expect(rs2!.checks[4]!.dataPath).toMatchObject({ rip: '10.0.0.17', fwd: FWD_TUNNEL });
    expect(nat!.rs[0]!.checks[0]!.dataPath).toBeUndefined();
    expect(rs2!.checks[2]!.dataPath).toMatchObject({ rip: '10.0.0.17', fwd: FWD_TUNNEL }); // SSL_GET: TLS over uvs's TCP
    expect(rs2!.checks[5]!.dataPath).toBeUndefined(); // MISC_CHECK: a script on the host
    expect(conf.warnings.filter((w) => /MISC_CHECK .*TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and DNS_CHECK are sent through the data path/.test(w))).toHaveLength(1);
    expect(conf.warnings.filter((w) => /SSL_GET/.test(w) && !/MISC_CHECK/.test(w))).toHaveLength(0);
  });
});

describe('keepalived.conf: TUN tunnel types (lvs_method TUN type ipip|gue|gre)', () => {
  const vs = (method: string) => `virtual_server 10.0.0.100 80 {\n  protocol TCP\n  lb_kind ${method}\n  real_server 10.0.0.7 80 { weight 1 }\n}\n`;
  it('reads GUE with its port and checksum option, and GRE with csum', () => {
    const gue = parseKeepalived(vs('TUN type gue port 6080 csum'), '/k.conf').services[0]!.rs[0]!;
    expect(gue).toMatchObject({ fwd: FWD_TUNNEL, tunType: 1, tunPort: 6080, tunFlags: 1 });
    const gre = parseKeepalived(vs('TUN type gre csum'), '/k.conf').services[0]!.rs[0]!;
    expect(gre).toMatchObject({ fwd: FWD_TUNNEL, tunType: 2, tunPort: 0, tunFlags: 1 });
  });
  it('refuses what keepalived refuses: GUE without a port, a port or remcsum on GRE, checksums on IPIP', () => {
    expect(parseErr(vs('TUN type gue')).message).toMatch(/type gue needs port N/);
    expect(parseErr(vs('TUN type gre port 6080')).message).toMatch(/port is only for type gue/);
    expect(parseErr(vs('TUN type gre remcsum')).message).toMatch(/remcsum is only for type gue/);
    expect(parseErr(vs('TUN type ipip csum')).message).toMatch(/checksum options/);
  });
});

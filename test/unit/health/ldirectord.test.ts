/**
 * ldirectord.cf reader: the reference example, ldirectord's defaults, real ranges, fallback as the
 * sorry server, and the errors (file, line, keyword).
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { parseLdirectord, readLdirectord } from '../../../src/health/ldirectord.js';
import { ConfigError } from '../../../src/health/config.js';
import { FWD_DROUTE, FWD_MASQ, SVC_F_PERSISTENT } from '../../../src/model/constants.js';

const FIX = fileURLToPath(new URL('../../fixtures/keepalived/ldirectord.cf', import.meta.url));

describe('ldirectord.cf', () => {
  const c = readLdirectord(FIX);
  it('the reference example: gate reals with weights, negotiate HTTP with request/receive, quiescent, fallback', () => {
    const vs = c.services[0]!;
    expect(vs.key).toBe('TCP 192.0.2.10:80');
    expect([vs.sched, vs.flags & SVC_F_PERSISTENT, vs.timeout, vs.delayLoop]).toEqual(['wlc', SVC_F_PERSISTENT, 300, 2]);
    expect(vs.rs.map((r) => [r.addr, r.port, r.fwd, r.weight, r.inhibit])).toEqual([
      ['10.0.1.11', 80, FWD_DROUTE, 3, true], ['10.0.1.12', 80, FWD_DROUTE, 1, true],
    ]);
    expect(vs.rs[0]!.checks[0]).toMatchObject({
      type: 'HTTP_GET', connectTimeout: 3, delayLoop: 2, retry: 0, virtualhost: 'www.example.test',
      urls: [{ path: '/healthz', regex: 'ok' }],
    });
    expect(vs.sorry).toMatchObject({ addr: '127.0.0.1', port: 80, fwd: FWD_DROUTE });
    expect(c.warnings.some((w) => w.includes("'autoreload'"))).toBe(true);
  });
  it('ranges of reals, masq, connect checks, quiescent=no per virtual', () => {
    const vs = c.services[1]!;
    expect(vs.rs.map((r) => `${r.addr}:${r.port}`)).toEqual(['10.0.2.2:25', '10.0.2.3:25', '10.0.2.4:25']);
    expect(vs.rs.every((r) => r.fwd === FWD_MASQ && !r.inhibit && r.checks[0]!.type === 'TCP_CHECK')).toBe(true);
    expect(vs.sched).toBe('wrr');
  });
  it('defaults: checkinterval 10, checktimeout 5, negotiate by port', () => {
    const d = parseLdirectord('virtual=10.1.1.1:53\n\treal=10.0.0.7:53 gate\n\tprotocol=udp\n').services[0]!;
    expect(d.delayLoop).toBe(10);
    expect(d.rs[0]!.checks[0]).toMatchObject({ type: 'DNS_CHECK', connectTimeout: 5 });
    expect(d.rs[0]!.inhibit).toBe(true);
  });
  it('errors name file, line and keyword', () => {
    const bad: [string, number, string, RegExp][] = [
      ['virtual=10.1.1.1:80\n\treal=10.0.0.7:80 bridge\n', 2, 'real', /unknown forwarding method 'bridge'/],
      ['virtual=10.1.1.1:80\n\tcheckype=connect\n', 2, 'checkype', /unknown keyword/],
      ['checkinterval=soon\n', 1, 'checkinterval', /invalid number/],
      ['virtual=10.1.1.1:80\n\treal=10.0.0.7:80 gate\n\tchecktype=psychic\n', 1, 'checktype', /unknown checktype/],
      ['virtual=10.1.1.1:80\n\tscheduler=best\n', 2, 'scheduler', /unknown scheduler/],
      ['just words\n', 1, 'just', /key=value/],
    ];
    for (const [text, line, kw, re] of bad) {
      let e: unknown;
      try { parseLdirectord(text, '/etc/ha.d/ldirectord.cf'); } catch (x) { e = x; }
      expect(e).toBeInstanceOf(ConfigError);
      const ce = e as ConfigError;
      expect([ce.file, ce.line, ce.keyword]).toEqual(['/etc/ha.d/ldirectord.cf', line, kw]);
      expect(ce.message).toMatch(re);
    }
  });
});

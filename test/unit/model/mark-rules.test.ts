/**
 * Firewall-mark rules: the rule set itself (first match wins, ports, prefixes, owned VIPs), the
 * control operations (add/del/-C/batch all or nothing), and uvsadm's --mark-rule, --del-mark-rule,
 * --list-mark-rules, -L --mark-rules, -S and -R against a real Control behind a control socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  MarkRules, compileMarkRule, formatMarkRulesSave, markRuleArgs, parseAddrPrefix, parseMarkValue, parsePortList,
  type MarkRuleSpec,
} from '../../../src/model/mark-rules.js';
import { parseIp } from '../../../src/model/addr.js';
import { parseArgs } from '../../../src/cli/ipvsadm/parse.js';
import { parseRestore } from '../../../src/cli/ipvsadm/save.js';
import { main } from '../../../src/cli/uvsadm.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';
import { ControlServer } from '../../../src/control/server.js';
import { memLab, svcOpts } from '../../helpers/lab-mem.js';

const VIP = '192.168.10.110';
const ip = parseIp;

function rule(over: Partial<MarkRuleSpec> = {}): MarkRuleSpec {
  return { protocol: 6, daddr: VIP, dprefix: 32, saddr: '', sprefix: 0, dports: [[80, 80], [443, 443]], mark: 10, ...over };
}

describe('MarkRules', () => {
  it('matches protocol, destination and ports; no rule ⇒ 0', () => {
    const m = new MarkRules();
    expect(m.match(6, ip('1.2.3.4'), ip(VIP), 80)).toBe(0);
    m.add(rule());
    expect(m.match(6, ip('1.2.3.4'), ip(VIP), 80)).toBe(10);
    expect(m.match(6, ip('1.2.3.4'), ip(VIP), 443)).toBe(10);
    expect(m.match(6, ip('1.2.3.4'), ip(VIP), 8080)).toBe(0);
    expect(m.match(17, ip('1.2.3.4'), ip(VIP), 80)).toBe(0);
    expect(m.match(6, ip('1.2.3.4'), ip('192.168.10.111'), 80)).toBe(0);
  });

  it('first match wins, in the order the rules were added (like the mangle PREROUTING chain)', () => {
    const m = new MarkRules();
    m.add(rule({ dports: [[443, 443]], mark: 2 }));
    m.add(rule({ dports: [], mark: 1 }));
    expect(m.match(6, 1, ip(VIP), 443)).toBe(2);
    expect(m.match(6, 1, ip(VIP), 22)).toBe(1);
    expect(m.remove(rule({ dports: [[443, 443]], mark: 2 }))).toBe(true);
    expect(m.match(6, 1, ip(VIP), 443)).toBe(1);
  });

  it('prefixes on destination and source, port ranges', () => {
    const m = new MarkRules();
    m.add(rule({ daddr: '192.168.10.0', dprefix: 24, saddr: '10.1.0.0', sprefix: 16, dports: [[8000, 8010]], mark: 7 }));
    expect(m.match(6, ip('10.1.2.3'), ip('192.168.10.200'), 8005)).toBe(7);
    expect(m.match(6, ip('10.2.2.3'), ip('192.168.10.200'), 8005)).toBe(0);
    expect(m.match(6, ip('10.1.2.3'), ip('192.168.11.1'), 8005)).toBe(0);
    expect(m.match(6, ip('10.1.2.3'), ip('192.168.10.1'), 8011)).toBe(0);
  });

  it('addresses are masked, identical rules are refused, unknown ones cannot be removed', () => {
    const m = new MarkRules();
    expect(m.add(rule({ daddr: '192.168.10.77', dprefix: 24 }))).toBe(true);
    expect(m.specs()[0]).toMatchObject({ daddr: '192.168.10.0', dprefix: 24 });
    expect(m.add(rule({ daddr: '192.168.10.0', dprefix: 24 }))).toBe(false);
    expect(m.remove(rule({ mark: 11 }))).toBe(false);
    expect(m.count).toBe(1);
  });

  it('owns the destinations of /32 rules only', () => {
    const m = new MarkRules();
    m.add(rule());
    m.add(rule({ protocol: 17 }));
    m.add(rule({ daddr: '10.9.9.0', dprefix: 24 }));
    expect(m.ownedAddrs()).toEqual([ip(VIP)]);
  });

  it('rejects bad specs', () => {
    expect(() => compileMarkRule(rule({ protocol: 1 }))).toThrow(/tcp or udp/);
    expect(() => compileMarkRule(rule({ mark: 0 }))).toThrow(/mark/);
    expect(() => compileMarkRule(rule({ dprefix: 33 }))).toThrow(/prefix/);
    expect(() => compileMarkRule(rule({ daddr: 'x' }))).toThrow(/address/);
    expect(() => compileMarkRule(rule({ dports: [[90, 80]] }))).toThrow(/port range/);
  });

  it('command-line pieces: addresses, port lists, mark values', () => {
    expect(parseAddrPrefix('192.168.10.110')).toEqual({ addr: VIP, prefix: 32 });
    expect(parseAddrPrefix('192.168.10.110/24')).toEqual({ addr: '192.168.10.0', prefix: 24 });
    expect(parseAddrPrefix('10.0.0.0/255.255.0.0')).toEqual({ addr: '10.0.0.0', prefix: 16 });
    expect(parseAddrPrefix('10.0.0.0/255.0.255.0')).toBeNull();
    expect(parsePortList('80,443,1000:2000,:10,60000:')).toEqual([[80, 80], [443, 443], [1000, 2000], [0, 10], [60000, 65535]]);
    expect(parsePortList('80,,443')).toBeNull();
    expect(parsePortList('70000')).toBeNull();
    expect(parseMarkValue('10')).toBe(10);
    expect(parseMarkValue('0x1f')).toBe(31);
    expect(parseMarkValue('0')).toBe(-1);
  });

  it('save lines re-parse to the same rule', async () => {
    const specs = [rule(), rule({ protocol: 17, dports: [[53, 53]], saddr: '10.0.0.0', sprefix: 8, mark: 3 }), rule({ dports: [], mark: 4 })];
    const text = formatMarkRulesSave(specs);
    expect(text).toBe(
      '--mark-rule -d 192.168.10.110/32 -p tcp --dports 80,443 --set-mark 10\n'
      + '--mark-rule -d 192.168.10.110/32 -p udp -s 10.0.0.0/8 --dport 53 --set-mark 3\n'
      + '--mark-rule -d 192.168.10.110/32 -p tcp --set-mark 4\n',
    );
    const r = await parseRestore(text);
    expect('commands' in r && r.commands).toEqual(specs.map((s) => ({ cmd: 'add-mark-rule', rule: s })));
    expect(markRuleArgs(specs[0]!)[0]).toBe('--mark-rule');
  });
});

describe('uvsadm parsing of mark-rule commands', () => {
  it('the iptables-style line of the documents', async () => {
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '--set-mark', '10'])).toEqual({
      kind: 'command', command: { cmd: 'add-mark-rule', rule: rule() },
    });
    expect(await parseArgs(['--del-mark-rule', '-p', 'udp', '--dport', '53', '-d', `${VIP}/32`, '-s', '10.1.0.0/16', '--set-mark', '0x10'])).toEqual({
      kind: 'command', command: { cmd: 'del-mark-rule', rule: rule({ protocol: 17, dports: [[53, 53]], saddr: '10.1.0.0', sprefix: 16, mark: 16 }) },
    });
  });

  it('list forms', async () => {
    expect(await parseArgs(['--list-mark-rules'])).toEqual({ kind: 'ext', name: 'list-mark-rules', data: {} });
    expect(await parseArgs(['-L', '--mark-rules'])).toEqual({ kind: 'ext', name: 'list-mark-rules', data: {} });
    expect(await parseArgs(['-L', '--mark-rules', '-c'])).toMatchObject({ kind: 'error' });
  });

  it('missing or bad options are refused like ipvsadm refuses', async () => {
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'tcp'])).toMatchObject({ kind: 'error', message: expect.stringMatching(/set-mark/) });
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'icmp', '--set-mark', '1'])).toMatchObject({ kind: 'error', message: expect.stringMatching(/protocol/) });
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'tcp', '--dport', '80,443', '--set-mark', '1'])).toMatchObject({ kind: 'error' });
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'tcp', '--dport', '80', '--dports', '443', '--set-mark', '1'])).toMatchObject({ kind: 'error' });
    expect(await parseArgs(['--mark-rule', '-d', VIP, '-p', 'tcp', '--set-mark', '1', '-w', '3'])).toMatchObject({ kind: 'error' });
    // The ipvsadm meanings of -s/-p/-d are unchanged elsewhere.
    expect(await parseArgs(['-A', '-f', '10', '-s', 'rr', '-p'])).toMatchObject({ kind: 'command', command: { cmd: 'add-service', opts: { sched: 'rr', flags: 1, timeout: 360 } } });
    expect(await parseArgs(['--set-mark', '1'])).toMatchObject({ kind: 'error' });
  });
});

describe('control operations on mark rules', () => {
  it('add / del / duplicates / -C, and the rule VIPs become owned', () => {
    const { control, d } = memLab();
    expect(control.execute({ cmd: 'add-mark-rule', rule: rule() })).toEqual({ ok: true });
    expect(d.config.owned.has(ip(VIP))).toBe(true);
    expect(control.execute({ cmd: 'add-mark-rule', rule: rule() })).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(control.execute({ cmd: 'add-mark-rule', rule: rule({ mark: 0 }) })).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(control.execute({ cmd: 'add-mark-rule', rule: rule({ protocol: 132 }) })).toMatchObject({ ok: false, errno: 'EPROTONOSUPPORT' });
    expect(control.execute({ cmd: 'get-mark-rules' })).toEqual({ ok: true, data: [rule()] });
    expect(control.execute({ cmd: 'del-mark-rule', rule: rule({ mark: 9 }) })).toMatchObject({ ok: false, errno: 'ENOENT' });
    expect(control.execute({ cmd: 'del-mark-rule', rule: rule() })).toEqual({ ok: true });
    expect(d.config.owned.has(ip(VIP))).toBe(false);
    control.execute({ cmd: 'add-mark-rule', rule: rule() });
    expect(control.execute({ cmd: 'clear' })).toEqual({ ok: true });
    expect(control.execute({ cmd: 'get-mark-rules' })).toEqual({ ok: true, data: [] });
    expect(d.config.owned.size).toBe(0);
  });

  it('a batch with mark rules is all or nothing', () => {
    const { control } = memLab();
    const fw = { protocol: 0, af: 2, addr: '', port: 0, fwmark: 10 };
    const bad = control.execute({
      cmd: 'batch', commands: [
        { cmd: 'add-mark-rule', rule: rule() },
        { cmd: 'add-service', svc: fw, opts: svcOpts('rr') },
        { cmd: 'del-mark-rule', rule: rule({ mark: 99 }) },
      ],
    });
    expect(bad.ok).toBe(false);
    expect(control.execute({ cmd: 'get-mark-rules' })).toEqual({ ok: true, data: [] });
    expect(control.execute({ cmd: 'get-services' })).toEqual({ ok: true, data: [] });
    const good = control.execute({ cmd: 'batch', commands: [{ cmd: 'add-mark-rule', rule: rule() }, { cmd: 'add-service', svc: fw, opts: svcOpts('rr') }] });
    expect(good).toEqual({ ok: true });
    // A batch sees the rules already installed (deleting one validates on the scratch copy).
    expect(control.execute({ cmd: 'batch', commands: [{ cmd: 'del-mark-rule', rule: rule() }] })).toEqual({ ok: true });
  });
});

describe('uvsadm against a control socket', () => {
  let dir: string;
  let sock: string;
  let server: ControlServer;
  let lab: ReturnType<typeof memLab>;
  const services = ServicesDb.parse('http 80/tcp\nhttps 443/tcp\n');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'uvs-markrules-'));
    sock = join(dir, 'uvsd.sock');
    server = new ControlServer(sock);
    await server.listen(async (cmd) => lab.control.execute(cmd));
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    lab = memLab();
  });

  async function uvsadm(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => { out += c.toString(); });
    stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const code = await main(['--sock', sock, ...args], { stdout, stderr, stdin: Readable.from([stdin]), services, reverseLookup: async () => undefined });
    return { code, out, err };
  }

  it('--mark-rule, --list-mark-rules, -S (rules before services), -C, -R', async () => {
    expect((await uvsadm(['--mark-rule', '-d', VIP, '-p', 'tcp', '--dports', '80,443', '--set-mark', '10'])).code).toBe(0);
    const dup = await uvsadm(['--mark-rule', '-d', VIP, '-p', 'tcp', '--dports', '80,443', '--set-mark', '10']);
    expect(dup).toMatchObject({ code: 255, err: 'Mark rule already exists\n' });
    expect((await uvsadm(['-A', '-f', '10', '-s', 'rr', '-p'])).code).toBe(0);
    expect((await uvsadm(['-a', '-f', '10', '-r', '10.0.0.7', '-m'])).code).toBe(0);
    const list = await uvsadm(['--list-mark-rules']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^1\s+tcp\s+0\.0\.0\.0\/0\s+192\.168\.10\.110\/32\s+80,443\s+10$/m);
    expect((await uvsadm(['-L', '--mark-rules'])).out).toBe(list.out);
    const saved = await uvsadm(['-S', '-n']);
    expect(saved.code).toBe(0);
    const lines = saved.out.trimEnd().split('\n');
    expect(lines[0]).toBe('--mark-rule -d 192.168.10.110/32 -p tcp --dports 80,443 --set-mark 10');
    expect(lines[1]).toMatch(/^-A -f 10 -s rr -p 360$/);
    expect((await uvsadm(['-C'])).code).toBe(0);
    expect((await uvsadm(['--list-mark-rules'])).out.trimEnd().split('\n')).toHaveLength(2);
    // A restore with a bad last line changes nothing; the good file restores everything.
    const bad = await uvsadm(['-R'], saved.out + '-a -f 99 -r 10.0.0.17 -m\n');
    expect(bad.code).toBe(255);
    expect((await uvsadm(['--list-mark-rules'])).out.trimEnd().split('\n')).toHaveLength(2);
    const ok = await uvsadm(['-R'], saved.out);
    expect(ok.code, ok.err).toBe(0);
    expect((await uvsadm(['-S', '-n'])).out).toBe(saved.out);
    expect((await uvsadm(['--del-mark-rule', '-d', VIP, '-p', 'tcp', '--dports', '80,443', '--set-mark', '10'])).code).toBe(0);
    expect(await uvsadm(['--del-mark-rule', '-d', VIP, '-p', 'tcp', '--dports', '80,443', '--set-mark', '10'])).toMatchObject({ code: 255, err: 'No such mark rule\n' });
  });
});

/**
 * Connection sync end to end: director failover without losing an established TCP connection.
 *
 * The DR lab (client — router — director, real servers) plus a second director namespace on the
 * server segment (10.0.0.9), both running uvsd over --iface with `--vip-arp host` and the same DR
 * service (VIP:7000, rr over rs1 and rs2, a TCP echo server on each real server). As with
 * keepalived VRRP in front of kernel IPVS, the active director's host carries the VIP on eth0
 * (`ip addr add`), so its kernel answers the router's ARP for it and the standby stays silent —
 * checked with an ARP probe from the router, which must get exactly one answer.
 * uvsd #1 runs `--start-daemon master`, uvsd #2 `--start-daemon backup` (same syncid, multicast
 * 224.0.0.81:8848 over eth0 — real multicast between two processes' kernel sockets).
 *
 * A client opens one TCP connection through director #1 (after a decoy connection, so the two rr
 * schedulers are out of step), exchanges a line, and waits; once director #2 lists the conn as
 * ESTABLISHED to the same real server (`uvsadm -Lnc` there), the VIP moves to director #2 (address
 * deleted on #1, added on #2, the router's neighbour entry dropped — what VRRP and its gratuitous
 * ARP amount to), and the client's next line on the same connection must come back from the same
 * real server. Without the sync director #2 drops that segment (not a SYN, sloppy_tcp=0) and the
 * client times out.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLab, type Lab, type UvsdHandle } from '../../src/lab/topology.js';
import { createNs, inNs, listNs, Registry, REPO_ROOT, run, tryRun, waitFor, type SpawnedProcess } from '../../src/lab/netns.js';

const PORT = 7000;
const DIP2 = '10.0.0.9';

const ECHO = `
const net = require('node:net'); const name = process.argv[1];
net.createServer((s) => s.on('data', (d) => s.write(name + ':' + d.toString()))).listen(${PORT}, '0.0.0.0', () => console.log('listening'));
`;

/** One connection, a line, then (when the go file appears, at most 40 s) a second line on it. */
const CLIENT = `
const net = require('node:net'); const fs = require('node:fs');
const [vip, go] = process.argv.slice(1);
const s = net.connect(${PORT}, vip); let n = 0; let timer;
const arm = () => { clearTimeout(timer); timer = setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000); };
s.on('connect', () => { arm(); s.write('one\\n'); });
s.on('data', (d) => {
  console.log('reply ' + d.toString().trim()); clearTimeout(timer); n++;
  if (n === 1) { const t0 = Date.now(); const iv = setInterval(() => {
    if (fs.existsSync(go)) { clearInterval(iv); arm(); s.write('two\\n'); }
    else if (Date.now() - t0 > 40000) { console.log('no go'); process.exit(1); } }, 50); }
  else { s.end(); process.exit(0); }
});
s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
`;

/** Sends one ARP who-has for argv[2] on argv[1] and prints the MAC of every answer within 1 s. */
const ARP_PROBE = `
import json, socket, struct, subprocess, sys, time
ifn, target = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifn, 0x0806))
mac = s.getsockname()[4]
addr = json.loads(subprocess.check_output(['ip', '-j', '-4', 'addr', 'show', 'dev', ifn]))[0]['addr_info'][0]['local']
tip = socket.inet_aton(target)
req = b'\\xff' * 6 + mac + b'\\x08\\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(addr) + b'\\x00' * 6 + tip
s.send(req)
s.settimeout(0.2)
seen = set()
end = time.time() + 1.0
while time.time() < end:
    try:
        f = s.recv(100)
    except socket.timeout:
        continue
    if len(f) >= 42 and f[20:22] == b'\\x00\\x02' and f[28:32] == tip:
        seen.add(':'.join('%02x' % b for b in f[22:28]))
print(' '.join(sorted(seen)))
`;

describe.skipIf(process.getuid?.() !== 0)('connection sync: a DR director fails over without losing an established TCP connection', () => {
  let lab: Lab;
  const registry = new Registry();
  let uvsd1: UvsdHandle | undefined;
  let uvsd2: SpawnedProcess | undefined;
  let ns2 = '';
  let sock2 = '';
  let tmp = '';
  const tail = (t: string) => t.trimEnd().split('\n').slice(-25).join('\n');
  const logs = () => `--- uvsd #1 ---\n${uvsd1 ? tail(uvsd1.log()) : '-'}\n--- uvsd #2 ---\n${uvsd2 ? tail(uvsd2.log()) : '-'}`;
  const adm2 = (...args: string[]) => tryRun(inNs(ns2, [process.execPath, join(REPO_ROOT, 'bin', 'uvsadm.js'), '--sock', sock2, ...args]), { timeoutMs: 10_000 });
  const ok = async (p: Promise<{ code: number; stdout: string; stderr: string }>, what: string): Promise<string> => {
    const r = await p;
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code} ${r.stderr}\n${logs()}`);
    return r.stdout;
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'uvs-e2e-sync-'));
    lab = await buildLab('dr', { portKind: 'iface', registry });
    // The second director: its own namespace on the server segment's bridge.
    ns2 = `${lab.prefix}director2`;
    registry.addNs(ns2);
    await createNs(ns2);
    const sw = lab.ns.switch!;
    await run(['ip', '-n', ns2, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'director2-eth0', 'netns', sw]);
    await run(['ip', '-n', sw, 'link', 'set', 'director2-eth0', 'master', 'br-s', 'up']);
    await run(['ip', '-n', ns2, 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', ns2, 'link', 'set', 'eth0', 'up']);
    await run(['ip', '-n', ns2, 'addr', 'add', `${DIP2}/24`, 'dev', 'eth0']);
    await run(['ip', '-n', ns2, 'route', 'add', 'default', 'via', lab.router!.b]);
    await run(inNs(ns2, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']));
    for (const r of lab.rs) {
      const p = lab.spawn(r.name, [process.execPath, '-e', ECHO, r.name], 'echo');
      const up = await waitFor(() => p.log().includes('listening'), 10_000);
      if (!up) throw new Error(`${r.name} echo server: ${p.log()}`);
    }
    uvsd1 = await lab.startUvsd({ timeoutMs: 20_000, extraArgs: ['--vip-arp', 'host'] });
    sock2 = join(lab.dir, 'uvsd2.sock');
    uvsd2 = registry.spawn('uvsd2', inNs(ns2, [process.execPath, join(REPO_ROOT, 'bin', 'uvsd.js'), '--iface', 'eth0', '--sock', sock2, '--log-level', 'info', '--vip-arp', 'host']),
      join(lab.dir, 'director2-uvsd.log'));
    const ready = await waitFor(() => {
      if (uvsd2!.hasExited()) throw new Error(`uvsd #2 exited:\n${uvsd2!.log()}`);
      return uvsd2!.log().includes('uvsd ready');
    }, 20_000);
    if (!ready) throw new Error(`uvsd #2 not ready:\n${uvsd2.log()}`);
    const rules = [['-A', '-t', `${lab.vip}:${PORT}`, '-s', 'rr'], ...lab.rs.map((r) => ['-a', '-t', `${lab.vip}:${PORT}`, '-r', `${r.addr}:${PORT}`, '-g'])];
    for (const rule of rules) {
      await ok(lab.uvsadm(rule), `uvsadm #1 ${rule.join(' ')}`);
      await ok(adm2(...rule), `uvsadm #2 ${rule.join(' ')}`);
    }
    // Director #1 is the active one: its host carries the VIP (keepalived's virtual_ipaddress).
    await lab.exec('director', ['ip', 'addr', 'add', `${lab.vip}/32`, 'dev', 'eth0']);
    await ok(lab.uvsadm(['--start-daemon', 'master', '--mcast-interface', 'eth0', '--syncid', '7']), 'start master');
    await ok(adm2('--start-daemon', 'backup', '--mcast-interface', 'eth0', '--syncid', '7'), 'start backup');
  }, 120_000);

  afterAll(async () => {
    await uvsd1?.stop();
    await uvsd2?.stop(5000);
    await lab?.teardown();
    await registry.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const left = (await listNs()).filter((n) => lab && n.startsWith(lab.prefix));
    expect(left).toEqual([]);
  }, 60_000);

  it('-L --daemon lists each daemon as ipvsadm does', async () => {
    expect(await ok(lab.uvsadm(['-L', '--daemon']), '-L --daemon #1')).toBe('master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
    expect(await ok(adm2('-L', '--daemon'), '-L --daemon #2')).toBe('backup sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
    expect((await adm2('--start-daemon', 'backup')).stderr).toBe('Daemon has already run\n');
  });

  const macOf = async (ns: string): Promise<string> =>
    (JSON.parse((await run(inNs(ns, ['ip', '-j', 'link', 'show', 'dev', 'eth0']))).stdout) as { address: string }[])[0]!.address;
  const arpAnswers = async (): Promise<string> => (await run(inNs(lab.ns.router!, ['python3', '-c', ARP_PROBE, 'eth1', lab.vip]), { timeoutMs: 10_000 })).stdout.trim();

  it('with --vip-arp host only the director whose host carries the VIP answers ARP for it', async () => {
    expect(await arpAnswers()).toBe(await macOf(lab.ns.director!));
  });

  it('the backup learns the connection and carries it on after the failover', async () => {
    // A decoy connection first: director #1's rr is then one pick ahead of director #2's.
    const decoy = lab.spawn('client', [process.execPath, '-e', CLIENT, lab.vip, join(tmp, 'never')], 'decoy');
    expect(await waitFor(() => /reply (rs\d):one/.exec(decoy.log())?.[1], 15_000)).toBeTruthy();
    await decoy.stop(1000);
    const go = join(tmp, 'go');
    const client = lab.spawn('client', [process.execPath, '-e', CLIENT, lab.vip, go], 'client');
    const first = await waitFor(() => /reply (rs\d):one/.exec(client.log())?.[1], 15_000);
    if (!first) throw new Error(`first reply: ${client.log()}\n${logs()}`);
    const rip = lab.rs.find((r) => r.name === first)!.addr;
    // The master sends the conn at its 3rd client packet; a partly filled message leaves within 2 s.
    const line = await waitFor(async () => {
      const out = (await adm2('-Lnc')).stdout;
      return out.split('\n').find((l) => l.includes(`${rip}:${PORT}`) && l.includes('ESTABLISHED'));
    }, 15_000, 200);
    if (!line) throw new Error(`director #2 never listed the conn:\n${(await adm2('-Lnc')).stdout}\n${logs()}`);
    // Failover: the VIP moves to director #2 (VRRP), the router learns its new MAC.
    await lab.exec('director', ['ip', 'addr', 'del', `${lab.vip}/32`, 'dev', 'eth0']);
    await run(['ip', '-n', ns2, 'addr', 'add', `${lab.vip}/32`, 'dev', 'eth0']);
    await lab.exec('router', ['ip', 'neigh', 'flush', 'to', lab.vip]);
    expect(await arpAnswers()).toBe(await macOf(ns2));
    writeFileSync(go, '');
    const second = await waitFor(() => /reply (rs\d):two|timeout|error/.exec(client.log())?.[0], 20_000, 100);
    expect(second, `${client.log()}\n${logs()}`).toBe(`reply ${first}:two`);
    // It went through director #2: its counters for that dest moved.
    const stats = await ok(adm2('-Ln', '--stats'), '-Ln --stats #2');
    const destLine = stats.split('\n').find((l) => l.includes(`${rip}:${PORT}`))!;
    expect(Number(destLine.trim().split(/\s+/)[3])).toBeGreaterThan(0); // InPkts
  }, 60_000);
});

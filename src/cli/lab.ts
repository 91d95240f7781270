/**
 * `uvs lab nat|dr|tun|fullnat [--sched NAME] [--port-kind iface|tap] [--keep] [--requests N] [--tun-type T]` and
 * `uvs lab down`: the LVS lab of the chosen mode in network namespaces (src/lab/topology.ts),
 * driven the way a user would drive it — start uvsd on the director, type the uvsadm rules,
 * send requests from the client and see which real server answered, then the director's tables.
 */
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { httpGet, tally, udpRequest } from '../lab/client.js';
import { deleteNs, installCleanupHook, isRoot, listNs, Registry } from '../lab/netns.js';
import { buildLab, formatCommand, LAB_DIR_PREFIX, LAB_GUE_PORT, LAB_MODES, type Lab, type LabMode, type PortKind } from '../lab/topology.js';

const USAGE = `usage: uvs lab nat|dr|tun|fullnat [--sched NAME] [--port-kind iface|tap] [--keep] [--requests N] [--tun-type ipip|gue|gre]
       uvs lab down

Builds the LVS lab of that forwarding method in network namespaces (client, router where the
method needs one, director running uvsd, two real servers with HTTP and UDP echo servers),
applies the rules with uvsadm, sends requests and shows which real server answered each.
  --sched NAME       scheduler of the services (default wrr; weights rs1:1, rs2:3)
  --port-kind KIND   iface: uvsd on the director's veths (uvsd --io auto: AF_XDP here, default)
                     tap:   uvsd creates TAPs and is its own host (nat, dr, tun, fullnat)
  --keep             leave the lab running; prints how to enter each host
  --requests N       HTTP requests to send (default 8)
  --tun-type TYPE    tun: the encapsulation of the real servers (default ipip; gue uses UDP port 6080)
"uvs lab down" removes every lab (namespaces uvs-*, their processes and temp dirs).
Needs root. Without root, "uvs explain --mode nat" shows the same packet walk in memory.
`;

/** Namespaces a lab made: uvs-<mode>-<pid>-<hex4>-<host>. */
const LAB_NS_RE = /^uvs-(nat|dr|tun|fullnat)-\d+-[0-9a-f]{4}-/;

const out = (s = '') => process.stdout.write(`${s}\n`);

export async function labCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        sched: { type: 'string', default: 'wrr' },
        'port-kind': { type: 'string', default: 'iface' },
        keep: { type: 'boolean', default: false },
        requests: { type: 'string', default: '8' },
        'tun-type': { type: 'string', default: 'ipip' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`uvs lab: ${(err as Error).message}\n${USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(USAGE.trimEnd());
    return 0;
  }
  const what = positionals[0];
  if (what !== 'down' && !LAB_MODES.includes(what as LabMode)) {
    process.stderr.write(`uvs lab: ${what ? `unknown mode "${what}"` : 'which mode?'}\n${USAGE}`);
    return 64;
  }
  const portKind = values['port-kind'];
  if (portKind !== 'iface' && portKind !== 'tap') {
    process.stderr.write(`uvs lab: --port-kind must be iface or tap\n`);
    return 64;
  }
  const requests = Number(values.requests);
  if (!Number.isInteger(requests) || requests < 0 || requests > 10_000) {
    process.stderr.write(`uvs lab: --requests must be a whole number 0..10000\n`);
    return 64;
  }
  const tunType = values['tun-type'];
  if (tunType !== 'ipip' && tunType !== 'gue' && tunType !== 'gre') {
    process.stderr.write(`uvs lab: --tun-type must be ipip, gue or gre\n`);
    return 64;
  }
  if (tunType !== 'ipip' && what !== 'tun') {
    process.stderr.write(`uvs lab: --tun-type goes with the tun lab\n`);
    return 64;
  }
  if (!isRoot()) {
    process.stderr.write(
      'uvs lab needs root: it creates network namespaces, veth pairs, bridges and TAP devices.\n' +
        'Run it as root (sudo npx uvs lab …), or, without root, watch the same packet walk in memory:\n' +
        `  uvs explain --mode ${what === 'down' ? 'nat' : what}\n`,
    );
    return 77;
  }
  if (what === 'down') return labDown();
  return labUp(what as LabMode, portKind, values.sched ?? 'wrr', requests, values.keep ?? false, tunType);
}

async function labDown(): Promise<number> {
  const names = (await listNs()).filter((n) => LAB_NS_RE.test(n));
  for (const n of names) {
    await deleteNs(n);
    out(`removed namespace ${n}`);
  }
  let dirs = 0;
  for (const d of readdirSync(tmpdir())) {
    if (d.startsWith(LAB_DIR_PREFIX)) {
      rmSync(join(tmpdir(), d), { recursive: true, force: true });
      dirs++;
    }
  }
  out(names.length === 0 && dirs === 0 ? 'no lab is running' : `lab down (${names.length} namespaces, ${dirs} temp dirs)`);
  return 0;
}

function describe(lab: Lab): string[] {
  const l: string[] = [];
  const name = lab.mode === 'fullnat' ? 'FULLNAT' : lab.mode.toUpperCase();
  l.push(`LVS-${name} lab, port kind ${lab.portKind}, namespaces ${lab.prefix}*`);
  l.push(`  client    ${lab.clientAddr} (gateway ${lab.clientGateway})`);
  if (lab.router) l.push(`  router    ${lab.router.a} / ${lab.router.b} (ip_forward=1)`);
  const dir = lab.dipClient ? `${lab.dipClient} / ${lab.dip}` : lab.dip;
  l.push(`  director  ${dir}${lab.portKind === 'tap' ? ' (owned by uvsd on its TAPs)' : ''}; VIP ${lab.vip}${lab.lip ? `, LIP ${lab.lip}` : ''}`);
  for (const r of lab.rs) {
    let note = '';
    if (lab.mode === 'nat') note = `gateway ${lab.dip}`;
    if (lab.mode === 'dr') note = `VIP on lo, arp_ignore=1 arp_announce=2`;
    if (lab.mode === 'tun') note = `VIP on ${lab.tunDev} (uvs tunnel-endpoint)`;
    if (lab.mode === 'fullnat') note = `gateway ${lab.router?.b}`;
    l.push(`  ${r.name}       ${r.addr.padEnd(10)}  http :${r.httpPort}  udp :${r.udpPort}  ${note}`);
  }
  return l;
}

async function labUp(mode: LabMode, portKind: PortKind, sched: string, requests: number, keep: boolean,
  tunType: 'ipip' | 'gue' | 'gre' = 'ipip'): Promise<number> {
  const registry = new Registry();
  const release = installCleanupHook(registry);
  let lab: Lab | undefined;
  let ok = true;
  try {
    out(`building the ${mode} lab…`);
    lab = await buildLab(mode, { portKind, keep, registry });
    for (const line of describe(lab)) out(line);
    out();
    if (mode === 'tun') {
      out('# on rs1 and rs2: a userspace tunnel endpoint (IPIP, GUE on 6080, GRE) carrying the VIP (this kernel has no ipip module)');
      out(`$ uvs tunnel-endpoint --iface eth0 --vip ${lab.vip} --dev ${lab.tunDev} --gue-port ${LAB_GUE_PORT} --gre`);
      await lab.startTunnelEndpoints();
    }
    await lab.startServers();
    out(`# on the director (${lab.ns.director}):`);
    out(`$ ${formatCommand(lab.uvsdArgs(), 'uvsd')}`);
    await lab.startUvsd();
    out('uvsd ready');
    out();
    const adm = (args: string[]) => formatCommand(['--sock', lab!.sock, ...args]);
    for (const rule of lab.rules(sched, { tunType })) {
      out(`$ ${formatCommand(rule)}`);
      const r = await lab.uvsadm(rule);
      if (r.stdout.trim()) out(r.stdout.trimEnd());
      if (r.code !== 0) {
        process.stderr.write(`uvsadm failed (${r.code}): ${r.stderr.trim()}\n`);
        ok = false;
        break;
      }
    }
    out();
    if (ok && requests > 0) {
      const url = `http://${lab.vip}:${lab.tcpPort}/`;
      out(`# from the client (${lab.ns.client}): ${requests} fresh connections to ${url}`);
      const answers = [];
      for (let i = 1; i <= requests; i++) {
        const a = await httpGet(lab.ns.client, url);
        answers.push(a);
        out(a.ok ? `  ${String(i).padStart(3)}  ${a.rs}  (served on ${a.local}, saw peer ${a.peer})` : `  ${String(i).padStart(3)}  failed: ${a.error}`);
      }
      const t = tally(answers);
      out(`  → ${Object.entries(t).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
      if (t.error) ok = false;
      out(`# UDP ${lab.vip}:${lab.udpPort}`);
      for (let i = 1; i <= 2; i++) {
        const u = await udpRequest(lab.ns.client, lab.vip, lab.udpPort, `hello-${i}`);
        out(u.ok ? `  ${String(i).padStart(3)}  ${u.reply}` : `  ${String(i).padStart(3)}  failed: ${u.error}`);
        if (!u.ok) ok = false;
      }
      out();
    }
    for (const args of [['-Ln', '--stats'], ['-Lnc']]) {
      out(`$ ${formatCommand(args)}`);
      const r = await lab.uvsadm(args);
      out((r.stdout || r.stderr).trimEnd());
    }
    if (keep) {
      out();
      out('The lab stays up. Enter a host with:');
      for (const c of lab.enterCommands()) out(`  ${c}`);
      out(`uvsadm on this director:  ${adm(['-Ln'])}`);
      out(`logs and control socket:  ${lab.dir}`);
      out('tear it down with:        uvs lab down');
      return ok ? 0 : 1;
    }
    return ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`uvs lab: ${(err as Error).message}\n`);
    if (lab) process.stderr.write(`(logs were in ${lab.dir})\n`);
    return 1;
  } finally {
    // --keep leaves a built lab up even when something failed: that is when one wants to look.
    if (!keep || !lab) await registry.cleanup();
    else if (!ok) out('(something failed; the lab stays up for inspection: uvs lab down removes it)');
    release();
  }
}

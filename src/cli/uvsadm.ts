/**
 * uvsadm: a drop-in ipvsadm 1.31 that talks to uvsd over its control socket.
 *
 * Exit codes (ipvsadm's): 0 success; 2 parse/validation errors (and when uvsd cannot be reached,
 * like ipvsadm's "Can't initialize ipvs"); 255 popt errors, no command, and every daemon refusal
 * (printed with ipvs_strerror's text); 1 listing failures (e.g. `-L -t` of an unknown service).
 * Features uvs cannot honour yet are refused with `uvsadm: <what> is not supported by uvs yet`,
 * exit 255, and nothing is changed.
 */
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Command, ConnSnap, InfoSnap, Response, ServiceSnap, ServiceSpec, Timeouts } from '../control/types.js';
import { ControlClient, ControlUnreachable, defaultSockPath } from '../control/client.js';
import { parseArgs, usageText, type ListOptions, type ParseDeps, type ParseResult } from './ipvsadm/parse.js';
import {
  addressesOf, buildResolver, formatConnections, formatDaemons, formatLaddrs, formatListAll, formatOneService,
  formatTimeouts, ServicesDb, type DaemonSnap, type ListFormat, type NameResolver, type ReverseLookup,
} from './ipvsadm/format.js';
import { formatSave, parseRestore } from './ipvsadm/save.js';
import { HEALTH_UVSADM_HANDLERS } from '../health/uvsadm-ext.js';
import { formatMarkRulesList, formatMarkRulesSave, type MarkRuleSpec } from '../model/mark-rules.js';
import { formatSysctls, sysctlName } from '../model/sysctl.js';

export interface UvsadmIo {
  stdout?: Writable;
  stderr?: Writable;
  stdin?: Readable;
  env?: NodeJS.ProcessEnv;
  /** Test hooks: name resolution without touching the system resolver. */
  lookupHost?: ParseDeps['lookupHost'];
  reverseLookup?: ReverseLookup;
  services?: ServicesDb;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function versionLine(): string {
  return `uvsadm v${packageVersion()} (ipvsadm v1.31 compatible, IPVS v1.2.1)`;
}

// ---------------------------------------------------------------------------------------------
// libipvs ipvs_strerror, keyed by the operation that failed

const BY_OPERATION: Record<string, Record<string, string>> = {
  'add-service': { EEXIST: 'Service already exists', ENOENT: 'Scheduler or persistence engine not found' },
  'edit-service': { ESRCH: 'No such service', ENOENT: 'Scheduler or persistence engine not found' },
  'delete-service': { ESRCH: 'No such service' },
  zero: { ESRCH: 'No such service' },
  'add-server': { ESRCH: 'Service not defined', EEXIST: 'Destination already exists' },
  'edit-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  'delete-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  'get-services': { ESRCH: 'No such service' },
  // FULLNAT local addresses (uvs wording in the fork's style).
  'add-laddr': { ESRCH: 'Service not defined', EEXIST: 'Local address already exists' },
  'del-laddr': { ESRCH: 'Service not defined', ENOENT: 'No such local address' },
  // Firewall-mark rules (uvs).
  'add-mark-rule': { EEXIST: 'Mark rule already exists' },
  'del-mark-rule': { ENOENT: 'No such mark rule' },
  'start-daemon': { EEXIST: 'Daemon has already run' },
  'stop-daemon': { ESRCH: 'No daemon is running' },
};

const ANY_OPERATION: Record<string, string> = {
  EPERM: 'Permission denied (you must be root)',
  EINVAL: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  ENOPROTOOPT: 'Protocol not available',
  ENOMEM: 'Memory allocation problem',
  EOPNOTSUPP: 'Operation not supported with IPv6',
  EAFNOSUPPORT: 'Operation not supported with specified address family',
  EMSGSIZE: 'Module is wrong version',
};

/** glibc strerror() for the errnos the daemon may return beyond ipvs_strerror's table. */
const STRERROR: Record<string, string> = {
  ERANGE: 'Numerical result out of range',
  EEXIST: 'File exists',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EBUSY: 'Device or resource busy',
  ENOSPC: 'No space left on device',
  EFAULT: 'Bad address',
  ENODEV: 'No such device',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  E2BIG: 'Argument list too long',
  EACCES: 'Permission denied',
  ENOTSUP: 'Operation not supported',
};

/** The one line ipvsadm prints for a kernel refusal of `cmd`. */
export function ipvsStrerror(cmd: string, errno: string, message?: string): string {
  const byOp = BY_OPERATION[cmd]?.[errno];
  if (byOp) return byOp;
  // A daemon refusal of something uvs does not implement: its own words are clearer than
  // ipvs_strerror's IPv6 text.
  if (errno === 'EOPNOTSUPP' && message) return `uvsadm: ${message}`;
  return ANY_OPERATION[errno] ?? STRERROR[errno] ?? (message || errno);
}

// ---------------------------------------------------------------------------------------------

function sameService(s: ServiceSnap, spec: ServiceSpec): boolean {
  if (spec.fwmark) return s.fwmark === spec.fwmark && s.af === spec.af;
  return !s.fwmark && s.protocol === spec.protocol && s.addr === spec.addr && s.port === spec.port && s.af === spec.af;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Strips `--sock PATH` / `--sock=PATH` anywhere in argv. */
export function extractSock(argv: string[]): { argv: string[]; sock?: string; error?: string } {
  const out: string[] = [];
  let sock: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { out.push(...argv.slice(i)); break; }
    if (a === '--sock') {
      if (i + 1 >= argv.length) return { argv: out, error: '--sock: missing argument' };
      sock = argv[++i];
    } else if (a.startsWith('--sock=')) {
      sock = a.slice('--sock='.length);
    } else {
      out.push(a);
    }
  }
  return sock === undefined ? { argv: out } : { argv: out, sock };
}

/**
 * EXTENSION POINT for uvs commands added to parse.ts's COMMANDS with `build` returning
 * `{kind:'ext', name, data}` (e.g. `--mark-rule`, `--load-keepalived`, `--checks`, `trace`):
 * register a handler under the same name; it gets a connected client and returns the exit code.
 */
export type ExtHandler = (ctx: {
  data: unknown; client: ControlClient; stdout: Writable; stderr: Writable; stdin: Readable;
}) => Promise<number>;
const EXT_HANDLERS = new Map<string, ExtHandler>();
export function registerExtHandler(name: string, handler: ExtHandler): void {
  EXT_HANDLERS.set(name, handler);
}

// `uvsadm --load-keepalived FILE` / `--load-ldirectord FILE` / `--checks` (src/health).
for (const [name, h] of Object.entries(HEALTH_UVSADM_HANDLERS)) registerExtHandler(name, h);

/** The mark rules in evaluation order (an older uvsd without them: none). */
async function getMarkRules(client: ControlClient): Promise<MarkRuleSpec[]> {
  const r = await client.request({ cmd: 'get-mark-rules' });
  return r.ok && Array.isArray(r.data) ? (r.data as MarkRuleSpec[]) : [];
}

// `uvsadm --list-mark-rules` / `uvsadm -L --mark-rules`.
registerExtHandler('list-mark-rules', async ({ client, stdout }) => {
  stdout.write(formatMarkRulesList(await getMarkRules(client)));
  return 0;
});

// `uvsadm --sysctl` (all, `sysctl net.ipv4.vs` style), `--sysctl NAME` (one), `--sysctl NAME=VALUE` (set).
registerExtHandler('sysctl', async ({ data, client, stdout, stderr }) => {
  const arg = (data as { arg?: string }).arg;
  const eq = arg === undefined ? -1 : arg.indexOf('=');
  if (arg !== undefined && eq >= 0) {
    const r = await client.request({ cmd: 'set-sysctl', name: arg.slice(0, eq), value: arg.slice(eq + 1) });
    if (!r.ok) { stderr.write(`uvsadm: ${r.message}\n`); return 255; }
    stdout.write(`net.ipv4.vs.${sysctlName(arg.slice(0, eq))} = ${arg.slice(eq + 1).trim()}\n`);
    return 0;
  }
  const r = await client.request({ cmd: 'get-sysctls' });
  if (!r.ok) { stderr.write(`uvsadm: ${r.message}\n`); return 255; }
  const all = r.data as { name: string; value: string }[];
  if (arg === undefined) { stdout.write(formatSysctls(all)); return 0; }
  const one = all.find((x) => x.name === sysctlName(arg));
  if (!one) { stderr.write(`uvsadm: net.ipv4.vs.${sysctlName(arg)}: no such IPVS sysctl\n`); return 255; }
  stdout.write(formatSysctls([one]));
  return 0;
});

class Exit {
  constructor(readonly code: number) {}
}

export async function main(argv: string[], io: UvsadmIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const errln = (s: string): void => { stderr.write(s.endsWith('\n') ? s : s + '\n'); };

  const ex = extractSock(argv);
  if (ex.error) { errln(ex.error); return 255; }
  if (ex.argv[0] === 'trace') return traceCommand(ex.argv.slice(1).join(' '), defaultSockPath(ex.sock, env), stdout, stderr);
  const services = io.services ?? ServicesDb.system();
  const deps: ParseDeps = { program: 'uvsadm', services, ...(io.lookupHost ? { lookupHost: io.lookupHost } : {}) };

  const parsed: ParseResult = await parseArgs(ex.argv, deps);
  switch (parsed.kind) {
    case 'help': stdout.write(usageText('uvsadm', versionLine())); return 0;
    case 'version': stdout.write(versionLine() + '\n'); return 0;
    // fail() always appends one newline (so `-6 used before -f\n` ends in two, as in ipvsadm).
    case 'error': stderr.write(parsed.message + '\n'); return parsed.exitCode;
    case 'list':
      break;
    default: break;
  }

  // Restore reads and checks all of stdin before touching the daemon.
  let restoreCommands: Command[] | undefined;
  if (parsed.kind === 'restore') {
    const text = await readAll(io.stdin ?? process.stdin);
    const r = await parseRestore(text, { ...deps });
    if ('error' in r) {
      stderr.write(r.error + '\n');
      errln(`uvsadm: -R: error on line ${r.line}; nothing was restored`);
      return r.exitCode;
    }
    for (const w of r.warnings) errln(`uvsadm: -R: ${w}`);
    restoreCommands = r.commands;
    if (restoreCommands.length === 0) return 0;
  }

  const sockPath = defaultSockPath(ex.sock, env);
  let client: ControlClient;
  try {
    client = await ControlClient.connect(sockPath);
  } catch (e) {
    if (e instanceof ControlUnreachable) { errln(`uvsadm: ${e.message}`); return 2; }
    throw e;
  }

  const names = async (addrs: string[], numeric: boolean): Promise<NameResolver | undefined> =>
    numeric ? undefined : buildResolver(addrs, services, io.reverseLookup);

  /** A get-* request; on refusal prints the error and exits 1 (ipvsadm's listing failure). */
  const get = async <T>(cmd: Command, ctx = 'get-services'): Promise<T> => {
    const r: Response = await client.request(cmd);
    if (!r.ok) { errln(ipvsStrerror(ctx, r.errno, r.message)); throw new Exit(1); }
    return r.data as T;
  };

  try {
    switch (parsed.kind) {
      case 'command': {
        const r = await client.request(parsed.command);
        if (r.ok) return 0;
        errln(ipvsStrerror(parsed.command.cmd, r.errno, r.message));
        return 255;
      }
      case 'restore': {
        const cmds = restoreCommands!;
        const r = await client.request({ cmd: 'batch', commands: cmds });
        if (r.ok) return 0;
        const idx = (r as { index?: unknown }).index;
        const failed = typeof idx === 'number' ? cmds[idx] : undefined;
        errln(ipvsStrerror(failed?.cmd ?? 'batch', r.errno, r.message));
        return 255;
      }
      case 'save': {
        const svcs = await get<ServiceSnap[]>({ cmd: 'get-services' });
        // Mark rules first: a restore then re-creates them before the fwmark services.
        const marks = formatMarkRulesSave(await getMarkRules(client));
        stdout.write(marks + formatSave(svcs, parsed.numeric, await names(addressesOf(svcs), parsed.numeric)));
        return 0;
      }
      case 'get-laddr': {
        const svcs = await get<ServiceSnap[]>({ cmd: 'get-services' });
        if (parsed.service) {
          const s = svcs.find((x) => sameService(x, parsed.service!));
          if (!s) { errln('No such service'); return 1; }
          stdout.write(formatLaddrs(svcs, s));
        } else {
          stdout.write(formatLaddrs(svcs));
        }
        return 0;
      }
      case 'list':
        stdout.write(await list(parsed, get, names, client, errln));
        return 0;
      case 'ext': {
        const h = EXT_HANDLERS.get(parsed.name);
        if (!h) { errln(`uvsadm: ${parsed.name} is not supported by uvs yet`); return 255; }
        return await h({ data: parsed.data, client, stdout, stderr, stdin: io.stdin ?? process.stdin });
      }
      default:
        errln(`uvsadm: unhandled request kind '${(parsed as { kind: string }).kind}'`);
        return 255;
    }
  } catch (e) {
    if (e instanceof Exit) return e.code;
    throw e;
  } finally {
    client.close();
  }
}

async function list(o: ListOptions, get: <T>(cmd: Command, ctx?: string) => Promise<T>,
  names: (addrs: string[], numeric: boolean) => Promise<NameResolver | undefined>, client: ControlClient,
  errln: (s: string) => void): Promise<string> {
  if (o.connections) {
    const conns = await get<ConnSnap[]>({ cmd: 'get-conns' });
    const n = await names(addressesOf([], conns), o.numeric);
    return formatConnections(conns, { numeric: o.numeric, persistentConn: o.persistentConn, ...(n ? { names: n } : {}) });
  }
  if (o.timeout && !o.service) {
    return formatTimeouts(await get<Timeouts>({ cmd: 'get-timeouts' }));
  }
  if (o.daemon) return formatDaemons(await get<DaemonSnap[]>({ cmd: 'get-daemons' }));
  const svcs = await get<ServiceSnap[]>({ cmd: 'get-services' });
  const n = await names(addressesOf(svcs), o.numeric);
  const f: ListFormat = {
    numeric: o.numeric, stats: o.stats, rate: o.rate, thresholds: o.thresholds, persistentConn: o.persistentConn,
    tunInfo: o.tunInfo, exact: o.exact, nosort: o.nosort, ...(n ? { names: n } : {}),
  };
  if (o.service) {
    const s = svcs.find((x) => sameService(x, o.service!));
    if (!s) {
      // ipvsadm list_service: ipvs_get_service fails with ESRCH, message then exit 1.
      errln('No such service');
      throw new Exit(1);
    }
    return formatOneService(s, f);
  }
  // The header's version/size; defaults (1.2.1, 4096) when the daemon does not answer get-info.
  const ri = await client.request({ cmd: 'get-info' });
  const info = ri.ok ? (ri.data as InfoSnap | undefined) : undefined;
  return formatListAll(info, svcs, f);
}

/**
 * `uvsadm trace [FILTER]`: attaches to a running uvsd and prints the step-by-step walk of every
 * matching packet until interrupted (Ctrl-C) or the daemon goes away.
 */
async function traceCommand(filter: string, sockPath: string, stdout: Writable, stderr: Writable): Promise<number> {
  const { renderEventLine, wantColor } = await import('../trace/attach.js');
  const net = await import('node:net');
  const color = wantColor(stdout as { isTTY?: boolean });
  return await new Promise<number>((resolve) => {
    const sock = net.connect(sockPath);
    let buf = '';
    let first = true;
    let code = 0;
    const onSig = (): void => { sock.destroy(); };
    process.once('SIGINT', onSig);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify({ cmd: 'trace', filter }) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (first) {
          first = false;
          const r = JSON.parse(line) as { ok: boolean; message?: string };
          if (!r.ok) { stderr.write(`uvsadm: trace: ${r.message ?? 'refused'}\n`); code = 2; sock.destroy(); return; }
          stderr.write(`tracing${filter ? ` "${filter}"` : ' every packet'} on ${sockPath} (Ctrl-C to stop)\n`);
          continue;
        }
        stdout.write(renderEventLine(line, { color }));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      stderr.write(`uvsadm: cannot reach uvsd at ${sockPath}: ${e.code ?? e.message} (is uvsd running?)\n`);
      code = 2;
    });
    sock.on('close', () => { process.off('SIGINT', onSig); resolve(code); });
  });
}

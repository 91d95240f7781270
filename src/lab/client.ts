/**
 * The lab's client side: fresh HTTP requests with curl (one process, hence one TCP connection, per
 * request) and UDP request/response, both run inside the client namespace. Each answer is parsed
 * into which real server answered and what it saw (see http-server.ts / udp-echo.ts).
 *
 * This file is also a tiny UDP client when run as a script (a fresh source port per run):
 *
 *   node dist/lab/client.js udp HOST PORT PAYLOAD [TIMEOUT_MS]
 *
 * prints the reply and exits 0, or exits 2 after the timeout; and a one-shot UDP listener:
 *
 *   node dist/lab/client.js udp-listen PORT [TIMEOUT_MS]
 */
import { createSocket } from 'node:dgram';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { inNs, REPO_ROOT, tryRun } from './netns.js';

export interface HttpAnswer {
  ok: boolean;
  /** Name of the real server that answered (`rs1`, `rs2`). */
  rs?: string;
  /** Peer address the real server saw (the CIP, or the LIP under FULLNAT). */
  peer?: string;
  /** Local address:port the connection arrived on at the real server. */
  local?: string;
  /** What a PROXY protocol header said (`v2:CIP:cport>VIP:vport`), when the connection had one. */
  proxy?: string;
  /** Request body bytes the real server received. */
  bytes?: number;
  /** The request came over TLS (the servers' HTTPS listener). */
  tls?: boolean;
  body: string;
  error?: string;
}

export interface UdpAnswer {
  ok: boolean;
  rs?: string;
  reply?: string;
  error?: string;
}

/** Parses `rs1 peer=10.0.0.50 local=10.0.1.7:80[ proxy=v2:CIP:cport>VIP:vport][ bytes=N]`. */
export function parseHttpBody(body: string): HttpAnswer {
  const m = /^(\S+) peer=(\S+) local=(\S+)(?: proxy=(\S+))?(?: bytes=(\d+))?( tls)?$/.exec(body.trim());
  if (!m) return { ok: false, body, error: `unexpected answer: ${JSON.stringify(body.slice(0, 200))}` };
  return {
    ok: true, rs: m[1]!, peer: m[2]!, local: m[3]!, ...(m[4] !== undefined ? { proxy: m[4] } : {}),
    ...(m[5] !== undefined ? { bytes: Number(m[5]) } : {}), ...(m[6] !== undefined ? { tls: true } : {}), body,
  };
}

/**
 * One curl GET from namespace `ns` (undefined: this namespace). `localPort` pins the client's
 * source port (curl --local-port): Linux reuses a closed connection's port soon, and a new
 * connection whose tuple equals a director conn still bound to a removed real server is dropped
 * until that conn expires (IPVS with expire_nodest_conn=0, the default, does the same) — tests
 * that remove real servers give every request a port of its own. An https:// URL is not verified
 * (the labs' servers use a self-signed certificate).
 */
export async function httpGet(ns: string | undefined, url: string, timeoutMs = 3000, localPort?: number): Promise<HttpAnswer> {
  const secs = (timeoutMs / 1000).toFixed(1);
  const port = localPort !== undefined ? ['--local-port', String(localPort)] : [];
  const r = await tryRun(
    inNs(ns, ['curl', '-sS', ...(url.startsWith('https:') ? ['-k'] : []), '--noproxy', '*', ...port, '--connect-timeout', secs, '--max-time', secs, '-H', 'Connection: close', url]),
    { timeoutMs: timeoutMs + 3000 },
  );
  if (r.code !== 0) return { ok: false, body: r.stdout, error: (r.stderr.trim() || `curl exit ${r.code}`).split('\n')[0]! };
  return parseHttpBody(r.stdout);
}

/** N fresh HTTP requests, one after the other (sequential, so wrr's order is observable). */
export async function httpRequests(ns: string | undefined, url: string, n: number, timeoutMs = 3000): Promise<HttpAnswer[]> {
  const out: HttpAnswer[] = [];
  for (let i = 0; i < n; i++) out.push(await httpGet(ns, url, timeoutMs));
  return out;
}

/** How many answers each real server gave (failed requests count under `error`). */
export function tally(answers: readonly { ok: boolean; rs?: string }[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const a of answers) {
    const k = a.ok && a.rs ? a.rs : 'error';
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

const selfPath = fileURLToPath(import.meta.url);
/** The compiled script (vitest imports this file from src/, but node 20 runs only the .js). */
export const CLIENT_SCRIPT = join(REPO_ROOT, 'dist', 'lab', 'client.js');
const scriptPath = CLIENT_SCRIPT;

/** One UDP request/response from namespace `ns`, from a fresh source port. */
export async function udpRequest(ns: string | undefined, host: string, port: number, payload: string, timeoutMs = 2000): Promise<UdpAnswer> {
  const r = await tryRun(inNs(ns, [process.execPath, scriptPath, 'udp', host, String(port), payload, String(timeoutMs)]), {
    timeoutMs: timeoutMs + 5000,
  });
  if (r.code !== 0) return { ok: false, error: (r.stderr.trim() || `exit ${r.code}`).split('\n')[0]! };
  const reply = r.stdout.replace(/\n$/, '');
  const m = /^([^:]+):(.*)$/s.exec(reply);
  if (!m || m[2] !== payload) return { ok: false, reply, error: `unexpected reply ${JSON.stringify(reply)}` };
  return { ok: true, rs: m[1]!, reply };
}

function udpMain(host: string, port: number, payload: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      process.stderr.write(`no UDP reply from ${host}:${port} within ${timeoutMs} ms\n`);
      sock.close();
      resolve(2);
    }, timeoutMs);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      process.stdout.write(`${msg.toString()}\n`);
      sock.close();
      resolve(0);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      process.stderr.write(`${err.message}\n`);
      sock.close();
      resolve(1);
    });
    sock.send(payload, port, host);
  });
}

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(selfPath);
  } catch {
    return false;
  }
}

/** Prints the first datagram that arrives on `port` (as `<from>:<port> <text>`), or exits 2 after the timeout. */
function udpListenMain(port: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      process.stderr.write(`nothing arrived on UDP ${port} within ${timeoutMs} ms\n`);
      sock.close();
      resolve(2);
    }, timeoutMs);
    sock.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      process.stdout.write(`${rinfo.address}:${rinfo.port} ${msg.toString()}\n`);
      sock.close();
      resolve(0);
    });
    sock.bind(port, () => process.stdout.write(`listening ${port}\n`));
  });
}

if (isMain()) {
  const [cmd, host, port, payload, timeout] = process.argv.slice(2);
  if (cmd === 'udp-listen') {
    udpListenMain(Number(host), Number(port ?? 5000)).then((c) => (process.exitCode = c));
  } else if (cmd !== 'udp' || !host || !port) {
    process.stderr.write('usage: client.js udp HOST PORT PAYLOAD [TIMEOUT_MS]\n');
    process.exitCode = 64;
  } else {
    udpMain(host, Number(port), payload ?? 'ping', Number(timeout ?? 2000)).then((c) => (process.exitCode = c));
  }
}

/**
 * One attempt of each checker kind, as keepalived's check_tcp.c / check_http.c / check_misc.c /
 * check_udp.c / check_dns.c do it. Each resolves (never rejects) with ok/detail and, for
 * MISC_CHECK with misc_dynamic, the weight the exit code asks for. Bounded by connect_timeout
 * (misc_timeout for MISC_CHECK). By default sockets are the kernel's own (node:net/tls/dgram), so
 * a check leaves from the director host's address on the real servers' network (or `bindto`); the
 * HTTP(S), UDP and DNS checkers also take the exchange as a function, which uvsd points at its data
 * path for checks of a DR/TUN real server's VIP (pipeline/probe.ts; SSL_GET's TLS runs over it with
 * streamTcpExchange).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { createSocket } from 'node:dgram';
import { createHash, randomInt } from 'node:crypto';
import { spawn } from 'node:child_process';
import type { CheckConf, UrlConf } from './config.js';
import { DNS_TYPES } from './keepalived.js';

export interface CheckResult {
  ok: boolean;
  detail: string;
  /** MISC_CHECK misc_dynamic: new weight (exit code − 2). */
  weight?: number;
}

export type CheckRunner = (c: CheckConf) => Promise<CheckResult>;

const ms = (s: number): number => Math.max(1, Math.round(s * 1000));

export function runCheck(c: CheckConf): Promise<CheckResult> {
  switch (c.type) {
    case 'TCP_CHECK': return tcpCheck(c);
    case 'HTTP_GET': return httpCheck(c, false);
    case 'SSL_GET': return httpCheck(c, true);
    case 'MISC_CHECK': return miscCheck(c);
    case 'UDP_CHECK': return udpCheck(c);
    case 'DNS_CHECK': return dnsCheck(c);
  }
}

function connectOpts(c: CheckConf): { host: string; port: number; localAddress?: string; localPort?: number } {
  return {
    host: c.connectIp, port: c.connectPort,
    ...(c.bindto ? { localAddress: c.bindto } : {}),
    ...(c.bindPort ? { localPort: c.bindPort } : {}),
  };
}

export function tcpCheck(c: CheckConf): Promise<CheckResult> {
  return new Promise((resolve) => {
    let done = false;
    const sock = netConnect(connectOpts(c));
    const finish = (r: CheckResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, detail: `connect timeout (${c.connectTimeout}s)` }), ms(c.connectTimeout));
    sock.once('connect', () => finish({ ok: true, detail: 'connected' }));
    sock.once('error', (e) => finish({ ok: false, detail: errText(e) }));
  });
}

function errText(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ? `${code}` : e.message;
}

interface HttpReply {
  status: number;
  body: Buffer;
}

/** Parses an HTTP/1.x response (close-delimited, content-length or chunked). */
export function parseHttpResponse(raw: Buffer): HttpReply | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = raw.subarray(0, end).toString('latin1');
  const m = /^HTTP\/\d\.\d\s+(\d{3})/.exec(head);
  if (!m) return null;
  let body = raw.subarray(end + 4);
  const headers = head.split('\r\n').slice(1);
  const hv = (name: string): string | undefined => {
    for (const h of headers) {
      const i = h.indexOf(':');
      if (i > 0 && h.slice(0, i).trim().toLowerCase() === name) return h.slice(i + 1).trim();
    }
    return undefined;
  };
  if ((hv('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const le = body.indexOf('\r\n', off);
      if (le < 0) break;
      const size = parseInt(body.subarray(off, le).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(body.subarray(le + 2, le + 2 + size));
      off = le + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else {
    const cl = hv('content-length');
    if (cl !== undefined && /^\d+$/.test(cl)) body = body.subarray(0, Number(cl));
  }
  return { status: Number(m[1]), body };
}

/**
 * One request/reply over a TCP connection: the request's bytes out, the server's bytes until it
 * closes back (`reply`), or what went wrong (`error`).
 */
export type TcpExchange = (c: CheckConf, request: Buffer, tls: boolean) => Promise<{ reply: Buffer } | { error: string }>;

/** The exchange through the host's own TCP (or TLS) socket (bindto / bind_port honoured). */
export function socketTcpExchange(c: CheckConf, request: Buffer, tls: boolean): Promise<{ reply: Buffer } | { error: string }> {
  const base = connectOpts(c);
  const sock: Socket = tls
    ? tlsConnect({ ...base, ...tlsOpts(c) })
    : netConnect(base);
  return exchangeOver(c, sock, request, tls ? 'secureConnect' : 'connect');
}

/**
 * The exchange over a byte stream someone else connects (uvsd's own TCP client through the data
 * path, pipeline/probe-socket.ts), with TLS on top for SSL_GET. `transport` settles when the
 * stream's connection is over: a failure (refused, reset, timeout) fails the exchange.
 */
export function streamTcpExchange(c: CheckConf, request: Buffer, tls: boolean, stream: Duplex,
  transport: Promise<{ ok: boolean; detail: string }>): Promise<{ reply: Buffer } | { error: string }> {
  const sock: Duplex = tls ? tlsConnect({ socket: stream, ...tlsOpts(c) }) : stream;
  return exchangeOver(c, sock, request, tls ? 'secureConnect' : null, transport, stream);
}

/** keepalived's SSL_GET: no certificate verification; SNI = virtualhost with enable_sni. */
function tlsOpts(c: CheckConf): { rejectUnauthorized: false; servername?: string } {
  return { rejectUnauthorized: false, ...(c.enableSni && c.virtualhost ? { servername: c.virtualhost } : {}) };
}

/** Request out (at `startOn`, or at once), reply in until the peer's end, bounded by connect_timeout. */
function exchangeOver(c: CheckConf, sock: Duplex, request: Buffer, startOn: string | null,
  transport?: Promise<{ ok: boolean; detail: string }>, under?: Duplex): Promise<{ reply: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    const finish = (r: { reply: Buffer } | { error: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      under?.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ error: `timeout (${c.connectTimeout}s)` }), ms(c.connectTimeout));
    if (startOn === null) sock.write(request);
    else sock.once(startOn, () => sock.write(request));
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
    });
    sock.once('end', () => finish({ reply: Buffer.concat(chunks) }));
    sock.once('error', (e) => finish({ error: errText(e) }));
    transport?.then((r) => { if (!r.ok) finish({ error: r.detail }); }, (e: unknown) => finish({ error: String(e) }));
  });
}

/** keepalived's request for one url (HTTP/1.0, Connection: close). */
export function httpRequest(c: CheckConf, tls: boolean, url: UrlConf): Buffer {
  const host = c.virtualhost || c.connectIp;
  const hostHdr = (c.connectPort === (tls ? 443 : 80) || c.virtualhost) ? host : `${host}:${c.connectPort}`;
  return Buffer.from(`GET ${url.path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: ${hostHdr}\r\nConnection: close\r\n\r\n`, 'latin1');
}

/**
 * HTTP_GET / SSL_GET: each url fetched in turn, its status, digest and regex checked. `exchange`
 * carries the request (host sockets by default; uvsd sends an HTTP_GET to the VIP of a DR/TUN real
 * server through the data path).
 */
export async function httpCheck(c: CheckConf, tls: boolean, exchange: TcpExchange = socketTcpExchange): Promise<CheckResult> {
  for (const url of c.urls) {
    const x = await exchange(c, httpRequest(c, tls, url), tls);
    if ('error' in x) return { ok: false, detail: `${url.path}: ${x.error}` };
    const r = parseHttpResponse(x.reply);
    if (r === null) return { ok: false, detail: `${url.path}: malformed HTTP response` };
    const codes = url.statusCodes.length ? url.statusCodes : (url.digest ? [] : [[200, 299] as [number, number]]);
    if (codes.length && !codes.some(([lo, hi]) => r.status >= lo && r.status <= hi)) {
      return { ok: false, detail: `${url.path}: status ${r.status}` };
    }
    if (url.digest) {
      const d = createHash('md5').update(r.body).digest('hex');
      if (d !== url.digest) return { ok: false, detail: `${url.path}: digest ${d} != ${url.digest}` };
    }
    if (url.regex && !new RegExp(url.regex).test(r.body.toString('utf8'))) {
      return { ok: false, detail: `${url.path}: body does not match /${url.regex}/` };
    }
  }
  return { ok: true, detail: `${c.urls.length === 1 ? c.urls[0]!.path + ' ' : ''}ok` };
}

export function miscCheck(c: CheckConf): Promise<CheckResult> {
  return new Promise((resolve) => {
    let done = false;
    const child = spawn('/bin/sh', ['-c', c.miscPath], { stdio: 'ignore', detached: true });
    const finish = (r: CheckResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      finish({ ok: false, detail: `timeout (${c.miscTimeout}s)` });
    }, ms(c.miscTimeout || c.delayLoop));
    child.once('error', (e) => finish({ ok: false, detail: errText(e) }));
    child.once('exit', (code, sig) => {
      if (code === null) return finish({ ok: false, detail: `killed by ${sig}` });
      if (code === 0) return finish({ ok: true, detail: 'exit 0' });
      if (c.miscDynamic && code >= 2) return finish({ ok: true, detail: `exit ${code}`, weight: code - 2 });
      return finish({ ok: false, detail: `exit ${code}` });
    });
  });
}

/** What one UDP exchange gave: the first accepted reply, an error (an ICMP error: refused,
 * unreachable), or neither (nothing within connect_timeout). */
export interface UdpExchangeResult {
  reply?: Buffer;
  error?: string;
}

/** Sends `payload` to connect_ip:connect_port and waits for the first reply `accept` takes. */
export type UdpExchange = (c: CheckConf, payload: Buffer, accept: (msg: Buffer) => boolean) => Promise<UdpExchangeResult>;

/** The exchange through the host's own UDP socket (bindto / bind_port honoured). */
export function socketExchange(c: CheckConf, payload: Buffer, accept: (msg: Buffer) => boolean): Promise<UdpExchangeResult> {
  return new Promise((resolve) => {
    let done = false;
    const sock = createSocket('udp4');
    const finish = (r: UdpExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      resolve(r);
    };
    const timer = setTimeout(() => finish({}), ms(c.connectTimeout));
    sock.on('error', (e) => finish({ error: errText(e) }));
    sock.on('message', (msg) => { if (accept(msg)) finish({ reply: msg }); });
    const go = (): void => {
      sock.connect(c.connectPort, c.connectIp, () => {
        sock.send(payload, (e) => { if (e) finish({ error: errText(e) }); });
      });
    };
    if (c.bindto || c.bindPort) sock.bind({ port: c.bindPort, ...(c.bindto ? { address: c.bindto } : {}) }, go);
    else go();
  });
}

/** keepalived UDP_CHECK: without require_reply, no ICMP error within connect_timeout is success. */
export async function udpCheck(c: CheckConf, exchange: UdpExchange = socketExchange): Promise<CheckResult> {
  const want = c.requireReply;
  const r = await exchange(c, c.payload ?? Buffer.alloc(0), () => true);
  if (r.error !== undefined) return { ok: false, detail: r.error };
  if (r.reply === undefined) return want ? { ok: false, detail: `no reply (${c.connectTimeout}s)` } : { ok: true, detail: 'no ICMP error' };
  if (want instanceof Buffer && !r.reply.subarray(0, want.length).equals(want)) return { ok: false, detail: 'reply does not match require_reply' };
  return { ok: true, detail: 'reply' };
}

export function dnsQuery(id: number, name: string, type: number): Buffer {
  const labels = name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  const hdr = Buffer.alloc(12);
  hdr.writeUInt16BE(id, 0);
  hdr.writeUInt16BE(0x0100, 2); // RD
  hdr.writeUInt16BE(1, 4);
  parts.push(hdr);
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    parts.push(Buffer.from([b.length]), b);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  parts.push(tail);
  return Buffer.concat(parts);
}

/** keepalived DNS_CHECK: a query for dnsName/dnsType answered with rcode 0 and at least one answer. */
export async function dnsCheck(c: CheckConf, exchange: UdpExchange = socketExchange): Promise<CheckResult> {
  const id = randomInt(0, 65536);
  const r = await exchange(c, dnsQuery(id, c.dnsName, DNS_TYPES[c.dnsType] ?? 1),
    (msg) => msg.length >= 12 && msg.readUInt16BE(0) === id && (msg.readUInt16BE(2) & 0x8000) !== 0);
  if (r.error !== undefined) return { ok: false, detail: r.error };
  const msg = r.reply;
  if (msg === undefined) return { ok: false, detail: `no answer (${c.connectTimeout}s)` };
  const rcode = msg.readUInt16BE(2) & 0xf;
  if (rcode !== 0) return { ok: false, detail: `rcode ${rcode}` };
  if (msg.readUInt16BE(6) === 0) return { ok: false, detail: 'no answer records' };
  return { ok: true, detail: `${msg.readUInt16BE(6)} answer(s)` };
}

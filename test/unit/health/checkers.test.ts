/**
 * The checkers against real local servers on 127.0.0.1 (no root): TCP connect / refused / timeout,
 * HTTP status codes, MD5 digest of the body as keepalived computes it, virtualhost, regex,
 * MISC_CHECK exit codes with misc_dynamic, UDP with ICMP port unreachable, DNS answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { defaultCheck, type CheckConf, type CheckType } from '../../../src/health/config.js';
import { dnsCheck, httpCheck, miscCheck, parseHttpResponse, tcpCheck, udpCheck } from '../../../src/health/checkers.js';

function conf(type: CheckType, port: number, extra: Partial<CheckConf> = {}): CheckConf {
  return { ...defaultCheck(type, 'test', 1), connectIp: '127.0.0.1', connectPort: port, connectTimeout: 1, ...extra };
}

let http: Server;
let httpPort = 0;
let lastHost = '';
let tcp: TcpServer;
let freePort = 0;
let dns: Socket;
let dnsPort = 0;

beforeAll(async () => {
  http = createServer((req, res) => {
    lastHost = req.headers.host ?? '';
    if (req.url === '/missing') { res.writeHead(404); res.end('no'); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello world\n');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  // a port nobody listens on
  tcp = createTcpServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  freePort = (tcp.address() as AddressInfo).port;
  await new Promise<void>((r) => tcp.close(() => r()));
  dns = createSocket('udp4');
  dns.on('message', (m, rinfo) => {
    const name = m.subarray(12, m.length - 4);
    const nx = name.toString('latin1').includes('nx');
    const hdr = Buffer.from(m.subarray(0, 12));
    hdr.writeUInt16BE(0x8180 | (nx ? 3 : 0), 2);
    hdr.writeUInt16BE(nx ? 0 : 1, 6);
    const answer = nx ? Buffer.alloc(0) : Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    dns.send(Buffer.concat([hdr, m.subarray(12), answer]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
  dnsPort = dns.address().port;
});

afterAll(async () => {
  await new Promise<void>((r) => http.close(() => r()));
  dns.close();
});

describe('TCP_CHECK', () => {
  it('succeeds on connect, fails on refusal', async () => {
    expect(await tcpCheck(conf('TCP_CHECK', httpPort))).toMatchObject({ ok: true });
    expect(await tcpCheck(conf('TCP_CHECK', freePort))).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
  });
  it('fails after connect_timeout when nothing answers', async () => {
    const t0 = Date.now();
    // TEST-NET-1: never routed to anything that answers in a test sandbox (or unreachable at once).
    const r = await tcpCheck(conf('TCP_CHECK', 80, { connectIp: '192.0.2.1', connectTimeout: 0.3 }));
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
  it('bindto: the connection leaves from the given address', async () => {
    expect(await tcpCheck(conf('TCP_CHECK', httpPort, { bindto: '127.0.0.1' }))).toMatchObject({ ok: true });
  });
});

describe('HTTP_GET', () => {
  const url = (path: string, extra: Partial<{ digest: string; statusCodes: [number, number][]; regex: string }> = {}) =>
    ({ path, digest: '', statusCodes: [] as [number, number][], regex: '', ...extra });
  it('status 200-299 by default; other codes fail', async () => {
    expect(await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/')] }), false)).toMatchObject({ ok: true });
    expect(await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/missing')] }), false)).toMatchObject({ ok: false, detail: '/missing: status 404' });
    expect(await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/missing', { statusCodes: [[404, 404]] })] }), false)).toMatchObject({ ok: true });
  });
  it('digest is the MD5 of the body', async () => {
    const md5 = createHash('md5').update('hello world\n').digest('hex');
    expect(await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/', { digest: md5 })] }), false)).toMatchObject({ ok: true });
    const bad = await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/', { digest: '0'.repeat(32) })] }), false);
    expect(bad.ok).toBe(false);
    expect(bad.detail).toContain(md5);
  });
  it('virtualhost goes in the Host header; regex must match the body', async () => {
    expect(await httpCheck(conf('HTTP_GET', httpPort, { virtualhost: 'www.example.test', urls: [url('/', { regex: 'hel+o' })] }), false)).toMatchObject({ ok: true });
    expect(lastHost).toBe('www.example.test');
    expect(await httpCheck(conf('HTTP_GET', httpPort, { urls: [url('/', { regex: '^bye' })] }), false)).toMatchObject({ ok: false });
  });
  it('connection refused fails', async () => {
    expect(await httpCheck(conf('HTTP_GET', freePort, { urls: [url('/')] }), false)).toMatchObject({ ok: false });
  });
  it('SSL_GET against a plain server fails (no TLS handshake)', async () => {
    expect(await httpCheck(conf('SSL_GET', httpPort, { urls: [url('/')] }), true)).toMatchObject({ ok: false });
  });
  it('parses chunked and content-length bodies', () => {
    const r = parseHttpResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
    expect(r?.body.toString()).toBe('hello world');
    expect(parseHttpResponse(Buffer.from('HTTP/1.0 503 x\r\nContent-Length: 2\r\n\r\nabcdef'))).toMatchObject({ status: 503, body: Buffer.from('ab') });
  });
});

describe('MISC_CHECK', () => {
  it('exit 0 ok, 1 failed; misc_dynamic 2..255 sets weight exit - 2; timeout kills', async () => {
    expect(await miscCheck(conf('MISC_CHECK', 0, { miscPath: 'exit 0', miscTimeout: 2 }))).toMatchObject({ ok: true });
    expect(await miscCheck(conf('MISC_CHECK', 0, { miscPath: 'exit 1', miscTimeout: 2 }))).toMatchObject({ ok: false, detail: 'exit 1' });
    expect(await miscCheck(conf('MISC_CHECK', 0, { miscPath: 'exit 7', miscTimeout: 2 }))).toMatchObject({ ok: false });
    expect(await miscCheck(conf('MISC_CHECK', 0, { miscPath: 'exit 7', miscTimeout: 2, miscDynamic: true }))).toEqual({ ok: true, detail: 'exit 7', weight: 5 });
    expect(await miscCheck(conf('MISC_CHECK', 0, { miscPath: 'sleep 5', miscTimeout: 0.2 }))).toMatchObject({ ok: false, detail: 'timeout (0.2s)' });
  });
});

describe('UDP_CHECK and DNS_CHECK', () => {
  it('UDP: port unreachable fails; a reply passes', async () => {
    expect(await udpCheck(conf('UDP_CHECK', freePort, { payload: Buffer.from('x'), connectTimeout: 0.5 }))).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
    expect(await udpCheck(conf('UDP_CHECK', dnsPort, { payload: Buffer.alloc(16), requireReply: true }))).toMatchObject({ ok: true });
  });
  it('DNS: an answer passes; NXDOMAIN and silence fail', async () => {
    expect(await dnsCheck(conf('DNS_CHECK', dnsPort, { dnsName: 'www.example.test' }))).toMatchObject({ ok: true });
    expect(await dnsCheck(conf('DNS_CHECK', dnsPort, { dnsName: 'nx.example.test' }))).toMatchObject({ ok: false, detail: 'rcode 3' });
    expect(await dnsCheck(conf('DNS_CHECK', freePort, { connectTimeout: 0.3 }))).toMatchObject({ ok: false });
  });
});

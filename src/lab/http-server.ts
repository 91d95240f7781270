/**
 * The real server of the labs: a plain HTTP server that answers every request with one line naming
 * itself, the peer it saw and the local address:port the connection arrived on, e.g.
 *
 *   rs1 peer=10.0.0.50 local=10.0.1.7:80
 *
 * so a test can tell which real server answered, that FULLNAT real servers see the local address
 * (LIP) as peer, and that a NAT port mapping (VIP:80 → RIP:8080) landed on 8080. Every response
 * closes its connection (each request is a fresh connection, as the schedulers need).
 *
 * A connection that starts with a PROXY protocol header (uvsadm --proxy-protocol v1|v2) is read as
 * nginx's `proxy_protocol` listener would, and the answer gains what it said,
 * e.g. ` proxy=v2:192.168.10.6:40000>192.168.10.110:80`; a malformed header closes the connection.
 * A request body is counted: ` bytes=N`. (Lab server: it accepts plain connections too.)
 * With `--tls-port N` it also answers HTTPS on N (the labs' self-signed certificate, tls-cert.ts),
 * the same line with ` tls` appended, for keepalived SSL_GET checks.
 * With `--ftp-port N` it also serves FTP on N (ftp-server.ts), whose downloads name the server the
 * same way, for the labs of a director that rewrites FTP control traffic.
 *
 *   node dist/lab/http-server.js --name rs1 --port 80 [--port 8080] [--tls-port 443] [--ftp-port 21] [--addr 0.0.0.0]
 *
 * Prints `listening <addr>:<port>` per socket on stdout once bound (`listening tls <addr>:<port>`
 * for HTTPS, `listening <addr>:<port> ftp` for FTP); exits on SIGINT/SIGTERM.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { startFtpServer } from './ftp-server.js';
import { readProxyHeader } from './proxy-header.js';
import { LAB_TLS_CERT, LAB_TLS_KEY } from './tls-cert.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string', multiple: true },
    'tls-port': { type: 'string', multiple: true },
    'ftp-port': { type: 'string', multiple: true },
    addr: { type: 'string', default: '0.0.0.0' },
  },
});
const name = values.name ?? 'rs';
const ports = (values.port ?? ['80']).map(Number);
const servers: (Server | NetServer)[] = [];
/** What the PROXY header of each connection said. */
const proxied = new WeakMap<Socket, string>();

/** The answer: who we are, the peer, the local address:port, what a PROXY header said, the body size. */
const answer = (req: IncomingMessage, res: ServerResponse): void => {
  let bytes = 0;
  req.on('data', (d: Buffer) => { bytes += d.length; });
  req.on('end', () => {
    const peer = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const local = `${(req.socket.localAddress ?? '?').replace(/^::ffff:/, '')}:${req.socket.localPort}`;
    const pp = proxied.get(req.socket);
    const body = `${name} peer=${peer} local=${local}${pp ? ` proxy=${pp}` : ''}${bytes ? ` bytes=${bytes}` : ''}${req.socket instanceof TLSSocket ? ' tls' : ''}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
};

for (const port of ports) {
  const http = createServer(answer);
  http.keepAliveTimeout = 0;
  // The listener: reads a PROXY header if the connection starts with one, then hands the socket
  // (the rest of its bytes put back) to the HTTP server.
  const server = createNetServer((sock) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const h = readProxyHeader(buf);
      if (h === 'more') return;
      sock.off('data', onData);
      sock.pause();
      if (h !== null && 'error' in h) {
        process.stderr.write(`http-server ${name}: PROXY header refused: ${h.error}\n`);
        sock.destroy();
        return;
      }
      if (h !== null) {
        proxied.set(sock, h.command === 'PROXY' ? `v${h.version}:${h.src}:${h.srcPort}>${h.dst}:${h.dstPort}` : `v${h.version}:${h.command}`);
        buf = buf.subarray(h.length);
      }
      if (buf.length > 0) sock.unshift(buf);
      http.emit('connection', sock);
      sock.resume();
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
  });
  server.on('error', (err) => {
    process.stderr.write(`http-server ${name}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, values.addr, () => process.stdout.write(`listening ${values.addr}:${port}\n`));
  servers.push(server, http);
}

for (const port of (values['tls-port'] ?? []).map(Number)) {
  const http = createServer(answer);
  http.keepAliveTimeout = 0;
  const server = createTlsServer({ key: LAB_TLS_KEY, cert: LAB_TLS_CERT }, (sock) => http.emit('connection', sock));
  server.on('tlsClientError', () => { /* a client that gave up mid-handshake */ });
  server.on('error', (err) => {
    process.stderr.write(`http-server ${name}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, values.addr, () => process.stdout.write(`listening tls ${values.addr}:${port}\n`));
  servers.push(server, http);
}

for (const port of (values['ftp-port'] ?? []).map(Number)) {
  startFtpServer({ name, port, addr: values.addr }).then((server) => {
    servers.push(server);
    process.stdout.write(`listening ${values.addr}:${port} ftp\n`);
  }, (err: Error) => {
    process.stderr.write(`http-server ${name}: ftp ${values.addr}:${port}: ${err.message}\n`);
    process.exit(1);
  });
}

const stop = () => {
  for (const s of servers) s.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

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
 *   node dist/lab/http-server.js --name rs1 --port 80 [--port 8080] [--addr 0.0.0.0]
 *
 * Prints `listening <addr>:<port>` per socket on stdout once bound; exits on SIGINT/SIGTERM.
 */
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string', multiple: true },
    addr: { type: 'string', default: '0.0.0.0' },
  },
});
const name = values.name ?? 'rs';
const ports = (values.port ?? ['80']).map(Number);
const servers: Server[] = [];

for (const port of ports) {
  const server = createServer((req, res) => {
    const peer = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const local = `${(req.socket.localAddress ?? '?').replace(/^::ffff:/, '')}:${req.socket.localPort}`;
    const body = `${name} peer=${peer} local=${local}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  server.keepAliveTimeout = 0;
  server.on('error', (err) => {
    process.stderr.write(`http-server ${name}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, values.addr, () => process.stdout.write(`listening ${values.addr}:${port}\n`));
  servers.push(server);
}

const stop = () => {
  for (const s of servers) s.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

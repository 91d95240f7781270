/**
 * The UDP real server of the labs: answers each datagram with `<name>:<payload>` from the address
 * and port it arrived on. Replies must leave from the address the client asked for (the VIP in DR
 * and TUN), and a socket bound to 0.0.0.0 would answer from the primary address instead, so the
 * server binds each `--addr` separately. An address that does not exist yet (the VIP of a TUN real
 * server appears when `uvs tunnel-endpoint` has created its device) is retried for up to 60 s.
 *
 *   node dist/lab/udp-echo.js --name rs1 --port 53 --addr 10.0.0.7 [--addr 10.0.0.100]
 *
 * Prints `listening <addr>:<port>` per bound socket on stdout; exits on SIGINT/SIGTERM.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string', default: '53' },
    addr: { type: 'string', multiple: true },
  },
});
const name = values.name ?? 'rs';
const port = Number(values.port);
const sockets: Socket[] = [];

function bind(addr: string, deadline: number): void {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    sock.send(Buffer.concat([Buffer.from(`${name}:`), msg]), rinfo.port, rinfo.address);
  });
  sock.once('error', (err: NodeJS.ErrnoException) => {
    sock.close();
    if (err.code === 'EADDRNOTAVAIL' && Date.now() < deadline) {
      setTimeout(() => bind(addr, deadline), 200);
      return;
    }
    process.stderr.write(`udp-echo ${name}: ${addr}:${port}: ${err.message}\n`);
    if (err.code !== 'EADDRNOTAVAIL') process.exit(1);
  });
  sock.bind(port, addr, () => {
    sock.removeAllListeners('error');
    sock.on('error', (err) => process.stderr.write(`udp-echo ${name}: ${err.message}\n`));
    process.stdout.write(`listening ${addr}:${port}\n`);
  });
  sockets.push(sock);
}

for (const a of values.addr ?? ['0.0.0.0']) bind(a, Date.now() + 60_000);

const stop = () => {
  for (const s of sockets) {
    try {
      s.close();
    } catch {
      /* already closed */
    }
  }
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

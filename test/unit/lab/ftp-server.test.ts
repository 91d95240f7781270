/**
 * The labs' FTP real server (src/lab/ftp-server.ts) on loopback, driven by the real curl in all four
 * data-connection modes, since curl is the client the labs use through the director, and by a raw
 * socket for what curl never sends (bad arguments, RETR with no data setup, split commands).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { epsvReply, parseEprtArg, parsePortArg, pasvReply, startFtpServer, type FtpServerOptions } from '../../../src/lab/ftp-server.js';

const run = promisify(execFile);
const servers: Server[] = [];
const sockets = new Set<Socket>();

/** A server on 127.0.0.1, ephemeral control port; its connections are remembered so afterEach can end them. */
async function start(opts: Partial<FtpServerOptions> = {}): Promise<number> {
  const server = await startFtpServer({ name: 'rsf', port: 0, addr: '127.0.0.1', ...opts });
  servers.push(server);
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  return (server.address() as AddressInfo).port;
}

async function curl(port: number, args: string[], path = 'hello.txt'): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '8', ...args, `ftp://127.0.0.1:${port}/${path}`], { timeout: 10_000 });
  return stdout;
}

/** `<name> … data=<mode> <local ip:port> -> <remote ip:port> file=<name>`, taken apart. */
function parseBody(body: string) {
  const m = /^(\S+) peer=(\S+) local=(\S+) data=(\w+) ([\d.]+):(\d+) -> ([\d.]+):(\d+) file=(\S+)\n$/.exec(body);
  expect(m, body).not.toBeNull();
  const [, name, peer, local, mode, dataLocal, dataLocalPort, dataRemote, dataRemotePort, file] = m!;
  return { name, peer, local, mode, dataLocal, dataLocalPort: Number(dataLocalPort), dataRemote, dataRemotePort: Number(dataRemotePort), file };
}

/** A raw control connection: `next()` is the next reply line, however the segments carried it. */
async function rawClient(port: number) {
  const sock = connect(port, '127.0.0.1');
  sockets.add(sock);
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const w = waiters.shift();
      if (w) w(l); else lines.push(l);
    }
  });
  await new Promise<void>((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  const next = (): Promise<string> => {
    const l = lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((res) => waiters.push(res));
  };
  const send = (s: string): void => { sock.write(s); };
  return { sock, next, send };
}

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((res) => s.close(res))));
});

describe('lab FTP server with curl', () => {
  it('PASV (--disable-epsv): the download names the server, the control connection and the passive data connection', async () => {
    const port = await start();
    const b = parseBody(await curl(port, ['--disable-epsv']));
    expect(b).toMatchObject({ name: 'rsf', peer: '127.0.0.1', local: `127.0.0.1:${port}`, mode: 'pasv', dataLocal: '127.0.0.1', dataRemote: '127.0.0.1', file: 'hello.txt' });
    expect(b.dataLocalPort).not.toBe(port);
  });

  it('EPSV (curl\'s default)', async () => {
    const port = await start();
    const b = parseBody(await curl(port, []));
    expect(b).toMatchObject({ name: 'rsf', mode: 'epsv', dataLocal: '127.0.0.1', file: 'hello.txt' });
    expect(b.dataLocalPort).not.toBe(port);
  });

  // The active tests run one after the other (vitest's default within a file): two of them binding
  // port 20 at once is what this file must not depend on.
  it('PORT (-P --disable-eprt) with activeSourcePort 0: the server connects from an ephemeral port', async () => {
    const port = await start({ activeSourcePort: 0 });
    const b = parseBody(await curl(port, ['-P', '127.0.0.1', '--disable-eprt']));
    expect(b).toMatchObject({ name: 'rsf', mode: 'port', dataLocal: '127.0.0.1', dataRemote: '127.0.0.1', file: 'hello.txt' });
    expect(b.dataLocalPort).toBeGreaterThan(1023);
  });

  it('EPRT (-P) with the default activeSourcePort: the server connects from port 20, as vsftpd', async () => {
    const port = await start();
    const b = parseBody(await curl(port, ['-P', '127.0.0.1']));
    expect(b).toMatchObject({ name: 'rsf', mode: 'eprt', dataLocal: '127.0.0.1', dataLocalPort: 20, dataRemote: '127.0.0.1', file: 'hello.txt' });
  });

  it('PORT from port 20 twice in a row (the first connection\'s TIME_WAIT does not block the second)', async () => {
    const port = await start({ activeSourcePort: 20 });
    for (const f of ['a.txt', 'b.txt']) {
      const b = parseBody(await curl(port, ['-P', '127.0.0.1', '--disable-eprt'], f));
      expect(b).toMatchObject({ mode: 'port', dataLocalPort: 20, file: f });
    }
  });

  it('a directory listing comes over the data connection', async () => {
    const port = await start();
    // Listings go in ASCII mode (TYPE A), where curl turns the server's CRLF into LF.
    expect(await curl(port, [], '')).toBe('-rw-r--r-- 1 ftp ftp 64 Jan 01 00:00 file.txt\n');
  });
});

describe('lab FTP server, raw control connection', () => {
  it('greets, refuses bad input without dying, and reads commands however they are split', async () => {
    const port = await start();
    const c = await rawClient(port);
    expect(await c.next()).toBe('220 rsf uvs lab ftp');
    c.send('PORT 1,2,3\r\n');
    expect(await c.next()).toMatch(/^501 /);
    c.send('RETR x\r\n');
    expect(await c.next()).toMatch(/^425 /);
    c.send('FOO\r\n');
    expect(await c.next()).toMatch(/^502 /);
    c.send('EPRT |1|1.2.3|21|\r\n');
    expect(await c.next()).toMatch(/^501 /);
    // One command over two segments, then two in one (with a bare LF), lower case.
    c.send('NO');
    await new Promise((r) => setTimeout(r, 50));
    c.send('OP\r\n');
    expect(await c.next()).toMatch(/^200 /);
    c.send('syst\r\npwd\n');
    expect(await c.next()).toBe('215 UNIX Type: L8');
    expect(await c.next()).toBe('257 "/" is the current directory');
    c.send('FEAT\r\n');
    const feat = [await c.next(), await c.next(), await c.next(), await c.next(), await c.next(), await c.next()];
    expect(feat).toEqual(['211-Features:', ' EPSV', ' EPRT', ' SIZE', ' PASV', '211 End']);
    c.send('QUIT\r\n');
    expect(await c.next()).toMatch(/^221 /);
    await new Promise((r) => c.sock.once('close', r));
  });

  it('PASV names the control connection\'s local address; an active connect that fails is 425', async () => {
    const port = await start({ activeSourcePort: 0 });
    const c = await rawClient(port);
    await c.next();
    c.send('PASV\r\n');
    const m = /^227 Entering Passive Mode \(127,0,0,1,(\d+),(\d+)\)\.$/.exec(await c.next());
    expect(m).not.toBeNull();
    c.send('EPSV ALL\r\n');
    expect(await c.next()).toMatch(/^200 /);
    // A port nobody listens on (the control port of a server just closed).
    const dead = await start();
    await new Promise((r) => servers.pop()!.close(r));
    c.send(`EPRT |1|127.0.0.1|${dead}|\r\nRETR x\r\n`);
    expect(await c.next()).toMatch(/^200 /);
    expect(await c.next()).toMatch(/^425 /);
  });
});

describe('argument and reply formats', () => {
  it('PORT and EPRT arguments', () => {
    expect(parsePortArg('10,0,0,7,4,1')).toEqual({ host: '10.0.0.7', port: 1025 });
    expect(parsePortArg('10,0,0,7,0,0')).toBeNull();
    expect(parsePortArg('10,0,0,256,4,1')).toBeNull();
    expect(parsePortArg('1,2,3')).toBeNull();
    expect(parseEprtArg('|1|10.0.0.7|1025|')).toEqual({ host: '10.0.0.7', port: 1025 });
    expect(parseEprtArg('!2!::1!21!')).toEqual({ host: '::1', port: 21 });
    expect(parseEprtArg('|2|10.0.0.7|21|')).toBeNull();
    expect(parseEprtArg('|3|x|21|')).toBe('af');
    expect(parseEprtArg('|1|10.0.0.7|70000|')).toBeNull();
    expect(parseEprtArg('')).toBeNull();
  });

  it('227 and 229', () => {
    expect(pasvReply('10.0.0.7', 40001)).toBe('227 Entering Passive Mode (10,0,0,7,156,65).');
    expect(epsvReply(40001)).toBe('229 Entering Extended Passive Mode (|||40001|)');
  });
});

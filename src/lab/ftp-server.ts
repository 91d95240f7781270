/**
 * The FTP real server of the labs, for a director that rewrites FTP control traffic the way Linux's
 * ip_vs_ftp does. FTP is the protocol where that matters: the server names a data address inside
 * the control stream (PASV's `227 … (10,0,0,7,p1,p2)`), which a NAT director must rewrite to the
 * VIP, and in active mode the server opens the data connection itself, from port 20, which the
 * director must recognise as belonging to the control connection.
 *
 * A subset of RFC 959 / RFC 2428, enough for curl: any user and password log in, any file name can
 * be downloaded, and its content is one line saying who served it and over what, e.g.
 *
 *   rs1 peer=10.0.0.50 local=10.0.1.7:21 data=pasv 10.0.1.7:40001 -> 10.0.0.50:51000 file=a.txt
 *
 * (data=pasv|epsv|port|eprt, then the data connection's local -> remote address) so a test can see
 * which real server answered and which addresses both connections carried. SIZE is refused (504)
 * because the content depends on the data connection, which is not known when SIZE is asked.
 */
import { connect, createServer, isIP, isIPv4, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';

export interface FtpServerOptions {
  /** Named in the greeting and in every download. */
  name: string;
  port: number;
  /** Listen address; all addresses when absent. */
  addr?: string;
  /** Source port of active-mode data connections: 20 as vsftpd's connect_from_port_20; 0 = ephemeral. */
  activeSourcePort?: number;
}

type DataMode = 'pasv' | 'epsv' | 'port' | 'eprt';

/** A PASV/EPSV listener waiting for its one data connection. */
interface Passive {
  mode: 'pasv' | 'epsv';
  port: number;
  /** The data connection, or null when nobody connected in time or the session ended. */
  conn: Promise<Socket | null>;
  close(): void;
}

/** Where a PORT/EPRT said to connect to. */
interface Active {
  mode: 'port' | 'eprt';
  host: string;
  port: number;
}

/** How long a PASV/EPSV listener waits for its connection, and an active connect for its SYN-ACK. */
const PASSIVE_WAIT_MS = 30_000;
const ACTIVE_CONNECT_MS = 10_000;
/** A longer "line" is not a command; dropping it keeps a client without newlines from growing memory. */
const MAX_LINE = 4096;
/** Lines read ahead of the one being handled before the control socket is paused. */
const MAX_PENDING = 64;
const LISTING_LINE = '-rw-r--r-- 1 ftp ftp 64 Jan 01 00:00 file.txt\r\n';
const FEATURES = ['EPSV', 'EPRT', 'SIZE', 'PASV'];

/** An address as a test wants to read it: IPv4-mapped IPv6 addresses (dual-stack sockets) unmapped. */
const bare = (a: string | undefined): string => (a ?? '?').replace(/^::ffff:/i, '');

/** Starts the server; resolves once it listens. */
export function startFtpServer(opts: FtpServerOptions): Promise<Server> {
  const log = (msg: string): void => { process.stderr.write(`ftp-server ${opts.name}: ${msg}\n`); };
  const server = createServer((sock) => new Session(sock, opts, log));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.addr, () => {
      server.off('error', reject);
      server.on('error', (err) => log(err.message));
      resolve(server);
    });
  });
}

/** PORT's `h1,h2,h3,h4,p1,p2`, or null when it is not six bytes naming a non-zero port. */
export function parsePortArg(arg: string): { host: string; port: number } | null {
  const parts = arg.trim().split(',');
  if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  const n = parts.map(Number);
  const port = n[4]! * 256 + n[5]!;
  return port === 0 ? null : { host: n.slice(0, 4).join('.'), port };
}

/**
 * EPRT's `|af|addr|port|` (any delimiter, RFC 2428), or 'af' when the address family is neither 1
 * nor 2 (answered 522, not 501), or null when malformed.
 */
export function parseEprtArg(arg: string): { host: string; port: number } | 'af' | null {
  const s = arg.trim();
  const d = s[0];
  if (d === undefined || s.length < 2) return null;
  const f = s.split(d);
  if (f.length !== 5 || f[0] !== '' || f[4] !== '') return null;
  const [, af, host = '', portStr = ''] = f;
  if (af !== '1' && af !== '2') return /^\d+$/.test(af ?? '') ? 'af' : null;
  if (isIP(host) !== (af === '1' ? 4 : 6) || !/^\d{1,5}$/.test(portStr)) return null;
  const port = Number(portStr);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}

/** `227 … (h1,h2,h3,h4,p1,p2).`: the data address as PASV names it, which a NAT director rewrites. */
export const pasvReply = (ip: string, port: number): string =>
  `227 Entering Passive Mode (${ip.split('.').join(',')},${port >> 8},${port & 255}).`;

/** `229 … (|||port|)`: EPSV names only the port, the address being the control connection's. */
export const epsvReply = (port: number): string => `229 Entering Extended Passive Mode (|||${port}|)`;

/** Listens for one data connection on addr, ephemeral port; null when it cannot listen. */
function listenPassive(mode: Passive['mode'], addr: string, log: (m: string) => void): Promise<Passive | null> {
  const listener = createServer();
  let settle: (s: Socket | null) => void = () => {};
  const conn = new Promise<Socket | null>((r) => { settle = r; });
  let taken: Socket | null = null;
  const timer = setTimeout(() => { listener.close(); settle(null); }, PASSIVE_WAIT_MS);
  // Also ends a connection that arrived but was never used: its session ended or moved on.
  const close = (): void => {
    clearTimeout(timer);
    listener.close();
    taken?.destroy();
    settle(null);
  };
  listener.on('connection', (s) => {
    s.on('error', (err) => log(`data connection: ${err.message}`));
    // One connection per PASV: a second one that raced the close below is not ours to serve.
    if (taken) { s.destroy(); return; }
    taken = s;
    clearTimeout(timer);
    listener.close();
    settle(s);
  });
  return new Promise((resolve) => {
    listener.once('error', (err) => {
      log(`${mode.toUpperCase()} listen on ${addr}: ${err.message}`);
      close();
      resolve(null);
    });
    listener.listen(0, addr, () => {
      const a = listener.address();
      resolve(a !== null && typeof a === 'object' ? { mode, port: a.port, conn, close } : null);
    });
  });
}

/** Connects to host:port from localAddress:localPort (0 = ephemeral); the error when it cannot. */
function connectActive(host: string, port: number, localAddress: string, localPort: number, log: (m: string) => void): Promise<Socket | Error> {
  return new Promise((resolve) => {
    const o: TcpNetConnectOpts = { host, port, localAddress };
    if (localPort !== 0) o.localPort = localPort;
    let sock: Socket;
    try {
      sock = connect(o);
    } catch (err) {
      resolve(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const timer = setTimeout(() => { sock.destroy(); resolve(new Error('connect timed out')); }, ACTIVE_CONNECT_MS);
    const failed = (err: Error): void => { clearTimeout(timer); resolve(err); };
    sock.once('error', failed);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.off('error', failed);
      sock.on('error', (err) => log(`data connection: ${err.message}`));
      resolve(sock);
    });
  });
}

/** Writes body and ends the socket; resolves true once everything is handed to the kernel and FIN sent. */
function sendAndEnd(sock: Socket, body: string): Promise<boolean> {
  return new Promise((resolve) => {
    sock.once('error', () => resolve(false));
    sock.once('close', () => resolve(false));
    sock.once('finish', () => resolve(true));
    sock.end(body);
  });
}

/** One control connection. Commands are handled strictly in order, one at a time, as FTP requires. */
class Session {
  private buf: Buffer = Buffer.alloc(0);
  /** The rest of an over-long line is still to come and must not be taken for a command. */
  private discarding = false;
  /** Lines not yet handled; null stands for an over-long one, answered 500 in its turn. */
  private readonly pending: (string | null)[] = [];
  private running = false;
  private closed = false;
  private passive: Passive | null = null;
  private active: Active | null = null;
  private readonly dataSockets = new Set<Socket>();

  constructor(private readonly ctl: Socket, private readonly opts: FtpServerOptions, private readonly log: (m: string) => void) {
    ctl.on('error', (err) => log(`control connection: ${err.message}`));
    ctl.on('close', () => this.end());
    ctl.on('data', (chunk: Buffer) => this.read(chunk));
    this.reply(`220 ${opts.name} uvs lab ftp`);
  }

  /** Splits what arrived into lines (CRLF or bare LF), however the segments cut them. */
  private read(chunk: Buffer): void {
    if (this.closed) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      const line = this.buf.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      this.buf = this.buf.subarray(nl + 1);
      if (this.discarding) this.discarding = false;
      else if (line.trim() !== '') this.pending.push(line);
    }
    if (this.buf.length > MAX_LINE) {
      this.buf = Buffer.alloc(0);
      if (!this.discarding) this.pending.push(null);
      this.discarding = true;
    }
    if (this.pending.length > MAX_PENDING) this.ctl.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (!this.closed && this.pending.length > 0) {
      const line = this.pending.shift();
      if (line === undefined) break;
      if (line === null) { this.reply('500 Line too long.'); continue; }
      try {
        await this.command(line);
      } catch (err) {
        this.log(`${line.split(' ')[0]}: ${err instanceof Error ? err.message : String(err)}`);
        this.reply('451 Local error.');
      }
    }
    this.running = false;
    if (!this.closed) this.ctl.resume();
  }

  private reply(text: string): void {
    if (!this.closed && this.ctl.writable) this.ctl.write(`${text}\r\n`);
  }

  private async command(line: string): Promise<void> {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    switch (verb) {
      case 'USER': return this.reply('331 Any password will do.');
      case 'PASS': return this.reply('230 Logged in.');
      case 'SYST': return this.reply('215 UNIX Type: L8');
      case 'FEAT': return this.reply(['211-Features:', ...FEATURES.map((f) => ` ${f}`), '211 End'].join('\r\n'));
      case 'PWD': case 'XPWD': return this.reply('257 "/" is the current directory');
      case 'CWD': case 'CDUP': return this.reply('250 Directory changed.');
      case 'TYPE': return this.reply(`200 Type set to ${arg.trim().toUpperCase() || 'I'}.`);
      case 'MODE': case 'STRU': case 'NOOP': case 'OPTS': return this.reply('200 OK.');
      // Not 550: curl takes a 550 to SIZE as "the file does not exist" and gives up on the RETR.
      case 'SIZE': return this.reply('504 size unknown');
      case 'MDTM': return this.reply('550 No modification time.');
      case 'QUIT': return this.quit();
      case 'PASV': return this.pasv();
      case 'EPSV': return this.epsv(arg.trim());
      case 'PORT': return this.port(arg);
      case 'EPRT': return this.eprt(arg);
      case 'RETR':
        if (arg === '') return this.reply('501 RETR needs a file name.');
        return this.transfer((c, mode) => this.download(c, mode, arg));
      case 'LIST': return this.transfer(() => LISTING_LINE);
      case 'NLST': return this.transfer(() => 'file.txt\r\n');
      default: return this.reply('502 Command not implemented.');
    }
  }

  private quit(): void {
    this.reply('221 Goodbye.');
    this.ctl.end();
    this.end();
  }

  private async pasv(): Promise<void> {
    const ip = bare(this.ctl.localAddress);
    // 227 can only name an IPv4 address; an IPv6 client has EPSV.
    if (!isIPv4(ip)) return this.reply('425 PASV needs an IPv4 control connection; use EPSV.');
    const p = await this.openPassive('pasv', ip);
    if (p) this.reply(pasvReply(ip, p.port));
  }

  private async epsv(arg: string): Promise<void> {
    if (arg.toUpperCase() === 'ALL') return this.reply('200 EPSV ALL ok.');
    if (arg !== '' && arg !== '1' && arg !== '2') return this.reply('522 Network protocol not supported, use (1,2)');
    const p = await this.openPassive('epsv', bare(this.ctl.localAddress));
    if (p) this.reply(epsvReply(p.port));
  }

  /** A new listener on the control connection's local address, replacing any earlier data setup. */
  private async openPassive(mode: Passive['mode'], ip: string): Promise<Passive | null> {
    this.resetData();
    const p = await listenPassive(mode, ip, this.log);
    if (p === null) {
      this.reply('425 Cannot open a data listener.');
      return null;
    }
    if (this.closed) { p.close(); return null; }
    this.passive = p;
    return p;
  }

  private port(arg: string): void {
    const a = parsePortArg(arg);
    if (a === null) return this.reply('501 Bad PORT argument.');
    this.resetData();
    this.active = { mode: 'port', ...a };
    this.reply('200 PORT command successful.');
  }

  private eprt(arg: string): void {
    const a = parseEprtArg(arg);
    if (a === 'af') return this.reply('522 Network protocol not supported, use (1,2)');
    if (a === null) return this.reply('501 Bad EPRT argument.');
    this.resetData();
    this.active = { mode: 'eprt', ...a };
    this.reply('200 EPRT command successful.');
  }

  /** The data connection the last PASV/EPSV/PORT/EPRT set up (used once), or a 425 and null. */
  private async openData(): Promise<{ sock: Socket; mode: DataMode } | null> {
    const { passive, active } = this;
    this.active = null;
    if (passive) {
      // Still this.passive while waiting, so that the session ending closes the listener.
      const sock = await passive.conn;
      this.passive = null;
      if (sock) return { sock, mode: passive.mode };
      this.reply('425 No data connection arrived.');
      return null;
    }
    if (active) {
      const src = bare(this.ctl.localAddress);
      const r = await connectActive(active.host, active.port, src, this.opts.activeSourcePort ?? 20, this.log);
      if (!(r instanceof Error)) return { sock: r, mode: active.mode };
      this.log(`${active.mode.toUpperCase()} connect to ${active.host}:${active.port}: ${r.message}`);
      this.reply("425 Can't open data connection.");
      return null;
    }
    this.reply('425 Use PORT or PASV first.');
    return null;
  }

  /** 150 once the data connection is up, the body on it, 226 once it is sent and the socket ended. */
  private async transfer(body: (data: Socket, mode: DataMode) => string): Promise<void> {
    const d = await this.openData();
    if (d === null) return;
    if (this.closed) { d.sock.destroy(); return; }
    this.dataSockets.add(d.sock);
    d.sock.once('close', () => this.dataSockets.delete(d.sock));
    this.reply('150 Opening data connection.');
    const ok = await sendAndEnd(d.sock, body(d.sock, d.mode));
    this.reply(ok ? '226 Transfer complete.' : '426 Connection closed; transfer aborted.');
  }

  /** The content of every file: who served it, over which control and data connections. */
  private download(data: Socket, mode: DataMode, file: string): string {
    const c = this.ctl;
    return `${this.opts.name} peer=${bare(c.remoteAddress)} local=${bare(c.localAddress)}:${c.localPort}`
      + ` data=${mode} ${bare(data.localAddress)}:${data.localPort} -> ${bare(data.remoteAddress)}:${data.remotePort}`
      + ` file=${file}\n`;
  }

  private resetData(): void {
    this.passive?.close();
    this.passive = null;
    this.active = null;
  }

  /** The control connection is gone: nothing of the session may outlive it. */
  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.length = 0;
    this.resetData();
    for (const s of this.dataSockets) s.destroy();
  }
}

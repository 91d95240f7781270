/**
 * The control socket: a unix stream socket (default /run/uvs/uvsd.sock) created with
 * owner-only permissions (0600, in a 0700 directory when uvsd creates it), so only root — or
 * whoever runs uvsd — can connect. One JSON Command per line in, one JSON Response per line
 * out. A malformed or oversized line gets an error response; the daemon keeps running.
 */
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command, Response } from './types.js';

const MAX_LINE = 16 * 1024 * 1024;

export type Handler = (cmd: Command) => Response | Promise<Response>;
/**
 * Long-lived commands (`trace`): called instead of the Handler; `send` writes one line to the
 * client; the returned function is called when the client goes away. Throwing refuses it.
 */
export type StreamHandler = (cmd: Command, send: (line: string) => void) => () => void;

export class ControlServer {
  private server: net.Server | null = null;
  readonly path: string;

  constructor(sockPath: string) {
    this.path = sockPath;
  }

  private streamHandler: StreamHandler | null = null;

  /** Registers the handler for streaming commands (currently `trace`). */
  onStream(h: StreamHandler): void {
    this.streamHandler = h;
  }

  async listen(handler: Handler): Promise<void> {
    const dir = path.dirname(this.path);
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A stale socket from a crashed daemon is removed; a live one means another uvsd owns it.
    if (fs.existsSync(this.path)) {
      const alive = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.path);
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (alive) throw Object.assign(new Error(`another uvsd is listening on ${this.path}`), { code: 'EADDRINUSE' });
      fs.unlinkSync(this.path);
    }
    const server = net.createServer((sock) => this.serve(sock, handler));
    this.server = server;
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => { server.off('error', reject); resolve(); });
      });
    } finally {
      process.umask(oldMask);
    }
    fs.chmodSync(this.path, 0o600);
  }

  private serve(sock: net.Socket, handler: Handler): void {
    let buf = '';
    sock.setEncoding('utf8');
    const reply = (r: Response): void => {
      if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
    };
    let chain = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) {
        reply({ ok: false, errno: 'EMSGSIZE', message: 'control message too large' });
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let cmd: Command;
        try {
          cmd = JSON.parse(line) as Command;
          if (typeof cmd !== 'object' || cmd === null || typeof (cmd as { cmd?: unknown }).cmd !== 'string') throw new Error('not a command object');
        } catch (e) {
          reply({ ok: false, errno: 'EINVAL', message: `malformed control message: ${e instanceof Error ? e.message : String(e)}` });
          continue;
        }
        if (cmd.cmd === 'trace') {
          if (!this.streamHandler) { reply({ ok: false, errno: 'EOPNOTSUPP', message: 'tracing is not available' }); continue; }
          try {
            const stop = this.streamHandler(cmd, (l) => { if (!sock.destroyed) sock.write(l + '\n'); });
            reply({ ok: true });
            sock.once('close', stop);
          } catch (e) {
            reply({ ok: false, errno: 'EINVAL', message: e instanceof Error ? e.message : String(e) });
          }
          continue;
        }
        chain = chain.then(async () => {
          let r: Response;
          try {
            r = await handler(cmd);
          } catch (e) {
            r = { ok: false, errno: 'EINVAL', message: e instanceof Error ? e.message : String(e) };
          }
          reply(r);
        });
      }
    });
    sock.on('error', () => {});
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    try { fs.unlinkSync(this.path); } catch { /* already gone */ }
  }
}

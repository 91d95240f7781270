/**
 * Control-socket client: one JSON Command per line to uvsd's unix socket, one JSON Response line
 * back per request, answered in order.
 *
 * Socket path: `--sock PATH` (handled by the caller), else env UVS_SOCK, else /run/uvs/uvsd.sock.
 * When the daemon cannot be reached, `connect` rejects with a `ControlUnreachable` whose message is
 * `cannot reach uvsd at PATH: ECONNREFUSED (is uvsd running?)`; uvsadm prints it prefixed with
 * `uvsadm: ` and exits 2 — ipvsadm's status when it cannot talk to IPVS at all
 * (`Can't initialize ipvs: ...`, fail(2)).
 */
import { createConnection, type Socket } from 'node:net';
import type { Command, Response } from './types.js';

export const DEFAULT_SOCK_PATH = '/run/uvs/uvsd.sock';

/** `--sock PATH` value if given, else $UVS_SOCK, else /run/uvs/uvsd.sock. */
export function defaultSockPath(sockOption?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (sockOption) return sockOption;
  if (env.UVS_SOCK) return env.UVS_SOCK;
  return DEFAULT_SOCK_PATH;
}

export class ControlUnreachable extends Error {
  constructor(readonly sockPath: string, readonly code: string) {
    const hint = code === 'EACCES' || code === 'EPERM' ? 'permission denied; you must be root or the socket owner'
      : 'is uvsd running?';
    super(`cannot reach uvsd at ${sockPath}: ${code} (${hint})`);
    this.name = 'ControlUnreachable';
  }
}

export class ControlClient {
  private buf = '';
  private readonly waiting: Array<{ resolve: (r: Response) => void; reject: (e: Error) => void }> = [];
  private closedErr: Error | undefined;

  private constructor(private readonly sock: Socket, readonly sockPath: string) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    const failAll = (err: Error): void => {
      this.closedErr ??= err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    sock.on('error', (e) => failAll(e));
    sock.on('close', () => failAll(new Error(`uvsd closed the control connection (${sockPath})`)));
  }

  static connect(sockPath: string = defaultSockPath()): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path: sockPath });
      const onError = (e: NodeJS.ErrnoException): void => {
        sock.destroy();
        reject(new ControlUnreachable(sockPath, e.code ?? e.message));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        resolve(new ControlClient(sock, sockPath));
      });
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      const w = this.waiting.shift();
      if (!w) continue;
      try {
        w.resolve(JSON.parse(line) as Response);
      } catch {
        w.reject(new Error(`malformed response from uvsd: ${line.slice(0, 200)}`));
      }
    }
  }

  request(cmd: Command): Promise<Response> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(JSON.stringify(cmd) + '\n');
    });
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}

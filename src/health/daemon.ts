/**
 * uvsd's side of health checking: owns the HealthManager and the configuration file, answers the
 * `load-keepalived` and `get-checks` control commands, and reloads on SIGHUP. Kept here so uvsd.ts
 * only wires it in.
 */
import { isAbsolute } from 'node:path';
import type { Command, Response, ServiceSnap } from '../control/types.js';
import { ConfigError, markDataPathChecks, type HealthConfig } from './config.js';
import type { CheckRunner } from './checkers.js';
import { readKeepalived } from './keepalived.js';
import { readLdirectord } from './ldirectord.js';
import { HealthManager, type HealthLogger } from './manager.js';

export type ConfigFormat = 'keepalived' | 'ldirectord';

export function readHealthConfig(file: string, format: ConfigFormat): HealthConfig {
  return markDataPathChecks(format === 'ldirectord' ? readLdirectord(file) : readKeepalived(file));
}

export class HealthDaemon {
  readonly manager: HealthManager;
  private file = '';
  private format: ConfigFormat = 'keepalived';
  private readonly log: HealthLogger;
  private readonly note: string;

  /** `note`: logged as a warning with every load (uvsd --tap: where the checks' packets go). */
  /** `runner`: runs one check (default: checkers.ts's runCheck; uvsd sends data-path checks through its director). */
  constructor(o: { exec(cmd: Command): Response | Promise<Response>; snapshot(): ServiceSnap[]; log: HealthLogger; note?: string; runner?: CheckRunner }) {
    this.log = o.log;
    this.note = o.note ?? '';
    this.manager = new HealthManager(o);
  }

  /** Reads and applies a file; nothing is applied when it has a mistake. */
  async load(file: string | undefined, format: ConfigFormat | undefined): Promise<Response> {
    const f = file ?? this.file;
    const fmt = format ?? (file ? (/ldirectord|\.cf$/.test(file) ? 'ldirectord' : 'keepalived') : this.format);
    if (!f) return { ok: false, errno: 'EINVAL', message: 'no keepalived.conf / ldirectord.cf loaded yet: give a file' };
    if (!isAbsolute(f)) return { ok: false, errno: 'EINVAL', message: `${f}: give an absolute path` };
    let conf: HealthConfig;
    try {
      conf = readHealthConfig(f, fmt);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log.error({ file: f, err: message, ...(e instanceof ConfigError ? { line: e.line, keyword: e.keyword } : {}) }, 'configuration error: nothing loaded');
      return { ok: false, errno: 'EINVAL', message: `${message}; nothing loaded` };
    }
    const r = await this.manager.load(conf);
    if (!r.ok) return { ok: false, errno: 'EINVAL', message: r.message };
    this.file = f;
    this.format = fmt;
    if (this.note) this.log.warn({ file: f }, this.note);
    return {
      ok: true,
      data: {
        message: r.message, changes: r.commands.length, warnings: conf.warnings,
        ignored: conf.ignored.map((s) => `${s.file}:${s.line}: ${s.name}`),
      },
    };
  }

  /** The control commands this handles; undefined for every other command. */
  async handle(cmd: Command): Promise<Response | undefined> {
    if (cmd.cmd === 'load-keepalived') return this.load(cmd.file, cmd.format);
    if (cmd.cmd === 'get-checks') return { ok: true, data: this.manager.snapshot() };
    return undefined;
  }

  /** SIGHUP: reload the loaded file (errors are logged; the running rules stay). */
  async reload(): Promise<void> {
    if (!this.file) {
      this.log.info({}, 'SIGHUP: no health-check configuration to reload');
      return;
    }
    this.log.info({ file: this.file }, 'SIGHUP: reloading');
    await this.load(undefined, undefined);
  }

  stop(): Promise<void> {
    return this.manager.stop();
  }
}

/**
 * `uvsd --tap`: uvsd is its own L2 host on the TAPs and the director host's kernel has no address
 * on those segments, so the checks (the kernel's own TCP/UDP sockets) leave by the host's routing
 * table, not from uvsd's address: the host needs a route to the real servers (or `bindto` one of its
 * own addresses that reaches them). In `--iface` mode they leave from the director's address on the
 * real servers' network, as keepalived's do.
 */
export const TAP_CHECK_NOTE = 'uvsd --tap: health checks use the host kernel\'s sockets and routes, not uvsd\'s TAP address; '
  + 'the real servers must be reachable from the host itself (route or bindto), or every check fails '
  + '(a TCP_CHECK with connect_ip = the VIP of a DR/TUN real server goes through uvsd\'s own ports)';

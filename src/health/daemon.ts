/**
 * uvsd's side of health checking: owns the HealthManager and the configuration file, answers the
 * `load-keepalived` and `get-checks` control commands, and reloads on SIGHUP. Kept here so uvsd.ts
 * only wires it in.
 */
import { isAbsolute } from 'node:path';
import type { Command, Response, ServiceSnap } from '../control/types.js';
import { ConfigError, type HealthConfig } from './config.js';
import { readKeepalived } from './keepalived.js';
import { readLdirectord } from './ldirectord.js';
import { HealthManager, type HealthLogger } from './manager.js';

export type ConfigFormat = 'keepalived' | 'ldirectord';

export function readHealthConfig(file: string, format: ConfigFormat): HealthConfig {
  return format === 'ldirectord' ? readLdirectord(file) : readKeepalived(file);
}

export class HealthDaemon {
  readonly manager: HealthManager;
  private file = '';
  private format: ConfigFormat = 'keepalived';
  private readonly log: HealthLogger;

  constructor(o: { exec(cmd: Command): Response | Promise<Response>; snapshot(): ServiceSnap[]; log: HealthLogger }) {
    this.log = o.log;
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

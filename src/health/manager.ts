/**
 * The HealthManager: runs the checkers of a loaded keepalived.conf / ldirectord.cf and keeps the
 * director's rules equal to what the configuration and the checks' results ask for, as keepalived's
 * check daemon does:
 *
 * - a checker fails after `retry` + 1 failed attempts in a row (`delay_before_retry` apart) while
 *   it is up; it is up again after one success. A real server is alive when all its checkers are
 *   up (no checkers: always alive). `alpha`: a new real server starts dead until its checks pass.
 * - a dead real server is removed, or kept with weight 0 with `inhibit_on_failure`.
 * - quorum: the sum of the alive real servers' weights; below `quorum − hysteresis` the quorum is
 *   lost (quorum_down runs; with a `sorry_server` all real servers are taken out — weight 0 when
 *   inhibited — and the sorry server is added); at `quorum + hysteresis` it is back.
 * - MISC_CHECK `misc_dynamic`: exit 2..255 sets the weight to exit − 2.
 * - `omega`: on stop, notify_down of every alive real server and quorum_down run.
 *
 * Every change is computed as a diff between the desired rules and the director's current ones
 * (its `get-services` snapshot), restricted to the services of the configuration, and applied as
 * one all-or-nothing `batch`: unchanged services and dests are never touched (their connections,
 * counters and scheduler state stay). Reload (`load`) carries the state of every checker whose
 * settings did not change, and drops services that left the configuration.
 *
 * Checks run on Node timers and sockets in the daemon's process, between packet batches: nothing
 * here runs on, or allocates in, the packet path.
 */
import { spawn } from 'node:child_process';
import type { Command, DestOpts, Response, ServiceSnap, DestSnap } from '../control/types.js';
import { FWD_TUNNEL, IPPROTO_TCP, SVC_F_ONEPACKET } from '../model/constants.js';
import { checkSignature, rsKey, type CheckConf, type HealthConfig, type RsConf, type VsConf } from './config.js';
import { runCheck, type CheckResult, type CheckRunner } from './checkers.js';

export interface HealthLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HealthManagerOptions {
  /** Applies a command to the director (uvsd: Control.execute + its host-guard sync). */
  exec(cmd: Command): Response | Promise<Response>;
  /** The director's current rules. */
  snapshot(): ServiceSnap[];
  log: HealthLogger;
  runner?: CheckRunner;
  runScript?: (cmd: string) => void;
}

interface CheckState {
  conf: CheckConf;
  sig: string;
  up: boolean;
  hasRun: boolean;
  retries: number;
  last: 'ok' | 'failed' | 'pending';
  detail: string;
  time: number;
  weight: number | null;
  timer: NodeJS.Timeout | null;
}

interface RsState {
  conf: RsConf;
  checks: CheckState[];
  alive: boolean;
}

interface VsState {
  conf: VsConf;
  rs: RsState[];
  quorumUp: boolean;
}

export interface CheckSnap {
  service: string;
  server: string;
  type: string;
  target: string;
  /** The checker's state. */
  state: 'up' | 'down';
  last: 'ok' | 'failed' | 'pending';
  detail: string;
  /** ISO time of the last attempt, '' before the first. */
  time: string;
  /** The real server as a whole. */
  alive: boolean;
  weight: number;
  where: string;
}

export interface ServiceHealthSnap {
  service: string;
  quorum: number;
  quorumUp: boolean;
  sorry: string;
  alive: number;
  servers: number;
}

export interface ChecksSnapshot {
  source: string;
  format: string;
  loadedAt: string;
  services: ServiceHealthSnap[];
  checks: CheckSnap[];
}

export interface LoadResult {
  ok: boolean;
  message: string;
  commands: Command[];
}

function defaultRunScript(log: HealthLogger): (cmd: string) => void {
  return (cmd) => {
    try {
      const c = spawn('/bin/sh', ['-c', cmd], { stdio: 'ignore', detached: true });
      c.on('error', (e) => log.error({ script: cmd, err: e.message }, 'notify script failed'));
      c.unref();
    } catch (e) {
      log.error({ script: cmd, err: String(e) }, 'notify script failed');
    }
  };
}

export class HealthManager {
  private readonly o: HealthManagerOptions;
  private readonly runner: CheckRunner;
  private readonly runScript: (cmd: string) => void;
  private vss: VsState[] = [];
  private config: HealthConfig | null = null;
  private loadedAt = 0;
  private gen = 0;
  /** The lvs_sync_daemon the last load started (JSON), or empty. */
  private syncKey = '';
  private stopped = false;
  /** Serialises rule changes (check results and reloads). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(o: HealthManagerOptions) {
    this.o = o;
    this.runner = o.runner ?? runCheck;
    this.runScript = o.runScript ?? defaultRunScript(o.log);
  }

  get loaded(): HealthConfig | null {
    return this.config;
  }

  /** Loads (or reloads) a configuration: applies the diff as one batch, then (re)starts the checks. */
  load(conf: HealthConfig): Promise<LoadResult> {
    return this.enqueue(() => this.doLoad(conf));
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async doLoad(conf: HealthConfig): Promise<LoadResult> {
    const oldByKey = new Map(this.vss.map((v) => [v.conf.key, v]));
    const next: VsState[] = [];
    for (const vc of conf.services) {
      const old = oldByKey.get(vc.key);
      const rs: RsState[] = vc.rs.map((rc) => {
        const oldRs = old?.rs.find((r) => rsKey(r.conf) === rsKey(rc));
        const checks = rc.checks.map((cc, i): CheckState => {
          const sig = checkSignature(cc);
          const prev = oldRs?.checks[i];
          if (prev && prev.sig === sig) return { ...prev, conf: cc, timer: null };
          return { conf: cc, sig, up: !vc.alpha, hasRun: false, retries: 0, last: 'pending', detail: '', time: 0, weight: null, timer: null };
        });
        const r: RsState = { conf: rc, checks, alive: true };
        r.alive = checks.every((c) => c.up);
        return r;
      });
      const v: VsState = { conf: vc, rs, quorumUp: old ? old.quorumUp : true };
      if (!old) v.quorumUp = this.aliveWeight(v) >= vc.quorum;
      else this.updateQuorum(v, false);
      next.push(v);
    }
    const snap = this.o.snapshot();
    const cmds: Command[] = [];
    // global_defs lvs_timeouts: set at every load, as keepalived does at start and reload.
    if (conf.timeouts) cmds.push({ cmd: 'set-timeouts', ...conf.timeouts });
    for (const v of next) cmds.push(...this.diff(v, snap));
    const newKeys = new Set(next.map((v) => v.conf.key));
    for (const old of this.vss) {
      if (newKeys.has(old.conf.key)) continue;
      if (findSnap(snap, old.conf)) cmds.push({ cmd: 'delete-service', svc: old.conf.spec });
    }
    if (cmds.length) {
      const r = await this.o.exec({ cmd: 'batch', commands: cmds });
      if (!r.ok) {
        const message = `${conf.file}: rules not applied (${r.errno}: ${r.message}); nothing changed`;
        this.o.log.error({ file: conf.file, errno: r.errno, err: r.message }, 'configuration not applied');
        return { ok: false, message, commands: cmds };
      }
    }
    // Swap: stop the old timers (stale results are dropped by the generation), start the new ones.
    this.stopTimers();
    this.gen++;
    this.vss = next;
    this.config = conf;
    this.loadedAt = Date.now();
    const syncNote = await this.applySyncDaemon(conf);
    for (const s of conf.ignored) this.o.log.info({ section: s.name, file: s.file, line: s.line }, 'section ignored (uvs does not act on it)');
    for (const w of conf.warnings) this.o.log.warn({ warning: w }, 'configuration warning');
    let n = 0;
    for (const v of next) for (const r of v.rs) for (const c of r.checks) this.schedule(v, r, c, 10 * (n++ % 50));
    const msg = `${conf.file}: ${next.length} virtual server(s), ${cmds.length} rule change(s)${syncNote}`;
    this.o.log.info({ file: conf.file, format: conf.format, services: next.length, changes: cmds.length }, 'configuration loaded');
    return { ok: true, message: msg, commands: cmds };
  }

  /**
   * global_defs lvs_sync_daemon: when it differs from what the last load started, the old
   * daemons stop and the new ones start — master and backup both (keepalived without VRRP
   * instance; uvs has no VRRP). A refusal (no such interface, …) is logged and reported in the
   * load's message; the rules stay applied. Returns that message part ('' when nothing to say).
   */
  private async applySyncDaemon(conf: HealthConfig): Promise<string> {
    const sd = conf.syncDaemon;
    const key = sd ? JSON.stringify(sd) : '';
    if (key === this.syncKey) return '';
    if (this.syncKey !== '') {
      for (const state of ['master', 'backup'] as const) await this.o.exec({ cmd: 'stop-daemon', state });
    }
    this.syncKey = key;
    if (!sd) return '; sync daemons stopped';
    const failed: string[] = [];
    for (const state of ['master', 'backup'] as const) {
      const daemon: Extract<Command, { cmd: 'start-daemon' }>['daemon'] = { state, mcastIfn: sd.mcastIfn, syncid: sd.syncid };
      if (sd.maxlen !== undefined) daemon.maxlen = sd.maxlen;
      if (sd.group !== undefined) daemon.group = sd.group;
      if (sd.port !== undefined) daemon.port = sd.port;
      if (sd.ttl !== undefined) daemon.ttl = sd.ttl;
      const r = await this.o.exec({ cmd: 'start-daemon', daemon });
      if (!r.ok) {
        failed.push(`${state}: ${r.errno} ${r.message}`);
        this.o.log.error({ state, errno: r.errno, err: r.message }, 'lvs_sync_daemon: sync daemon not started');
      }
    }
    if (sd.instance !== undefined) this.o.log.info({ instance: sd.instance }, 'lvs_sync_daemon: uvs has no VRRP, so both sync daemons run (master and backup)');
    return failed.length ? `; sync daemons NOT started (${failed.join('; ')})` : `; sync daemons (master, backup) on ${sd.mcastIfn}, syncid ${sd.syncid}`;
  }

  private schedule(v: VsState, r: RsState, c: CheckState, delayMs: number): void {
    if (this.stopped) return;
    const gen = this.gen;
    c.timer = setTimeout(() => { c.timer = null; void this.attempt(v, r, c, gen); }, delayMs);
    c.timer.unref?.();
  }

  private async attempt(v: VsState, r: RsState, c: CheckState, gen: number): Promise<void> {
    let res: CheckResult;
    try {
      res = await this.runner(c.conf);
    } catch (e) {
      res = { ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
    if (gen !== this.gen || this.stopped) return;
    c.last = res.ok ? 'ok' : 'failed';
    c.detail = res.detail;
    c.time = Date.now();
    const conf = c.conf;
    if (res.ok) {
      c.retries = 0;
      c.hasRun = true;
      const wChanged = res.weight !== undefined ? c.weight !== res.weight : c.weight !== null && conf.miscDynamic;
      if (conf.miscDynamic) c.weight = res.weight ?? null;
      if (!c.up) {
        c.up = true;
        this.o.log.info({ check: conf.type, server: rsKey(r.conf), service: v.conf.key, detail: res.detail }, 'check succeeded: up');
        await this.enqueue(() => this.rsChanged(v, r));
      } else if (wChanged) {
        this.o.log.info({ server: rsKey(r.conf), service: v.conf.key, weight: c.weight }, 'misc_dynamic weight changed');
        await this.enqueue(() => this.apply(v));
      }
      this.schedule(v, r, c, conf.delayLoop * 1000);
      return;
    }
    if ((c.up || !c.hasRun) && c.retries < conf.retry) {
      c.retries++;
      this.o.log.info({ check: conf.type, server: rsKey(r.conf), service: v.conf.key, detail: res.detail, retry: c.retries }, 'check failed, retrying');
      this.schedule(v, r, c, conf.delayBeforeRetry * 1000);
      return;
    }
    c.retries = 0;
    c.hasRun = true;
    if (c.up) {
      c.up = false;
      this.o.log.warn({ check: conf.type, server: rsKey(r.conf), service: v.conf.key, detail: res.detail }, 'check failed: down');
      await this.enqueue(() => this.rsChanged(v, r));
    }
    this.schedule(v, r, c, conf.delayLoop * 1000);
  }

  private async rsChanged(v: VsState, r: RsState): Promise<void> {
    if (this.stopped || !this.vss.includes(v)) return;
    const alive = r.checks.every((c) => c.up);
    if (alive !== r.alive) {
      r.alive = alive;
      const inhibit = r.conf.inhibit;
      this.o.log.info({ server: rsKey(r.conf), service: v.conf.key, alive, action: alive ? 'added' : inhibit ? 'weight 0 (inhibit_on_failure)' : 'removed' },
        alive ? 'real server up' : 'real server down');
      const script = alive ? r.conf.notifyUp : r.conf.notifyDown;
      if (script) this.runScript(script);
      this.updateQuorum(v, true);
    }
    await this.apply(v);
  }

  private effWeight(r: RsState): number {
    for (const c of r.checks) if (c.weight !== null) return c.weight;
    return r.conf.weight;
  }

  private aliveWeight(v: VsState): number {
    let w = 0;
    for (const r of v.rs) if (r.alive) w += this.effWeight(r);
    return w;
  }

  private updateQuorum(v: VsState, notify: boolean): void {
    const w = this.aliveWeight(v);
    const q = v.conf.quorum;
    const h = v.conf.hysteresis;
    if (v.quorumUp && w < q - h) {
      v.quorumUp = false;
      this.o.log.warn({ service: v.conf.key, weight: w, quorum: q, sorry: v.conf.sorry ? rsKey(v.conf.sorry) : undefined }, 'quorum lost');
      if (notify && v.conf.quorumDown) this.runScript(v.conf.quorumDown);
    } else if (!v.quorumUp && w >= q + h) {
      v.quorumUp = true;
      this.o.log.info({ service: v.conf.key, weight: w, quorum: q }, 'quorum regained');
      if (notify && v.conf.quorumUp) this.runScript(v.conf.quorumUp);
    }
  }

  /** Applies the difference between desired and current rules of one service. */
  private async apply(v: VsState): Promise<void> {
    if (this.stopped || !this.vss.includes(v)) return;
    const cmds = this.diff(v, this.o.snapshot());
    if (cmds.length === 0) return;
    const r = await this.o.exec({ cmd: 'batch', commands: cmds });
    if (!r.ok) this.o.log.error({ service: v.conf.key, errno: r.errno, err: r.message }, 'health change not applied');
  }

  /** The dests the service should have now. */
  desired(v: VsState): Map<string, { addr: string; port: number; opts: DestOpts }> {
    const out = new Map<string, { addr: string; port: number; opts: DestOpts }>();
    const put = (rc: RsConf, weight: number): void => {
      out.set(rsKey(rc), {
        addr: rc.addr, port: rc.port,
        opts: { fwd: rc.fwd, weight, uThreshold: rc.uThreshold, lThreshold: rc.lThreshold, tunType: rc.tunType, tunPort: rc.tunPort, tunFlags: rc.tunFlags },
      });
    };
    const sorryOn = !v.quorumUp && v.conf.sorry !== null;
    for (const r of v.rs) {
      if (r.alive && !sorryOn) put(r.conf, this.effWeight(r));
      else if (r.conf.inhibit) put(r.conf, 0);
    }
    const s = v.conf.sorry;
    if (s) {
      if (sorryOn) put(s, s.weight);
      else if (v.conf.sorryInhibit && !out.has(rsKey(s))) put(s, 0);
    }
    return out;
  }

  private diff(v: VsState, snap: ServiceSnap[]): Command[] {
    const c = v.conf;
    const spec = c.spec;
    let flags = c.flags;
    if (spec.protocol === IPPROTO_TCP && !spec.fwmark) flags &= ~SVC_F_ONEPACKET;
    const pp = c.proxyProtocol ?? 0;
    const opts = { sched: c.sched, flags, timeout: c.timeout, netmask: c.netmask, pe: '', ...(pp !== 0 ? { proxyProtocol: pp } : {}),
      ...(c.synproxy ? { synproxy: true } : {}) };
    const want = this.desired(v);
    const cur = findSnap(snap, c);
    const out: Command[] = [];
    if (!cur) {
      out.push({ cmd: 'add-service', svc: spec, opts });
      for (const l of c.laddrs) out.push({ cmd: 'add-laddr', svc: spec, laddr: l });
      for (const d of [...want.values()].reverse()) out.push({ cmd: 'add-server', svc: spec, dest: { addr: d.addr, port: d.port }, opts: d.opts });
      return out;
    }
    if (cur.sched !== opts.sched || cur.flags !== opts.flags || cur.timeout !== (flags & 1 ? opts.timeout : 0) || cur.netmask !== opts.netmask
      || (cur.proxyProtocol ?? 0) !== pp || (cur.synproxy ?? false) !== (c.synproxy ?? false)) {
      out.push({ cmd: 'edit-service', svc: spec, opts });
    }
    for (const l of cur.laddrs) if (!c.laddrs.includes(l)) out.push({ cmd: 'del-laddr', svc: spec, laddr: l });
    for (const l of c.laddrs) if (!cur.laddrs.includes(l)) out.push({ cmd: 'add-laddr', svc: spec, laddr: l });
    const curByKey = new Map(cur.dests.map((d) => [rsKey(d), d]));
    for (const [k, d] of curByKey) if (!want.has(k)) out.push({ cmd: 'delete-server', svc: spec, dest: { addr: d.addr, port: d.port } });
    for (const [k, d] of want) {
      const have = curByKey.get(k);
      if (!have) out.push({ cmd: 'add-server', svc: spec, dest: { addr: d.addr, port: d.port }, opts: d.opts });
      else if (!sameDest(have, d.opts)) out.push({ cmd: 'edit-server', svc: spec, dest: { addr: d.addr, port: d.port }, opts: d.opts });
    }
    return out;
  }

  snapshot(): ChecksSnapshot {
    const checks: CheckSnap[] = [];
    const services: ServiceHealthSnap[] = [];
    for (const v of this.vss) {
      services.push({
        service: v.conf.key, quorum: v.conf.quorum, quorumUp: v.quorumUp, sorry: v.conf.sorry ? rsKey(v.conf.sorry) : '',
        alive: v.rs.filter((r) => r.alive).length, servers: v.rs.length,
      });
      for (const r of v.rs) {
        for (const c of r.checks) {
          const cc = c.conf;
          checks.push({
            service: v.conf.key, server: rsKey(r.conf), type: cc.type,
            target: cc.type === 'MISC_CHECK' ? cc.miscPath
              : `${cc.connectIp}:${cc.connectPort}${cc.dataPath ? ` via ${cc.dataPath.rip} (${cc.dataPath.fwd === FWD_TUNNEL ? 'TUN' : 'DR'}, data path)` : ''}`,
            state: c.up ? 'up' : 'down', last: c.last, detail: c.detail, time: c.time ? new Date(c.time).toISOString() : '',
            alive: r.alive, weight: this.effWeight(r), where: cc.where,
          });
        }
      }
    }
    return {
      source: this.config?.file ?? '', format: this.config?.format ?? '',
      loadedAt: this.loadedAt ? new Date(this.loadedAt).toISOString() : '', services, checks,
    };
  }

  private stopTimers(): void {
    for (const v of this.vss) for (const r of v.rs) for (const c of r.checks) {
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
    }
  }

  /** Stops every check; with `omega`, runs the down notifiers as keepalived does on shutdown. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.gen++;
    this.stopTimers();
    for (const v of this.vss) {
      if (!v.conf.omega) continue;
      for (const r of v.rs) if (r.alive && r.conf.notifyDown) this.runScript(r.conf.notifyDown);
      if (v.conf.quorumDown) this.runScript(v.conf.quorumDown);
    }
    await this.queue;
  }
}

function findSnap(snap: ServiceSnap[], c: VsConf): ServiceSnap | undefined {
  const s = c.spec;
  return snap.find((x) => (s.fwmark ? x.fwmark === s.fwmark : !x.fwmark && x.protocol === s.protocol && x.addr === s.addr && x.port === s.port));
}

function sameDest(d: DestSnap, o: DestOpts): boolean {
  return d.fwd === o.fwd && d.weight === o.weight && d.uThreshold === o.uThreshold && d.lThreshold === o.lThreshold
    && (o.fwd !== 2 || (d.tunType === o.tunType && d.tunPort === o.tunPort && d.tunFlags === o.tunFlags));
}

/** Text of `uvsadm --checks`. */
export function formatChecks(s: ChecksSnapshot): string {
  if (!s.source) return 'No health-check configuration loaded\n';
  const lines: string[] = [];
  lines.push(`Health checks from ${s.source} (${s.format}, loaded ${s.loadedAt})`);
  for (const v of s.services) {
    lines.push(`${v.service}  alive ${v.alive}/${v.servers}  quorum ${v.quorum} ${v.quorumUp ? 'up' : 'LOST'}${v.sorry ? `  sorry ${v.sorry}${v.quorumUp ? '' : ' (active)'}` : ''}`);
  }
  const head = ['Service', 'RealServer', 'Check', 'Target', 'State', 'Weight', 'Last', 'Time', 'Detail'];
  const rows = s.checks.map((c) => [c.service, c.server, c.type, c.target, c.state, String(c.weight), c.last, c.time, c.detail]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(w[i]!))).join('  ').trimEnd();
  lines.push(fmt(head));
  for (const r of rows) lines.push(fmt(r));
  return lines.join('\n') + '\n';
}


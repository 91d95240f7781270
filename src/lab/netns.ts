/**
 * Network-namespace plumbing for labs and end-to-end tests: run a command (bounded by a timeout),
 * optionally inside a namespace; create and delete namespaces; and a registry of everything a lab
 * created (namespaces, processes, temp dirs) so teardown removes all of it, also after a failure
 * half-way through building, and also when the CLI is interrupted (Ctrl-C, SIGTERM).
 *
 * Nothing here touches the root namespace's interfaces: labs create their veths directly inside
 * their own namespaces (`ip -n A link add … peer name … netns B`).
 */
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is src/lab/netns.ts or dist/lab/netns.js: two levels down). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when the process was killed (timeout) or could not start. */
  code: number;
}

export interface ExecOptions {
  /** Milliseconds before the command is killed (default 10 s). */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** Throw on a non-zero exit (default true for `run`, false for `tryRun`). */
  check?: boolean;
}

export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly result: ExecResult;
  constructor(argv: readonly string[], result: ExecResult) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
    super(`command failed (${result.code}): ${argv.join(' ')}${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.result = result;
  }
}

/** Runs argv[0] with the rest as arguments; resolves with its output. Throws on failure unless check=false. */
export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const check = opts.check ?? true;
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        let code = 0;
        if (err) {
          const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
          code = typeof e.code === 'number' ? e.code : -1;
          if (e.killed) stderr = `${stderr}\n(timed out after ${opts.timeoutMs ?? 10_000} ms)`;
          else if (typeof e.code === 'string') stderr = `${stderr}\n${e.message}`;
        }
        const result = { stdout, stderr, code };
        if (check && code !== 0) reject(new CommandError(argv, result));
        else resolve(result);
      },
    );
    child.stdin?.on('error', () => undefined); // EPIPE when the command exits without reading stdin
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** `run` that never throws on a non-zero exit. */
export function tryRun(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(argv, { ...opts, check: false });
}

/** argv prefixed so that it runs inside namespace `ns` (the root namespace when ns is undefined). */
export function inNs(ns: string | undefined, argv: readonly string[]): string[] {
  return ns ? ['ip', 'netns', 'exec', ns, ...argv] : [...argv];
}

export function nsRun(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(inNs(ns, argv), opts);
}

export async function createNs(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
  await run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
}

/**
 * Stops every process still inside `ns` (SIGTERM, up to `graceMs`, then SIGKILL), then deletes the
 * namespace. Never throws.
 */
export async function deleteNs(name: string, graceMs = 2000): Promise<void> {
  const pidsOf = async () =>
    (await tryRun(['ip', 'netns', 'pids', name], { timeoutMs: 5000 })).stdout
      .split(/\s+/)
      .map(Number)
      .filter((pid) => pid > 0 && pid !== process.pid);
  let pids = await pidsOf();
  if (pids.length > 0) {
    for (const pid of pids) safeKill(pid, 'SIGTERM');
    await waitFor(() => pids.every((pid) => !alive(pid)), graceMs, 50);
    pids = await pidsOf();
    for (const pid of pids) safeKill(pid, 'SIGKILL');
  }
  await tryRun(['ip', 'netns', 'del', name], { timeoutMs: 10_000 });
}

/** Names from `ip netns list` (first word of each line). */
export async function listNs(): Promise<string[]> {
  const r = await tryRun(['ip', 'netns', 'list'], { timeoutMs: 5000 });
  return parseNsList(r.stdout);
}

export function listNsSync(): string[] {
  try {
    return parseNsList(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 }));
  } catch {
    return [];
  }
}

function parseNsList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

function deleteNsSync(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 5000 });
    for (const p of pids.split(/\s+/)) {
      const pid = Number(p);
      if (pid > 0 && pid !== process.pid) safeKill(pid, 'SIGKILL');
    }
  } catch {
    /* namespace already gone */
  }
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* already gone */
  }
}

function safeKill(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Whether pid still runs (a zombie waiting for a parent that never reaps it counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` every `stepMs` until it returns a truthy value or `timeoutMs` passes (then returns undefined). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 50): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(stepMs);
  }
}

export interface SpawnedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  /** Current content of the log (stdout and stderr together). */
  log(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Everything one lab created, in creation order. `cleanup()` undoes it all in reverse: processes
 * first (SIGTERM, bounded grace, SIGKILL), then namespaces (which takes their veths, bridges, TAPs and
 * nftables tables with them), then temp dirs. Idempotent.
 */
export class Registry {
  private readonly namespaces: string[] = [];
  private readonly procs: SpawnedProcess[] = [];
  private readonly dirs: string[] = [];
  private cleaning: Promise<void> | undefined;

  addNs(name: string): void {
    this.namespaces.push(name);
  }
  addDir(path: string): void {
    this.dirs.push(path);
  }
  get namespaceNames(): readonly string[] {
    return this.namespaces;
  }

  /**
   * Starts argv (already namespace-prefixed if needed) with stdout+stderr appended to `logPath`,
   * in its own process group (so a Ctrl-C aimed at the CLI does not hit it before teardown does).
   * `keep` detaches it from this process's lifetime (`uvs lab --keep`).
   */
  spawn(name: string, argv: readonly string[], logPath: string, opts: { keep?: boolean; env?: NodeJS.ProcessEnv } = {}): SpawnedProcess {
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawnChild(argv[0]!, argv.slice(1), {
        stdio: ['ignore', fd, fd],
        detached: true,
        env: opts.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    if (opts.keep) child.unref();
    let exitedFlag = false;
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => {
        exitedFlag = true;
        resolve(code ?? signal ?? -1);
      });
      child.once('error', (err) => {
        exitedFlag = true;
        resolve(`spawn error: ${err.message}`);
      });
    });
    const pid = child.pid ?? -1;
    const proc: SpawnedProcess = {
      name,
      pid,
      child,
      logPath,
      exited,
      hasExited: () => exitedFlag,
      log: () => {
        try {
          return readFileSync(logPath, 'utf8');
        } catch {
          return '';
        }
      },
      stop: async (graceMs = 3000) => {
        if (exitedFlag || pid <= 0) return;
        safeKill(pid, 'SIGTERM');
        const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
        if (!done) {
          safeKill(pid, 'SIGKILL');
          await Promise.race([exited, sleep(1000)]);
        }
      },
    };
    this.procs.push(proc);
    return proc;
  }

  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    await Promise.all(this.procs.slice().reverse().map((p) => p.stop(3000)));
    for (const ns of this.namespaces.slice().reverse()) await deleteNs(ns);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.procs.length = 0;
    this.namespaces.length = 0;
    this.dirs.length = 0;
  }

  /** Synchronous last-resort cleanup for process 'exit' (no grace period: SIGKILL). */
  cleanupSync(): void {
    for (const p of this.procs) if (!p.hasExited() && alive(p.pid)) safeKill(p.pid, 'SIGKILL');
    for (const ns of this.namespaces.slice().reverse()) deleteNsSync(ns);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.procs.length = 0;
    this.namespaces.length = 0;
    this.dirs.length = 0;
  }
}

/**
 * For CLIs: on SIGINT/SIGTERM run the async cleanup (bounded) and exit 130/143; on 'exit' run the
 * synchronous cleanup of whatever is still registered. Returns a function that removes the hooks
 * (for `--keep`, which must leave the lab up).
 */
export interface Cleanable {
  cleanup(): Promise<void>;
  cleanupSync(): void;
}

export function installCleanupHook(registry: Cleanable, log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): () => void {
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log(`\n${sig}: tearing the lab down…`);
    const code = sig === 'SIGINT' ? 130 : 143;
    const hard = setTimeout(() => {
      registry.cleanupSync();
      process.exit(code);
    }, 15_000);
    registry.cleanup().finally(() => {
      clearTimeout(hard);
      process.exit(code);
    });
  };
  const onExit = () => registry.cleanupSync();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}

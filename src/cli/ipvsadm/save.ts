/**
 * `-S` (save) and `-R` (restore) in ipvsadm's rule format.
 *
 * Save: the rule lines of ipvsadm `list_all(FMT_RULE)` (see format.ts `formatSave`), plus one
 * `-P <svc> -z <laddr>` line per FULLNAT local address after the dests of its service.
 *
 * Restore: each line is tokenised on blanks (ipvsadm config_stream), `#` starts a comment, blank
 * lines are skipped and a leading `ipvsadm` token is ignored; each line is then parsed as one
 * invocation. Unlike ipvsadm, which applies line by line, uvs is all or nothing: any parse error
 * aborts the whole restore and no command is returned; the caller sends one `{cmd:'batch'}` so the
 * daemon too applies everything or nothing. Options of newer ipvsadm versions or forks that this
 * version does not know are skipped with a warning.
 */
import type { Command, ServiceSnap } from '../../control/types.js';
import { formatSave, type NameResolver } from './format.js';
import { parseArgs, type ParseDeps } from './parse.js';

export { formatSave };

/** `ipvsadm -S [-n]` text for the daemon's services. */
export function saveText(services: ServiceSnap[], numeric: boolean, names?: NameResolver): string {
  return formatSave(services, numeric, names);
}

export type RestoreResult =
  | { commands: Command[]; warnings: string[] }
  | { error: string; line: number; exitCode: number };

/** Splits one restore line into argv (comments dropped, a leading `ipvsadm`/`uvsadm` token ignored). */
export function tokenizeLine(line: string): string[] {
  const hash = line.indexOf('#');
  const text = hash >= 0 ? line.slice(0, hash) : line;
  const toks = text.split(/[ \t\r\n\v\f]+/).filter((t) => t !== '');
  if (toks.length > 0 && /(^|\/)(ipvsadm|uvsadm)$/.test(toks[0]!)) toks.shift();
  return toks;
}

/** Parses a whole save file. Any bad line ⇒ `{error, line}` and nothing to apply. */
export async function parseRestore(text: string, deps: ParseDeps = {}): Promise<RestoreResult> {
  const commands: Command[] = [];
  const warnings: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const argv = tokenizeLine(lines[i]!);
    if (argv.length === 0) continue;
    const lineWarnings: string[] = [];
    const r = await parseArgs(argv, { ...deps, restore: true, warnings: lineWarnings });
    for (const w of lineWarnings) warnings.push(`line ${i + 1}: ${w}`);
    if (r.kind === 'error') return { error: r.message, line: i + 1, exitCode: r.exitCode };
    if (r.kind !== 'command') {
      return { error: `uvsadm: only rule commands can be restored, not \`${argv.join(' ')}'`, line: i + 1, exitCode: 2 };
    }
    commands.push(r.command);
  }
  return { commands, warnings };
}

/**
 * uvsadm's health-check commands (registered through uvsadm.ts's EXT_HANDLERS):
 *
 *   uvsadm --load-keepalived FILE    (re)load a keepalived.conf on the running uvsd (diff applied)
 *   uvsadm --load-ldirectord FILE    the same for an ldirectord.cf
 *   uvsadm --checks                  each check with its state, last result and time
 *
 * Exit codes: 0 done; 2 the file has a mistake (nothing loaded) or the daemon refused.
 */
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Command, Response } from '../control/types.js';
import { formatChecks, type ChecksSnapshot } from './manager.js';

interface Ctx {
  data: unknown;
  client: { request(cmd: Command): Promise<Response> };
  stdout: Writable;
  stderr: Writable;
}

export const HEALTH_UVSADM_HANDLERS: Record<string, (ctx: Ctx) => Promise<number>> = {
  'load-keepalived': async ({ data, client, stdout, stderr }) => {
    const d = data as { file: string; format: 'keepalived' | 'ldirectord' };
    const r = await client.request({ cmd: 'load-keepalived', file: resolve(d.file), format: d.format });
    if (!r.ok) {
      stderr.write(`uvsadm: ${r.message}\n`);
      return 2;
    }
    const info = r.data as { message: string; warnings: string[]; ignored: string[] };
    for (const i of info.ignored) stderr.write(`uvsadm: ignored section ${i}\n`);
    for (const w of info.warnings) stderr.write(`uvsadm: warning: ${w}\n`);
    stdout.write(`${info.message}\n`);
    return 0;
  },
  checks: async ({ client, stdout, stderr }) => {
    const r = await client.request({ cmd: 'get-checks' });
    if (!r.ok) {
      stderr.write(`uvsadm: ${r.message}\n`);
      return 2;
    }
    stdout.write(formatChecks(r.data as ChecksSnapshot));
    return 0;
  },
};

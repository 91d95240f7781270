/**
 * What the end-to-end tests share around a namespace lab: the tail of a log for failure messages,
 * and the teardown that also checks the lab left no network namespace behind.
 */
import { expect } from 'vitest';
import type { Lab, UvsdHandle } from '../../src/lab/topology.js';
import { listNs } from '../../src/lab/netns.js';

/** The last `lines` lines of a log (failure messages quote uvsd's). */
export function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Stops uvsd, tears the lab down and checks that none of its namespaces is left. */
export async function stopLab(lab: Lab | undefined, uvsd: UvsdHandle | undefined): Promise<void> {
  const prefix = lab?.prefix;
  await uvsd?.stop();
  await lab?.teardown();
  if (prefix) expect((await listNs()).filter((n) => n.startsWith(prefix))).toEqual([]);
}

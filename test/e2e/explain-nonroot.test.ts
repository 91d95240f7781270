/**
 * `uvs explain` must run as an ordinary user (issue: teaching without root). Run it as `nobody`
 * for every mode and check the walk is printed. Needs root only to switch user.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe.skipIf(process.getuid?.() !== 0)('uvs explain as a non-root user', () => {
  for (const mode of ['nat', 'dr', 'tun', 'fullnat']) {
    it(`${mode}: prints the rules, each stage and the listing`, () => {
      const out = execFileSync('runuser', ['-u', 'nobody', '--', process.execPath, `${root}bin/uvs.js`, 'explain', '--mode', mode, '--packets', '1'], {
        encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' },
      });
      expect(out).toMatch(/rules, as you would type them/);
      expect(out).toMatch(/\$ uvsadm -A -t /);
      expect(out).toMatch(/^ {2}schedule {2}wrr: /m);
      expect(out).toMatch(/^ {2}forward {3}/m);
      expect(out).toMatch(/IPVS connection entries/);
    });
  }
});

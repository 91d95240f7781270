/**
 * `uvs lab MODE` as a user runs it: builds, forwards, prints, and tears down — leaving no
 * namespaces, TAP devices or nftables tables — also when interrupted with Ctrl-C (SIGINT).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const uvs = `${root}bin/uvs.js`;

function leftovers(): string[] {
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('uvs-'));
  const nft = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => /uvs/.test(l));
  const taps = execFileSync('ip', ['-o', 'tuntap', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.trim());
  return [...ns, ...nft, ...taps];
}

describe.skipIf(process.getuid?.() !== 0)('uvs lab (the CLI)', () => {
  it('nat over tap: answers from both real servers, lists stats and conns, then leaves nothing behind', () => {
    const out = execFileSync(process.execPath, [uvs, 'lab', 'nat', '--port-kind', 'tap', '--requests', '4'], { encoding: 'utf8', timeout: 120_000 });
    expect(out).toMatch(/\$ uvsadm -A -t 192\.168\.10\.110:80 -s wrr/);
    expect(out).toMatch(/rs1/);
    expect(out).toMatch(/rs2/);
    expect(out).toMatch(/IPVS connection entries/);
    expect(leftovers()).toEqual([]);
  });

  it('Ctrl-C while the lab runs tears it down (no namespaces, TAPs or nftables tables left)', async () => {
    const child = spawn(process.execPath, [uvs, 'lab', 'dr', '--requests', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    const deadline = Date.now() + 60_000;
    while (!/fresh connections/.test(text) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    expect(text).toMatch(/fresh connections/);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(leftovers()).toEqual([]);
  });
});

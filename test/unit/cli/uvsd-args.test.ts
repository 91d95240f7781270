import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/uvsd.js';
import { MAX_CONNS } from '../../../src/conn/conn-table.js';

describe('uvsd argument checks (nothing is started)', () => {
  afterEach(() => vi.restoreAllMocks());

  const run = async (argv: string[]): Promise<{ code: number; err: string }> => {
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    const code = await main(argv);
    return { code, err };
  };

  it('--max-conns beyond what the conn table can index is refused with the range', async () => {
    for (const bad of [String(MAX_CONNS + 1), '0', '1.5', 'lots']) {
      const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--max-conns', bad]);
      expect(code).toBe(2);
      expect(err).toBe(`uvsd: invalid --max-conns ${bad} (1 … ${MAX_CONNS})\n`);
    }
  });

  it('no port at all is refused', async () => {
    const { code, err } = await run([]);
    expect(code).toBe(2);
    expect(err).toMatch(/^uvsd: give at least one --iface or --tap/);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseSysctls } from '../../../src/cli/uvsd.js';
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

  it('--sysctl takes expire_nodest_conn and expire_quiescent_template, 0 or 1, with or without the net.ipv4.vs. prefix', async () => {
    expect(parseSysctls([])).toEqual({ expireNodestConn: false, expireQuiescentTemplate: false });
    expect(parseSysctls(['expire_nodest_conn=1'])).toEqual({ expireNodestConn: true, expireQuiescentTemplate: false });
    expect(parseSysctls(['net.ipv4.vs.expire_nodest_conn=1', 'expire_nodest_conn=0'])).toEqual({ expireNodestConn: false, expireQuiescentTemplate: false });
    expect(parseSysctls(['net.ipv4.vs.expire_quiescent_template=1'])).toEqual({ expireNodestConn: false, expireQuiescentTemplate: true });
    expect(() => parseSysctls(['expire_quiescent_template=yes'])).toThrow('--sysctl expire_quiescent_template=yes: 0 or 1');
    expect(() => parseSysctls(['conn_reuse_mode=2'])).toThrow('--sysctl conn_reuse_mode: not supported by uvs yet (supported: expire_nodest_conn, expire_quiescent_template)');
    expect(() => parseSysctls(['expire_nodest_conn=2'])).toThrow('--sysctl expire_nodest_conn=2: 0 or 1');
    expect(() => parseSysctls(['expire_nodest_conn'])).toThrow('--sysctl expire_nodest_conn: expected NAME=VALUE');
    const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--sysctl', 'amemthresh=5']);
    expect(code).toBe(2);
    expect(err).toBe('uvsd: --sysctl amemthresh: not supported by uvs yet (supported: expire_nodest_conn, expire_quiescent_template)\n');
  });

  it('--rx-coalesce takes auto, off or a timer in µs; anything else is refused before anything starts', async () => {
    for (const bad of ['fast', '0.5', '5000']) {
      const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--rx-coalesce', bad]);
      expect(code).toBe(2);
      expect(err).toBe(`uvsd: --rx-coalesce ${bad}: auto, off, or a timer in µs (1–1000)\n`);
    }
  });

  it('no port at all is refused', async () => {
    const { code, err } = await run([]);
    expect(code).toBe(2);
    expect(err).toMatch(/^uvsd: give at least one --iface or --tap/);
  });
});

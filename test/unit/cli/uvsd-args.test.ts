import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseFtpPorts, parseSysctls } from '../../../src/cli/uvsd.js';
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

  it('--ftp-ports: up to 8 ports or none; anything else refused before anything starts', async () => {
    expect(parseFtpPorts('21')).toEqual([21]);
    expect(parseFtpPorts('21, 2121,21')).toEqual([21, 2121]);
    expect(parseFtpPorts('none')).toEqual([]);
    for (const bad of ['0', '65536', 'ftp', '21,', '1,2,3,4,5,6,7,8,9']) {
      const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--ftp-ports', bad]);
      expect(code).toBe(2);
      expect(err).toMatch(new RegExp(`^uvsd: --ftp-ports ${bad.replace(/[,]/g, ',')}: `));
    }
  });

  it('--sysctl NAME=VALUE: the IPVS sysctls uvs implements, range-checked, with or without the net.ipv4.vs. prefix; fixed ones refused with the reason', async () => {
    expect(parseSysctls([])).toEqual([]);
    expect(parseSysctls(['expire_nodest_conn=1'])).toEqual([{ name: 'expire_nodest_conn', value: '1' }]);
    expect(parseSysctls(['net.ipv4.vs.expire_nodest_conn=1', 'conn_reuse_mode=2', 'net/ipv4/vs/lblc_expiration=60'])).toEqual([
      { name: 'expire_nodest_conn', value: '1' }, { name: 'conn_reuse_mode', value: '2' }, { name: 'lblc_expiration', value: '60' },
    ]);
    expect(() => parseSysctls(['expire_quiescent_template=yes'])).toThrow('--sysctl: net.ipv4.vs.expire_quiescent_template=yes: not an integer');
    expect(() => parseSysctls(['conn_reuse_mode=4'])).toThrow('--sysctl: net.ipv4.vs.conn_reuse_mode=4: out of range 0..3');
    expect(() => parseSysctls(['expire_nodest_conn=2'])).toThrow('out of range 0..1');
    expect(() => parseSysctls(['conntrack=1'])).toThrow('--sysctl: net.ipv4.vs.conntrack is fixed at 0 in uvs: uvs forwards without netfilter');
    expect(() => parseSysctls(['no_such=1'])).toThrow('--sysctl: net.ipv4.vs.no_such: no such IPVS sysctl');
    expect(() => parseSysctls(['expire_nodest_conn'])).toThrow('--sysctl expire_nodest_conn: expected NAME=VALUE');
    expect(parseSysctls(['sync_threshold=3 10'])).toEqual([{ name: 'sync_threshold', value: '3 10' }]);
    expect(() => parseSysctls(['sync_threshold=50 50'])).toThrow('need 0 <= threshold < period (or period 0)');
    const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--sysctl', 'sync_ports=2']);
    expect(code).toBe(2);
    expect(err).toBe('uvsd: --sysctl: net.ipv4.vs.sync_ports is fixed at 1 in uvs: the uvs sync daemon uses one port\n');
  });

  it('--rx-coalesce takes auto, off or a timer in µs; anything else is refused before anything starts', async () => {
    for (const bad of ['fast', '0.5', '5000']) {
      const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--rx-coalesce', bad]);
      expect(code).toBe(2);
      expect(err).toBe(`uvsd: --rx-coalesce ${bad}: auto, off, or a timer in µs (1–1000)\n`);
    }
  });

  it('--vip-arp takes uvs or host', async () => {
    const { code, err } = await run(['--tap', 'uvsbad0=10.9.9.1/24', '--vip-arp', 'kernel']);
    expect(code).toBe(2);
    expect(err).toBe('uvsd: --vip-arp kernel: uvs or host\n');
  });

  it('no port at all is refused', async () => {
    const { code, err } = await run([]);
    expect(code).toBe(2);
    expect(err).toMatch(/^uvsd: give at least one --iface or --tap/);
  });
});

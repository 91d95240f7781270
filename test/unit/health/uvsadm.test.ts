/**
 * uvsadm's health-check commands parse through the ipvsadm parser's extension point.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/cli/ipvsadm/parse.js';

describe('uvsadm --load-keepalived / --load-ldirectord / --checks', () => {
  it('parses into ext requests', async () => {
    expect(await parseArgs(['--load-keepalived', '/etc/keepalived/keepalived.conf'], { program: 'uvsadm' }))
      .toEqual({ kind: 'ext', name: 'load-keepalived', data: { file: '/etc/keepalived/keepalived.conf', format: 'keepalived' } });
    expect(await parseArgs(['--load-ldirectord', 'ld.cf'], { program: 'uvsadm' }))
      .toEqual({ kind: 'ext', name: 'load-keepalived', data: { file: 'ld.cf', format: 'ldirectord' } });
    expect(await parseArgs(['--checks'], { program: 'uvsadm' })).toEqual({ kind: 'ext', name: 'checks', data: {} });
  });
  it('refuses a missing file argument and stray options like ipvsadm', async () => {
    expect((await parseArgs(['--load-keepalived'], { program: 'uvsadm' })).kind).toBe('error');
    expect((await parseArgs(['--checks', '-t', '1.2.3.4:80'], { program: 'uvsadm' })).kind).toBe('error');
  });
});

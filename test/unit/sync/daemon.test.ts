/**
 * SyncDaemons' refusals (the control answers uvsadm turns into ipvsadm's lines), before any socket
 * is opened: unknown interface (ENODEV), interface without IPv4 (EADDRNOTAVAIL), a bad syncid, an
 * IPv6 group, stopping a daemon that does not run (ESRCH), and commands that are not its own.
 * The sockets themselves are exercised end to end (test/e2e/sync.test.ts, two uvsd in namespaces).
 */
import { describe, expect, it } from 'vitest';
import { Director } from '../../../src/pipeline/director.js';
import { FakeClock } from '../../../src/pipeline/clock.js';
import { SyncDaemons, type IfaceAddr } from '../../../src/sync/daemon.js';

const ifaces: IfaceAddr = (n) => (n === 'eth0' ? { addr: '10.0.0.8', mtu: 1500 } : n === 'bare0' ? 'EADDRNOTAVAIL' : 'ENODEV');

describe('SyncDaemons refusals', () => {
  const d = new Director({ clock: new FakeClock(), maxConns: 64, maxPorts: 1 });
  const log = { info: () => undefined, warn: () => undefined };
  const s = new SyncDaemons(d, log, ifaces);

  it('answers with the kernel errnos and starts nothing', async () => {
    expect(await s.handle({ cmd: 'start-daemon', daemon: { state: 'master', mcastIfn: 'nope0', syncid: 0 } })).toMatchObject({ ok: false, errno: 'ENODEV' });
    expect(await s.handle({ cmd: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'bare0', syncid: 0 } })).toMatchObject({ ok: false, errno: 'EADDRNOTAVAIL' });
    expect(await s.handle({ cmd: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'eth0', syncid: 300 } })).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(await s.handle({ cmd: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth0', syncid: 1, group: 'ff02::1' } })).toMatchObject({ ok: false, errno: 'EAFNOSUPPORT' });
    expect(await s.handle({ cmd: 'stop-daemon', state: 'master' })).toMatchObject({ ok: false, errno: 'ESRCH' });
    expect(await s.handle({ cmd: 'get-daemons' })).toEqual({ ok: true, data: [] });
    expect(await s.handle({ cmd: 'get-services' })).toBeNull();
    expect(d.syncMaster).toBeNull();
    expect(d.syncBackupId).toBe(-1);
  });
});

/**
 * §6.3 of the reference, mistake by mistake: uvsadm's main() against a real uvsd control stack
 * (Director + Control ops behind a ControlServer on a temp unix socket). Parse/validation errors
 * print ipvsadm's text and exit 2; no command / unknown first option exit 255 with the tryhelp
 * line; kernel (daemon) refusals print ipvs_strerror's line and exit 255; listing failures exit 1.
 * errnos the daemon has no way to produce here (EPERM, ENOMEM, …) are injected by the handler.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Director } from '../../../src/pipeline/director.js';
import { FakeClock } from '../../../src/pipeline/clock.js';
import { Control } from '../../../src/control/ops.js';
import { ControlServer } from '../../../src/control/server.js';
import type { Command, Response } from '../../../src/control/types.js';
import { main } from '../../../src/cli/uvsadm.js';
import { ServicesDb } from '../../../src/cli/ipvsadm/format.js';

let dir: string;
let server: ControlServer;
let control: Control;
let received: Command[] = [];
/** When set, the daemon answers every command with this refusal. */
let forced: Response | undefined;

const services = ServicesDb.parse('http 80/tcp\nhttps 443/tcp\ndomain 53/udp\n');

async function uvsadm(argv: string, stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => { out += c.toString(); });
  stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const code = await main(argv.split(' ').filter(Boolean), {
    stdout, stderr, env: { UVS_SOCK: join(dir, 'uvsd.sock') }, services,
    lookupHost: async () => null,
    ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}),
  });
  return { code, out, err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'uvs-errors-'));
  server = new ControlServer(join(dir, 'uvsd.sock'));
  await server.listen((c) => {
    received.push(c);
    return forced ?? control.execute(c);
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  control = new Control(new Director({ clock: new FakeClock(), maxConns: 64, maxPorts: 2 }));
  received = [];
  forced = undefined;
});

describe('parse/validation errors: message on stderr, exit 2, nothing sent to the daemon', () => {
  const cases: [string, string][] = [
    ['-A -t 300.1.1.1:80', 'illegal virtual server address[:port] specified'],
    ['-A -t 1.2.3.4:99999', 'illegal virtual server address[:port] specified'],
    ['-a -t 1.2.3.4:80 -r 300.1.1.1:80', 'illegal real server address[:port] specified'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w 70000', 'illegal weight specified'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w -1', 'illegal weight specified'],
    ['--set 1 x 2', "invalid timeout value `x' specified"],
    ['-A -t 1.2.3.4:80 -p abc', "invalid timeout value `abc' specified"],
    // ipvsadm 1.31 takes the command from the first option only; a second command option is an
    // invalid option there (set_command's "multiple commands specified" is unreachable).
    ['-A -D -t 1.2.3.4:80', "invalid option `-D'"],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -w 1 -w 2', "multiple 'weight' options specified"],
    ['-A -s rr', "You need to supply the 'service-address' option for the 'add-service' command"],
    ['-a -t 1.2.3.4:80 -w 1', "You need to supply the 'real-server' option for the 'add-server' command"],
    ['-A -t 1.2.3.4:80 -w 1', "Illegal 'weight' option with the 'add-service' command"],
    ['-L --timeout -c', "The option 'timeout' conflicts with the 'connection' option in the 'list' command"],
    ['-L -c --timeout', "The option 'timeout' conflicts with the 'connection' option in the 'list' command"],
    ['-L -c --stats', 'options conflicts in the list command'],
    ['-L --timeout --persistent-conn', 'options conflicts in the list command'],
    ['-A -t 1.2.3.4:0', 'Zero port specified for non-persistent service'],
    ['-A -t 1.2.3.4:80 -o', 'One-Packet Scheduling is only for UDP virtual services'],
    ['--set 1 2', '--set option requires 3 timeout values'],
    ['-L foo', 'unexpected argument foo'],
    ['-A -t 1.2.3.4:80 -s sh -b foo', "invalid scheduler flag `foo'"],
    ['-A -t 1.2.3.4:80 -s rr -b sh-port', "incompatible scheduler flag `sh-port'"],
    ['-a -t 1.2.3.4:80 -r [2001:db8::1]:80 -m', 'Different address family is allowed only for tunneling servers'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -m --tun-type gue', 'Tunnel options conflict with forward method'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type foo', 'illegal tunnel type specified'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -i --tun-type gue', "You need to supply the 'tun-port' option for the 'gue' tunnel type"],
    ['--start-daemon foo', 'illegal start-daemon parameter specified'],
    ['-S -t 1.2.3.4:80', "Illegal 'service-address' option with the 'save' command"],
  ];
  for (const [argv, msg] of cases) {
    it(`${argv} ⇒ ${msg}`, async () => {
      expect(await uvsadm(argv)).toEqual({ code: 2, out: '', err: `${msg}\n` });
      expect(received).toEqual([]);
    });
  }
  it('-6 before -f: the message ends with an extra newline, as ipvsadm prints it', async () => {
    expect(await uvsadm('-A -6 -f 1')).toEqual({ code: 2, out: '', err: '-6 used before -f\n\n' });
  });
});

describe('no command / unknown first option: tryhelp line, exit 255', () => {
  for (const argv of ['-t 1.2.3.4:80', '--frob', '-w 1']) {
    it(argv, async () => {
      expect(await uvsadm(argv)).toEqual({ code: 255, out: '', err: "Try `uvsadm -h' or 'uvsadm --help' for more information.\n" });
    });
  }
});

describe('daemon (kernel) refusals: ipvs_strerror line, exit 255, state unchanged', () => {
  beforeEach(async () => {
    expect((await uvsadm('-A -t 1.2.3.4:80 -s rr')).code).toBe(0);
    expect((await uvsadm('-a -t 1.2.3.4:80 -r 10.0.0.1 -m')).code).toBe(0);
  });
  const cases: [string, string][] = [
    ['-A -t 1.2.3.4:80 -s rr', 'Service already exists'],
    ['-A -t 1.2.3.5:80 -s nosuch', 'Scheduler or persistence engine not found'],
    ['-E -t 1.2.3.4:80 -s nosuch', 'Scheduler or persistence engine not found'],
    ['-E -t 1.2.3.5:80 -s rr', 'No such service'],
    ['-D -t 1.2.3.5:80', 'No such service'],
    ['-Z -t 1.2.3.5:80', 'No such service'],
    ['-a -t 1.2.3.5:80 -r 10.0.0.1', 'Service not defined'],
    ['-e -t 1.2.3.5:80 -r 10.0.0.1', 'Service not defined'],
    ['-d -t 1.2.3.5:80 -r 10.0.0.1', 'Service not defined'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.1 -m', 'Destination already exists'],
    ['-e -t 1.2.3.4:80 -r 10.0.0.2', 'No such destination'],
    ['-d -t 1.2.3.4:80 -r 10.0.0.2', 'No such destination'],
    ['-A -t 224.0.0.1:80 -s rr', 'Invalid operation.  Possibly wrong module version, address not unicast, ...'],
    ['-a -t 1.2.3.4:80 -r 10.0.0.3 -m -x 5 -y 10', 'Numerical result out of range'],
    ['--stop-daemon master', 'No daemon is running'],
  ];
  for (const [argv, msg] of cases) {
    it(`${argv} ⇒ ${msg}`, async () => {
      const before = await uvsadm('-S -n');
      expect(await uvsadm(argv)).toEqual({ code: 255, out: '', err: `${msg}\n` });
      expect(await uvsadm('-S -n')).toEqual(before);
    });
  }

  const injected: [string, string][] = [
    ['EPERM', 'Permission denied (you must be root)'],
    ['EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...'],
    ['ENOPROTOOPT', 'Protocol not available'],
    ['ENOMEM', 'Memory allocation problem'],
    ['EAFNOSUPPORT', 'Operation not supported with specified address family'],
    ['EMSGSIZE', 'Module is wrong version'],
    ['ERANGE', 'Numerical result out of range'],
  ];
  for (const [errno, msg] of injected) {
    it(`${errno} from the daemon ⇒ ${msg}`, async () => {
      forced = { ok: false, errno, message: 'x' };
      expect(await uvsadm('-A -t 1.2.3.9:80 -s rr')).toEqual({ code: 255, out: '', err: `${msg}\n` });
    });
  }
  it('EOPNOTSUPP without a uvs explanation ⇒ ipvs_strerror text', async () => {
    forced = { ok: false, errno: 'EOPNOTSUPP', message: '' };
    expect(await uvsadm('-A -t 1.2.3.9:80 -s rr')).toEqual({ code: 255, out: '', err: 'Operation not supported with IPv6\n' });
  });

  it('features uvs lacks are refused clearly, exit 255, nothing changed', async () => {
    const before = await uvsadm('-S -n');
    expect(await uvsadm('-A -t 1.2.3.6:5060 -s rr --pe sip')).toMatchObject({ code: 255, err: expect.stringMatching(/^uvsadm: .*not supported by uvs yet\n$/) });
    expect(await uvsadm('-S -n')).toEqual(before);
  });
});

describe('listing failures: message, exit 1', () => {
  it('-L -t of an unknown service ⇒ No such service', async () => {
    expect(await uvsadm('-Ln -t 1.2.3.7:80')).toEqual({ code: 1, out: '', err: 'No such service\n' });
  });
});

describe('restore: a bad line aborts the whole file with exit 2, nothing applied', () => {
  it('parse error on line 3', async () => {
    const r = await uvsadm('-R', '-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 10.0.0.1 -m\n-a -t 1.2.3.4:80 -r 10.0.0.2 -w x\n');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('illegal weight specified');
    expect(r.err).toContain('line 3');
    expect(received).toEqual([]);
  });
  it('a daemon refusal inside the batch: exit 255, nothing applied', async () => {
    const r = await uvsadm('-R', '-A -t 1.2.3.4:80 -s rr\n-A -t 1.2.3.4:80 -s rr\n');
    expect(r).toEqual({ code: 255, out: '', err: 'Service already exists\n' });
    expect((await uvsadm('-S -n')).out).toBe('');
  });
});

describe('the daemon cannot be reached: exit 2', () => {
  it('no socket', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const code = await main(['-Ln'], { stdout, stderr, env: { UVS_SOCK: join(dir, 'absent.sock') }, services });
    expect(code).toBe(2);
    expect(err).toMatch(/^uvsadm: cannot reach uvsd at .*absent\.sock: ENOENT/);
  });
});

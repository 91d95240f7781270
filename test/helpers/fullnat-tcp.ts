/**
 * A FULLNAT (or NAT) TCP connection through a memory-port director, driven segment by segment:
 * the PROXY-protocol and TOA tests share it.
 */
import { expect } from 'vitest';
import { build, parse } from './frames.js';
import { memLab, tcpSvc, svcOpts, destOpts, CLIENT_MAC, DIR0_MAC, DIR1_MAC, ROUTER_MAC, RS1_MAC } from './lab-mem.js';
import { FWD_FULLNAT, FWD_MASQ } from '../../src/model/constants.js';

export const VIP = '192.168.10.110';
export const CIP = '192.168.10.6';
export const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, PSHACK = 0x18, FIN = 0x01, RST = 0x04;
export const ISN = 1000;
export const RS_ISN = 5000;
export const REQ = 'GET / HTTP/1.0\r\n\r\n';

/** seq, ack and the options of a parsed TCP frame. */
export function tcpFields(frame: Uint8Array) {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const l4 = 14 + (frame[14]! & 15) * 4;
  const doff = (frame[l4 + 12]! >> 4) * 4;
  return { seq: dv.getUint32(l4 + 4), ack: dv.getUint32(l4 + 8), options: [...frame.subarray(l4 + 20, l4 + doff)], l4 };
}

/**
 * A director with one TCP service and one dest of `fwd` (FULLNAT: RS 10.0.1.7 behind the router,
 * local address 10.0.0.50; NAT: RS 10.0.0.7), the service edited to `--proxy-protocol pp`, and a
 * handshake done: client ISN 1000 (the SYN with `clientOptions`), RS ISN 5000, RS MSS 1460. The
 * segments the real server got (SYN, handshake ACK) and the SYN-ACK the client got are returned.
 */
export function setup(pp: number, fwd: typeof FWD_FULLNAT | typeof FWD_MASQ = FWD_FULLNAT, opts: { mtu1?: number; isn?: number; clientOptions?: number[] } = {}) {
  const isn = opts.isn ?? ISN;
  const lab = memLab({ gateway: '10.0.0.200', ...(opts.mtu1 !== undefined ? { mtu1: opts.mtu1 } : {}) });
  const { p0, p1, cmd, run } = lab;
  const rip = fwd === FWD_FULLNAT ? '10.0.1.7' : '10.0.0.7';
  const rsMac = fwd === FWD_FULLNAT ? ROUTER_MAC : RS1_MAC;
  cmd({ cmd: 'add-service', svc: tcpSvc(VIP, 80), opts: { ...svcOpts('rr'), proxyProtocol: pp } });
  cmd({ cmd: 'add-server', svc: tcpSvc(VIP, 80), dest: { addr: rip, port: 80 }, opts: destOpts(fwd) });
  if (fwd === FWD_FULLNAT) cmd({ cmd: 'add-laddr', svc: tcpSvc(VIP, 80), laddr: '10.0.0.50' });
  const fromClient = (flags: number, seq: number, payload: string | Uint8Array = '', extra: { partial?: boolean; df?: boolean; ack?: number; tcpOptions?: number[] } = {}) => {
    const { partial, ...rest } = extra;
    const f = build({ srcMac: CLIENT_MAC, dstMac: DIR0_MAC, saddr: CIP, daddr: VIP, sport: 40000, dport: 80, flags, seq, ack: RS_ISN + 1, payload, ...rest, ...(partial ? { partial } : {}) });
    if (partial) p0.inject(f, { flags: 1, csumStart: 34, csumOffset: 16 });
    else p0.inject(f);
    run();
    return p1.takeSent();
  };
  let toRs: { sport: number; saddr: string } | undefined;
  const fromRs = (flags: number, ack: number, tcpOptions: number[] = [], payload = '') => {
    p1.inject(build({ srcMac: rsMac, dstMac: DIR1_MAC, saddr: rip, daddr: toRs!.saddr, sport: 80, dport: toRs!.sport, flags, seq: RS_ISN + (flags & SYN ? 0 : 1), ack, tcpOptions, payload }));
    run();
    return p0.takeSent();
  };
  const syn = fromClient(SYN, isn, '', opts.clientOptions ? { tcpOptions: opts.clientOptions } : {});
  expect(syn).toHaveLength(1);
  const s = parse(syn[0]!.frame, syn[0]!.meta);
  expect(s.payload.length).toBe(0);
  toRs = { sport: s.sport, saddr: s.saddr };
  const synAck = fromRs(SYNACK, (isn + 1) >>> 0, [2, 4, 0x05, 0xb4]); // MSS 1460
  expect(synAck).toHaveLength(1);
  const hs = fromClient(ACK, (isn + 1) >>> 0);
  expect(hs).toHaveLength(1);
  expect(tcpFields(hs[0]!.frame).seq).toBe((isn + 1) >>> 0); // no data yet: nothing moved
  return { ...lab, fromClient, fromRs, syn: syn[0]!.frame, synAck: synAck[0]!.frame, handshakeAck: hs[0]!.frame, rip };
}


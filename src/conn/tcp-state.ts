/**
 * tcp-state — the IPVS TCP state machine (K ip_vs_proto_tcp.c): the normal table and the defence
 * table (tcp_states_dos, in effect while secure_tcp is, see src/model/sysctl.ts).
 *
 * States are the kernel's numbers (IP_VS_TCP_S_*) and print with the kernel's names. The
 * transition table is a flat Uint8Array indexed by
 *     ((dirOffset + event) * TCP_S_LAST) + currentState
 * where dirOffset is 0 (INPUT: client→server), 4 (OUTPUT: server→client) or 8 (INPUT-ONLY:
 * conns still flagged NOOUTPUT, i.e. non-NAT dests until a reply is ever seen), and event is
 * 0 syn, 1 fin, 2 ack, 3 rst, chosen from the TCP flags with priority RST > SYN > FIN > ACK.
 * A segment with none of the four flags moves the conn to CLOSE (tcp_state_idx() < 0 in the
 * kernel leaves new_state at its CLOSE initialiser).
 *
 * Example: tcpNextState(TCP_S_NONE, TCP_DIR_INPUT, TCP_SYN) === TCP_S_SYN_RECV.
 * See also: timeouts.ts (timeout per state), conn-table.ts (accounting on state change).
 */

export const TCP_S_NONE = 0;
export const TCP_S_ESTABLISHED = 1;
export const TCP_S_SYN_SENT = 2;
export const TCP_S_SYN_RECV = 3;
export const TCP_S_FIN_WAIT = 4;
export const TCP_S_TIME_WAIT = 5;
export const TCP_S_CLOSE = 6;
export const TCP_S_CLOSE_WAIT = 7;
export const TCP_S_LAST_ACK = 8;
export const TCP_S_LISTEN = 9;
export const TCP_S_SYNACK = 10;
export const TCP_S_LAST = 11;

/** Template (persistence) states, K IP_VS_CTPL_S_*: listed as NONE / ASSURED. */
export const CTPL_S_NONE = 0;
export const CTPL_S_ASSURED = 1;

/** UDP has a single state, IP_VS_UDP_S_NORMAL, listed as `UDP`. */
export const UDP_S_NORMAL = 0;

export const TCP_STATE_NAMES: readonly string[] = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT',
  'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
];
export const CTPL_STATE_NAMES: readonly string[] = ['NONE', 'ASSURED'];

/** Row offsets into the table (K TCP_DIR_INPUT / OUTPUT / INPUT_ONLY = 0 / 4 / 8). */
export const TCP_DIR_INPUT = 0;
export const TCP_DIR_OUTPUT = 4;
export const TCP_DIR_INPUT_ONLY = 8;

/** Event indexes (K tcp_state_idx). */
export const TCP_EV_SYN = 0;
export const TCP_EV_FIN = 1;
export const TCP_EV_ACK = 2;
export const TCP_EV_RST = 3;

/** TCP header flag bits. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Event for (flags & 0x1f): -1 = none of RST/SYN/FIN/ACK ⇒ CLOSE. */
const EVENT_OF_FLAGS = new Int8Array(32);
for (let f = 0; f < 32; f++) {
  EVENT_OF_FLAGS[f] = f & TCP_RST ? TCP_EV_RST : f & TCP_SYN ? TCP_EV_SYN : f & TCP_FIN ? TCP_EV_FIN : f & TCP_ACK ? TCP_EV_ACK : -1;
}

export function tcpEventIndex(tcpFlags: number): number {
  return EVENT_OF_FLAGS[tcpFlags & 0x1f]!;
}

// Kernel table rows (tcp_states[]); columns are the current state in number order:
//  NONE ES SS SR FW TW CL CW LA LI SA
const sES = TCP_S_ESTABLISHED, sSS = TCP_S_SYN_SENT, sSR = TCP_S_SYN_RECV,
  sFW = TCP_S_FIN_WAIT, sTW = TCP_S_TIME_WAIT, sCL = TCP_S_CLOSE, sCW = TCP_S_CLOSE_WAIT,
  sLA = TCP_S_LAST_ACK, sLI = TCP_S_LISTEN, sSA = TCP_S_SYNACK;
const ROWS: readonly (readonly number[])[] = [
  /* INPUT */
  /* syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /* fin */ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /* rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
  /* OUTPUT */
  /* syn */ [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
  /* fin */ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
  /* rst */ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
  /* INPUT-ONLY */
  /* syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /* fin */ [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
  /* ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /* rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

/** Flat transition table: TCP_TABLE[(dirOffset + event) * TCP_S_LAST + state]. */
export const TCP_TABLE = new Uint8Array(12 * TCP_S_LAST);
for (let r = 0; r < 12; r++) for (let s = 0; s < TCP_S_LAST; s++) TCP_TABLE[r * TCP_S_LAST + s] = ROWS[r]![s]!;

/**
 * The defence table (K tcp_states_dos): the normal one except that a conn whose server has not
 * answered yet sits in SYNACK (timeout 120 s) instead of going
 * ESTABLISHED on the client's ACK alone, so a SYN flood or a spoofed handshake cannot fill the
 * table with long-lived ESTABLISHED entries. Written as its differences from ROWS
 * (row, current state, next state):
 */
const DOS_DIFF: readonly (readonly [number, number, number])[] = [
  [0, sSA, sSA], // INPUT syn
  [1, sSA, sSA], // INPUT fin
  [2, sSR, sSR], [2, sSA, sSA], // INPUT ack
  [3, sSA, sCL], // INPUT rst
  [4, sSR, sSA], [4, sSA, sSA], // OUTPUT syn
  // INPUT-ONLY syn
  [8, TCP_S_NONE, sSA], [8, sFW, sSA], [8, sTW, sSA], [8, sCL, sSA], [8, sCW, sSA], [8, sLA, sSA], [8, sLI, sSA], [8, sSA, sSA],
];
export const TCP_TABLE_DOS = new Uint8Array(TCP_TABLE);
for (const [r, from, to] of DOS_DIFF) TCP_TABLE_DOS[r * TCP_S_LAST + from] = to;

/** States counted as active (>= v4.8: ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK). */
export const TCP_STATE_ACTIVE = new Uint8Array(TCP_S_LAST);
TCP_STATE_ACTIVE[TCP_S_ESTABLISHED] = 1;
TCP_STATE_ACTIVE[TCP_S_SYN_SENT] = 1;
TCP_STATE_ACTIVE[TCP_S_SYN_RECV] = 1;
TCP_STATE_ACTIVE[TCP_S_SYNACK] = 1;

/** Next state for a segment with `tcpFlags` seen in row group `dirOffset`. */
export function tcpNextState(state: number, dirOffset: number, tcpFlags: number): number {
  const ev = EVENT_OF_FLAGS[tcpFlags & 0x1f]!;
  if (ev < 0) return TCP_S_CLOSE;
  return TCP_TABLE[(dirOffset + ev) * TCP_S_LAST + state]!;
}

export function tcpStateName(state: number): string {
  return TCP_STATE_NAMES[state] ?? 'ERR!';
}

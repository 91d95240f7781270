import { describe, expect, it } from 'vitest';
import {
  TCP_ACK, TCP_DIR_INPUT, TCP_DIR_INPUT_ONLY, TCP_DIR_OUTPUT, TCP_FIN, TCP_PSH, TCP_RST, TCP_STATE_ACTIVE,
  TCP_STATE_NAMES, TCP_SYN, TCP_S_CLOSE, TCP_S_ESTABLISHED, TCP_S_LAST, TCP_S_SYN_RECV, tcpEventIndex, tcpNextState,
} from '../../../src/conn/tcp-state.js';

// Copied verbatim from ipvs-semantics.md §3.2 (normal table): rows = current state.
const REFERENCE = `
| NONE | SYN_RECV | CLOSE | ESTABLISHED | CLOSE | SYN_SENT | TIME_WAIT | ESTABLISHED | CLOSE | SYN_RECV | CLOSE | ESTABLISHED | CLOSE |
| ESTABLISHED | ESTABLISHED | CLOSE_WAIT | ESTABLISHED | CLOSE | ESTABLISHED | FIN_WAIT | ESTABLISHED | CLOSE | ESTABLISHED | FIN_WAIT | ESTABLISHED | CLOSE |
| SYN_SENT | ESTABLISHED | SYN_SENT | SYN_SENT | CLOSE | SYN_SENT | SYN_SENT | SYN_SENT | SYN_SENT | ESTABLISHED | SYN_SENT | SYN_SENT | CLOSE |
| SYN_RECV | SYN_RECV | TIME_WAIT | ESTABLISHED | SYN_RECV | SYN_RECV | TIME_WAIT | ESTABLISHED | CLOSE | SYN_RECV | TIME_WAIT | ESTABLISHED | SYN_RECV |
| FIN_WAIT | SYN_RECV | TIME_WAIT | FIN_WAIT | CLOSE | SYN_SENT | FIN_WAIT | FIN_WAIT | CLOSE | SYN_RECV | FIN_WAIT | FIN_WAIT | CLOSE |
| TIME_WAIT | SYN_RECV | TIME_WAIT | TIME_WAIT | CLOSE | SYN_SENT | TIME_WAIT | TIME_WAIT | TIME_WAIT | SYN_RECV | TIME_WAIT | TIME_WAIT | CLOSE |
| CLOSE | SYN_RECV | CLOSE | CLOSE | CLOSE | SYN_SENT | CLOSE | CLOSE | CLOSE | SYN_RECV | CLOSE | CLOSE | CLOSE |
| CLOSE_WAIT | SYN_RECV | CLOSE_WAIT | CLOSE_WAIT | CLOSE | SYN_SENT | TIME_WAIT | CLOSE_WAIT | CLOSE | SYN_RECV | CLOSE_WAIT | CLOSE_WAIT | CLOSE |
| LAST_ACK | SYN_RECV | LAST_ACK | CLOSE | LAST_ACK | SYN_SENT | LAST_ACK | LAST_ACK | CLOSE | SYN_RECV | LAST_ACK | CLOSE | LAST_ACK |
| LISTEN | SYN_RECV | LISTEN | LISTEN | LISTEN | LISTEN | LISTEN | ESTABLISHED | CLOSE | SYN_RECV | LISTEN | LISTEN | LISTEN |
| SYNACK | SYN_RECV | TIME_WAIT | ESTABLISHED | SYN_RECV | SYN_RECV | TIME_WAIT | ESTABLISHED | CLOSE | SYN_RECV | TIME_WAIT | ESTABLISHED | CLOSE |
`;

const EVENTS = [TCP_SYN, TCP_FIN, TCP_ACK, TCP_RST];
const DIRS = [TCP_DIR_INPUT, TCP_DIR_OUTPUT, TCP_DIR_INPUT_ONLY];

describe('tcp-state', () => {
  const rows = REFERENCE.trim().split('\n').map((l) => l.split('|').map((c) => c.trim()).filter((c) => c !== ''));

  it('has the kernel state names in kernel order', () => {
    expect(TCP_STATE_NAMES).toEqual(['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT',
      'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK']);
    expect(rows.length).toBe(TCP_S_LAST);
  });

  for (const row of [
    'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
  ]) {
    it(`row ${row} matches the reference (IN, OUT, IN-ONLY × syn fin ack rst)`, () => {
      const cells = rows.find((r) => r[0] === row)!;
      const from = TCP_STATE_NAMES.indexOf(row);
      let col = 1;
      for (const dir of DIRS) {
        for (const ev of EVENTS) {
          expect(TCP_STATE_NAMES[tcpNextState(from, dir, ev)], `${row} dir${dir} ev${ev}`).toBe(cells[col]);
          col++;
        }
      }
    });
  }

  it('event priority RST > SYN > FIN > ACK; no flag ⇒ CLOSE', () => {
    expect(tcpEventIndex(TCP_SYN | TCP_ACK)).toBe(0);
    expect(tcpEventIndex(TCP_FIN | TCP_ACK)).toBe(1);
    expect(tcpEventIndex(TCP_ACK | TCP_PSH)).toBe(2);
    expect(tcpEventIndex(TCP_RST | TCP_SYN | TCP_FIN | TCP_ACK)).toBe(3);
    expect(tcpEventIndex(TCP_PSH)).toBe(-1);
    expect(tcpNextState(TCP_S_ESTABLISHED, TCP_DIR_INPUT, TCP_PSH)).toBe(TCP_S_CLOSE);
    expect(tcpNextState(TCP_S_ESTABLISHED, TCP_DIR_OUTPUT, 0)).toBe(TCP_S_CLOSE);
    expect(tcpNextState(TCP_S_SYN_RECV, TCP_DIR_INPUT, TCP_SYN | TCP_ACK)).toBe(TCP_S_SYN_RECV);
  });

  it('active states are ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK (>= 4.8)', () => {
    const active = TCP_STATE_NAMES.filter((_, i) => TCP_STATE_ACTIVE[i] === 1);
    expect(active).toEqual(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);
    expect(TCP_STATE_ACTIVE[TCP_S_SYN_RECV]).toBe(1);
  });
});

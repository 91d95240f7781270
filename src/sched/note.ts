/**
 * Trace helpers for scheduler notes. Only called when a SchedNote is being written (tracing on),
 * never on the untraced data path.
 */
import type { Dest } from '../model/dest.js';
import { ipToString } from '../model/addr.js';

/** "10.0.0.17:80", the way the notes name a dest. */
export function destName(d: Dest | null): string {
  return d === null ? 'none' : `${ipToString(d.addr)}:${d.port}`;
}

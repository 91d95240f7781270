/**
 * What putting the client's address into a FULLNAT packet (TOA for TCP, toa.ts; UOA for UDP,
 * uoa.ts) did: the codes both return, and the `result` label each has in the metrics.
 */
export const AO_NOTHING = 0;
export const AO_ADDED = 1;
/** Left out: the header (TCP options / IP header) has no room for the option. */
export const AO_SKIP_OPTION_ROOM = 2;
/** Left out: the grown packet would not fit the MTU toward the real server. */
export const AO_SKIP_MTU = 3;
/** Left out: an IP fragment. */
export const AO_SKIP_FRAGMENT = 4;
/** Left out: no headroom in the frame to grow into. */
export const AO_SKIP_HEADROOM = 5;

/** uvs_fullnat_{toa,uoa}_total's `result` label per code (AO_NOTHING has none). */
export const AO_RESULTS: readonly (readonly [string, number])[] = [
  ['added', AO_ADDED], ['no_option_room', AO_SKIP_OPTION_ROOM], ['mtu', AO_SKIP_MTU],
  ['fragment', AO_SKIP_FRAGMENT], ['no_headroom', AO_SKIP_HEADROOM],
];

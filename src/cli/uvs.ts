/**
 * `uvs`: the tool around the director — labs, the userspace IPIP endpoint for real servers, and
 * (to come) explain and bench. One dispatch table; each subcommand is its own module, loaded on
 * demand so `uvs explain` never loads the native addon or lab code.
 */

type Subcommand = { summary: string; run: (argv: string[]) => Promise<number> };

const COMMANDS: Record<string, Subcommand> = {
  lab: {
    summary: 'lab nat|dr|tun|fullnat [--sched NAME] [--port-kind iface|tap] [--keep] [--requests N] | lab down',
    run: async (argv) => (await import('./lab.js')).labCommand(argv),
  },
  'tunnel-endpoint': {
    summary: 'tunnel-endpoint --iface IF --vip VIP [--vip …] [--dev NAME]   userspace IPIP endpoint for real servers',
    run: async (argv) => (await import('./tunnel-endpoint.js')).tunnelEndpoint(argv),
  },
  explain: {
    summary: 'explain --mode nat|dr|tun|fullnat [--sched NAME] [--packets N] [--pcap FILE] [--json]   packet walk, no root',
    run: async (argv) => (await import('./explain.js')).explainMain(argv),
  },
  bench: {
    summary: 'bench [micro|packet|conn|sched|trace]   micro-benchmarks (no root), markdown tables',
    run: async (argv) => (await import('./bench.js')).benchCommand(argv),
  },
};

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  uvs ${c.summary}`);
  return `usage:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    (cmd === undefined ? process.stderr : process.stdout).write(usage());
    return cmd === undefined ? 64 : 0;
  }
  const sub = COMMANDS[cmd];
  if (!sub) {
    process.stderr.write(`uvs: unknown command "${cmd}"\n${usage()}`);
    return 64;
  }
  return sub.run(rest);
}

/**
 * `uvs bench micro|packet|conn|sched` — micro-benchmarks that need no root. Each prints a
 * markdown table; `micro` runs them all. (The macro suite against the kernel, `uvs bench modes`,
 * needs root and namespaces.)
 */
export async function benchCommand(argv: string[]): Promise<number> {
  const what = argv[0] ?? 'micro';
  if (what === 'modes') return (await import('./bench-modes.js')).benchModes(argv.slice(1));
  const out: string[] = [];
  const all = what === 'micro';
  if (!all && !['packet', 'conn', 'sched', 'trace'].includes(what)) {
    process.stderr.write(`uvs bench: unknown benchmark "${what}" (micro, packet, conn, sched, trace)\n`);
    return 64;
  }
  out.push(`# uvs micro-benchmarks\n\nnode ${process.version}, ${(await import('node:os')).cpus()[0]?.model ?? 'cpu'} × ${(await import('node:os')).cpus().length}\n`);
  if (all || what === 'packet') {
    const { runPacketBench } = await import('../bench/packet-bench.js');
    out.push('## Per-packet JS work\n\n' + (await runPacketBench()) + '\n');
  }
  if (all || what === 'conn') {
    const { runConnBench } = await import('../bench/conn-bench.js');
    out.push('## Connection table\n\n' + (await runConnBench()) + '\n');
  }
  if (all || what === 'sched') {
    const { runSchedBench } = await import('../bench/sched-bench.js');
    out.push('## Scheduler pick() (ns)\n\n' + (await runSchedBench()) + '\n');
  }
  if (all || what === 'trace') {
    try {
      const mod = (await import('../bench/' + 'trace-bench.js')) as { runTraceBench: () => Promise<string> };
      out.push('## Tracer off vs on\n\n' + (await mod.runTraceBench()) + '\n');
    } catch {
      if (what === 'trace') { process.stderr.write('uvs bench: trace benchmark not available\n'); return 1; }
    }
  }
  process.stdout.write(out.join('\n'));
  return 0;
}

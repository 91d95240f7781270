#!/usr/bin/env node
// Self time per function of a V8 .cpuprofile (from `uvs bench modes --cpu-prof DIR`):
//   node bench/tools/cpuprof-top.mjs DIR/uvsd-nat-default.cpuprofile [N]
import { readFileSync } from 'node:fs';

const [file, nArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpuprof-top.mjs FILE.cpuprofile [N]\n');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const dt = prof.timeDeltas ?? [];
const self = new Map();
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const n = byId.get(prof.samples[i]);
  const us = dt[i] ?? 0;
  total += us;
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anonymous)'} ${cf.url ? cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/') + ':' + (cf.lineNumber + 1) : ''}`.trim();
  self.set(key, (self.get(key) ?? 0) + us);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(nArg ?? 20));
process.stdout.write(`| self % | self ms | function |\n|---:|---:|---|\n`);
for (const [k, us] of rows) process.stdout.write(`| ${((us / total) * 100).toFixed(1)} | ${(us / 1000).toFixed(0)} | ${k.replace(/\|/g, '/')} |\n`);
process.stdout.write(`\ntotal ${(total / 1000).toFixed(0)} ms sampled\n`);

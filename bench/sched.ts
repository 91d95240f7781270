// Scheduler pick() benchmark: the body is src/bench/sched-bench.ts (runSchedBench(), returns a
// markdown table of ns/pick for every scheduler with 2, 16 and 256 dests); run it with
// `uvs bench sched` once built (bench/ is outside tsconfig's rootDir, so nothing runs from here).

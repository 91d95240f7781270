/** The sched/ room in one import: the registry (which registers every built-in) and the types. */
export * from './registry.js';
export type { DestChange, Scheduler, SchedulerFactory } from './scheduler.js';
export { SchedKey, SchedNote } from './scheduler.js';
export { setTwosRandom, createTwosFactory, type RandomInclusive } from './twos.js';
export { createLblcFactory } from './lblc.js';
export { createLblcrFactory } from './lblcr.js';

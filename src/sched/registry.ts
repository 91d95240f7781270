/**
 * The scheduler registry (the kernel's register_ip_vs_scheduler / ip_vs_scheduler_get): factories
 * by name. Importing this module registers the fourteen built-in schedulers, in the order the
 * ipvsadm man page lists them; callers (control, CLI, tests) import THIS module.
 *
 * Scheduler files do not import the registry (no import cycle): a new scheduler is one file plus
 * one line in BUILTIN below, and the conformance suite then runs over it.
 */
import type { SchedulerFactory } from './scheduler.js';
import { rrFactory } from './rr.js';
import { wrrFactory } from './wrr.js';
import { lcFactory } from './lc.js';
import { wlcFactory } from './wlc.js';
import { lblcFactory } from './lblc.js';
import { lblcrFactory } from './lblcr.js';
import { dhFactory } from './dh.js';
import { shFactory } from './sh.js';
import { sedFactory } from './sed.js';
import { nqFactory } from './nq.js';
import { foFactory } from './fo.js';
import { ovfFactory } from './ovf.js';
import { mhFactory } from './mh.js';
import { twosFactory } from './twos.js';

/** ipvsadm's default scheduler. */
export const DEFAULT_SCHEDULER = 'wlc';

const BUILTIN: readonly SchedulerFactory[] = [
  rrFactory, wrrFactory, lcFactory, wlcFactory, lblcFactory, lblcrFactory, dhFactory, shFactory,
  sedFactory, nqFactory, foFactory, ovfFactory, mhFactory, twosFactory,
];

const factories = new Map<string, SchedulerFactory>();

/** Adds (or replaces, e.g. with a factory built with options) a scheduler under its name. */
export function registerScheduler(f: SchedulerFactory): void {
  factories.set(f.name, f);
}

export function getScheduler(name: string): SchedulerFactory | undefined {
  return factories.get(name);
}

/** Registered names in registration order. */
export function schedulerNames(): string[] {
  return [...factories.keys()];
}

for (const f of BUILTIN) registerScheduler(f);

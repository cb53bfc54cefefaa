import { performance } from "node:perf_hooks";

/**
 * Time limits derived from work measured on this machine, now, instead of wall-clock guesses.
 *
 * A 2-core machine shared with other builds can be five or ten times slower than an idle laptop,
 * and slower still at one moment than at the next. A test that does `units` units of work gets
 * `units × (measured cost of one unit) × headroom`, never less than `floorMs`: on a fast machine
 * the limit is short, on a loaded one it grows with the measured cost, so the limit only fires
 * when the work itself got stuck.
 */

/** How much slower the work may get than when it was measured (load comes and goes). */
export const HEADROOM = 6;

/**
 * The milliseconds one unit of work costs here now: `runs` units, `concurrency` at a time (as the
 * test will run them), after `warmUps` unmeasured ones run the same way; elapsed time / `runs`.
 */
export const measureUnitMs = async (
  unit: (index: number) => Promise<void>,
  { runs, concurrency = 1, warmUps = 2 }: { runs: number; concurrency?: number; warmUps?: number },
): Promise<number> => {
  const pool = async (count: number, offset: number) => {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) await unit(offset + i);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  await pool(warmUps, runs); // JIT, connection pools and caches warm, as they are mid-test
  const started = performance.now();
  await pool(runs, 0);
  return (performance.now() - started) / runs;
};

/** A time limit for `units` units costing `unitMs` each, with {@link HEADROOM}, at least `floorMs`. */
export const timeLimitFor = (units: number, unitMs: number, floorMs = 60_000): number =>
  Math.max(floorMs, Math.ceil(units * unitMs * HEADROOM));

/**
 * One run of an in-process property (a handler on a mocked client): about 15–30 ms measured at
 * load 19 on 2 cores (a few ms idle). {@link timeLimitForRuns} adds the headroom.
 */
export const IN_PROCESS_RUN_MS = 30;

/**
 * One run of a property on DynamoDB Local over HTTP (a few requests, and a snapshot of the tables
 * before and after): 60–340 ms measured at load 19 on 2 cores, the heaviest property the slowest.
 */
export const DYNAMODB_LOCAL_RUN_MS = 400;

/** The time limit of a property test: `numRuns` runs of `perRunMs` each, with {@link HEADROOM}. */
export const timeLimitForRuns = (numRuns: number, perRunMs: number): number =>
  timeLimitFor(numRuns, perRunMs, 5_000);

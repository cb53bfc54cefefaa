/**
 * Benchmark 4: cold init of each bundle in a fresh Node process: the time from process start
 * (`performance.timeOrigin`) until `await import(bundle)` has run the module's top-level code.
 * The handler is never invoked (init only).
 */
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import type { Table } from "./report.js";
import { fmtMs, fmtRatio, median, verdict } from "./stats.js";

/** The environment the handlers read at init, so config loading succeeds. Nothing is ever called. */
export const INIT_ENV: Readonly<Record<string, string>> = {
  SESSIONS_TABLE: "bench-sessions",
  CONVERSATIONS_TABLE: "bench-conversations",
  PUBLIC_BASE_URL: "https://api.example.test",
  AWS_REGION: "us-east-1",
  POWERTOOLS_METRICS_DISABLED: "true",
  POWERTOOLS_LOG_LEVEL: "SILENT",
  POWERTOOLS_SERVICE_NAME: "elevenlabs-agent-sessions",
  // Belt and braces: nothing here may ever reach AWS.
  AWS_EC2_METADATA_DISABLED: "true",
};

/**
 * Runs in the child. `performance.now()` counts from the process's time origin, so `done` is
 * process start → module imported and its top-level code run; `done - before` is the import alone.
 * `process.cpuUsage()` at the same instant is the CPU time (user + system, all threads) spent
 * so far: unlike wall time it does not grow while the process waits for a busy core, so it is
 * the noise-robust cross-check on a shared machine.
 */
const LOADER =
  "const before=performance.now();const c0=process.cpuUsage();await import(process.argv[1]);" +
  "const done=performance.now();const c=process.cpuUsage();const i=process.cpuUsage(c0);" +
  "process.stdout.write(JSON.stringify({before,done,cpu:(c.user+c.system)/1000," +
  "importCpu:(i.user+i.system)/1000}));process.exit(0);";

interface Start {
  readonly before: number;
  readonly done: number;
  readonly cpu: number;
  readonly importCpu: number;
}

/** A bundle to start. */
export interface InitTarget {
  readonly name: string;
  readonly file: string;
}

/** The samples of one bundle, or why it could not be started. */
export interface InitSamples {
  /** Process start → imported (ms). */
  readonly total: number[];
  /** `await import()` alone (ms). */
  readonly importOnly: number[];
  /** CPU time (user + system) from process start to imported (ms). */
  readonly cpu: number[];
  /**
   * CPU time of the `await import()` alone (ms). Index i is round i for every bundle that never
   * failed, so samples of two bundles can be paired by round.
   */
  readonly importCpu: number[];
  error?: string;
}

const startOnce = (file: string, nodeArgs: readonly string[]): Start => {
  const child = spawnSync(
    process.execPath,
    [...nodeArgs, "--input-type=module", "-e", LOADER, pathToFileURL(file).href],
    {
      // A clean environment: no NODE_OPTIONS or loaders inherited from tsx.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...INIT_ENV },
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  if (child.status !== 0) {
    const reason = (child.stderr || child.error?.message || `exit ${child.status}`).trim().split("\n");
    throw new Error(reason.find((line) => /Error/.test(line)) ?? reason[0] ?? "failed");
  }
  return JSON.parse(child.stdout) as Start;
};

/**
 * Starts every bundle `runs` times, round-robin (bundle order rotated each round) so all bundles
 * share the same machine state; one uncounted start per bundle first warms the file cache.
 */
export const measureColdInit = (
  targets: readonly InitTarget[],
  runs: number,
  nodeArgs: readonly string[] = [],
): Map<string, InitSamples> => {
  const samples = new Map<string, InitSamples>(
    targets.map((t) => [t.name, { total: [], importOnly: [], cpu: [], importCpu: [] } satisfies InitSamples]),
  );
  const attempt = (target: InitTarget, record: boolean) => {
    const entry = samples.get(target.name);
    if (!entry || entry.error) return;
    try {
      const { before, done, cpu, importCpu } = startOnce(target.file, nodeArgs);
      if (!record) return;
      entry.total.push(done);
      entry.importOnly.push(done - before);
      entry.cpu.push(cpu);
      entry.importCpu.push(importCpu);
    } catch (error) {
      entry.error = error instanceof Error ? error.message : String(error);
    }
  };
  for (const target of targets) attempt(target, false);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(k + round) % targets.length];
      if (target) attempt(target, true);
    }
  }
  return samples;
};

/** What the cold-init table shows for one function. */
export interface InitRow {
  readonly name: string;
  readonly status: "ok" | "missing" | "failed";
  readonly plain?: InitSamples;
  readonly sourceMaps?: InitSamples;
  readonly reason?: string;
}

/** Median ratio of `a` to `b`. */
const ratioOf = (a: readonly number[] | undefined, b: readonly number[] | undefined) =>
  a?.length && b?.length ? median(a) / median(b) : Number.NaN;

/** The cold-init table: medians, ratios against the reference and the verdicts. */
export const coldInitTable = (reference: InitRow, rows: readonly InitRow[], target: number): Table => {
  const ref = reference.plain;
  const refMaps = reference.sourceMaps;
  const line = (row: InitRow, isReference: boolean): string[] => {
    const failure = row.reason ?? row.plain?.error;
    if (row.status !== "ok" || failure) {
      const missing = row.status === "missing";
      const why = missing ? "missing (no handler.ts yet)" : `init failed: ${failure ?? ""}`.slice(0, 120);
      return [row.name, why, "", "", "", missing ? "—" : "MISS"];
    }
    const p = row.plain;
    const wall = ratioOf(p?.total, ref?.total);
    const cpu = ratioOf(p?.cpu, ref?.cpu);
    const sm = row.sourceMaps;
    return [
      row.name,
      fmtMs(median(p?.total ?? [])),
      fmtMs(Math.min(...(p?.total ?? []))),
      fmtRatio(wall),
      isReference ? "" : `≤ ${target}×`,
      isReference ? "" : verdict(wall, target),
      fmtMs(median(p?.cpu ?? [])),
      fmtRatio(cpu),
      isReference ? "" : verdict(cpu, target),
      fmtMs(median(p?.importOnly ?? [])),
      sm?.error ? "failed" : fmtMs(median(sm?.total ?? [])),
      sm?.error ? "" : fmtRatio(ratioOf(sm?.cpu, refMaps?.cpu)),
    ];
  };
  return {
    columns: [
      "function",
      "wall: start → imported (median)",
      "wall min",
      "wall × ref",
      "target",
      "result (wall)",
      "CPU time (median)",
      "CPU × ref",
      "result (CPU)",
      "import alone (wall)",
      "+source maps: wall",
      "+source maps: CPU × ref",
    ],
    numeric: [1, 2, 3, 6, 7, 9, 10, 11],
    rows: [line(reference, true), ...rows.map((r) => line(r, false))],
  };
};

/** Wall and CPU ratios of a row against the reference (NaN when either is missing). */
export const initRatios = (reference: InitRow, row: InitRow): { wall: number; cpu: number } => ({
  wall: ratioOf(row.plain?.total, reference.plain?.total),
  cpu: ratioOf(row.plain?.cpu, reference.plain?.cpu),
});

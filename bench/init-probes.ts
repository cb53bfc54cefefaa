/**
 * Attribution for benchmarks 3 and 4: the reference handler plus one dependency our code adds,
 * bundled and started alone, so the init cost (CPU time) and size of each addition is measured
 * rather than guessed. Each probe does at import what our core modules do at their top level
 * (create the Powertools instances, build a schema, load an SDK client module). Probes import
 * packages only, so they keep working while our code changes; who uses each package is read
 * from the functions' metafiles.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BundleEntry, BundleResult } from "./bundles.js";
import type { InitSamples } from "./cold-init.js";
import type { Table } from "./report.js";
import { fmtDeltaMs, fmtKb, median } from "./stats.js";

interface Probe {
  readonly id: string;
  readonly label: string;
  /** Appended to the reference handler's source. */
  readonly code: string;
  /** Packages the probe stands for; a function "has" the probe when its bundle contains the first. */
  readonly packages: readonly string[];
  /** Whether the probe counts in the per-function sum (parts of a combined probe and comparisons do not). */
  readonly summed: boolean;
  /** Short name in the attribution sentences. */
  readonly short: string;
}

const KEEP = "(globalThis as Record<string, unknown>).__probe =";
const LOGGER = "@aws-lambda-powertools/logger";
const METRICS = "@aws-lambda-powertools/metrics";

const PROBES: readonly Probe[] = [
  {
    id: "probe-powertools",
    label: "Powertools Logger + Metrics (both created at import)",
    code:
      `import { Logger } from "${LOGGER}";\nimport { Metrics } from "${METRICS}";\n` +
      `${KEEP} [new Logger({ serviceName: "probe" }), new Metrics({ serviceName: "probe", namespace: "Probe" })];`,
    packages: [LOGGER, METRICS],
    summed: true,
    short: "Powertools Logger+Metrics",
  },
  {
    id: "probe-logger",
    label: "… Logger alone",
    code: `import { Logger } from "${LOGGER}";\n${KEEP} new Logger({ serviceName: "probe" });`,
    packages: [LOGGER],
    summed: false,
    short: "Logger",
  },
  {
    id: "probe-metrics",
    label: "… Metrics alone",
    code: `import { Metrics } from "${METRICS}";\n${KEEP} new Metrics({ serviceName: "probe", namespace: "Probe" });`,
    packages: [METRICS],
    summed: false,
    short: "Metrics",
  },
  {
    id: "probe-zod-mini",
    label: "zod/mini (one strict object schema built at import)",
    code:
      `import * as z from "zod/mini";\n${KEEP} z.strictObject({ id: z.string().check(z.regex(/^[a-z]+$/)), ` +
      `url: z.optional(z.url()), tags: z.record(z.string(), z.union([z.string(), z.number()])), ` +
      `kind: z.optional(z.enum(["a", "b"])) });`,
    packages: ["zod"],
    summed: true,
    short: "zod/mini",
  },
  {
    id: "probe-zod-full",
    label: "full zod (same schema), for comparison",
    code:
      `import * as z from "zod";\n${KEEP} z.strictObject({ id: z.string().regex(/^[a-z]+$/), ` +
      `url: z.url().optional(), tags: z.record(z.string(), z.union([z.string(), z.number()])), ` +
      `kind: z.enum(["a", "b"]).optional() });`,
    packages: [],
    summed: false,
    short: "full zod",
  },
  {
    id: "probe-sqs",
    label: "@aws-sdk/client-sqs (module loaded, no client created)",
    code: `import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";\n${KEEP} [SQSClient, SendMessageCommand];`,
    packages: ["@aws-sdk/client-sqs"],
    summed: true,
    short: "SQS client module",
  },
];

/** The probe entries: the reference handler's source plus one import each. */
export const probeEntries = (repoRoot: string, referenceEntry: string): BundleEntry[] => {
  const reference = readFileSync(join(repoRoot, referenceEntry), "utf8");
  return PROBES.map((probe) => ({
    name: probe.id,
    entry: `bench/${probe.id}.ts`,
    contents: `${reference}\n${probe.code}\n`,
  }));
};

/**
 * Init CPU cost of a probe over the reference: the median over rounds of (probe − reference)
 * import CPU time in the same round. Pairing by round and leaving out Node's own bootstrap keeps
 * the noise well under a millisecond, where plain medians of whole-process times move by ±2 ms.
 */
const pairedImportCpuDelta = (probe: InitSamples, reference: InitSamples): number => {
  const n = Math.min(probe.importCpu.length, reference.importCpu.length);
  const deltas = Array.from(
    { length: n },
    (_, i) => (probe.importCpu[i] ?? 0) - (reference.importCpu[i] ?? 0),
  );
  return median(deltas);
};

/** Which of our files import the probe's packages, and into how many functions, from the metafiles. */
const usage = (probe: Probe, functions: readonly BundleResult[]): string => {
  if (probe.packages.length === 0) return "not used by any function";
  const files = new Set<string>();
  let count = 0;
  for (const result of functions) {
    if (result.status !== "ok" || !probe.packages.some((pkg) => result.packages.has(pkg))) continue;
    count += 1;
    for (const pkg of probe.packages) {
      for (const importer of result.importers.get(pkg) ?? []) {
        files.add(importer.split(" → ")[0]?.replace(/^functions\/core\//, "") ?? importer);
      }
    }
  }
  if (count === 0) return "not in any function's bundle";
  const ok = functions.filter((f) => f.status === "ok").length;
  return `${count === ok ? "all" : count} functions, via ${[...files].join(", ") || "another package"}`;
};

/** Size and init CPU cost of each probe over the reference, and where our code uses it. */
export const probeTable = (
  reference: BundleResult,
  probes: readonly BundleResult[],
  samples: ReadonlyMap<string, InitSamples>,
  functions: readonly BundleResult[],
): Table => {
  const ref = samples.get(reference.name);
  const rows = PROBES.map((probe) => {
    const result = probes.find((p) => p.name === probe.id);
    const s = samples.get(probe.id);
    const used = usage(probe, functions);
    if (result?.status !== "ok" || reference.status !== "ok") {
      return [probe.label, "did not build", "", used];
    }
    if (!s || s.error || !ref || ref.error)
      return [probe.label, `+${fmtKb(result.bytes - reference.bytes)}`, "failed", used];
    return [
      probe.label,
      `+${fmtKb(result.bytes - reference.bytes)}`,
      `${fmtDeltaMs(pairedImportCpuDelta(s, ref))} ms`,
      used,
    ];
  });
  return {
    columns: [
      "reference + …",
      "size over reference",
      "init CPU over reference (paired median)",
      "in our bundles",
    ],
    numeric: [1, 2],
    rows,
  };
};

/** CPU time each probe adds over the reference at init (ms, paired medians). */
export const probeCpuCosts = (
  referenceName: string,
  samples: ReadonlyMap<string, InitSamples>,
): Map<string, number> => {
  const ref = samples.get(referenceName);
  const costs = new Map<string, number>();
  if (!ref || ref.error) return costs;
  for (const probe of PROBES) {
    const s = samples.get(probe.id);
    if (s && !s.error && s.importCpu.length > 0) costs.set(probe.id, pairedImportCpuDelta(s, ref));
  }
  return costs;
};

/**
 * The summed probes that apply to a bundle (it contains their package) with their measured cost,
 * for one sentence per missed function: "Powertools Logger+Metrics +3.1 ms, zod/mini +3.4 ms, ...".
 */
export const attributeInit = (
  packages: ReadonlyMap<string, number>,
  costs: ReadonlyMap<string, number>,
): { parts: string[]; sum: number } => {
  const applied = PROBES.filter(
    (p) => p.summed && p.packages[0] !== undefined && packages.has(p.packages[0]) && costs.has(p.id),
  );
  const parts = applied.map((p) => `${p.short} ${fmtDeltaMs(costs.get(p.id) ?? 0)} ms`);
  const sum = applied.reduce((total, p) => total + (costs.get(p.id) ?? 0), 0);
  return { parts, sum };
};

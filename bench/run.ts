/**
 * `npm run bench`: four side-by-side comparisons in one run, printed as tables and written to
 * bench/RESULTS.md with the machine and the date. Budgets live here, not in timed tests.
 *
 *   1. SessionStore.get vs a raw GetItem (DynamoDB Local)            target ≤ 1.15× at p50
 *   2. record-task-result handler vs the raw calls it makes           overhead ratio, reported
 *   3. bundle size of each function vs a DocumentClient+GetCommand    target ≤ 1.15×
 *   4. cold init of each bundle in a fresh Node process (median)      target ≤ 1.15×
 *
 * Order of execution: bundles, then cold init (before Java starts, so DynamoDB Local does not
 * compete for the cores), then the DynamoDB Local benchmarks. `BENCH_QUICK=1` runs a few
 * iterations only and does not write RESULTS.md.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ROUTES } from "../functions/core/routes.js";
import { type DynamoDbLocal, startDynamoDbLocal } from "../local/dynamodb-local.js";
import {
  additionsOverReference,
  type BundleResult,
  bundleAll,
  CDK_DEFAULT_CONFIG,
  compositionTable,
  deployedConfig,
  displayPath,
  esbuildVersion,
  importersTable,
  OUR_CODE,
  ourCodeTable,
  sizeTable,
} from "./bundles.js";
import { coldInitTable, INIT_ENV, type InitRow, initRatios, measureColdInit } from "./cold-init.js";
import type { BenchOutcome } from "./dynamo-latency.js";
import { attributeInit, probeCpuCosts, probeEntries, probeTable } from "./init-probes.js";
import { describeMachine, renderSection, renderTable, type Section } from "./report.js";
import { elapsedMs, fmtDeltaMs, fmtKb, fmtMs, fmtRatio, median, TARGET_RATIO, verdict } from "./stats.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const RESULTS_FILE = join(REPO_ROOT, "bench", "RESULTS.md");
const OUT_DIR = join(tmpdir(), "elevenlabs-agent-sessions-bench");
const TARGET = TARGET_RATIO;
const QUICK = process.env.BENCH_QUICK === "1";

const SETTINGS = QUICK
  ? { get: { warmup: 20, iterations: 100 }, taskResult: { warmup: 10, iterations: 50 }, initRuns: 3 }
  : { get: { warmup: 200, iterations: 2000 }, taskResult: { warmup: 100, iterations: 1000 }, initRuns: 20 };

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

type OkBundle = Extract<BundleResult, { status: "ok" }>;
const isOk = (r: BundleResult): r is OkBundle => r.status === "ok";

/** Short names for the "imported by" hints in the misses section. */
const shortImporters = (result: OkBundle, pkg: string): string => {
  const files = [...(result.importers.get(pkg) ?? [])].map((importer) => {
    const [file = "", specifier = ""] = importer.split(" → ");
    const short = file.replace(/^functions\/core\//, "");
    return specifier && specifier !== pkg ? `${short} (${specifier})` : short;
  });
  return files.length > 0 ? ` ← ${files.join(", ")}` : "";
};

const bundleMisses = (reference: BundleResult, functions: readonly BundleResult[]): string[] => {
  if (!isOk(reference)) return ["The reference bundle did not build, so no size ratio could be computed."];
  return functions.flatMap((result) => {
    if (result.status === "failed") return [`**${result.name}** did not bundle: ${result.error}`];
    if (!isOk(result) || verdict(result.bytes / reference.bytes, TARGET) === "PASS") return [];
    const added = additionsOverReference(result.packages, reference.packages);
    const detail = added
      .slice(0, 5)
      .map(([pkg, bytes]) => `${pkg} +${fmtKb(bytes)}${pkg === OUR_CODE ? "" : shortImporters(result, pkg)}`)
      .join("; ");
    return [
      `**${result.name}** bundle ${fmtKb(result.bytes)} = ${fmtRatio(result.bytes / reference.bytes)} the reference ` +
        `(+${fmtKb(result.bytes - reference.bytes)}, budget ${fmtKb(reference.bytes * TARGET)}). Largest additions: ${detail}.`,
    ];
  });
};

const initMisses = (
  reference: InitRow,
  rows: readonly InitRow[],
  bundles: readonly BundleResult[],
  probeCosts: ReadonlyMap<string, number>,
): string[] => {
  const refCpu = median(reference.plain?.cpu ?? []);
  if (!Number.isFinite(refCpu))
    return ["The reference bundle could not be started, so no init ratio was computed."];
  return rows.flatMap((row) => {
    if (row.status === "missing") return [];
    const failure = row.reason ?? row.plain?.error;
    if (row.status === "failed" || failure)
      return [`**${row.name}** did not initialise: ${failure ?? "unknown"}`];
    const { wall, cpu } = initRatios(reference, row);
    const wallVerdict = verdict(wall, TARGET);
    const cpuVerdict = verdict(cpu, TARGET);
    if (wallVerdict === "PASS" && cpuVerdict === "PASS") return [];
    const cpuMs = median(row.plain?.cpu ?? []);
    const bundle = bundles.find((b) => b.name === row.name);
    const attribution = bundle && isOk(bundle) ? attributeInit(bundle.packages, probeCosts) : undefined;
    const rest =
      attribution && attribution.sum < cpuMs - refCpu
        ? `the remaining ${fmtMs(cpuMs - refCpu - attribution.sum)} ms is our own code and the extra SDK commands`
        : "the probes share some SDK modules, so their sum only roughly matches the whole";
    const why = attribution?.parts.length
      ? ` Measured alone on top of the reference, the dependencies it adds cost ${attribution.parts.join(", ")} ` +
        `(sum ${fmtDeltaMs(attribution.sum)} ms); ${rest}.`
      : "";
    const disagree =
      wallVerdict !== cpuVerdict
        ? ` Wall time says ${wallVerdict}, CPU time says ${cpuVerdict}: wall medians on a loaded machine move by ` +
          "more than the margin, CPU time is the steadier of the two."
        : "";
    return [
      `**${row.name}** cold init: wall ${fmtMs(median(row.plain?.total ?? []))} ms = ${fmtRatio(wall)} (${wallVerdict}), ` +
        `CPU ${fmtMs(cpuMs)} ms = ${fmtRatio(cpu)} the reference's ${fmtMs(refCpu)} ms (${cpuVerdict}; ` +
        `${fmtDeltaMs(cpuMs - refCpu)} ms against a budget of +${fmtMs(refCpu * (TARGET - 1))} ms).${why}${disagree}`,
    ];
  });
};

const main = async () => {
  const started = process.hrtime.bigint();
  const machine = describeMachine();
  const loadAtStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const functions = ROUTES.map((route) => ({
    name: route.name,
    entry: `functions/${route.name}/handler.ts`,
  }));
  const referenceEntry = { name: "reference", entry: "bench/reference-handler.ts" };

  // 3. Bundles ----------------------------------------------------------------------------------
  log(`3. bundling ${functions.length} functions + reference with esbuild ${esbuildVersion} into ${OUT_DIR}`);
  const deployed = deployedConfig();
  const bundles = await bundleAll(REPO_ROOT, OUT_DIR, deployed, referenceEntry, functions);
  const cdkDefault = await bundleAll(REPO_ROOT, OUT_DIR, CDK_DEFAULT_CONFIG, referenceEntry, functions);
  const missing = bundles.functions.filter((b) => b.status === "missing").map((b) => b.name);
  if (missing.length > 0) log(`   missing handlers (reported, not failed): ${missing.join(", ")}`);

  // 4. Cold init (before DynamoDB Local starts, so Java does not compete for the cores) ---------
  const startable = [bundles.reference, ...bundles.functions]
    .filter(isOk)
    .map((b) => ({ name: b.name, file: b.file }));
  log(`4. cold init: ${SETTINGS.initRuns} fresh processes per bundle, plain and with --enable-source-maps`);
  const plain = measureColdInit(startable, SETTINGS.initRuns);
  const withMaps = measureColdInit(startable, SETTINGS.initRuns, ["--enable-source-maps"]);
  const probes = await bundleAll(
    REPO_ROOT,
    OUT_DIR,
    deployed,
    referenceEntry,
    probeEntries(REPO_ROOT, referenceEntry.entry),
  );
  log(`   attribution: reference + one added dependency each, ${SETTINGS.initRuns} starts per probe`);
  const probeSamples = measureColdInit(
    [probes.reference, ...probes.functions].filter(isOk).map((b) => ({ name: b.name, file: b.file })),
    SETTINGS.initRuns,
  );
  const probeCosts = probeCpuCosts(probes.reference.name, probeSamples);
  const initRow = (result: BundleResult): InitRow => {
    if (result.status === "missing") return { name: result.name, status: "missing" };
    if (result.status === "failed")
      return { name: result.name, status: "failed", reason: "bundle did not build" };
    const p = plain.get(result.name);
    const m = withMaps.get(result.name);
    return { name: result.name, status: "ok", ...(p ? { plain: p } : {}), ...(m ? { sourceMaps: m } : {}) };
  };
  const initReference = initRow(bundles.reference);
  const initRows = bundles.functions.map(initRow);

  // 1 + 2. DynamoDB Local ------------------------------------------------------------------------
  log("1/2. starting DynamoDB Local (in memory)");
  let ddb: DynamoDbLocal | undefined;
  const stopOnSignal = () => {
    void (ddb?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  let latency: { get: BenchOutcome; taskResult: BenchOutcome };
  try {
    ddb = await startDynamoDbLocal();
    const suffix = randomUUID().slice(0, 8);
    const names = { sessions: `bench-sessions-${suffix}`, conversations: `bench-conversations-${suffix}` };
    // The handler module reads its config and Powertools its settings at import, as at a cold start.
    Object.assign(process.env, INIT_ENV, {
      SESSIONS_TABLE: names.sessions,
      CONVERSATIONS_TABLE: names.conversations,
      DYNAMODB_ENDPOINT: ddb.endpoint,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
    });
    const { openLatencyBench } = await import("./dynamo-latency.js");
    const bench = await openLatencyBench({
      endpoint: ddb.endpoint,
      names,
      get: SETTINGS.get,
      taskResult: SETTINGS.taskResult,
      getTarget: TARGET,
    });
    try {
      log(`1. SessionStore.get vs raw GetItem: ${SETTINGS.get.warmup} + ${SETTINGS.get.iterations} pairs`);
      const get = await bench.sessionGet();
      log(
        `2. record-task-result vs raw calls: ${SETTINGS.taskResult.warmup} + ${SETTINGS.taskResult.iterations} pairs`,
      );
      const taskResult = await bench.taskResult();
      latency = { get, taskResult };
    } finally {
      bench.close();
    }
  } finally {
    await ddb?.stop();
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
  }

  // Report ---------------------------------------------------------------------------------------
  const okFunctions = bundles.functions.filter(isOk);
  const refBytes = isOk(bundles.reference) ? bundles.reference.bytes : Number.NaN;
  const sizeRatios = okFunctions.map((b) => b.bytes / refBytes);
  const startedRows = initRows.filter((r) => r.status === "ok" && !r.plain?.error);
  const wallRatios = startedRows.map((r) => initRatios(initReference, r).wall);
  const cpuRatios = startedRows.map((r) => initRatios(initReference, r).cpu);
  const countLine = (ratios: number[]) =>
    ratios.length === 0
      ? "no bundles"
      : `${ratios.filter((r) => verdict(r, TARGET) === "PASS").length}/${ratios.length} pass, ` +
        `${fmtRatio(Math.min(...ratios))}–${fmtRatio(Math.max(...ratios))}` +
        (missing.length > 0 ? `, ${missing.length} missing` : "");
  const allPass = (ratios: number[]) =>
    ratios.length > 0 && ratios.every((r) => verdict(r, TARGET) === "PASS") ? "PASS" : "MISS";

  const summary: Section = {
    title: "Summary",
    tables: [
      {
        columns: ["benchmark", "measured", "target", "result"],
        rows: [
          Object.values(latency.get.summary),
          Object.values(latency.taskResult.summary),
          [
            "3. bundle size / reference (deployed config)",
            countLine(sizeRatios),
            `≤ ${TARGET}× each`,
            allPass(sizeRatios),
          ],
          [
            `4. cold init / reference (median of ${SETTINGS.initRuns})`,
            `wall: ${countLine(wallRatios)}; CPU: ${countLine(cpuRatios)}`,
            `≤ ${TARGET}× each`,
            allPass(wallRatios) === "PASS" && allPass(cpuRatios) === "PASS"
              ? "PASS"
              : `MISS (wall ${allPass(wallRatios)}, CPU ${allPass(cpuRatios)})`,
          ],
        ],
      },
    ],
  };

  const sizeSection: Section = {
    title: "3. Bundle size per function vs the reference bundle",
    intro: [
      `esbuild ${esbuildVersion} JS API, bundle + minify, platform node, ${deployed.description}. ` +
        "The reference (bench/reference-handler.ts) creates DynamoDBClient + DocumentClient at init and sends " +
        "one GetCommand, bundled with exactly the same settings.",
      "The Lambda Node runtime ships SDK v3, but both sides bundle it (the stack sets `externalModules: []`), " +
        "so the comparison is fair and reproducible. Sizes are of the .mjs/.cjs file (1 KB = 1024 B); gzip is " +
        "zlib level 6; the source map is not counted.",
      `Target: each function ≤ ${TARGET}× the reference (budget ${fmtKb(refBytes * TARGET)}).`,
    ],
    tables: [sizeTable(bundles.reference, bundles.functions, TARGET, true)],
    notes: [
      "Top 5 packages by absolute contribution (most of every bundle is the SDK the reference also carries):",
      "",
      renderTable(compositionTable(bundles.reference, bundles.functions)),
      "",
      "Who pulls in what the reference does not have:",
      "",
      renderTable(importersTable(bundles.reference, bundles.functions)),
      "",
      "Our own code, largest files (the `(our code)` addition above):",
      "",
      renderTable(ourCodeTable(bundles.functions)),
      "",
      `Same comparison with ${CDK_DEFAULT_CONFIG.description} (the ~550 KB "SDK alone" figure ` +
        "in the issue is this configuration):",
      "",
      renderTable(sizeTable(cdkDefault.reference, cdkDefault.functions, TARGET, false)),
      "",
      `Bundles and esbuild metafiles (<name>.meta.json, for esbuild's analyzer): ${displayPath(REPO_ROOT, OUT_DIR)}/{deployed,cdk-default}/`,
    ],
  };

  const initSection: Section = {
    title: "4. Cold init per bundle in a fresh Node process",
    intro: [
      `Each bundle (deployed config) is started ${SETTINGS.initRuns} times with \`node --input-type=module -e\` ` +
        "and a loader that reads `performance.now()` (relative to process start) right after " +
        "`await import(bundle)`: process start → module imported and its top-level code run. The handler is " +
        "not invoked. Bundles are started round-robin (order rotated each round) after one uncounted warm-up " +
        `start each. Node ${process.version} here; Lambda runs ${deployed.target}.`,
      "Wall time is the issue's metric. The loader also reads `process.cpuUsage()` at the same instant: CPU " +
        "time (user + system, all threads) does not grow while the process waits for a core, so on a shared " +
        "machine it is the steadier measure of the same work. Both verdicts are shown.",
      `Env: ${Object.entries(INIT_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          " ",
        )}. The source-map columns add \`--enable-source-maps\` (the stack sets it in NODE_OPTIONS) ` +
        "and load the linked .map file.",
      `Target: median start → imported ≤ ${TARGET}× the reference.`,
    ],
    tables: [coldInitTable(initReference, initRows, TARGET)],
    notes: [
      `\`--enable-source-maps\` alone adds ${fmtDeltaMs(median(initReference.sourceMaps?.cpu ?? []) - median(initReference.plain?.cpu ?? []))} ms ` +
        `of CPU to the reference's init (${fmtMs(median(initReference.plain?.cpu ?? []))} → ` +
        `${fmtMs(median(initReference.sourceMaps?.cpu ?? []))} ms; wall ${fmtMs(median(initReference.plain?.total ?? []))} → ` +
        `${fmtMs(median(initReference.sourceMaps?.total ?? []))} ms): Node reads and parses the linked .map at import. ` +
        "That cost is outside the ratio (both sides pay it) but is real on every cold start.",
      "",
      "Attribution: the reference handler plus one dependency our code adds, bundled and started the same " +
        `way, ${SETTINGS.initRuns} rounds with the reference in each; cost = median over rounds of the ` +
        "difference in CPU time of the import alone (probe − reference, same round). Each probe does at " +
        "import what our modules do at their top level.",
      "",
      renderTable(probeTable(probes.reference, probes.functions, probeSamples, bundles.functions)),
    ],
  };

  const misses = [
    ...latency.get.misses,
    ...bundleMisses(bundles.reference, bundles.functions),
    ...initMisses(initReference, initRows, bundles.functions, probeCosts),
  ];
  const missSection: Section = {
    title: "Misses and why",
    tables: [],
    notes: misses.length > 0 ? misses.map((m) => `- ${m}`) : ["None."],
  };
  const missingNote =
    missing.length > 0
      ? [`Handlers not written yet (reported as missing, not failed): ${missing.join(", ")}.`]
      : ["Every route in functions/core/routes.ts has a handler and was measured."];

  const header = [
    "# Benchmark results",
    "",
    `Generated by \`npm run bench\`${QUICK ? " (BENCH_QUICK=1: too few iterations to trust)" : ""}.`,
    "",
    `- Date: ${machine.date}`,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM, ${machine.kernel}`,
    `- Node ${machine.node}; ${machine.java} (DynamoDB Local, in memory); esbuild ${esbuildVersion}`,
    `- Whole run: ${(elapsedMs(started) / 1000).toFixed(0)} s; load average (1/5/15 min) at start ${loadAtStart}, ` +
      `at end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} (a shared machine makes the timings noisier; the A/B interleaving keeps the ratios fair)`,
    "",
    ...missingNote,
  ].join("\n");
  const report = `${[
    header,
    renderSection(summary),
    renderSection(latency.get.section),
    renderSection(latency.taskResult.section),
    renderSection(sizeSection),
    renderSection(initSection),
    renderSection(missSection),
  ].join("\n\n")}\n`;

  process.stdout.write(`\n${report}`);
  if (QUICK) {
    log("BENCH_QUICK=1: bench/RESULTS.md left unchanged");
  } else {
    writeFileSync(RESULTS_FILE, report);
    log(`wrote ${displayPath(REPO_ROOT, RESULTS_FILE)}`);
  }
};

main().catch((error: unknown) => {
  process.stderr.write(
    `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});

/**
 * `npm run bench [-- --quick] [-- --runs N]`: every timing is the median of N ≥ 3 interleaved runs,
 * shown with its min–max over the runs, under production settings (INFO logs, metrics on, the
 * deployed environment). Writes bench/RESULTS.md (not with --quick) and keeps the bundles, the
 * functions' stdout (logs and EMF metrics) and the raw samples in a new folder per run.
 *
 *   1. SessionStore.get against a low-level GetItemCommand (client-dynamodb)        ≤ 1.10×
 *   2. handlers against the minimal DynamoDB calls their operation needs; refresh / new registration ≤ 1.1×
 *   3. history pages at 10 / 100 / 1 000 / 5 000 lines: ms and items read          5 000 ≤ 1.5× 10; whole ≤ 6 000 items
 *   4. bundle bytes                                                                 ≤ 300 KB each, get-signed-url ≤ 60 KB
 *   5. cold init against the naive reference (DocumentClient + GetCommand, default credential chain) ≤ 1.0×
 *
 * Order: bundles, cold init (before Java starts, so DynamoDB Local does not compete for the
 * cores), then the DynamoDB Local benchmarks in a child process.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ROUTES } from "../functions/core/routes.js";
import { bundleBudget } from "../lib/bundling.js";
import { type DynamoDbLocal, startDynamoDbLocal } from "../local/dynamodb-local.js";
import {
  type BundleResult,
  bundle,
  deployedConfig,
  esbuildVersion,
  largestPackages,
  referenceConfig,
} from "./bundles.js";
import { DEPLOYED_ENV, measureColdInit } from "./cold-init.js";
import type { DynamoBenchOptions, DynamoBenchResult } from "./dynamo-bench.js";
import { describeMachine, renderSection, type Section } from "./report.js";
import { fmtKb, fmtMs, fmtRatio, fmtSpread, loadAverage, ratios, spread } from "./stats.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** One Lambda per name: two routes may share a function (the tool routes answer POST and GET). */
const FUNCTION_NAMES = [...new Set(ROUTES.map((route) => route.name))];
const cpuCores = () => availableParallelism();
const RESULTS_FILE = join(REPO_ROOT, "bench", "RESULTS.md");

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const runsArg = args.indexOf("--runs");
const RUNS = Math.max(3, runsArg >= 0 ? Number(args[runsArg + 1]) || 3 : 3);
const SETTINGS = QUICK
  ? { warmup: 5, pairs: 25, startsPerRun: 2, historyReads: 3 }
  : { warmup: 30, pairs: 150, startsPerRun: 15, historyReads: 30 };
const HISTORY_SIZES = [10, 100, 1000, 5000];
const PAGE_SIZE = 50;
const TARGETS = { sessionGet: 1.1, refresh: 1.1, historyPage: 1.5, fullReadItems: 6000, coldInit: 1.0 };

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const pass = (ok: boolean) => (ok ? "PASS" : "MISS");
type OkBundle = Extract<BundleResult, { status: "ok" }>;
const isOk = (r: BundleResult): r is OkBundle => r.status === "ok";

/** Runs the DynamoDB Local benchmarks in a child whose stdout (the functions' logs and metrics) goes to a file. */
const runDynamoChild = async (
  options: DynamoBenchOptions,
  stdoutFile: string,
): Promise<DynamoBenchResult> => {
  const optionsFile = join(options.out.replace(/\.json$/, ".options.json"));
  writeFileSync(optionsFile, JSON.stringify(options));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "bench/dynamo-bench.ts"), optionsFile],
    {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        ...DEPLOYED_ENV,
        SESSIONS_TABLE: options.names.sessions,
        CONVERSATIONS_TABLE: options.names.conversations,
        // Local values instead of the ARNs: the secrets extension only exists in Lambda.
        SERVICE_TOKEN_SECRET_ARN: "",
        TOOL_SECRET_SECRET_ARN: "",
        SERVICE_TOKEN: options.serviceToken,
        NOTIFY_SIGNING_SECRET: "bench-signing-secret",
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
      },
      stdio: ["ignore", openSync(stdoutFile, "w"), "inherit"],
    },
  );
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  if (code !== 0) throw new Error(`the DynamoDB benchmarks exited with ${code}`);
  return JSON.parse(readFileSync(options.out, "utf8")) as DynamoBenchResult;
};

const main = async () => {
  const started = process.hrtime.bigint();
  const machine = describeMachine();
  const loadAtStart = loadAverage();
  const outDir = mkdtempSync(join(tmpdir(), "elevenlabs-agent-sessions-bench-"));
  log(`run folder: ${outDir}${QUICK ? " (--quick)" : ""}, ${RUNS} runs`);

  // Bundles ---------------------------------------------------------------------------------------
  const deployed = deployedConfig();
  const reference = await bundle(REPO_ROOT, outDir, referenceConfig(), {
    name: "reference",
    entry: "bench/reference-handler.ts",
  });
  const functions: BundleResult[] = [];
  for (const name of FUNCTION_NAMES)
    functions.push(
      await bundle(REPO_ROOT, outDir, deployed, {
        name,
        entry: `functions/${name}/handler.ts`,
      }),
    );
  log(`bundled ${functions.filter(isOk).length}/${functions.length} functions and the reference`);

  // Cold init -------------------------------------------------------------------------------------
  const startable = [reference, ...functions].filter(isOk).map((b) => ({ name: b.name, file: b.file }));
  log(`cold init: ${RUNS} runs × ${SETTINGS.startsPerRun} fresh starts of ${startable.length} bundles`);
  const loadBeforeInit = loadAverage();
  const init = measureColdInit(startable, RUNS, SETTINGS.startsPerRun);
  const loadAfterInit = loadAverage();

  // DynamoDB Local --------------------------------------------------------------------------------
  log("starting DynamoDB Local (in memory)");
  let ddb: DynamoDbLocal | undefined;
  const stopOnSignal = () => {
    void (ddb?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  let dynamo: DynamoBenchResult;
  const functionStdout = join(outDir, "functions-stdout.log");
  try {
    ddb = await startDynamoDbLocal();
    const suffix = randomUUID().slice(0, 8);
    dynamo = await runDynamoChild(
      {
        endpoint: ddb.endpoint,
        names: { sessions: `bench-sessions-${suffix}`, conversations: `bench-conversations-${suffix}` },
        runs: RUNS,
        pairs: SETTINGS.pairs,
        warmup: SETTINGS.warmup,
        historySizes: HISTORY_SIZES,
        historyReads: SETTINGS.historyReads,
        pageSize: PAGE_SIZE,
        serviceToken: `bench-service-token-${randomUUID()}`,
        out: join(outDir, "dynamo.json"),
      },
      functionStdout,
    );
  } finally {
    await ddb?.stop();
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
  }
  const stdoutLines = readFileSync(functionStdout, "utf8").split("\n").filter(Boolean);
  const emfLines = stdoutLines.filter((line) => line.includes('"_aws"')).length;

  // Report ----------------------------------------------------------------------------------------
  const pair = (id: string) => {
    const found = dynamo.pairs.find((p) => p.id === id);
    if (!found) throw new Error(`no result for ${id}`);
    return found;
  };
  const get = pair("session-get");
  const getRatios = ratios(get.oursP50, get.baselineP50);
  const newReg = pair("register-new");
  const refresh = pair("register-refresh");
  const refreshRatios = ratios(refresh.oursP50, newReg.oursP50);
  const h10 = dynamo.history.find((h) => h.lines === 10);
  const h5000 = dynamo.history.find((h) => h.lines === 5000);
  const pageRatios = h10 && h5000 ? ratios(h5000.firstPageMs, h10.firstPageMs) : [];
  const refInit = init.get("reference");
  const refWall = refInit?.wall ?? [];
  const okFunctions = functions.filter(isOk);
  const initRatios = (name: string) => ratios(init.get(name)?.wall ?? [], refWall);
  const initCpuRatios = (name: string) => ratios(init.get(name)?.cpu ?? [], refInit?.cpu ?? []);
  const initPassing = okFunctions.filter((f) => spread(initRatios(f.name)).median <= TARGETS.coldInit);
  const initCpuPassing = okFunctions.filter((f) => spread(initCpuRatios(f.name)).median <= TARGETS.coldInit);
  const sizePassing = okFunctions.filter((f) => f.bytes <= bundleBudget(f.name));
  const signedUrl = okFunctions.find((f) => f.name === "get-signed-url");
  const worst = (values: number[]) => (values.length ? Math.max(...values) : Number.NaN);

  const summary: Section = {
    title: "Summary",
    intro: [
      `Every timing: median of ${RUNS} interleaved runs, (min–max) over the runs. Bytes and item counts are exact.`,
    ],
    tables: [
      {
        columns: ["target", "measured", "result"],
        rows: [
          [
            `SessionStore.get ≤ ${TARGETS.sessionGet}× GetItemCommand (p50)`,
            `${fmtSpread(getRatios, fmtRatio)}; ${fmtSpread(get.oursP50)} vs ${fmtSpread(get.baselineP50)} ms`,
            pass(spread(getRatios).median <= TARGETS.sessionGet),
          ],
          [
            `refresh ≤ ${TARGETS.refresh}× a new registration (handler p50)`,
            `${fmtSpread(refreshRatios, fmtRatio)}; ${fmtSpread(refresh.oursP50)} vs ${fmtSpread(newReg.oursP50)} ms; ` +
              `${refresh.oursRequests} vs ${newReg.oursRequests} requests`,
            pass(spread(refreshRatios).median <= TARGETS.refresh),
          ],
          [
            `5 000-line first page ≤ ${TARGETS.historyPage}× a 10-line one (p50)`,
            h10 && h5000
              ? `${fmtSpread(pageRatios, fmtRatio)}; ${fmtSpread(h5000.firstPageMs)} vs ${fmtSpread(h10.firstPageMs)} ms; ` +
                `${h5000.firstPage.items} vs ${h10.firstPage.items} items read`
              : "n/a",
            pass(spread(pageRatios).median <= TARGETS.historyPage),
          ],
          [
            `whole 5 000-line history ≤ ${TARGETS.fullReadItems} items read`,
            h5000
              ? `${h5000.fullRead.items} items, ${h5000.fullRead.rcu.toFixed(1)} RCU, ${h5000.fullRead.pages} pages`
              : "n/a",
            pass((h5000?.fullRead.items ?? Number.POSITIVE_INFINITY) <= TARGETS.fullReadItems),
          ],
          [
            "every bundle ≤ 300 KB, get-signed-url ≤ 60 KB",
            `${sizePassing.length}/${okFunctions.length} within budget; largest ${fmtKb(worst(okFunctions.map((f) => f.bytes)))}; ` +
              `get-signed-url ${signedUrl ? fmtKb(signedUrl.bytes) : "n/a"}`,
            pass(sizePassing.length === okFunctions.length && okFunctions.length === FUNCTION_NAMES.length),
          ],
          [
            `every cold init ≤ ${TARGETS.coldInit}× the naive reference (wall)`,
            `${initPassing.length}/${okFunctions.length} pass; ratios ` +
              `${fmtRatio(Math.min(...okFunctions.map((f) => spread(initRatios(f.name)).median)))}–` +
              `${fmtRatio(worst(okFunctions.map((f) => spread(initRatios(f.name)).median)))}; reference ${fmtSpread(refWall)} ms`,
            pass(initPassing.length === okFunctions.length && okFunctions.length === FUNCTION_NAMES.length),
          ],
          [
            `cold init CPU time ≤ ${TARGETS.coldInit}× the reference's (not waiting for a core)`,
            `${initCpuPassing.length}/${okFunctions.length} pass; ratios ` +
              `${fmtRatio(Math.min(...okFunctions.map((f) => spread(initCpuRatios(f.name)).median)))}–` +
              `${fmtRatio(worst(okFunctions.map((f) => spread(initCpuRatios(f.name)).median)))}; reference ` +
              `${fmtSpread(refInit?.cpu ?? [])} ms; load average ${loadBeforeInit} → ${loadAfterInit}`,
            pass(
              initCpuPassing.length === okFunctions.length && okFunctions.length === FUNCTION_NAMES.length,
            ),
          ],
        ],
      },
    ],
  };

  const handlerSection: Section = {
    title: "1–2. Our code against the minimal DynamoDB calls of each operation",
    intro: [
      "In one process on DynamoDB Local, under the deployed settings: Powertools at INFO and metrics on (each " +
        `invocation writes its log line and EMF blob to stdout, here ${displayPath(functionStdout)}: ` +
        `${stdoutLines.length} lines, ${emfLines} EMF). Handlers are the real \`makeHandler\`s with the service's ` +
        "dependencies, invoked with prebuilt API Gateway v2 events; the live push is a notifier that resolves at once.",
      "Baselines are what each operation needs at least, sent with the low-level client (`@aws-sdk/client-dynamodb`, " +
        "no DocumentClient, same retry and timeout settings), not a replay of the calls our code happens to make. " +
        `Per run: ${SETTINGS.pairs} interleaved pairs (A B, B A, …; ${SETTINGS.warmup} uncounted warm-up pairs before run 1). ` +
        "Requests per operation are counted by a client middleware.",
    ],
    tables: [
      {
        columns: [
          "operation",
          "p50 ms",
          "baseline",
          "baseline p50 ms",
          "ours / baseline",
          "requests ours / baseline",
        ],
        numeric: [1, 3, 4],
        rows: dynamo.pairs.map((p) => [
          p.ours,
          fmtSpread(p.oursP50),
          p.baseline,
          fmtSpread(p.baselineP50),
          fmtSpread(ratios(p.oursP50, p.baselineP50), fmtRatio),
          `${p.oursRequests} / ${p.baselineRequests}`,
        ]),
      },
    ],
  };

  const historySection: Section = {
    title: "3. History pages by history length",
    intro: [
      `A conversation with one session registration and N−1 transcript lines (N history lines), read with ` +
        `\`GET /conversations/{id}?limit=${PAGE_SIZE}\` through the get-conversation handler. Baseline: one Query of the ` +
        `page (Limit ${PAGE_SIZE + 1}). ${SETTINGS.historyReads} interleaved first-page reads per run and size.`,
      "Items read = ScannedCount of each Query (items DynamoDB read before any filter) + 1 per GetItem hit; RCU = " +
        "ConsumedCapacity, both from a separate counting pass (ReturnConsumedCapacity never lands in a timing). " +
        "Whole history = every page, following nextCursor, once.",
    ],
    tables: [
      {
        columns: [
          "lines",
          "first page p50 ms",
          "× 10-line page",
          "minimal Query p50 ms",
          "items read / RCU (first page)",
          "minimal: items / RCU",
          "whole history: pages, items, RCU, ms",
        ],
        numeric: [0, 1, 2, 3],
        rows: dynamo.history.map((h) => [
          String(h.lines),
          fmtSpread(h.firstPageMs),
          h10 ? fmtSpread(ratios(h.firstPageMs, h10.firstPageMs), fmtRatio) : "n/a",
          fmtSpread(h.minimalPageMs),
          `${h.firstPage.items} / ${h.firstPage.rcu.toFixed(1)} (${h.firstPage.requests} requests)`,
          `${h.minimalPage.items} / ${h.minimalPage.rcu.toFixed(1)}`,
          `${h.fullRead.pages}, ${h.fullRead.items}, ${h.fullRead.rcu.toFixed(1)}, ${fmtMs(h.fullRead.ms)}`,
        ]),
      },
    ],
  };

  const refBytes = isOk(reference) ? reference.bytes : Number.NaN;
  const bundleSection: Section = {
    title: "4. Bundle bytes",
    intro: [
      `esbuild ${esbuildVersion}, ${deployed.description}. The naive reference (bench/reference-handler.ts: ` +
        "DynamoDBClient + DocumentClient created at init, one GetCommand) is built the same way but keeps the SDK's " +
        "default credential chain, as a function written with the SDK alone would. 1 KB = 1024 B; gzip is zlib level 6; " +
        `the source map is not counted. Bundles and metafiles: ${displayPath(outDir)}/deployed/.`,
    ],
    tables: [
      {
        columns: ["function", "bytes", "gzip", "budget", "result", "× reference bytes", "largest packages"],
        numeric: [1, 2, 3, 5],
        rows: [reference, ...functions].map((b) => {
          if (!isOk(b))
            return [
              b.name,
              b.status === "failed" ? `failed: ${b.error.slice(0, 100)}` : "missing",
              "",
              "",
              "MISS",
              "",
            ];
          const isRef = b.name === "reference";
          return [
            b.name,
            fmtKb(b.bytes),
            fmtKb(b.gzipBytes),
            isRef ? "" : fmtKb(bundleBudget(b.name)),
            isRef ? "" : pass(b.bytes <= bundleBudget(b.name)),
            fmtRatio(b.bytes / refBytes),
            largestPackages(b),
          ];
        }),
      },
    ],
  };

  const initSection: Section = {
    title: "5. Cold init in a fresh Node process",
    intro: [
      `Each bundle is started ${SETTINGS.startsPerRun} times per run, ${RUNS} runs, round-robin with the order rotated ` +
        "every round after one uncounted start each: `node --input-type=module -e` imports the bundle and reads " +
        "`performance.now()` (process start → module imported and its top-level code run) and `process.cpuUsage()`. " +
        `The handler is not invoked. Node ${process.version} here; Lambda runs ${deployed.target}. No NODE_OPTIONS.`,
      `Env (as deployed, values made up): ${Object.keys(DEPLOYED_ENV).join(", ")}.`,
      "Each run gives one median per bundle; the ratio is computed per run against the reference's median in the " +
        "same run, then the median and (min–max) of those are shown. CPU time does not grow while a process waits " +
        "for a core, so it is the steadier figure on a shared machine.",
      `Load average (1/5/15 min) when the starts began: ${loadBeforeInit}; when they ended: ${loadAfterInit} ` +
        `(${cpuCores()} cores). Wall times above a load of ${cpuCores()} include waiting for a core.`,
    ],
    tables: [
      {
        columns: ["function", "wall ms", "wall × reference", "result", "CPU ms", "CPU × reference"],
        numeric: [1, 2, 4, 5],
        rows: [reference, ...functions].map((b) => {
          const samples = init.get(b.name);
          if (!samples || samples.error || !isOk(b))
            return [
              b.name,
              `not started: ${samples?.error ?? "no bundle"}`.slice(0, 120),
              "",
              "MISS",
              "",
              "",
            ];
          const isRef = b.name === "reference";
          const wall = initRatios(b.name);
          return [
            b.name,
            fmtSpread(samples.wall),
            isRef ? "1.00×" : fmtSpread(wall, fmtRatio),
            isRef ? "" : pass(spread(wall).median <= TARGETS.coldInit),
            fmtSpread(samples.cpu),
            isRef ? "1.00×" : fmtSpread(initCpuRatios(b.name), fmtRatio),
          ];
        }),
      },
    ],
  };

  const header = [
    "# Benchmark results",
    "",
    `Generated by \`npm run bench\`${QUICK ? " --quick (few iterations: indicative only)" : ""}.`,
    "",
    `- Date: ${machine.date}`,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory} RAM, ${machine.kernel}`,
    `- Node ${machine.node}; ${machine.java} (DynamoDB Local, in memory); esbuild ${esbuildVersion}`,
    `- ${RUNS} runs; whole run ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s; load average ` +
      `(1/5/15 min) at start ${loadAtStart}, at end ${loadAverage()} (a shared machine: compare ratios and CPU time more than absolute wall times)`,
  ].join("\n");
  const report = `${[header, ...[summary, handlerSection, historySection, bundleSection, initSection].map(renderSection)].join("\n\n")}\n`;
  writeFileSync(join(outDir, "RESULTS.md"), report);
  writeFileSync(join(outDir, "init.json"), JSON.stringify(Object.fromEntries(init), null, 2));
  process.stdout.write(`\n${report}`);
  if (QUICK) log(`--quick: bench/RESULTS.md left unchanged; report in ${outDir}/RESULTS.md`);
  else {
    writeFileSync(RESULTS_FILE, report + keptSections());
    log("wrote bench/RESULTS.md");
  }
};

/**
 * Sections measured by other scripts (from "## 6." on: `bench/long-transcript.ts`) are kept from
 * the current file, so regenerating the bench never drops them.
 */
const keptSections = (): string => {
  let current = "";
  try {
    current = readFileSync(RESULTS_FILE, "utf8");
  } catch {
    return "";
  }
  const start = current.indexOf("\n## 6.");
  return start < 0 ? "" : `${current.slice(start).trimEnd()}\n`;
};

/** Paths in the report: the run folder is named as it is (it is per run, not shared). */
const displayPath = (path: string) => path;

main().catch((error: unknown) => {
  process.stderr.write(
    `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});

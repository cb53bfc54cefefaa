/**
 * Benchmark 3: bundle size of every function against a reference bundle that only creates a
 * DynamoDB DocumentClient and sends one GetCommand (bench/reference-handler.ts).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { build, version as esbuildVersion, type Metafile } from "esbuild";
import { LAMBDA_BUNDLE } from "../lib/bundling.js";
import type { Table } from "./report.js";
import { fmtKb, fmtRatio, verdict } from "./stats.js";

/** The key our own source files are grouped under. */
export const OUR_CODE = "(our code)";

/** How a bundle is built. Ours and the reference always use the same settings. */
export interface BundleConfig {
  readonly id: string;
  readonly description: string;
  readonly format: "esm" | "cjs";
  readonly target: string;
  readonly mainFields?: readonly string[];
  readonly banner?: string;
  readonly sourcemap: boolean;
  readonly extension: ".mjs" | ".cjs";
  /** esbuild `alias` (package → replacement). */
  readonly alias?: Readonly<Record<string, string>>;
}

/**
 * The settings every Lambda is bundled with (`LAMBDA_BUNDLE` in lib/bundling.ts, which
 * `ServiceFunction` hands to `NodejsFunction`), including the env-only credentials alias.
 */
export const deployedConfig = (): BundleConfig => ({
  id: "deployed",
  description:
    `as deployed (lib/bundling.ts): ESM, target ${LAMBDA_BUNDLE.target}, minified, mainFields module,main, ` +
    "linked source map (not counted), nothing external, SDK credential chain aliased to env-only",
  format: LAMBDA_BUNDLE.format,
  target: LAMBDA_BUNDLE.target,
  mainFields: LAMBDA_BUNDLE.mainFields,
  banner: LAMBDA_BUNDLE.banner,
  sourcemap: true,
  extension: ".mjs",
  alias: LAMBDA_BUNDLE.alias,
});

/**
 * The naive reference's settings: the same as deployed but without the alias, so it carries the
 * SDK's full default credential chain, as a function written with the SDK alone would.
 */
export const referenceConfig = (): BundleConfig => {
  const { alias: _alias, ...rest } = deployedConfig();
  return { ...rest, id: "reference" };
};

/** `NodejsFunction`'s own defaults (CJS, esbuild's main fields for node: main before module), minified. */
export const CDK_DEFAULT_CONFIG: BundleConfig = {
  id: "cdk-default",
  description:
    "NodejsFunction defaults: CJS, target node22, esbuild's node main fields (main,module), minified, nothing external",
  format: "cjs",
  target: "node22",
  sourcemap: false,
  extension: ".cjs",
};

/** A function (or the reference) to bundle. */
export interface BundleEntry {
  readonly name: string;
  /** Relative to the repository root (a virtual path when `contents` is given). */
  readonly entry: string;
  /** Source to bundle instead of reading `entry` (probes); imports resolve from `entry`'s folder. */
  readonly contents?: string;
}

export type BundleResult =
  | {
      readonly status: "ok";
      readonly name: string;
      readonly file: string;
      readonly bytes: number;
      readonly gzipBytes: number;
      /** Bytes in the output per npm package (`@scope/pkg` or `pkg`), ours under {@link OUR_CODE}. */
      readonly packages: ReadonlyMap<string, number>;
      /** For each npm package: which of our files import it, and with which specifier. */
      readonly importers: ReadonlyMap<string, ReadonlySet<string>>;
      /** Bytes in the output per file of ours. */
      readonly ourFiles: ReadonlyMap<string, number>;
    }
  | { readonly status: "missing"; readonly name: string; readonly entry: string }
  | { readonly status: "failed"; readonly name: string; readonly error: string };

/** `node_modules/@scope/pkg/...` → `@scope/pkg`; the innermost node_modules wins (nested copies). */
export const packageOf = (path: string): string => {
  const marker = "node_modules/";
  const at = path.lastIndexOf(marker);
  if (at < 0) return OUR_CODE;
  const [first = "", second = ""] = path.slice(at + marker.length).split("/");
  return first.startsWith("@") ? `${first}/${second}` : first;
};

const analyse = (metafile: Metafile) => {
  const output = Object.entries(metafile.outputs).find(([file]) => !file.endsWith(".map"))?.[1];
  if (!output) throw new Error("esbuild produced no JavaScript output");
  const packages = new Map<string, number>();
  const ourFiles = new Map<string, number>();
  for (const [path, input] of Object.entries(output.inputs)) {
    const pkg = packageOf(path);
    packages.set(pkg, (packages.get(pkg) ?? 0) + input.bytesInOutput);
    if (pkg === OUR_CODE) ourFiles.set(path, input.bytesInOutput);
  }
  const importers = new Map<string, Set<string>>();
  for (const [path, input] of Object.entries(metafile.inputs)) {
    if (packageOf(path) !== OUR_CODE) continue;
    for (const imported of input.imports) {
      if (imported.external) continue;
      const pkg = packageOf(imported.path);
      if (pkg === OUR_CODE) continue;
      const set = importers.get(pkg) ?? new Set<string>();
      set.add(`${path} → ${imported.original ?? pkg}`);
      importers.set(pkg, set);
    }
  }
  return { packages, importers, ourFiles };
};

/** Bundles one entry with esbuild's JS API, writes the bundle and its metafile, and analyses it. */
export const bundle = async (
  repoRoot: string,
  outDir: string,
  config: BundleConfig,
  entry: BundleEntry,
): Promise<BundleResult> => {
  if (entry.contents === undefined && !existsSync(join(repoRoot, entry.entry)))
    return { status: "missing", name: entry.name, entry: entry.entry };
  const dir = join(outDir, config.id);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${entry.name}${config.extension}`);
  try {
    const result = await build({
      absWorkingDir: repoRoot,
      ...(entry.contents === undefined
        ? { entryPoints: [entry.entry] }
        : {
            stdin: {
              contents: entry.contents,
              resolveDir: dirname(join(repoRoot, entry.entry)),
              sourcefile: entry.entry,
              loader: "ts" as const,
            },
          }),
      outfile: file,
      bundle: true,
      minify: true,
      platform: "node",
      format: config.format,
      target: config.target,
      ...(config.mainFields ? { mainFields: [...config.mainFields] } : {}),
      ...(config.banner ? { banner: { js: config.banner } } : {}),
      ...(config.alias ? { alias: { ...config.alias } } : {}),
      ...(config.sourcemap ? { sourcemap: "linked" as const, sourcesContent: false } : {}),
      metafile: true,
      write: true,
      logLevel: "silent",
    });
    writeFileSync(`${file}.meta.json`, JSON.stringify(result.metafile));
    const code = readFileSync(file);
    return {
      status: "ok",
      name: entry.name,
      file,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(code).length,
      ...analyse(result.metafile),
    };
  } catch (error) {
    const errors = (
      error as { errors?: { text: string; location?: { file: string; line: number } | null }[] }
    ).errors;
    const first = errors?.[0];
    const message = first
      ? `${first.text}${first.location ? ` (${first.location.file}:${first.location.line})` : ""}`
      : error instanceof Error
        ? error.message
        : String(error);
    return { status: "failed", name: entry.name, error: message };
  }
};

/** Bundles the reference and every function with one config, one after the other. */
export const bundleAll = async (
  repoRoot: string,
  outDir: string,
  config: BundleConfig,
  reference: BundleEntry,
  functions: readonly BundleEntry[],
): Promise<{ reference: BundleResult; functions: BundleResult[] }> => {
  const ref = await bundle(repoRoot, outDir, config, reference);
  const results: BundleResult[] = [];
  for (const entry of functions) results.push(await bundle(repoRoot, outDir, config, entry));
  return { reference: ref, functions: results };
};

/** Bytes each package adds over the reference, largest first. */
export const additionsOverReference = (
  ours: ReadonlyMap<string, number>,
  reference: ReadonlyMap<string, number>,
): [string, number][] =>
  [...ours]
    .map(([pkg, bytes]): [string, number] => [pkg, bytes - (reference.get(pkg) ?? 0)])
    .filter(([, added]) => added > 0)
    .sort((a, b) => b[1] - a[1]);

const topList = (entries: readonly [string, number][], count: number, total?: number) =>
  entries
    .slice(0, count)
    .map(([pkg, bytes]) => `${pkg} ${fmtKb(bytes)}${total ? ` (${Math.round((100 * bytes) / total)}%)` : ""}`)
    .join(", ");

const statusCell = (result: BundleResult) =>
  result.status === "missing"
    ? "missing (no handler.ts yet)"
    : result.status === "failed"
      ? "build failed"
      : "";

/** The main size table: bytes, gzip, ratio, verdict and the largest additions over the reference. */
export const sizeTable = (
  reference: BundleResult,
  functions: readonly BundleResult[],
  target: number,
  withAdditions: boolean,
): Table => {
  const refBytes = reference.status === "ok" ? reference.bytes : Number.NaN;
  const row = (result: BundleResult, isReference: boolean): string[] => {
    if (result.status !== "ok") {
      const cells = [result.name, statusCell(result), "", "", "", result.status === "failed" ? "MISS" : "—"];
      return withAdditions ? [...cells, result.status === "failed" ? result.error.slice(0, 160) : ""] : cells;
    }
    const ratio = result.bytes / refBytes;
    const cells = [
      result.name,
      fmtKb(result.bytes),
      fmtKb(result.gzipBytes),
      fmtRatio(ratio),
      isReference ? "" : `≤ ${target}×`,
      isReference ? "" : verdict(ratio, target),
    ];
    if (!withAdditions) return cells;
    const added =
      isReference || reference.status !== "ok"
        ? ""
        : topList(additionsOverReference(result.packages, reference.packages), 5);
    return [...cells, added];
  };
  return {
    columns: [
      "function",
      "minified",
      "gzip",
      "× reference",
      "target",
      "result",
      ...(withAdditions ? ["largest additions over the reference (top 5)"] : []),
    ],
    numeric: [1, 2, 3],
    rows: [row(reference, true), ...functions.map((f) => row(f, false))],
  };
};

/** Top 5 packages by absolute contribution, per bundle. */
export const compositionTable = (reference: BundleResult, functions: readonly BundleResult[]): Table => ({
  columns: ["function", "top 5 packages in the bundle (bytes in output, share)"],
  rows: [reference, ...functions]
    .filter((r): r is Extract<BundleResult, { status: "ok" }> => r.status === "ok")
    .map((r) => [
      r.name,
      topList(
        [...r.packages].sort((a, b) => b[1] - a[1]),
        5,
        r.bytes,
      ),
    ]),
});

/**
 * For every package a function adds over the reference (≥ `minBytes` somewhere): how much at most,
 * which functions carry it and which of our files import it, so the fix is one look away.
 */
export const importersTable = (
  reference: BundleResult,
  functions: readonly BundleResult[],
  minBytes = 1024,
): Table => {
  if (reference.status !== "ok") return { columns: ["package"], rows: [] };
  const byPackage = new Map<string, { max: number; functions: string[]; importers: Set<string> }>();
  for (const result of functions) {
    if (result.status !== "ok") continue;
    for (const [pkg, added] of additionsOverReference(result.packages, reference.packages)) {
      if (added < minBytes || pkg === OUR_CODE) continue;
      const entry = byPackage.get(pkg) ?? { max: 0, functions: [], importers: new Set<string>() };
      entry.max = Math.max(entry.max, added);
      entry.functions.push(result.name);
      for (const importer of result.importers.get(pkg) ?? []) entry.importers.add(importer);
      byPackage.set(pkg, entry);
    }
  }
  const rows = [...byPackage]
    .sort((a, b) => b[1].max - a[1].max)
    .map(([pkg, entry]) => [
      pkg,
      fmtKb(entry.max),
      entry.functions.length === functions.filter((f) => f.status === "ok").length
        ? "all"
        : entry.functions.join(", "),
      entry.importers.size > 0
        ? [...entry.importers].join("; ")
        : "(pulled in by another package, not by our code directly)",
    ]);
  return {
    columns: [
      "package added over the reference",
      "max added",
      "in functions",
      "imported by (our file → specifier)",
    ],
    numeric: [1],
    rows,
  };
};

/** Our own files by bytes in the output (the largest bundle that has each), so first-party weight is visible too. */
export const ourCodeTable = (functions: readonly BundleResult[], count = 12): Table => {
  const byFile = new Map<string, { max: number; functions: number }>();
  for (const result of functions) {
    if (result.status !== "ok") continue;
    for (const [file, bytes] of result.ourFiles) {
      const entry = byFile.get(file) ?? { max: 0, functions: 0 };
      entry.max = Math.max(entry.max, bytes);
      entry.functions += 1;
      byFile.set(file, entry);
    }
  }
  return {
    columns: ["our file", "bytes in output", "in how many functions"],
    numeric: [1, 2],
    rows: [...byFile]
      .sort((a, b) => b[1].max - a[1].max)
      .slice(0, count)
      .map(([file, entry]) => [file, fmtKb(entry.max), String(entry.functions)]),
  };
};

/** Where the bundles were written, relative to the repo when inside it. */
export const displayPath = (repoRoot: string, path: string): string =>
  path.startsWith(repoRoot) ? relative(repoRoot, path) : path;

export { esbuildVersion };

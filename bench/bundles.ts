/**
 * Bundles for `npm run bench`: every function with the deployed settings, and the naive reference
 * (bench/reference-handler.ts) with the same settings minus the credentials alias.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { build, version as esbuildVersion, type Metafile } from "esbuild";
import { LAMBDA_BUNDLE } from "../lib/bundling.js";
import { fmtKb } from "./stats.js";

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

/** The largest packages of a bundle, for the report: `@smithy/core 113.5 KB, ...`. */
export const largestPackages = (result: BundleResult, count = 4): string =>
  result.status === "ok"
    ? [...result.packages]
        .sort((x, y) => y[1] - x[1])
        .slice(0, count)
        .map(([pkg, bytes]) => `${pkg} ${fmtKb(bytes)}`)
        .join(", ")
    : "";

export { esbuildVersion };

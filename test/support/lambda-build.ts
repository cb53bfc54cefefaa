import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildResult, build } from "esbuild";
import { LAMBDA_BUNDLE } from "../../lib/bundling.js";

/** The repository root: entry points are relative to it. */
const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/**
 * Bundles one entry exactly as `ServiceFunction` deploys it (`LAMBDA_BUNDLE` in lib/bundling.ts:
 * ESM, node24, minified, the Lambda aliases, a linked source map), with its metafile.
 */
export const buildAsDeployed = (entry: string, outfile: string): Promise<BuildResult<{ metafile: true }>> =>
  build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: LAMBDA_BUNDLE.format,
    target: LAMBDA_BUNDLE.target,
    minify: LAMBDA_BUNDLE.minify,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    banner: { js: LAMBDA_BUNDLE.banner },
    sourcemap: LAMBDA_BUNDLE.sourcemap,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    alias: { ...LAMBDA_BUNDLE.alias },
    metafile: true,
    logLevel: "silent",
  });

import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAMBDA_BUNDLE } from "../../lib/bundling.js";

/**
 * The example task runner bundled exactly as deployed (lib/bundling.ts): bytes, not time. It
 * carries the SQS client for its one call (ChangeMessageVisibility) and nothing it does not use.
 */
const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/**
 * 232 KB measured on 2026-12-02: the SQS client and the SDK core under it are about 170 KB of it
 * (before ChangeMessageVisibility it was 65 KB); zod, the Powertools Logger and batch the rest.
 */
const RUNNER_BUDGET_BYTES = 240 * 1024;

let outDir: string;
let bytes = 0;
let inputs: string[] = [];

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), "runner-bundle-"));
  const outfile = join(outDir, "example-runner.mjs");
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ["examples/runner/handler.ts"],
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
  const output = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith(".mjs"))?.[1];
  bytes = statSync(outfile).size;
  inputs = Object.keys((output as Metafile["outputs"][string]).inputs);
});
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const carries = (pattern: RegExp) => inputs.some((input) => pattern.test(input));

describe("the example runner's bundle", () => {
  it("fits its byte budget", () => {
    expect(bytes, `${(bytes / 1024).toFixed(1)} KB`).toBeLessThanOrEqual(RUNNER_BUDGET_BYTES);
  });

  it("carries the one SQS command it sends, and no other", () => {
    const commands = inputs.filter((input) => /client-sqs\/dist-es\/commands\/\w+Command\.js$/.test(input));
    expect(commands.map((c) => c.replace(/^.*\//, ""))).toEqual(["ChangeMessageVisibilityCommand.js"]);
  });

  it("carries the Logger but no Metrics, no DynamoDB client and no credential chain", () => {
    expect(carries(/@aws-lambda-powertools\/logger\//)).toBe(true);
    expect(carries(/@aws-lambda-powertools\/metrics\//)).toBe(false);
    expect(carries(/@aws-sdk\/client-dynamodb\//)).toBe(false);
    expect(carries(/@aws-sdk\/credential-provider-node\//)).toBe(false);
  });
});

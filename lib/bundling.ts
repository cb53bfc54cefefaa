/**
 * How every Lambda bundle is built, in one place without CDK imports: `ServiceFunction` hands
 * these settings to `NodejsFunction`, and the bundle-size check and `npm run bench` build with
 * exactly the same ones, so what is measured is what is deployed.
 */

/** The Lambda runtime's Node version; the bundle targets it. */
export const BUNDLE_TARGET = "node24";

/**
 * Some CommonJS dependencies call require() for Node built-ins; an ESM bundle has none, so it gets
 * one from `createRequire`.
 */
export const ESM_REQUIRE_BANNER =
  "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);";

/**
 * Module replacements applied in Lambda bundles only (paths relative to the project root, the
 * bundler's working directory), each for code a Lambda can never run, each proven by
 * test/integration/lambda-bundles.test.ts (the built bundles served against DynamoDB Local):
 *
 * - the SDK's default credential chain becomes the environment variables Lambda sets
 *   (functions/core/lambda-credentials.ts);
 * - event-stream serde, loaded only by operations DynamoDB and SQS do not have
 *   (functions/core/lambda-no-event-streams.ts): about 14 KB;
 * - mnemonist's LRU under the DynamoDB endpoint-discovery cache becomes a `Map` one
 *   (functions/core/lambda-lru-cache.ts): about 7 KB.
 */
export const LAMBDA_ALIASES: Readonly<Record<string, string>> = {
  "@aws-sdk/credential-provider-node": "./functions/core/lambda-credentials.ts",
  "@smithy/core/event-streams": "./functions/core/lambda-no-event-streams.ts",
  "mnemonist/lru-cache": "./functions/core/lambda-lru-cache.ts",
};

/**
 * The esbuild settings of every function: ESM, minified, ESM entry points first, nothing external
 * (the deployed code runs exactly the SDK versions that were tested), and a linked source map
 * without sources content. The map is written next to the bundle for offline symbolication
 * (README, "Symbolicating a stack trace"); Node does not load it at run time, because
 * `--enable-source-maps` costs every cold start.
 */
export const LAMBDA_BUNDLE = {
  format: "esm",
  target: BUNDLE_TARGET,
  minify: true,
  mainFields: ["module", "main"],
  banner: ESM_REQUIRE_BANNER,
  sourcemap: "linked",
  sourcesContent: false,
  alias: LAMBDA_ALIASES,
} as const;

/** Bundle budgets in bytes (of the .mjs, without its source map), checked by test/infra/bundles.test.ts. */
export const BUNDLE_BUDGET_BYTES = {
  /** Every handler. */
  default: 300 * 1024,
  /** Routes that touch no table carry no DynamoDB client at all. */
  "get-signed-url": 60 * 1024,
} as const;

/** The byte budget of one function's bundle. */
export const bundleBudget = (name: string): number =>
  name === "get-signed-url" ? BUNDLE_BUDGET_BYTES["get-signed-url"] : BUNDLE_BUDGET_BYTES.default;

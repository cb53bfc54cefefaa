// First, before any handler code is imported: see the module.
import "./process-defaults.js";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ConfigError } from "../functions/core/config.js";
import { runReconcilePass } from "../functions/core/reconcile.js";
import { runningDataDirEndpoint } from "./data-dir-lock.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "./dynamodb-local.js";
import { LocalSetupError } from "./errors.js";
import { DEFAULT_DATA_DIR, LOCAL_SECRETS } from "./local-env.js";
import { formatResult, formatSummary, localReconcileDeps } from "./reconcile-loop.js";

const USAGE = `Usage: npm run reconcile [-- --data-dir <dir>] [--dynamodb-endpoint <url>]

Runs one reconciliation pass against the running local service's DynamoDB Local: every
conversation whose session window ended more than RECONCILE_AFTER_MS ago without a stored
transcript is fetched from ElevenLabs (ELEVENLABS_API_BASE_URL, key ELEVENLABS_API_KEY).

  --data-dir           the data directory of the running npm start (env LOCAL_DATA_DIR, default .local-data)
  --dynamodb-endpoint  a DynamoDB Local endpoint instead (env DYNAMODB_ENDPOINT; needed for --in-memory)

Exit code 0 when every handled conversation ended as expected, 2 when some need attention
(auth_error, gave_up, store_failed, error), 1 when the pass could not run.`;

/** Outcomes that need a person: the exit code says so, for scripts. */
const ATTENTION = new Set(["auth_error", "gave_up", "store_failed", "error"]);

/** The environment of one pass, from the same flags and variables as `npm start`. */
export const reconcileEnv = (argv: readonly string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv | "help" => {
  let values: { "data-dir"?: string; "dynamodb-endpoint"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        "data-dir": { type: "string" },
        "dynamodb-endpoint": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new LocalSetupError(
      `${(error as Error).message.split("\n")[0]} (npm run reconcile -- --help lists the options).`,
    );
  }
  if (values.help) return "help";
  const dataDir = resolve(values["data-dir"] ?? env.LOCAL_DATA_DIR?.trim() ?? DEFAULT_DATA_DIR);
  const endpoint =
    values["dynamodb-endpoint"] ?? env.DYNAMODB_ENDPOINT?.trim() ?? runningDataDirEndpoint(dataDir);
  if (!endpoint) {
    throw new LocalSetupError(
      `No local service is running on ${dataDir}: start it with npm start (same --data-dir), or pass --dynamodb-endpoint <url> (an --in-memory service prints its endpoint in the banner).`,
    );
  }
  if (!/^https?:\/\/[^\s]+$/.test(endpoint))
    throw new LocalSetupError(`DYNAMODB_ENDPOINT must be an http(s) URL, not "${endpoint}".`);
  return {
    ...env,
    ELEVENLABS_API_KEY: env.ELEVENLABS_API_KEY?.trim() || LOCAL_SECRETS.ELEVENLABS_API_KEY,
    SESSIONS_TABLE: env.SESSIONS_TABLE?.trim() || "sessions",
    CONVERSATIONS_TABLE: env.CONVERSATIONS_TABLE?.trim() || "conversations",
    DYNAMODB_ENDPOINT: endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: "",
  };
};

const main = async () => {
  let env: NodeJS.ProcessEnv | "help";
  try {
    env = reconcileEnv(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`npm run reconcile: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }
  if (env === "help") {
    console.log(USAGE);
    return;
  }
  // The SDK reads region and credentials from process.env, as the handlers' clients do.
  Object.assign(process.env, env);
  const { deps, destroy } = localReconcileDeps(env);
  try {
    const summary = await runReconcilePass(deps);
    for (const result of summary.results) console.log(formatResult(result));
    console.log(formatSummary(summary));
    process.exitCode = summary.results.some((r) => ATTENTION.has(r.outcome)) ? 2 : 0;
  } catch (error) {
    const reason =
      error instanceof ConfigError ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
    console.error(`npm run reconcile: the pass could not run (${reason}).`);
    process.exitCode = 1;
  } finally {
    destroy();
  }
};

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) void main();

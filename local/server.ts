// First, before any handler code is imported: see the module.
import "./process-defaults.js";
import { relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ConfigError } from "../functions/core/config.js";
import { ROUTES } from "../functions/core/routes.js";
import { DEFAULT_ELEVENLABS_API_BASE_URL } from "../functions/core/signed-url-api.js";
import { DEFAULT_RECONCILE_AFTER_MS } from "../functions/core/table-schema.js";
import { LocalSetupError } from "./dynamodb-local.js";
import { LOCAL_RECONCILE_INTERVAL_MS } from "./local-env.js";
import { HOST, type LocalServer, type LocalServerOptions, startLocalServer } from "./local-service.js";

// `npm start`: reads the flags, starts the local service (local-service.ts), prints the banner,
// and stops everything on Ctrl-C.

const USAGE = `Usage: npm start [-- --port <n>] [--in-memory] [--data-dir <dir>] [--dynamodb-endpoint <url>] [--no-runner] [--quiet] [--no-reconcile]

  --port               port on 127.0.0.1 (env PORT, default 3000)
  --in-memory          throwaway DynamoDB Local: nothing kept after Ctrl-C (env LOCAL_IN_MEMORY=true)
  --data-dir           where DynamoDB Local keeps its data (env LOCAL_DATA_DIR, default .local-data)
  --dynamodb-endpoint  use a DynamoDB Local that is already running (env DYNAMODB_ENDPOINT)
  --no-runner          manual mode: no in-process example runner; tool answers carry callbackUrl and
                       callbackToken (so the token reaches the agent's transcript) for you to post results
  --quiet              no request lines
  --no-reconcile       no transcript reconciliation pass every minute (env LOCAL_RECONCILE=false;
                       LOCAL_RECONCILE_INTERVAL_MS changes the minute); npm run reconcile runs one

Handlers read the same variables as in Lambda: SESSION_TTL_MS (e.g. 5000 for the demo),
RUNNER_URL (POST task messages to your own runner instead of the in-process example runner),
SERVICE_TOKEN, TOOL_SECRET, WEBHOOK_SECRET, NOTIFY_SIGNING_SECRET, ELEVENLABS_API_KEY,
ELEVENLABS_API_BASE_URL, RECONCILE_AFTER_MS, HISTORY_RETENTION_DAYS (keep history that many
days), POWERTOOLS_LOG_LEVEL.`;

/** Reads flags and their environment equivalents; bad input is a LocalSetupError. */
export const parseCli = (argv: readonly string[], env: NodeJS.ProcessEnv): LocalServerOptions | "help" => {
  const parse = (args: string[]) =>
    parseArgs({
      args,
      options: {
        port: { type: "string" },
        "in-memory": { type: "boolean" },
        "data-dir": { type: "string" },
        "dynamodb-endpoint": { type: "string" },
        quiet: { type: "boolean" },
        "no-reconcile": { type: "boolean" },
        "no-runner": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse([...argv]).values;
  } catch (error) {
    throw new LocalSetupError(
      `${(error as Error).message.split("\n")[0]} (npm start -- --help lists the options).`,
    );
  }
  if (values.help) return "help";
  const portText = values.port ?? env.PORT?.trim() ?? "3000";
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 0 && port <= 65_535))
    throw new LocalSetupError(`PORT must be a whole number from 0 to 65535, not "${portText}".`);
  const endpoint = values["dynamodb-endpoint"] ?? env.DYNAMODB_ENDPOINT?.trim();
  if (endpoint && !/^https?:\/\/[^\s]+$/.test(endpoint))
    throw new LocalSetupError(`DYNAMODB_ENDPOINT must be an http(s) URL, not "${endpoint}".`);
  const dataDir = values["data-dir"] ?? env.LOCAL_DATA_DIR?.trim();
  const intervalText = env.LOCAL_RECONCILE_INTERVAL_MS?.trim() || String(LOCAL_RECONCILE_INTERVAL_MS);
  const reconcileEveryMs = /^\d{1,9}$/.test(intervalText) ? Number(intervalText) : Number.NaN;
  if (!(reconcileEveryMs >= 1000))
    throw new LocalSetupError(
      `LOCAL_RECONCILE_INTERVAL_MS must be a whole number of ms, at least 1000, not "${intervalText}".`,
    );
  const reconcile = values["no-reconcile"] !== true && env.LOCAL_RECONCILE?.trim() !== "false";
  return {
    port,
    ...(reconcile ? { reconcileEveryMs } : {}),
    inMemory: values["in-memory"] === true || env.LOCAL_IN_MEMORY === "true",
    quiet: values.quiet === true,
    runner: values["no-runner"] === true ? "none" : "example",
    env,
    ...(endpoint ? { dynamoEndpoint: endpoint } : {}),
    ...(dataDir ? { dataDir } : {}),
  };
};

/** A path relative to the working directory when it is inside it, else absolute. */
const shortPath = (path: string): string => {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
};

/**
 * A demo command that runs against this service: the demo waits for a session to expire, and
 * refuses (without `--wait`) when that would take more than a minute.
 */
const demoHint = (server: LocalServer): string => {
  const port = new URL(server.url).port;
  const url = port === "3000" ? "" : ` --url ${server.url}`;
  if (server.taskDispatch === "none")
    return `The demo needs a task runner: restart without --no-runner (SESSION_TTL_MS=5000 npm start${port === "3000" ? "" : ` -- --port ${port}`}) and run npm run demo${url ? ` --${url}` : ""}.`;
  if (server.sessionTtlMs <= 60_000) return `Try: npm run demo${url ? ` --${url}` : ""} (another terminal).`;
  return `Try (another terminal): npm run demo -- --wait${url} (waits ${Math.round(server.sessionTtlMs / 60_000)} min for the expiry), or restart with SESSION_TTL_MS=5000 npm start${port === "3000" ? "" : ` -- --port ${port}`} and run npm run demo${url ? ` --${url}` : ""}.`;
};

/** What the banner says about transcript reconciliation. */
const reconciliationLine = (server: LocalServer): string => {
  if (!server.reconcileEveryMs) return "off (--no-reconcile); npm run reconcile runs one pass";
  const after = server.env.RECONCILE_AFTER_MS || String(DEFAULT_RECONCILE_AFTER_MS);
  const api = server.env.ELEVENLABS_API_BASE_URL || DEFAULT_ELEVENLABS_API_BASE_URL;
  return `every ${server.reconcileEveryMs / 1000} s: transcripts missing ${after} ms (RECONCILE_AFTER_MS) after a session ends are fetched from ${api} (--no-reconcile turns it off)`;
};

/** The banner's task line: who runs the tool tasks, and whether tool answers carry the token. */
const taskDispatchLine = (server: LocalServer): string => {
  if (server.taskDispatch === "in-process")
    return "in-process example runner (lookup_order, sleep); tool answers carry no callback token (--no-runner: manual mode)";
  if (server.taskDispatch === "runner-url")
    return `POST to ${server.env.RUNNER_URL} (RUNNER_URL); tool answers carry no callback token`;
  return "none (--no-runner): tool answers carry callbackUrl and callbackToken, so the token reaches the agent's transcript";
};

/** What `npm start` prints once it is ready: where to call, with what, and how to stop. */
export const banner = (server: LocalServer, startedMs: number): string => {
  const { dynamodb } = server;
  const store =
    dynamodb.mode === "external"
      ? `${dynamodb.endpoint} (already running; not stopped by Ctrl-C)`
      : dynamodb.mode === "embedded-in-memory"
        ? `${dynamodb.endpoint} (pid ${dynamodb.pid}), in memory: nothing is kept after Ctrl-C`
        : `${dynamodb.endpoint} (pid ${dynamodb.pid}), data kept in ${shortPath(dynamodb.dataDir ?? ".")}/ (--in-memory for a throwaway run)`;
  const e = server.env;
  return [
    `Local service ready on ${server.url} in ${(startedMs / 1000).toFixed(1)} s (the same handlers as Lambda)`,
    `  DynamoDB Local    ${store}`,
    ...dynamodb.notices.map((notice) => `  note              ${notice}`),
    `  sessions last     ${server.sessionTtlMs} ms (SESSION_TTL_MS)`,
    `  history kept      ${server.historyRetentionDays === undefined ? "until erased (HISTORY_RETENTION_DAYS unset)" : `${server.historyRetentionDays} days after a conversation's first write (HISTORY_RETENTION_DAYS)`}`,
    `  task dispatch     ${taskDispatchLine(server)}`,
    `  reconciliation    ${reconciliationLine(server)}`,
    "  local secrets     (development values; never use them anywhere else)",
    `    SERVICE_TOKEN          ${e.SERVICE_TOKEN}  app routes: Authorization: Bearer <it>`,
    `    TOOL_SECRET            ${e.TOOL_SECRET}  tool routes: X-Tool-Secret: <it>`,
    `    WEBHOOK_SECRET         ${e.WEBHOOK_SECRET}  signs the post-call webhook (ElevenLabs-Signature)`,
    `    NOTIFY_SIGNING_SECRET  ${e.NOTIFY_SIGNING_SECRET}  signs live pushes to a notifyUrl (x-signature)`,
    "  routes",
    ...ROUTES.map((r) => `    ${r.method.padEnd(5)}${r.path}`),
    `    GET  /health`,
    `    GET  /openapi.json (this API as OpenAPI 3.1)`,
    demoHint(server),
    "Ctrl-C stops the service and DynamoDB Local.",
  ].join("\n");
};

const main = async () => {
  const started = performance.now();
  let options: LocalServerOptions | "help";
  try {
    options = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`npm start: ${(error as Error).message}`);
    process.exit(1);
  }
  if (options === "help") {
    console.log(USAGE);
    return;
  }
  console.log(
    `Starting the local service on ${HOST}:${options.port} (DynamoDB Local ${options.dynamoEndpoint ? `at ${options.dynamoEndpoint}` : "embedded"})...`,
  );
  let server: LocalServer;
  try {
    server = await startLocalServer(options);
  } catch (error) {
    if (error instanceof LocalSetupError || error instanceof ConfigError) {
      console.error(`npm start: ${error.message}`);
    } else {
      console.error("npm start: the local service could not start:", error);
    }
    process.exit(1);
  }
  console.log(banner(server, performance.now() - started));
  let stoppingSince: number | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // npm and tsx relay the terminal's Ctrl-C, so one key press can arrive twice within a few
      // ms: only a later, deliberate second Ctrl-C means "leave now" (the exit hook still kills
      // DynamoDB Local).
      if (performance.now() - stoppingSince < 500) return;
      console.log(`${signal} again: exiting now.`);
      process.exit(130);
    }
    stoppingSince = performance.now();
    const pid = server.dynamodb.pid;
    console.log(`${signal}: stopping the HTTP server${pid ? ` and DynamoDB Local (pid ${pid})` : ""}...`);
    server.close().then(
      () => {
        console.log("Stopped. Nothing left running.");
        process.exit(0);
      },
      (error: unknown) => {
        console.error("Stopping failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", stop);
};

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) void main();

// First, before any handler code is imported: see the module.
import "./process-defaults.js";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { loadConfig } from "../functions/core/config.js";
import type { LambdaHttpHandler } from "../functions/core/handler.js";
import { ROUTES } from "../functions/core/routes.js";
import { createTables, type TableOptions } from "./create-tables.js";
import {
  type DynamoDbLocal,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  LocalSetupError,
  startDynamoDbLocal,
} from "./dynamodb-local.js";
import { enableInvocationScopes } from "./invocation-scope.js";
import { DEFAULT_DATA_DIR, LOCAL_SECRETS, type LocalHealth } from "./local-env.js";
import { createLocalRunner, LOCAL_RUNNER_PATH, type LocalRunner } from "./local-runner.js";
import type { ReconcileLoop } from "./reconcile-loop.js";
import { answerProtocolError, HOST, requestListener } from "./request-listener.js";

// The local service's lifecycle: bind the port, start DynamoDB Local, create the tables, load
// the handler modules, serve, and stop all of it again. The CLI (`npm start`) is local/server.ts.

/** Options of {@link startLocalServer}. */
export interface LocalServerOptions {
  /** @default 3000 (0 picks a free port) */
  readonly port?: number;
  /** Use this DynamoDB endpoint instead of starting DynamoDB Local. */
  readonly dynamoEndpoint?: string;
  /** Directory for DynamoDB Local's data and parked events. @default .local-data */
  readonly dataDir?: string;
  /** Keep DynamoDB Local in memory (tests, load runs, throwaway demos). @default false */
  readonly inMemory?: boolean;
  /** Extra environment for the handlers (secrets, SESSION_TTL_MS, RUNNER_URL...). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Table names. @default sessions / conversations */
  readonly tables?: { sessions: string; conversations: string };
  /** Do not print one line per request. @default false */
  readonly quiet?: boolean;
  /**
   * Run a transcript reconciliation pass this often (ms), printing a line per conversation it
   * handled. @default off (`npm start` runs one every 60 s unless `--no-reconcile`)
   */
  readonly reconcileEveryMs?: number;
  /**
   * Who runs the tool tasks: `example` runs the example runner in this process (what `npm start`
   * does unless `--no-runner`), `none` leaves it to whoever holds the callback (tool answers then
   * carry callbackUrl and callbackToken). A RUNNER_URL in `env` wins over both.
   * @default "none"
   */
  readonly runner?: "example" | "none";
}

export interface LocalServer {
  readonly url: string;
  /** The environment the handlers run with (local secrets included). */
  readonly env: Readonly<Record<string, string>>;
  readonly sessionTtlMs: number;
  /** How long history is kept (`HISTORY_RETENTION_DAYS`); undefined: until erased. */
  readonly historyRetentionDays?: number;
  /** Who runs tasks: the in-process example runner, RUNNER_URL, or nobody (manual mode). */
  readonly taskDispatch: "in-process" | "runner-url" | "none";
  readonly dynamodb: {
    readonly endpoint: string;
    readonly mode: LocalHealth["dynamodb"];
    /** PID of the DynamoDB Local child this server started and will stop. */
    readonly pid?: number;
    /** Where its data lives, when persisted. */
    readonly dataDir?: string;
    /** What start-up had to clean up, e.g. a DynamoDB Local a killed run left behind. */
    readonly notices: readonly string[];
  };
  /** How often a reconciliation pass runs; undefined when off. */
  readonly reconcileEveryMs?: number;
  /** Stops accepting requests, lets in-flight ones finish (3 s at most), then stops DynamoDB Local. */
  close(): Promise<void>;
}

export { HOST } from "./request-listener.js";

/** Binds the port first, so a busy port is one clear sentence before anything else starts. */
const listen = (server: Server, port: number): Promise<number> =>
  new Promise((done, fail) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") {
        fail(
          new LocalSetupError(
            `Port ${port} on ${HOST} is already in use: stop whatever is listening there, or start on another port (PORT=${port + 1} npm start).`,
          ),
        );
      } else if (error.code === "EACCES") {
        fail(
          new LocalSetupError(
            `Port ${port} on ${HOST} may not be used by this user: pick a port above 1023.`,
          ),
        );
      } else fail(error);
    };
    server.once("error", onError);
    server.listen(port, HOST, () => {
      server.off("error", onError);
      done((server.address() as AddressInfo).port);
    });
  });

/** Handler modules keyed by route name, loaded the way Lambda loads them: one import each. */
const loadHandlers = async (): Promise<Map<string, LambdaHttpHandler>> => {
  const handlers = new Map<string, LambdaHttpHandler>();
  for (const route of ROUTES) {
    const entry = pathToFileURL(resolve(import.meta.dirname, "../functions", route.name, "handler.ts")).href;
    const module = (await import(entry)) as { handler: LambdaHttpHandler };
    handlers.set(route.name, module.handler);
  }
  return handlers;
};

/** The environment the handlers run with: local secrets, the caller's extras, then what is fixed locally. */
const handlerEnv = (local: {
  readonly extra: LocalServerOptions["env"];
  readonly tables: { sessions: string; conversations: string };
  readonly parkingDir: string;
  readonly publicBaseUrl: string;
  readonly endpoint: string;
}): Record<string, string> => {
  const env: Record<string, string> = { ...LOCAL_SECRETS, PUBLIC_BASE_URL: local.publicBaseUrl };
  for (const [name, value] of Object.entries(local.extra ?? {})) if (value !== undefined) env[name] = value;
  return {
    ...env,
    // Fixed for the local server: its own tables and DynamoDB, and never a real AWS queue.
    SESSIONS_TABLE: local.tables.sessions,
    CONVERSATIONS_TABLE: local.tables.conversations,
    DYNAMODB_ENDPOINT: local.endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: "",
    TASK_QUEUE_URL: "",
    PARKING_QUEUE_URL: "",
    PARKING_DIR: local.parkingDir,
  };
};

/** One JSON line like the handlers' (level, message, keys), for the local service's own events. */
const logLine = (level: "INFO" | "ERROR", message: string, keys: Record<string, unknown>) => {
  const line = JSON.stringify({
    level,
    message,
    service: "local-service",
    timestamp: new Date().toISOString(),
    ...keys,
  });
  if (level === "ERROR") console.error(line);
  else console.log(line);
};

/**
 * Where the data lives and where parked post-call events go (they are files): in PARKING_DIR,
 * else under the data directory, else (in memory) in a temporary directory removed again on
 * close, since an in-memory run keeps nothing.
 */
const localDirs = (options: LocalServerOptions) => {
  const dataDir = options.inMemory ? undefined : resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const parkingBase = options.dataDir ?? dataDir;
  const scratchDir =
    options.env?.PARKING_DIR || parkingBase ? undefined : mkdtempSync(join(tmpdir(), "local-service-"));
  const parkingDir = options.env?.PARKING_DIR || resolve(parkingBase ?? scratchDir ?? "", "parked");
  return { dataDir, scratchDir, parkingDir };
};

/** Creates both tables (if absent) with the CDK stack's definitions. */
const createLocalTables = async (
  endpoint: string,
  tables: { sessions: string; conversations: string },
  options: TableOptions,
) => {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    await createTables(client, tables, options);
  } finally {
    client.destroy();
  }
};

/** Stops the HTTP server (in-flight requests get 3 s), then DynamoDB Local, then removes the scratch dir. */
const stopAll = async (server: Server, dynamo: DynamoDbLocal | undefined, scratchDir: string | undefined) => {
  const closed = new Promise<void>((done) => server.close(() => done()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), 3000);
  await closed;
  clearTimeout(grace);
  await dynamo?.stop();
  if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
};

/** What a running local service holds; each part is set as start-up gets to it. */
interface Running {
  readonly server: Server;
  /** DynamoDB Local as the service last saw it: its process exiting is noticed at once. */
  readonly store: { state: "up" | "restarting" | "down"; problem?: string; restarts: number };
  endpoint: string;
  handlers?: Map<string, LambdaHttpHandler>;
  dynamo?: DynamoDbLocal;
  probe?: DynamoDBClient;
  runner?: LocalRunner;
  reconciling?: ReconcileLoop;
  closing?: Promise<void>;
}

/** `/health`: starting until the handlers are loaded; healthy while DynamoDB Local answers within 1 s. */
const healthOf =
  (
    running: Running,
    fixed: Pick<LocalHealth, "sessionTtlMs" | "dynamodb" | "callbackInToolResponse" | "taskRunner">,
  ) =>
  async (): Promise<LocalHealth> => {
    const { store, probe } = running;
    const base = { ...fixed, dynamodbRestarts: store.restarts };
    if (!running.handlers || !probe) return { status: "starting", ...base };
    if (store.state !== "up")
      return { status: "degraded", ...base, dynamodbState: store.state, problem: store.problem ?? "" };
    try {
      await probe.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(1000) });
      return { status: "ok", ...base, dynamodbState: "up" };
    } catch (error) {
      return {
        status: "degraded",
        ...base,
        dynamodbState: "unresponsive",
        problem: `DynamoDB Local at ${running.endpoint} did not answer within 1 s (${(error as Error).name}).`,
      };
    }
  };

/**
 * Watches the DynamoDB Local child: if it exits while the service runs (killed, crashed), that
 * is one ERROR line, requests get a 503 naming the problem, and a new DynamoDB Local starts on
 * the same port and data directory (in memory: empty again, so the tables are recreated).
 */
const supervise = (
  running: Running,
  where: {
    readonly dataDir: string | undefined;
    readonly tables: { sessions: string; conversations: string };
    /** The conversations TTL when a retention period is set (`HISTORY_RETENTION_DAYS`). */
    readonly tableOptions: TableOptions;
  },
  instance: DynamoDbLocal,
  port: number,
): void => {
  const { store } = running;
  const { dataDir } = where;
  void instance.exited.then(async ({ code, signal }) => {
    if (running.closing || running.dynamo !== instance) return;
    store.state = "restarting";
    store.problem = `DynamoDB Local (pid ${instance.pid}) exited (${signal ?? `code ${code}`}); it is being restarted${dataDir ? ` on ${dataDir}` : " in memory (its data is lost)"}.`;
    logLine("ERROR", "DynamoDB Local exited; restarting it on the same data directory", {
      pid: instance.pid,
      exitCode: code,
      signal,
      dataDir: dataDir ?? "in-memory",
    });
    try {
      const next = await startDynamoDbLocal({ port, ...(dataDir ? { dbPath: dataDir } : {}) });
      if (running.closing) return void (await next.stop());
      running.dynamo = next;
      await createLocalTables(next.endpoint, where.tables, where.tableOptions);
      store.restarts++;
      store.state = "up";
      store.problem = undefined;
      logLine("INFO", "DynamoDB Local restarted", { pid: next.pid, restarts: store.restarts });
      supervise(running, where, next, port);
    } catch (error) {
      store.state = "down";
      store.problem = `DynamoDB Local (pid ${instance.pid}) exited and could not be restarted: ${(error as Error).message.split("\n")[0]} Restart npm start.`;
      logLine("ERROR", "DynamoDB Local could not be restarted", {
        error: (error as Error).message.split("\n")[0],
      });
    }
  });
};

/** Stops everything once, however often it is called: a reconciliation pass in flight finishes first. */
const closeAll = (running: Running, scratchDir: string | undefined): Promise<void> => {
  running.closing ??= (async () => {
    await running.reconciling?.stop();
    await stopAll(running.server, running.dynamo, scratchDir);
  })().finally(() => running.probe?.destroy());
  return running.closing;
};

/** Who runs the tool tasks: RUNNER_URL wins; else the in-process example runner when asked for. */
const taskDispatchOf = (options: LocalServerOptions): LocalServer["taskDispatch"] => {
  if (options.env?.RUNNER_URL?.trim()) return "runner-url";
  return options.runner === "example" ? "in-process" : "none";
};

/** Start-up after the configuration was checked: port, runner, DynamoDB Local, tables, handlers. */
const boot = async (
  running: Running,
  options: LocalServerOptions,
  plan: {
    readonly requestedPort: number;
    readonly dataDir: string | undefined;
    readonly tables: { sessions: string; conversations: string };
    readonly tableOptions: TableOptions;
    readonly taskDispatch: LocalServer["taskDispatch"];
    readonly env: (publicBaseUrl: string, endpoint: string) => Record<string, string>;
  },
): Promise<
  Omit<LocalServer, "sessionTtlMs" | "close" | "dynamodb"> & { pid?: number; notices: readonly string[] }
> => {
  const { dataDir, tables } = plan;
  const port = await listen(running.server, plan.requestedPort);
  const url = `http://${HOST}:${port}`;
  if (plan.taskDispatch === "in-process") running.runner = createLocalRunner(url);
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  running.dynamo = options.dynamoEndpoint
    ? undefined
    : await startDynamoDbLocal(dataDir ? { dbPath: dataDir } : {});
  running.endpoint = options.dynamoEndpoint ?? running.dynamo?.endpoint ?? "";
  await createLocalTables(running.endpoint, tables, plan.tableOptions);
  if (running.dynamo)
    supervise(
      running,
      { dataDir, tables, tableOptions: plan.tableOptions },
      running.dynamo,
      Number(new URL(running.endpoint).port),
    );
  running.probe = new DynamoDBClient({
    endpoint: running.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const env = plan.env(url, running.endpoint);
  // Handler modules read process.env once, at import (as a Lambda container does at cold start).
  for (const [name, value] of Object.entries(env)) process.env[name] = value;
  running.handlers = await loadHandlers();
  if (options.reconcileEveryMs) {
    // Imported like the handlers, after process.env is set: its modules read it when loaded.
    const { startReconcileLoop } = await import("./reconcile-loop.js");
    running.reconciling = startReconcileLoop(env, (line) => console.log(line), options.reconcileEveryMs);
  }
  return {
    url,
    env,
    taskDispatch: plan.taskDispatch,
    ...(running.dynamo ? { pid: running.dynamo.pid } : {}),
    notices: running.dynamo?.notices ?? [],
    ...(options.reconcileEveryMs ? { reconcileEveryMs: options.reconcileEveryMs } : {}),
  };
};

/** Where the local server's DynamoDB runs: given by the caller, or embedded (on disk or in memory). */
const dynamoModeOf = (options: LocalServerOptions): LocalHealth["dynamodb"] =>
  options.dynamoEndpoint ? "external" : options.inMemory ? "embedded-in-memory" : "embedded";

/**
 * Runs every route of the route table in one Node process, through the same handler modules
 * the Lambdas use, on DynamoDB Local (started here unless an endpoint is given).
 *
 * Order matters for clear failures: the configuration is checked, then the port is bound, then
 * Java and DynamoDB Local start; whatever fails, nothing is left running.
 */
export const startLocalServer = async (options: LocalServerOptions = {}): Promise<LocalServer> => {
  const requestedPort = options.port ?? 3000;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535)
    throw new LocalSetupError(`Port must be a whole number from 0 to 65535, not ${String(options.port)}.`);
  const tables = options.tables ?? { sessions: "sessions", conversations: "conversations" };
  // Before any AWS SDK call: the SDK creates Lambda's invocation store on its first request.
  await enableInvocationScopes();
  const { dataDir, scratchDir, parkingDir } = localDirs(options);
  const taskDispatch = taskDispatchOf(options);
  const env = (publicBaseUrl: string, endpoint: string) =>
    handlerEnv({
      extra:
        taskDispatch === "in-process"
          ? { ...options.env, RUNNER_URL: `${publicBaseUrl}${LOCAL_RUNNER_PATH}` }
          : options.env,
      tables,
      parkingDir,
      publicBaseUrl,
      endpoint,
    });
  // Fail fast on a bad SESSION_TTL_MS & co., before a port or a Java process is taken.
  const config = loadConfig(env(`http://${HOST}:${requestedPort}`, "http://check"), [
    "tables",
    "publicBaseUrl",
  ]);
  const mode = dynamoModeOf(options);
  const running: Running = {
    server: createServer(),
    store: { state: "up", restarts: 0 },
    endpoint: options.dynamoEndpoint ?? "",
  };
  const handle = requestListener({
    get runner() {
      return running.runner;
    },
    handlers: () => running.handlers,
    health: healthOf(running, {
      sessionTtlMs: config.sessionTtlMs,
      dynamodb: mode,
      callbackInToolResponse: config.exposeCallbackInToolResponse,
      taskRunner: taskDispatch,
    }),
    storeProblem: () => (running.store.state === "up" ? undefined : running.store.problem),
    quiet: options.quiet ?? false,
  });
  running.server.on("request", (req: IncomingMessage, res: ServerResponse) => void handle(req, res));
  running.server.on("clientError", answerProtocolError);
  const close = () => closeAll(running, scratchDir);
  try {
    const { pid, notices, ...started } = await boot(running, options, {
      requestedPort,
      dataDir,
      tables,
      tableOptions: { historyRetention: config.historyRetentionDays !== undefined },
      taskDispatch,
      env,
    });
    const dynamodb = {
      endpoint: running.endpoint,
      mode,
      ...(pid ? { pid } : {}),
      ...(dataDir && pid ? { dataDir } : {}),
      notices,
    };
    return {
      ...started,
      sessionTtlMs: config.sessionTtlMs,
      ...(config.historyRetentionDays !== undefined
        ? { historyRetentionDays: config.historyRetentionDays }
        : {}),
      dynamodb,
      close,
    };
  } catch (error) {
    // Never leave a Java process or a bound port behind when start-up fails half-way.
    await close();
    throw error;
  }
};

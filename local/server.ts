// First, before any handler code is imported: see the module.
import "./process-defaults.js";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { ConfigError, loadConfig } from "../functions/core/config.js";
import type { LambdaHttpHandler } from "../functions/core/handler.js";
import { openApiDocument } from "../functions/core/openapi.js";
import { ROUTES } from "../functions/core/routes.js";
import { createTables } from "./create-tables.js";
import {
  type DynamoDbLocal,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  LocalSetupError,
  startDynamoDbLocal,
} from "./dynamodb-local.js";
import { DEFAULT_DATA_DIR, LOCAL_SECRETS, type LocalHealth } from "./local-env.js";
import { matchRoute } from "./router.js";

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
}

export interface LocalServer {
  readonly url: string;
  /** The environment the handlers run with (local secrets included). */
  readonly env: Readonly<Record<string, string>>;
  readonly sessionTtlMs: number;
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
  /** Stops accepting requests, lets in-flight ones finish (3 s at most), then stops DynamoDB Local. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

const readBody = (req: IncomingMessage, limit: number): Promise<Buffer | "too_large"> =>
  new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("end", () => resolveBody(size > limit ? "too_large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });

const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  // The same base headers as the handlers' answers, so the server's own 404/405/413/503 look alike.
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    ...headers,
  });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
};

const TEXT_TYPES = /^(application\/(json|x-www-form-urlencoded)|text\/)/i;

/** Builds the API Gateway HTTP API (v2) event the handler would get in AWS. */
export const toEvent = (
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  pathParameters: Record<string, string>,
  routeKey: string,
): APIGatewayProxyEventV2 => {
  const headers: Record<string, string> = {};
  let cookies: string[] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    // Payload 2.0 moves cookies into their own list.
    if (name === "cookie") cookies = String(value).split(/;\s*/).filter(Boolean);
    else headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
  }
  // Like API Gateway: text bodies arrive as strings, anything else base64-encoded.
  const isText = TEXT_TYPES.test(headers["content-type"] ?? "application/json");
  // Like API Gateway: a repeated query parameter arrives once, its values joined by commas.
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    const seen = params.get(name);
    params.set(name, seen === undefined ? value : `${seen},${value}`);
  }
  const query = Object.fromEntries(params);
  return {
    version: "2.0",
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
    requestContext: {
      accountId: "local",
      apiId: "local",
      domainName: url.host,
      domainPrefix: "local",
      http: {
        method: req.method ?? "GET",
        path: url.pathname,
        protocol: "HTTP/1.1",
        sourceIp: req.socket.remoteAddress ?? "",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey,
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    ...(body.length > 0 ? { body: isText ? body.toString("utf8") : body.toString("base64") } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  };
};

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
  const dataDir = options.inMemory ? undefined : resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  // Parked post-call events are files: in PARKING_DIR, else under the data directory, else (in
  // memory) in a temporary directory removed again on close, since an in-memory run keeps nothing.
  const parkingBase = options.dataDir ?? dataDir;
  const scratchDir =
    options.env?.PARKING_DIR || parkingBase ? undefined : mkdtempSync(join(tmpdir(), "local-service-"));
  const parkingDir = options.env?.PARKING_DIR || resolve(parkingBase ?? scratchDir ?? "", "parked");
  const baseEnv = (publicBaseUrl: string, endpoint: string): Record<string, string> => {
    const env: Record<string, string> = {
      ...LOCAL_SECRETS,
      PUBLIC_BASE_URL: publicBaseUrl,
    };
    for (const [name, value] of Object.entries(options.env ?? {})) if (value !== undefined) env[name] = value;
    return {
      ...env,
      // Fixed for the local server: its own tables and DynamoDB, and never a real AWS queue.
      SESSIONS_TABLE: tables.sessions,
      CONVERSATIONS_TABLE: tables.conversations,
      DYNAMODB_ENDPOINT: endpoint,
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: "",
      TASK_QUEUE_URL: "",
      PARKING_QUEUE_URL: "",
      PARKING_DIR: parkingDir,
    };
  };
  // Fail fast on a bad SESSION_TTL_MS & co., before a port or a Java process is taken.
  const config = loadConfig(baseEnv(`http://${HOST}:${requestedPort}`, "http://check"), [
    "tables",
    "publicBaseUrl",
  ]);

  const server: Server = createServer();
  let handlers: Map<string, LambdaHttpHandler> | undefined;
  let dynamo: DynamoDbLocal | undefined;
  const mode: LocalHealth["dynamodb"] = options.dynamoEndpoint
    ? "external"
    : options.inMemory
      ? "embedded-in-memory"
      : "embedded";
  // Ready exactly when the handlers are loaded.
  const health = (): LocalHealth => ({
    status: handlers ? "ok" : "starting",
    sessionTtlMs: config.sessionTtlMs,
    dynamodb: mode,
    callbackInToolResponse: config.exposeCallbackInToolResponse,
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", `http://${HOST}`);
    try {
      if (req.method === "GET" && url.pathname === "/health")
        return sendJson(res, handlers ? 200 : 503, health());
      if (req.method === "GET" && url.pathname === "/openapi.json")
        return sendJson(
          res,
          200,
          openApiDocument(`http://${HOST}:${(server.address() as AddressInfo).port}`),
        );
      if (!handlers) {
        return sendJson(
          res,
          503,
          { error: "starting", message: "The local service is still starting; retry in a moment." },
          { "retry-after": "1" },
        );
      }
      const match = matchRoute(req.method ?? "GET", url.pathname);
      if (!match)
        return sendJson(res, 404, { error: "route_not_found", message: "No route matches this path." });
      if ("methodNotAllowed" in match) {
        return sendJson(
          res,
          405,
          {
            error: "method_not_allowed",
            message: `Use ${match.methodNotAllowed.join(" or ")} on this path.`,
          },
          { allow: match.methodNotAllowed.join(", ") },
        );
      }
      // A little above the route's limit, so the handler itself answers 413 like in AWS.
      const body = await readBody(req, match.route.maxBodyBytes + 64 * 1024);
      if (body === "too_large") {
        return sendJson(res, 413, {
          error: "payload_too_large",
          message: "The request body is too large for this route.",
        });
      }
      const handler = handlers.get(match.route.name);
      if (!handler) throw new Error(`No handler loaded for ${match.route.name}`);
      const result = await handler(
        toEvent(req, url, body, match.pathParameters, `${match.route.method} ${match.route.path}`),
      );
      sendJson(res, result.statusCode, result.body, (result.headers ?? {}) as Record<string, string>);
      if (!options.quiet) {
        console.log(
          `${req.method} ${url.pathname} -> ${result.statusCode} (${(performance.now() - started).toFixed(1)} ms)`,
        );
      }
    } catch (error) {
      console.error(error);
      sendJson(res, 500, {
        error: "internal_error",
        message: "The local server failed to handle the request.",
      });
    }
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), 3000);
      await closed;
      clearTimeout(grace);
      await dynamo?.stop();
      if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
    })();
    return closing;
  };

  try {
    const port = await listen(server, requestedPort);
    const baseUrl = `http://${HOST}:${port}`;
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    dynamo = options.dynamoEndpoint
      ? undefined
      : await startDynamoDbLocal(dataDir ? { dbPath: dataDir } : {});
    const endpoint = options.dynamoEndpoint ?? dynamo?.endpoint ?? "";
    const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    try {
      await createTables(client, tables);
    } finally {
      client.destroy();
    }
    const env = baseEnv(baseUrl, endpoint);
    // Handler modules read process.env once, at import (as a Lambda container does at cold start).
    for (const [name, value] of Object.entries(env)) process.env[name] = value;
    handlers = await loadHandlers();
    return {
      url: baseUrl,
      env,
      sessionTtlMs: config.sessionTtlMs,
      dynamodb: {
        endpoint,
        mode,
        ...(dynamo ? { pid: dynamo.pid } : {}),
        ...(dataDir && dynamo ? { dataDir } : {}),
        notices: dynamo?.notices ?? [],
      },
      close,
    };
  } catch (error) {
    // Never leave a Java process or a bound port behind when start-up fails half-way.
    await close();
    throw error;
  }
};

const USAGE = `Usage: npm start [-- --port <n>] [--in-memory] [--data-dir <dir>] [--dynamodb-endpoint <url>] [--quiet]

  --port               port on 127.0.0.1 (env PORT, default 3000)
  --in-memory          throwaway DynamoDB Local: nothing kept after Ctrl-C (env LOCAL_IN_MEMORY=true)
  --data-dir           where DynamoDB Local keeps its data (env LOCAL_DATA_DIR, default .local-data)
  --dynamodb-endpoint  use a DynamoDB Local that is already running (env DYNAMODB_ENDPOINT)
  --quiet              no request lines

Handlers read the same variables as in Lambda: SESSION_TTL_MS (e.g. 5000 for the demo),
RUNNER_URL (POST task messages to a local runner), SERVICE_TOKEN, TOOL_SECRET, WEBHOOK_SECRET,
NOTIFY_SIGNING_SECRET, ELEVENLABS_API_KEY, ELEVENLABS_API_BASE_URL, POWERTOOLS_LOG_LEVEL.`;

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
  return {
    port,
    inMemory: values["in-memory"] === true || env.LOCAL_IN_MEMORY === "true",
    quiet: values.quiet === true,
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
  if (server.sessionTtlMs <= 60_000) return `Try: npm run demo${url ? ` --${url}` : ""} (another terminal).`;
  return `Try (another terminal): npm run demo -- --wait${url} (waits ${Math.round(server.sessionTtlMs / 60_000)} min for the expiry), or restart with SESSION_TTL_MS=5000 npm start${port === "3000" ? "" : ` -- --port ${port}`} and run npm run demo${url ? ` --${url}` : ""}.`;
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
    `  task dispatch     ${e.RUNNER_URL ? `POST to ${e.RUNNER_URL}` : "none: tool answers carry callbackUrl and callbackToken"}`,
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

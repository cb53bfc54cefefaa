import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type { LambdaHttpHandler } from "../functions/core/handler.js";
import { ROUTES } from "../functions/core/routes.js";
import { createTables } from "./create-tables.js";
import { type DynamoDbLocal, LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "./dynamodb-local.js";
import { matchRoute } from "./router.js";

/** Options of {@link startLocalServer}. */
export interface LocalServerOptions {
  /** @default 3000 (0 picks a free port) */
  readonly port?: number;
  /** Use this DynamoDB endpoint instead of starting DynamoDB Local. */
  readonly dynamoEndpoint?: string;
  /** Directory for DynamoDB Local's data and parked events. @default .local-data */
  readonly dataDir?: string;
  /** Keep DynamoDB Local in memory (tests, load runs). @default false */
  readonly inMemory?: boolean;
  /** Extra environment for the handlers (secrets, SESSION_TTL_MS, RUNNER_URL...). */
  readonly env?: Record<string, string>;
  /** Table names. @default sessions / conversations */
  readonly tables?: { sessions: string; conversations: string };
  /** Print one line per request. @default true */
  readonly quiet?: boolean;
}

export interface LocalServer {
  readonly url: string;
  readonly env: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

/** Local defaults: clearly fake secrets, so nobody mistakes them for real ones. */
const LOCAL_SECRETS = {
  SERVICE_TOKEN: "local-service-token",
  TOOL_SECRET: "local-tool-secret",
  WEBHOOK_SECRET: "local-webhook-secret",
  NOTIFY_SIGNING_SECRET: "local-notify-secret",
  ELEVENLABS_API_KEY: "local-elevenlabs-api-key",
};

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

const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(body);
};

const TEXT_TYPES = /^(application\/(json|x-www-form-urlencoded)|text\/)/i;

/** Builds the API Gateway HTTP API (v2) event the handler would get in AWS. */
const toEvent = (
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  pathParameters: Record<string, string>,
  routeKey: string,
): APIGatewayProxyEventV2 => {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
  }
  // Like API Gateway: text bodies arrive as strings, anything else base64-encoded.
  const isText = TEXT_TYPES.test(headers["content-type"] ?? "application/json");
  const query = Object.fromEntries(url.searchParams.entries());
  return {
    version: "2.0",
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
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

/**
 * Runs every route of the route table in one Node process, through the same handler modules
 * the Lambdas use, on DynamoDB Local (started here unless an endpoint is given).
 */
export const startLocalServer = async (options: LocalServerOptions = {}): Promise<LocalServer> => {
  const dataDir = resolve(options.dataDir ?? ".local-data");
  mkdirSync(dataDir, { recursive: true });
  const dynamo: DynamoDbLocal | undefined = options.dynamoEndpoint
    ? undefined
    : await startDynamoDbLocal(options.inMemory ? {} : { dbPath: dataDir });
  try {
    return await serveRoutes(options, dataDir, options.dynamoEndpoint ?? dynamo?.endpoint ?? "", dynamo);
  } catch (error) {
    // Never leave a Java process behind when start-up fails half-way.
    await dynamo?.stop();
    throw error;
  }
};

/** Creates the tables, loads every handler and starts listening. */
const serveRoutes = async (
  options: LocalServerOptions,
  dataDir: string,
  endpoint: string,
  dynamo: DynamoDbLocal | undefined,
): Promise<LocalServer> => {
  const tables = options.tables ?? { sessions: "sessions", conversations: "conversations" };
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  await createTables(client, tables);
  client.destroy();

  const server: Server = createServer();
  await new Promise<void>((ready) => server.listen(options.port ?? 3000, "127.0.0.1", ready));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    ...LOCAL_SECRETS,
    SESSIONS_TABLE: tables.sessions,
    CONVERSATIONS_TABLE: tables.conversations,
    DYNAMODB_ENDPOINT: endpoint,
    PUBLIC_BASE_URL: baseUrl,
    PARKING_DIR: resolve(dataDir, "parked"),
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    POWERTOOLS_METRICS_DISABLED: "true",
    ...options.env,
  };
  // Handler modules read process.env once, at import (as a Lambda container does at cold start).
  for (const [name, value] of Object.entries(env)) process.env[name] = value;
  const handlers = new Map<string, LambdaHttpHandler>();
  for (const route of ROUTES) {
    const entry = pathToFileURL(resolve(import.meta.dirname, "../functions", route.name, "handler.ts")).href;
    const module = (await import(entry)) as { handler: LambdaHttpHandler };
    handlers.set(route.name, module.handler);
  }

  server.on("request", async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? "/", baseUrl);
    try {
      if (req.method === "GET" && url.pathname === "/health")
        return send(res, 200, JSON.stringify({ status: "ok" }));
      const match = matchRoute(req.method ?? "GET", url.pathname);
      if (!match)
        return send(
          res,
          404,
          JSON.stringify({ error: "route_not_found", message: "No route matches this path." }),
        );
      if ("methodNotAllowed" in match) {
        return send(
          res,
          405,
          JSON.stringify({
            error: "method_not_allowed",
            message: `Use ${match.methodNotAllowed.join(" or ")} on this path.`,
          }),
          {
            allow: match.methodNotAllowed.join(", "),
          },
        );
      }
      // A little above the route's limit, so the handler itself answers 413 like in AWS.
      const body = await readBody(req, match.route.maxBodyBytes + 64 * 1024);
      if (body === "too_large") {
        return send(
          res,
          413,
          JSON.stringify({
            error: "payload_too_large",
            message: "The request body is too large for this route.",
          }),
        );
      }
      const handler = handlers.get(match.route.name);
      if (!handler) throw new Error(`No handler loaded for ${match.route.name}`);
      const result = await handler(
        toEvent(req, url, body, match.pathParameters, `${match.route.method} ${match.route.path}`),
      );
      send(res, result.statusCode, result.body, (result.headers ?? {}) as Record<string, string>);
      if (!options.quiet) {
        console.log(
          `${req.method} ${url.pathname} -> ${result.statusCode} (${(performance.now() - started).toFixed(1)} ms)`,
        );
      }
    } catch (error) {
      console.error(error);
      send(
        res,
        500,
        JSON.stringify({
          error: "internal_error",
          message: "The local server failed to handle the request.",
        }),
      );
    }
  });

  return {
    url: baseUrl,
    env,
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      await dynamo?.stop();
    },
  };
};

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const port = Number(process.env.PORT ?? 3000);
  startLocalServer({
    port,
    env: Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
  })
    .then((server) => {
      console.log(
        JSON.stringify({
          message: "Local server listening",
          url: server.url,
          dynamodb: server.env.DYNAMODB_ENDPOINT,
          serviceToken: server.env.SERVICE_TOKEN,
          toolSecret: server.env.TOOL_SECRET,
          routes: ROUTES.map((r) => `${r.method} ${r.path}`),
        }),
      );
      const stop = () => void server.close().then(() => process.exit(0));
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}

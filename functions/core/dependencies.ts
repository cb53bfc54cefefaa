import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { secretsExtensionFetcher } from "./aws-secrets.js";
import { type Clock, systemClock } from "./clock.js";
import { type Config, type ConfigNeed, loadConfig } from "./config.js";
import { ConversationStore } from "./conversation-store.js";
import type { HttpDeps } from "./handler.js";
import { logger, metrics } from "./powertools.js";
import { createSecrets, type SecretFetcher, type Secrets } from "./secrets.js";
import { SessionStore } from "./session-store.js";
import { TaskStore } from "./task-store.js";

/** Everything the handlers share. Built once per container, outside the handler. */
export interface Dependencies extends HttpDeps {
  readonly config: Config;
  readonly now: Clock;
  readonly doc: DynamoDBDocumentClient;
  readonly sessions: SessionStore;
  readonly conversations: ConversationStore;
  readonly tasks: TaskStore;
  readonly secrets: Secrets;
}

/**
 * SDK retries, chosen on purpose: "standard" mode, 3 attempts, 1 s to connect and 2.5 s per
 * attempt. The worst case (3 × 2.5 s plus backoff, about 8 s) stays inside the 10 s Lambda
 * timeout and well inside ElevenLabs' 20 s tool timeout, so a stuck call becomes our 503 with
 * Retry-After rather than a Lambda timeout the caller cannot interpret.
 * `throwOnRequestTimeout` is what makes `requestTimeout` abort the attempt: without it the
 * Smithy handler only logs a warning and keeps waiting.
 */
export const DYNAMO_CLIENT_SETTINGS = {
  maxAttempts: 3,
  retryMode: "standard",
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2500, throwOnRequestTimeout: true },
} as const;

/** A DocumentClient with the service's retry and timeout settings. */
export const createDocumentClient = (
  config: Pick<Config, "dynamoEndpoint">,
  region?: string,
): DynamoDBDocumentClient =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({
      ...DYNAMO_CLIENT_SETTINGS,
      ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
      ...(region ? { region } : {}),
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );

/** Overrides for tests and the local server. */
export interface DependencyOverrides {
  readonly doc?: DynamoDBDocumentClient;
  readonly now?: Clock;
  readonly secretFetcher?: SecretFetcher;
  readonly logger?: Dependencies["logger"];
  readonly metrics?: Dependencies["metrics"];
}

/**
 * Reads the config (failing fast when a variable is missing) and creates the clients and stores
 * once. Handlers call this at module scope: `export const handler = makeHandler(createDependencies())`.
 */
export const createDependencies = (
  env: NodeJS.ProcessEnv = process.env,
  overrides: DependencyOverrides = {},
  needs: readonly ConfigNeed[] = ["tables"],
): Dependencies => {
  const config = loadConfig(env, needs);
  const now = overrides.now ?? systemClock;
  const log = overrides.logger ?? logger;
  const doc = overrides.doc ?? createDocumentClient(config);
  const conversations = new ConversationStore({
    client: doc,
    tableName: config.conversationsTable,
    now,
    logger: log,
  });
  const tasks = new TaskStore({ client: doc, tableName: config.conversationsTable, now });
  const sessions = new SessionStore({
    client: doc,
    tableName: config.sessionsTable,
    ttlMs: config.sessionTtlMs,
    now,
    conversations,
    logger: log,
  });
  return {
    config,
    now,
    doc,
    sessions,
    conversations,
    tasks,
    logger: log,
    metrics: overrides.metrics ?? metrics,
    secrets: createSecrets(env, overrides.secretFetcher ?? secretsExtensionFetcher(env)),
  };
};

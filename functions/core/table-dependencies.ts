import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { type BaseDependencies, type BaseOverrides, createBaseDependencies } from "./base-dependencies.js";
import type { Config, ConfigNeed } from "./config.js";
import { ConversationStore } from "./conversation-store.js";
import type { ConversationTableOptions } from "./conversation-table.js";
import { useStorableKeys } from "./storable.js";

/** A function that touches the conversations table: the DocumentClient and the conversation store. */
export interface ConversationDependencies extends BaseDependencies {
  readonly doc: DynamoDBDocumentClient;
  readonly conversations: ConversationStore;
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

/** A DocumentClient with the service's retry and timeout settings that stores every key faithfully (storable.ts). */
export const createDocumentClient = (
  config: Pick<Config, "dynamoEndpoint">,
  region?: string,
): DynamoDBDocumentClient =>
  useStorableKeys(
    DynamoDBDocumentClient.from(
      new DynamoDBClient({
        ...DYNAMO_CLIENT_SETTINGS,
        ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
        ...(region ? { region } : {}),
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    ),
  );

/** What both conversations-table stores are built from: the client, the table, the clock, the retention. */
export const conversationTableOptions = (deps: {
  readonly doc: DynamoDBDocumentClient;
  readonly config: Pick<Config, "conversationsTable" | "historyRetentionDays">;
  readonly now: BaseDependencies["now"];
}): ConversationTableOptions => ({
  client: deps.doc,
  tableName: deps.config.conversationsTable,
  now: deps.now,
  ...(deps.config.historyRetentionDays === undefined
    ? {}
    : { historyRetentionDays: deps.config.historyRetentionDays }),
});

/** Overrides for tests and the local server. */
export interface TableOverrides extends BaseOverrides {
  readonly doc?: DynamoDBDocumentClient;
}

/**
 * For routes whose `access` names the conversations table but not the sessions table
 * (post-call-webhook, list-conversations, get-conversation): no session store, so no session
 * input schema either.
 */
export const createConversationDependencies = (
  env: NodeJS.ProcessEnv = process.env,
  overrides: TableOverrides = {},
  needs: readonly ConfigNeed[] = ["tables"],
): ConversationDependencies => {
  const base = createBaseDependencies(env, overrides, needs);
  const doc = overrides.doc ?? createDocumentClient(base.config);
  const conversations = new ConversationStore({
    ...conversationTableOptions({ ...base, doc }),
    logger: base.logger,
    reconcileAfterMs: base.config.reconcileAfterMs,
  });
  return { ...base, doc, conversations };
};

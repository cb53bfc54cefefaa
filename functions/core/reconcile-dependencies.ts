import { createConversationsClient } from "./elevenlabs-conversations.js";
import type { ReconcileDeps } from "./reconcile.js";
import type { ConversationDependencies } from "./table-dependencies.js";
import { TranscriptBacklog } from "./transcript-backlog.js";

/** Overrides for tests and the local runs. */
export interface ReconcileOverrides {
  /** @default global fetch */
  readonly fetchImpl?: typeof fetch;
  /** Timeout of one ElevenLabs request. @default 10 000 ms */
  readonly timeoutMs?: number;
}

/**
 * What a reconciliation pass needs, from the service's shared dependencies: the same
 * conversations store and clock, the API key through the same secrets cache, and the
 * ElevenLabs base URL from `ELEVENLABS_API_BASE_URL`. Built once per container.
 */
export const createReconcileDependencies = (
  deps: Pick<
    ConversationDependencies,
    "config" | "doc" | "conversations" | "secrets" | "now" | "logger" | "metrics"
  >,
  overrides: ReconcileOverrides = {},
): ReconcileDeps => ({
  backlog: new TranscriptBacklog({ client: deps.doc, tableName: deps.config.conversationsTable }),
  conversations: deps.conversations,
  elevenlabs: createConversationsClient({
    apiKey: () => deps.secrets.get("elevenlabsApiKey"),
    now: deps.now,
    ...(deps.config.elevenlabsApiBaseUrl ? { apiBaseUrl: deps.config.elevenlabsApiBaseUrl } : {}),
    ...(overrides.fetchImpl ? { fetchImpl: overrides.fetchImpl } : {}),
    ...(overrides.timeoutMs ? { timeoutMs: overrides.timeoutMs } : {}),
  }),
  now: deps.now,
  logger: deps.logger,
  metrics: deps.metrics,
});

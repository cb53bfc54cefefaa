import { hashToken } from "../../functions/core/auth.js";
import type { Dependencies } from "../../functions/core/dependencies.js";
import { createDependencies } from "../../functions/core/dependencies.js";
import type { AppMetrics } from "../../functions/core/powertools.js";
import { createDocClient } from "./doc-client.js";
import { captureLogger } from "./log-capture.js";

export const T0 = Date.parse("2026-11-27T10:00:00.000Z");
export const TEN_MIN = 600_000;
export const SERVICE_TOKEN = "service-token-for-tests-0123456789";
export const TOOL_SECRET = "tool-secret-for-tests-0123456789";
export const NOTIFY_SECRET = "notify-secret-for-tests-0123456789";
export const TASK_TOKEN = "task-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/** Counts metrics by name. */
export const captureMetrics = (): AppMetrics & {
  counts: Record<string, number>;
  publishStoredMetrics(): void;
} => {
  const counts: Record<string, number> = {};
  return {
    counts,
    addMetric: (name: string) => {
      counts[name] = (counts[name] ?? 0) + 1;
    },
    publishStoredMetrics: () => undefined,
  } as AppMetrics & { counts: Record<string, number>; publishStoredMetrics(): void };
};

/** Dependencies on a mockable DocumentClient, with a capturing logger and metrics. */
export const testDependencies = (
  overrides: { doc?: ReturnType<typeof createDocClient>; env?: Record<string, string> } = {},
) => {
  const logger = captureLogger();
  const metrics = captureMetrics();
  const deps: Dependencies = createDependencies(
    {
      SESSIONS_TABLE: "sessions",
      CONVERSATIONS_TABLE: "conversations",
      PUBLIC_BASE_URL: "https://api.example.test",
      SERVICE_TOKEN,
      TOOL_SECRET,
      NOTIFY_SIGNING_SECRET: NOTIFY_SECRET,
      // The test dispatchers run no task: tool calls answer at once unless a test opts in.
      TOOL_INLINE_WAIT_MS: "0",
      ...overrides.env,
    },
    { doc: overrides.doc ?? createDocClient(), logger, metrics },
    ["tables", "publicBaseUrl"],
  );
  return { deps, logger, metrics };
};

/** A stored session item as DynamoDB holds it. */
export const sessionItem = (
  conversationId: string,
  createdAtMs = T0,
  extra: Record<string, unknown> = {},
) => ({
  conversationId,
  sessionId: "session-1",
  createdAt: new Date(createdAtMs).toISOString(),
  createdAtMs,
  expiresAtMs: createdAtMs + TEN_MIN,
  expiresAt: Math.ceil((createdAtMs + TEN_MIN) / 1000),
  ttlMs: TEN_MIN,
  ...extra,
});

/** A stored pending task item. */
export const taskItem = (conversationId: string, taskId: string, extra: Record<string, unknown> = {}) => ({
  conversationId,
  sk: `task#${taskId}`,
  taskId,
  toolName: "lookup_order",
  params: { order_id: "A1" },
  status: "pending",
  createdAt: new Date(T0).toISOString(),
  tokenHash: hashToken(TASK_TOKEN),
  ...extra,
});

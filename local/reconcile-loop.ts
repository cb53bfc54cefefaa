import type { AppLogger } from "../functions/core/powertools.js";
import {
  type ConversationResult,
  type PassSummary,
  type ReconcileDeps,
  runReconcilePass,
} from "../functions/core/reconcile.js";
import { createReconcileDependencies } from "../functions/core/reconcile-dependencies.js";
import { createConversationDependencies } from "../functions/core/table-dependencies.js";
import { LOCAL_RECONCILE_INTERVAL_MS } from "./local-env.js";

/** A logger that drops everything: the local runs print their own one line per conversation. */
const silent: AppLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Reconciliation dependencies for a local run, from the same environment the handlers get
 * (`DYNAMODB_ENDPOINT`, table names, `ELEVENLABS_API_KEY`, `ELEVENLABS_API_BASE_URL`), and how
 * to release their DynamoDB client.
 */
export const localReconcileDeps = (
  env: NodeJS.ProcessEnv,
  logger: AppLogger = silent,
): { deps: ReconcileDeps; destroy(): void } => {
  const shared = createConversationDependencies(env, { logger });
  return { deps: createReconcileDependencies(shared), destroy: () => shared.doc.destroy() };
};

/** One line per conversation: outcome, id, and what happens next. */
export const formatResult = (r: ConversationResult): string => {
  const next = r.nextDueAt ? `next try ${r.nextDueAt}` : "";
  const detail = [
    r.lines !== undefined ? `${r.lines} transcript lines and the analysis` : "",
    r.detail ?? "",
    r.attempts > 0 ? `attempt ${r.attempts}` : "",
    next,
  ]
    .filter(Boolean)
    .join(", ");
  return `${r.outcome.padEnd(17)} ${r.conversationId}${detail ? `  ${detail}` : ""}`;
};

/** The pass in one line. */
export const formatSummary = (s: PassSummary): string => {
  const counts = Object.entries(s.counts)
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(", ");
  return [
    `Reconciliation pass: ${s.read} due, ${s.handled} handled${counts ? ` (${counts})` : ""}, ${s.deferred} left for the next pass`,
    s.read > 0 ? `, oldest due ${Math.round(s.backlogAgeMs / 1000)} s ago` : "",
    s.stoppedEarly ? `; stopped early: ${s.stoppedEarly}` : "",
  ].join("");
};

/** A pass every `intervalMs` while the local service runs; never two at once. */
export interface ReconcileLoop {
  /** Stops the timer and waits for a pass in flight. */
  stop(): Promise<void>;
}

/**
 * Runs a pass every `intervalMs` (the first one after one interval), printing one line per
 * conversation it handled and, when it handled any, the summary; a quiet pass prints nothing.
 */
export const startReconcileLoop = (
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
  intervalMs = LOCAL_RECONCILE_INTERVAL_MS,
): ReconcileLoop => {
  const { deps, destroy } = localReconcileDeps(env);
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = runReconcilePass(deps, { budgetMs: Math.min(30_000, intervalMs) })
      .then(
        (summary) => {
          for (const result of summary.results) print(`reconcile: ${formatResult(result)}`);
          if (summary.handled > 0 || summary.stoppedEarly) print(`reconcile: ${formatSummary(summary)}`);
        },
        (error: unknown) =>
          print(`reconcile: the pass failed (${error instanceof Error ? error.message : error})`),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      destroy();
    },
  };
};

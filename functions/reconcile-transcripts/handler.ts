import type { Context } from "aws-lambda";
import { type PassSummary, type ReconcileDeps, runReconcilePass } from "../core/reconcile.js";
import { createReconcileDependencies } from "../core/reconcile-dependencies.js";
import { createConversationDependencies } from "../core/table-dependencies.js";

/** Time kept back from the Lambda timeout for the conversation in flight and the metrics flush. */
const RESERVE_MS = 40_000;
/** No pass starts new work after this long, however long the function may run. */
const MAX_BUDGET_MS = 120_000;

/** What the scheduled invocation returns (visible in the Lambda console and test invokes). */
export type ReconcileResult = Omit<PassSummary, "results">;

/**
 * Run by an EventBridge schedule (every 5 minutes by default): one reconciliation pass over the
 * conversations whose transcript never arrived. The rules live in `core/reconcile.ts`.
 */
export const makeHandler =
  (deps: ReconcileDeps & { metrics: { publishStoredMetrics?(): void } }) =>
  async (_event?: unknown, context?: Pick<Context, "getRemainingTimeInMillis">): Promise<ReconcileResult> => {
    const remaining = context?.getRemainingTimeInMillis() ?? MAX_BUDGET_MS + RESERVE_MS;
    try {
      const { results: _results, ...summary } = await runReconcilePass(deps, {
        budgetMs: Math.max(0, Math.min(MAX_BUDGET_MS, remaining - RESERVE_MS)),
      });
      return summary;
    } finally {
      deps.metrics.publishStoredMetrics?.();
    }
  };

// It writes the conversations table only: no session store.
export const handler = makeHandler(createReconcileDependencies(createConversationDependencies()));

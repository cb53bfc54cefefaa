import { type HttpResponse, json } from "./http.js";
import { OUTCOMES, type OutcomeSpec } from "./outcome-table.js";
import { type AppLogger, type AppMetrics, countOutcome } from "./powertools.js";

export type OutcomeKind = keyof typeof OUTCOMES;

/** What a use case decided: the kind, the response body and the log keys (never secrets). */
export interface Outcome {
  readonly kind: OutcomeKind;
  readonly body: Record<string, unknown>;
  readonly log: Record<string, unknown>;
}

/** Emits the outcome's one log line and one metric, and builds its response. */
export const respond = (outcome: Outcome, logger: AppLogger, metrics: AppMetrics): HttpResponse => {
  const spec: OutcomeSpec = OUTCOMES[outcome.kind];
  logger[spec.level](spec.message, { outcome: outcome.kind, ...outcome.log });
  countOutcome(metrics, spec.metric);
  return json(spec.status, outcome.body);
};

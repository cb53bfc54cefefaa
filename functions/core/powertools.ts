import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { METRICS_NAMESPACE, SERVICE_NAME } from "./service-names.js";

export { type AppLogger, logger } from "./logger.js";

/**
 * The one Metrics instance; handlers publish stored metrics once per invocation. Marked pure so
 * a bundle that imports only `logger` from here (the task runners) leaves Powertools Metrics out:
 * building the instance has no effect until a metric is added.
 */
export const metrics = /* @__PURE__ */ new Metrics({
  serviceName: SERVICE_NAME,
  namespace: METRICS_NAMESPACE,
});

/** The subset of Powertools Metrics the core uses (its return value is not used). */
export interface AppMetrics {
  addMetric(...args: Parameters<Metrics["addMetric"]>): unknown;
}

/** Counts one occurrence of an outcome metric (`SessionRegistered`, `CallbackAfterExpiry`, ...). */
export const countOutcome = (target: AppMetrics, name: string): void => {
  target.addMetric(name, MetricUnit.Count, 1);
};

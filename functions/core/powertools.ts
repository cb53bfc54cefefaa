import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { METRICS_NAMESPACE, SERVICE_NAME } from "./service-names.js";

/**
 * The one Logger of the service: JSON, one line per outcome. Messages are constant
 * sentences and data goes in keys. `logEvent` stays off because events carry secrets.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME, logRecordOrder: ["level", "message"] });

/** The one Metrics instance; handlers publish stored metrics once per invocation. */
export const metrics = new Metrics({ serviceName: SERVICE_NAME, namespace: METRICS_NAMESPACE });

/** The subset of Powertools Logger the core uses, so tests can pass a capturing fake. */
export type AppLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;
/** The subset of Powertools Metrics the core uses (its return value is not used). */
export interface AppMetrics {
  addMetric(...args: Parameters<Metrics["addMetric"]>): unknown;
}

/** Counts one occurrence of an outcome metric (`SessionRegistered`, `CallbackAfterExpiry`, ...). */
export const countOutcome = (target: AppMetrics, name: string): void => {
  target.addMetric(name, MetricUnit.Count, 1);
};

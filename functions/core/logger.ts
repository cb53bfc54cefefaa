import { Logger } from "@aws-lambda-powertools/logger";
import { SERVICE_NAME } from "./service-names.js";

/**
 * The one Logger of the service: JSON, one line per outcome. Messages are constant
 * sentences and data goes in keys. `logEvent` stays off because events carry secrets.
 * Apart from `powertools.ts` (which re-exports it next to Metrics) so that code which emits
 * no metrics, such as the task runners, bundles the Logger without Powertools Metrics.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME, logRecordOrder: ["level", "message"] });

/** The subset of Powertools Logger the core uses, so tests can pass a capturing fake. */
export type AppLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;

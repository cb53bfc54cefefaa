import { RemovalPolicy } from "aws-cdk-lib";
import type { Node } from "constructs";
import { MAX_TOOL_INLINE_WAIT_MS, type SecretName } from "../functions/core/routes.js";
import { SECRET_ENV } from "../functions/core/secret-env.js";
import { MAX_HISTORY_RETENTION_DAYS } from "../functions/core/table-schema.js";

/** The values of the functions' `SESSION_START` (kept equal to `SESSION_START_MODES` in functions/core/config.ts). */
export const SESSION_START_MODES = ["first-tool-call", "app"] as const;
export type SessionStartMode = (typeof SESSION_START_MODES)[number];

/** Deployment settings read from CDK context (`cdk.json` or `-c key=value`). */
export interface AppConfig {
  readonly stage: string;
  readonly sessionsRemovalPolicy: RemovalPolicy;
  /** Steady-state requests per second of the API's default stage (`apiRateLimit`). */
  readonly apiRateLimit: number;
  /** Burst of the API's default stage (`apiBurstLimit`). */
  readonly apiBurstLimit: number;
  /** Public base URL of the API behind a custom domain (`publicBaseUrl`); else the execute-api URL. */
  readonly publicBaseUrl?: string;
  /** Late callbacks per 5 minutes above which the alarm fires (`callbackAfterExpiryAlarmThreshold`). */
  readonly callbackAfterExpiryAlarmThreshold: number;
  /** Where alarm notifications are e-mailed (`alarmEmail`). */
  readonly alarmEmail?: string;
  /** Reserved concurrency of every function (`reservedConcurrency`); none by default. */
  readonly reservedConcurrency?: number;
  /** Session length override for demo stages only (`sessionTtlMs`); never allowed in `prod`. */
  readonly sessionTtlMs?: number;
  /** Powertools log level (`logLevel`). */
  readonly logLevel: LogLevel;
  /** Who starts a session (`sessionStart`): `first-tool-call` (phone agents work) or `app`. */
  readonly sessionStart: SessionStartMode;
  /** Existing Secrets Manager secrets to use instead of creating them (`<secretName>Arn`, complete ARNs). */
  readonly existingSecretArns: Readonly<Partial<Record<SecretName, string>>>;
  /** Deploy the example task runner (`exampleRunner`, default true; `false` when you bring your own). */
  readonly exampleRunner: boolean;
  /** Task messages per runner invocation (`taskRunnerBatchSize`, 1–10, default 5). */
  readonly taskRunnerBatchSize: number;
  /** Most concurrent runner invocations (`taskRunnerMaxConcurrency`, 2–1000, default 10). */
  readonly taskRunnerMaxConcurrency: number;
  /** Minutes between two transcript reconciliation passes (`reconcileIntervalMinutes`). */
  readonly reconcileIntervalMinutes: number;
  /** Grace period before a missing transcript is fetched (`reconcileAfterMs`); the code's 45 minutes by default. */
  readonly reconcileAfterMs?: number;
  /** How long a tool call waits for its task's result (`toolInlineWaitMs`, 0–15 000); the code's default when unset. */
  readonly toolInlineWaitMs?: number;
  /**
   * Days conversation history is kept after a conversation's first write (`historyRetentionDays`,
   * 1 to 3650): the conversations table then gets its TTL on `purgeAt`. Unset: kept until erased.
   */
  readonly historyRetentionDays?: number;
}

/**
 * Every deployment default, written once: `readAppConfig` applies them and the constructs take
 * the values it read. (The sessions table's removal policy defaults by stage: retain in prod.)
 */
export const APP_DEFAULTS = {
  stage: "dev",
  apiRateLimit: 50,
  apiBurstLimit: 100,
  callbackAfterExpiryAlarmThreshold: 20,
  logLevel: "INFO",
  taskRunnerBatchSize: 5,
  taskRunnerMaxConcurrency: 10,
  reconcileIntervalMinutes: 5,
  sessionStart: "first-tool-call",
} as const;

/** Levels Powertools Logger understands. */
export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
const LOG_LEVELS: readonly LogLevel[] = ["DEBUG", "INFO", "WARN", "ERROR"];

const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;
// A complete secret ARN ends in the 6-character suffix Secrets Manager adds, so a grant on it is exact.
const SECRET_ARN_PATTERN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Reads and validates the context once, failing synth with a clear message on bad input.
 * `sessionsTableRemoval` is `destroy` or `retain`; `prod` defaults to `retain`.
 */
export const readAppConfig = (node: Node): AppConfig => {
  const text = (key: string): string | undefined => {
    const value = node.tryGetContext(key);
    return value === undefined || value === null || String(value).trim() === ""
      ? undefined
      : String(value).trim();
  };
  const wholeNumber = (key: string, fallback: number | undefined, min: number, max: number) => {
    const raw = text(key);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`Context "${key}" must be a whole number from ${min} to ${max} (got "${raw}").`);
    }
    return value;
  };

  const stage = text("stage") ?? APP_DEFAULTS.stage;
  if (!STAGE_PATTERN.test(stage)) {
    throw new Error(`Context "stage" must match ${STAGE_PATTERN} (got "${stage}").`);
  }
  const removal = text("sessionsTableRemoval") ?? (stage === "prod" ? "retain" : "destroy");
  if (removal !== "destroy" && removal !== "retain") {
    throw new Error(`Context "sessionsTableRemoval" must be "destroy" or "retain" (got "${removal}").`);
  }

  const publicBaseUrl = text("publicBaseUrl")?.replace(/\/+$/, "");
  if (publicBaseUrl !== undefined && !/^https:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(publicBaseUrl)) {
    throw new Error(`Context "publicBaseUrl" must be an https URL without query (got "${publicBaseUrl}").`);
  }
  const alarmEmail = text("alarmEmail");
  if (alarmEmail !== undefined && !EMAIL_PATTERN.test(alarmEmail)) {
    throw new Error(`Context "alarmEmail" must be an e-mail address (got "${alarmEmail}").`);
  }
  const logLevel = (text("logLevel") ?? APP_DEFAULTS.logLevel).toUpperCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new Error(`Context "logLevel" must be one of ${LOG_LEVELS.join(", ")} (got "${logLevel}").`);
  }
  const sessionStart = (text("sessionStart") ?? APP_DEFAULTS.sessionStart) as SessionStartMode;
  if (!SESSION_START_MODES.includes(sessionStart)) {
    throw new Error(
      `Context "sessionStart" must be one of ${SESSION_START_MODES.join(", ")} (got "${sessionStart}").`,
    );
  }
  const sessionTtlMs = wholeNumber("sessionTtlMs", undefined, 1000, 86_400_000);
  if (sessionTtlMs !== undefined && stage === "prod") {
    throw new Error('Context "sessionTtlMs" is for demo stages only; prod sessions last exactly 10 minutes.');
  }

  const existingSecretArns: Partial<Record<SecretName, string>> = {};
  for (const name of Object.keys(SECRET_ENV) as SecretName[]) {
    const arn = text(`${name}Arn`);
    if (arn === undefined) continue;
    if (!SECRET_ARN_PATTERN.test(arn)) {
      throw new Error(
        `Context "${name}Arn" must be a complete Secrets Manager ARN, ending in the 6-character suffix (got "${arn}").`,
      );
    }
    existingSecretArns[name] = arn;
  }

  const exampleRunner = (text("exampleRunner") ?? "true").toLowerCase();
  if (exampleRunner !== "true" && exampleRunner !== "false") {
    throw new Error(`Context "exampleRunner" must be true or false (got "${exampleRunner}").`);
  }

  const reconcileAfterMs = wholeNumber("reconcileAfterMs", undefined, 0, 7 * 86_400_000);
  const toolInlineWaitMs = wholeNumber("toolInlineWaitMs", undefined, 0, MAX_TOOL_INLINE_WAIT_MS);
  const historyRetentionDays = wholeNumber("historyRetentionDays", undefined, 1, MAX_HISTORY_RETENTION_DAYS);
  const apiRateLimit = wholeNumber("apiRateLimit", APP_DEFAULTS.apiRateLimit, 1, 10_000) as number;
  const apiBurstLimit = wholeNumber("apiBurstLimit", APP_DEFAULTS.apiBurstLimit, 1, 5_000) as number;
  const reservedConcurrency = wholeNumber("reservedConcurrency", undefined, 1, 1000);
  return {
    stage,
    sessionsRemovalPolicy: removal === "retain" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    apiRateLimit,
    apiBurstLimit,
    callbackAfterExpiryAlarmThreshold: wholeNumber(
      "callbackAfterExpiryAlarmThreshold",
      APP_DEFAULTS.callbackAfterExpiryAlarmThreshold,
      0,
      1_000_000,
    ) as number,
    logLevel,
    sessionStart,
    existingSecretArns,
    exampleRunner: exampleRunner === "true",
    taskRunnerBatchSize: wholeNumber(
      "taskRunnerBatchSize",
      APP_DEFAULTS.taskRunnerBatchSize,
      1,
      10,
    ) as number,
    taskRunnerMaxConcurrency: wholeNumber(
      "taskRunnerMaxConcurrency",
      APP_DEFAULTS.taskRunnerMaxConcurrency,
      2,
      1000,
    ) as number,
    // EventBridge rates are whole minutes; a day at most, so a missing transcript never waits longer.
    reconcileIntervalMinutes: wholeNumber(
      "reconcileIntervalMinutes",
      APP_DEFAULTS.reconcileIntervalMinutes,
      1,
      1440,
    ) as number,
    ...(publicBaseUrl !== undefined ? { publicBaseUrl } : {}),
    ...(alarmEmail !== undefined ? { alarmEmail } : {}),
    ...(reservedConcurrency !== undefined ? { reservedConcurrency } : {}),
    ...(sessionTtlMs !== undefined ? { sessionTtlMs } : {}),
    ...(reconcileAfterMs !== undefined ? { reconcileAfterMs } : {}),
    ...(toolInlineWaitMs !== undefined ? { toolInlineWaitMs } : {}),
    ...(historyRetentionDays !== undefined ? { historyRetentionDays } : {}),
  };
};

import { DEFAULT_TOOL_INLINE_WAIT_MS, MAX_TOOL_INLINE_WAIT_MS } from "./inline-wait.js";
import { DEFAULT_SESSION_TTL_MS } from "./session-rules.js";
import { DEFAULT_RECONCILE_AFTER_MS, MAX_HISTORY_RETENTION_DAYS } from "./table-schema.js";

/** Everything a function reads from its environment, read once at cold start. */
export interface Config {
  readonly sessionsTable: string;
  readonly conversationsTable: string;
  /** 600 000 unless `SESSION_TTL_MS` is set (demos and tests only). */
  readonly sessionTtlMs: number;
  /** Public base URL of this API, used to build task callback URLs (`PUBLIC_BASE_URL`). */
  readonly publicBaseUrl: string;
  /** SQS queue for task messages (AWS). */
  readonly taskQueueUrl?: string;
  /** HTTP endpoint of a local task runner (local server). */
  readonly runnerUrl?: string;
  /** SQS queue where unstorable post-call events are parked (AWS). */
  readonly parkingQueueUrl?: string;
  /** Local durable parking directory for unstorable events. */
  readonly parkingDir?: string;
  /** Timeout of the live push to a session's notifyUrl. @default 2000 */
  readonly notifyTimeoutMs: number;
  /**
   * Whether the tool answer carries the callback URL and token. Only for setups without a
   * dispatcher (local demos), because the answer is handed to the LLM and ends up in transcripts.
   */
  readonly exposeCallbackInToolResponse: boolean;
  /** DynamoDB endpoint override (DynamoDB Local). */
  readonly dynamoEndpoint?: string;
  /** ElevenLabs API base URL (`ELEVENLABS_API_BASE_URL`). @default https://api.elevenlabs.io */
  readonly elevenlabsApiBaseUrl?: string;
  /**
   * Grace period after a session window ends before a conversation without a stored transcript
   * is fetched from ElevenLabs (`RECONCILE_AFTER_MS`). @default 2 700 000 (45 minutes)
   */
  readonly reconcileAfterMs: number;
  /**
   * Who starts a conversation's session (`SESSION_START`): `first-tool-call` (default: an
   * authenticated tool call for a conversation that never had a session starts one, so phone
   * agents work without an app) or `app` (only `POST /conversations/{id}/session` does).
   */
  readonly sessionStart: SessionStartMode;
  /**
   * How long a tool call waits for its own task's result before answering `accepted`
   * (`TOOL_INLINE_WAIT_MS`, 0 to 15 000; 0 never waits). Only with a runner to wait for.
   */
  readonly toolInlineWaitMs: number;
  /**
   * Days a conversation's history is kept after its first write (`HISTORY_RETENTION_DAYS`, 1 to
   * 3650). Unset: kept until erased, and items carry no `purgeAt`.
   */
  readonly historyRetentionDays?: number;
}

/** The values of `SESSION_START` (and of the CDK context `sessionStart`). */
export const SESSION_START_MODES = ["first-tool-call", "app"] as const;
export type SessionStartMode = (typeof SESSION_START_MODES)[number];

/** Which variables a function needs; missing ones fail the cold start with a clear message. */
export type ConfigNeed = "tables" | "publicBaseUrl";

/**
 * A bad value as the error shows it: quoted and cut short, so a stray paste stays readable.
 * Only non-secret variables are ever echoed (secrets are read elsewhere and never checked here).
 */
const echo = (value: string | undefined): string => {
  const text = value ?? "";
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
};

/** `HISTORY_RETENTION_DAYS`: undefined when unset or empty, else whole days from 1 to 3650. */
const readRetentionDays = (env: NodeJS.ProcessEnv, problems: string[]): number | undefined => {
  const text = env.HISTORY_RETENTION_DAYS?.trim();
  if (!text) return undefined;
  const days = Number(text);
  if (!/^\d+$/.test(text) || days < 1 || days > MAX_HISTORY_RETENTION_DAYS)
    problems.push(
      `HISTORY_RETENTION_DAYS must be a whole number of days from 1 to ${MAX_HISTORY_RETENTION_DAYS}, or unset to keep history until erased, not ${echo(text)}`,
    );
  return days;
};

/** Thrown at cold start when the environment is incomplete. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads the configuration once. Fails fast, naming every missing or malformed variable, so a
 * bad deploy breaks at cold start instead of on the first caller.
 */
export const loadConfig = (
  env: NodeJS.ProcessEnv = process.env,
  needs: readonly ConfigNeed[] = ["tables"],
): Config => {
  const problems: string[] = [];
  const need = (name: string, when: boolean): string => {
    const value = env[name]?.trim();
    if (when && !value) problems.push(`${name} is not set`);
    return value ?? "";
  };
  const tables = needs.includes("tables");
  const sessionsTable = need("SESSIONS_TABLE", tables);
  const conversationsTable = need("CONVERSATIONS_TABLE", tables);
  const publicBaseUrl = need("PUBLIC_BASE_URL", needs.includes("publicBaseUrl")).replace(/\/+$/, "");
  if (publicBaseUrl && !/^https?:\/\/[^\s]+$/.test(publicBaseUrl))
    problems.push(`PUBLIC_BASE_URL must be an http(s) URL, not ${echo(publicBaseUrl)}`);

  const ttlText = env.SESSION_TTL_MS?.trim();
  const sessionTtlMs = ttlText ? Number(ttlText) : DEFAULT_SESSION_TTL_MS;
  if (!Number.isInteger(sessionTtlMs) || sessionTtlMs <= 0)
    problems.push(`SESSION_TTL_MS must be a positive whole number of ms, not ${echo(ttlText)}`);
  const notifyText = env.NOTIFY_TIMEOUT_MS?.trim();
  const notifyTimeoutMs = notifyText ? Number(notifyText) : 2000;
  if (!Number.isInteger(notifyTimeoutMs) || notifyTimeoutMs <= 0 || notifyTimeoutMs > 10_000) {
    problems.push(`NOTIFY_TIMEOUT_MS must be a whole number from 1 to 10000, not ${echo(notifyText)}`);
  }
  const reconcileText = env.RECONCILE_AFTER_MS?.trim();
  const reconcileAfterMs = reconcileText ? Number(reconcileText) : DEFAULT_RECONCILE_AFTER_MS;
  if (!Number.isInteger(reconcileAfterMs) || reconcileAfterMs < 0 || reconcileAfterMs > 7 * 86_400_000)
    problems.push(
      `RECONCILE_AFTER_MS must be a whole number of ms from 0 to 604800000 (7 days), not ${echo(reconcileText)}`,
    );
  const historyRetentionDays = readRetentionDays(env, problems);
  const elevenlabsApiBaseUrl = env.ELEVENLABS_API_BASE_URL?.trim();
  if (elevenlabsApiBaseUrl && !/^https?:\/\/[^\s]+$/.test(elevenlabsApiBaseUrl))
    problems.push(`ELEVENLABS_API_BASE_URL must be an http(s) URL, not ${echo(elevenlabsApiBaseUrl)}`);
  const sessionStart = (env.SESSION_START?.trim() || "first-tool-call") as SessionStartMode;
  if (!SESSION_START_MODES.includes(sessionStart))
    problems.push(`SESSION_START must be one of ${SESSION_START_MODES.join(", ")}`);
  const waitText = env.TOOL_INLINE_WAIT_MS?.trim();
  const toolInlineWaitMs = waitText ? Number(waitText) : DEFAULT_TOOL_INLINE_WAIT_MS;
  if (
    !Number.isInteger(toolInlineWaitMs) ||
    toolInlineWaitMs < 0 ||
    toolInlineWaitMs > MAX_TOOL_INLINE_WAIT_MS
  )
    problems.push(
      `TOOL_INLINE_WAIT_MS must be a whole number of ms from 0 to ${MAX_TOOL_INLINE_WAIT_MS}, not ${echo(waitText)}`,
    );
  if (problems.length > 0) throw new ConfigError(`Invalid configuration: ${problems.join("; ")}.`);

  const optional = (name: string) => env[name]?.trim() || undefined;
  const taskQueueUrl = optional("TASK_QUEUE_URL");
  const runnerUrl = optional("RUNNER_URL");
  return {
    sessionsTable,
    conversationsTable,
    sessionTtlMs,
    publicBaseUrl,
    notifyTimeoutMs,
    reconcileAfterMs,
    sessionStart,
    toolInlineWaitMs,
    // Never with a task runner, whatever EXPOSE_CALLBACK_IN_TOOL_RESPONSE says: the runner has the
    // token, and a tool answer reaches the LLM and the stored transcript.
    exposeCallbackInToolResponse:
      !taskQueueUrl && !runnerUrl && env.EXPOSE_CALLBACK_IN_TOOL_RESPONSE !== "false",
    ...(taskQueueUrl ? { taskQueueUrl } : {}),
    ...(runnerUrl ? { runnerUrl } : {}),
    ...(optional("PARKING_QUEUE_URL") ? { parkingQueueUrl: optional("PARKING_QUEUE_URL") } : {}),
    ...(optional("PARKING_DIR") ? { parkingDir: optional("PARKING_DIR") } : {}),
    ...(optional("DYNAMODB_ENDPOINT") ? { dynamoEndpoint: optional("DYNAMODB_ENDPOINT") } : {}),
    ...(elevenlabsApiBaseUrl ? { elevenlabsApiBaseUrl } : {}),
    ...(historyRetentionDays !== undefined ? { historyRetentionDays } : {}),
  } as Config;
};

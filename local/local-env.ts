/**
 * The local development environment shared by `npm start`, `npm run demo` and the tests:
 * clearly fake secrets (nobody mistakes them for real ones) and where local data lives.
 */
export const LOCAL_SECRETS = {
  SERVICE_TOKEN: "local-service-token",
  TOOL_SECRET: "local-tool-secret",
  WEBHOOK_SECRET: "local-webhook-secret",
  NOTIFY_SIGNING_SECRET: "local-notify-secret",
  ELEVENLABS_API_KEY: "local-elevenlabs-api-key",
} as const;

export type LocalSecretName = keyof typeof LOCAL_SECRETS;

/** A secret as the local service sees it: the environment wins over the local default. */
export const localSecret = (name: LocalSecretName, env: NodeJS.ProcessEnv = process.env): string =>
  env[name]?.trim() || LOCAL_SECRETS[name];

/** How often `npm start` runs a transcript reconciliation pass (`LOCAL_RECONCILE_INTERVAL_MS`). */
export const LOCAL_RECONCILE_INTERVAL_MS = 60_000;

/** Where `npm start` keeps DynamoDB Local's database and parked events (git-ignored). */
export const DEFAULT_DATA_DIR = ".local-data";

/** What `GET /health` answers on the local server. */
export interface LocalHealth {
  /** `degraded` while DynamoDB Local is not answering (then /health is a 503 and says why). */
  readonly status: "ok" | "starting" | "degraded";
  /** The session window every registration gets (`SESSION_TTL_MS`). */
  readonly sessionTtlMs: number;
  readonly dynamodb: "embedded" | "embedded-in-memory" | "external";
  /**
   * DynamoDB Local right now: `up` (it answered a probe), `unresponsive` (running but no answer
   * within 1 s, e.g. frozen), `restarting` (its process exited; a new one is starting on the same
   * data directory) or `down` (it could not be restarted; `problem` says why).
   */
  readonly dynamodbState?: "up" | "unresponsive" | "restarting" | "down";
  /** What is wrong with DynamoDB Local, in one sentence, when it is not `up`. */
  readonly problem?: string;
  /** How many times DynamoDB Local was restarted after it exited on its own. */
  readonly dynamodbRestarts?: number;
  /** Whether tool answers carry callbackUrl/callbackToken (no task runner configured). */
  readonly callbackInToolResponse: boolean;
  /**
   * Who runs the tool tasks: `npm start`'s in-process example runner, the runner at RUNNER_URL,
   * or nobody (manual mode, `--no-runner`).
   */
  readonly taskRunner?: "in-process" | "runner-url" | "none";
}

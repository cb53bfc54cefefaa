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
  readonly status: "ok" | "starting";
  /** The session window every registration gets (`SESSION_TTL_MS`). */
  readonly sessionTtlMs: number;
  readonly dynamodb: "embedded" | "embedded-in-memory" | "external";
  /** Whether tool answers carry callbackUrl/callbackToken (no task runner configured). */
  readonly callbackInToolResponse: boolean;
}

import { routeNamed } from "../../functions/core/routes.js";

/**
 * The bad-input corpus: requests that must each get a clear JSON error (`{ error, message }`,
 * never a 5xx) and write nothing. Data only; `test/integration/bad-input.test.ts` runs every case
 * through the local server (the same handlers as the Lambdas) on a fresh pair of tables.
 *
 * Placeholders, replaced by the runner in `path`, `query`, header values and string bodies:
 * - `{{conversationId}}`: a conversation with an active session and one pending task;
 * - `{{idleConversationId}}`: a valid id that was never registered;
 * - `{{taskId}}`, `{{taskToken}}`: that task and its per-task token;
 * - `{{otherTaskId}}`, `{{otherTaskToken}}`: a second task of the same conversation;
 * - `{{taskTokenHash}}`: the stored SHA-256 of `{{taskToken}}` (presenting the hash must fail);
 * - `{{serviceToken}}`, `{{toolSecret}}`: the right credentials.
 */

/** Route names of the route table, plus requests that match no route. */
export type CorpusRoute =
  | "register-session"
  | "get-session"
  | "call-tool"
  | "get-task-result"
  | "record-task-result"
  | "post-call-webhook"
  | "get-signed-url"
  | "list-conversations"
  | "get-conversation"
  | "delete-conversation"
  | "no-route";

/** How the runner signs a post-call webhook body (`ElevenLabs-Signature`). */
export interface SignWith {
  /** Sign with the configured secret or another one. @default "right" */
  readonly secret?: "right" | "wrong";
  /** Timestamp = now - ageSeconds (negative: in the future). @default 0 */
  readonly ageSeconds?: number;
  /** Sign these bytes instead of the body sent (a signature replayed onto another body). */
  readonly signedBody?: string;
  /** Rewrites the computed header (`(h) => h.toUpperCase()`...). Data-only alternative: */
  readonly transform?: "uppercase-hex" | "drop-t" | "drop-v0" | "spaces" | "v1-instead-of-v0" | "t-as-ms";
}

export interface CorpusCase {
  /** A sentence: what is wrong with the request. */
  readonly name: string;
  readonly route: CorpusRoute;
  readonly method: string;
  /** Percent-encoded path, with placeholders. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Raw body: exactly these bytes are sent. */
  readonly body?: string | Buffer;
  readonly sign?: SignWith;
  readonly expectStatus: number;
  /** The `error` code of the JSON body, when the case pins it. */
  readonly expectError?: string;
  /**
   * Documented non-4xx outcome: a correctly signed but unusable webhook is acknowledged (200,
   * parked) because ElevenLabs disables webhooks that keep failing. Still nothing is written.
   */
  readonly documented?: string;
  /**
   * A case the code gets wrong today. The runner expects it to fail (`it.fails`), so the suite
   * stays green while the bug is open and turns red the day it is fixed: then drop this field.
   */
  readonly knownBug?: string;
}

/** `Authorization` header with the right service token. */
export const SERVICE_AUTH = { authorization: "Bearer {{serviceToken}}" } as const;
/** The ElevenLabs tool secret header. */
export const TOOL_AUTH = { "x-tool-secret": "{{toolSecret}}" } as const;
/** The per-task bearer token. */
export const TASK_AUTH = { authorization: "Bearer {{taskToken}}" } as const;
export const JSON_TYPE = { "content-type": "application/json" } as const;

/** A body just over a route's limit (from the route table, so the corpus follows it). */
export const overLimit = (route: Exclude<CorpusRoute, "no-route">, padding = 1): number =>
  routeNamed(route).maxBodyBytes + padding;

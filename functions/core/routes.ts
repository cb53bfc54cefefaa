/**
 * The one route table. The CDK stack builds the HTTP API from it and the local server routes
 * with it, so the two cannot drift. Data only (no runtime imports): `lib/` reads it at synth.
 */

/** How a route authenticates its caller. The adapter (`handler.ts`) checks `service` and `tool`. */
export type RouteAuth =
  /** `Authorization: Bearer <service token>`: the app and ops. */
  | "service"
  /** The secret header configured on the ElevenLabs server tool. */
  | "tool"
  /**
   * The per-task bearer token handed to the task runner (only its hash is stored). Checked by the
   * use case (`task-result-api.ts`), which must read the task to know the hash.
   */
  | "task"
  /**
   * `ElevenLabs-Signature` HMAC over the raw body. Checked by the use case (`post-call-api.ts`),
   * which needs the exact raw body and its own replay window.
   */
  | "signature";

/** Secrets a function may read; each maps to one Secrets Manager secret in AWS and one env var locally. */
export type SecretName =
  | "serviceToken"
  | "toolSecret"
  | "webhookSecret"
  | "elevenlabsApiKey"
  | "notifySigningSecret";

/** What a function touches, so the stack grants exactly that and nothing more. */
export interface RouteAccess {
  readonly sessions?: "read" | "write";
  readonly conversations?: "read" | "write";
  /**
   * Starts, reads or records tasks (task items live in the conversations table, so this grants
   * nothing more): only these functions carry the task store (functions/core/dependencies.ts).
   */
  readonly tasks?: boolean;
  /** Sends task messages to the task queue. */
  readonly taskQueue?: boolean;
  /** Parks events it could not store in the parking queue. */
  readonly parkingQueue?: boolean;
  readonly secrets: readonly SecretName[];
}

export interface Route {
  /** One route per method; two routes may share a function (`name`), as the tool routes do. */
  readonly method: "GET" | "POST" | "DELETE";
  /** API Gateway path syntax: `{name}` is a path parameter. */
  readonly path: string;
  /** The Lambda: folder `functions/<name>/handler.ts`. */
  readonly name: string;
  readonly auth: RouteAuth;
  /** Largest accepted body in bytes (413 beyond it). */
  readonly maxBodyBytes: number;
  readonly access: RouteAccess;
  /** Lambda timeout when the default (10 s) is too short. */
  readonly timeoutSeconds?: number;
  /** One line for the README and the function's description. */
  readonly description: string;
}

const KB = 1024;

/**
 * How long the tool route waits for its own task's result when `TOOL_INLINE_WAIT_MS` is unset
 * (see functions/core/inline-wait.ts and the README's "Quick tasks answer inline").
 */
export const DEFAULT_TOOL_INLINE_WAIT_MS = 1_500;

/**
 * The most a tool call may wait: ElevenLabs gives a tool 20 s by default (`response_timeout_secs`)
 * and API Gateway cuts a request at 30 s; the call-tool function's timeout is set above it.
 */
export const MAX_TOOL_INLINE_WAIT_MS = 15_000;

/** The tool routes answer POST (JSON body) and GET (query parameters) alike: one function each. */
const GET_TASK_RESULT = {
  name: "get-task-result",
  auth: "tool",
  maxBodyBytes: 16 * KB,
  access: { sessions: "read", conversations: "read", tasks: true, secrets: ["toolSecret"] },
  description: "ElevenLabs tool: the conversation's task results while its session is active",
} as const;

const CALL_TOOL = {
  name: "call-tool",
  auth: "tool",
  maxBodyBytes: 16 * KB,
  // sessions write: the first tool call of a conversation that never had a session starts one.
  access: {
    sessions: "write",
    conversations: "write",
    tasks: true,
    taskQueue: true,
    secrets: ["toolSecret"],
  },
  description: "ElevenLabs server tool: records and dispatches an async task while the session is active",
} as const;

const ROUTE_TABLE = [
  {
    method: "POST",
    path: "/conversations/{conversationId}/session",
    name: "register-session",
    auth: "service",
    maxBodyBytes: 8 * KB,
    access: { sessions: "write", conversations: "write", secrets: ["serviceToken"] },
    description: "Registers or refreshes a conversation's 10-minute session",
  },
  {
    method: "GET",
    path: "/conversations/{conversationId}/session",
    name: "get-session",
    auth: "service",
    maxBodyBytes: 0,
    access: { sessions: "read", conversations: "read", secrets: ["serviceToken"] },
    description: "Reads a session: active, expired (410) or not found (404)",
  },
  {
    method: "POST",
    path: "/tools/get_task_result",
    ...GET_TASK_RESULT,
  },
  {
    // ElevenLabs' default tool method: the parameters come as query parameters (strings).
    method: "GET",
    path: "/tools/get_task_result",
    ...GET_TASK_RESULT,
  },
  {
    method: "POST",
    path: "/tools/{toolName}",
    ...CALL_TOOL,
  },
  {
    method: "GET",
    path: "/tools/{toolName}",
    ...CALL_TOOL,
  },
  {
    method: "POST",
    path: "/conversations/{conversationId}/tasks/{taskId}/result",
    name: "record-task-result",
    auth: "task",
    maxBodyBytes: 64 * KB,
    access: { sessions: "read", conversations: "write", tasks: true, secrets: ["notifySigningSecret"] },
    description: "Task runner callback: stores the result, pushes it live or reports session_expired",
  },
  {
    method: "POST",
    path: "/webhooks/elevenlabs/post-call",
    name: "post-call-webhook",
    auth: "signature",
    // Long transcripts arrive in one body; API Gateway and Lambda cap requests at about 6 MB.
    maxBodyBytes: 4 * 1024 * KB,
    // sessions: the end of the call ends the conversation's session.
    access: { sessions: "write", conversations: "write", parkingQueue: true, secrets: ["webhookSecret"] },
    // Storing a long transcript (batched writes with retries) and, if that fails, parking it must
    // finish before ElevenLabs gives up; 10 s could cut the parking step short.
    timeoutSeconds: 30,
    description: "ElevenLabs post-call webhook: stores transcript and analysis idempotently",
  },
  {
    method: "GET",
    path: "/signed-url",
    name: "get-signed-url",
    auth: "service",
    maxBodyBytes: 0,
    access: { secrets: ["serviceToken", "elevenlabsApiKey"] },
    description: "Returns an ElevenLabs signed conversation URL; the API key stays server-side",
  },
  {
    method: "GET",
    path: "/conversations",
    name: "list-conversations",
    auth: "service",
    maxBodyBytes: 0,
    access: { conversations: "read", secrets: ["serviceToken"] },
    description: "Lists conversations, newest first, paginated",
  },
  {
    method: "GET",
    path: "/conversations/{conversationId}",
    name: "get-conversation",
    auth: "service",
    maxBodyBytes: 0,
    access: { conversations: "read", secrets: ["serviceToken"] },
    description: "A conversation's history: meta, messages in order, tasks with outcomes",
  },
  {
    method: "DELETE",
    path: "/conversations/{conversationId}",
    name: "delete-conversation",
    auth: "service",
    maxBodyBytes: 0,
    // Erasure deletes through BatchWriteItem (DeleteRequest), which IAM authorizes as BatchWriteItem.
    access: { sessions: "write", conversations: "write", secrets: ["serviceToken"] },
    description: "Erases a conversation: ends its session, deletes meta, history lines and tasks",
  },
] as const satisfies readonly Route[];

/** Every route's name: a compile-time union, so a misspelled name in `createHttpHandler` fails `tsc`. */
export type RouteName = (typeof ROUTE_TABLE)[number]["name"];

/** The route table, each route with its optional fields visible and its name from the union. */
export const ROUTES: readonly (Route & { readonly name: RouteName })[] = ROUTE_TABLE;

/** The route of a function by name; throws on a typo so wiring mistakes fail at start. */
export const routeNamed = (name: string): Route => {
  const route: Route | undefined = ROUTES.find((r) => r.name === name);
  if (!route) throw new Error(`No route is named ${name}`);
  return route;
};

/**
 * Per-route parts of the OpenAPI document (`openapi.ts`): what the route table does not say about
 * a route, its inputs and its own answers, with the JSON Schema helpers they are written with.
 * Not imported by any Lambda.
 */
import * as z from "zod/mini";
import { ID_MAX_LENGTH, ID_PATTERN } from "./ids.js";
import { envelopeSchema } from "./post-call-payload.js";
import { sessionInputSchema } from "./session-input.js";
import { resultBodySchema } from "./task-result-api.js";
import { pollBodySchema, toolBodySchema } from "./tool-api.js";
export type JsonSchema = Record<string, unknown>;

/** A request schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), from what the parser accepts. */
export const fromZod = (schema: z.ZodMiniType): JsonSchema => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return rest;
};

/** One documented answer of a route besides the common errors. */
export interface Answer {
  readonly status: number;
  readonly description: string;
  readonly schema: JsonSchema;
}

/** What the route table does not say about a route: its inputs and its own answers. */
export interface RouteDoc {
  readonly body?: JsonSchema;
  /** An empty body is accepted (as `{}`). */
  readonly bodyOptional?: boolean;
  readonly query?: readonly { name: string; required: boolean; schema: JsonSchema; description: string }[];
  /** 400 codes besides `invalid_request`/`invalid_json`, e.g. `invalid_conversation_id`. */
  readonly badRequestCodes: readonly string[];
  readonly answers: readonly Answer[];
}

export const idSchema: JsonSchema = { type: "string", pattern: ID_PATTERN.source, maxLength: ID_MAX_LENGTH };
export const timestamp: JsonSchema = { type: "string", format: "date-time" };
export const object = (
  properties: Record<string, JsonSchema>,
  required: readonly string[] = [],
): JsonSchema => ({
  type: "object",
  properties,
  ...(required.length > 0 ? { required } : {}),
});

/** The error body every failure shares; `codes` are the values of `error` this answer can carry. */
export const errorSchema = (
  codes: readonly string[],
  extra: Record<string, JsonSchema> = {},
): JsonSchema => ({
  type: "object",
  properties: {
    error: { type: "string", enum: [...codes] },
    message: { type: "string", description: "A sentence for a person; never a stack trace." },
    details: {
      type: "array",
      items: { type: "string" },
      description: "Bad input only: where the input was wrong, e.g. `body.notifyUrl must be a valid url`.",
    },
    ...extra,
  },
  required: ["error", "message"],
});

const session = object(
  {
    conversationId: idSchema,
    sessionId: { type: "string" },
    createdAt: timestamp,
    expiresAt: timestamp,
    ttlSeconds: { type: "number" },
    agentId: idSchema,
    notifyUrl: { type: "string", format: "uri" },
    metadata: { type: "object" },
  },
  ["conversationId", "sessionId", "createdAt", "expiresAt", "ttlSeconds"],
);

/** What the agent hears when the session is not live: a 200, so the LLM relays the message. */
const notLive = object(
  { status: { type: "string", enum: ["session_expired", "session_not_found"] }, message: { type: "string" } },
  ["status", "message"],
);

const historyPaging = [
  {
    name: "limit",
    required: false,
    schema: { type: "integer", minimum: 1, maximum: 100, default: 50 },
    description: "Page size.",
  },
  {
    name: "cursor",
    required: false,
    schema: { type: "string", maxLength: 1024 },
    description: "`nextCursor` of the previous page (opaque).",
  },
] as const;

export const DOCS: Readonly<Record<string, RouteDoc>> = {
  "register-session": {
    body: fromZod(sessionInputSchema()),
    bodyOptional: true,
    badRequestCodes: ["invalid_conversation_id", "invalid_agent_id"],
    answers: [{ status: 201, description: "Registered: a new window starts now.", schema: session }],
  },
  "get-session": {
    badRequestCodes: ["invalid_conversation_id"],
    answers: [
      {
        status: 200,
        description: "Active.",
        schema: {
          allOf: [
            session,
            object({ status: { const: "active" }, remainingMs: { type: "integer" } }, [
              "status",
              "remainingMs",
            ]),
          ],
        },
      },
      {
        status: 404,
        description: "No session was ever registered for this conversation.",
        schema: errorSchema(["session_not_found"], { conversationId: idSchema }),
      },
      {
        status: 410,
        description:
          "The session is over: it timed out, the call ended, it was replaced or deleted (`reason`).",
        schema: errorSchema(["session_expired"], {
          conversationId: idSchema,
          expiredAt: timestamp,
          expiredForMs: { type: "integer" },
          reason: { type: "string", enum: ["timed_out", "call_ended", "replaced", "deleted"] },
        }),
      },
    ],
  },
  "get-task-result": {
    body: fromZod(pollBodySchema()),
    badRequestCodes: [],
    answers: [
      {
        status: 200,
        description: "The conversation's tasks while its session is active, else why not (`status`).",
        schema: {
          oneOf: [
            object(
              {
                status: { const: "active" },
                message: { type: "string" },
                tasks: {
                  type: "array",
                  items: object(
                    {
                      taskId: { type: "string" },
                      toolName: { type: "string" },
                      status: { type: "string", enum: ["pending", "completed"] },
                      result: {},
                      completedAt: timestamp,
                    },
                    ["taskId", "toolName", "status"],
                  ),
                },
              },
              ["status", "tasks", "message"],
            ),
            notLive,
          ],
        },
      },
    ],
  },
  "call-tool": {
    body: {
      ...fromZod(toolBodySchema()),
      description:
        "The tool's own parameters, flat, plus `conversation_id` (from `system__conversation_id`). `{conversation_id, parameters: {...}}` is accepted too.",
    },
    badRequestCodes: ["invalid_tool_name"],
    answers: [
      {
        status: 200,
        description:
          "`completed` with the task's result when it finished within `TOOL_INLINE_WAIT_MS`, else `accepted` (task recorded and dispatched), or why nothing was started (`status`). `callbackUrl`/`callbackToken` only when no task runner is configured (local).",
        schema: {
          oneOf: [
            object(
              {
                status: { const: "completed" },
                taskId: { type: "string" },
                result: {
                  description:
                    "What the runner reported: `{status: succeeded, result}` or `{status: failed, error}`.",
                },
                message: { type: "string" },
              },
              ["status", "taskId", "result", "message"],
            ),
            object(
              {
                status: { const: "accepted" },
                taskId: { type: "string" },
                message: { type: "string" },
                callbackUrl: { type: "string", format: "uri" },
                callbackToken: { type: "string" },
              },
              ["status", "taskId", "message"],
            ),
            notLive,
          ],
        },
      },
    ],
  },
  "record-task-result": {
    body: fromZod(resultBodySchema()),
    badRequestCodes: ["invalid_conversation_id", "invalid_task_id"],
    answers: [
      {
        status: 200,
        description:
          "Stored exactly once. `delivered` while the session is live, `session_expired` after it (the result is kept); a repeat answers the first outcome with `duplicate: true`.",
        schema: object(
          {
            outcome: { type: "string", enum: ["delivered", "delivery_failed", "session_expired"] },
            taskId: { type: "string" },
            pushed: { type: "boolean" },
            duplicate: { type: "boolean" },
            expiredAt: timestamp,
            expiredForMs: { type: "integer" },
            message: { type: "string" },
          },
          ["outcome", "taskId"],
        ),
      },
      {
        status: 404,
        description: "No such task in this conversation.",
        schema: errorSchema(["task_not_found"]),
      },
    ],
  },
  "post-call-webhook": {
    body: {
      ...fromZod(envelopeSchema()),
      description:
        "An ElevenLabs post-call event. `data` is read per `type`: `post_call_transcription` and `call_initiation_failure` are stored, other types acknowledged.",
    },
    badRequestCodes: [],
    answers: [
      {
        status: 200,
        description:
          "Acknowledged: stored, ignored, or parked for replay. A correctly signed event is never answered 4xx.",
        schema: object({ status: { type: "string" } }),
      },
    ],
  },
  "get-signed-url": {
    query: [{ name: "agentId", required: true, schema: idSchema, description: "The ElevenLabs agent id." }],
    badRequestCodes: ["invalid_agent_id"],
    answers: [
      {
        status: 200,
        description: "A signed conversation URL, valid for 15 minutes.",
        schema: object({ signedUrl: { type: "string" }, expiresAt: timestamp, agentId: idSchema }, [
          "signedUrl",
          "expiresAt",
          "agentId",
        ]),
      },
      {
        status: 502,
        description: "ElevenLabs refused the API key or the agent, or answered without a URL.",
        schema: errorSchema(["upstream_auth_failed", "upstream_rejected", "upstream_invalid_response"], {
          upstreamStatus: { type: "integer" },
        }),
      },
    ],
  },
  "list-conversations": {
    query: historyPaging,
    badRequestCodes: ["invalid_limit", "invalid_cursor"],
    answers: [
      {
        status: 200,
        description: "Conversations, newest first.",
        schema: object(
          { conversations: { type: "array", items: { type: "object" } }, nextCursor: { type: "string" } },
          ["conversations"],
        ),
      },
    ],
  },
  "get-conversation": {
    query: historyPaging,
    badRequestCodes: ["invalid_conversation_id", "invalid_limit", "invalid_cursor"],
    answers: [
      {
        status: 200,
        description: "Meta, session windows, one page of messages in history order, and every task.",
        schema: object(
          {
            meta: { type: "object" },
            sessions: { type: "array", items: { type: "object" } },
            messages: { type: "array", items: { type: "object" } },
            tasks: { type: "array", items: { type: "object" } },
            nextCursor: { type: "string" },
          },
          ["meta", "sessions", "messages", "tasks"],
        ),
      },
      {
        status: 404,
        description: "No history exists for this conversation.",
        schema: errorSchema(["conversation_not_found"]),
      },
    ],
  },
  "delete-conversation": {
    badRequestCodes: ["invalid_conversation_id"],
    answers: [
      {
        status: 200,
        description:
          "Erased (idempotent: again, or for a conversation never seen, itemsDeleted is 0). The session is ended first.",
        schema: object(
          {
            conversationId: { type: "string" },
            erased: { const: true },
            itemsDeleted: { type: "integer", minimum: 0 },
            erasedAt: { type: "string", format: "date-time" },
          },
          ["conversationId", "erased", "itemsDeleted", "erasedAt"],
        ),
      },
    ],
  },
};

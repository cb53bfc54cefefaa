/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the route table and the request
 * schemas the handlers validate with, so it cannot describe an API that does not exist.
 * `npm run openapi` writes it to `openapi.json`; the local server serves it at `/openapi.json`.
 * Not imported by any Lambda (it would only add bundle weight).
 */
import * as z from "zod/mini";
import { TOOL_SECRET_HEADER } from "./auth.js";
import { ID_MAX_LENGTH, ID_PATTERN } from "./ids.js";
import { envelopeSchema, initiationFailureSchema, transcriptionSchema } from "./post-call-payload.js";
import { ROUTES, type Route, type RouteAuth } from "./routes.js";
import { sessionInputSchema } from "./session-input.js";
import { resultBodySchema } from "./task-result-api.js";
import { pollBodySchema, toolBodySchema } from "./tool-api.js";
import { SIGNATURE_HEADER } from "./webhook-signature.js";

type JsonSchema = Record<string, unknown>;

/** A request schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), from what the parser accepts. */
const fromZod = (schema: z.ZodMiniType): JsonSchema => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return rest;
};

/** The security scheme of each kind of route auth (components.securitySchemes). */
const SECURITY_SCHEMES: Readonly<Record<RouteAuth, { name: string; scheme: JsonSchema }>> = {
  service: {
    name: "serviceToken",
    scheme: {
      type: "http",
      scheme: "bearer",
      description: "`Authorization: Bearer <service token>` (the `service-token` secret): the app and ops.",
    },
  },
  tool: {
    name: "toolSecret",
    scheme: {
      type: "apiKey",
      in: "header",
      name: "X-Tool-Secret",
      description: "The `tool-secret` secret, set on each ElevenLabs server tool as a secret request header.",
    },
  },
  task: {
    name: "taskToken",
    scheme: {
      type: "http",
      scheme: "bearer",
      description:
        "`Authorization: Bearer <callbackToken>`: the per-task token handed to the task runner with the callback URL.",
    },
  },
  signature: {
    name: "elevenLabsSignature",
    scheme: {
      type: "apiKey",
      in: "header",
      name: "ElevenLabs-Signature",
      description:
        '`t=<unix seconds>,v0=<hex HMAC-SHA256(webhook secret, "<t>.<raw body>")>`, at most 30 minutes old and 5 minutes ahead.',
    },
  },
};

/** One documented answer of a route besides the common errors. */
interface Answer {
  readonly status: number;
  readonly description: string;
  readonly schema: JsonSchema;
}

/** What the route table does not say about a route: its inputs and its own answers. */
interface RouteDoc {
  readonly body?: JsonSchema;
  /** An empty body is accepted (as `{}`). */
  readonly bodyOptional?: boolean;
  readonly query?: readonly { name: string; required: boolean; schema: JsonSchema; description: string }[];
  /** 400 codes besides `invalid_request`/`invalid_json`, e.g. `invalid_conversation_id`. */
  readonly badRequestCodes: readonly string[];
  readonly answers: readonly Answer[];
}

const idSchema: JsonSchema = { type: "string", pattern: ID_PATTERN.source, maxLength: ID_MAX_LENGTH };
const timestamp: JsonSchema = { type: "string", format: "date-time" };
const object = (properties: Record<string, JsonSchema>, required: readonly string[] = []): JsonSchema => ({
  type: "object",
  properties,
  ...(required.length > 0 ? { required } : {}),
});

/** The error body every failure shares; `codes` are the values of `error` this answer can carry. */
const errorSchema = (codes: readonly string[], extra: Record<string, JsonSchema> = {}): JsonSchema => ({
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

const DOCS: Readonly<Record<string, RouteDoc>> = {
  "register-session": {
    body: fromZod(sessionInputSchema),
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
        description: "The session expired.",
        schema: errorSchema(["session_expired"], {
          conversationId: idSchema,
          expiredAt: timestamp,
          expiredForMs: { type: "integer" },
        }),
      },
    ],
  },
  "get-task-result": {
    body: fromZod(pollBodySchema),
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
      ...fromZod(toolBodySchema),
      description:
        "The tool's own parameters, flat, plus `conversation_id` (from `system__conversation_id`). `{conversation_id, parameters: {...}}` is accepted too.",
    },
    badRequestCodes: ["invalid_tool_name"],
    answers: [
      {
        status: 200,
        description:
          "`accepted` (task recorded and dispatched), or why nothing was started (`status`). `callbackUrl`/`callbackToken` only when no task runner is configured (local).",
        schema: {
          oneOf: [
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
    body: fromZod(resultBodySchema),
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
      ...fromZod(envelopeSchema),
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
};

/** What a route's 401 says to send. */
const EXPECTED_CREDENTIAL: Readonly<Record<RouteAuth, string>> = {
  service: "Authorization: Bearer <service token>",
  tool: `${TOOL_SECRET_HEADER} header`,
  task: "Authorization: Bearer <callbackToken>",
  signature: `${SIGNATURE_HEADER} header`,
};

const jsonContent = (schema: JsonSchema) => ({ "application/json": { schema } });

/** Every answer of a route: its own, then the failures every route of its kind can give. */
const responsesOf = (route: Route, doc: RouteDoc): Record<string, unknown> => {
  const responses: Record<string, unknown> = {};
  for (const answer of doc.answers) {
    responses[String(answer.status)] = {
      description: answer.description,
      content: jsonContent(answer.schema),
    };
  }
  const hasBody = route.maxBodyBytes > 0;
  const badRequest = [...(hasBody ? ["invalid_request", "invalid_json"] : []), ...doc.badRequestCodes];
  if (badRequest.length > 0 && route.auth !== "signature") {
    responses["400"] = {
      description: "Bad input; nothing was written.",
      content: jsonContent(errorSchema(badRequest)),
    };
  }
  responses["401"] =
    route.auth === "signature"
      ? {
          description: "Missing, expired or wrong signature; nothing was stored.",
          content: jsonContent(errorSchema(["invalid_signature"])),
        }
      : {
          description: `Missing or wrong credentials (${EXPECTED_CREDENTIAL[route.auth]}).`,
          content: jsonContent(errorSchema(["unauthorized"])),
        };
  if (hasBody) {
    responses["413"] = {
      description: `The body is larger than ${route.maxBodyBytes} bytes.`,
      content: jsonContent(errorSchema(["payload_too_large"])),
    };
  }
  responses["500"] = {
    description: "Unexpected error (logged); retry.",
    content: jsonContent(errorSchema(["internal_error"])),
  };
  responses["503"] = {
    description: "A dependency throttled or timed out; retry after `Retry-After` seconds.",
    headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds to wait." } },
    content: jsonContent(errorSchema(["service_unavailable"])),
  };
  return responses;
};

const pathParametersOf = (path: string) =>
  [...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    schema: idSchema,
  }));

/** The description of a route that has no {@link DOCS} entry: throws, so a new route cannot go undocumented. */
const docOf = (route: Route): RouteDoc => {
  const doc = DOCS[route.name];
  if (!doc) throw new Error(`Route ${route.name} has no OpenAPI description in functions/core/openapi.ts`);
  return doc;
};

/**
 * The OpenAPI 3.1 document of the route table. `serverUrl` is where the API is served (the
 * `ApiUrl` output, or the local server).
 */
export const openApiDocument = (
  serverUrl = "http://127.0.0.1:3000",
  routes: readonly Route[] = ROUTES,
): Record<string, unknown> => {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const doc = docOf(route);
    const security = SECURITY_SCHEMES[route.auth].name;
    const parameters = [
      ...pathParametersOf(route.path),
      ...(doc.query ?? []).map((q) => ({ in: "query", ...q })),
    ];
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = {
      operationId: route.name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
      summary: route.description,
      security: [{ [security]: [] }],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(doc.body ? { requestBody: { required: !doc.bodyOptional, content: jsonContent(doc.body) } } : {}),
      responses: responsesOf(route, doc),
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "elevenlabs-agent sessions",
      version: "1",
      description:
        "Sessions that expire exactly 10 minutes after registration, async task callbacks, conversation history and ElevenLabs post-call webhooks. Errors are `{error, message, details?}`. Generated by `npm run openapi` from functions/core/routes.ts and the request schemas.",
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      securitySchemes: Object.fromEntries(Object.values(SECURITY_SCHEMES).map((s) => [s.name, s.scheme])),
      schemas: {
        PostCallTranscriptionData: fromZod(transcriptionSchema),
        CallInitiationFailureData: fromZod(initiationFailureSchema),
      },
    },
  };
};

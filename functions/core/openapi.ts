/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the route table and the request
 * schemas the handlers validate with, so it cannot describe an API that does not exist.
 * `npm run openapi` writes it to `openapi.json`; the local server serves it at `/openapi.json`.
 * Per-route inputs and answers live in `openapi-routes.ts`. Not imported by any Lambda.
 */
import { TOOL_SECRET_HEADER } from "./auth.js";
import { DOCS, errorSchema, fromZod, idSchema, type JsonSchema, type RouteDoc } from "./openapi-routes.js";
import { initiationFailureSchema, transcriptionSchema } from "./post-call-payload.js";
import { ROUTES, type Route, type RouteAuth } from "./routes.js";
import { SIGNATURE_HEADER } from "./webhook-signature.js";

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

/** The query of a GET tool call: `conversation_id` plus the tool's own parameters, all strings. */
const TOOL_QUERY = [
  {
    in: "query",
    name: "conversation_id",
    required: true,
    description: "From the dynamic variable system__conversation_id.",
    schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
  },
  {
    in: "query",
    name: "params",
    required: false,
    description:
      "The tool's own parameters as query strings (values are strings; API Gateway comma-joins a repeated one).",
    style: "form",
    explode: true,
    schema: { type: "object", additionalProperties: { type: "string" } },
  },
];

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
    // A tool route's GET form (ElevenLabs' default tool method): the body's fields as query
    // strings, so every value arrives as a string (a repeated one comma-joined by API Gateway).
    const toolGet = route.method === "GET" && route.auth === "tool";
    const parameters = [
      ...pathParametersOf(route.path),
      ...(doc.query ?? []).map((q) => ({ in: "query", ...q })),
      ...(toolGet ? TOOL_QUERY : []),
    ];
    const sharesName = routes.some((r) => r !== route && r.name === route.name);
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = {
      operationId:
        route.name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) +
        (sharesName && route.method === "GET" ? "ViaGet" : ""),
      summary: route.description,
      security: [{ [security]: [] }],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(doc.body && !toolGet
        ? { requestBody: { required: !doc.bodyOptional, content: jsonContent(doc.body) } }
        : {}),
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
        PostCallTranscriptionData: fromZod(transcriptionSchema()),
        CallInitiationFailureData: fromZod(initiationFailureSchema()),
      },
    },
  };
};

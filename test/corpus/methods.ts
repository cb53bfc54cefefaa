import type { CorpusCase } from "./types.js";

/** Every route path with a method it does not accept, and paths that match no route. */
const PATHS: readonly [string, string, readonly string[]][] = [
  [
    "register-session / get-session",
    "/conversations/{{conversationId}}/session",
    ["PUT", "DELETE", "PATCH", "OPTIONS"],
  ],
  ["call-tool", "/tools/lookup_order", ["PUT", "DELETE", "PATCH"]],
  ["get-task-result", "/tools/get_task_result", ["PUT", "DELETE"]],
  [
    "record-task-result",
    "/conversations/{{conversationId}}/tasks/{{taskId}}/result",
    ["GET", "PUT", "DELETE", "PATCH"],
  ],
  ["post-call-webhook", "/webhooks/elevenlabs/post-call", ["GET", "PUT", "DELETE"]],
  ["get-signed-url", "/signed-url?agentId=agent_1", ["POST", "PUT", "DELETE"]],
  ["list-conversations", "/conversations", ["POST", "PUT", "DELETE"]],
  ["get-conversation", "/conversations/{{conversationId}}", ["POST", "PUT", "PATCH"]],
];

export const WRONG_METHODS: readonly CorpusCase[] = PATHS.flatMap(([label, path, methods]) =>
  methods.map((method) => ({
    route: "no-route" as const,
    method,
    path,
    name: `${label}: ${method} is not allowed`,
    headers: { authorization: "Bearer {{serviceToken}}", "content-type": "application/json" },
    ...(method === "GET" || method === "OPTIONS" ? {} : { body: "{}" }),
    expectStatus: 405,
    expectError: "method_not_allowed",
  })),
);

export const UNKNOWN_PATHS: readonly CorpusCase[] = [
  "/",
  "/conversations/{{conversationId}}/session/extra",
  "/conversations//session",
  "/conversations/{{conversationId}}/tasks",
  "/conversations/{{conversationId}}/tasks/{{taskId}}",
  "/conversations/{{conversationId}}/tasks//result",
  "/tools",
  "/tools/a/b",
  "/webhooks/elevenlabs",
  "/webhooks/elevenlabs/post-call/x",
  "/admin",
  "/.env",
  "/%2e%2e/%2e%2e/etc/passwd",
  "/conversations/../../etc/passwd",
].map((path) => ({
  route: "no-route" as const,
  method: "GET",
  path,
  name: `no route: GET ${path}`,
  headers: { authorization: "Bearer {{serviceToken}}" },
  expectStatus: 404,
  expectError: "route_not_found",
}));

/** Path segments that are not valid percent-encoding: decoding them must be a 400, not a crash. */
export const BROKEN_ENCODING: readonly CorpusCase[] = [
  ["register-session", "POST", "/conversations/%ZZ/session"],
  ["get-session", "GET", "/conversations/%E0%A4%A/session"],
  ["get-session", "GET", "/conversations/%ED%A0%80/session"],
  ["call-tool", "POST", "/tools/%C0%AF"],
  ["record-task-result", "POST", "/conversations/{{conversationId}}/tasks/%/result"],
  ["get-conversation", "GET", "/conversations/%FF%FE"],
].map(([route, method, path]) => ({
  route: route as CorpusCase["route"],
  method: method as string,
  path: path as string,
  name: `${route}: broken percent-encoding in ${path}`,
  headers: {
    authorization: "Bearer {{serviceToken}}",
    "x-tool-secret": "{{toolSecret}}",
    "content-type": "application/json",
  },
  ...(method === "POST" ? { body: '{"conversation_id":"{{conversationId}}"}' } : {}),
  expectStatus: 400,
}));

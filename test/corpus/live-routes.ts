import { HOSTILE_IDS, MALFORMED_JSON, NON_OBJECT_JSON, segment } from "./strings.js";
import { type CorpusCase, JSON_TYPE, overLimit, SERVICE_AUTH, TASK_AUTH, TOOL_AUTH } from "./types.js";

/** What a hostile id in a path segment gets: 404 when the URL itself normalizes it away. */
const pathIdStatus = (id: string): number => (id === ".." || id === "." ? 404 : 400);

const KB = 1024;
const pad = (bytes: number) => JSON.stringify({ result: "x".repeat(bytes) });

// ---------------------------------------------------------------------------------------------
// POST /conversations/{conversationId}/session (service token, 8 KB)
// ---------------------------------------------------------------------------------------------
const register = (id = "{{idleConversationId}}"): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "register-session",
  method: "POST",
  path: `/conversations/${id}/session`,
});

export const REGISTER_SESSION: readonly CorpusCase[] = [
  ...HOSTILE_IDS.map((id) => ({
    ...register(segment(id)),
    name: `register-session: conversationId ${JSON.stringify(id.slice(0, 40))}`,
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body: "{}",
    expectStatus: pathIdStatus(id),
  })),
  ...MALFORMED_JSON.map((body) => ({
    ...register(),
    name: `register-session: malformed JSON ${JSON.stringify(body.slice(0, 20))}`,
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
    expectError: "invalid_json",
  })),
  ...NON_OBJECT_JSON.map((body) => ({
    ...register(),
    name: `register-session: non-object JSON ${body}`,
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
  })),
  ...(
    [
      ["agentId is a number", { agentId: 42 }],
      ["agentId has injection characters", { agentId: "agent' OR 1=1" }],
      ["agentId is unicode", { agentId: "агент" }],
      ["notifyUrl is not a URL", { notifyUrl: "not a url" }],
      ["notifyUrl uses javascript:", { notifyUrl: "javascript:alert(1)" }],
      ["notifyUrl uses ftp:", { notifyUrl: "ftp://example.test/x" }],
      ["notifyUrl uses file:", { notifyUrl: "file:///etc/passwd" }],
      [
        "notifyUrl is longer than 2 048 characters",
        { notifyUrl: `https://example.test/${"a".repeat(2100)}` },
      ],
      ["notifyUrl is an object", { notifyUrl: { href: "https://example.test" } }],
      ["metadata is an array", { metadata: [1, 2] }],
      ["metadata is a string", { metadata: "x" }],
      ["metadata has a nested object", { metadata: { a: { b: 1 } } }],
      ["metadata has a null value", { metadata: { a: null } }],
      [
        "metadata has more than 20 keys",
        { metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])) },
      ],
      ["metadata has a value over 512 characters", { metadata: { a: "x".repeat(513) } }],
      ["metadata has a key over 64 characters", { metadata: { ["k".repeat(65)]: 1 } }],
      [
        "metadata is over 2 KB",
        { metadata: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, "x".repeat(300)])) },
      ],
      ["an unknown field", { agentId: "a1", admin: true }],
      ["a __proto__ field", JSON.parse('{"__proto__":{"admin":true}}') as object],
      ["a constructor field", { constructor: { prototype: { admin: true } } }],
    ] as const
  ).map(([what, body]) => ({
    ...register(),
    name: `register-session: ${what}`,
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body: JSON.stringify(body),
    expectStatus: 400,
  })),
  {
    ...register(),
    name: "register-session: a body over its limit (8 KB)",
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body: JSON.stringify({ metadata: { a: "x".repeat(overLimit("register-session")) } }),
    expectStatus: 413,
    expectError: "payload_too_large",
  },
  {
    ...register(),
    name: "register-session: a body far over the limit (the server stops reading)",
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body: "x".repeat(overLimit("register-session", 1024 * KB)),
    expectStatus: 413,
  },
  ...credentialCases(register(), "register-session", "{}"),
];

/** Missing, malformed, forged and misplaced service tokens. */
function credentialCases(
  target: Pick<CorpusCase, "route" | "method" | "path">,
  label: string,
  body?: string,
): CorpusCase[] {
  const withBody = body === undefined ? {} : { body };
  return (
    [
      ["no Authorization header", {}],
      ["an empty Authorization header", { authorization: "" }],
      ["'Bearer' without a token", { authorization: "Bearer" }],
      ["'Bearer ' and spaces", { authorization: "Bearer    " }],
      [
        "Basic credentials",
        { authorization: `Basic ${Buffer.from("admin:{{serviceToken}}").toString("base64")}` },
      ],
      ["a forged token", { authorization: "Bearer forged-0123456789abcdef" }],
      ["the token with one character changed", { authorization: "Bearer {{serviceToken}}x" }],
      ["the token and a second token", { authorization: "Bearer {{serviceToken}} {{serviceToken}}" }],
      ["the tool secret instead of the service token", { authorization: "Bearer {{toolSecret}}" }],
      ["a per-task token instead of the service token", { authorization: "Bearer {{taskToken}}" }],
      ["the token in another header", { "x-api-key": "{{serviceToken}}" }],
      ["the token in the tool secret header", { "x-tool-secret": "{{serviceToken}}" }],
      ["a 5 000-character token", { authorization: `Bearer ${"a".repeat(5000)}` }],
    ] as const
  ).map(([what, headers]) => ({
    ...target,
    ...withBody,
    name: `${label}: ${what}`,
    headers: { ...JSON_TYPE, ...headers },
    expectStatus: 401,
    expectError: "unauthorized",
  }));
}

// ---------------------------------------------------------------------------------------------
// GET /conversations/{conversationId}/session (service token, no body)
// ---------------------------------------------------------------------------------------------
const getSession = (id = "{{conversationId}}"): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "get-session",
  method: "GET",
  path: `/conversations/${id}/session`,
});

export const GET_SESSION: readonly CorpusCase[] = [
  ...HOSTILE_IDS.map((id) => ({
    ...getSession(segment(id)),
    name: `get-session: conversationId ${JSON.stringify(id.slice(0, 40))}`,
    headers: SERVICE_AUTH,
    expectStatus: pathIdStatus(id),
  })),
  {
    ...getSession(),
    name: "get-session: a body on a GET",
    headers: { ...SERVICE_AUTH, ...JSON_TYPE },
    body: "{}",
    expectStatus: 413,
  },
  {
    ...getSession("{{idleConversationId}}"),
    name: "get-session: a conversation that never registered",
    headers: SERVICE_AUTH,
    expectStatus: 404,
    expectError: "session_not_found",
  },
  ...credentialCases(getSession(), "get-session"),
];

// ---------------------------------------------------------------------------------------------
// POST /tools/{toolName} (tool secret, 16 KB) and POST /tools/get_task_result
// ---------------------------------------------------------------------------------------------
const tool = (name = "lookup_order"): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "call-tool",
  method: "POST",
  path: `/tools/${name}`,
});
const poll: Pick<CorpusCase, "route" | "method" | "path"> = {
  route: "get-task-result",
  method: "POST",
  path: "/tools/get_task_result",
};

const toolSecretCases = (
  target: Pick<CorpusCase, "route" | "method" | "path">,
  label: string,
): CorpusCase[] =>
  (
    [
      ["no tool secret", {}],
      ["an empty tool secret", { "x-tool-secret": "" }],
      ["a wrong tool secret", { "x-tool-secret": "wrong-secret" }],
      ["the secret with a character appended", { "x-tool-secret": "{{toolSecret}}x" }],
      ["the secret without its last character", { "x-tool-secret": "{{toolSecretButLast}}" }],
      ["the service token instead of the tool secret", { "x-tool-secret": "{{serviceToken}}" }],
      ["the tool secret as a Bearer token", { authorization: "Bearer {{toolSecret}}" }],
      ["a 10 000-character secret", { "x-tool-secret": "s".repeat(10_000) }],
    ] as const
  ).map(([what, headers]) => ({
    ...target,
    name: `${label}: ${what}`,
    headers: { ...JSON_TYPE, ...headers },
    body: JSON.stringify({ conversation_id: "{{conversationId}}" }),
    expectStatus: 401,
    expectError: "unauthorized",
  }));

const toolBodyCases = (
  target: Pick<CorpusCase, "route" | "method" | "path">,
  label: string,
): CorpusCase[] => [
  ...MALFORMED_JSON.map((body) => ({
    ...target,
    name: `${label}: malformed JSON ${JSON.stringify(body.slice(0, 20))}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
    expectError: "invalid_json",
  })),
  ...NON_OBJECT_JSON.map((body) => ({
    ...target,
    name: `${label}: non-object JSON ${body}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
  })),
  {
    ...target,
    name: `${label}: an empty body`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: "",
    expectStatus: 400,
  },
  ...(
    [
      ["no conversation_id", { order_id: "A1" }],
      ["conversation_id is null", { conversation_id: null }],
      ["conversation_id is a number", { conversation_id: 12345 }],
      ["conversation_id is an array", { conversation_id: ["{{conversationId}}"] }],
      ["conversation_id is an object", { conversation_id: { $ne: null } }],
      ["conversation_id is empty", { conversation_id: "" }],
      ["conversation_id is the ElevenLabs placeholder", { conversation_id: "{{system__conversation_id}}" }],
      ["wrapped parameters without conversation_id", { tool_name: "x", parameters: { order_id: "A1" } }],
      ["wrapped parameters with a bad conversation_id", { conversation_id: "c 1", parameters: {} }],
      // Issue 19: only the system's id counts; the LLM-filled parameters' one is never read.
      [
        "wrapped, conversation_id only inside the LLM's parameters",
        { tool_name: "x", parameters: { conversation_id: "{{conversationId}}" } },
      ],
      [
        "a bad system__conversation_id next to a good conversation_id",
        { conversation_id: "{{conversationId}}", system__conversation_id: "c 1" },
      ],
    ] as const
  ).map(([what, body]) => ({
    ...target,
    name: `${label}: ${what}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: JSON.stringify(body),
    expectStatus: 400,
  })),
  ...HOSTILE_IDS.map((id) => ({
    ...target,
    name: `${label}: conversation_id ${JSON.stringify(id.slice(0, 40))}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: JSON.stringify({ conversation_id: id }),
    expectStatus: 400,
  })),
  {
    ...target,
    name: `${label}: a body over its limit (16 KB)`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: JSON.stringify({
      conversation_id: "{{conversationId}}",
      note: "x".repeat(overLimit(target.route as "call-tool")),
    }),
    expectStatus: 413,
    expectError: "payload_too_large",
  },
];

// GET /tools/{toolName} and GET /tools/get_task_result: ElevenLabs' default tool method, the
// parameters as query parameters (issue 15). Same secret, same ids, and a query the transport refuses.
const getTool = (
  target: Pick<CorpusCase, "route" | "path">,
  query: string,
): Pick<CorpusCase, "route" | "method" | "path"> => ({
  ...target,
  method: "GET",
  path: `${target.path}?${query}`,
});

const LIVE_QUERY = "conversation_id={{conversationId}}";

const getToolCases = (target: Pick<CorpusCase, "route" | "path">, label: string): CorpusCase[] => [
  ...toolSecretCases(getTool(target, LIVE_QUERY), `${label} (GET)`).map(
    ({ body: _body, headers, ...rest }) => ({
      ...rest,
      headers: Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => name !== "content-type")),
    }),
  ),
  ...(
    [
      ["no query", ""],
      ["no conversation_id", "order_id=A1"],
      ["conversation_id is empty", "conversation_id="],
      [
        "conversation_id is the ElevenLabs placeholder",
        "conversation_id=%7B%7Bsystem__conversation_id%7D%7D",
      ],
      ["conversation_id sent twice (joined by a comma)", `${LIVE_QUERY}&${LIVE_QUERY}`],
      // Issue 19: the system's id wins, so a bad one is refused even next to a good conversation_id.
      [
        "a bad system__conversation_id next to a good conversation_id",
        `${LIVE_QUERY}&system__conversation_id=c%201`,
      ],
      // An empty parameter name cannot be stored as a map key: a 400, not a failed write.
      ["a parameter with an empty name", `${LIVE_QUERY}&=x`],
    ] as const
  ).map(([what, query]) => ({
    ...getTool(target, query),
    name: `${label} (GET): ${what}`,
    headers: TOOL_AUTH,
    expectStatus: 400,
  })),
  ...HOSTILE_IDS.map((id) => ({
    ...getTool(target, `conversation_id=${segment(id)}`),
    name: `${label} (GET): conversation_id ${JSON.stringify(id.slice(0, 40))}`,
    headers: TOOL_AUTH,
    expectStatus: 400,
  })),
  {
    ...getTool(target, `${LIVE_QUERY}&order_id=${"x".repeat(20 * KB)}`),
    name: `${label} (GET): a 20 KB query (over the transport's header limit)`,
    headers: TOOL_AUTH,
    expectStatus: 431,
    expectError: "headers_too_large",
  },
];

export const CALL_TOOL: readonly CorpusCase[] = [
  ...toolSecretCases(tool(), "call-tool"),
  ...toolBodyCases(tool(), "call-tool"),
  ...HOSTILE_IDS.filter((id) => id !== "." && id !== "..").map((id) => ({
    ...tool(segment(id)),
    name: `call-tool: toolName ${JSON.stringify(id.slice(0, 40))}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: JSON.stringify({ conversation_id: "{{conversationId}}" }),
    expectStatus: 400,
  })),
  ...getToolCases(tool(), "call-tool"),
];

export const GET_TASK_RESULT: readonly CorpusCase[] = [
  ...toolSecretCases(poll, "get-task-result"),
  ...toolBodyCases(poll, "get-task-result"),
  ...getToolCases(poll, "get-task-result"),
  {
    ...getTool(poll, `${LIVE_QUERY}&task_id=t'%20OR%201=1`),
    name: "get-task-result (GET): task_id has injection characters",
    headers: TOOL_AUTH,
    expectStatus: 400,
  },
  ...(
    [
      ["task_id is a number", { conversation_id: "{{conversationId}}", task_id: 7 }],
      ["task_id has injection characters", { conversation_id: "{{conversationId}}", task_id: "t' OR 1=1" }],
      ["task_id is a sort key", { conversation_id: "{{conversationId}}", task_id: "task#{{taskId}}" }],
    ] as const
  ).map(([what, body]) => ({
    ...poll,
    name: `get-task-result: ${what}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: JSON.stringify(body),
    expectStatus: 400,
  })),
];

// ---------------------------------------------------------------------------------------------
// POST /conversations/{conversationId}/tasks/{taskId}/result (per-task token, 64 KB)
// ---------------------------------------------------------------------------------------------
const result = (
  conversationId = "{{conversationId}}",
  taskId = "{{taskId}}",
): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "record-task-result",
  method: "POST",
  path: `/conversations/${conversationId}/tasks/${taskId}/result`,
});
const GOOD_RESULT = JSON.stringify({ result: { status: "shipped" } });

export const RECORD_TASK_RESULT: readonly CorpusCase[] = [
  ...HOSTILE_IDS.map((id) => ({
    ...result(segment(id)),
    name: `record-task-result: conversationId ${JSON.stringify(id.slice(0, 40))}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: GOOD_RESULT,
    expectStatus: pathIdStatus(id),
  })),
  ...HOSTILE_IDS.map((id) => ({
    ...result(undefined, segment(id)),
    name: `record-task-result: taskId ${JSON.stringify(id.slice(0, 40))}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: GOOD_RESULT,
    expectStatus: pathIdStatus(id),
  })),
  ...(
    [
      ["no token", {}],
      ["an empty Bearer token", { authorization: "Bearer " }],
      ["a forged token", { authorization: "Bearer forged-0123456789abcdef0123456789abcdef012" }],
      ["another task's token", { authorization: "Bearer {{otherTaskToken}}" }],
      ["the stored hash instead of the token", { authorization: "Bearer {{taskTokenHash}}" }],
      ["the service token", { authorization: "Bearer {{serviceToken}}" }],
      ["the token with a character changed", { authorization: "Bearer {{taskToken}}A" }],
      ["the token in another scheme", { authorization: "Token {{taskToken}}" }],
      ["the token in a query-like header", { "x-task-token": "{{taskToken}}" }],
    ] as const
  ).map(([what, headers]) => ({
    ...result(),
    name: `record-task-result: ${what}`,
    headers: { ...JSON_TYPE, ...headers },
    body: GOOD_RESULT,
    expectStatus: 401,
    expectError: "unauthorized",
  })),
  {
    ...result("{{idleConversationId}}"),
    name: "record-task-result: the right token on another conversation's path",
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: GOOD_RESULT,
    expectStatus: 404,
    expectError: "task_not_found",
  },
  {
    ...result(undefined, "no-such-task"),
    name: "record-task-result: a task that does not exist",
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: GOOD_RESULT,
    expectStatus: 404,
    expectError: "task_not_found",
  },
  ...MALFORMED_JSON.map((body) => ({
    ...result(),
    name: `record-task-result: malformed JSON ${JSON.stringify(body.slice(0, 20))}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
    expectError: "invalid_json",
  })),
  ...NON_OBJECT_JSON.map((body) => ({
    ...result(),
    name: `record-task-result: non-object JSON ${body}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body,
    expectStatus: 400,
  })),
  {
    ...result(),
    name: "record-task-result: an empty body",
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: "",
    expectStatus: 400,
  },
  ...(
    [
      ["status is not succeeded/failed", { status: "maybe" }],
      ["status is a boolean", { status: true }],
      ["error is a number", { status: "failed", error: 500 }],
      ["error is over 2 000 characters", { status: "failed", error: "e".repeat(2001) }],
      ["an unknown field", { result: 1, taskId: "other" }],
      ["an outcome forged by the runner", { result: 1, outcome: "delivered" }],
    ] as const
  ).map(([what, body]) => ({
    ...result(),
    name: `record-task-result: ${what}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: JSON.stringify(body),
    expectStatus: 400,
  })),
  {
    ...result(),
    name: "record-task-result: a body over its limit (64 KB)",
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: pad(overLimit("record-task-result")),
    expectStatus: 413,
    expectError: "payload_too_large",
  },
  {
    ...result(),
    name: "record-task-result: a body far over the limit (the server stops reading)",
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: pad(overLimit("record-task-result", 1024 * KB)),
    expectStatus: 413,
  },
];

import { HOSTILE_IDS, segment } from "./strings.js";
import { type CorpusCase, SERVICE_AUTH } from "./types.js";

const serviceCredentialCases = (
  target: Pick<CorpusCase, "route" | "method" | "path">,
  label: string,
): CorpusCase[] =>
  (
    [
      ["no Authorization header", {}],
      ["a forged token", { authorization: "Bearer forged-0123456789abcdef" }],
      ["the tool secret", { authorization: "Bearer {{toolSecret}}" }],
      ["a per-task token", { authorization: "Bearer {{taskToken}}" }],
      ["Basic credentials", { authorization: "Basic YWRtaW46YWRtaW4=" }],
    ] as const
  ).map(([what, headers]) => ({
    ...target,
    name: `${label}: ${what}`,
    headers,
    expectStatus: 401,
    expectError: "unauthorized",
  }));

// GET /conversations?limit=&cursor=
const list = (query = ""): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "list-conversations",
  method: "GET",
  path: `/conversations${query}`,
});
const forgedCursor = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");

const pagingCases = (
  make: (query: string) => Pick<CorpusCase, "route" | "method" | "path">,
  label: string,
): CorpusCase[] => [
  ...["0", "101", "-1", "1.5", "abc", "1e2", "", "%00", "9999999999", "1,2", "0x10"].map((limit) => ({
    ...make(`?limit=${limit}`),
    name: `${label}: limit=${limit}`,
    headers: SERVICE_AUTH,
    expectStatus: 400,
    expectError: "invalid_limit",
  })),
  ...[
    ["not base64url", "not a cursor!"],
    ["base64 of junk", Buffer.from("junk").toString("base64url")],
    ["a JSON array", forgedCursor([1, 2])],
    ["a key with a number", forgedCursor({ conversationId: 1, sk: "meta" })],
    ["a key with too many fields", forgedCursor({ a: "1", b: "2", c: "3", d: "4", e: "5" })],
    ["an over-long cursor", "A".repeat(2000)],
    ["another conversation's key", forgedCursor({ conversationId: "someone-else", sk: "msg#0" })],
    ["a key outside the history", forgedCursor({ conversationId: "{{conversationId}}", sk: "task#x" })],
    // Issue 19: these reached DynamoDB as an ExclusiveStartKey it refuses, a 500.
    [
      "a history key with an extra attribute",
      forgedCursor({
        conversationId: "{{conversationId}}",
        sk: `msg#${"0".repeat(15)}#000000#transcript#t-0`,
        x: "y",
      }),
    ],
    [
      "a table key without the index keys",
      forgedCursor({ conversationId: "{{conversationId}}", sk: "meta" }),
    ],
    [
      "an index key with a tampered sort key",
      forgedCursor({
        conversationId: "{{conversationId}}",
        sk: "meta",
        listPk: "conversation",
        listSk: "zzz",
      }),
    ],
    [
      "a history key with a tampered sort key",
      forgedCursor({ conversationId: "{{conversationId}}", sk: "msg#zzz" }),
    ],
  ].map(([what, cursor]) => ({
    ...make(`?cursor=${encodeURIComponent(cursor ?? "")}`),
    name: `${label}: a cursor that is ${what}`,
    headers: SERVICE_AUTH,
    expectStatus: 400,
  })),
];

export const LIST_CONVERSATIONS: readonly CorpusCase[] = [
  ...serviceCredentialCases(list(), "list-conversations"),
  // Every forged key is a 400 on the list too: a list cursor must be exactly a key of its index.
  ...pagingCases(list, "list-conversations"),
  {
    ...list(),
    name: "list-conversations: a body on a GET",
    headers: { ...SERVICE_AUTH, "content-type": "application/json" },
    body: '{"limit":1}',
    expectStatus: 413,
  },
];

// GET /conversations/{conversationId}
const read = (id = "{{conversationId}}", query = ""): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "get-conversation",
  method: "GET",
  path: `/conversations/${id}${query}`,
});

export const GET_CONVERSATION: readonly CorpusCase[] = [
  ...serviceCredentialCases(read(), "get-conversation"),
  ...HOSTILE_IDS.filter((id) => id !== "." && id !== "..").map((id) => ({
    ...read(segment(id)),
    name: `get-conversation: conversationId ${JSON.stringify(id.slice(0, 40))}`,
    headers: SERVICE_AUTH,
    expectStatus: 400,
  })),
  {
    ...read("{{idleConversationId}}"),
    name: "get-conversation: a conversation never seen",
    headers: SERVICE_AUTH,
    expectStatus: 404,
    expectError: "conversation_not_found",
  },
  ...pagingCases((query) => read(undefined, query), "get-conversation"),
];

// DELETE /conversations/{conversationId}: bad credentials and hostile ids never erase anything.
const erase = (id = "{{conversationId}}"): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "delete-conversation",
  method: "DELETE",
  path: `/conversations/${id}`,
});

export const DELETE_CONVERSATION: readonly CorpusCase[] = [
  ...serviceCredentialCases(erase(), "delete-conversation"),
  ...HOSTILE_IDS.filter((id) => id !== "." && id !== "..").map((id) => ({
    ...erase(segment(id)),
    name: `delete-conversation: conversationId ${JSON.stringify(id.slice(0, 40))}`,
    headers: SERVICE_AUTH,
    expectStatus: 400,
  })),
];

// GET /signed-url?agentId= (service token; never reaches ElevenLabs in this corpus)
const signedUrl = (query: string): Pick<CorpusCase, "route" | "method" | "path"> => ({
  route: "get-signed-url",
  method: "GET",
  path: `/signed-url${query}`,
});

export const GET_SIGNED_URL: readonly CorpusCase[] = [
  ...serviceCredentialCases(signedUrl("?agentId=agent_1"), "get-signed-url"),
  {
    ...signedUrl(""),
    name: "get-signed-url: no agentId",
    headers: SERVICE_AUTH,
    expectStatus: 400,
    expectError: "invalid_agent_id",
  },
  {
    ...signedUrl("?agentId="),
    name: "get-signed-url: an empty agentId",
    headers: SERVICE_AUTH,
    expectStatus: 400,
  },
  ...HOSTILE_IDS.map((id) => ({
    ...signedUrl(`?agentId=${segment(id)}`),
    name: `get-signed-url: agentId ${JSON.stringify(id.slice(0, 40))}`,
    headers: SERVICE_AUTH,
    expectStatus: 400,
  })),
  {
    ...signedUrl("?agentId=agent_1&agentId=agent_2%26x"),
    name: "get-signed-url: a second agentId smuggling a query parameter",
    headers: SERVICE_AUTH,
    expectStatus: 400,
  },
];

import { type CorpusCase, JSON_TYPE, SERVICE_AUTH, TASK_AUTH, TOOL_AUTH } from "./types.js";

/**
 * Valid JSON that DynamoDB cannot store: an integer beyond ±2^53 (the marshaller refuses it), a
 * number below 1e-130 (underflow), a number that overflows to Infinity, a lone surrogate, an empty
 * map key, nesting deeper than 24 levels. Each must be a 400 before anything is written
 * (`unstorable` in functions/core/storable.ts), not a 500 from the
 * write: for a task result that would mean the result is never stored however often it is retried.
 */
let nested: unknown = "bottom";
for (let level = 0; level < 40; level++) nested = [nested];

/** Raw JSON texts, because JSON.stringify cannot write 12345678901234567890 exactly. */
const VALUES: readonly [string, string][] = [
  ["an integer beyond 2^53", "12345678901234567890"],
  ["a huge number", "1e300"],
  ["a number below 1e-130", "1e-300"],
  ["the smallest double", "5e-324"],
  ["a map with an empty key", '{"":1}'],
  ["nesting 40 levels deep", JSON.stringify(nested)],
  // Issue 19: 1e400 parses to Infinity, which made the marshaller throw (a 500 on every retry).
  ["a number that overflows to Infinity", "1e400"],
  ["a lone surrogate", '"\\ud800"'],
];

export const UNSTORABLE_JSON: readonly CorpusCase[] = VALUES.flatMap(([what, raw]) => [
  {
    route: "call-tool" as const,
    method: "POST",
    path: "/tools/lookup_order",
    name: `call-tool: a parameter with ${what}`,
    headers: { ...TOOL_AUTH, ...JSON_TYPE },
    body: `{"conversation_id":"{{conversationId}}","order":${raw}}`,
    expectStatus: 400,
  },
  {
    route: "record-task-result" as const,
    method: "POST",
    path: "/conversations/{{conversationId}}/tasks/{{taskId}}/result",
    name: `record-task-result: a result with ${what}`,
    headers: { ...TASK_AUTH, ...JSON_TYPE },
    body: `{"result":{"order":${raw}}}`,
    expectStatus: 400,
  },
  ...(raw.startsWith("[")
    ? []
    : [
        {
          route: "register-session" as const,
          method: "POST",
          path: "/conversations/{{idleConversationId}}/session",
          name: `register-session: metadata with ${what}`,
          headers: { ...SERVICE_AUTH, ...JSON_TYPE },
          body: raw.startsWith("{") ? `{"metadata":${raw}}` : `{"metadata":{"n":${raw}}}`,
          expectStatus: 400,
        },
      ]),
]);

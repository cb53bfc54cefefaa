import { MALFORMED_JSON, NON_OBJECT_JSON } from "./strings.js";
import { type CorpusCase, overLimit } from "./types.js";

const webhook: Pick<CorpusCase, "route" | "method" | "path"> = {
  route: "post-call-webhook",
  method: "POST",
  path: "/webhooks/elevenlabs/post-call",
};
const JSON_TYPE = { "content-type": "application/json" } as const;

/** A minimal transcription event for a conversation never seen before. */
const event = (conversationId = "{{idleConversationId}}") =>
  JSON.stringify({
    type: "post_call_transcription",
    event_timestamp: 1_739_537_320,
    data: {
      agent_id: "agent_1",
      conversation_id: conversationId,
      status: "done",
      transcript: [{ role: "agent", message: "Hi", time_in_call_secs: 0 }],
      metadata: { start_time_unix_secs: 1_739_537_297, call_duration_secs: 5 },
    },
  });

/** The event with some of its `data` fields replaced. */
const withData = (patch: Record<string, unknown>) => {
  const base = JSON.parse(event()) as { data: Record<string, unknown> };
  return { ...base, data: { ...base.data, ...patch } };
};

const UNUSABLE = "a correctly signed but unusable event is acknowledged and parked, never stored";

export const POST_CALL_WEBHOOK: readonly CorpusCase[] = [
  // Missing, malformed, forged, expired and replayed signatures: 401, nothing stored.
  { ...webhook, name: "post-call: no signature", headers: JSON_TYPE, body: event(), expectStatus: 401 },
  ...[
    ["an empty signature header", ""],
    ["garbage", "garbage"],
    ["only a timestamp", "t=1739537297"],
    ["only a digest", `v0=${"a".repeat(64)}`],
    ["a non-numeric timestamp", `t=abc,v0=${"a".repeat(64)}`],
    ["a digest of the wrong length", "t={{now}},v0=abcd"],
    ["a digest that is not hex", `t={{now}},v0=${"z".repeat(64)}`],
    ["a digest of zeros", `t={{now}},v0=${"0".repeat(64)}`],
  ].map(([what, header]) => ({
    ...webhook,
    name: `post-call: ${what}`,
    headers: { ...JSON_TYPE, "elevenlabs-signature": header ?? "" },
    body: event(),
    expectStatus: 401,
    expectError: "invalid_signature",
  })),
  ...(
    [
      ["signed with another secret", { secret: "wrong" }],
      ["signed 31 minutes ago (expired)", { ageSeconds: 31 * 60 }],
      ["signed 10 minutes in the future", { ageSeconds: -10 * 60 }],
      ["a signature replayed onto another body", { signedBody: event("someone-else") }],
      ["a signature over the body with a trailing newline", { signedBody: `${event()}\n` }],
      ["the digest in upper case", { transform: "uppercase-hex" }],
      ["the timestamp in milliseconds", { transform: "t-as-ms" }],
      ["spaces after the commas", { transform: "spaces" }],
      ["a v1 digest instead of v0", { transform: "v1-instead-of-v0" }],
    ] as const
  ).map(([what, sign]) => ({
    ...webhook,
    name: `post-call: ${what}`,
    headers: JSON_TYPE,
    body: event(),
    sign,
    expectStatus: 401,
    expectError: "invalid_signature",
  })),
  // Correctly signed junk: acknowledged (documented), parked for a human, nothing stored.
  ...[...MALFORMED_JSON, ...NON_OBJECT_JSON].map((body) => ({
    ...webhook,
    name: `post-call: signed malformed body ${JSON.stringify(body.slice(0, 20))}`,
    headers: JSON_TYPE,
    body,
    sign: {},
    expectStatus: 200,
    documented: UNUSABLE,
  })),
  ...(
    [
      ["no type", { data: { conversation_id: "c1" } }],
      ["no data", { type: "post_call_transcription" }],
      ["an injection-looking conversation id", withData({ conversation_id: "c1' OR 1=1" })],
      ["a transcript that is not an array", withData({ transcript: "hi" })],
      [
        "negative call times",
        withData({ transcript: [{ role: "agent", message: "x", time_in_call_secs: -5 }] }),
      ],
      ["no metadata", withData({ metadata: undefined })],
    ] as const
  ).map(([what, body]) => ({
    ...webhook,
    name: `post-call: signed event with ${what}`,
    headers: JSON_TYPE,
    body: JSON.stringify(body),
    sign: {},
    expectStatus: 200,
    documented: UNUSABLE,
  })),
  {
    ...webhook,
    name: "post-call: a body over its limit",
    headers: JSON_TYPE,
    body: JSON.stringify({
      type: "post_call_audio",
      data: { full_audio: "A".repeat(overLimit("post-call-webhook")) },
    }),
    sign: {},
    expectStatus: 413,
    expectError: "payload_too_large",
  },
];

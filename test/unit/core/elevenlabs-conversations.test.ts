import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createConversationsClient,
  parseRetryAfter,
} from "../../../functions/core/elevenlabs-conversations.js";
import {
  type FakeConversationsApi,
  startFakeConversationsApi,
} from "../../support/fake-conversations-api.js";
import { ELEVENLABS_API_KEY, transcriptionEvent } from "../../support/post-call-fixtures.js";

describe("ElevenLabs conversations client over HTTP (fake API on 127.0.0.1)", () => {
  let fake: FakeConversationsApi;
  beforeAll(async () => {
    fake = await startFakeConversationsApi(ELEVENLABS_API_KEY);
  });
  afterAll(async () => {
    await fake.close();
  });
  const client = (apiKey = ELEVENLABS_API_KEY, timeoutMs = 1000) =>
    createConversationsClient({
      apiKey: async () => apiKey,
      apiBaseUrl: `${fake.url}/`,
      timeoutMs,
      now: () => Date.parse("2026-12-02T08:00:00Z"),
    });

  it("GETs /v1/convai/conversations/{id} with xi-api-key and hands on the JSON body", async () => {
    const data = transcriptionEvent("conv_ok").data;
    fake.answer("conv_ok", { status: 200, body: data });
    expect(await client().getConversation("conv_ok")).toEqual({
      kind: "ok",
      body: data,
      text: JSON.stringify(data),
    });
    expect(fake.requestsFor("conv_ok")).toEqual([
      {
        method: "GET",
        path: "/v1/convai/conversations/conv_ok",
        conversationId: "conv_ok",
        apiKey: ELEVENLABS_API_KEY,
      },
    ]);
  });

  it("hands on the body's exact text too (1e400 would not survive a re-serialization)", async () => {
    const raw = '{"conversation_id":"conv_big","status":"done","n":1e400}';
    fake.answer("conv_big", { status: 200, raw });
    expect(await client().getConversation("conv_big")).toEqual({
      kind: "ok",
      body: { conversation_id: "conv_big", status: "done", n: Number.POSITIVE_INFINITY },
      text: raw,
    });
  });

  it.each([
    [{ status: 404 }, { kind: "not_found" }],
    [{ status: 401 }, { kind: "auth_failed", status: 401 }],
    [{ status: 403 }, { kind: "auth_failed", status: 403 }],
    [
      { status: 429, headers: { "retry-after": "120" } },
      { kind: "transient", reason: "HTTP 429", status: 429, retryAfterMs: 120_000 },
    ],
    [
      { status: 503, headers: { "retry-after": "Wed, 02 Dec 2026 08:01:00 GMT" } },
      { kind: "transient", reason: "HTTP 503", status: 503, retryAfterMs: 60_000 },
    ],
    [{ status: 500 }, { kind: "transient", reason: "HTTP 500", status: 500 }],
    [{ status: 422 }, { kind: "malformed", problem: "unexpected HTTP 422", status: 422 }],
    [
      { status: 200, raw: "<html>gateway</html>" },
      { kind: "malformed", problem: "the body is not JSON", status: 200 },
    ],
  ])("maps %j to %j", async (answer, expected) => {
    const conversationId = `conv_${answer.status}_${Math.random().toString(36).slice(2)}`;
    fake.answer(conversationId, answer);
    expect(await client().getConversation(conversationId)).toEqual(expected);
  });

  it("calls a wrong key an auth failure (the fake refuses it like ElevenLabs)", async () => {
    fake.answer("conv_key", { status: 200, body: {} });
    expect(await client("sk_wrong").getConversation("conv_key")).toEqual({
      kind: "auth_failed",
      status: 401,
    });
  });

  it("turns a slow answer into a transient timeout", async () => {
    fake.answer("conv_slow", { status: 200, body: {}, delayMs: 1500 });
    expect(await client(ELEVENLABS_API_KEY, 200).getConversation("conv_slow")).toEqual({
      kind: "transient",
      reason: "timeout after 200 ms",
    });
  });

  it("turns a refused connection into a transient network failure", async () => {
    const unreachable = createConversationsClient({
      apiKey: async () => ELEVENLABS_API_KEY,
      apiBaseUrl: "http://127.0.0.1:1",
    });
    expect(await unreachable.getConversation("conv_x")).toEqual({
      kind: "transient",
      reason: "network (TypeError)",
    });
  });

  it("refuses an id that could change the path, before any request", async () => {
    const before = fake.requests.length;
    await expect(client().getConversation("../../v1/user")).rejects.toThrow();
    expect(fake.requests.length).toBe(before);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates, and ignores anything else", () => {
    const now = Date.parse("2026-12-02T08:00:00Z");
    expect(parseRetryAfter("5", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 02 Dec 2026 07:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter("-3", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });

  it("never throws and is never negative, whatever the header", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 4_000_000_000_000 }), (header, now) => {
        const ms = parseRetryAfter(header, now);
        expect(ms === undefined || (Number.isFinite(ms) && ms >= 0)).toBe(true);
      }),
    );
  });
});

import { beforeEach, describe, expect, it, vi } from "vitest";
import { makeHandler } from "../../../functions/get-signed-url/handler.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { SERVICE_TOKEN, T0, testDependencies } from "../../support/live-fixtures.js";
import { ELEVENLABS_API_KEY } from "../../support/post-call-fixtures.js";

const SIGNED =
  "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_1&conversation_signature=sig_SECRETISH";
const auth = { Authorization: `Bearer ${SERVICE_TOKEN}` };
const request = (query: Record<string, string> = { agentId: "agent_1" }, headers = auth) =>
  apiEvent({ method: "GET", path: "/signed-url", query, headers });

const answer = (status: number, body: unknown = {}, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

describe("GET /signed-url", () => {
  let fetchImpl: ReturnType<typeof vi.fn<typeof fetch>>;
  let setup: ReturnType<typeof testDependencies>;
  let handler: ReturnType<typeof makeHandler>;

  const build = (env: Record<string, string> = {}, timeoutMs = 5000) => {
    setup = testDependencies({ env: { ELEVENLABS_API_KEY, ...env } });
    handler = makeHandler({ ...setup.deps, now: () => T0, fetchImpl, timeoutMs });
  };

  beforeEach(() => {
    fetchImpl = vi.fn<typeof fetch>(async () => answer(200, { signed_url: SIGNED }));
    build();
  });

  /** Nothing a caller or a log reader sees may contain the API key. */
  const expectNoKeyLeak = (response: { body: string; headers?: unknown }) => {
    expect(JSON.stringify(response)).not.toContain(ELEVENLABS_API_KEY);
    expect(setup.logger.text()).not.toContain(ELEVENLABS_API_KEY);
  };

  it("returns ElevenLabs' signed URL with its 15-minute expiry, asking with the API key from the secrets", async () => {
    const response = await handler(request());
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual({
      signedUrl: SIGNED,
      expiresAt: new Date(T0 + 15 * 60_000).toISOString(),
      agentId: "agent_1",
    });
    expect(response.headers?.["cache-control"]).toBe("no-store");
    const [url, init] = fetchImpl.mock.calls[0] ?? [];
    expect(url).toBe(
      "https://api.elevenlabs.io/v1/convai/conversation/get-signed-url?agent_id=agent_1&include_conversation_id=true",
    );
    expect(init?.headers).toMatchObject({ "xi-api-key": ELEVENLABS_API_KEY });
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    expect(setup.metrics.counts).toEqual({ SignedUrlIssued: 1 });
    expectNoKeyLeak(response);
    // The signed URL is a credential for 15 minutes: it goes to the caller, never to the logs.
    expect(setup.logger.text()).not.toContain("sig_SECRETISH");
  });

  it("uses ELEVENLABS_API_BASE_URL when set (residency endpoints, test doubles)", async () => {
    build({ ELEVENLABS_API_BASE_URL: "https://api.eu.residency.elevenlabs.io/" });
    await handler(request());
    expect(String(fetchImpl.mock.calls[0]?.[0])).toBe(
      "https://api.eu.residency.elevenlabs.io/v1/convai/conversation/get-signed-url?agent_id=agent_1&include_conversation_id=true",
    );
  });

  it("fails at cold start, naming the variable, when ELEVENLABS_API_BASE_URL is not an http(s) URL", () => {
    expect(() => build({ ELEVENLABS_API_BASE_URL: "api.elevenlabs.io" })).toThrow(
      /ELEVENLABS_API_BASE_URL must be an http\(s\) URL/,
    );
  });

  it.each([
    ["missing", {}],
    ["with a space and a quote", { agentId: "agent 1'" }],
    ["longer than 128 characters", { agentId: "a".repeat(129) }],
    ["empty", { agentId: "" }],
  ])("answers 400 invalid_agent_id when agentId is %s, without calling ElevenLabs", async (_label, query) => {
    const response = await handler(request(query));
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response)).toMatchObject({ error: "invalid_agent_id" });
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("answers 401 without the service token, without calling ElevenLabs", async () => {
    const response = await handler(request({ agentId: "agent_1" }, { Authorization: "Bearer nope" }));
    expect(response.statusCode).toBe(401);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it.each([401, 403])(
    "answers 502 upstream_auth_failed when ElevenLabs answers %i (our key is wrong)",
    async (status) => {
      fetchImpl.mockResolvedValue(answer(status, { detail: { status: "invalid_api_key" } }));
      const response = await handler(request());
      expect(response.statusCode).toBe(502);
      expect(bodyOf(response)).toMatchObject({ error: "upstream_auth_failed" });
      expect(setup.metrics.counts).toEqual({ SignedUrlUpstreamAuthFailed: 1 });
      expect(setup.logger.lines.at(-1)).toMatchObject({ level: "warn", data: { upstreamStatus: status } });
      expectNoKeyLeak(response);
    },
  );

  it.each([404, 422])(
    "answers 502 upstream_rejected with the status when ElevenLabs answers %i",
    async (status) => {
      fetchImpl.mockResolvedValue(answer(status, { detail: [{ msg: "agent not found" }] }));
      const response = await handler(request());
      expect(response.statusCode).toBe(502);
      expect(bodyOf(response)).toMatchObject({ error: "upstream_rejected", upstreamStatus: status });
    },
  );

  it("answers 502 upstream_invalid_response when a 200 carries no signed URL", async () => {
    fetchImpl.mockResolvedValue(answer(200, { signed_url: 42 }));
    const response = await handler(request());
    expect(response.statusCode).toBe(502);
    expect(bodyOf(response)).toMatchObject({ error: "upstream_invalid_response" });
  });

  it.each([
    ["a 500", () => answer(500), "2"],
    ["a 429 with Retry-After: 7", () => answer(429, {}, { "retry-after": "7" }), "7"],
  ])("answers 503 with Retry-After when ElevenLabs answers %s", async (_label, make, retryAfter) => {
    fetchImpl.mockImplementation(async () => make());
    const response = await handler(request());
    expect(response.statusCode).toBe(503);
    expect(response.headers?.["retry-after"]).toBe(retryAfter);
    expect(setup.metrics.counts).toEqual({ DependencyUnavailable: 1 });
    expectNoKeyLeak(response);
  });

  it("answers 503 when ElevenLabs does not answer within the timeout", async () => {
    fetchImpl.mockImplementation(
      (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        }),
    );
    build({}, 20);
    const response = await handler(request());
    expect(response.statusCode).toBe(503);
    expect(setup.logger.lines[0]).toMatchObject({
      level: "warn",
      data: { reason: "no answer within 20 ms" },
    });
  });

  it("answers 503 when the network fails", async () => {
    fetchImpl.mockRejectedValue(new TypeError("fetch failed"));
    const response = await handler(request());
    expect(response.statusCode).toBe(503);
    expectNoKeyLeak(response);
  });

  it("returns the conversation id ElevenLabs gives, from the answer's field or else from the signed URL", async () => {
    fetchImpl.mockResolvedValueOnce(answer(200, { signed_url: SIGNED, conversation_id: "conv_field_1" }));
    expect(bodyOf(await handler(request()))).toMatchObject({ conversationId: "conv_field_1" });
    fetchImpl.mockResolvedValueOnce(answer(200, { signed_url: `${SIGNED}&conversation_id=conv_url_2` }));
    expect(bodyOf(await handler(request()))).toMatchObject({ conversationId: "conv_url_2" });
    expect(setup.logger.lines).toContainEqual(
      expect.objectContaining({
        message: "Signed conversation URL issued",
        data: expect.objectContaining({ conversationId: "conv_url_2" }),
      }),
    );
  });

  it("leaves conversationId out when ElevenLabs gives none or one that is not an id", async () => {
    const bad = ["", "conv 1", "a/../b", "x".repeat(129)];
    for (const id of bad) {
      fetchImpl.mockResolvedValueOnce(answer(200, { signed_url: SIGNED, conversation_id: id }));
      const body = bodyOf(await handler(request()));
      expect(body).toMatchObject({ signedUrl: SIGNED });
      expect(body).not.toHaveProperty("conversationId");
    }
    fetchImpl.mockResolvedValueOnce(answer(200, { signed_url: `${SIGNED}&conversation_id=%3Cscript%3E` }));
    expect(bodyOf(await handler(request()))).not.toHaveProperty("conversationId");
  });
});

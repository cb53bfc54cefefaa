import * as crypto from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import {
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  bearerToken,
  constantTimeEquals,
  hashToken,
  newTaskToken,
  requireBearer,
  requireToolSecret,
  taskTokenMatches,
} from "../../../functions/core/auth.js";
import { createDependencies, type Dependencies } from "../../../functions/core/dependencies.js";
import type { TaskMessage } from "../../../functions/core/dispatcher.js";
import { httpNotifier } from "../../../functions/core/notifier.js";
import { SERVICE_NAME } from "../../../functions/core/service-names.js";
import { verifyWebhookSignature } from "../../../functions/core/webhook-signature.js";
import { makeHandler as makeSignedUrl } from "../../../functions/get-signed-url/handler.js";
import { makeHandler as makePostCall } from "../../../functions/post-call-webhook/handler.js";
import { makeHandler as makeResult } from "../../../functions/record-task-result/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { fakeLiveTables, type LiveState } from "../../support/fake-live-table.js";
import {
  captureMetrics,
  NOTIFY_SECRET,
  SERVICE_TOKEN,
  T0,
  TOOL_SECRET,
} from "../../support/live-fixtures.js";
import { createLiveHarness, harnessEnv, liveRequests } from "../../support/live-harness.js";
import { captureLogger } from "../../support/log-capture.js";
import {
  ELEVENLABS_API_KEY,
  memoryParker,
  signature,
  transcriptionEvent,
  WEBHOOK_SECRET,
  webhookRequest,
} from "../../support/post-call-fixtures.js";

// Every comparison of a secret must go through timingSafeEqual: spy on it without changing it.
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return {
    ...actual,
    timingSafeEqual: vi.fn(actual.timingSafeEqual),
    randomBytes: vi.fn(actual.randomBytes),
  };
});
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);
const randomBytes = vi.mocked(crypto.randomBytes);

const doc = createDocClient();
const ddb = mockClient(doc);
const CONV = "conv-sec-1";
const OTHER = "conv-sec-2";
const SIGNED_URL =
  "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_1&conversation_signature=SIGNEDxyz123";
const FORGED = ["forged-token-0123456789abcdef", "Bearer-inside-token", "x".repeat(300)];

const SECRETS = [
  SERVICE_TOKEN,
  TOOL_SECRET,
  NOTIFY_SECRET,
  WEBHOOK_SECRET,
  ELEVENLABS_API_KEY,
  SIGNED_URL,
  ...FORGED,
];

/**
 * Drives every route through success and failure (wrong credentials, forged tokens, a failing
 * push, a bad signature) with the given logger, and returns every secret that was in play.
 */
const runFullFlow = async (logger: Dependencies["logger"]) => {
  const state: LiveState = fakeLiveTables(ddb, {
    session: undefined,
    tasks: new Map(),
    messages: [],
  });
  ddb.on(PutCommand).resolves({});
  ddb.on(BatchWriteCommand).resolves({});
  const env = { WEBHOOK_SECRET, ELEVENLABS_API_KEY };
  const h = createLiveHarness({ doc, logger, env });
  const inPlay: string[] = [...SECRETS];

  // Register: the fake tables do not apply the session put, so make the session live by hand.
  expect((await h.handlers.register(liveRequests.register(CONV))).statusCode).toBe(201);
  state.session = {
    conversationId: CONV,
    sessionId: "s-1",
    createdAt: new Date(T0).toISOString(),
    createdAtMs: T0,
    expiresAtMs: T0 + 600_000,
    ttlMs: 600_000,
    notifyUrl: "https://app.example.test/live",
  };
  await h.handlers.getSession(liveRequests.getSession(CONV));
  // Tool calls: accepted twice; the tokens only travel in the dispatched messages.
  await h.handlers.callTool(liveRequests.callTool(CONV));
  await h.handlers.callTool(liveRequests.callTool(CONV, { order_id: "A2" }));
  const [first, second] = h.dispatched as [TaskMessage, TaskMessage];
  inPlay.push(first.callbackToken, second.callbackToken);
  await h.handlers.poll(liveRequests.poll(CONV));
  // Results: delivered; duplicate; another task's token; forged tokens; wrong conversation.
  await h.handlers.result(liveRequests.result(first));
  await h.handlers.result(liveRequests.result(first));
  await h.handlers.result(liveRequests.result({ ...second, callbackToken: first.callbackToken }));
  for (const forged of FORGED)
    await h.handlers.result(liveRequests.result({ ...second, callbackToken: forged }));
  await h.handlers.result(liveRequests.result({ ...second, conversationId: OTHER }));
  // A result whose live push is signed with the notify secret and fails.
  const signedPushes: string[] = [];
  const failingNotifier = httpNotifier(
    async () => NOTIFY_SECRET,
    500,
    async (_url, init) => {
      signedPushes.push(String((init?.headers as Record<string, string> | undefined)?.["x-signature"]));
      return new Response("nope", { status: 500 });
    },
  );
  const result = makeResult({ ...h.deps, notifier: failingNotifier });
  await result(liveRequests.result(second));
  inPlay.push(...signedPushes);
  // Wrong service token and tool secret, in the header and as a Bearer token.
  for (const wrong of FORGED) {
    await h.handlers.getSession({
      ...liveRequests.getSession(CONV),
      headers: { authorization: `Bearer ${wrong}` },
    });
    await h.handlers.callTool({
      ...liveRequests.callTool(CONV),
      headers: { "x-tool-secret": wrong, authorization: `Bearer ${SERVICE_TOKEN}` },
    });
  }
  // Post-call webhook: a good signature, a bad one, an expired one.
  const postCall = makePostCall({ ...h.deps, now: () => T0, parker: memoryParker({ fail: false }) });
  const body = JSON.stringify(transcriptionEvent(CONV));
  const goodSignature = signature(body, Math.floor(T0 / 1000));
  inPlay.push(goodSignature.split("v0=")[1] ?? "");
  await postCall(webhookRequest(body, { header: goodSignature }));
  await postCall(webhookRequest(body, { header: signature(body, Math.floor(T0 / 1000), "wrong-secret") }));
  await postCall(webhookRequest(body, { header: signature(body, Math.floor(T0 / 1000) - 3600) }));
  // Signed URL: the API key goes upstream, the signed URL back to the caller; neither is logged.
  const signedUrl = makeSignedUrl({
    ...createDependencies({ ...harnessEnv(undefined, env) }, { doc, logger, metrics: captureMetrics() }, []),
    fetchImpl: async () => Response.json({ signed_url: SIGNED_URL }),
  });
  const issued = await signedUrl(
    apiEvent({
      method: "GET",
      path: "/signed-url",
      query: { agentId: "agent_1" },
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    }),
  );
  expect(bodyOf(issued).signedUrl).toBe(SIGNED_URL);
  return { inPlay: inPlay.filter((s) => s.length >= 8), h };
};

describe("secrets and tokens never reach the logs", () => {
  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T0 + 1_000);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("holds for every log line of a full flow, successes and failures alike (capturing logger)", async () => {
    const logger = captureLogger();
    const { inPlay } = await runFullFlow(logger);
    const text = logger.text();
    expect(logger.lines.length).toBeGreaterThan(20);
    for (const secret of inPlay)
      expect(text, `a log line contains ${secret.slice(0, 6)}…`).not.toContain(secret);
    // Hashes are not secrets, but they are not logged either (they would allow offline guessing).
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it("holds for what the real Powertools Logger writes to stdout and stderr", async () => {
    const written: string[] = [];
    const capture = (chunk: unknown) => {
      written.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, "write").mockImplementation(capture);
    vi.spyOn(process.stderr, "write").mockImplementation(capture);
    const logger = new Logger({ serviceName: SERVICE_NAME, logLevel: "DEBUG" });
    const { inPlay } = await runFullFlow(logger);
    vi.restoreAllMocks();
    const output = written.join("");
    expect(output).toContain('"message":"Callback delivered to the live session"');
    expect(output).toContain("Post-call webhook rejected");
    for (const secret of inPlay)
      expect(output, `stdout contains ${secret.slice(0, 6)}…`).not.toContain(secret);
  });

  it("never echoes a presented credential in a response body", async () => {
    const h = createLiveHarness({ doc });
    fakeLiveTables(ddb, { tasks: new Map(), messages: [] });
    for (const forged of FORGED) {
      const answer = await h.handlers.getSession({
        ...liveRequests.getSession(CONV),
        headers: { authorization: `Bearer ${forged}` },
      });
      expect(answer.statusCode).toBe(401);
      expect(answer.body).not.toContain(forged);
    }
  });
});

describe("credential checks are constant-time", () => {
  beforeEach(() => {
    timingSafeEqual.mockClear();
  });

  const digestsCompared = () =>
    timingSafeEqual.mock.calls.map(([a, b]) => [(a as Buffer).length, (b as Buffer).length]);

  it.each([
    ["the right token", SERVICE_TOKEN, true],
    ["a one-character token", "x", false],
    ["a longer token", `${SERVICE_TOKEN}-and-more-and-more`, false],
    ["a same-length token differing in the last byte", `${SERVICE_TOKEN.slice(0, -1)}X`, false],
  ])("compares the service token as two 32-byte digests for %s", (_label, given, ok) => {
    expect(constantTimeEquals(given, SERVICE_TOKEN)).toBe(ok);
    expect(digestsCompared()).toEqual([[32, 32]]);
  });

  it("goes through timingSafeEqual for the service token and the tool secret, whatever their length", () => {
    expect(() => requireBearer({ authorization: "Bearer short" }, SERVICE_TOKEN)).toThrow();
    expect(() =>
      requireToolSecret({ "x-tool-secret": `${TOOL_SECRET}${TOOL_SECRET}` }, TOOL_SECRET),
    ).toThrow();
    requireBearer({ authorization: `Bearer ${SERVICE_TOKEN}` }, SERVICE_TOKEN);
    requireToolSecret({ "x-tool-secret": TOOL_SECRET }, TOOL_SECRET);
    expect(digestsCompared()).toEqual([
      [32, 32],
      [32, 32],
      [32, 32],
      [32, 32],
    ]);
  });

  it("compares a task token as the SHA-256 of the presented token against the stored hash", () => {
    const token = newTaskToken();
    expect(taskTokenMatches(token, hashToken(token))).toBe(true);
    expect(taskTokenMatches("a", hashToken(token))).toBe(false);
    expect(taskTokenMatches(`${token}${token}`, hashToken(token))).toBe(false);
    expect(digestsCompared()).toEqual([
      [32, 32],
      [32, 32],
      [32, 32],
    ]);
  });

  it("compares a webhook signature as two 32-byte HMAC digests", () => {
    const body = Buffer.from('{"type":"post_call_transcription"}');
    const t = Math.floor(T0 / 1000);
    expect(verifyWebhookSignature(body, signature(body, t), WEBHOOK_SECRET, T0).valid).toBe(true);
    const forged = `t=${t},v0=${"0".repeat(64)}`;
    expect(verifyWebhookSignature(body, forged, WEBHOOK_SECRET, T0)).toEqual({
      valid: false,
      reason: "mismatch",
    });
    expect(digestsCompared()).toEqual([
      [32, 32],
      [32, 32],
    ]);
  });

  it("has no plain string comparison of a credential in the auth code path (a wrong token never short-circuits)", () => {
    // A wrong token of every length reaches timingSafeEqual exactly once.
    for (let length = 1; length <= 64; length++) {
      constantTimeEquals("a".repeat(length), SERVICE_TOKEN);
    }
    expect(timingSafeEqual).toHaveBeenCalledTimes(64);
  });
});

describe("per-task tokens", () => {
  it("are random, unique over 10 000 draws, and carry 256 bits (≥ 128 required)", () => {
    const tokens = Array.from({ length: 10_000 }, newTaskToken);
    expect(new Set(tokens).size).toBe(10_000);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, "base64url").length).toBeGreaterThanOrEqual(32);
    }
    // About half of all 2.56 million bits are set (30 standard deviations of slack: never flaky).
    let ones = 0;
    let bits = 0;
    for (const token of tokens) {
      for (const byte of Buffer.from(token, "base64url")) {
        for (let b = byte; b > 0; b >>= 1) ones += b & 1;
        bits += 8;
      }
    }
    expect(ones / bits).toBeGreaterThan(0.49);
    expect(ones / bits).toBeLessThan(0.51);
  });

  it("are drawn from the CSPRNG, 32 bytes at a time", () => {
    randomBytes.mockClear();
    newTaskToken();
    expect(randomBytes.mock.calls).toEqual([[32]]);
  });

  it("are stored only as a SHA-256 hex hash, never as themselves", async () => {
    ddb.reset();
    const state = fakeLiveTables(ddb, {
      session: {
        conversationId: CONV,
        sessionId: "s-1",
        createdAt: new Date(T0).toISOString(),
        createdAtMs: T0,
        expiresAtMs: Date.now() + 600_000,
        ttlMs: 600_000,
      },
      tasks: new Map(),
      messages: [],
    });
    const h = createLiveHarness({ doc });
    for (let i = 0; i < 50; i++) await h.handlers.callTool(liveRequests.callTool(CONV, { i }));
    expect(h.dispatched).toHaveLength(50);
    const written = JSON.stringify(ddb.calls().map((c) => c.args[0].input));
    for (const message of h.dispatched) {
      const stored = state.tasks.get(`task#${message.taskId}`);
      expect(stored?.tokenHash).toBe(crypto.createHash("sha256").update(message.callbackToken).digest("hex"));
      expect(stored?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
      expect(written).not.toContain(message.callbackToken);
    }
    expect(new Set(h.dispatched.map((m) => m.callbackToken)).size).toBe(50);
  });

  it("of one conversation cannot touch another conversation's task, nor another task of its own", async () => {
    ddb.reset();
    const live = (id: string) => ({
      conversationId: id,
      sessionId: `s-${id}`,
      createdAt: new Date(T0).toISOString(),
      createdAtMs: T0,
      expiresAtMs: Date.now() + 600_000,
      ttlMs: 600_000,
    });
    const state = fakeLiveTables(ddb, { session: live(CONV), tasks: new Map(), messages: [] });
    const h = createLiveHarness({ doc });
    await h.handlers.callTool(liveRequests.callTool(CONV));
    await h.handlers.callTool(liveRequests.callTool(CONV));
    const [mine, sibling] = h.dispatched as [TaskMessage, TaskMessage];
    // The fake holds one conversation; the other conversation has no items at all.
    ddb.on(GetCommand, { Key: { conversationId: OTHER } }).resolves({});
    ddb.resetHistory();
    // Another task's token on this task: 401.
    expect(
      (await h.handlers.result(liveRequests.result({ ...sibling, callbackToken: mine.callbackToken })))
        .statusCode,
    ).toBe(401);
    // This task's token with another conversation in the path: that conversation has no such task.
    const crossed = await h.handlers.result(liveRequests.result({ ...mine, conversationId: OTHER }));
    expect(crossed.statusCode).toBe(404);
    // The token in the path instead of the header: 401 (a token is required) and never a lookup by token.
    const noHeader = liveRequests.result(mine);
    noHeader.headers = { "content-type": "application/json" };
    expect((await h.handlers.result(noHeader)).statusCode).toBe(401);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    expect([...state.tasks.values()].every((t) => t.outcome === undefined)).toBe(true);
  });

  it("is only ever read from the Authorization header as a single Bearer token", () => {
    expect(bearerToken({ authorization: "Bearer abc" })).toBe("abc");
    expect(bearerToken({ authorization: "bearer abc " })).toBe("abc");
    expect(bearerToken({ authorization: "Bearer abc def" })).toBeUndefined();
    expect(bearerToken({ authorization: "Basic abc" })).toBeUndefined();
    expect(bearerToken({ authorization: `Bearer ${"a".repeat(4097)}` })).toBeUndefined();
    expect(bearerToken({})).toBeUndefined();
  });
});

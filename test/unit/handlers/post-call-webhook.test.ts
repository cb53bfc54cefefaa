import { BatchWriteCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { createDependencies } from "../../../functions/core/dependencies.js";
import { routeNamed } from "../../../functions/core/routes.js";
import { makeHandler } from "../../../functions/post-call-webhook/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { bodyOf } from "../../support/events.js";
import { T0, testDependencies } from "../../support/live-fixtures.js";
import {
  audioEvent,
  line,
  memoryParker,
  signature,
  transcriptionEvent,
  WEBHOOK_SECRET,
  webhookRequest,
} from "../../support/post-call-fixtures.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const BODY = JSON.stringify(transcriptionEvent("conv_1"));
/** The part of a Lambda context the handler reads. */
const lambdaContext = (remainingMs: number) =>
  ({
    awsRequestId: "lambda-request-1",
    functionName: "post-call-webhook",
    getRemainingTimeInMillis: () => remainingMs,
  }) as unknown as Context;
const throttled = () =>
  Object.assign(new Error("Rate exceeded"), {
    name: "ProvisionedThroughputExceededException",
    $metadata: {},
  });

describe("POST /webhooks/elevenlabs/post-call", () => {
  let setup: ReturnType<typeof testDependencies>;
  let parker: ReturnType<typeof memoryParker>;
  let handler: ReturnType<typeof makeHandler>;

  const build = (options: { failParking?: boolean; env?: Record<string, string> } = {}) => {
    setup = testDependencies({ doc, env: { WEBHOOK_SECRET, ...options.env } });
    parker = memoryParker({ fail: options.failParking ?? false });
    handler = makeHandler({ ...setup.deps, now: () => T0, parker });
  };

  beforeEach(() => {
    ddb.reset();
    ddb.on(GetCommand).resolves({});
    ddb.on(BatchWriteCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    build();
  });

  it("stores a correctly signed transcript: every line and the analysis, then the call facts", async () => {
    const response = await handler(webhookRequest(BODY, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual({
      status: "stored",
      eventType: "post_call_transcription",
      conversationId: "conv_1",
    });
    const items = ddb
      .commandCalls(BatchWriteCommand)
      .flatMap((c) => c.args[0].input.RequestItems?.conversations ?? []);
    expect(items.map((i) => i.PutRequest?.Item?.kind)).toEqual([
      "transcript",
      "transcript",
      "transcript",
      "call_analysis",
    ]);
    expect(setup.metrics.counts).toEqual({ PostCallStored: 1 });
    expect(setup.logger.lines.at(-1)).toMatchObject({
      level: "info",
      data: { outcome: "post_call_stored", conversationId: "conv_1", lines: 3 },
    });
    expect(parker.parked).toEqual([]);
  });

  it("verifies the decoded bytes when API Gateway base64-encodes the body", async () => {
    const body = JSON.stringify(transcriptionEvent("conv_1", { transcript: [] })).replace(
      "angelo",
      "Ångström 🎧",
    );
    const response = await handler(webhookRequest(body, { signedAtMs: T0, isBase64Encoded: true }));
    expect(response.statusCode).toBe(200);
    expect(ddb).toHaveReceivedCommand(BatchWriteCommand);
  });

  it.each([
    ["a wrong secret", webhookRequest(BODY, { signedAtMs: T0, secret: "wsec_wrong" }), "mismatch"],
    [
      "an altered body",
      webhookRequest(BODY.replace("A1042", "A1043"), { header: signature(BODY, T0 / 1000) }),
      "mismatch",
    ],
    ["no signature header", webhookRequest(BODY, { header: null }), "missing_header"],
    [
      "a timestamp 31 minutes old",
      webhookRequest(BODY, { signedAtMs: T0 - 31 * 60_000 }),
      "timestamp_too_old",
    ],
    [
      "a timestamp an hour ahead",
      webhookRequest(BODY, { signedAtMs: T0 + 3_600_000 }),
      "timestamp_in_future",
    ],
  ])("answers 401 invalid_signature for %s and stores nothing", async (_label, event, reason) => {
    const response = await handler(event);
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response)).toEqual({
      error: "invalid_signature",
      message: "The ElevenLabs-Signature header is missing, expired or does not match the body.",
    });
    expect(ddb.calls()).toHaveLength(0);
    expect(parker.parked).toEqual([]);
    expect(setup.metrics.counts).toEqual({ WebhookSignatureRejected: 1 });
    expect(setup.logger.lines).toEqual([
      expect.objectContaining({ level: "warn", data: expect.objectContaining({ reason }) }),
    ]);
    // Neither the secret nor the presented signature is ever logged.
    const header = event.headers["elevenlabs-signature"];
    expect(setup.logger.text()).not.toContain(WEBHOOK_SECRET);
    if (header) expect(setup.logger.text()).not.toContain(header.slice(-64));
  });

  it("acknowledges post_call_audio with 200 and stores nothing", async () => {
    const response = await handler(webhookRequest(JSON.stringify(audioEvent("conv_1")), { signedAtMs: T0 }));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual({ status: "ignored", eventType: "post_call_audio" });
    expect(ddb.calls()).toHaveLength(0);
    expect(setup.metrics.counts).toEqual({ PostCallIgnored: 1 });
  });

  it("answers 200 to a correctly signed body that is not JSON, and parks it rather than losing it", async () => {
    const response = await handler(webhookRequest("{not json", { signedAtMs: T0 }));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "unusable" });
    expect(ddb.calls()).toHaveLength(0);
    expect(parker.parked).toEqual([
      {
        receivedAt: new Date(T0).toISOString(),
        rawBody: "{not json",
        reason: "unusable: the body is not valid JSON",
      },
    ]);
    expect(setup.metrics.counts).toEqual({ PostCallUnusable: 1 });
    expect(setup.logger.lines.at(-1)).toMatchObject({ level: "warn", data: { parked: true } });
  });

  it("still answers 200 to an unusable signed event when parking it fails too (a retry would not help)", async () => {
    build({ failParking: true });
    const response = await handler(
      webhookRequest('{"type":"post_call_transcription","data":{}}', { signedAtMs: T0 }),
    );
    expect(response.statusCode).toBe(200);
    expect(setup.logger.lines.at(-1)).toMatchObject({ level: "warn", data: { parked: false } });
  });

  it("answers 413 through the adapter for a body over the route's limit, before anything is verified or stored", async () => {
    const huge = JSON.stringify({
      ...audioEvent("conv_1"),
      padding: "x".repeat(routeNamed("post-call-webhook").maxBodyBytes),
    });
    const response = await handler(webhookRequest(huge, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(413);
    expect(ddb.calls()).toHaveLength(0);
  });

  it("parks the exact body and answers 200 when DynamoDB stays throttled", async () => {
    ddb.on(BatchWriteCommand).rejects(throttled());
    const response = await handler(webhookRequest(BODY, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual({
      status: "parked",
      eventType: "post_call_transcription",
      conversationId: "conv_1",
    });
    expect(parker.parked).toEqual([
      { receivedAt: new Date(T0).toISOString(), rawBody: BODY, reason: "storage_unavailable" },
    ]);
    expect(setup.metrics.counts).toEqual({ PostCallParked: 1 });
    expect(setup.logger.lines.at(-1)).toMatchObject({
      level: "warn",
      data: { outcome: "webhook_parked", parker: "memory" },
    });
  });

  describe("a transcript the table cannot take before the request's time runs out", () => {
    // 500 lines are 21 batches of 25 (the closing analysis line makes 501). Every BatchWriteItem
    // takes 3 s of the shared clock: a throttled table, or a transcript of tens of thousands of lines.
    const LONG = JSON.stringify(
      transcriptionEvent("conv_long", {
        transcript: Array.from({ length: 500 }, (_, i) => line(i % 2 ? "user" : "agent", `line ${i}`, i)),
      }),
    );
    /** A table whose every BatchWriteItem takes 3 s of this test's own clock. */
    const slowTable = (remainingMs?: number) => {
      // Per test: batches a previous test left in flight keep that test's clock, never this one.
      let clock = T0;
      const startedAt: number[] = [];
      const deps = createDependencies(
        { SESSIONS_TABLE: "sessions", CONVERSATIONS_TABLE: "conversations", WEBHOOK_SECRET },
        { doc, now: () => clock, logger: setup.logger, metrics: setup.metrics },
      );
      ddb.on(BatchWriteCommand).callsFake(async () => {
        startedAt.push(clock - T0);
        await new Promise((resolve) => setImmediate(resolve));
        clock += 3_000;
        return {};
      });
      const slow = makeHandler({ ...deps, parker });
      const context = remainingMs === undefined ? undefined : lambdaContext(remainingMs);
      return { startedAt, send: () => slow(webhookRequest(LONG, { signedAtMs: T0 }), context) };
    };

    it("stops writing 5 s before the Lambda's time is up, parks the exact body and answers 200", async () => {
      const { startedAt, send } = slowTable(30_000);
      const response = await send();
      expect(response.statusCode).toBe(200);
      expect(bodyOf(response)).toEqual({
        status: "parked",
        eventType: "post_call_transcription",
        conversationId: "conv_long",
      });
      // The stop is at T0 + 25 s (30 s left minus the 5 s kept to park): every batch started
      // before it, and some of the 21 never started.
      expect(Math.max(...startedAt)).toBeLessThan(25_000);
      expect(startedAt.length).toBeGreaterThanOrEqual(8);
      expect(startedAt.length).toBeLessThan(21);
      // Parked whole: neither the meta touch after the lines nor the call facts were written.
      expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
      expect(parker.parked).toEqual([
        { receivedAt: new Date(T0).toISOString(), rawBody: LONG, reason: "storage_too_slow" },
      ]);
      expect(setup.logger.lines.at(-1)).toMatchObject({
        level: "warn",
        data: { outcome: "webhook_parked", reason: "storage_too_slow" },
      });
    });

    it("stops in time for API Gateway's 30 s cap when no Lambda context says how long is left (local)", async () => {
      const { startedAt, send } = slowTable();
      const response = await send();
      expect(bodyOf(response)).toMatchObject({ status: "parked" });
      // The stop is at T0 + 24 s (29 s minus 5 s): nothing starts at or after it.
      expect(Math.max(...startedAt)).toBeLessThan(24_000);
      expect(startedAt.length).toBeLessThan(21);
    });

    it("stores the whole transcript when the time left is enough", async () => {
      const { startedAt, send } = slowTable(900_000);
      const response = await send();
      expect(bodyOf(response)).toMatchObject({ status: "stored" });
      expect(startedAt).toHaveLength(21);
      expect(parker.parked).toEqual([]);
    });
  });

  it("parks on an unexpected storage error too, logging it at ERROR", async () => {
    ddb
      .on(UpdateCommand)
      .rejects(Object.assign(new Error("Item size too large"), { name: "ValidationException" }));
    const response = await handler(webhookRequest(BODY, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(200);
    expect(parker.parked[0]?.reason).toBe("storage_failed: ValidationException");
    expect(setup.logger.lines.map((l) => l.level)).toEqual(["error", "warn"]);
  });

  it("answers 503 with Retry-After when the event can be neither stored nor parked", async () => {
    build({ failParking: true });
    ddb.on(BatchWriteCommand).rejects(throttled());
    const response = await handler(webhookRequest(BODY, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(503);
    expect(response.headers?.["retry-after"]).toBe("5");
    expect(bodyOf(response)).toMatchObject({ error: "service_unavailable" });
    expect(setup.logger.lines[0]).toMatchObject({
      level: "error",
      message: "Post-call event could be neither stored nor parked; ElevenLabs must retry it",
    });
    expect(setup.metrics.counts).toEqual({ DependencyUnavailable: 1 });
  });

  it("answers 500 (logged, no details) when the webhook secret is not configured", async () => {
    build({ env: { WEBHOOK_SECRET: "" } });
    const response = await handler(webhookRequest(BODY, { signedAtMs: T0 }));
    expect(response.statusCode).toBe(500);
    expect(bodyOf(response)).toMatchObject({ error: "internal_error" });
    expect(ddb.calls()).toHaveLength(0);
  });
});

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runReconcilePass } from "../../functions/core/reconcile.js";
import { createReconcileDependencies } from "../../functions/core/reconcile-dependencies.js";
import { DEFAULT_RECONCILE_AFTER_MS } from "../../functions/core/table-schema.js";
import { makeHandler as makeGetConversation } from "../../functions/get-conversation/handler.js";
import { makeHandler as makeWebhook } from "../../functions/post-call-webhook/handler.js";
import { frozenAtRealNow } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { type FakeConversationsApi, startFakeConversationsApi } from "../support/fake-conversations-api.js";
import { SERVICE_TOKEN } from "../support/live-fixtures.js";
import { createLiveHarness, liveRequests } from "../support/live-harness.js";
import type { captureLogger } from "../support/log-capture.js";
import {
  ELEVENLABS_API_KEY,
  memoryParker,
  transcriptionEvent,
  WEBHOOK_SECRET,
  webhookRequest,
} from "../support/post-call-fixtures.js";
import { scanAll } from "../support/table-snapshot.js";

const TTL_MS = 600_000;
/** From a session's registration to the moment its conversation is due for reconciliation. */
const UNTIL_DUE = TTL_MS + DEFAULT_RECONCILE_AFTER_MS;
const id = (label: string) => `${label}-${randomUUID()}`;

describe("reconciliation on DynamoDB Local against a fake ElevenLabs API", () => {
  let fake: FakeConversationsApi;
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    fake = await startFakeConversationsApi(ELEVENLABS_API_KEY);
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** Fresh tables per test (a pass reads every due entry of its table), on a clock that starts at real now. */
  const setup = async () => {
    const tables: LocalTables = await createLocalTables();
    cleanups.push(() => tables.drop());
    // Real-now based: DynamoDB Local deletes TTL-expired session items by its own real clock.
    const clock = { t: frozenAtRealNow() };
    const now = () => clock.t;
    const live = createLiveHarness({
      doc: tables.doc,
      tables: tables.names,
      now,
      env: { WEBHOOK_SECRET, ELEVENLABS_API_KEY, ELEVENLABS_API_BASE_URL: fake.url },
    });
    const webhook = makeWebhook({ ...live.deps, parker: memoryParker() });
    const getConversation = makeGetConversation(live.deps);
    const reconcileDeps = createReconcileDependencies(live.deps, { timeoutMs: 2000 });
    // Counts what the pass's index queries read, independently of what the pass reports.
    const indexReads: { index: string; scanned: number }[] = [];
    tables.client.middlewareStack.add(
      (next, context) => async (args) => {
        const output = await next(args);
        const input = args.input as { IndexName?: string };
        if (context.commandName === "QueryCommand" && input.IndexName) {
          const scanned = (output.output as { ScannedCount?: number }).ScannedCount ?? 0;
          indexReads.push({ index: input.IndexName, scanned });
        }
        return output;
      },
      { step: "initialize", name: `countIndexReads-${randomUUID()}` },
    );
    const h = {
      tables,
      clock,
      live,
      logger: live.logger as ReturnType<typeof captureLogger>,
      metrics: live.metrics,
      indexReads,
      register: async (conversationId: string) => {
        const response = await live.handlers.register(
          liveRequests.register(conversationId, { agentId: "agent_01jxyz" }),
        );
        expect(response.statusCode).toBe(201);
      },
      deliver: async (body: unknown) => {
        const response = await webhook(webhookRequest(JSON.stringify(body), { signedAtMs: clock.t }));
        expect(response.statusCode).toBe(200);
        return bodyOf(response);
      },
      /** Delivers exactly this text, signed now (numbers like 1e400 as written). */
      deliverText: async (text: string) => {
        const response = await webhook(webhookRequest(text, { signedAtMs: clock.t }));
        expect(response.statusCode).toBe(200);
        return bodyOf(response);
      },
      pass: () => runReconcilePass(reconcileDeps),
      history: async (conversationId: string) => {
        const response = await getConversation(
          apiEvent({
            method: "GET",
            path: `/conversations/${conversationId}`,
            pathParameters: { conversationId },
            headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
            query: { limit: "100" },
          }),
        );
        expect(response.statusCode).toBe(200);
        return bodyOf(response) as {
          meta: Record<string, unknown>;
          messages: Record<string, unknown>[];
          sessions: unknown[];
        };
      },
      items: async (conversationId: string) =>
        (await scanAll(tables.doc, tables.names.conversations)).filter(
          (i) => i.conversationId === conversationId,
        ),
      meta: async (conversationId: string) =>
        (await scanAll(tables.doc, tables.names.conversations)).find(
          (i) => i.conversationId === conversationId && i.sk === "meta",
        ),
    };
    return h;
  };

  /** History lines that come from the call itself (session lines carry random session ids). */
  const callLines = (history: { messages: Record<string, unknown>[] }) =>
    history.messages.filter((m) => m.kind !== "session_registered");

  it("fetches the transcript whose webhook never came; its history is identical to one that got the webhook", async () => {
    const h = await setup();
    const withWebhook = id("hook");
    const without = id("lost");
    await h.register(withWebhook);
    await h.register(without);
    h.clock.t += 60_000;
    await h.deliver(transcriptionEvent(withWebhook));
    // ElevenLabs' GET answer is the webhook's `data`: the very same payload.
    fake.answer(without, { status: 200, body: transcriptionEvent(without).data });

    h.clock.t += UNTIL_DUE;
    const summary = await h.pass();

    expect(summary.results).toEqual([
      expect.objectContaining({ conversationId: without, outcome: "stored", lines: 3 }),
    ]);
    expect(fake.requestsFor(without)).toEqual([
      expect.objectContaining({ method: "GET", apiKey: ELEVENLABS_API_KEY }),
    ]);
    expect(fake.requestsFor(withWebhook)).toEqual([]);
    const a = await h.history(withWebhook);
    const b = await h.history(without);
    expect(callLines(b)).toEqual(callLines(a));
    expect(callLines(b).map((m) => m.kind)).toEqual([
      "transcript",
      "transcript",
      "transcript",
      "call_analysis",
    ]);
    expect({ ...b.meta, conversationId: "x", updatedAt: "x", createdAt: "x", lastSession: "x" }).toEqual({
      ...a.meta,
      conversationId: "x",
      updatedAt: "x",
      createdAt: "x",
      lastSession: "x",
    });
    expect(b.sessions).toHaveLength(a.sessions.length);
    expect(h.metrics.counts.ReconcileStored).toBe(1);
    // Out of the backlog: the next pass, however late, reads nothing.
    h.clock.t += 30 * 86_400_000;
    expect((await h.pass()).read).toBe(0);
    expect(fake.requestsFor(without)).toHaveLength(1);
  });

  it("stores once when the webhook arrives after the reconciliation", async () => {
    const h = await setup();
    const conv = id("late-hook");
    await h.register(conv);
    fake.answer(conv, { status: 200, body: transcriptionEvent(conv).data });
    h.clock.t += UNTIL_DUE;
    expect((await h.pass()).results).toEqual([expect.objectContaining({ outcome: "stored" })]);
    const reconciled = await h.items(conv);

    h.clock.t += 60_000;
    expect(await h.deliver(transcriptionEvent(conv))).toMatchObject({ status: "stored" });

    const after = await h.items(conv);
    expect(after.map((i) => i.sk).sort()).toEqual(reconciled.map((i) => i.sk).sort());
    const lines = (items: Record<string, unknown>[]) => items.filter((i) => i.sk !== "meta");
    expect(lines(after)).toEqual(lines(reconciled));
    expect(after).toHaveLength(1 + 2 + 4); // meta, session line + its window (win#), 3 transcript lines, analysis
  });

  it("fetches nothing when the webhook stored the transcript first", async () => {
    const h = await setup();
    const conv = id("hook-first");
    await h.register(conv);
    h.clock.t += 120_000;
    await h.deliver(transcriptionEvent(conv));
    const stored = await h.items(conv);
    expect(await h.meta(conv)).not.toHaveProperty("reconcileDueAtMs");

    h.clock.t += UNTIL_DUE;
    const summary = await h.pass();
    expect(summary.read).toBe(0);
    expect(fake.requestsFor(conv)).toEqual([]);
    expect((await h.items(conv)).filter((i) => i.sk !== "meta")).toEqual(
      stored.filter((i) => i.sk !== "meta"),
    );
  });

  it("stores once when the webhook lands while ElevenLabs is answering the reconciliation", async () => {
    const h = await setup();
    const conv = id("race");
    await h.register(conv);
    fake.answer(conv, { status: 200, body: transcriptionEvent(conv).data, delayMs: 400 });
    h.clock.t += UNTIL_DUE;
    const pass = h.pass();
    await sleep(100);
    await h.deliver(transcriptionEvent(conv));
    const summary = await pass;

    expect(summary.results).toEqual([
      expect.objectContaining({ conversationId: conv, outcome: "already_stored" }),
    ]);
    expect(fake.requestsFor(conv)).toHaveLength(1);
    expect(await h.items(conv)).toHaveLength(1 + 2 + 4);
    expect(await h.meta(conv)).toMatchObject({ reconcileOutcome: "transcript_stored" });
  });

  it("lets a new session window that starts while ElevenLabs answers win over the answer", async () => {
    const h = await setup();
    const conv = id("refreshed");
    await h.register(conv);
    fake.answer(conv, { status: 404, delayMs: 400 });
    h.clock.t += UNTIL_DUE;
    const pass = h.pass();
    await sleep(100);
    await h.register(conv); // the app starts a new window on the same conversation
    const summary = await pass;

    expect(summary.results).toEqual([expect.objectContaining({ conversationId: conv, outcome: "skipped" })]);
    const meta = await h.meta(conv);
    expect(meta).not.toHaveProperty("reconcileOutcome");
    expect(meta).toMatchObject({ reconcileDueAtMs: h.clock.t + UNTIL_DUE, reconcileAttempts: 0 });
  });

  it("retries a conversation ElevenLabs still processes, and stores it once it is done", async () => {
    const h = await setup();
    const conv = id("processing");
    await h.register(conv);
    const { data } = transcriptionEvent(conv);
    fake.answer(
      conv,
      { status: 200, body: { ...data, status: "processing", analysis: null } },
      { status: 200, body: data },
    );
    h.clock.t += UNTIL_DUE;

    const first = await h.pass();
    expect(first.results).toEqual([
      expect.objectContaining({ outcome: "still_processing", attempts: 1, detail: "processing" }),
    ]);
    expect(
      (await h.items(conv)).map((i) => (String(i.sk).startsWith("win#") ? "win" : (i.kind ?? i.sk))).sort(),
    ).toEqual(["meta", "session_registered", "win"]);
    expect(await h.meta(conv)).toMatchObject({
      reconcileAttempts: 1,
      reconcileDueAtMs: h.clock.t + 5 * 60_000,
    });

    // Not due again yet: the next pass reads nothing and asks nothing.
    h.clock.t += 60_000;
    expect((await h.pass()).read).toBe(0);
    expect(fake.requestsFor(conv)).toHaveLength(1);

    h.clock.t += 4 * 60_000;
    expect((await h.pass()).results).toEqual([expect.objectContaining({ outcome: "stored" })]);
    expect(await h.items(conv)).toHaveLength(1 + 2 + 4);
    expect(h.metrics.counts).toMatchObject({ ReconcileStillProcessing: 1, ReconcileStored: 1 });
  });

  it.each([
    ["not_found", undefined, "ReconcileNotFound"],
    ["failed", "failed", "ReconcileFailed"],
  ] as const)("records %s once and never asks again", async (reason, status, metric) => {
    const h = await setup();
    const conv = id(reason);
    await h.register(conv);
    if (status) fake.answer(conv, { status: 200, body: { ...transcriptionEvent(conv).data, status } });
    h.clock.t += UNTIL_DUE;

    expect((await h.pass()).results).toEqual([expect.objectContaining({ outcome: reason })]);
    const history = await h.history(conv);
    expect(history.meta.transcriptUnavailable).toEqual({ reason, at: new Date(h.clock.t).toISOString() });
    expect(callLines(history)).toEqual([]);

    h.clock.t += 7 * 86_400_000;
    expect((await h.pass()).read).toBe(0);
    expect(fake.requestsFor(conv)).toHaveLength(1);
    expect(h.metrics.counts[metric]).toBe(1);
  });

  it("counts a refused API key as a configuration error, keeps the conversation due and stops the pass", async () => {
    const h = await setup();
    const first = id("auth-a");
    const second = id("auth-b");
    await h.register(first);
    h.clock.t += 1000;
    await h.register(second);
    fake.answer(first, { status: 401, body: { detail: "invalid api key" } });
    fake.answer(second, { status: 401 });
    h.clock.t += UNTIL_DUE;

    const summary = await h.pass();
    expect(summary.results).toEqual([
      expect.objectContaining({
        conversationId: first,
        outcome: "auth_error",
        attempts: 0,
        detail: "HTTP 401",
      }),
    ]);
    expect(summary).toMatchObject({ deferred: 1, stoppedEarly: "ElevenLabs refused the API key" });
    expect(h.metrics.counts.ReconcileAuthError).toBe(1);
    expect(await h.meta(first)).toMatchObject({
      reconcileAttempts: 0,
      reconcileDueAtMs: h.clock.t + 5 * 60_000,
    });
    const errors = h.logger.lines.filter((l) => l.level === "error");
    expect(errors.map((l) => l.message)).toEqual([expect.stringContaining("refused the API key")]);
    expect(h.logger.text()).not.toContain(ELEVENLABS_API_KEY);
  });

  it("retries a 200 that is not the documented shape, stores nothing and logs no payload contents", async () => {
    const h = await setup();
    const conv = id("malformed");
    const notJson = id("notjson");
    await h.register(conv);
    await h.register(notJson);
    const { data } = transcriptionEvent(conv);
    const secretWords = "The caller's card number is 4111 1111 1111 1111";
    fake.answer(conv, {
      status: 200,
      body: { ...data, transcript: [{ role: "user", message: secretWords, time_in_call_secs: "soon" }] },
    });
    fake.answer(notJson, { status: 200, raw: `<html>${secretWords}</html>` });
    h.clock.t += UNTIL_DUE;

    const summary = await h.pass();
    expect(summary.results.map((r) => [r.conversationId, r.outcome]).sort()).toEqual(
      [
        [conv, "malformed_answer"],
        [notJson, "malformed_answer"],
      ].sort(),
    );
    expect(summary.results.find((r) => r.conversationId === conv)?.detail).toContain(
      "data.transcript.0.time_in_call_secs",
    );
    expect(await h.items(conv)).toHaveLength(3); // meta, the session line and its window: nothing half stored
    expect(await h.meta(conv)).toMatchObject({ reconcileAttempts: 1 });
    expect(h.logger.text()).not.toContain("4111");
    expect(h.logger.text()).not.toContain(ELEVENLABS_API_KEY);
    expect(h.metrics.counts.ReconcileMalformedAnswer).toBe(2);
  });

  // Issue 19, reproductions 1-3 through reconciliation: the fetched transcript goes through the
  // storable module exactly as the webhook's does (replaced and noted, never a failed write).
  it("stores a fetched transcript with a `constructor` key, a 1e300 duration and 1e400 exactly as the webhook would", async () => {
    const h = await setup();
    const hooked = id("odd-hook");
    const fetched = id("odd-lost");
    await h.register(hooked);
    await h.register(fetched);
    h.clock.t += 60_000;
    /** Raw JSON, so 1e400 reaches the service as written (JSON.stringify would send null). */
    const oddData = (conv: string) =>
      JSON.stringify(transcriptionEvent(conv).data)
        .replace(/"call_duration_secs":\d+/, '"call_duration_secs":1e300')
        .replace(
          '"data_collection_results":{',
          '"data_collection_results":{"constructor":{"data_collection_id":"constructor","value":"Ferrari"},"lap":{"value":1e400},',
        );
    const webhookBody = `{"type":"post_call_transcription","event_timestamp":${Math.floor(h.clock.t / 1000)},"data":${oddData(hooked)}}`;
    expect((await h.deliverText(webhookBody)).status).toBe("stored");
    fake.answer(fetched, { status: 200, raw: oddData(fetched) });

    h.clock.t += UNTIL_DUE;
    const summary = await h.pass();
    expect(summary.results).toEqual([
      expect.objectContaining({ conversationId: fetched, outcome: "stored" }),
    ]);

    const a = await h.history(hooked);
    const b = await h.history(fetched);
    expect(callLines(b)).toEqual(callLines(a));
    const call = b.meta.call as Record<string, unknown>;
    expect(call).toEqual(a.meta.call);
    expect(JSON.stringify(call)).toContain(
      '"constructor":{"data_collection_id":"constructor","value":"Ferrari"}',
    );
    expect(call.storageNotes).toEqual(
      expect.arrayContaining([expect.stringContaining("lap.value is not a finite number")]),
    );
  });

  it("reads only the due entries of the index, never the rest of the table", async () => {
    const h = await setup();
    const early = [id("due-1"), id("due-2"), id("due-3")];
    const late = [id("later-1"), id("later-2")];
    for (const conv of early) {
      await h.register(conv);
      fake.answer(conv, { status: 200, body: transcriptionEvent(conv).data });
    }
    h.clock.t += 30 * 60_000;
    for (const conv of late) await h.register(conv);
    // Plenty of history that is not in the index at all.
    await h.deliver(transcriptionEvent(id("no-session")));
    h.clock.t += UNTIL_DUE - 30 * 60_000 + 1;

    h.indexReads.length = 0;
    const summary = await h.pass();
    expect(summary.results.map((r) => r.outcome)).toEqual(["stored", "stored", "stored"]);
    expect(summary.read).toBe(3);
    expect(h.indexReads.reduce((sum, r) => sum + r.scanned, 0)).toBe(3);
    expect(new Set(h.indexReads.map((r) => r.index))).toEqual(new Set(["awaiting-transcript"]));
    for (const conv of late) expect(fake.requestsFor(conv)).toEqual([]);
  });
});

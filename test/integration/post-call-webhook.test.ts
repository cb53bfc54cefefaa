import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { fileParker, readParkedFile } from "../../functions/core/parking.js";
import { replayParked } from "../../functions/core/post-call-api.js";
import { makeHandler as makeWebhook } from "../../functions/post-call-webhook/handler.js";
import { frozenAtRealNow } from "../support/clock.js";
import { bodyOf } from "../support/events.js";
import { freezeAt, useHistoryHarness } from "../support/history-harness.js";
import {
  audioEvent,
  initiationFailureEvent,
  line,
  transcriptionEvent,
  webhookRequest,
} from "../support/post-call-fixtures.js";

const id = (label: string) => `${label}-${randomUUID()}`;
/** No session item is written here, but every clock that stamps DynamoDB Local data starts from the real now. */
const NOW = frozenAtRealNow();

describe("post-call webhook on DynamoDB Local", () => {
  const harness = useHistoryHarness();

  it("stores the transcript and analysis of a conversation that never had a session", async () => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("nosession");
    const response = await h.deliver(transcriptionEvent(conv));
    expect(response.statusCode).toBe(200);

    const history = await h.readAll(conv);
    expect(history.messages.map((m) => [m.kind, m.role, m.at])).toEqual([
      ["transcript", "agent", "2025-02-14T12:48:17.000Z"],
      ["transcript", "agent", "2025-02-14T12:48:23.000Z"],
      ["transcript", "user", "2025-02-14T12:48:26.000Z"],
      ["call_analysis", undefined, "2025-02-14T12:48:39.000Z"],
    ]);
    expect(history.meta).toMatchObject({
      conversationId: conv,
      agentId: "agent_01jxyz",
      status: "done",
      call: {
        summary: "Caller asked about order A1042; agent confirmed it shipped.",
        callSuccessful: "success",
        dataCollectionResults: { order_id: { value: "A1042" } },
        durationSecs: 22,
        terminationReason: "Client disconnected",
      },
    });
    expect(history.sessions).toEqual([]);
    expect(h.metrics.counts.PostCallStored).toBeGreaterThanOrEqual(1);
  });

  it("stores the same event once when ElevenLabs delivers it twice, even concurrently", async () => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("twice");
    const body = JSON.stringify(transcriptionEvent(conv));
    expect((await h.deliver(body)).statusCode).toBe(200);
    const once = await h.items(conv);
    // ElevenLabs' retries come later: nothing of the receiving time may end up in a key.
    vi.setSystemTime(NOW + 90_000);
    const [a, b] = await Promise.all([h.deliver(body), h.deliver(body)]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    const twice = await h.items(conv);
    expect(twice.map((i) => i.sk).sort()).toEqual(once.map((i) => i.sk).sort());
    expect(twice).toHaveLength(5); // meta + 3 lines + analysis
  });

  it("records a call initiation failure once, even when re-sent with another event_timestamp", async () => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("busy");
    expect(bodyOf(await h.deliver(initiationFailureEvent(conv)))).toMatchObject({ status: "stored" });
    expect((await h.deliver(initiationFailureEvent(conv, 1_759_931_999))).statusCode).toBe(200);
    const history = await h.readAll(conv);
    expect(history.messages).toEqual([
      expect.objectContaining({
        kind: "call_initiation_failure",
        at: "2025-10-08T13:54:12.000Z",
        text: "busy",
        data: expect.objectContaining({ provider: "sip", sipStatusCode: 486 }),
      }),
    ]);
    expect(history.meta).toMatchObject({
      status: "failed",
      call: { initiationFailure: { failureReason: "busy" } },
    });
  });

  it("acknowledges post_call_audio without storing anything", async () => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("audio");
    expect((await h.deliver(audioEvent(conv))).statusCode).toBe(200);
    expect(await h.items(conv)).toEqual([]);
  });

  it.each([
    ["a wrong secret", (body: string) => webhookRequest(body, { secret: "wsec_wrong" })],
    ["an altered body", (body: string) => ({ ...webhookRequest(body), body: body.replace("A1042", "B") })],
    ["no signature", (body: string) => webhookRequest(body, { header: null })],
    [
      "a signature 31 minutes old",
      (body: string) => webhookRequest(body, { signedAtMs: Date.now() - 31 * 60_000 }),
    ],
    [
      "a signature an hour ahead",
      (body: string) => webhookRequest(body, { signedAtMs: Date.now() + 3_600_000 }),
    ],
  ])("rejects %s with 401 and stores nothing", async (_label, request) => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("forged");
    const response = await h.webhook(request(JSON.stringify(transcriptionEvent(conv))));
    expect(response.statusCode).toBe(401);
    expect(await h.items(conv)).toEqual([]);
  });

  it("keeps pages stable when the same event is re-delivered between two page reads", async () => {
    const h = harness();
    freezeAt(NOW);
    const conv = id("pages");
    const transcript = Array.from({ length: 30 }, (_, i) =>
      line(i % 2 ? "user" : "agent", `line ${i}`, i * 2),
    );
    const body = JSON.stringify(transcriptionEvent(conv, { transcript, durationSecs: 70 }));
    await h.deliver(body);
    const first = bodyOf(await h.readPage(conv, { limit: "7" }));
    await h.deliver(body);
    const rest = await (async () => {
      const messages: unknown[] = [];
      let cursor = first.nextCursor as string | undefined;
      while (cursor) {
        const page = bodyOf(await h.readPage(conv, { limit: "7", cursor }));
        messages.push(...(page.messages as unknown[]));
        cursor = page.nextCursor as string | undefined;
      }
      return messages;
    })();
    const texts = [
      ...(first.messages as Record<string, unknown>[]),
      ...(rest as Record<string, unknown>[]),
    ].map((m) => m.text);
    expect(texts.slice(0, 30)).toEqual(transcript.map((l) => l.message));
    expect(texts).toHaveLength(31);
  });

  it("parks an event it cannot store and replays it later into the same history, once", async () => {
    const h = harness();
    freezeAt(NOW);
    const dir = await mkdtemp(join(tmpdir(), "parked-"));
    try {
      const conv = id("parked");
      const body = JSON.stringify(transcriptionEvent(conv));
      // A store whose table does not exist: every write fails, as during an outage.
      const broken = new ConversationStore({
        client: h.tables.doc,
        tableName: "no-such-table",
        logger: h.logger,
      });
      const outage = makeWebhook({ ...h.deps, conversations: broken, parker: fileParker(dir) });
      const response = await outage(webhookRequest(body));
      expect(response.statusCode).toBe(200);
      expect(bodyOf(response)).toMatchObject({ status: "parked" });
      expect(await h.items(conv)).toEqual([]);

      const parked = await readParkedFile(dir);
      expect(parked).toEqual([
        {
          receivedAt: new Date(NOW).toISOString(),
          rawBody: body,
          reason: "storage_failed: ResourceNotFoundException",
        },
      ]);
      expect(await replayParked({ conversations: h.deps.conversations }, parked)).toEqual([
        expect.objectContaining({ conversationId: conv, outcome: "stored" }),
      ]);
      await replayParked({ conversations: h.deps.conversations }, parked);
      const history = await h.readAll(conv);
      expect(history.messages.map((m) => m.kind)).toEqual([
        "transcript",
        "transcript",
        "transcript",
        "call_analysis",
      ]);
      expect(await h.items(conv)).toHaveLength(5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { frozenAtRealNow, iso } from "../support/clock.js";
import { createLocalTables } from "../support/dynamo.js";
import { bodyOf } from "../support/events.js";
import { freezeAt, historyHarness, useHistoryHarness } from "../support/history-harness.js";
import { TEN_MIN } from "../support/live-fixtures.js";
import { liveRequests } from "../support/live-harness.js";
import { line, transcriptionEvent } from "../support/post-call-fixtures.js";

const HOUR = 3_600_000;

describe("conversation history on DynamoDB Local", () => {
  const harness = useHistoryHarness();

  it("reads back everything that happened after the session expired hours ago and was deleted", async () => {
    const h = harness();
    const conv = `done-${randomUUID()}`;
    const T0 = frozenAtRealNow();
    const tool = () => h.handlers.callTool(liveRequests.callTool(conv, { order_id: "A1042" }));
    const report = (index: number, value: unknown) => {
      const message = h.dispatched[index];
      if (!message) throw new Error("no task was dispatched");
      return h.handlers.result(liveRequests.result(message, { result: value }));
    };

    // The call: session at T0, two tool tasks, one answered live, one after the session expired.
    freezeAt(T0);
    const registered = await h.handlers.register(liveRequests.register(conv, { agentId: "agent_01jxyz" }));
    expect(registered.statusCode).toBe(201);
    vi.setSystemTime(T0 + 7_000);
    await tool();
    vi.setSystemTime(T0 + 15_000);
    await tool();
    vi.setSystemTime(T0 + 25_000);
    expect(bodyOf(await report(0, { status: "shipped" }))).toMatchObject({ outcome: "delivered" });
    vi.setSystemTime(T0 + TEN_MIN + 60_000);
    expect(bodyOf(await report(1, { status: "lost" }))).toMatchObject({ outcome: "session_expired" });

    // Hours later: the session is gone (deleted, as TTL would), then ElevenLabs' webhook arrives.
    vi.setSystemTime(T0 + 3 * HOUR);
    const before = (await h.items(conv)).length;
    await h.deps.sessions.delete(conv);
    expect(await h.items(conv)).toHaveLength(before);
    const webhook = await h.deliver(
      transcriptionEvent(conv, {
        startSecs: (T0 + 2_000) / 1000,
        durationSecs: 40,
        transcript: [
          line("agent", "Hi!", 0),
          line("user", "Where is A1042?", 6),
          line("agent", "Shipped.", 30),
        ],
      }),
    );
    expect(webhook.statusCode).toBe(200);

    const history = await h.readAll(conv, 3);
    expect(history.pages).toBeGreaterThan(1);
    expect(history.messages.map((m) => [m.kind, m.at])).toEqual([
      ["session_registered", iso(T0)],
      ["transcript", iso(T0 + 2_000)],
      ["task_started", iso(T0 + 7_000)],
      ["transcript", iso(T0 + 8_000)],
      ["task_started", iso(T0 + 15_000)],
      ["task_result", iso(T0 + 25_000)],
      ["transcript", iso(T0 + 32_000)],
      ["call_analysis", iso(T0 + 42_000)],
      ["task_result", iso(T0 + TEN_MIN + 60_000)],
    ]);
    expect(history.sessions).toEqual([
      {
        sessionId: expect.any(String),
        createdAt: iso(T0),
        expiresAt: iso(T0 + TEN_MIN),
        status: "expired",
        endedAt: iso(T0 + TEN_MIN),
        // The webhook came hours after the session's own end: it timed out, the call did not end it.
        reason: "timed_out",
      },
    ]);
    expect(history.tasks).toEqual([
      expect.objectContaining({
        outcome: "delivered",
        result: { status: "succeeded", result: { status: "shipped" } },
      }),
      expect.objectContaining({
        outcome: "session_expired",
        expiredAt: iso(T0 + TEN_MIN),
        expiredForMs: 60_000,
      }),
    ]);
    expect(JSON.stringify(history)).not.toContain("tokenHash");
    expect(history.meta).toMatchObject({
      agentId: "agent_01jxyz",
      status: "done",
      sessionCount: 1,
      taskCount: 2,
      lastSession: { createdAt: iso(T0), expiresAtMs: T0 + TEN_MIN },
      call: {
        callSuccessful: "success",
        summary: expect.any(String),
        dataCollectionResults: expect.any(Object),
      },
    });
    // No history item carries a TTL attribute; the webhook added its 4 lines to the rest.
    const items = await h.items(conv);
    expect(items).toHaveLength(before + 4);
    for (const item of items) expect(item).not.toHaveProperty("expiresAt");
  });

  it("lists conversations newest first with stable pages while conversations change and arrive", async () => {
    // Its own tables, so the listing holds exactly this test's conversations.
    const own = await createLocalTables();
    const T0 = frozenAtRealNow();
    try {
      const list = historyHarness(own);
      const ids = Array.from({ length: 7 }, (_, i) => `list-${i}-${randomUUID()}`);
      for (const [i, conv] of ids.entries()) {
        freezeAt(T0 + i * 60_000);
        await list.deliver(transcriptionEvent(conv));
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let round = 0;
      do {
        const page = bodyOf(await list.listPage({ limit: "3", ...(cursor ? { cursor } : {}) }));
        seen.push(...(page.conversations as { conversationId: string }[]).map((c) => c.conversationId));
        cursor = page.nextCursor as string | undefined;
        // Between pages: an old conversation gets a new event, and a new one starts.
        freezeAt(T0 + HOUR + round * 60_000);
        await list.deliver(
          transcriptionEvent(ids[0] ?? "", { transcript: [line("user", `again ${round}`, 1)] }),
        );
        await list.deliver(transcriptionEvent(`new-${round}-${randomUUID()}`));
        round++;
      } while (cursor);
      expect(seen).toEqual([...ids].reverse());
    } finally {
      await own.drop();
    }
  });
});

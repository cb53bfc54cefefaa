import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import { frozenAtRealNow, iso } from "../support/clock.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { freezeAt, useHistoryHarness } from "../support/history-harness.js";
import { TEN_MIN, TOOL_SECRET } from "../support/live-fixtures.js";
import { liveRequests } from "../support/live-harness.js";
import type { LogLine } from "../support/log-capture.js";
import { transcriptionEvent, webhookRequest } from "../support/post-call-fixtures.js";

// Sessions follow the conversation's own life (issue 15): a phone agent's first tool call starts
// the session, the end of the call ends it. On DynamoDB Local, clocks frozen from the real now.

/** What the harness' capturing logger recorded. */
const logLines = (h: { logger: unknown }): LogLine[] => (h.logger as { lines: LogLine[] }).lines;

const id = (label: string) => `${label}-${randomUUID()}`;
const toolAuth = { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" };
const PHONE = {
  system__agent_id: "agent_phone_1",
  system__call_sid: "CA1234567890abcdef",
  system__caller_id: "+15551230000",
  system__called_number: "+15559870000",
};

describe("sessions that follow the call, on DynamoDB Local", () => {
  const harness = useHistoryHarness();

  /** The task message of an accepted tool answer (the harness' dispatcher recorded it). */
  const accepted = (h: ReturnType<typeof harness>, body: Record<string, unknown>): TaskMessage => {
    expect(body).toMatchObject({ status: "accepted" });
    const message = h.dispatched.find((m) => m.taskId === body.taskId);
    if (!message) throw new Error("the accepted task was not dispatched");
    return message;
  };

  it("a phone call's first tool call starts the session: callbacks at +599 999 ms delivered, at +600 000 ms session_expired (timed_out)", async () => {
    const h = harness();
    const t0 = frozenAtRealNow();
    const conv = id("phone");
    freezeAt(t0);
    const first = await h.handlers.callTool(liveRequests.callTool(conv, { order_id: "A1", ...PHONE }));
    expect(first.statusCode).toBe(200);
    const task1 = accepted(h, bodyOf(first));
    // system__ values are call context, not task parameters.
    expect(task1.params).toEqual({ order_id: "A1" });
    const task2 = accepted(
      h,
      bodyOf(await h.handlers.callTool(liveRequests.callTool(conv, { order_id: "A2" }))),
    );

    const session = bodyOf(await h.handlers.getSession(liveRequests.getSession(conv)));
    expect(session).toMatchObject({
      createdAt: iso(t0),
      expiresAt: iso(t0 + TEN_MIN),
      agentId: "agent_phone_1",
    });

    freezeAt(t0 + TEN_MIN - 1);
    expect(bodyOf(await h.handlers.result(liveRequests.result(task1)))).toMatchObject({
      outcome: "delivered",
    });
    freezeAt(t0 + TEN_MIN);
    const late = await h.handlers.result(liveRequests.result(task2));
    expect(late.statusCode).toBe(200);
    expect(bodyOf(late)).toMatchObject({
      outcome: "session_expired",
      reason: "timed_out",
      expiredAt: iso(t0 + TEN_MIN),
      expiredForMs: 0,
    });
    // An expired session is never restarted by a tool call.
    const after = bodyOf(await h.handlers.callTool(liveRequests.callTool(conv, PHONE)));
    expect(after).toMatchObject({ status: "session_expired", reason: "timed_out" });

    const history = await h.readAll(conv);
    expect(history.meta).toMatchObject({
      agentId: "agent_phone_1",
      sessionCount: 1,
      taskCount: 2,
      sessionStart: {
        by: "first_tool_call",
        toolName: "lookup_order",
        at: iso(t0),
        agentId: "agent_phone_1",
        callSid: "CA1234567890abcdef",
        callerId: "+15551230000",
        calledNumber: "+15559870000",
      },
    });
    expect(history.sessions).toEqual([
      expect.objectContaining({ status: "expired", reason: "timed_out", endedAt: iso(t0 + TEN_MIN) }),
    ]);
    const line = logLines(h).find(
      (l) => l.message === "Callback arrived after session expired" && l.data.conversationId === conv,
    );
    expect(line).toMatchObject({ level: "warn", data: { reason: "timed_out" } });
  });

  it("two concurrent first tool calls start one session, and both tasks are accepted under it", async () => {
    const h = harness();
    freezeAt(frozenAtRealNow());
    const conv = id("race-start");
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        h.handlers.callTool(liveRequests.callTool(conv, { order_id: `A${i}`, ...PHONE })),
      ),
    );
    const messages = answers.map((a) => accepted(h, bodyOf(a)));
    const history = await h.readAll(conv);
    expect(history.meta).toMatchObject({ sessionCount: 1, taskCount: 6 });
    expect(history.sessions).toHaveLength(1);
    const sessionId = (history.sessions as { sessionId: string }[])[0]?.sessionId;
    expect(new Set((history.tasks as { sessionId: string }[]).map((t) => t.sessionId))).toEqual(
      new Set([sessionId]),
    );
    expect(messages).toHaveLength(6);
    expect(
      logLines(h).filter(
        (l) => l.message === "Session started by the first tool call" && l.data.conversationId === conv,
      ),
    ).toHaveLength(1);
  });

  it("with SESSION_START=app nothing but the app starts a session", async () => {
    const { createLiveHarness } = await import("../support/live-harness.js");
    const h = harness();
    const app = createLiveHarness({
      doc: h.tables.doc,
      tables: h.tables.names,
      env: { SESSION_START: "app" },
    });
    freezeAt(frozenAtRealNow());
    const conv = id("app-only");
    expect(bodyOf(await app.handlers.callTool(liveRequests.callTool(conv)))).toMatchObject({
      status: "session_not_found",
    });
    expect((await app.handlers.getSession(liveRequests.getSession(conv))).statusCode).toBe(404);
  });

  it("the signed post-call webhook ends a live session: the next callback is 200 session_expired (call_ended)", async () => {
    const h = harness();
    const t0 = frozenAtRealNow();
    const conv = id("ended");
    freezeAt(t0);
    expect((await h.handlers.register(liveRequests.register(conv))).statusCode).toBe(201);
    const task = accepted(h, bodyOf(await h.handlers.callTool(liveRequests.callTool(conv))));

    // A forged or unsigned event never ends a session.
    freezeAt(t0 + 30_000);
    const body = JSON.stringify(transcriptionEvent(conv));
    expect((await h.webhook(webhookRequest(body, { secret: "wsec_forged" }))).statusCode).toBe(401);
    expect((await h.webhook(webhookRequest(body, { header: null }))).statusCode).toBe(401);
    expect(bodyOf(await h.handlers.getSession(liveRequests.getSession(conv)))).toMatchObject({
      remainingMs: TEN_MIN - 30_000,
    });

    freezeAt(t0 + 60_000);
    expect((await h.deliver(transcriptionEvent(conv))).statusCode).toBe(200);
    const stored = logLines(h).find(
      (l) => l.message === "Session ended before its window closed" && l.data.conversationId === conv,
    );
    expect(stored?.data).toMatchObject({ reason: "call_ended", endedAt: iso(t0 + 60_000) });

    freezeAt(t0 + 61_000);
    const late = await h.handlers.result(liveRequests.result(task));
    expect(late.statusCode).toBe(200);
    expect(bodyOf(late)).toMatchObject({
      outcome: "session_expired",
      reason: "call_ended",
      expiredAt: iso(t0 + 60_000),
      expiredForMs: 1000,
    });
    // A repeat answers the first outcome, reason included.
    expect(bodyOf(await h.handlers.result(liveRequests.result(task)))).toMatchObject({
      duplicate: true,
      outcome: "session_expired",
      reason: "call_ended",
    });
    const tool = bodyOf(await h.handlers.callTool(liveRequests.callTool(conv)));
    expect(tool).toMatchObject({ status: "session_expired", reason: "call_ended" });
    expect(String(tool.message)).toContain("call has ended");
    const line = logLines(h).find(
      (l) =>
        l.message === "Tool called after session expired; nothing dispatched" &&
        l.data.conversationId === conv,
    );
    const callback = logLines(h).find(
      (l) => l.message === "Callback arrived after session expired" && l.data.conversationId === conv,
    );
    expect(callback).toMatchObject({ level: "warn", data: { reason: "call_ended" } });
    expect(line).toMatchObject({ level: "warn", data: { reason: "call_ended" } });

    const history = await h.readAll(conv);
    expect(history.sessions).toEqual([
      expect.objectContaining({ status: "call_ended", reason: "call_ended", endedAt: iso(t0 + 60_000) }),
    ]);
    expect(history.meta).toMatchObject({ lastSession: { endedAtMs: t0 + 60_000, endReason: "call_ended" } });
    // The getter says expired, too (the item is gone; the meta knows why).
    expect((await h.handlers.getSession(liveRequests.getSession(conv))).statusCode).toBe(410);
  });

  it("a webhook ending the session and a callback at the same instant have one consistent outcome", async () => {
    const h = harness();
    for (let round = 0; round < 4; round++) {
      const t0 = frozenAtRealNow();
      const conv = id(`race-end-${round}`);
      freezeAt(t0);
      await h.handlers.register(liveRequests.register(conv, {}));
      const task = accepted(h, bodyOf(await h.handlers.callTool(liveRequests.callTool(conv))));
      freezeAt(t0 + 5000);
      const [hook, callback] = await Promise.all([
        h.deliver(transcriptionEvent(conv)),
        h.handlers.result(liveRequests.result(task)),
      ]);
      expect(hook.statusCode).toBe(200);
      const answer = bodyOf(callback);
      const history = await h.readAll(conv);
      const stored = (history.tasks as { outcome: string; endReason?: string }[])[0];
      // What the runner heard is what the history says; the session ended either way.
      expect(stored?.outcome).toBe(answer.outcome);
      if (answer.outcome === "session_expired") expect(answer.reason).toBe("call_ended");
      else expect(answer.outcome).toBe("delivered");
      expect(history.sessions).toEqual([expect.objectContaining({ status: "call_ended" })]);
    }
  });

  it("get_task_result never starts a session: 200 'no tasks yet'; task_id null or \"\" means all tasks", async () => {
    const h = harness();
    freezeAt(frozenAtRealNow());
    const conv = id("poll");
    const poll = (body: Record<string, unknown>) =>
      h.handlers.poll(
        apiEvent({
          method: "POST",
          path: "/tools/get_task_result",
          headers: toolAuth,
          body: { conversation_id: conv, ...body },
        }),
      );
    const before = await poll({});
    expect(before.statusCode).toBe(200);
    expect(bodyOf(before)).toMatchObject({ status: "no_tasks", tasks: [] });
    expect(String(bodyOf(before).message)).toContain("no tasks");
    expect((await h.handlers.getSession(liveRequests.getSession(conv))).statusCode).toBe(404);

    accepted(h, bodyOf(await h.handlers.callTool(liveRequests.callTool(conv))));
    accepted(h, bodyOf(await h.handlers.callTool(liveRequests.callTool(conv, { order_id: null, note: "" }))));
    for (const taskId of [null, ""]) {
      const all = await poll({ task_id: taskId });
      expect(all.statusCode).toBe(200);
      expect(bodyOf(all).tasks).toHaveLength(2);
    }
    const history = await h.readAll(conv);
    // null and "" parameters are absent, not stored as values.
    expect((history.tasks as { params: unknown }[]).map((t) => t.params)).toEqual(
      expect.arrayContaining([{ order_id: "A1" }, {}]),
    );
  });

  it("GET tool routes: conversation_id and the parameters as query strings behave like the POST form", async () => {
    const h = harness();
    freezeAt(frozenAtRealNow());
    const conv = id("get-tools");
    const get = await h.handlers.callTool(
      apiEvent({
        method: "GET",
        path: "/tools/lookup_order",
        pathParameters: { toolName: "lookup_order" },
        headers: { "x-tool-secret": TOOL_SECRET },
        query: { conversation_id: conv, order_id: "A9", quantity: "2", ...PHONE },
      }),
    );
    const task = accepted(h, bodyOf(get));
    expect(task.params).toEqual({ order_id: "A9", quantity: "2" });
    const unauthenticated = await h.handlers.callTool(
      apiEvent({
        method: "GET",
        path: "/tools/lookup_order",
        pathParameters: { toolName: "lookup_order" },
        query: { conversation_id: id("nosecret") },
      }),
    );
    expect(unauthenticated.statusCode).toBe(401);
    const polled = await h.handlers.poll(
      apiEvent({
        method: "GET",
        path: "/tools/get_task_result",
        headers: { "x-tool-secret": TOOL_SECRET },
        query: { conversation_id: conv, task_id: task.taskId },
      }),
    );
    expect(bodyOf(polled)).toMatchObject({
      status: "active",
      tasks: [{ taskId: task.taskId, status: "pending" }],
    });
    const badQuery = await h.handlers.poll(
      apiEvent({
        method: "GET",
        path: "/tools/get_task_result",
        headers: { "x-tool-secret": TOOL_SECRET },
        query: {},
      }),
    );
    expect(badQuery.statusCode).toBe(400);
  });

  it("a transcription without a transcript stores its analysis and the call facts (user, variables, phone call, audio)", async () => {
    const h = harness();
    freezeAt(frozenAtRealNow());
    const conv = id("notranscript");
    const event = transcriptionEvent(conv) as { data: Record<string, unknown> };
    delete event.data.transcript;
    event.data.user_id = "user_42";
    event.data.unknown_future_field = { anything: [1, 2] };
    event.data.conversation_initiation_client_data = {
      user_id: "ignored_when_top_level_present",
      dynamic_variables: { user_name: "angelo", secret__token: "do-not-keep", SECRET__other: "x", tier: 3 },
    };
    (event.data.metadata as Record<string, unknown>).phone_call = {
      type: "twilio",
      direction: "inbound",
      call_sid: "CA99",
      external_number: "+15551230000",
      agent_number: "+15559870000",
      nested: { dropped: true },
    };
    const response = await h.deliver(event);
    expect(bodyOf(response)).toMatchObject({ status: "stored" });
    const history = await h.readAll(conv);
    expect(history.messages.map((m) => m.kind)).toEqual(["call_analysis"]);
    expect(history.meta).toMatchObject({
      call: {
        callSuccessful: "success",
        transcriptLines: 0,
        userId: "user_42",
        dynamicVariables: { user_name: "angelo", tier: 3 },
        phoneCall: {
          type: "twilio",
          direction: "inbound",
          call_sid: "CA99",
          external_number: "+15551230000",
          agent_number: "+15559870000",
        },
        hasAudio: true,
        hasUserAudio: true,
        hasResponseAudio: true,
        terminationReason: "Client disconnected",
      },
    });
    expect(JSON.stringify(history)).not.toContain("do-not-keep");
    expect(JSON.stringify(history)).not.toContain("SECRET__other");
  });
});

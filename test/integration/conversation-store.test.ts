import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { ValidationError } from "../../functions/core/errors.js";
import { SessionStore } from "../../functions/core/session-store.js";
import { TaskStore } from "../../functions/core/task-store.js";
import { frozenAtRealNow } from "../support/clock.js";
import { ensureMeta } from "../support/conversation-meta.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { captureLogger } from "../support/log-capture.js";

const id = (label: string) => `${label}-${randomUUID()}`;
const TEN_MIN = 600_000;

describe("ConversationStore on DynamoDB Local", () => {
  let tables: LocalTables;
  let conversations: ConversationStore;
  let sessions: SessionStore;
  let taskStore: TaskStore;

  beforeAll(async () => {
    tables = await createLocalTables();
    const logger = captureLogger();
    conversations = new ConversationStore({
      client: tables.doc,
      tableName: tables.names.conversations,
      logger,
    });
    taskStore = new TaskStore({ client: tables.doc, tableName: tables.names.conversations });
    sessions = new SessionStore({
      client: tables.doc,
      tableName: tables.names.sessions,
      conversations,
      logger,
    });
  });
  afterAll(async () => {
    await tables.drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("creates meta if absent and never overwrites it", async () => {
    const conv = id("meta");
    const first = await ensureMeta(tables.doc, conversations.tableName, conv, { agentId: "agent_a" });
    const second = await ensureMeta(tables.doc, conversations.tableName, conv, { agentId: "agent_b" });
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.agentId).toBe("agent_a");
    expect(await conversations.getMeta(id("absent"))).toBeNull();
  });

  it("keeps messages in time order, then sequence, and stores a repeated append once", async () => {
    const conv = id("order");
    const t0 = frozenAtRealNow();
    const lines = [
      { kind: "transcript" as const, atMs: t0 + 2000, seq: 1, id: "evt-1", role: "user", text: "second" },
      { kind: "transcript" as const, atMs: t0, seq: 0, id: "evt-0", role: "agent", text: "first" },
      { kind: "transcript" as const, atMs: t0 + 2000, seq: 2, id: "evt-2", role: "agent", text: "third" },
      { kind: "transcript" as const, atMs: t0 + 10_000, seq: 3, id: "evt-3", role: "user", text: "fourth" },
    ];
    await conversations.appendMessages(conv, lines);
    await conversations.appendMessages(conv, lines);
    const page = await conversations.getConversation(conv);
    expect(page?.messages.map((m) => m.text)).toEqual(["first", "second", "third", "fourth"]);
  });

  it("paginates history stably with an opaque cursor", async () => {
    const conv = id("pages");
    const t0 = frozenAtRealNow();
    const lines = Array.from({ length: 23 }, (_, i) => ({
      kind: "transcript" as const,
      atMs: t0 + i,
      id: `l-${i}`,
      text: `line ${i}`,
    }));
    await conversations.appendMessages(conv, lines);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await conversations.getConversation(conv, { limit: 10, ...(cursor ? { cursor } : {}) });
      seen.push(...(page?.messages.map((m) => m.text ?? "") ?? []));
      cursor = page?.nextCursor;
    } while (cursor);
    expect(seen).toEqual(lines.map((l) => l.text));
    await expect(conversations.getConversation(conv, { cursor: "garbage!" })).rejects.toBeInstanceOf(
      ValidationError,
    );
    const other = await conversations.getConversation(conv, { limit: 5 });
    await expect(
      conversations.getConversation(id("other"), { cursor: other?.nextCursor ?? "" }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it("lists conversations newest first with stable pages", async () => {
    const isolated = await createLocalTables();
    try {
      const store = new ConversationStore({
        client: isolated.doc,
        tableName: isolated.names.conversations,
        logger: captureLogger(),
      });
      const t0 = frozenAtRealNow();
      vi.useFakeTimers({ toFake: ["Date"] });
      const ids = Array.from({ length: 7 }, (_, i) => `list-${i}`);
      for (const [i, conv] of ids.entries()) {
        vi.setSystemTime(t0 + i * 1000);
        await ensureMeta(isolated.doc, store.tableName, conv);
      }
      const first = await store.listConversations({ limit: 3 });
      // Updating an old conversation must not move it between pages.
      await store.appendMessages("list-6", [{ kind: "transcript", atMs: 1, id: "x" }]);
      await store.appendMessages("list-0", [{ kind: "transcript", atMs: 1, id: "x" }]);
      const second = await store.listConversations({ limit: 3, cursor: first.nextCursor ?? "" });
      const third = await store.listConversations({ limit: 3, cursor: second.nextCursor ?? "" });
      expect(
        [...first.conversations, ...second.conversations, ...third.conversations].map(
          (c) => c.conversationId,
        ),
      ).toEqual([...ids].reverse());
      expect(third.nextCursor).toBeUndefined();
    } finally {
      await isolated.drop();
    }
  });

  it("stores a task result exactly once under 10 concurrent duplicate callbacks", async () => {
    const conv = id("dup");
    await ensureMeta(tables.doc, conversations.tableName, conv);
    await taskStore.createTask(conv, {
      taskId: "task-1",
      toolName: "lookup_order",
      params: { q: 1 },
      tokenHash: "h",
    });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        taskStore.storeTaskResult(conv, "task-1", {
          result: { n: i },
          outcome: "delivered",
          receivedAtMs: Date.now() + i,
        }),
      ),
    );
    const stored = results.filter((r) => r.kind === "stored");
    const duplicates = results.filter((r) => r.kind === "duplicate");
    expect(stored).toHaveLength(1);
    expect(duplicates).toHaveLength(9);
    const page = await conversations.getConversation(conv);
    expect(page?.messages.filter((m) => m.kind === "task_result")).toHaveLength(1);
    const winner = stored[0]?.kind === "stored" ? stored[0].task.result : undefined;
    for (const d of duplicates) if (d.kind === "duplicate") expect(d.task.result).toEqual(winner);
    expect(page?.tasks).toEqual([
      expect.objectContaining({ taskId: "task-1", status: "completed", outcome: "delivered" }),
    ]);
  });

  it("lists tasks in the order they were started, not in (random) task-id order", async () => {
    const conv = id("task-order");
    vi.useFakeTimers({ now: frozenAtRealNow(), toFake: ["Date"] });
    // Ids sort opposite to start time, as random UUIDs may.
    for (const [taskId, toolName] of [
      ["zz-first", "lookup_order"],
      ["mm-second", "schedule_callback"],
      ["aa-third", "send_sms"],
    ] as const) {
      await taskStore.createTask(conv, { taskId, toolName, params: {}, tokenHash: "h" });
      vi.advanceTimersByTime(1);
    }
    const tasks = await taskStore.listTasks(conv);
    expect(tasks.map((t) => t.taskId)).toEqual(["zz-first", "mm-second", "aa-third"]);
    expect((await conversations.getConversation(conv))?.tasks?.map((t) => t.taskId)).toEqual([
      "zz-first",
      "mm-second",
      "aa-third",
    ]);
  });

  it("reports task_not_found for an unknown task and writes nothing", async () => {
    const conv = id("unknown");
    await ensureMeta(tables.doc, conversations.tableName, conv);
    const result = await taskStore.storeTaskResult(conv, "nope", {
      result: 1,
      outcome: "delivered",
      receivedAtMs: Date.now(),
    });
    expect(result).toEqual({ kind: "task_not_found" });
    expect((await conversations.getConversation(conv))?.messages).toEqual([]);
  });

  it("creates a task only while the session is active (guarded by the session condition)", async () => {
    const conv = id("guarded");
    const t0 = frozenAtRealNow();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(t0);
    await sessions.set(conv);
    vi.setSystemTime(t0 + 599_999);
    const live = await taskStore.createTask(
      conv,
      { taskId: "t-live", toolName: "x", params: {}, tokenHash: "h" },
      [sessions.activeCondition(conv, Date.now())],
    );
    expect(live.created).toBe(true);
    vi.setSystemTime(t0 + TEN_MIN);
    const late = await taskStore.createTask(
      conv,
      { taskId: "t-late", toolName: "x", params: {}, tokenHash: "h" },
      [sessions.activeCondition(conv, Date.now())],
    );
    expect(late).toMatchObject({
      created: false,
      failedCheck: { conversationId: conv, expiresAtMs: t0 + TEN_MIN },
    });
    expect(await taskStore.getTask(conv, "t-late")).toBeNull();
  });

  it("records the result with the live-session guard: delivered at 599 999 ms, guard_failed at 600 000 ms", async () => {
    const conv = id("result-guard");
    const t0 = frozenAtRealNow();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(t0);
    await sessions.set(conv);
    await taskStore.createTask(conv, { taskId: "a", toolName: "x", params: {}, tokenHash: "h" });
    await taskStore.createTask(conv, { taskId: "b", toolName: "x", params: {}, tokenHash: "h" });
    const atEdge = await taskStore.storeTaskResult(
      conv,
      "a",
      { result: 1, outcome: "delivered", receivedAtMs: t0 + 599_999 },
      { guard: sessions.activeCondition(conv, t0 + 599_999) },
    );
    expect(atEdge.kind).toBe("stored");
    const after = await taskStore.storeTaskResult(
      conv,
      "b",
      { result: 2, outcome: "delivered", receivedAtMs: t0 + TEN_MIN },
      { guard: sessions.activeCondition(conv, t0 + TEN_MIN) },
    );
    expect(after).toMatchObject({ kind: "guard_failed", failedCheck: { expiresAtMs: t0 + TEN_MIN } });
    expect((await taskStore.getTask(conv, "b"))?.status).toBe("pending");
  });
});

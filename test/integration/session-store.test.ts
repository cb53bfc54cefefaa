import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { ValidationError } from "../../functions/core/errors.js";
import { SessionStore } from "../../functions/core/session-store.js";
import { frozenAtRealNow, iso } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { captureLogger } from "../support/log-capture.js";

const TEN_MIN = 600_000;
/** DynamoDB Local's TTL sweep comes within ~10 s here: poll every 250 ms, at most 240 times. */
const TTL_SWEEP_POLL_MS = 250;
const TTL_SWEEP_POLLS = 240;
/** The polls' sleeps plus one slow (2 s) read per poll on a loaded machine. */
const TTL_SWEEP_TIMEOUT_MS = TTL_SWEEP_POLLS * (TTL_SWEEP_POLL_MS + 2_000);
const id = (label: string) => `${label}-${randomUUID()}`;

describe("SessionStore on DynamoDB Local", () => {
  let tables: LocalTables;
  let conversations: ConversationStore;
  let sessions: SessionStore;
  const log = captureLogger();

  beforeAll(async () => {
    tables = await createLocalTables();
    conversations = new ConversationStore({
      client: tables.doc,
      tableName: tables.names.conversations,
      logger: log,
    });
    sessions = new SessionStore({
      client: tables.doc,
      tableName: tables.names.sessions,
      conversations,
      logger: log,
    });
  });
  afterAll(async () => {
    await tables.drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  // Only Date is faked: the SDK's own timers (sockets, retries) keep running for real.
  const freezeAt = (ms: number) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(ms);
  };

  it("returns null after 10 minutes and 1 second (the seed test)", async () => {
    freezeAt(frozenAtRealNow());
    await sessions.set("conv-123");
    expect(await sessions.get("conv-123")).not.toBeNull();
    vi.setSystemTime(Date.now() + 10 * 60 * 1000 + 1000);
    expect(await sessions.get("conv-123")).toBeNull();
  });

  it("returns the session at +599 999 ms and null at +600 000 ms while the item still exists", async () => {
    const conv = id("boundary");
    const t0 = frozenAtRealNow() + 123; // a fraction of a second: expiresAt rounds up
    freezeAt(t0);
    await sessions.set(conv);
    vi.setSystemTime(t0 + 599_999);
    expect(await sessions.get(conv)).toMatchObject({ conversationId: conv });
    expect(await sessions.lookup(conv)).toMatchObject({ status: "active", remainingMs: 1 });
    vi.setSystemTime(t0 + 600_000);
    expect(await sessions.get(conv)).toBeNull();
    expect(await sessions.lookup(conv)).toMatchObject({ status: "expired", expiredForMs: 0 });
    const raw = await tables.doc.send(
      new GetCommand({
        TableName: tables.names.sessions,
        Key: { conversationId: conv },
        ConsistentRead: true,
      }),
    );
    expect(raw.Item).toMatchObject({
      createdAt: iso(t0),
      expiresAtMs: t0 + TEN_MIN,
      expiresAt: Math.ceil((t0 + TEN_MIN) / 1000),
    });
  });

  it("re-registration starts a fresh 10-minute window", async () => {
    const conv = id("refresh");
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    const first = await sessions.set(conv);
    vi.setSystemTime(t0 + 599_000);
    const second = await sessions.set(conv);
    expect(second.sessionId).not.toBe(first.sessionId);
    vi.setSystemTime(t0 + 600_000);
    expect(await sessions.get(conv)).toMatchObject({ sessionId: second.sessionId });
    vi.setSystemTime(t0 + 599_000 + 600_000);
    expect(await sessions.get(conv)).toBeNull();
    expect((await conversations.getMeta(conv))?.sessionCount).toBe(2);
  });

  it("says expired (from the meta) after DynamoDB removed the item, and missing when never registered", async () => {
    const conv = id("ttl-gone");
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    await sessions.set(conv);
    // Simulate DynamoDB's TTL sweeper removing the expired item.
    await tables.doc.send(
      new DeleteCommand({ TableName: tables.names.sessions, Key: { conversationId: conv } }),
    );
    vi.setSystemTime(t0 + TEN_MIN + 5 * 3_600_000);
    expect(await sessions.lookup(conv)).toMatchObject({
      status: "expired",
      expiredAt: iso(t0 + TEN_MIN),
      expiredForMs: 5 * 3_600_000,
    });
    expect(await sessions.lookup(id("never"))).toEqual({ status: "missing" });
  });

  it(
    "is swept by DynamoDB Local's own TTL once expiresAt has passed, and lookup still answers expired from the meta",
    async () => {
      const conv = id("ttl-swept");
      // Registered 11 minutes ago on the real clock: expiresAt (epoch seconds) is a minute past.
      const t0 = frozenAtRealNow() - TEN_MIN - 60_000;
      freezeAt(t0);
      await sessions.set(conv);
      vi.useRealTimers();
      const stored = async () =>
        (
          await tables.doc.send(
            new GetCommand({
              TableName: tables.names.sessions,
              Key: { conversationId: conv },
              ConsistentRead: true,
            }),
          )
        ).Item;
      // The engine sweeps expired items by its own (real) clock within seconds; a bounded number of
      // polls, so a build where the sweep never comes fails here instead of hanging.
      let polls = 0;
      while ((await stored()) !== undefined && polls < TTL_SWEEP_POLLS) {
        polls++;
        await sleep(TTL_SWEEP_POLL_MS);
      }
      expect(await stored(), `still there after ${polls} polls of ${TTL_SWEEP_POLL_MS} ms`).toBeUndefined();
      // The production "lazy deletion happened" path: no item, so the answer comes from the meta.
      const now = frozenAtRealNow();
      freezeAt(now);
      expect(await sessions.get(conv)).toBeNull();
      expect(await sessions.lookup(conv)).toMatchObject({
        status: "expired",
        expiredAt: iso(t0 + TEN_MIN),
        expiredForMs: now - (t0 + TEN_MIN),
      });
    },
    TTL_SWEEP_TIMEOUT_MS,
  );

  it("keeps the conversation when its session is deleted or expires", async () => {
    const conv = id("survive");
    await sessions.set(conv, { agentId: "agent_1" });
    await conversations.appendMessages(conv, [
      { kind: "transcript", atMs: Date.now(), id: "line-0", role: "user", text: "hello" },
    ]);
    await sessions.delete(conv);
    expect(await sessions.get(conv)).toBeNull();
    expect(await sessions.lookup(conv)).toMatchObject({ status: "expired" });
    const page = await conversations.getConversation(conv);
    expect(page?.meta).toMatchObject({ conversationId: conv, agentId: "agent_1", sessionCount: 1 });
    expect(page?.messages.map((m) => m.kind)).toEqual(["session_registered", "transcript"]);
  });

  it("rejects invalid ids without writing", async () => {
    await expect(sessions.set("bad id")).rejects.toBeInstanceOf(ValidationError);
    await expect(sessions.set("a".repeat(129))).rejects.toBeInstanceOf(ValidationError);
  });

  it("gives concurrent set/get at the boundary one consistent answer each", async () => {
    const conv = id("race");
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    await sessions.set(conv);
    // At exactly +600 000 ms: readers see expired unless a concurrent refresh already landed;
    // whatever they see is a valid session window, never an error or a half-written item.
    vi.setSystemTime(t0 + TEN_MIN);
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => sessions.get(conv)),
      sessions.set(conv),
      ...Array.from({ length: 10 }, () => sessions.lookup(conv)),
    ]);
    for (const r of results) {
      if (r === null) continue;
      if ("status" in r) {
        expect(["active", "expired"]).toContain(r.status);
        if (r.status === "active") expect(r.session.createdAtMs).toBe(t0 + TEN_MIN);
      } else {
        expect(r.createdAtMs).toBe(t0 + TEN_MIN);
      }
    }
    expect(await sessions.get(conv)).toMatchObject({ createdAtMs: t0 + TEN_MIN });
  });

  it("survives many concurrent refreshes with exactly one item and a consistent meta", async () => {
    const conv = id("many-sets");
    const results = await Promise.all(Array.from({ length: 12 }, () => sessions.set(conv)));
    const current = await sessions.get(conv);
    expect(results.map((r) => r.sessionId)).toContain(current?.sessionId);
    const meta = await conversations.getMeta(conv);
    expect(meta?.sessionCount).toBe(12);
    expect(results.map((r) => r.sessionId)).toContain(meta?.lastSession?.sessionId);
  });
});

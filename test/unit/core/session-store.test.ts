import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConversationStore } from "../../../functions/core/conversation-store.js";
import { ServiceUnavailableError, ValidationError } from "../../../functions/core/errors.js";
import { classify, isActiveAt, SessionStore, sessionWindow } from "../../../functions/core/session-store.js";
import { createDocClient } from "../../support/doc-client.js";
import { captureLogger } from "../../support/log-capture.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const T0 = Date.parse("2026-11-27T10:00:00.000Z");
const TEN_MIN = 600_000;

/** In-memory stand-in for the sessions table, driven through the mocked client. */
const withFakeTable = () => {
  const items = new Map<string, Record<string, unknown>>();
  ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown> }) => {
    const key = String(input.Item.conversationId);
    const old = items.get(key);
    items.set(key, input.Item);
    return { Attributes: old };
  });
  ddb.on(GetCommand).callsFake((input: { Key: { conversationId: string } }) => ({
    Item: items.get(input.Key.conversationId),
  }));
  ddb.on(DeleteCommand).callsFake((input: { Key: { conversationId: string } }) => {
    const old = items.get(input.Key.conversationId);
    items.delete(input.Key.conversationId);
    return { Attributes: old };
  });
  return items;
};

describe("the expiry rule (pure)", () => {
  it("is active at +599 999 ms and expired at +600 000 ms", () => {
    const { expiresAtMs } = sessionWindow(T0, TEN_MIN);
    expect(isActiveAt(expiresAtMs, T0 + 599_999)).toBe(true);
    expect(isActiveAt(expiresAtMs, T0 + 600_000)).toBe(false);
  });

  it("rounds the TTL attribute up to whole seconds so DynamoDB never deletes early", () => {
    expect(sessionWindow(T0 + 1, TEN_MIN).ttlEpochSeconds).toBe((T0 + TEN_MIN) / 1000 + 1);
    expect(sessionWindow(T0, TEN_MIN).ttlEpochSeconds).toBe((T0 + TEN_MIN) / 1000);
    for (const offset of [0, 1, 499, 500, 999]) {
      const w = sessionWindow(T0 + offset, TEN_MIN);
      expect(w.ttlEpochSeconds * 1000).toBeGreaterThanOrEqual(w.expiresAtMs);
    }
  });

  it("reports how long ago a session expired", () => {
    const session = {
      conversationId: "c",
      sessionId: "s",
      createdAt: new Date(T0).toISOString(),
      createdAtMs: T0,
      expiresAt: new Date(T0 + TEN_MIN).toISOString(),
      expiresAtMs: T0 + TEN_MIN,
      ttlMs: TEN_MIN,
    };
    expect(classify(session, T0 + TEN_MIN + 1234)).toEqual({
      status: "expired",
      session,
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 1234,
      reason: "timed_out",
    });
    // Ended early (a delete, the end of the call): the reason given, at the end given.
    expect(classify(session, T0 + 60_000, T0 + 1000, "call_ended")).toMatchObject({
      status: "expired",
      expiredAt: new Date(T0 + 1000).toISOString(),
      reason: "call_ended",
    });
    expect(classify(session, T0 + 1)).toMatchObject({ status: "active", remainingMs: TEN_MIN - 1 });
  });
});

describe("SessionStore on a mocked DynamoDB", () => {
  let store: SessionStore;
  let log: ReturnType<typeof captureLogger>;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    log = captureLogger();
    store = new SessionStore({ client: doc, tableName: "sessions", logger: log });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("returns null after 10 minutes and 1 second (the seed test)", async () => {
    withFakeTable();
    await store.set("conv-123", { agentId: "agent_1" });
    expect(await store.get("conv-123")).toMatchObject({ conversationId: "conv-123", agentId: "agent_1" });
    vi.advanceTimersByTime(10 * 60 * 1000 + 1000);
    expect(await store.get("conv-123")).toBeNull();
  });

  it("returns the session 599 999 ms after creation", async () => {
    withFakeTable();
    await store.set("conv-1");
    vi.advanceTimersByTime(599_999);
    expect(await store.get("conv-1")).not.toBeNull();
  });

  it("returns null 600 000 ms after creation even though the item is still in the table", async () => {
    const items = withFakeTable();
    await store.set("conv-1");
    vi.advanceTimersByTime(600_000);
    expect(items.has("conv-1")).toBe(true);
    expect(await store.get("conv-1")).toBeNull();
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: "info",
        message: "Session found expired on read (item not yet removed by TTL)",
        data: expect.objectContaining({
          conversationId: "conv-1",
          expiredAt: "2026-11-27T10:10:00.000Z",
          expiredForMs: 0,
        }),
      }),
    );
  });

  it("writes createdAt (ISO), expiresAtMs and the TTL attribute expiresAt in epoch seconds", async () => {
    ddb.on(PutCommand).resolves({});
    vi.setSystemTime(T0 + 250);
    await store.set("conv-1", { notifyUrl: "https://app.example.com/live", metadata: { plan: "pro" } });
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: "sessions",
      ReturnValues: "ALL_OLD",
      Item: expect.objectContaining({
        conversationId: "conv-1",
        createdAt: "2026-11-27T10:00:00.250Z",
        expiresAtMs: T0 + 250 + TEN_MIN,
        expiresAt: Math.ceil((T0 + 250 + TEN_MIN) / 1000),
        notifyUrl: "https://app.example.com/live",
        metadata: { plan: "pro" },
      }),
    });
  });

  it("reads with ConsistentRead", async () => {
    ddb.on(GetCommand).resolves({});
    await store.get("conv-1");
    expect(ddb).toHaveReceivedCommandWith(GetCommand, {
      TableName: "sessions",
      Key: { conversationId: "conv-1" },
      ConsistentRead: true,
    });
  });

  it("starts a fresh window when the same conversation registers again", async () => {
    withFakeTable();
    await store.set("conv-1");
    vi.advanceTimersByTime(500_000);
    const refreshed = await store.set("conv-1");
    expect(refreshed.expiresAtMs).toBe(T0 + 500_000 + TEN_MIN);
    vi.advanceTimersByTime(599_999);
    expect(await store.get("conv-1")).toMatchObject({ sessionId: refreshed.sessionId });
    vi.advanceTimersByTime(1);
    expect(await store.get("conv-1")).toBeNull();
    expect(log.lines.map((l) => l.message)).toContain("Session refreshed: a new window started");
  });

  it("tells active, expired and missing apart", async () => {
    withFakeTable();
    expect(await store.lookup("conv-1")).toEqual({ status: "missing" });
    await store.set("conv-1");
    vi.advanceTimersByTime(1000);
    expect(await store.lookup("conv-1")).toMatchObject({ status: "active", remainingMs: TEN_MIN - 1000 });
    vi.advanceTimersByTime(TEN_MIN);
    expect(await store.lookup("conv-1")).toMatchObject({
      status: "expired",
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 1000,
    });
  });

  it("honours a configured ttlMs", async () => {
    withFakeTable();
    const short = new SessionStore({ client: doc, tableName: "sessions", ttlMs: 5_000, logger: log });
    await short.set("conv-1");
    vi.advanceTimersByTime(4_999);
    expect(await short.get("conv-1")).not.toBeNull();
    vi.advanceTimersByTime(1);
    expect(await short.get("conv-1")).toBeNull();
    expect(() => new SessionStore({ client: doc, tableName: "s", ttlMs: 0 })).toThrow(RangeError);
  });

  it.each([
    ["empty", ""],
    ["too long", "a".repeat(129)],
    ["a slash", "conv/1"],
    ["a space", "conv 1"],
    ["unicode", "cönv"],
    ["an injection attempt", "x' OR '1'='1"],
  ])("rejects a conversation id that is %s before any call", async (_label, id) => {
    await expect(store.set(id)).rejects.toBeInstanceOf(ValidationError);
    await expect(store.get(id)).rejects.toBeInstanceOf(ValidationError);
    await expect(store.lookup(id)).rejects.toBeInstanceOf(ValidationError);
    await expect(store.delete(id)).rejects.toBeInstanceOf(ValidationError);
    expect(ddb.calls()).toHaveLength(0);
  });

  it("accepts a 128-character id", async () => {
    withFakeTable();
    await expect(store.set("a".repeat(128))).resolves.toMatchObject({ conversationId: "a".repeat(128) });
  });

  it.each([
    ["a non-URL notifyUrl", { notifyUrl: "not a url" }],
    ["an ftp notifyUrl", { notifyUrl: "ftp://example.com/x" }],
    ["nested metadata", { metadata: { a: { b: 1 } } }],
    ["an unknown field", { colour: "blue" }],
    ["a bad agentId", { agentId: "agent 1" }],
    [
      "too much metadata",
      { metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])) },
    ],
  ])("rejects %s with a ValidationError and writes nothing", async (_label, input) => {
    await expect(store.set("conv-1", input as never)).rejects.toThrow(ValidationError);
    expect(ddb.calls()).toHaveLength(0);
  });

  it("turns throttling into a ServiceUnavailableError", async () => {
    ddb
      .on(GetCommand)
      .rejects(Object.assign(new Error("slow down"), { name: "ProvisionedThroughputExceededException" }));
    await expect(store.get("conv-1")).rejects.toBeInstanceOf(ServiceUnavailableError);
  });

  it("deletes the session item", async () => {
    const items = withFakeTable();
    await store.set("conv-1");
    await store.delete("conv-1");
    expect(items.size).toBe(0);
    expect(await store.lookup("conv-1")).toEqual({ status: "missing" });
  });

  it("builds a condition that holds only while expiresAtMs > now", () => {
    expect(store.activeCondition("conv-1", T0)).toEqual({
      ConditionCheck: {
        TableName: "sessions",
        Key: { conversationId: "conv-1" },
        ConditionExpression: "expiresAtMs > :now",
        ExpressionAttributeValues: { ":now": T0 },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    });
  });
});

describe("SessionStore with history (mocked)", () => {
  let store: SessionStore;
  let conversations: ConversationStore;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    const log = captureLogger();
    conversations = new ConversationStore({ client: doc, tableName: "conversations", logger: log });
    store = new SessionStore({ client: doc, tableName: "sessions", conversations, logger: log });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("records the window in the conversation meta in the same transaction", async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const session = await store.set("conv-1", { agentId: "agent_1" });
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
    const [put, meta, line] = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(put?.Put).toMatchObject({
      TableName: "sessions",
      Item: { conversationId: "conv-1", expiresAt: (T0 + TEN_MIN) / 1000, expiresAtMs: T0 + TEN_MIN },
    });
    expect(meta?.Update).toMatchObject({
      TableName: "conversations",
      Key: { conversationId: "conv-1", sk: "meta" },
      ExpressionAttributeValues: expect.objectContaining({
        ":lastSession": expect.objectContaining({ sessionId: session.sessionId, expiresAtMs: T0 + TEN_MIN }),
      }),
    });
    expect(put?.Put?.ConditionExpression).toBeUndefined();
    expect(line?.Put?.Item).toMatchObject({ kind: "session_registered", conversationId: "conv-1" });
  });

  it("says expired, not missing, hours later when DynamoDB already removed the item", async () => {
    ddb.on(GetCommand, { TableName: "sessions" }).resolves({});
    ddb.on(GetCommand, { TableName: "conversations" }).resolves({
      Item: {
        conversationId: "conv-1",
        sk: "meta",
        createdAt: new Date(T0).toISOString(),
        updatedAt: new Date(T0).toISOString(),
        lastSession: {
          sessionId: "s1",
          createdAt: new Date(T0).toISOString(),
          createdAtMs: T0,
          expiresAtMs: T0 + TEN_MIN,
          ttlMs: TEN_MIN,
        },
      },
    });
    vi.setSystemTime(T0 + TEN_MIN + 3 * 3_600_000);
    expect(await store.lookup("conv-1")).toMatchObject({
      status: "expired",
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 3 * 3_600_000,
      session: { sessionId: "s1" },
    });
  });

  it("says missing when neither a session nor a recorded window exists", async () => {
    ddb.on(GetCommand).resolves({});
    expect(await store.lookup("conv-1")).toEqual({ status: "missing" });
  });

  it("refreshes an existing session in one unconditional transaction", async () => {
    ddb.on(TransactWriteCommand).resolves({});
    await store.set("conv-1");
    vi.advanceTimersByTime(1000);
    const refreshed = await store.set("conv-1");
    expect(refreshed.expiresAtMs).toBe(T0 + 1000 + TEN_MIN);
    // One request per call, registration or refresh: no conditional first attempt that always fails.
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 2);
    for (const call of ddb.commandCalls(TransactWriteCommand)) {
      expect(call.args[0].input.TransactItems?.[0]?.Put?.ConditionExpression).toBeUndefined();
    }
  });

  it("fails loudly if the unconditional transaction is ever cancelled by a condition", async () => {
    ddb.on(TransactWriteCommand).rejects(
      Object.assign(new Error("cancelled"), {
        name: "TransactionCanceledException",
        CancellationReasons: [{ Code: "ConditionalCheckFailed" }, { Code: "None" }, { Code: "None" }],
      }),
    );
    await expect(store.set("conv-1")).rejects.toThrow("Unconditional session write was cancelled");
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
  });

  it("notes an early end in the meta when an active session is deleted", async () => {
    ddb.on(DeleteCommand).resolves({
      Attributes: {
        conversationId: "conv-1",
        sessionId: "s1",
        createdAt: new Date(T0).toISOString(),
        createdAtMs: T0,
        expiresAtMs: T0 + TEN_MIN,
        ttlMs: TEN_MIN,
      },
    });
    ddb.on(UpdateCommand).resolves({});
    vi.setSystemTime(T0 + 1000);
    await store.delete("conv-1");
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: "conversations",
      ConditionExpression: "lastSession.sessionId = :sid",
      ExpressionAttributeValues: expect.objectContaining({ ":ended": T0 + 1000, ":sid": "s1" }),
    });
  });
});

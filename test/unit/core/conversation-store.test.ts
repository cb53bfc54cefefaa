import { BatchWriteCommand, GetCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { messageSortKey } from "../../../functions/core/conversation-items.js";
import { ConversationStore } from "../../../functions/core/conversation-store.js";
import { ServiceUnavailableError, ValidationError } from "../../../functions/core/errors.js";
import { TaskStore } from "../../../functions/core/task-store.js";
import { createDocClient } from "../../support/doc-client.js";
import { captureLogger } from "../../support/log-capture.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const NOW = Date.parse("2026-11-27T10:00:00.000Z");

const cancelled = (...codes: (string | { Code: string; Item?: Record<string, unknown> })[]) =>
  Object.assign(new Error("Transaction cancelled"), {
    name: "TransactionCanceledException",
    CancellationReasons: codes.map((c) =>
      typeof c === "string" ? { Code: c } : { Code: c.Code, ...(c.Item ? { Item: marshall(c.Item) } : {}) },
    ),
  });

describe("ConversationStore (mocked)", () => {
  let store: ConversationStore;
  let tasks: TaskStore;
  beforeEach(() => {
    tasks = new TaskStore({ client: doc, tableName: "conversations", now: () => NOW });
    ddb.reset();
    store = new ConversationStore({
      client: doc,
      tableName: "conversations",
      now: () => NOW,
      logger: captureLogger(),
    });
  });

  it("builds message keys that sort by time, then sequence", () => {
    const keys = [
      messageSortKey({ atMs: 20, seq: 0, kind: "transcript", id: "b" }),
      messageSortKey({ atMs: 3, seq: 5, kind: "transcript", id: "a" }),
      messageSortKey({ atMs: 3, seq: 10, kind: "transcript", id: "c" }),
    ];
    expect([...keys].sort()).toEqual([keys[1], keys[2], keys[0]]);
    expect(keys[1]).toBe("msg#000000000000003#000005#transcript#a");
  });

  it("records a task result only if the task exists and has no outcome yet", async () => {
    ddb.on(GetCommand).resolves({
      Item: {
        taskId: "t1",
        toolName: "x",
        tokenHash: "h",
        status: "completed",
        createdAt: "c",
        outcome: "delivered",
      },
    });
    ddb.on(TransactWriteCommand).resolves({});
    await tasks.storeTaskResult("conv-1", "t1", {
      result: { ok: true },
      outcome: "delivered",
      receivedAtMs: NOW,
    });
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[0]?.Update).toMatchObject({
      Key: { conversationId: "conv-1", sk: "task#t1" },
      ConditionExpression: "attribute_exists(sk) AND attribute_not_exists(outcome)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    });
    expect(items[1]?.Put?.Item).toMatchObject({
      kind: "task_result",
      sk: messageSortKey({ atMs: NOW, kind: "task_result", id: "t1" }),
    });
    for (const item of items) expect(JSON.stringify(item)).not.toMatch(/TimeToLive|expiresAt"/);
  });

  it("answers duplicate with the first stored outcome, unmarshalling the returned old item", async () => {
    const first = {
      conversationId: "conv-1",
      sk: "task#t1",
      taskId: "t1",
      toolName: "x",
      tokenHash: "h",
      status: "completed",
      createdAt: "c",
      outcome: "session_expired",
      result: { v: 1 },
    };
    ddb
      .on(TransactWriteCommand)
      .rejects(cancelled({ Code: "ConditionalCheckFailed", Item: first }, "None", "None"));
    const result = await tasks.storeTaskResult("conv-1", "t1", {
      result: { v: 2 },
      outcome: "delivered",
      receivedAtMs: NOW,
    });
    expect(result).toEqual({
      kind: "duplicate",
      task: expect.objectContaining({ outcome: "session_expired", result: { v: 1 } }),
    });
  });

  it("answers task_not_found when the condition failed without an old item", async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled("ConditionalCheckFailed", "None", "None"));
    expect(
      await tasks.storeTaskResult("conv-1", "t1", { result: 1, outcome: "delivered", receivedAtMs: NOW }),
    ).toEqual({ kind: "task_not_found" });
  });

  it("retries a transaction conflict and then commits", async () => {
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled("TransactionConflict", "None", "None"))
      .resolves({});
    const created = await tasks.createTask("conv-1", {
      taskId: "t1",
      toolName: "x",
      params: {},
      tokenHash: "h",
    });
    expect(created.created).toBe(true);
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 2);
  });

  it("retries unprocessed batch items and gives up with a 503-able error", async () => {
    const unprocessed = {
      UnprocessedItems: { conversations: [{ PutRequest: { Item: { conversationId: "c" } } }] },
    };
    ddb.on(BatchWriteCommand).resolvesOnce(unprocessed).resolves({});
    ddb.on(UpdateCommand).resolves({});
    await store.appendMessages("conv-1", [{ kind: "transcript", atMs: 1, id: "a" }]);
    expect(ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 2);
    ddb.reset();
    ddb.on(BatchWriteCommand).resolves(unprocessed);
    await expect(
      store.appendMessages("conv-1", [{ kind: "transcript", atMs: 1, id: "a" }]),
    ).rejects.toBeInstanceOf(ServiceUnavailableError);
  }, 20_000);

  it("rejects a bad page size or cursor before calling DynamoDB", async () => {
    await expect(store.listConversations({ limit: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(store.listConversations({ limit: 101 })).rejects.toBeInstanceOf(ValidationError);
    await expect(store.listConversations({ cursor: "%%%" })).rejects.toBeInstanceOf(ValidationError);
    await expect(
      store.listConversations({ cursor: Buffer.from("[1,2]").toString("base64url") }),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(ddb.calls()).toHaveLength(0);
  });
});

import {
  BatchWriteCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../functions/core/config.js";
import {
  type ConversationMeta,
  metaTouch,
  retentionFields,
  retentionOver,
  withRetentionAnchor,
} from "../../../functions/core/conversation-items.js";
import { ConversationStore } from "../../../functions/core/conversation-store.js";
import { TaskStore } from "../../../functions/core/task-store.js";
import type { LocalServer } from "../../../local/local-service.js";
import { banner } from "../../../local/server.js";
import { createDocClient } from "../../support/doc-client.js";
import { captureLogger } from "../../support/log-capture.js";

const DAY = 86_400_000;
const NOW = Date.parse("2026-11-27T10:00:00.123Z");
const TABLES = { SESSIONS_TABLE: "s", CONVERSATIONS_TABLE: "c" };

const doc = createDocClient();
const ddb = mockClient(doc);

/** Every input the stores sent, as JSON: where a retention attribute could hide. */
const sentInputs = () => ddb.calls().map((call) => JSON.stringify(call.args[0].input));

describe("HISTORY_RETENTION_DAYS", () => {
  it("is unset (kept until erased) when absent or empty", () => {
    expect(loadConfig(TABLES).historyRetentionDays).toBeUndefined();
    expect(loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: "  " })).not.toHaveProperty(
      "historyRetentionDays",
    );
  });

  it("accepts whole days from 1 to 3650", () => {
    expect(loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: "1" }).historyRetentionDays).toBe(1);
    expect(loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: " 30 " }).historyRetentionDays).toBe(30);
    expect(loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: "3650" }).historyRetentionDays).toBe(3650);
  });

  it.each(["0", "3651", "1.5", "-1", "1e3", "0x10", "abc", "30d", "Infinity"])(
    "refuses %s at start-up, echoing it",
    (value) => {
      expect(() => loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: value })).toThrow(ConfigError);
      expect(() => loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: value })).toThrow(
        `HISTORY_RETENTION_DAYS must be a whole number of days from 1 to 3650, or unset to keep history until erased, not ${JSON.stringify(value)}`,
      );
    },
  );

  it("accepts exactly the decimal whole numbers 1..3650, whatever the text (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer({ min: -10, max: 4000 }).map(String)), (text) => {
        const trimmed = text.trim();
        let days: number | undefined;
        try {
          days = loadConfig({ ...TABLES, HISTORY_RETENTION_DAYS: text }).historyRetentionDays;
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as Error).message).toContain("HISTORY_RETENTION_DAYS");
          expect(/^\d+$/.test(trimmed) && Number(trimmed) >= 1 && Number(trimmed) <= 3650).toBe(false);
          return;
        }
        if (trimmed === "") expect(days).toBeUndefined();
        else expect(days).toBe(Number(trimmed));
        if (days !== undefined) expect(Number.isInteger(days) && days >= 1 && days <= 3650).toBe(true);
      }),
    );
  });
});

describe("retention attributes", () => {
  it("purgeAt is epoch seconds rounded up, and nothing at all without retention", () => {
    expect(retentionFields(NOW, DAY)).toEqual({ purgeAt: Math.ceil((NOW + DAY) / 1000) });
    expect(retentionFields(1000, 2000)).toEqual({ purgeAt: 3 });
    expect(retentionFields(NOW, undefined)).toEqual({});
  });

  it("the meta's anchor is set once (if_not_exists) and leaves the touch alone without retention", () => {
    const touch = metaTouch("c1", new Date(NOW).toISOString());
    expect(withRetentionAnchor(touch, NOW, undefined)).toBe(touch);
    const anchored = withRetentionAnchor(touch, NOW, 7 * DAY);
    expect(anchored.UpdateExpression).toBe(
      `${touch.UpdateExpression}, purgeAt = if_not_exists(purgeAt, :purgeAt), purgeAtMs = if_not_exists(purgeAtMs, :purgeAtMs)`,
    );
    expect(anchored.ExpressionAttributeValues).toMatchObject({
      ":purgeAtMs": NOW + 7 * DAY,
      ":purgeAt": Math.ceil((NOW + 7 * DAY) / 1000),
    });
  });

  it("a conversation is over exactly at retainedUntil, to the millisecond", () => {
    const meta = { retainedUntil: new Date(NOW + DAY).toISOString() } as ConversationMeta;
    expect(retentionOver(meta, NOW + DAY - 1)).toBe(false);
    expect(retentionOver(meta, NOW + DAY)).toBe(true);
    expect(retentionOver({} as ConversationMeta, Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});

describe("stores with and without retention (mocked)", () => {
  beforeEach(() => {
    ddb.reset();
    ddb.on(TransactWriteCommand).resolves({});
    ddb.on(BatchWriteCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    ddb.on(GetCommand).resolves({
      Item: {
        conversationId: "c1",
        sk: "task#t1",
        taskId: "t1",
        toolName: "lookup",
        createdAt: "x",
        tokenHash: "h",
      },
    });
  });
  const stores = (historyRetentionDays?: number) => {
    const options = {
      client: doc,
      tableName: "conversations",
      now: () => NOW,
      ...(historyRetentionDays ? { historyRetentionDays } : {}),
    };
    return {
      conversations: new ConversationStore({ ...options, logger: captureLogger() }),
      tasks: new TaskStore(options),
    };
  };
  const writeEverything = async (s: ReturnType<typeof stores>) => {
    await s.conversations.appendMessages("c1", [
      { kind: "transcript", atMs: NOW - 5, id: "l-0", text: "hi" },
    ]);
    await s.conversations.updateCallFacts("c1", { status: "done", call: { durationSecs: 3 } });
    await s.tasks.createTask("c1", { taskId: "t1", toolName: "lookup", params: {}, tokenHash: "h" });
    await s.tasks.storeTaskResult("c1", "t1", { result: 1, outcome: "delivered", receivedAtMs: NOW + 1000 });
  };

  it("without retention, no write carries purgeAt or purgeAtMs", async () => {
    await writeEverything(stores());
    const inputs = sentInputs();
    expect(inputs.length).toBeGreaterThan(4);
    for (const input of inputs) expect(input).not.toMatch(/purgeAt/);
  });

  it("with retention, every put item carries purgeAt from its write time and every meta touch the anchor", async () => {
    await writeEverything(stores(30));
    const purgeAt = (ms: number) => Math.ceil((ms + 30 * DAY) / 1000);
    const batch = ddb.commandCalls(BatchWriteCommand)[0]?.args[0].input;
    expect(JSON.stringify(batch)).toContain(`"purgeAt":${purgeAt(NOW)}`);
    const updates = ddb.commandCalls(UpdateCommand).map((call) => call.args[0].input);
    for (const update of updates) {
      expect(update.ExpressionAttributeValues).toMatchObject({ ":purgeAtMs": NOW + 30 * DAY });
    }
    const [created, result] = ddb
      .commandCalls(TransactWriteCommand)
      .map((call) => call.args[0].input.TransactItems);
    const createdItems = (created ?? []).flatMap((item) => (item.Put ? [item.Put.Item] : []));
    expect(createdItems.map((item) => item?.sk)).toEqual([
      "task#t1",
      expect.stringMatching(/^msg#.*task_started/),
    ]);
    for (const item of createdItems) expect(item).toMatchObject({ purgeAt: purgeAt(NOW) });
    const resultLine = (result ?? []).find((item) => item.Put)?.Put?.Item;
    expect(resultLine).toMatchObject({ kind: "task_result", purgeAt: purgeAt(NOW + 1000) });
    const resultMeta = (result ?? []).filter((item) => item.Update?.Key?.sk === "meta");
    expect(resultMeta[0]?.Update?.ExpressionAttributeValues).toMatchObject({
      ":purgeAtMs": NOW + 1000 + 30 * DAY,
    });
  });

  it("leaves conversations past their retention out of a list page, and pages on after them", async () => {
    const meta = (id: string, createdAt: string, purgeAtMs?: number) => ({
      conversationId: id,
      sk: "meta",
      createdAt,
      updatedAt: createdAt,
      listSk: `${createdAt}#${id}`,
      ...(purgeAtMs !== undefined ? { purgeAtMs } : {}),
    });
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ":pk": "conversation#00" } }).resolves({
      Items: [
        meta("kept", "2026-11-27T09:00:00.000Z", NOW + 1),
        meta("over", "2026-11-20T09:00:00.000Z", NOW),
        meta("forever", "2026-10-01T09:00:00.000Z"),
      ],
    });
    const page = await stores().conversations.listConversations({ limit: 3 });
    expect(page.conversations.map((c) => c.conversationId)).toEqual(["kept", "forever"]);

    // The cursor is the last conversation read, shown or not: the next page starts after it.
    const first = await stores().conversations.listConversations({ limit: 2 });
    expect(first.conversations.map((c) => c.conversationId)).toEqual(["kept"]);
    const cursor = JSON.parse(Buffer.from(first.nextCursor ?? "", "base64url").toString("utf8"));
    expect(cursor).toEqual({ listSk: "2026-11-20T09:00:00.000Z#over" });
  });

  it("answers a conversation past its retention as not found without reading its lines", async () => {
    ddb.on(GetCommand).resolves({
      Item: { conversationId: "c1", sk: "meta", createdAt: "x", updatedAt: "x", purgeAtMs: NOW },
    });
    expect(await stores().conversations.getConversation("c1")).toBeNull();
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
  });
});

describe("the local banner", () => {
  const server = (historyRetentionDays?: number): LocalServer => ({
    url: "http://127.0.0.1:3000",
    sessionTtlMs: 600_000,
    taskDispatch: "none",
    ...(historyRetentionDays ? { historyRetentionDays } : {}),
    env: { SERVICE_TOKEN: "t", TOOL_SECRET: "t", WEBHOOK_SECRET: "w", NOTIFY_SIGNING_SECRET: "n" },
    dynamodb: { endpoint: "http://127.0.0.1:1", mode: "external", notices: [] },
    close: async () => {},
  });

  it("says how long history is kept", () => {
    expect(banner(server(), 1000)).toContain(
      "  history kept      until erased (HISTORY_RETENTION_DAYS unset)",
    );
    expect(banner(server(90), 1000)).toContain(
      "  history kept      90 days after a conversation's first write (HISTORY_RETENTION_DAYS)",
    );
  });
});

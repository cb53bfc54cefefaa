import { randomUUID } from "node:crypto";
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEGACY_LIST_PK, listPartitionKey } from "../../functions/core/conversation-items.js";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { migrateHistory } from "../../functions/core/history-migration.js";
import { SessionStore } from "../../functions/core/session-store.js";
import { TaskStore } from "../../functions/core/task-store.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { captureLogger } from "../support/log-capture.js";

const id = (label: string) => `${label}-${randomUUID()}`;
const PAGE = 50;
// Meta (1) + every session window (3 here) + every task (2 here) + the page itself, at most.
const FIRST_PAGE_BOUND = 2 * PAGE + 10;

/** Items DynamoDB read for the commands sent while `fn` ran: ScannedCount of queries, 1 per item got. */
const itemsRead = async (tables: LocalTables, fn: () => Promise<unknown>): Promise<number> => {
  let read = 0;
  const name = `count-${randomUUID()}`;
  tables.doc.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const output = result.output as { ScannedCount?: number; Item?: unknown };
      read += output.ScannedCount ?? (output.Item ? 1 : 0);
      return result;
    },
    { step: "initialize", name },
  );
  try {
    await fn();
  } finally {
    tables.doc.middlewareStack.remove(name);
  }
  return read;
};

describe("a history page costs one page (DynamoDB Local, ScannedCount)", () => {
  let tables: LocalTables;
  let conversations: ConversationStore;
  let sessions: SessionStore;
  let tasks: TaskStore;

  beforeAll(async () => {
    tables = await createLocalTables();
    const logger = captureLogger();
    conversations = new ConversationStore({
      client: tables.doc,
      tableName: tables.names.conversations,
      logger,
    });
    sessions = new SessionStore({
      client: tables.doc,
      tableName: tables.names.sessions,
      conversations,
      logger,
    });
    tasks = new TaskStore({ client: tables.doc, tableName: tables.names.conversations });
  });
  afterAll(async () => {
    await tables.drop();
  });

  const seed = async (lines: number): Promise<string> => {
    const conv = id(`hist${lines}`);
    for (let i = 0; i < 3; i++) await sessions.set(conv);
    await tasks.createTask(conv, { taskId: "t1", toolName: "a", params: {}, tokenHash: "h" });
    await tasks.createTask(conv, { taskId: "t2", toolName: "b", params: {}, tokenHash: "h" });
    const t0 = Date.now();
    await conversations.appendMessages(
      conv,
      Array.from({ length: lines }, (_, i) => ({
        kind: "transcript" as const,
        atMs: t0 + i,
        id: `evt-${i}`,
        role: "user",
        text: `line ${i}`,
      })),
    );
    return conv;
  };

  it.each([10, 2000])(
    "reads at most 2 × page + a constant per page at %i lines, and the whole history linearly",
    async (lines) => {
      const conv = await seed(lines);
      const first = await conversations.getConversation(conv, { limit: PAGE });
      expect(first?.registrations).toHaveLength(3);
      expect(first?.tasks).toHaveLength(2);
      expect(
        await itemsRead(tables, () => conversations.getConversation(conv, { limit: PAGE })),
      ).toBeLessThanOrEqual(FIRST_PAGE_BOUND);
      let cursor = first?.nextCursor;
      let pages = 1;
      let total = await itemsRead(tables, () => conversations.getConversation(conv, { limit: PAGE }));
      let seen = first?.messages.length ?? 0;
      while (cursor) {
        const from = cursor;
        let page: Awaited<ReturnType<ConversationStore["getConversation"]>> = null;
        const read = await itemsRead(tables, async () => {
          page = await conversations.getConversation(conv, { limit: PAGE, cursor: from });
        });
        const next = page as Awaited<ReturnType<ConversationStore["getConversation"]>>;
        expect(read).toBeLessThanOrEqual(2 * PAGE + 2);
        expect(next?.tasks).toBeUndefined();
        expect(next?.registrations).toBeUndefined();
        seen += next?.messages.length ?? 0;
        total += read;
        cursor = next?.nextCursor;
        pages++;
      }
      // Every line (the transcript, 3 registrations, 2 task starts) read once: linear, not quadratic.
      expect(seen).toBe(lines + 5);
      expect(total).toBeLessThanOrEqual(lines + 5 + pages * 2 + 10);
    },
  );

  it("reads windows stored before win# existed from their lines, and npm run migrate makes them cheap (idempotent)", async () => {
    const conv = await seed(300);
    const { conversations: table } = tables.names;
    // Today's shape before the change: no win# items, and the meta on the unsharded listing key.
    const windows = await tables.doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "conversationId = :id AND begins_with(sk, :p)",
        ExpressionAttributeValues: { ":id": conv, ":p": "win#" },
      }),
    );
    expect(windows.Items).toHaveLength(3);
    for (const item of windows.Items ?? []) {
      await tables.doc.send(
        new DeleteCommand({ TableName: table, Key: { conversationId: conv, sk: item.sk } }),
      );
    }
    await tables.doc.send(
      new UpdateCommand({
        TableName: table,
        Key: { conversationId: conv, sk: "meta" },
        UpdateExpression: "SET listPk = :legacy",
        ExpressionAttributeValues: { ":legacy": LEGACY_LIST_PK },
      }),
    );

    const before = await conversations.getConversation(conv, { limit: PAGE });
    expect(before?.registrations?.map((r) => r.id)).toEqual(windows.Items?.map((w) => w.id));
    expect(
      await itemsRead(tables, () => conversations.getConversation(conv, { limit: PAGE })),
    ).toBeGreaterThan(300);
    expect(
      (await conversations.listConversations({ limit: 100 })).conversations.map((c) => c.conversationId),
    ).toContain(conv);

    const firstRun = await migrateHistory(tables.doc, table);
    expect(firstRun.windowsWritten).toBeGreaterThanOrEqual(3);
    expect(firstRun.metasMoved).toBeGreaterThanOrEqual(1);
    const secondRun = await migrateHistory(tables.doc, table);
    expect(secondRun.metasMoved).toBe(0);

    const after = await conversations.getConversation(conv, { limit: PAGE });
    expect(after?.registrations).toEqual(before?.registrations);
    expect(
      await itemsRead(tables, () => conversations.getConversation(conv, { limit: PAGE })),
    ).toBeLessThanOrEqual(FIRST_PAGE_BOUND);
    const meta = await tables.doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "conversationId = :id AND sk = :meta",
        ExpressionAttributeValues: { ":id": conv, ":meta": "meta" },
      }),
    );
    expect(meta.Items?.[0]?.listPk).toBe(listPartitionKey(conv));
  });

  it("lists newest first across the shards and the legacy key, with a cursor that never skips or repeats", async () => {
    const { conversations: table } = tables.names;
    const base = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const ids = Array.from({ length: 23 }, (_, i) => `list-${String(i).padStart(2, "0")}-${randomUUID()}`);
    for (const [i, conversationId] of ids.entries()) {
      const createdAt = `${base}T00:00:${String(i).padStart(2, "0")}.000Z`;
      await tables.doc.send(
        new PutCommand({
          TableName: table,
          Item: {
            conversationId,
            sk: "meta",
            createdAt,
            updatedAt: createdAt,
            status: "active",
            // A few still on the unsharded key, as before the migration.
            listPk: i % 5 === 0 ? LEGACY_LIST_PK : listPartitionKey(conversationId),
            listSk: `${createdAt}#${conversationId}`,
          },
        }),
      );
    }
    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await conversations.listConversations({ limit: 4, ...(cursor ? { cursor } : {}) });
      listed.push(...page.conversations.map((c) => c.conversationId));
      cursor = page.nextCursor;
    } while (cursor && listed.length < 23);
    expect(listed.slice(0, 23)).toEqual([...ids].reverse());
  });
});

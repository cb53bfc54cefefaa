import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { CONVERSATIONS_TABLE } from "../../functions/core/table-schema.js";
import { makeHandler as makeDelete } from "../../functions/delete-conversation/handler.js";
import { frozenAtRealNow, iso } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { freezeAt, type HistoryHarness, historyHarness } from "../support/history-harness.js";
import { SERVICE_TOKEN } from "../support/live-fixtures.js";
import { liveRequests } from "../support/live-harness.js";
import { line, transcriptionEvent } from "../support/post-call-fixtures.js";
import { conversationItems } from "../support/table-snapshot.js";

const DAY = 86_400_000;
/** DynamoDB Local's TTL sweep comes within ~10 s here: poll every 250 ms, at most 240 times. */
const TTL_SWEEP_POLL_MS = 250;
const TTL_SWEEP_POLLS = 240;
/** The polls' sleeps plus one slow (2 s) read per poll on a loaded machine. */
const TTL_SWEEP_TIMEOUT_MS = TTL_SWEEP_POLLS * (TTL_SWEEP_POLL_MS + 2_000);

/**
 * A whole conversation through the handlers at `t0`: a session, a tool task and its result, and
 * the post-call transcript, so every kind of item (meta, `msg#` lines, `win#` window, `task#`) exists.
 */
const playConversation = async (h: HistoryHarness, conv: string, t0: number) => {
  freezeAt(t0);
  expect((await h.handlers.register(liveRequests.register(conv, { agentId: "agent_ret" }))).statusCode).toBe(
    201,
  );
  vi.setSystemTime(t0 + 5_000);
  expect((await h.handlers.callTool(liveRequests.callTool(conv))).statusCode).toBe(200);
  const message = h.dispatched.at(-1);
  if (!message) throw new Error("no task was dispatched");
  vi.setSystemTime(t0 + 9_000);
  expect((await h.handlers.result(liveRequests.result(message, { result: { ok: 1 } }))).statusCode).toBe(200);
  vi.setSystemTime(t0 + 60_000);
  const webhook = await h.deliver(
    transcriptionEvent(conv, {
      startSecs: t0 / 1000,
      durationSecs: 30,
      transcript: [line("agent", "Hi", 0)],
    }),
  );
  expect(webhook.statusCode).toBe(200);
};

const kindsOf = (items: Record<string, unknown>[]) =>
  new Set(items.map((item) => String(item.sk).split("#")[0]));

describe("history retention (HISTORY_RETENTION_DAYS) on DynamoDB Local", () => {
  let tables: LocalTables;
  let kept: HistoryHarness;
  let forever: HistoryHarness;

  beforeAll(async () => {
    // The conversations table as the stack makes it with `historyRetentionDays`: TTL on purgeAt.
    tables = await createLocalTables({ historyRetention: true });
    kept = historyHarness(tables, undefined, { HISTORY_RETENTION_DAYS: "1" });
    forever = historyHarness(tables);
  });
  afterAll(async () => tables?.drop());
  afterEach(() => {
    vi.useRealTimers();
  });

  it("stamps every item of a conversation with purgeAt, anchored on its first write", async () => {
    const conv = `ret-${randomUUID()}`;
    const t0 = frozenAtRealNow() + 123; // a fraction of a second: purgeAt rounds up
    await playConversation(kept, conv, t0);

    const items = await kept.items(conv);
    expect(kindsOf(items)).toEqual(new Set(["meta", "msg", "win", "task"]));
    for (const item of items) {
      expect(item.purgeAt, String(item.sk)).toEqual(expect.any(Number));
      // Never before the conversation's end of retention, never later than its last write's.
      expect(item.purgeAt as number, String(item.sk)).toBeGreaterThanOrEqual(Math.ceil((t0 + DAY) / 1000));
      expect(item.purgeAt as number, String(item.sk)).toBeLessThanOrEqual(
        Math.ceil((t0 + 60_000 + DAY) / 1000),
      );
    }
    const meta = items.find((item) => item.sk === "meta");
    // Later writes (the task, the webhook a minute later) never moved the anchor.
    expect(meta).toMatchObject({ purgeAtMs: t0 + DAY, purgeAt: Math.ceil((t0 + DAY) / 1000) });
    expect(bodyOf(await kept.readPage(conv)).meta).toMatchObject({ retainedUntil: iso(t0 + DAY) });
  });

  it("stamps a session started by the first tool call (phone agents) the same way", async () => {
    const conv = `ret-phone-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    const tool = await kept.handlers.callTool(liveRequests.callTool(conv));
    expect(tool.statusCode).toBe(200);
    expect(bodyOf(tool).status).toBe("accepted");

    const items = await kept.items(conv);
    expect(kindsOf(items)).toEqual(new Set(["meta", "msg", "win", "task"]));
    for (const item of items) expect(item.purgeAt, String(item.sk)).toBe(Math.ceil((t0 + DAY) / 1000));
    expect(items.find((item) => item.sk === "meta")).toMatchObject({ purgeAtMs: t0 + DAY });
  });

  it("writes no retention attribute at all when it is unset, and reads the history forever", async () => {
    const conv = `forever-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    await playConversation(forever, conv, t0);

    const items = await forever.items(conv);
    expect(kindsOf(items)).toEqual(new Set(["meta", "msg", "win", "task"]));
    for (const item of items) {
      expect(item, String(item.sk)).not.toHaveProperty("purgeAt");
      expect(item, String(item.sk)).not.toHaveProperty("purgeAtMs");
    }
    vi.setSystemTime(t0 + 3650 * DAY);
    const page = await forever.readPage(conv);
    expect(page.statusCode).toBe(200);
    expect(bodyOf(page).meta).not.toHaveProperty("retainedUntil");
  });

  it("answers 404 and leaves the conversation out of the list from the end of retention, before any TTL sweep", async () => {
    const conv = `ret-end-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    await playConversation(kept, conv, t0);
    const listed = async () => {
      const ids: unknown[] = [];
      let cursor: string | undefined;
      do {
        const page = bodyOf(await kept.listPage({ limit: "100", ...(cursor ? { cursor } : {}) }));
        ids.push(...(page.conversations as { conversationId: string }[]).map((c) => c.conversationId));
        cursor = page.nextCursor as string | undefined;
      } while (cursor);
      return ids;
    };

    vi.setSystemTime(t0 + DAY - 1);
    expect((await kept.readPage(conv)).statusCode).toBe(200);
    expect(await listed()).toContain(conv);

    vi.setSystemTime(t0 + DAY + 1);
    const gone = await kept.readPage(conv);
    expect(gone.statusCode).toBe(404);
    expect(bodyOf(gone).error).toBe("conversation_not_found");
    expect(await listed()).not.toContain(conv);
    // Nothing was deleted yet: that is DynamoDB's TTL's job, days late. The read alone decides.
    expect((await kept.items(conv)).length).toBeGreaterThan(4);

    // A store without retention configured still honours what the items say.
    const store = new ConversationStore({ client: tables.doc, tableName: tables.names.conversations });
    expect(await store.getConversation(conv)).toBeNull();

    // Erasure still removes the leftovers, for a request that comes before the sweep.
    const erase = makeDelete(kept.deps);
    const erased = await erase(
      apiEvent({
        method: "DELETE",
        path: `/conversations/${conv}`,
        pathParameters: { conversationId: conv },
        headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
      }),
    );
    expect(erased.statusCode).toBe(200);
    expect(await kept.items(conv)).toEqual([]);
  });

  it("turns the conversations table's TTL on, on purgeAt, as the stack does with historyRetentionDays", async () => {
    const ttl = await tables.client.send(
      new DescribeTimeToLiveCommand({ TableName: tables.names.conversations }),
    );
    expect(ttl.TimeToLiveDescription).toMatchObject({
      TimeToLiveStatus: "ENABLED",
      AttributeName: "purgeAt",
    });
  });

  it(
    "is really deleted by DynamoDB Local's TTL sweep once purgeAt has passed",
    async () => {
      // DynamoDB Local (this jar) never sweeps a table that has a global secondary index, which
      // the conversations table has; DynamoDB does. So the sweep is shown on a table with the
      // same key schema and TTL setting but no index: the store's writes here need none.
      const tableName = `conversations-noindex-${randomUUID().slice(0, 8)}`;
      await tables.client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [
            { AttributeName: CONVERSATIONS_TABLE.partitionKey, AttributeType: "S" },
            { AttributeName: CONVERSATIONS_TABLE.sortKey, AttributeType: "S" },
          ],
          KeySchema: [
            { AttributeName: CONVERSATIONS_TABLE.partitionKey, KeyType: "HASH" },
            { AttributeName: CONVERSATIONS_TABLE.sortKey, KeyType: "RANGE" },
          ],
        }),
      );
      try {
        await tables.client.send(
          new UpdateTimeToLiveCommand({
            TableName: tableName,
            TimeToLiveSpecification: {
              AttributeName: CONVERSATIONS_TABLE.retentionTtlAttribute,
              Enabled: true,
            },
          }),
        );
        const conv = `ret-swept-${randomUUID()}`;
        const store = new ConversationStore({ client: tables.doc, tableName, historyRetentionDays: 1 });
        // Written a day and a minute ago on the real clock: every purgeAt is a minute in the past.
        const t0 = frozenAtRealNow() - DAY - 60_000;
        freezeAt(t0);
        // What was sent, read off the client: the sweep may come before any read could see it.
        const sent = vi.spyOn(tables.doc, "send");
        await store.appendMessages(conv, [
          { kind: "transcript", atMs: t0, id: "line-0", role: "user", text: "hi" },
        ]);
        const inputs = sent.mock.calls.map(([command]) => JSON.stringify(command.input));
        sent.mockRestore();
        // The line (BatchWriteItem) and the meta (UpdateItem), both with the past purgeAt.
        const purgeAt = Math.ceil((t0 + DAY) / 1000);
        expect(inputs).toEqual([
          expect.stringContaining(`"purgeAt":${purgeAt}`),
          expect.stringContaining(`":purgeAt":${purgeAt}`),
        ]);
        vi.useRealTimers();
        expect(purgeAt * 1000).toBeLessThan(Date.now());
        const stored = () => conversationItems(tables.doc, tableName, conv);
        // Bounded polls, so a sweep that never comes fails here instead of hanging.
        let polls = 0;
        while ((await stored()).length > 0 && polls < TTL_SWEEP_POLLS) {
          polls++;
          await sleep(TTL_SWEEP_POLL_MS);
        }
        expect(await stored(), `still there after ${polls} polls of ${TTL_SWEEP_POLL_MS} ms`).toEqual([]);
      } finally {
        await tables.client.send(new DeleteTableCommand({ TableName: tableName }));
      }
    },
    TTL_SWEEP_TIMEOUT_MS,
  );
});

import { afterAll, afterEach, beforeAll, vi } from "vitest";
import type { Parker } from "../../functions/core/parking.js";
import { makeHandler as makeGetConversation } from "../../functions/get-conversation/handler.js";
import { makeHandler as makeListConversations } from "../../functions/list-conversations/handler.js";
import { makeHandler as makeWebhook } from "../../functions/post-call-webhook/handler.js";
import { createLocalTables, type LocalTables } from "./dynamo.js";
import { apiEvent, bodyOf } from "./events.js";
import { SERVICE_TOKEN } from "./live-fixtures.js";
import { createLiveHarness } from "./live-harness.js";
import { memoryParker, WEBHOOK_SECRET, webhookRequest } from "./post-call-fixtures.js";
import { scanAll } from "./table-snapshot.js";

/** Freezes `Date` only: the SDK's sockets and retries keep real timers. */
export const freezeAt = (ms: number): void => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(ms);
};

/**
 * The live path plus the webhook and the history routes, all on one set of DynamoDB Local tables;
 * `env` adds to the handlers' environment (e.g. `HISTORY_RETENTION_DAYS`).
 */
export const historyHarness = (
  tables: LocalTables,
  parker: Parker = memoryParker(),
  env: Record<string, string> = {},
) => {
  const live = createLiveHarness({ doc: tables.doc, tables: tables.names, env: { WEBHOOK_SECRET, ...env } });
  const webhook = makeWebhook({ ...live.deps, parker });
  const getConversation = makeGetConversation(live.deps);
  const listConversations = makeListConversations(live.deps);
  const auth = { authorization: `Bearer ${SERVICE_TOKEN}` };
  const readPage = (conversationId: string, query?: Record<string, string>) =>
    getConversation(
      apiEvent({
        method: "GET",
        path: `/conversations/${conversationId}`,
        pathParameters: { conversationId },
        headers: auth,
        ...(query ? { query } : {}),
      }),
    );

  return {
    ...live,
    webhook,
    /** Delivers a body signed now (the fake clock's now), as ElevenLabs would. */
    deliver: (body: unknown) =>
      webhook(webhookRequest(typeof body === "string" ? body : JSON.stringify(body))),
    readPage,
    listPage: (query?: Record<string, string>) =>
      listConversations(
        apiEvent({ method: "GET", path: "/conversations", headers: auth, ...(query ? { query } : {}) }),
      ),
    /** Every page of a conversation's history through the route, following `nextCursor`. */
    async readAll(conversationId: string, limit = 100) {
      const pages: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      do {
        const response = await readPage(conversationId, {
          limit: String(limit),
          ...(cursor ? { cursor } : {}),
        });
        if (response.statusCode !== 200) throw new Error(`history read answered ${response.statusCode}`);
        const page = bodyOf(response);
        pages.push(page);
        cursor = page.nextCursor as string | undefined;
      } while (cursor);
      const messages = pages.flatMap((p) => p.messages as Record<string, unknown>[]);
      return { ...pages[0], messages, pages: pages.length } as Record<string, unknown> & {
        messages: Record<string, unknown>[];
        pages: number;
      };
    },
    /** Every raw item of one conversation, straight from the table. */
    items: async (conversationId: string) =>
      (await scanAll(tables.doc, tables.names.conversations)).filter(
        (i) => i.conversationId === conversationId,
      ),
  };
};

export type HistoryHarness = ReturnType<typeof historyHarness>;

/**
 * Fresh tables and a harness for one test file: created before its tests, dropped after them,
 * with real timers restored after each test. Call the returned function inside a test.
 */
export const useHistoryHarness = (): (() => HistoryHarness & { tables: LocalTables }) => {
  let current: (HistoryHarness & { tables: LocalTables }) | undefined;
  beforeAll(async () => {
    const tables = await createLocalTables();
    current = { ...historyHarness(tables), tables };
  });
  afterAll(async () => {
    await current?.tables.drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  return () => {
    if (!current) throw new Error("useHistoryHarness() is only ready inside a test");
    return current;
  };
};

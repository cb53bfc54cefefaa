import { randomUUID } from "node:crypto";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { META_SK, toMeta } from "../../functions/core/conversation-items.js";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { CONVERSATIONS_TABLE } from "../../functions/core/table-schema.js";
import { ensureMeta } from "../support/conversation-meta.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { captureLogger } from "../support/log-capture.js";

/**
 * The listing index projects only what `GET /conversations` answers (INCLUDE, table-schema.ts).
 * On DynamoDB Local, with tables created exactly as `npm start` creates them: the index is
 * INCLUDE, and the listing answers every field of each conversation as the whole meta item has it.
 */
describe("the by-created listing index on DynamoDB Local", () => {
  let tables: LocalTables;
  let store: ConversationStore;
  beforeAll(async () => {
    tables = await createLocalTables();
    store = new ConversationStore({
      client: tables.doc,
      tableName: tables.names.conversations,
      logger: captureLogger(),
    });
  });
  afterAll(async () => {
    await tables.drop();
  });

  it("is created with projection INCLUDE of exactly the listed attributes", async () => {
    const { Table } = await tables.client.send(
      new DescribeTableCommand({ TableName: tables.names.conversations }),
    );
    const index = Table?.GlobalSecondaryIndexes?.find(
      (i) => i.IndexName === CONVERSATIONS_TABLE.listIndex.name,
    );
    expect(index?.Projection).toEqual({
      ProjectionType: "INCLUDE",
      NonKeyAttributes: [...CONVERSATIONS_TABLE.listIndex.projectedAttributes],
    });
  });

  it("lists each conversation with the same fields as its whole meta item, however many it carries", async () => {
    const plain = `plain-${randomUUID()}`;
    const rich = `rich-${randomUUID()}`;
    await ensureMeta(tables.doc, tables.names.conversations, plain);
    await ensureMeta(tables.doc, tables.names.conversations, rich, { agentId: "agent-7" });
    // Every listed attribute set, plus attributes the listing never answers.
    await tables.doc.send(
      new UpdateCommand({
        TableName: tables.names.conversations,
        Key: { conversationId: rich, sk: META_SK },
        UpdateExpression:
          "SET #status = :status, lastSession = :last, sessionCount = :two, taskCount = :three, #call = :call, " +
          "reconcileOutcome = :gaveUp, reconcileOutcomeAt = :at, sessionStart = :start, " +
          "transcriptStoredAt = :at, analysis = :analysis",
        ExpressionAttributeNames: { "#status": "status", "#call": "call" },
        ExpressionAttributeValues: {
          ":status": "ended",
          ":last": {
            sessionId: "s2",
            createdAt: "2026-12-02T10:01:00.000Z",
            createdAtMs: 1_796_205_660_000,
            expiresAtMs: 1_796_206_260_000,
            ttlMs: 600_000,
            endedAtMs: 1_796_205_700_000,
            endReason: "call_ended",
          },
          ":two": 2,
          ":three": 3,
          ":call": { durationSecs: 42, terminationReason: "end_call tool" },
          ":gaveUp": "gave_up",
          ":at": "2026-12-02T11:00:00.000Z",
          ":start": { by: "first-tool-call", toolName: "lookup_order" },
          ":analysis": { summary: "x".repeat(2000) },
        },
      }),
    );
    const whole = async (conversationId: string) =>
      toMeta(
        (
          await tables.doc.send(
            new GetCommand({ TableName: tables.names.conversations, Key: { conversationId, sk: META_SK } }),
          )
        ).Item ?? {},
      );
    const listed = (await store.listConversations({ limit: 100 })).conversations;
    const byId = new Map(listed.map((c) => [c.conversationId, c]));
    expect(byId.get(rich)).toEqual(await whole(rich));
    expect(byId.get(plain)).toEqual(await whole(plain));
    // The rich one really carries every listed field (so the comparison above covers them all).
    expect(Object.keys(byId.get(rich) ?? {}).sort()).toEqual(
      [
        "agentId",
        "call",
        "conversationId",
        "createdAt",
        "lastSession",
        "sessionCount",
        "sessionStart",
        "status",
        "taskCount",
        "transcriptUnavailable",
        "updatedAt",
      ].sort(),
    );
  });
});

import { randomUUID } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConversationStore } from "../../functions/core/conversation-store.js";
import { fileParker, PARKING_FILE } from "../../functions/core/parking.js";
import {
  FAILED_PARKING_FILE,
  replayParkingFile,
  replayParkingQueue,
} from "../../functions/core/replay-parked.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { captureLogger } from "../support/log-capture.js";
import { audioEvent, transcriptionEvent } from "../support/post-call-fixtures.js";

const parked = (body: unknown) => ({
  receivedAt: "2026-11-27T10:00:00.000Z",
  rawBody: typeof body === "string" ? body : JSON.stringify(body),
  reason: "storage_unavailable",
});

describe("replaying parked post-call events (npm run replay-parked)", () => {
  let tables: LocalTables;
  let conversations: ConversationStore;
  beforeAll(async () => {
    tables = await createLocalTables();
    conversations = new ConversationStore({
      client: tables.doc,
      tableName: tables.names.conversations,
      logger: captureLogger(),
    });
  });
  afterAll(async () => {
    await tables.drop();
  });

  it("stores parked file events once, sets aside what can never be stored, and is idempotent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "parked-"));
    const conv = `replay-${randomUUID()}`;
    const parker = fileParker(dir);
    await parker.park(parked(transcriptionEvent(conv)));
    await parker.park(parked(transcriptionEvent(conv)));
    await parker.park(parked(audioEvent(conv)));
    await parker.park(parked("{not json"));

    const first = await replayParkingFile({ conversations }, dir);
    // Issue 19: an event no replay can store is reported as permanent and set aside, not retried forever.
    expect(first).toMatchObject({ read: 4, stored: 2, ignored: 1, keptParked: 0, failedPermanently: 1 });
    expect((await readFile(join(dir, PARKING_FILE), "utf8")).trim()).toBe("");
    const failed = (await readFile(join(dir, FAILED_PARKING_FILE), "utf8")).trim().split("\n");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain("{not json");

    const history = await conversations.getConversation(conv, { limit: 100 });
    const transcript = history?.messages.filter((m) => m.kind === "transcript") ?? [];
    expect(transcript.length).toBeGreaterThan(0);
    const again = await replayParkingFile({ conversations }, dir);
    expect(again).toMatchObject({ read: 0, stored: 0, keptParked: 0, failedPermanently: 0 });
    const after = await conversations.getConversation(conv, { limit: 100 });
    expect(after?.messages.filter((m) => m.kind === "transcript")).toHaveLength(transcript.length);
  });

  it("drains the SQS parking queue, deleting only what was stored", async () => {
    const sqs = new SQSClient({
      region: "us-east-1",
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
    const mock = mockClient(sqs);
    const conv = `queue-${randomUUID()}`;
    mock
      .on(ReceiveMessageCommand)
      .resolvesOnce({
        Messages: [
          { Body: JSON.stringify(parked(transcriptionEvent(conv))), ReceiptHandle: "r1" },
          { Body: JSON.stringify(parked("{broken")), ReceiptHandle: "r2" },
        ],
      })
      .resolves({ Messages: [] });
    mock.on(DeleteMessageCommand).resolves({});
    const summary = await replayParkingQueue({ conversations }, sqs, "https://sqs.test/parking");
    expect(summary).toMatchObject({ read: 2, stored: 1, keptParked: 0, failedPermanently: 1 });
    expect(summary.results[1]).toMatchObject({ outcome: "unusable", permanent: true });
    expect(mock.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input.ReceiptHandle)).toEqual(["r1"]);
    expect((await conversations.getConversation(conv))?.meta.conversationId).toBe(conv);
  });
});

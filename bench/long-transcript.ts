import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ConversationStore } from "../functions/core/conversation-store.js";
import { createDocumentClient } from "../functions/core/dependencies.js";
import { storePostCallEvent } from "../functions/core/post-call-api.js";
import { interpretPostCallEvent } from "../functions/core/post-call-payload.js";
import { createTables } from "../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "../local/dynamodb-local.js";

/**
 * How long storing one long post-call transcript takes on an in-memory DynamoDB Local (issue 19:
 * 20 000 lines took 10–16 s written one batch after the other, against a 30 s limit).
 * `npx tsx bench/long-transcript.ts [lines] [runs]`; prints one JSON line per run and the median.
 * Outside CI: a figure to keep in bench/RESULTS.md, never an assertion.
 */
const lines = Number(process.argv[2] ?? 20_000);
const runs = Number(process.argv[3] ?? 3);

const main = async () => {
  const local = await startDynamoDbLocal();
  try {
    process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
    const names = { sessions: "bench-sessions", conversations: "bench-conversations" };
    await createTables(
      new DynamoDBClient({ endpoint: local.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }),
      names,
    );
    const doc = createDocumentClient({ dynamoEndpoint: local.endpoint }, LOCAL_REGION);
    const conversations = new ConversationStore({ client: doc, tableName: names.conversations });
    // A fresh JVM is slow until it has compiled its hot paths: warm it up with a short call first.
    for (let warm = 0; warm < 5; warm++) {
      try {
        await conversations.appendMessages(
          `warm-up-${warm}`,
          Array.from({ length: 500 }, (_, i) => ({
            kind: "transcript" as const,
            atMs: i,
            seq: i,
            id: `t-${i}`,
            text: "warm",
          })),
        );
      } catch {
        // Only the timed runs count.
      }
    }
    const timings: number[] = [];
    for (let run = 0; run < runs; run++) {
      const conversationId = `long-${run}-${Date.now()}`;
      const transcript = Array.from({ length: lines }, (_, i) => ({
        role: i % 2 ? "user" : "agent",
        message: `Line ${i} of a long call, about as long as a spoken sentence usually is.`,
        time_in_call_secs: i,
      }));
      const body = JSON.stringify({
        type: "post_call_transcription",
        event_timestamp: Math.floor(Date.now() / 1000),
        data: {
          conversation_id: conversationId,
          status: "done",
          transcript,
          metadata: {
            start_time_unix_secs: Math.floor(Date.now() / 1000) - lines,
            call_duration_secs: lines,
          },
        },
      });
      const started = performance.now();
      const event = interpretPostCallEvent(body, Date.now());
      if (event.kind !== "transcription") throw new Error(`unexpected ${event.kind}`);
      await storePostCallEvent({ conversations }, event);
      const ms = Math.round(performance.now() - started);
      timings.push(ms);
      console.log(JSON.stringify({ run, lines, bodyBytes: body.length, ms }));
    }
    const sorted = [...timings].sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        lines,
        runs,
        medianMs: sorted[Math.floor(sorted.length / 2)],
        minMs: sorted[0],
        maxMs: sorted.at(-1),
      }),
    );
  } finally {
    await local.stop();
  }
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

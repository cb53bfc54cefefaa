import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { PARKING_FILE, type ParkedEvent, parseParkedLines, readParkedFile } from "./parking.js";
import { type PostCallStoreDeps, type ReplayResult, replayParked } from "./post-call-api.js";

/** Totals of one replay run, printed by `npm run replay-parked`. */
export interface ReplaySummary {
  readonly read: number;
  readonly stored: number;
  readonly ignored: number;
  /** Kept parked: storage failed again (retry later) or the event cannot be interpreted (needs a person). */
  readonly keptParked: number;
  readonly results: readonly ReplayResult[];
}

/** Replayed events that can leave the parking place: stored now, or a type we never store. */
const isDone = (r: ReplayResult) => r.outcome === "stored" || r.outcome === "ignored";

const summarize = (results: readonly ReplayResult[]): ReplaySummary => ({
  read: results.length,
  stored: results.filter((r) => r.outcome === "stored").length,
  ignored: results.filter((r) => r.outcome === "ignored").length,
  keptParked: results.filter((r) => !isDone(r)).length,
  results,
});

/**
 * Replays the local parking file and rewrites it (atomically) with only the events that are
 * still not stored. Replaying is idempotent, so a crash half-way only means replaying again.
 */
export const replayParkingFile = async (deps: PostCallStoreDeps, dir: string): Promise<ReplaySummary> => {
  const events = await readParkedFile(dir);
  const results = await replayParked(deps, events);
  const keep = events.filter((_, i) => {
    const result = results[i];
    return !result || !isDone(result);
  });
  const path = join(dir, PARKING_FILE);
  const next = `${path}.replay-${process.pid}`;
  await writeFile(next, keep.map((e) => `${JSON.stringify(e)}\n`).join(""), { mode: 0o600 });
  await rename(next, path);
  return summarize(results);
};

/**
 * Drains the SQS parking queue: each message is replayed and deleted only once it is stored (or
 * is a type we never store). Failures stay on the queue; after its maxReceiveCount they move to
 * the parking dead-letter queue, which an alarm watches.
 */
export const replayParkingQueue = async (
  deps: PostCallStoreDeps,
  sqs: Pick<SQSClient, "send">,
  queueUrl: string,
  options: { maxMessages?: number } = {},
): Promise<ReplaySummary> => {
  const limit = options.maxMessages ?? 10_000;
  const all: ReplayResult[] = [];
  while (all.length < limit) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 60,
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) break;
    for (const message of messages) {
      const [event] = parseParkedLines(message.Body ?? "");
      const [result] = event
        ? await replayParked(deps, [event as ParkedEvent])
        : [{ receivedAt: "unknown", outcome: "unusable" as const, reason: "message is not a parked event" }];
      if (!result) continue;
      all.push(result);
      if (isDone(result) && message.ReceiptHandle) {
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      }
    }
  }
  return summarize(all);
};

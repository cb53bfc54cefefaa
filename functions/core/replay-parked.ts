import { appendFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { PARKING_FILE, type ParkedEvent, parseParkedLines, readParkedFile } from "./parking.js";
import { type PostCallStoreDeps, type ReplayResult, replayParked } from "./post-call-api.js";

/** Totals of one replay run, printed by `npm run replay-parked`. */
export interface ReplaySummary {
  readonly read: number;
  readonly stored: number;
  readonly ignored: number;
  /** Kept parked: storage was unavailable again; the next run retries them. */
  readonly keptParked: number;
  /**
   * Failed for good (the event cannot be interpreted, or storing it fails for a reason a retry
   * cannot change): set aside for a person, never retried again. Locally they move to
   * `parked-post-call-events.failed.jsonl`; in SQS the queue's redrive moves them to its
   * dead-letter queue after maxReceiveCount receives.
   */
  readonly failedPermanently: number;
  readonly results: readonly ReplayResult[];
}

/** Replayed events that can leave the parking place: stored now, or a type we never store. */
const isDone = (r: ReplayResult) => r.outcome === "stored" || r.outcome === "ignored";
/** Events another replay cannot store: set aside, so they are reported once instead of retried forever. */
const isPermanent = (r: ReplayResult) => !isDone(r) && r.permanent === true;

const summarize = (results: readonly ReplayResult[]): ReplaySummary => ({
  read: results.length,
  stored: results.filter((r) => r.outcome === "stored").length,
  ignored: results.filter((r) => r.outcome === "ignored").length,
  keptParked: results.filter((r) => !isDone(r) && !isPermanent(r)).length,
  failedPermanently: results.filter(isPermanent).length,
  results,
});

/** Where a local replay sets aside the events it can never store, one JSON line each. */
export const FAILED_PARKING_FILE = "parked-post-call-events.failed.jsonl";

/**
 * Replays the local parking file and rewrites it (atomically) with only the events that are
 * still not stored. Replaying is idempotent, so a crash half-way only means replaying again.
 */
export const replayParkingFile = async (deps: PostCallStoreDeps, dir: string): Promise<ReplaySummary> => {
  const events = await readParkedFile(dir);
  const results = await replayParked(deps, events);
  const keep = events.filter((_, i) => {
    const result = results[i];
    return !result || (!isDone(result) && !isPermanent(result));
  });
  const failed = events.flatMap((event, i) => {
    const result = results[i];
    return result && isPermanent(result) ? [{ ...event, failure: result.reason ?? result.outcome }] : [];
  });
  // Set aside first: a crash between the two writes replays them once more, it never loses them.
  if (failed.length > 0) {
    await appendFile(join(dir, FAILED_PARKING_FILE), failed.map((e) => `${JSON.stringify(e)}\n`).join(""), {
      mode: 0o600,
    });
  }
  const path = join(dir, PARKING_FILE);
  const next = `${path}.replay-${process.pid}`;
  await writeFile(next, keep.map((e) => `${JSON.stringify(e)}\n`).join(""), { mode: 0o600 });
  await rename(next, path);
  return summarize(results);
};

/**
 * Drains the SQS parking queue: each message is replayed and deleted only once it is stored (or
 * is a type we never store). Failures stay on the queue, each reported as permanent or not; after
 * its maxReceiveCount a message moves to the parking dead-letter queue, which an alarm watches,
 * so none is retried forever and its body is kept for a person.
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

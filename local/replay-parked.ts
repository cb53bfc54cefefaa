import { SQSClient } from "@aws-sdk/client-sqs";
import { createDependencies } from "../functions/core/dependencies.js";
import { replayParkingFile, replayParkingQueue } from "../functions/core/replay-parked.js";

/**
 * `npm run replay-parked`: re-applies post-call events that were parked because storage failed.
 *
 * - Locally: reads PARKING_DIR (default .local-data/parked) against DYNAMODB_ENDPOINT.
 * - In AWS: `PARKING_QUEUE_URL=<ParkingQueueUrl output> SESSIONS_TABLE=... CONVERSATIONS_TABLE=...
 *   npm run replay-parked` with credentials that may read the queue and write the conversations table.
 * Idempotent: running it twice stores nothing twice.
 */
const main = async () => {
  const env = { ...process.env };
  env.SESSIONS_TABLE ??= "sessions";
  env.CONVERSATIONS_TABLE ??= "conversations";
  const deps = createDependencies(env);
  const summary = env.PARKING_QUEUE_URL
    ? await replayParkingQueue(deps, new SQSClient({}), env.PARKING_QUEUE_URL)
    : await replayParkingFile(deps, env.PARKING_DIR ?? ".local-data/parked");
  const { results, ...totals } = summary;
  console.log(JSON.stringify({ message: "Replay of parked post-call events finished", ...totals }));
  for (const r of results.filter((x) => x.outcome !== "stored" && x.outcome !== "ignored")) {
    const message = r.permanent
      ? "Event failed permanently; set aside for a person, not retried"
      : "Event kept parked; storage was unavailable, run again later";
    console.log(JSON.stringify({ message, ...r }));
  }
  process.exitCode = summary.keptParked > 0 || summary.failedPermanently > 0 ? 2 : 0;
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

import type { Config } from "./config.js";
import { fileParker, noParker, type Parker } from "./parking.js";
import { createSqsSend, type SqsSend } from "./sqs-send.js";

/**
 * Parks events on the SQS parking queue (the only parking module that sends to SQS, so other
 * bundles do not carry the sender). The message body is the parked event as JSON.
 */
export const sqsParker = (queueUrl: string, send: SqsSend = createSqsSend()): Parker => ({
  kind: "sqs",
  async park(event) {
    await send(queueUrl, JSON.stringify(event));
  },
});

/** SQS when `PARKING_QUEUE_URL` is set (AWS), a local file when `PARKING_DIR` is set, else none. */
export const createParker = (config: Pick<Config, "parkingQueueUrl" | "parkingDir">): Parker => {
  if (config.parkingQueueUrl) return sqsParker(config.parkingQueueUrl);
  if (config.parkingDir) return fileParker(config.parkingDir);
  return noParker;
};

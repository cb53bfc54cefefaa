import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "./config.js";
import { fileParker, noParker, type Parker } from "./parking.js";
import { SQS_CLIENT_SETTINGS } from "./task-queue.js";

/**
 * Parks events on the SQS parking queue (the only parking module that imports the SQS client,
 * so other bundles do not pull it in). The message body is the parked event as JSON.
 */
export const sqsParker = (queueUrl: string, client = new SQSClient(SQS_CLIENT_SETTINGS)): Parker => ({
  kind: "sqs",
  async park(event) {
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(event) }));
  },
});

/** SQS when `PARKING_QUEUE_URL` is set (AWS), a local file when `PARKING_DIR` is set, else none. */
export const createParker = (config: Pick<Config, "parkingQueueUrl" | "parkingDir">): Parker => {
  if (config.parkingQueueUrl) return sqsParker(config.parkingQueueUrl);
  if (config.parkingDir) return fileParker(config.parkingDir);
  return noParker;
};

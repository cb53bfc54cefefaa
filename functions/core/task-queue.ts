import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "./config.js";
import {
  httpDispatcher,
  noDispatcher,
  type SqsSender,
  sqsDispatcher,
  type TaskDispatcher,
} from "./dispatcher.js";
import type { AppLogger } from "./powertools.js";

/** The SQS side of the dispatcher (the only module that imports the SQS client). */
export const sqsSender = (client = new SQSClient({ maxAttempts: 3 })): SqsSender => ({
  async sendMessage(queueUrl, body) {
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  },
});

/** SQS when `TASK_QUEUE_URL` is set (AWS), an HTTP runner when `RUNNER_URL` is set (local), else none. */
export const createDispatcher = (config: Config, logger: AppLogger): TaskDispatcher => {
  if (config.taskQueueUrl) return sqsDispatcher(sqsSender(), config.taskQueueUrl);
  if (config.runnerUrl) return httpDispatcher(config.runnerUrl);
  return noDispatcher(logger);
};

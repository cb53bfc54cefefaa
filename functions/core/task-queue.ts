import type { Config } from "./config.js";
import {
  httpDispatcher,
  noDispatcher,
  type SqsSender,
  sqsDispatcher,
  type TaskDispatcher,
} from "./dispatcher.js";
import type { AppLogger } from "./powertools.js";
import { createSqsSend, type SqsSend } from "./sqs-send.js";

/**
 * The SQS side of the dispatcher: one signed SendMessage with the same deliberate limits as
 * DynamoDB (3 attempts, 2 s per attempt that really aborts), so a hung send ends as a 503 well
 * inside the Lambda timeout instead of running into it. See sqs-send.ts for why not the SDK client.
 */
export const sqsSender = (send: SqsSend = createSqsSend()): SqsSender => ({
  async sendMessage(queueUrl, body) {
    await send(queueUrl, body);
  },
});

/** SQS when `TASK_QUEUE_URL` is set (AWS), an HTTP runner when `RUNNER_URL` is set (local), else none. */
export const createDispatcher = (config: Config, logger: AppLogger): TaskDispatcher => {
  if (config.taskQueueUrl) return sqsDispatcher(sqsSender(), config.taskQueueUrl);
  if (config.runnerUrl) return httpDispatcher(config.runnerUrl);
  return noDispatcher(logger);
};

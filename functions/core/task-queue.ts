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

/**
 * SQS clients get the same deliberate limits as DynamoDB: 3 attempts, 1 s to connect, 2 s per
 * attempt (and the attempt really aborts), so a hung send ends as a 503 well inside the Lambda
 * timeout instead of running into it.
 */
export const SQS_CLIENT_SETTINGS = {
  maxAttempts: 3,
  retryMode: "standard",
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
} as const;

/** The SQS side of the dispatcher (the only module that imports the SQS client). */
export const sqsSender = (client = new SQSClient(SQS_CLIENT_SETTINGS)): SqsSender => ({
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

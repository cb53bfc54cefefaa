import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import type { AppLogger } from "../core/logger.js";
import { CallbackRejectedError, CallbackUndeliveredError } from "./callback.js";
import { InvalidTaskMessageError } from "./task-message.js";

// A message the runner hands back to SQS for another try comes back, by default, after the queue's
// visibility timeout (6 minutes on the task queue), whatever the reason. For a transient failure
// the runner knows better: the callback said "Retry-After: 30", or the service was briefly down.
// It sets the message's visibility to its own back-off, so the retry comes when it should.

/** SQS's largest visibility timeout: 12 hours. */
export const MAX_VISIBILITY_SECONDS = 43_200;

/** When a message handed back to SQS is delivered again. */
export interface RedeliveryPolicy {
  /** Back-off after the first failed receive; doubles with each receive after it. */
  readonly baseDelaySeconds: number;
  /** The back-off never exceeds this (a `Retry-After` may ask for more, up to 12 hours). */
  readonly maxDelaySeconds: number;
}

/** 10 s, doubling per receive up to 5 minutes: below the task queue's 6-minute visibility timeout. */
export const DEFAULT_REDELIVERY_POLICY: RedeliveryPolicy = { baseDelaySeconds: 10, maxDelaySeconds: 300 };

/**
 * Seconds until SQS should deliver a failed message again, or undefined to leave the queue's own
 * visibility timeout. Failures retrying cannot fix (a message the runner refuses, a callback the
 * service refused for good) keep the normal retry, which ends in the dead-letter queue. Transient
 * ones wait the back-off for this receive, or longer when the service asked for longer
 * (`Retry-After`), within 0..{@link MAX_VISIBILITY_SECONDS}.
 */
export const redeliveryDelaySeconds = (
  error: unknown,
  receiveCount: number,
  policy: RedeliveryPolicy = DEFAULT_REDELIVERY_POLICY,
): number | undefined => {
  if (error instanceof InvalidTaskMessageError || error instanceof CallbackRejectedError) return undefined;
  const receives = Number.isInteger(receiveCount) && receiveCount >= 1 ? receiveCount : 1;
  const backoff = Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** Math.min(receives - 1, 30));
  const asked =
    error instanceof CallbackUndeliveredError && error.retryAfterMs !== undefined
      ? Math.ceil(error.retryAfterMs / 1000)
      : 0;
  const seconds = Math.max(backoff, asked);
  return Number.isFinite(seconds) ? Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.round(seconds))) : 0;
};

/**
 * `arn:aws:sqs:eu-west-1:123456789012:tasks` → the queue's URL. The client resolves its endpoint
 * from its region (`useQueueUrlAsEndpoint: false`), so the URL only names the queue.
 */
export const queueUrlOf = (queueArn: string): string | undefined => {
  const match = /^arn:[\w-]+:sqs:([\w-]+):(\d{12}):([\w-]{1,80}(?:\.fifo)?)$/.exec(queueArn);
  if (!match) return undefined;
  const [, region, account, name] = match;
  return `https://sqs.${region}.amazonaws.com/${account}/${name}`;
};

/** The one SQS call the runner makes itself. */
export type VisibilitySender = Pick<SQSClient, "send">;

/**
 * The runner's SQS client: few, short attempts, because it runs while the Lambda invocation is
 * ending; only `ChangeMessageVisibilityCommand` is imported, so the bundle carries no other command.
 */
export const createVisibilityClient = (): VisibilitySender =>
  new SQSClient({
    useQueueUrlAsEndpoint: false,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 500, requestTimeout: 1000, throwOnRequestTimeout: true },
  });

/** Most time the visibility change may take; the handler keeps it back from the invocation's end. */
export const VISIBILITY_CALL_MS = 2000;

/**
 * Sets the record's visibility to `delaySeconds`, so SQS delivers it again after that back-off. A
 * failure is logged and otherwise ignored: the message then comes back after the queue's
 * visibility timeout, as it would without this call. Never throws.
 */
export const delayRedelivery = async (
  sqs: VisibilitySender,
  record: SQSRecord,
  delaySeconds: number,
  logger: AppLogger,
): Promise<boolean> => {
  const queueUrl = queueUrlOf(record.eventSourceARN);
  try {
    if (!queueUrl) throw new Error("The record's eventSourceARN is not an SQS queue ARN.");
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: delaySeconds,
      }),
      { abortSignal: AbortSignal.timeout(VISIBILITY_CALL_MS) },
    );
    return true;
  } catch (error) {
    logger.warn(
      "Could not set the task message's visibility; SQS delivers it again after the queue's visibility timeout",
      {
        messageId: record.messageId,
        retryInSeconds: delaySeconds,
        errorName: error instanceof Error ? error.name : "Error",
      },
    );
    return false;
  }
};

/**
 * A record whose task failed goes back to SQS (the caller rethrows): logs why, with a constant
 * message and the error's class and own sentence (none carries the token or the result), and for a
 * transient failure sets when SQS delivers it again. Never throws.
 */
export const handBackToSqs = async (
  record: SQSRecord,
  error: unknown,
  deps: {
    readonly logger: AppLogger;
    readonly policy: RedeliveryPolicy;
    readonly sqs: () => VisibilitySender;
  },
): Promise<void> => {
  const receiveCount = Number(record.attributes.ApproximateReceiveCount);
  const retryInSeconds = redeliveryDelaySeconds(error, receiveCount, deps.policy);
  const keys = {
    messageId: record.messageId,
    receiveCount,
    errorName: error instanceof Error ? error.name : "Error",
    error: error instanceof Error ? error.message : "non-Error thrown",
    ...(retryInSeconds === undefined ? {} : { retryInSeconds }),
  };
  if (error instanceof InvalidTaskMessageError) {
    deps.logger.error("Task message refused; SQS retries it, then dead-letters it", keys);
  } else {
    deps.logger.error("Task result not delivered; SQS delivers the message again", keys);
  }
  if (retryInSeconds !== undefined) await delayRedelivery(deps.sqs(), record, retryInSeconds, deps.logger);
};

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import {
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { isTransientError, ServiceUnavailableError } from "./errors.js";

/** One item of a DocumentClient `TransactWriteItems` request. */
export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** Why one item of a cancelled transaction failed, with the old item already unmarshalled. */
export interface CancellationReason {
  readonly code: string;
  readonly item?: Record<string, unknown>;
}

/** A transaction either commits or is cancelled by a failed condition (a normal outcome, not an error). */
export type TransactionResult = { committed: true } | { committed: false; reasons: CancellationReason[] };

interface RawReason {
  Code?: string;
  Item?: Record<string, AttributeValue>;
}

const CONFLICT_RETRIES = 6;
/** Waits `ms` milliseconds (retry backoff). */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a transaction. A failed condition comes back as data (`committed: false` with the
 * reasons and, thanks to `ReturnValuesOnConditionCheckFailure`, the old items); a
 * `TransactionConflict` with a concurrent transaction is retried with jittered backoff;
 * throttling and timeouts become a {@link ServiceUnavailableError}.
 */
export const transactWrite = async (
  client: DynamoDBDocumentClient,
  items: TransactItem[],
): Promise<TransactionResult> => {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.send(new TransactWriteCommand({ TransactItems: items }));
      return { committed: true };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw toStoreError(error);
      const conflict = reasons.some((r) => r.code === "TransactionConflict");
      const conditionFailed = reasons.some((r) => r.code === "ConditionalCheckFailed");
      if (conditionFailed) return { committed: false, reasons };
      if (conflict && attempt < CONFLICT_RETRIES) {
        // Another transaction touched the same item at the same instant: retry, it usually clears in ms.
        await sleep(Math.random() * 10 * 2 ** attempt);
        continue;
      }
      throw new ServiceUnavailableError(
        "The request collided with concurrent writes. Please retry shortly.",
        1,
      );
    }
  }
};

/** The cancellation reasons of a `TransactionCanceledException`, or undefined for any other error. */
export const cancellationReasons = (error: unknown): CancellationReason[] | undefined => {
  if (!(error instanceof Error) || error.name !== "TransactionCanceledException") return undefined;
  const raw = (error as { CancellationReasons?: RawReason[] }).CancellationReasons ?? [];
  // The items in cancellation reasons come back raw even through the DocumentClient: unmarshall them.
  return raw.map((r) => ({ code: r.Code ?? "None", ...(r.Item ? { item: unmarshall(r.Item) } : {}) }));
};

/** Maps transient SDK failures to a 503-able error; everything else is rethrown as is. */
export const toStoreError = (error: unknown): unknown =>
  error instanceof ServiceUnavailableError || !isTransientError(error)
    ? error
    : new ServiceUnavailableError("The database is busy or unreachable right now. Please retry shortly.", 2);

/** Wraps a store call so transient SDK failures surface as {@link ServiceUnavailableError}. */
export const guard = async <T>(operation: () => Promise<T>): Promise<T> => {
  try {
    return await operation();
  } catch (error) {
    throw toStoreError(error);
  }
};

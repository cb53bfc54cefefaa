import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import {
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { isTransientError, ServiceUnavailableError } from "./errors.js";
import { restoreKeys } from "./storable.js";

/** One item of a DocumentClient `TransactWriteItems` request. */
export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** Why one item of a cancelled transaction failed, with the old item already unmarshalled. */
export interface CancellationReason {
  readonly code: string;
  readonly item?: Record<string, unknown>;
}

/** Whether one item of a cancelled transaction failed its condition. */
export const conditionFailed = (reason: CancellationReason | undefined): reason is CancellationReason =>
  reason?.code === "ConditionalCheckFailed";

/**
 * The old item a failed condition returned, kept opaque: only the store that wrote the condition
 * (e.g. `SessionStore.activeCondition`) knows how to read it, so no other module decodes raw items.
 */
export type FailedCheck = { readonly __failedCheck: never };

/** Wraps the old item of a failed condition (or nothing, when the item did not exist). */
export const failedCheckOf = (reason: CancellationReason): FailedCheck | undefined =>
  reason.item as unknown as FailedCheck | undefined;

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
      if (reasons.some(conditionFailed)) return { committed: false, reasons };
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
  return raw.map((r) => ({
    code: r.Code ?? "None",
    ...(r.Item ? { item: restoreKeys(unmarshall(r.Item)) } : {}),
  }));
};

/** Maps transient SDK failures to a 503-able error; everything else is rethrown as is. */
export const toStoreError = (error: unknown): unknown =>
  error instanceof ServiceUnavailableError || !isTransientError(error)
    ? error
    : new ServiceUnavailableError("The database is busy or unreachable right now. Please retry shortly.", 2);

/** Runs a store call so transient SDK failures (throttling, timeouts) surface as a 503 {@link ServiceUnavailableError}. */
export const mapTransientErrors = async <T>(operation: () => Promise<T>): Promise<T> => {
  try {
    return await operation();
  } catch (error) {
    throw toStoreError(error);
  }
};

/**
 * Runs a conditional write: true when it was written, false when its condition failed (the one
 * place a `ConditionalCheckFailedException` is caught). Transient failures become a 503.
 */
export const conditionalWrite = async (operation: () => Promise<unknown>): Promise<boolean> => {
  try {
    await mapTransientErrors(operation);
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === "ConditionalCheckFailedException") return false;
    throw error;
  }
};

/** One page of a query: its items and where the next page starts. */
export const queryPage = async (client: DynamoDBDocumentClient, input: QueryCommandInput) => {
  const output = await mapTransientErrors(() => client.send(new QueryCommand(input)));
  return { items: output.Items ?? [], lastKey: output.LastEvaluatedKey };
};

/** Follows a query's pages until it is exhausted or `max` items were read. */
export const queryAll = async (
  client: DynamoDBDocumentClient,
  input: QueryCommandInput,
  max = 1000,
): Promise<Record<string, unknown>[]> => {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await queryPage(client, { ...input, ...(startKey ? { ExclusiveStartKey: startKey } : {}) });
    items.push(...page.items);
    startKey = page.lastKey;
  } while (startKey && items.length < max);
  return items;
};

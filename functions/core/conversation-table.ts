import { BatchWriteCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { type Clock, systemClock } from "./clock.js";
import {
  iso,
  type MessageInput,
  messageItem,
  metaTouch,
  retentionFields,
  TASK_PREFIX,
  type TaskRecord,
  toTask,
  withRetentionAnchor,
} from "./conversation-items.js";
import { mapTransientErrors, queryAll, sleep } from "./dynamo.js";
import { DeadlineExceededError, ServiceUnavailableError } from "./errors.js";

/** What both stores of the conversations table are built from. */
export interface ConversationTableOptions {
  readonly client: DynamoDBDocumentClient;
  /** The conversations table. */
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: Clock;
  /**
   * Days a conversation is kept after its first write (`HISTORY_RETENTION_DAYS`): every item
   * written then carries the `purgeAt` TTL attribute. @default undefined: kept until erased
   */
  readonly historyRetentionDays?: number;
  /**
   * Batch writes in flight at once for one long write (a 20 000-line transcript is 800 batches).
   * @default 8
   */
  readonly batchConcurrency?: number;
}

const DAY_MS = 86_400_000;
const BATCH_SIZE = 25;
const BATCH_RETRIES = 8;
/** Batch writes in flight at once for one long transcript (each is one HTTP request to DynamoDB). */
const DEFAULT_BATCH_CONCURRENCY = 8;

/**
 * The part `ConversationStore` and `TaskStore` share: the client, the table, the clock, and how
 * an item they write is stamped for the retention period. Every write into the conversations
 * table goes through {@link touchMeta}, {@link lineItem} or {@link retention}, so no item that
 * holds personal data is written without its `purgeAt` when retention is on.
 */
export abstract class ConversationTable {
  readonly tableName: string;
  protected readonly client: DynamoDBDocumentClient;
  protected readonly now: Clock;
  /** The retention period in ms, or undefined: kept forever. */
  protected readonly retentionMs: number | undefined;
  private readonly batchConcurrency: number;

  constructor(options: ConversationTableOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.now = options.now ?? systemClock;
    this.retentionMs =
      options.historyRetentionDays === undefined ? undefined : options.historyRetentionDays * DAY_MS;
    this.batchConcurrency = Math.max(1, options.batchConcurrency ?? DEFAULT_BATCH_CONCURRENCY);
  }

  /** The `purgeAt` of an item written at `writtenAtMs` (nothing when retention is off). */
  protected retention(writtenAtMs: number): { purgeAt?: number } {
    return retentionFields(writtenAtMs, this.retentionMs);
  }

  /** {@link metaTouch}, plus the retention anchor of a conversation's first write. */
  protected touchMeta(conversationId: string, atMs: number, agentId?: string, status?: string) {
    return withRetentionAnchor(metaTouch(conversationId, iso(atMs), agentId, status), atMs, this.retentionMs);
  }

  /** A history line's item, written at `writtenAtMs`. */
  protected lineItem(conversationId: string, message: MessageInput, writtenAtMs: number) {
    return { ...messageItem(conversationId, message), ...this.retention(writtenAtMs) };
  }

  /**
   * BatchWriteItem in batches of 25, retrying unprocessed requests with backoff. Once `timeIsUp`
   * says so, no further batch or retry starts: it throws {@link DeadlineExceededError} (batches
   * in flight finish; what was written stays, and keys are deterministic).
   */
  protected async batchWrite(
    requests: readonly Record<string, unknown>[],
    timeIsUp: () => boolean = () => false,
  ): Promise<void> {
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_SIZE) batches.push(requests.slice(i, i + BATCH_SIZE));
    // A 20 000-line transcript is 800 batches: written one after the other they took 10–16 s
    // against a 30 s limit, so a few run at once (keys are deterministic: order does not matter).
    let next = 0;
    const worker = async () => {
      for (let batch = batches[next++]; batch; batch = batches[next++])
        await this.writeBatch(batch, timeIsUp);
    };
    await Promise.all(Array.from({ length: Math.min(this.batchConcurrency, batches.length) }, worker));
  }

  /** Writes one batch of up to 25 requests, retrying unprocessed ones with backoff. */
  private async writeBatch(
    requests: readonly Record<string, unknown>[],
    timeIsUp: () => boolean,
  ): Promise<void> {
    let pending = requests;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (timeIsUp()) {
        throw new DeadlineExceededError("The history write ran out of time before it finished.");
      }
      if (attempt > BATCH_RETRIES) {
        throw new ServiceUnavailableError(
          "The database kept throttling the history write. Please retry shortly.",
        );
      }
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt) * Math.random());
      const output = await mapTransientErrors(() =>
        this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: [...pending] } as never }),
        ),
      );
      pending = (output.UnprocessedItems?.[this.tableName] ?? []) as typeof pending;
    }
  }
}

/** Every task item of a conversation, in start order (shared with the history read). */
export const listTaskItems = async (
  client: DynamoDBDocumentClient,
  tableName: string,
  conversationId: string,
): Promise<TaskRecord[]> => {
  const items = await queryAll(client, {
    TableName: tableName,
    KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
    ExpressionAttributeValues: { ":id": conversationId, ":prefix": TASK_PREFIX },
    ConsistentRead: true,
  });
  return items
    .map(toTask)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.taskId.localeCompare(b.taskId));
};

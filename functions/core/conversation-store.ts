import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { type Clock, systemClock } from "./clock.js";
import {
  type ConversationMeta,
  clampLimit,
  decodeCursor,
  encodeCursor,
  iso,
  type LastSession,
  LIST_PK,
  META_SK,
  type Message,
  type MessageInput,
  type MessageKind,
  MSG_PREFIX,
  messageItem,
  metaTouch,
  type TaskRecord,
  toMessage,
  toMeta,
} from "./conversation-items.js";
import {
  conditionalWrite,
  mapTransientErrors,
  queryAll,
  queryPage,
  sleep,
  type TransactItem,
} from "./dynamo.js";
import { ServiceUnavailableError } from "./errors.js";
import { assertValidId } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { type AppLogger, logger as defaultLogger } from "./powertools.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";
import { listTaskItems } from "./task-store.js";

/** One page of a conversation's history. */
export interface ConversationPage {
  readonly meta: ConversationMeta;
  readonly messages: Message[];
  readonly tasks: TaskRecord[];
  readonly nextCursor?: string;
}

/** One page of the conversation list, newest first. */
export interface ConversationListPage {
  readonly conversations: ConversationMeta[];
  readonly nextCursor?: string;
}

/** Options of {@link ConversationStore}. */
export interface ConversationStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: Clock;
  /** @default the service's Powertools Logger */
  readonly logger?: AppLogger;
}

const BATCH_SIZE = 25;
const BATCH_RETRIES = 8;
/** Batch writes in flight at once for one long transcript (each is one HTTP request to DynamoDB). */
const BATCH_CONCURRENCY = 8;

/**
 * Conversation history: the meta record and the history lines, in one table with no TTL (tasks
 * live there too, written by `TaskStore`). Nothing here depends on a session existing, and
 * nothing here is ever deleted by the service.
 */
export class ConversationStore {
  readonly tableName: string;
  private readonly client: DynamoDBDocumentClient;
  private readonly now: Clock;
  private readonly logger: AppLogger;

  constructor(options: ConversationStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.now = options.now ?? systemClock;
    this.logger = options.logger ?? defaultLogger;
  }

  /** The meta record, or null when the conversation was never seen. Consistent read. */
  async getMeta(conversationId: string): Promise<ConversationMeta | null> {
    assertValidId(conversationId);
    const output = await mapTransientErrors(() =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { conversationId, sk: META_SK },
          ConsistentRead: true,
        }),
      ),
    );
    return output.Item ? toMeta(output.Item) : null;
  }

  /**
   * Transaction items that record a session registration: the meta's `lastSession` (so expiry
   * stays knowable after DynamoDB's TTL removed the session item) and a history line.
   * Used by `SessionStore.set`, which owns the session side of the same transaction.
   */
  sessionRegistrationWrites(conversationId: string, session: LastSession): TransactItem[] {
    const at = session.createdAt;
    const touch = metaTouch(conversationId, at, session.agentId);
    return [
      {
        Update: {
          TableName: this.tableName,
          Key: touch.Key,
          UpdateExpression: `${touch.UpdateExpression}, lastSession = :lastSession ADD sessionCount :one`,
          ExpressionAttributeNames: touch.ExpressionAttributeNames,
          ExpressionAttributeValues: {
            ...touch.ExpressionAttributeValues,
            ":lastSession": withoutUndefined({ ...session }),
            ":one": 1,
          },
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: messageItem(conversationId, {
            kind: "session_registered",
            atMs: session.createdAtMs,
            id: session.sessionId,
            data: withoutUndefined({
              sessionId: session.sessionId,
              expiresAt: iso(session.expiresAtMs),
              ttlMs: session.ttlMs,
              agentId: session.agentId,
            }),
          }),
        },
      },
    ];
  }

  /** Marks the last session as ended early (deleted), unless a newer session replaced it meanwhile. */
  async markSessionEnded(conversationId: string, sessionId: string, endedAtMs: number): Promise<void> {
    await conditionalWrite(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { conversationId, sk: META_SK },
          UpdateExpression: "SET lastSession.endedAtMs = :ended, updatedAt = :at",
          ConditionExpression: "lastSession.sessionId = :sid",
          ExpressionAttributeValues: { ":ended": endedAtMs, ":at": iso(endedAtMs), ":sid": sessionId },
        }),
      ),
    );
  }

  /**
   * Appends history lines. Keys are deterministic, so a retried or repeated append (the same
   * webhook twice) stores each line once. Unprocessed items are retried with backoff.
   */
  async appendMessages(conversationId: string, messages: readonly MessageInput[]): Promise<void> {
    assertValidId(conversationId);
    if (messages.length === 0) return;
    const at = iso(this.now());
    const items = messages.map((m) => messageItem(conversationId, m));
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < items.length; i += BATCH_SIZE) batches.push(items.slice(i, i + BATCH_SIZE));
    // A 20 000-line transcript is 800 batches: written one after the other they took 10–16 s
    // against a 30 s limit, so a few run at once (keys are deterministic: order does not matter).
    let next = 0;
    const worker = async () => {
      for (let batch = batches[next++]; batch; batch = batches[next++]) await this.writeBatch(batch);
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, batches.length) }, worker));
    const touch = metaTouch(conversationId, at);
    await mapTransientErrors(() =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, ...touch })),
    );
  }

  /** Writes one batch of up to 25 items, retrying unprocessed items with backoff. */
  private async writeBatch(items: readonly Record<string, unknown>[]): Promise<void> {
    let pending = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > BATCH_RETRIES) {
        throw new ServiceUnavailableError(
          "The database kept throttling the history write. Please retry shortly.",
        );
      }
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt) * Math.random());
      const output = await mapTransientErrors(() =>
        this.client.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } })),
      );
      pending = (output.UnprocessedItems?.[this.tableName] ?? []) as typeof pending;
    }
  }

  /** Updates meta fields written after the call (analysis, final status). Creates meta if absent. */
  async updateCallFacts(
    conversationId: string,
    facts: { status?: string; call?: Record<string, unknown>; agentId?: string },
  ): Promise<void> {
    assertValidId(conversationId);
    const touch = metaTouch(conversationId, iso(this.now()), facts.agentId, facts.status);
    const call = facts.call
      ? { expression: ", #call = :call", value: { ":call": withoutUndefined(facts.call) } }
      : undefined;
    await mapTransientErrors(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: touch.Key,
          UpdateExpression: touch.UpdateExpression + (call?.expression ?? ""),
          ExpressionAttributeNames: {
            ...touch.ExpressionAttributeNames,
            ...(call ? { "#call": "call" } : {}),
          },
          ExpressionAttributeValues: { ...touch.ExpressionAttributeValues, ...call?.value },
        }),
      ),
    );
  }

  /** Every history line of one kind (at most 1 000, in history order), e.g. the session registrations. */
  async listMessagesOfKind(conversationId: string, kind: MessageKind): Promise<Message[]> {
    assertValidId(conversationId);
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
      FilterExpression: "#kind = :kind",
      ExpressionAttributeNames: { "#kind": "kind" },
      ExpressionAttributeValues: { ":id": conversationId, ":prefix": MSG_PREFIX, ":kind": kind },
      ConsistentRead: true,
    });
    return items.map(toMessage);
  }

  /**
   * A conversation's meta, one page of messages in history order and all its tasks; null when
   * it was never seen. `cursor` continues where the previous page ended.
   */
  async getConversation(
    conversationId: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<ConversationPage | null> {
    assertValidId(conversationId);
    const limit = clampLimit(options.limit);
    const startKey = options.cursor ? decodeCursor(options.cursor, conversationId) : undefined;
    const meta = await this.getMeta(conversationId);
    if (!meta) return null;
    const page = await queryPage(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":id": conversationId, ":prefix": MSG_PREFIX },
      ConsistentRead: true,
      Limit: limit,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    });
    const tasks = await listTaskItems(this.client, this.tableName, conversationId);
    return {
      meta,
      messages: page.items.map(toMessage),
      tasks,
      ...(page.lastKey ? { nextCursor: encodeCursor(page.lastKey) } : {}),
    };
  }

  /** Conversations, newest first, by creation time (stable under updates), one page at a time. */
  async listConversations(options: { limit?: number; cursor?: string } = {}): Promise<ConversationListPage> {
    const limit = clampLimit(options.limit);
    const startKey = options.cursor ? decodeCursor(options.cursor) : undefined;
    const { listIndex } = CONVERSATIONS_TABLE;
    const page = await queryPage(this.client, {
      TableName: this.tableName,
      IndexName: listIndex.name,
      KeyConditionExpression: "#pk = :pk",
      ExpressionAttributeNames: { "#pk": listIndex.partitionKey },
      ExpressionAttributeValues: { ":pk": LIST_PK },
      ScanIndexForward: false,
      Limit: limit,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    });
    return {
      conversations: page.items.map(toMeta),
      ...(page.lastKey ? { nextCursor: encodeCursor(page.lastKey) } : {}),
    };
  }
}

import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  type ConversationMeta,
  clampLimit,
  decodeCursor,
  encodeCursor,
  iso,
  type LastSession,
  listPartitionKeys,
  META_SK,
  type Message,
  type MessageInput,
  type MessageKind,
  MSG_PREFIX,
  retentionOver,
  type TaskRecord,
  toMessage,
  toMeta,
  WINDOW_PREFIX,
  windowSortKey,
} from "./conversation-items.js";
import { ConversationTable, type ConversationTableOptions, listTaskItems } from "./conversation-table.js";
import { conditionalWrite, mapTransientErrors, queryAll, queryPage, type TransactItem } from "./dynamo.js";
import { ValidationError } from "./errors.js";
import { assertValidId } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { type AppLogger, logger as defaultLogger } from "./powertools.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";
import {
  awaitTranscriptFragment,
  DEFAULT_RECONCILE_AFTER_MS,
  leaveBacklogFragment,
  type ReconcileOutcome,
} from "./transcript-backlog.js";

/** One page of a conversation's history. */
export interface ConversationPage {
  readonly meta: ConversationMeta;
  readonly messages: Message[];
  /** Every task: on the first page only (absent when `cursor` was given). */
  readonly tasks?: TaskRecord[];
  /** Every session registration, in order: on the first page only (absent when `cursor` was given). */
  readonly registrations?: Message[];
  readonly nextCursor?: string;
}

/** What a session started by a tool call adds to the registration's meta write. */
export interface FirstSessionStart {
  /** Kept in the meta as `sessionStart`: how it started and the call facts the tool call carried. */
  readonly sessionStart: Record<string, unknown>;
}

/** One page of the conversation list, newest first. */
export interface ConversationListPage {
  readonly conversations: ConversationMeta[];
  readonly nextCursor?: string;
}

/** Options of {@link ConversationStore}. */
export interface ConversationStoreOptions extends ConversationTableOptions {
  /** @default the service's Powertools Logger */
  readonly logger?: AppLogger;
  /**
   * How long after a session window ends a conversation without a stored transcript becomes due
   * for reconciliation (`RECONCILE_AFTER_MS`). @default DEFAULT_RECONCILE_AFTER_MS (45 minutes)
   */
  readonly reconcileAfterMs?: number;
}

/** Keys read per page while erasing a conversation. */
const ERASE_PAGE = 100;

/**
 * Conversation history: the meta record and the history lines, in one table (tasks live there
 * too, written by `TaskStore`). Nothing here depends on a session existing; history is deleted
 * only by an explicit erasure (`DELETE /conversations/{id}`) or, when `HISTORY_RETENTION_DAYS`
 * is set, by the retention period: reads treat a conversation past it as gone, and DynamoDB's
 * TTL on `purgeAt` deletes its items later.
 */
export class ConversationStore extends ConversationTable {
  private readonly logger: AppLogger;
  private readonly reconcileAfterMs: number;

  constructor(options: ConversationStoreOptions) {
    super(options);
    this.logger = options.logger ?? defaultLogger;
    this.reconcileAfterMs = options.reconcileAfterMs ?? DEFAULT_RECONCILE_AFTER_MS;
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
  sessionRegistrationWrites(
    conversationId: string,
    session: LastSession,
    first?: FirstSessionStart,
  ): TransactItem[] {
    const touch = this.touchMeta(conversationId, session.createdAtMs, session.agentId);
    // Reconciliation: every recorded window puts the conversation in the awaiting-transcript index.
    const awaiting = awaitTranscriptFragment(
      conversationId,
      Math.min(session.expiresAtMs, session.endedAtMs ?? Number.POSITIVE_INFINITY),
      this.reconcileAfterMs,
    );
    const line = this.lineItem(
      conversationId,
      {
        kind: "session_registered",
        atMs: session.createdAtMs,
        id: session.sessionId,
        data: withoutUndefined({
          sessionId: session.sessionId,
          expiresAt: iso(session.expiresAtMs),
          ttlMs: session.ttlMs,
          agentId: session.agentId,
        }),
      },
      session.createdAtMs,
    );
    let update = `${touch.UpdateExpression}, lastSession = :lastSession, ${awaiting.set}`;
    const values: Record<string, unknown> = {
      ...touch.ExpressionAttributeValues,
      ...awaiting.values,
      ":lastSession": withoutUndefined({ ...session }),
      ":one": 1,
    };
    if (first) {
      update += ", sessionStart = :sessionStart";
      values[":sessionStart"] = withoutUndefined({ ...first.sessionStart });
    }
    return [
      {
        Update: {
          TableName: this.tableName,
          Key: touch.Key,
          // A first start also counts its task: one transaction may write the meta only once.
          UpdateExpression: `${update} ADD sessionCount :one${first ? ", taskCount :one" : ""}`,
          ExpressionAttributeNames: { ...touch.ExpressionAttributeNames, ...awaiting.names },
          ExpressionAttributeValues: values,
          // A first start only when no window was ever recorded: an ended session is never restarted.
          ...(first ? { ConditionExpression: "attribute_not_exists(lastSession)" } : {}),
        },
      },
      { Put: { TableName: this.tableName, Item: line } },
      // The same record under its own prefix: a history page reads the windows without the lines.
      {
        Put: {
          TableName: this.tableName,
          Item: { ...line, sk: windowSortKey(session.createdAtMs, session.sessionId) },
        },
      },
    ];
  }

  /** Marks the last session as ended early (deleted), unless a newer session replaced it meanwhile. */
  async markSessionEnded(
    conversationId: string,
    sessionId: string,
    endedAtMs: number,
    reason: "deleted" | "call_ended" = "deleted",
  ): Promise<void> {
    await conditionalWrite(() =>
      this.client.send(
        new UpdateCommand(this.sessionEndUpdate(conversationId, sessionId, endedAtMs, reason)),
      ),
    );
  }

  /**
   * The meta update that records an early end of the window `sessionId` (when and why), only if
   * it is still the last window. `SessionStore.end` puts it in the transaction that removes the
   * session item, so a reader sees the session either live or ended with its reason.
   */
  sessionEndUpdate(
    conversationId: string,
    sessionId: string,
    endedAtMs: number,
    reason: "deleted" | "call_ended",
  ) {
    return {
      TableName: this.tableName,
      Key: { conversationId, sk: META_SK },
      UpdateExpression:
        "SET lastSession.endedAtMs = :ended, lastSession.endReason = :reason, updatedAt = :at",
      ConditionExpression: "lastSession.sessionId = :sid",
      ExpressionAttributeValues: {
        ":ended": endedAtMs,
        ":reason": reason,
        ":at": iso(endedAtMs),
        ":sid": sessionId,
      },
    };
  }

  /**
   * Appends history lines. Keys are deterministic, so a retried or repeated append (the same
   * webhook twice) stores each line once. Unprocessed items are retried with backoff. Once
   * `timeIsUp` says so, no batch starts (`DeadlineExceededError`; the caller parks the event).
   */
  async appendMessages(
    conversationId: string,
    messages: readonly MessageInput[],
    options: { readonly timeIsUp?: () => boolean } = {},
  ): Promise<void> {
    assertValidId(conversationId);
    if (messages.length === 0) return;
    // One clock read: the lines' purgeAt is then never before the meta's retention anchor.
    const nowMs = this.now();
    const items = messages.map((m) => this.lineItem(conversationId, m, nowMs));
    await this.batchWrite(
      items.map((Item) => ({ PutRequest: { Item } })),
      options.timeIsUp,
    );
    const touch = this.touchMeta(conversationId, nowMs);
    await mapTransientErrors(() =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, ...touch })),
    );
  }

  /**
   * Updates meta fields written after the call (analysis, final status). Creates meta if absent.
   * `leaveBacklog` takes the conversation out of the awaiting-transcript index in the same write.
   */
  async updateCallFacts(
    conversationId: string,
    facts: {
      status?: string;
      call?: Record<string, unknown>;
      agentId?: string;
      leaveBacklog?: ReconcileOutcome;
    },
  ): Promise<void> {
    assertValidId(conversationId);
    const nowMs = this.now();
    const touch = this.touchMeta(conversationId, nowMs, facts.agentId, facts.status);
    const call = facts.call
      ? { expression: ", #call = :call", value: { ":call": withoutUndefined(facts.call) } }
      : undefined;
    const leave = facts.leaveBacklog ? leaveBacklogFragment(facts.leaveBacklog, nowMs) : undefined;
    await mapTransientErrors(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: touch.Key,
          UpdateExpression:
            touch.UpdateExpression +
            (call?.expression ?? "") +
            (leave ? `, ${leave.set} REMOVE ${leave.remove}` : ""),
          ExpressionAttributeNames: {
            ...touch.ExpressionAttributeNames,
            ...(call ? { "#call": "call" } : {}),
            ...leave?.names,
          },
          ExpressionAttributeValues: { ...touch.ExpressionAttributeValues, ...call?.value, ...leave?.values },
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
   * Every session registration of a conversation, in order. Reads the `win#` items; a
   * conversation whose windows predate them (its meta counts more sessions than there are
   * `win#` items) is read from its `session_registered` lines instead, which costs a filtered
   * read of the whole history until `npm run migrate` copied them.
   */
  async listRegistrations(conversationId: string, meta: ConversationMeta): Promise<Message[]> {
    assertValidId(conversationId);
    if (meta.sessionCount === 0) return [];
    const windows = (
      await queryAll(this.client, {
        TableName: this.tableName,
        KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":id": conversationId, ":prefix": WINDOW_PREFIX },
        ConsistentRead: true,
      })
    ).map(toMessage);
    if (windows.length >= meta.sessionCount) return windows;
    return this.listMessagesOfKind(conversationId, "session_registered");
  }

  /**
   * A conversation's meta and one page of messages in history order; the first page (no
   * `cursor`) also carries every task and session registration, later pages only their lines,
   * so a page costs a page whatever the history's length. Null when it was never seen.
   */
  async getConversation(
    conversationId: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<ConversationPage | null> {
    assertValidId(conversationId);
    const limit = clampLimit(options.limit);
    const startKey = options.cursor ? decodeCursor(options.cursor, conversationId) : undefined;
    const meta = await this.getMeta(conversationId);
    // Past its retention period it is gone, whether or not DynamoDB's TTL (days late) deleted it yet.
    if (!meta || retentionOver(meta, this.now())) return null;
    const [page, firstPage] = await Promise.all([
      queryPage(this.client, {
        TableName: this.tableName,
        KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":id": conversationId, ":prefix": MSG_PREFIX },
        ConsistentRead: true,
        Limit: limit,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
      startKey
        ? undefined
        : Promise.all([
            listTaskItems(this.client, this.tableName, conversationId),
            this.listRegistrations(conversationId, meta),
          ]),
    ]);
    return {
      meta,
      messages: page.items.map(toMessage),
      ...(firstPage ? { tasks: firstPage[0], registrations: firstPage[1] } : {}),
      ...(page.lastKey ? { nextCursor: encodeCursor(page.lastKey) } : {}),
    };
  }

  /**
   * Conversations, newest first, by creation time (stable under updates), one page at a time.
   * The listing index is spread over several partition keys (see `listPartitionKey`): each is
   * queried for one page after the cursor and the results are merged. The cursor is the last
   * returned `listSk` (`<createdAt>#<conversationId>`, a total order), so pages never skip or repeat.
   */
  async listConversations(options: { limit?: number; cursor?: string } = {}): Promise<ConversationListPage> {
    const limit = clampLimit(options.limit);
    const { listIndex } = CONVERSATIONS_TABLE;
    const after = options.cursor ? listCursorPosition(decodeCursor(options.cursor)) : undefined;
    const pages = await Promise.all(
      listPartitionKeys().map((pk) =>
        queryPage(this.client, {
          TableName: this.tableName,
          IndexName: listIndex.name,
          KeyConditionExpression: after ? "#pk = :pk AND #sk < :after" : "#pk = :pk",
          ExpressionAttributeNames: {
            "#pk": listIndex.partitionKey,
            ...(after ? { "#sk": listIndex.sortKey } : {}),
          },
          ExpressionAttributeValues: { ":pk": pk, ...(after ? { ":after": after } : {}) },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
    );
    const sortKeyOf = (item: Record<string, unknown>) => String(item[listIndex.sortKey]);
    const merged = pages
      .flatMap((page) => page.items)
      .sort((a, b) => (sortKeyOf(a) < sortKeyOf(b) ? 1 : sortKeyOf(a) > sortKeyOf(b) ? -1 : 0));
    const items = merged.slice(0, limit);
    const more = merged.length > limit || pages.some((page) => page.lastKey !== undefined);
    // The cursor is the last item read, shown or not: conversations past their retention period
    // are left out (a page may then hold fewer than `limit`), and the next page goes on after them.
    const last = items.at(-1);
    const nowMs = this.now();
    return {
      conversations: items.map(toMeta).filter((meta) => !retentionOver(meta, nowMs)),
      ...(more && last ? { nextCursor: encodeCursor({ [listIndex.sortKey]: sortKeyOf(last) }) } : {}),
    };
  }

  /**
   * Erases a conversation: every item of its partition (history lines, tasks), then its meta
   * last, so an erasure cut short still lists the conversation and a retry finishes it. Reads
   * keys only, a page of at most {@link ERASE_PAGE} at a time, and deletes them in batches of 25:
   * bounded work per request however long the history. Idempotent: an erased or unknown
   * conversation deletes nothing. Answers how many items were deleted.
   */
  async eraseConversation(conversationId: string): Promise<number> {
    assertValidId(conversationId);
    let deleted = 0;
    let hadMeta = false;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage(this.client, {
        TableName: this.tableName,
        KeyConditionExpression: "conversationId = :id",
        ExpressionAttributeValues: { ":id": conversationId },
        ProjectionExpression: "conversationId, sk",
        ConsistentRead: true,
        Limit: ERASE_PAGE,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      const keys = page.items.filter((item) => item.sk !== META_SK);
      hadMeta ||= keys.length < page.items.length;
      await this.batchWrite(
        keys.map((item) => ({ DeleteRequest: { Key: { conversationId, sk: item.sk } } })),
      );
      deleted += keys.length;
      startKey = page.lastKey;
    } while (startKey);
    if (hadMeta) {
      await this.batchWrite([{ DeleteRequest: { Key: { conversationId, sk: META_SK } } }]);
      deleted += 1;
    }
    return deleted;
  }
}

/** Where a listing cursor points: its `listSk` (cursors of the unsharded index carried it too). */
const listCursorPosition = (key: Record<string, unknown>): string => {
  const position = key[CONVERSATIONS_TABLE.listIndex.sortKey];
  if (typeof position !== "string" || position.length === 0) {
    throw new ValidationError("cursor is not a cursor this API returned.", ["cursor"], "invalid_cursor");
  }
  return position;
};

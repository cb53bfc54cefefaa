import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { type Clock, systemClock } from "./clock.js";
import { guard, sleep, type TransactItem, transactWrite } from "./dynamo.js";
import { ServiceUnavailableError, ValidationError } from "./errors.js";
import { assertValidId } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { type AppLogger, logger as defaultLogger } from "./powertools.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";

/** The last session window of a conversation, kept in its meta record (which has no TTL). */
export interface LastSession {
  readonly sessionId: string;
  readonly createdAt: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly ttlMs: number;
  readonly agentId?: string;
  readonly notifyUrl?: string;
  /** Set when the session was deleted before its window closed. */
  readonly endedAtMs?: number;
}

/** The conversation's `meta` record. */
export interface ConversationMeta {
  readonly conversationId: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly status: string;
  readonly agentId?: string;
  readonly lastSession?: LastSession;
  readonly sessionCount: number;
  readonly taskCount: number;
  /** Post-call analysis and other call facts, written by the post-call webhook. */
  readonly call?: Record<string, unknown>;
}

/** Kinds of history lines. */
export type MessageKind =
  | "transcript"
  | "session_registered"
  | "task_started"
  | "task_result"
  | "call_analysis"
  | "call_initiation_failure";

/** A line of history to append. Its key is deterministic, so appending it twice stores it once. */
export interface MessageInput {
  readonly kind: MessageKind;
  /** When it happened (epoch ms): the sort order of the history. */
  readonly atMs: number;
  /** Tie-breaker for lines at the same millisecond (e.g. the transcript index). */
  readonly seq?: number;
  /** Stable id of the line (transcript: `<eventKey>-<index>`; task result: the task id). */
  readonly id: string;
  readonly role?: string;
  readonly text?: string;
  readonly data?: Record<string, unknown>;
}

/** A stored history line. */
export interface Message extends MessageInput {
  readonly at: string;
}

/** Outcome of a task result, decided once and stored with the task. */
export type TaskOutcome = "delivered" | "delivery_failed" | "session_expired";

/** A tool task recorded in the conversation. */
export interface TaskRecord {
  readonly taskId: string;
  readonly toolName: string;
  readonly params: Record<string, unknown>;
  readonly status: "pending" | "completed";
  readonly createdAt: string;
  readonly sessionId?: string;
  /** Where the session wanted live results pushed when the task started. */
  readonly notifyUrl?: string;
  /** SHA-256 hex of the per-task bearer token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly result?: unknown;
  readonly outcome?: TaskOutcome;
  /**
   * The live push of a delivered result: `pending` (stored, not yet pushed), `claimed` (one request
   * is pushing it; never pushed twice), `done` or `failed`. Absent when there is nothing to push.
   */
  readonly push?: "pending" | "claimed" | "done" | "failed";
  readonly resultAt?: string;
  readonly expiredAt?: string;
  readonly expiredForMs?: number;
}

/** A task to record. */
export interface TaskInput {
  readonly taskId: string;
  readonly toolName: string;
  readonly params: Record<string, unknown>;
  readonly tokenHash: string;
  readonly sessionId?: string;
  readonly notifyUrl?: string;
}

/** A task result to record. */
export interface TaskResultInput {
  readonly result: unknown;
  readonly outcome: TaskOutcome;
  readonly receivedAtMs: number;
  readonly expiredAt?: string;
  readonly expiredForMs?: number;
  /** Mark the live push as pending in the same write, so a retry can finish it. */
  readonly pushPending?: boolean;
}

/** What recording a task result did. */
export type RecordResult =
  | { readonly kind: "stored"; readonly task: TaskRecord }
  | { readonly kind: "duplicate"; readonly task: TaskRecord }
  | { readonly kind: "task_not_found" }
  | { readonly kind: "guard_failed"; readonly item?: Record<string, unknown> };

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

export const META_SK = "meta";
const MSG_PREFIX = "msg#";
const TASK_PREFIX = "task#";
const LIST_PK = "conversation";
const MAX_PAGE = 100;
const BATCH_SIZE = 25;
const BATCH_RETRIES = 8;

const pad = (value: number, width: number) => String(Math.max(0, Math.trunc(value))).padStart(width, "0");
const iso = (ms: number) => new Date(ms).toISOString();

/** `msg#<15-digit epoch ms>#<6-digit seq>#<kind>#<id>`: sorts by time, then sequence, and is deterministic. */
export const messageSortKey = (m: Pick<MessageInput, "atMs" | "seq" | "kind" | "id">): string =>
  `${MSG_PREFIX}${pad(m.atMs, 15)}#${pad(m.seq ?? 0, 6)}#${m.kind}#${m.id}`;

export const taskSortKey = (taskId: string): string => `${TASK_PREFIX}${taskId}`;

/**
 * Conversation history: meta, tasks and messages in one table with no TTL. Nothing here depends
 * on a session existing, and nothing here is ever deleted by the service.
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

  /** Creates the meta record if absent (never overwrites it) and returns it. */
  async ensureMeta(conversationId: string, options: { agentId?: string } = {}): Promise<ConversationMeta> {
    assertValidId(conversationId);
    if (options.agentId !== undefined) assertValidId(options.agentId, "agentId");
    const at = iso(this.now());
    const update = this.metaTouch(conversationId, at, options.agentId);
    const output = await guard(() =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, ...update, ReturnValues: "ALL_NEW" })),
    );
    return toMeta(output.Attributes ?? {});
  }

  /** The meta record, or null when the conversation was never seen. Consistent read. */
  async getMeta(conversationId: string): Promise<ConversationMeta | null> {
    assertValidId(conversationId);
    const output = await guard(() =>
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
    const touch = this.metaTouch(conversationId, at, session.agentId);
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
          Item: this.messageItem(conversationId, {
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
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { conversationId, sk: META_SK },
          UpdateExpression: "SET lastSession.endedAtMs = :ended, updatedAt = :at",
          ConditionExpression: "lastSession.sessionId = :sid",
          ExpressionAttributeValues: { ":ended": endedAtMs, ":at": iso(endedAtMs), ":sid": sessionId },
        }),
      );
    } catch (error) {
      if (error instanceof Error && error.name === "ConditionalCheckFailedException") return;
      throw error;
    }
  }

  /**
   * Appends history lines. Keys are deterministic, so a retried or repeated append (the same
   * webhook twice) stores each line once. Unprocessed items are retried with backoff.
   */
  async appendMessages(conversationId: string, messages: readonly MessageInput[]): Promise<void> {
    assertValidId(conversationId);
    if (messages.length === 0) return;
    const at = iso(this.now());
    const items = messages.map((m) => this.messageItem(conversationId, m));
    for (let i = 0; i < items.length; i += BATCH_SIZE) {
      let pending = items.slice(i, i + BATCH_SIZE).map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > BATCH_RETRIES) {
          throw new ServiceUnavailableError(
            "The database kept throttling the history write. Please retry shortly.",
          );
        }
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt) * Math.random());
        const output = await guard(() =>
          this.client.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } })),
        );
        pending = (output.UnprocessedItems?.[this.tableName] ?? []) as typeof pending;
      }
    }
    const touch = this.metaTouch(conversationId, at);
    await guard(() => this.client.send(new UpdateCommand({ TableName: this.tableName, ...touch })));
  }

  /** Updates meta fields written after the call (analysis, final status). Creates meta if absent. */
  async updateCallFacts(
    conversationId: string,
    facts: { status?: string; call?: Record<string, unknown>; agentId?: string },
  ): Promise<void> {
    assertValidId(conversationId);
    const touch = this.metaTouch(conversationId, iso(this.now()), facts.agentId, facts.status);
    const call = facts.call
      ? { expression: ", #call = :call", value: { ":call": withoutUndefined(facts.call) } }
      : undefined;
    await guard(() =>
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

  /**
   * Records a new pending task (and its `task_started` history line) atomically with any
   * `guard` items, typically `SessionStore.activeCondition` so a task is only created while
   * the session is live. Returns false when a guard's condition failed (nothing written).
   */
  async createTask(
    conversationId: string,
    task: TaskInput,
    guards: TransactItem[] = [],
  ): Promise<{ created: true; task: TaskRecord } | { created: false; item?: Record<string, unknown> }> {
    assertValidId(conversationId);
    assertValidId(task.taskId, "taskId");
    const nowMs = this.now();
    const record: TaskRecord = {
      taskId: task.taskId,
      toolName: task.toolName,
      params: task.params,
      status: "pending",
      createdAt: iso(nowMs),
      tokenHash: task.tokenHash,
      ...(task.sessionId ? { sessionId: task.sessionId } : {}),
      ...(task.notifyUrl ? { notifyUrl: task.notifyUrl } : {}),
    };
    const touch = this.metaTouch(conversationId, record.createdAt);
    const result = await transactWrite(this.client, [
      ...guards,
      {
        Put: {
          TableName: this.tableName,
          Item: { conversationId, sk: taskSortKey(task.taskId), ...record },
          ConditionExpression: "attribute_not_exists(sk)",
        },
      },
      {
        Update: {
          ...touch,
          TableName: this.tableName,
          UpdateExpression: `${touch.UpdateExpression} ADD taskCount :one`,
          ExpressionAttributeValues: { ...touch.ExpressionAttributeValues, ":one": 1 },
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: this.messageItem(conversationId, {
            kind: "task_started",
            atMs: nowMs,
            id: task.taskId,
            data: { taskId: task.taskId, toolName: task.toolName, params: task.params },
          }),
        },
      },
    ]);
    if (result.committed) return { created: true, task: record };
    const failed = result.reasons.slice(0, guards.length).find((r) => r.code === "ConditionalCheckFailed");
    if (failed) return { created: false, ...(failed.item ? { item: failed.item } : {}) };
    // A task id collision: ids are random UUIDs, so this means a caller reused one on purpose.
    throw new ValidationError(`Task ${task.taskId} already exists in this conversation.`, [], "task_exists");
  }

  /** One task, or null. Consistent read. */
  async getTask(conversationId: string, taskId: string): Promise<TaskRecord | null> {
    assertValidId(conversationId);
    assertValidId(taskId, "taskId");
    const output = await guard(() =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { conversationId, sk: taskSortKey(taskId) },
          ConsistentRead: true,
        }),
      ),
    );
    return output.Item ? toTask(output.Item) : null;
  }

  /**
   * Records a task's result exactly once: the task update (only if it exists and has no
   * outcome yet), its history line and the meta touch commit together, optionally with a
   * `guard` condition (the session being live). Concurrent duplicates: one wins, the others
   * get `duplicate` with the winner's stored outcome.
   */
  async recordTaskResult(
    conversationId: string,
    taskId: string,
    input: TaskResultInput,
    guardItem?: TransactItem,
    known?: TaskRecord,
  ): Promise<RecordResult> {
    assertValidId(conversationId);
    assertValidId(taskId, "taskId");
    const resultAt = iso(input.receivedAtMs);
    const touch = this.metaTouch(conversationId, resultAt);
    const values: Record<string, unknown> = {
      ":completed": "completed",
      ":result": input.result ?? null,
      ":outcome": input.outcome,
      ":resultAt": resultAt,
    };
    let update = "SET #status = :completed, #result = :result, outcome = :outcome, resultAt = :resultAt";
    if (input.pushPending) {
      update += ", push = :pending";
      values[":pending"] = "pending";
    }
    if (input.expiredAt !== undefined) {
      update += ", expiredAt = :expiredAt, expiredForMs = :expiredForMs";
      values[":expiredAt"] = input.expiredAt;
      values[":expiredForMs"] = input.expiredForMs ?? 0;
    }
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.tableName,
          Key: { conversationId, sk: taskSortKey(taskId) },
          UpdateExpression: update,
          ConditionExpression: "attribute_exists(sk) AND attribute_not_exists(outcome)",
          ExpressionAttributeNames: { "#status": "status", "#result": "result" },
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: this.messageItem(conversationId, {
            kind: "task_result",
            atMs: input.receivedAtMs,
            id: taskId,
            data: withoutUndefined({
              taskId,
              outcome: input.outcome,
              result: input.result ?? null,
              expiredAt: input.expiredAt,
              expiredForMs: input.expiredForMs,
            }),
          }),
        },
      },
      { Update: { ...touch, TableName: this.tableName } },
    ];
    if (guardItem) items.push(guardItem);
    const result = await transactWrite(this.client, items);
    if (result.committed) {
      // Known task (read before the write): what was stored is known, so no read after the commit,
      // whose failure would turn a stored result into a 503 that the retry answers as a duplicate.
      if (known) {
        const stored: TaskRecord = {
          ...known,
          status: "completed",
          result: input.result ?? null,
          outcome: input.outcome,
          resultAt,
          ...(input.pushPending ? { push: "pending" as const } : {}),
          ...(input.expiredAt !== undefined
            ? { expiredAt: input.expiredAt, expiredForMs: input.expiredForMs ?? 0 }
            : {}),
        };
        return { kind: "stored", task: stored };
      }
      const task = await this.getTask(conversationId, taskId);
      if (!task) throw new Error(`Task ${taskId} vanished right after its result was stored`);
      return { kind: "stored", task };
    }
    const [taskReason, , , guardReason] = result.reasons;
    if (taskReason?.code === "ConditionalCheckFailed") {
      if (!taskReason.item) return { kind: "task_not_found" };
      return { kind: "duplicate", task: toTask(taskReason.item) };
    }
    if (guardReason?.code === "ConditionalCheckFailed") {
      return { kind: "guard_failed", ...(guardReason.item ? { item: guardReason.item } : {}) };
    }
    throw new Error(
      `Task result transaction cancelled for an unexpected reason: ${result.reasons.map((r) => r.code).join(",")}`,
    );
  }

  /**
   * Claims the pending live push of a task (`pending` → `claimed`, conditional). Exactly one
   * request wins, so a result is pushed at most once even when retries and duplicates race.
   */
  async claimPush(conversationId: string, taskId: string, atMs: number): Promise<boolean> {
    try {
      await guard(() =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId, sk: taskSortKey(taskId) },
            UpdateExpression: "SET push = :claimed, pushClaimedAt = :at",
            ConditionExpression: "push = :pending",
            ExpressionAttributeValues: { ":claimed": "claimed", ":pending": "pending", ":at": iso(atMs) },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof Error && error.name === "ConditionalCheckFailedException") return false;
      throw error;
    }
  }

  /**
   * Records how the claimed push went. A failed push turns the outcome into `delivery_failed` on
   * the task and on its `task_result` history line in one transaction, so the history never says
   * "delivered" for a result the app never got.
   */
  async finishPush(
    conversationId: string,
    task: Pick<TaskRecord, "taskId" | "resultAt">,
    ok: boolean,
  ): Promise<void> {
    const taskUpdate = {
      TableName: this.tableName,
      Key: { conversationId, sk: taskSortKey(task.taskId) },
      UpdateExpression: "SET push = :state, outcome = :outcome",
      ConditionExpression: "push = :claimed",
      ExpressionAttributeValues: {
        ":state": ok ? "done" : "failed",
        ":outcome": ok ? "delivered" : "delivery_failed",
        ":claimed": "claimed",
      },
    };
    if (ok || !task.resultAt) {
      await guard(() => this.client.send(new UpdateCommand(taskUpdate)));
      return;
    }
    // The history line's key is derived from when the result arrived (seq 0), as recordTaskResult wrote it.
    const lineKey = messageSortKey({ atMs: Date.parse(task.resultAt), kind: "task_result", id: task.taskId });
    const result = await transactWrite(this.client, [
      { Update: taskUpdate },
      {
        Update: {
          TableName: this.tableName,
          Key: { conversationId, sk: lineKey },
          UpdateExpression: "SET #data.outcome = :failed",
          ConditionExpression: "attribute_exists(sk)",
          ExpressionAttributeNames: { "#data": "data" },
          ExpressionAttributeValues: { ":failed": "delivery_failed" },
        },
      },
    ]);
    if (!result.committed) {
      throw new Error(
        `Recording the failed push of task ${task.taskId} was cancelled: ${result.reasons.map((r) => r.code).join(",")}`,
      );
    }
  }

  /**
   * All tasks of a conversation (at most 1 000), in the order they were started (task ids are
   * random, so key order means nothing to the agent or a reader), for polling and history.
   */
  async listTasks(conversationId: string): Promise<TaskRecord[]> {
    assertValidId(conversationId);
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":id": conversationId, ":prefix": TASK_PREFIX },
      ConsistentRead: true,
    });
    return items
      .map(toTask)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.taskId.localeCompare(b.taskId));
  }

  /** Every history line of one kind (at most 1 000, in history order), e.g. the session registrations. */
  async listMessagesOfKind(conversationId: string, kind: MessageKind): Promise<Message[]> {
    assertValidId(conversationId);
    const items = await this.queryAll({
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
    const page = await this.query({
      TableName: this.tableName,
      KeyConditionExpression: "conversationId = :id AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":id": conversationId, ":prefix": MSG_PREFIX },
      ConsistentRead: true,
      Limit: limit,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    });
    const tasks = await this.listTasks(conversationId);
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
    const page = await this.query({
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

  private async query(input: QueryCommandInput) {
    const output = await guard(() => this.client.send(new QueryCommand(input)));
    return { items: output.Items ?? [], lastKey: output.LastEvaluatedKey };
  }

  /** Follows a query's pages until it is exhausted or `max` items were read. */
  private async queryAll(input: QueryCommandInput, max = 1000): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query({ ...input, ...(startKey ? { ExclusiveStartKey: startKey } : {}) });
      items.push(...page.items);
      startKey = page.lastKey;
    } while (startKey && items.length < max);
    return items;
  }

  private messageItem(conversationId: string, m: MessageInput): Record<string, unknown> {
    assertValidId(m.id, "messageId");
    return withoutUndefined({
      conversationId,
      sk: messageSortKey(m),
      kind: m.kind,
      at: iso(m.atMs),
      atMs: m.atMs,
      seq: m.seq ?? 0,
      id: m.id,
      role: m.role,
      text: m.text,
      data: m.data,
    });
  }

  /** Create-if-absent meta fields plus `updatedAt`, as one update expression. */
  private metaTouch(conversationId: string, at: string, agentId?: string, status?: string) {
    const { listIndex } = CONVERSATIONS_TABLE;
    const values: Record<string, unknown> = {
      ":at": at,
      ":listPk": LIST_PK,
      ":listSk": `${at}#${conversationId}`,
      ":status": status ?? "active",
    };
    let expression =
      "SET createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #listPk = :listPk, " +
      "#listSk = if_not_exists(#listSk, :listSk), " +
      (status ? "#status = :status" : "#status = if_not_exists(#status, :status)");
    if (agentId) {
      expression += ", agentId = if_not_exists(agentId, :agentId)";
      values[":agentId"] = agentId;
    }
    return {
      Key: { conversationId, sk: META_SK },
      UpdateExpression: expression,
      ExpressionAttributeNames: {
        "#listPk": listIndex.partitionKey,
        "#listSk": listIndex.sortKey,
        "#status": "status",
      },
      ExpressionAttributeValues: values,
    };
  }
}

const clampLimit = (limit: number | undefined) => {
  if (limit === undefined) return 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE}.`,
      ["limit"],
      "invalid_limit",
    );
  }
  return limit;
};

/** Cursors are opaque to callers: base64url of the last evaluated key. */
export const encodeCursor = (key: Record<string, unknown>): string =>
  Buffer.from(JSON.stringify(key), "utf8").toString("base64url");

const decodeCursor = (cursor: string, conversationId?: string): Record<string, unknown> => {
  const invalid = () =>
    new ValidationError("cursor is not a cursor this API returned.", ["cursor"], "invalid_cursor");
  if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (!key || typeof key !== "object" || Array.isArray(key)) throw invalid();
  const entries = Object.entries(key);
  if (entries.length > 4 || entries.some(([, v]) => typeof v !== "string")) throw invalid();
  const record = key as Record<string, string>;
  if (
    conversationId !== undefined &&
    (record.conversationId !== conversationId || !record.sk?.startsWith(MSG_PREFIX))
  ) {
    throw invalid();
  }
  return record;
};

const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" ? v : undefined);

const toMeta = (item: Record<string, unknown>): ConversationMeta =>
  withoutUndefined({
    conversationId: String(item.conversationId),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    status: str(item.status) ?? "active",
    agentId: str(item.agentId),
    lastSession: item.lastSession as LastSession | undefined,
    sessionCount: num(item.sessionCount) ?? 0,
    taskCount: num(item.taskCount) ?? 0,
    call: item.call as Record<string, unknown> | undefined,
  }) as ConversationMeta;

const toTask = (item: Record<string, unknown>): TaskRecord =>
  withoutUndefined({
    taskId: String(item.taskId),
    toolName: String(item.toolName),
    params: (item.params as Record<string, unknown>) ?? {},
    status: item.status === "completed" ? "completed" : "pending",
    createdAt: String(item.createdAt),
    sessionId: str(item.sessionId),
    notifyUrl: str(item.notifyUrl),
    tokenHash: String(item.tokenHash),
    result: item.result,
    outcome: str(item.outcome) as TaskOutcome | undefined,
    push: str(item.push) as TaskRecord["push"],
    resultAt: str(item.resultAt),
    expiredAt: str(item.expiredAt),
    expiredForMs: num(item.expiredForMs),
  }) as TaskRecord;

const toMessage = (item: Record<string, unknown>): Message =>
  withoutUndefined({
    kind: item.kind as MessageKind,
    at: String(item.at),
    atMs: Number(item.atMs),
    seq: num(item.seq) ?? 0,
    id: String(item.id),
    role: str(item.role),
    text: str(item.text),
    data: item.data as Record<string, unknown> | undefined,
  }) as Message;

import { GetCommand, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import {
  iso,
  messageSortKey,
  type TaskOutcome,
  type TaskRecord,
  taskSortKey,
  toTask,
} from "./conversation-items.js";
import { ConversationTable, type ConversationTableOptions, listTaskItems } from "./conversation-table.js";
import {
  conditionalWrite,
  conditionFailed,
  type FailedCheck,
  failedCheckOf,
  mapTransientErrors,
  type TransactItem,
  transactWrite,
} from "./dynamo.js";
import { ValidationError } from "./errors.js";
import { assertValidId } from "./ids.js";
import { withoutUndefined } from "./objects.js";

/** A task to record. */
export interface TaskInput {
  readonly taskId: string;
  readonly toolName: string;
  readonly params: Record<string, unknown>;
  readonly tokenHash: string;
  readonly sessionId?: string;
  readonly notifyUrl?: string;
  /**
   * The instant the caller's guards were evaluated at (`createdAt`). Pass the same clock read as
   * the guard's `:now`, so a task accepted in the session's last millisecond still records
   * `createdAt < expiresAt`. @default now
   */
  readonly atMs?: number;
}

/** A task result to record. */
export interface TaskResultInput {
  readonly result: unknown;
  readonly outcome: TaskOutcome;
  readonly receivedAtMs: number;
  readonly expiredAt?: string;
  readonly expiredForMs?: number;
  /** Why the session was over (`session_expired` outcomes): timed out, call ended... */
  readonly endReason?: string;
  /** Mark the live push as pending in the same write, so a retry can finish it. */
  readonly pushPending?: boolean;
}

/** How {@link TaskStore.storeTaskResult} writes. */
export interface StoreTaskResultOptions {
  /** A condition that must hold in the same transaction (typically `SessionStore.activeCondition`). */
  readonly guard?: TransactItem;
  /** The task as read just before: what was stored is then known without a read after the commit. */
  readonly known?: TaskRecord;
}

/** What recording a task result did. */
export type RecordResult =
  | { readonly kind: "stored"; readonly task: TaskRecord }
  | { readonly kind: "duplicate"; readonly task: TaskRecord }
  | { readonly kind: "task_not_found" }
  | { readonly kind: "guard_failed"; readonly failedCheck?: FailedCheck };

/** What creating a task did: created, or a guard failed (nothing written). */
export type CreateTaskResult =
  | { readonly created: true; readonly task: TaskRecord }
  | { readonly created: false; readonly failedCheck?: FailedCheck };

/** How {@link TaskStore.createTask} writes, when it also starts the session (first tool call). */
export interface CreateTaskOptions {
  /**
   * The transaction's one write of the meta item, replacing the default touch: it must count the
   * task (`ADD taskCount :one`). DynamoDB allows one operation per item in a transaction.
   */
  readonly metaWrite?: TransactItem;
  /** More items of the same transaction (the session's history line). */
  readonly extra?: readonly TransactItem[];
}

/** Options of {@link TaskStore}: tasks are items of their conversation, in the conversations table. */
export type TaskStoreOptions = ConversationTableOptions;

/** Positions of the items in the task-result transaction, so cancellation reasons are read by name. */
const RESULT_TX = { task: 0, historyLine: 1, metaTouch: 2, guard: 3 } as const;

/**
 * Tool tasks of a conversation and the state machine of their result: `pending` → `completed`
 * with an outcome, stored exactly once; the live push `pending` → `claimed` → `done` | `failed`.
 * Tasks live in the conversations table (no TTL) next to their history lines.
 */
export class TaskStore extends ConversationTable {
  /**
   * Records a new pending task (and its `task_started` history line) atomically with any
   * `guard` items, typically `SessionStore.activeCondition` so a task is only created while
   * the session is live. Answers `created: false` when a guard's condition failed (nothing written).
   */
  async createTask(
    conversationId: string,
    task: TaskInput,
    guards: TransactItem[] = [],
    options: CreateTaskOptions = {},
  ): Promise<CreateTaskResult> {
    assertValidId(conversationId);
    assertValidId(task.taskId, "taskId");
    const nowMs = task.atMs ?? this.now();
    const record: TaskRecord = {
      taskId: task.taskId,
      toolName: task.toolName,
      params: task.params,
      status: "pending",
      createdAt: iso(nowMs),
      dispatch: "pending",
      tokenHash: task.tokenHash,
      ...(task.sessionId ? { sessionId: task.sessionId } : {}),
      ...(task.notifyUrl ? { notifyUrl: task.notifyUrl } : {}),
    };
    const touch = this.touchMeta(conversationId, nowMs);
    const metaWrite: TransactItem = options.metaWrite ?? {
      Update: {
        ...touch,
        TableName: this.tableName,
        UpdateExpression: `${touch.UpdateExpression} ADD taskCount :one`,
        ExpressionAttributeValues: { ...touch.ExpressionAttributeValues, ":one": 1 },
      },
    };
    const taskIndex = guards.length;
    const result = await transactWrite(this.client, [
      ...guards,
      {
        Put: {
          TableName: this.tableName,
          Item: { conversationId, sk: taskSortKey(task.taskId), ...record, ...this.retention(nowMs) },
          ConditionExpression: "attribute_not_exists(sk)",
        },
      },
      metaWrite,
      ...(options.extra ?? []),
      {
        Put: {
          TableName: this.tableName,
          Item: this.lineItem(
            conversationId,
            {
              kind: "task_started",
              atMs: nowMs,
              id: task.taskId,
              data: { taskId: task.taskId, toolName: task.toolName, params: task.params },
            },
            nowMs,
          ),
        },
      },
    ]);
    if (result.committed) return { created: true, task: record };
    if (conditionFailed(result.reasons[taskIndex])) {
      // A task id collision: ids are random UUIDs, so this means a caller reused one on purpose.
      throw new ValidationError(
        `Task ${task.taskId} already exists in this conversation.`,
        [],
        "task_exists",
      );
    }
    // The guards come first in the transaction, so their reasons are its first ones; a failed
    // condition of the caller's own meta write (a session start) has no old item to report.
    const failed = result.reasons.slice(0, guards.length).find(conditionFailed);
    return withoutUndefined({
      created: false as const,
      failedCheck: failed ? failedCheckOf(failed) : undefined,
    });
  }

  /**
   * Marks a task as handed to the runners (`dispatch: sent`), after the dispatch succeeded. Until
   * then the task is undispatched, and reads as `abandoned` after DISPATCH_DEADLINE_MS.
   */
  async markDispatched(conversationId: string, taskId: string, atMs: number): Promise<void> {
    await mapTransientErrors(() =>
      this.client.send(
        new UpdateCommand(
          this.taskUpdate(conversationId, taskId, {
            UpdateExpression: "SET dispatch = :sent, dispatchedAt = :at",
            ConditionExpression: "attribute_exists(sk)",
            ExpressionAttributeValues: { ":sent": "sent", ":at": iso(atMs) },
          }),
        ),
      ),
    );
  }

  /** One task, or null. Consistent read. */
  async getTask(conversationId: string, taskId: string): Promise<TaskRecord | null> {
    assertValidId(conversationId);
    assertValidId(taskId, "taskId");
    const output = await mapTransientErrors(() =>
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
   * Stores a task's result exactly once: the task update (only if it exists and has no
   * outcome yet), its history line and the meta touch commit together, optionally with a
   * `guard` condition (the session being live). Concurrent duplicates: one wins, the others
   * get `duplicate` with the winner's stored outcome.
   */
  async storeTaskResult(
    conversationId: string,
    taskId: string,
    input: TaskResultInput,
    options: StoreTaskResultOptions = {},
  ): Promise<RecordResult> {
    assertValidId(conversationId);
    assertValidId(taskId, "taskId");
    const resultAt = iso(input.receivedAtMs);
    const items: TransactItem[] = [];
    items[RESULT_TX.task] = { Update: this.resultUpdate(conversationId, taskId, input, resultAt) };
    items[RESULT_TX.historyLine] = {
      Put: {
        TableName: this.tableName,
        Item: this.lineItem(
          conversationId,
          {
            kind: "task_result",
            atMs: input.receivedAtMs,
            id: taskId,
            data: withoutUndefined({
              taskId,
              outcome: input.outcome,
              result: input.result ?? null,
              expiredAt: input.expiredAt,
              expiredForMs: input.expiredForMs,
              reason: input.endReason,
            }),
          },
          input.receivedAtMs,
        ),
      },
    };
    items[RESULT_TX.metaTouch] = {
      Update: { ...this.touchMeta(conversationId, input.receivedAtMs), TableName: this.tableName },
    };
    if (options.guard) items[RESULT_TX.guard] = options.guard;
    const result = await transactWrite(this.client, items);
    if (result.committed) {
      // Known task (read before the write): what was stored is known, so no read after the commit,
      // whose failure would turn a stored result into a 503 that the retry answers as a duplicate.
      if (options.known) return { kind: "stored", task: storedTask(options.known, input, resultAt) };
      const task = await this.getTask(conversationId, taskId);
      if (!task) throw new Error(`Task ${taskId} vanished right after its result was stored`);
      return { kind: "stored", task };
    }
    const taskReason = result.reasons[RESULT_TX.task];
    if (conditionFailed(taskReason)) {
      if (!taskReason.item) return { kind: "task_not_found" };
      return { kind: "duplicate", task: toTask(taskReason.item) };
    }
    const guardReason = result.reasons[RESULT_TX.guard];
    if (conditionFailed(guardReason)) {
      return withoutUndefined({ kind: "guard_failed" as const, failedCheck: failedCheckOf(guardReason) });
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
    return conditionalWrite(() =>
      this.client.send(
        new UpdateCommand(
          this.taskUpdate(conversationId, taskId, {
            UpdateExpression: "SET push = :claimed, pushClaimedAt = :at",
            ConditionExpression: "push = :pending",
            ExpressionAttributeValues: { ":claimed": "claimed", ":pending": "pending", ":at": iso(atMs) },
          }),
        ),
      ),
    );
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
    const taskUpdate = this.taskUpdate(conversationId, task.taskId, {
      UpdateExpression: "SET push = :state, outcome = :outcome",
      ConditionExpression: "push = :claimed",
      ExpressionAttributeValues: {
        ":state": ok ? "done" : "failed",
        ":outcome": ok ? "delivered" : "delivery_failed",
        ":claimed": "claimed",
      },
    });
    if (ok || !task.resultAt) {
      await mapTransientErrors(() => this.client.send(new UpdateCommand(taskUpdate)));
      return;
    }
    // The history line's key is derived from when the result arrived (seq 0), as storeTaskResult wrote it.
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
    return listTaskItems(this.client, this.tableName, conversationId);
  }

  /** The conditional update that completes a task with its result. */
  private resultUpdate(conversationId: string, taskId: string, input: TaskResultInput, resultAt: string) {
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
    if (input.endReason !== undefined) {
      update += ", endReason = :endReason";
      values[":endReason"] = input.endReason;
    }
    return {
      ...this.taskUpdate(conversationId, taskId, {
        UpdateExpression: update,
        ConditionExpression: "attribute_exists(sk) AND attribute_not_exists(outcome)",
        ExpressionAttributeNames: { "#status": "status", "#result": "result" },
        ExpressionAttributeValues: values,
      }),
      ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
    };
  }

  /** A conditional update of one task item: the table and the task's key, around `update`. */
  private taskUpdate<U extends Omit<UpdateCommandInput, "TableName" | "Key">>(
    conversationId: string,
    taskId: string,
    update: U,
  ) {
    return { TableName: this.tableName, Key: { conversationId, sk: taskSortKey(taskId) }, ...update };
  }
}

/** The task as the result write stored it, from the task read before the write. */
const storedTask = (known: TaskRecord, input: TaskResultInput, resultAt: string): TaskRecord => ({
  ...known,
  status: "completed",
  result: input.result ?? null,
  outcome: input.outcome,
  resultAt,
  ...(input.pushPending ? { push: "pending" as const } : {}),
  ...(input.expiredAt !== undefined
    ? { expiredAt: input.expiredAt, expiredForMs: input.expiredForMs ?? 0 }
    : {}),
  ...(input.endReason !== undefined ? { endReason: input.endReason } : {}),
});

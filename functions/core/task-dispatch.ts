import type { TaskRecord } from "./conversation-items.js";

/**
 * How long a task may stay undispatched before it is `abandoned`. A tool call commits its task,
 * hands it to the runners and only then marks it dispatched; a call whose transaction was applied
 * after the caller gave up (DynamoDB slow or frozen: the 503 went out, the queued write landed
 * later) never dispatches it, and no one holds its callback token. Such a task is shown as
 * `abandoned` once this much time has passed since it was created, which is well past the longest
 * a tool call can run (10 s Lambda timeout; locally the SDK budget of each call, about 8 s, and the
 * dispatch check below). Decided on every read, so it holds even while DynamoDB is unreachable.
 */
export const DISPATCH_DEADLINE_MS = 60_000;

/**
 * A tool call that reaches its dispatch step later than this after its clock read does not
 * dispatch at all (503): its dispatch mark could otherwise land after a reader saw `abandoned`.
 */
export const DISPATCH_WINDOW_MS = 30_000;

/** A task as callers see it: `abandoned` when it was never handed to a runner in time. */
export type VisibleTaskStatus = TaskRecord["status"] | "abandoned";

/**
 * The status a reader should see at `nowMs`. Only tasks written with the dispatch marker can be
 * abandoned (tasks recorded before it existed keep their stored status).
 */
export const visibleStatus = (task: TaskRecord, nowMs: number): VisibleTaskStatus =>
  task.status === "pending" &&
  task.dispatch === "pending" &&
  nowMs - Date.parse(task.createdAt) >= DISPATCH_DEADLINE_MS
    ? "abandoned"
    : task.status;

/** A task as readers see it: no token hash, no internal dispatch marker, the visible status. */
export type PublicTask = Omit<TaskRecord, "status" | "dispatch" | "tokenHash"> & {
  readonly status: VisibleTaskStatus;
};

/** The task as the history shows it at `nowMs`. */
export const publicTask = (task: TaskRecord, nowMs: number): PublicTask => {
  const { dispatch: _internal, tokenHash: _hidden, ...rest } = task;
  return { ...rest, status: visibleStatus(task, nowMs) };
};

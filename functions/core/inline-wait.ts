import type { Clock } from "./clock.js";
import type { TaskRecord } from "./conversation-items.js";
import type { TaskStore } from "./task-store.js";

/**
 * Answering a tool call with its own task's result when the task is quick (issue 16): after the
 * dispatch, the tool route reads the task item (strongly consistent GetItem) every
 * {@link INLINE_POLL_INTERVAL_MS} until the runner's callback has stored a result or the wait is
 * over. The callback path records the result (as delivered, once); the tool route only reads it.
 */

/** One consistent read every 100 ms: at most 10 reads (10 RCU for an item under 4 KB) per second waited. */
export const INLINE_POLL_INTERVAL_MS = 100;

// The wait's default and bound are route settings (the CDK app reads them too): see routes.ts.
export { DEFAULT_TOOL_INLINE_WAIT_MS, MAX_TOOL_INLINE_WAIT_MS } from "./routes.js";

export interface InlineWaitDeps {
  readonly tasks: Pick<TaskStore, "getTask">;
  readonly now: Clock;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface InlineWait {
  /** The task with its result, when one was stored in time; else undefined. */
  readonly finished?: TaskRecord;
  readonly reads: number;
  readonly waitedMs: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Waits until `untilMs` (the caller bounds it by the wait setting and by the session's end) for
 * the task's result. A read that fails ends the wait: the agent then polls as it would anyway.
 */
export const waitForResult = async (
  deps: InlineWaitDeps,
  conversationId: string,
  taskId: string,
  untilMs: number,
): Promise<InlineWait> => {
  const sleep = deps.sleep ?? realSleep;
  const startMs = deps.now();
  // Bounded by reads as well as by the clock, so a stopped clock can never make it spin.
  const maxReads = Math.ceil(Math.max(0, untilMs - startMs) / INLINE_POLL_INTERVAL_MS);
  let reads = 0;
  while (reads < maxReads && deps.now() < untilMs) {
    await sleep(Math.min(INLINE_POLL_INTERVAL_MS, Math.max(0, untilMs - deps.now())));
    let task: TaskRecord | null;
    try {
      task = await deps.tasks.getTask(conversationId, taskId);
    } catch {
      break;
    }
    reads++;
    if (task?.outcome === "delivered") return { finished: task, reads, waitedMs: deps.now() - startMs };
    // Any other outcome (the session ended meanwhile) is the agent's to learn by polling.
    if (task?.outcome !== undefined || task === null) break;
  }
  return { reads, waitedMs: deps.now() - startMs };
};

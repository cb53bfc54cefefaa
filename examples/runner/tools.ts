import { createHash } from "node:crypto";
import { setTimeout as wait } from "node:timers/promises";
import type { TaskContext, ToolSet } from "../../functions/runner/index.js";

/** Longest `sleep` accepted: 5 minutes (the example runner's Lambda timeout leaves room for the callback). */
export const MAX_SLEEP_SECONDS = 300;

const ORDER_STATUSES = ["processing", "shipped", "out_for_delivery", "delivered"] as const;
const PRODUCTS = ["Espresso beans 1 kg", "Ceramic mug", "Milk frother", "Paper filters (100)", "Grinder"];

/** A tool's bad input, said so the agent can relay it. */
export class ToolInputError extends Error {
  override readonly name = "ToolInputError";
}

/** A fake order that depends only on its id: the same id always gives the same order. */
export const fakeOrder = (orderId: string) => {
  const digest = createHash("sha256").update(orderId).digest();
  const byte = (i: number) => digest[i] ?? 0;
  const itemCount = 1 + (byte(0) % 3);
  const items = Array.from({ length: itemCount }, (_, i) => ({
    product: PRODUCTS[byte(i + 1) % PRODUCTS.length],
    quantity: 1 + (byte(i + 4) % 3),
  }));
  const placedDaysAgo = 1 + (byte(8) % 14);
  return {
    orderId,
    status: ORDER_STATUSES[byte(9) % ORDER_STATUSES.length],
    items,
    totalCents: 500 + (digest.readUInt16BE(10) % 20_000),
    currency: "EUR",
    placedDaysAgo,
  };
};

/** Seams of the example tools. */
export interface ExampleToolDeps {
  readonly now: () => number;
  /** Waits `ms`, or rejects when `signal` aborts (the task's deadline). */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultDeps: ExampleToolDeps = {
  now: () => Date.now(),
  sleep: (ms, signal) => wait(ms, undefined, { signal }),
};

/**
 * The example runner's tools:
 * - `lookup_order {order_id}`: a deterministic fake order, answered at once (well under 100 ms);
 * - `sleep {seconds}`: waits, then answers `{slept: seconds}`; shows a late callback when the
 *   session ends first. At most {@link MAX_SLEEP_SECONDS}, and never past the task's deadline.
 */
export const createExampleTools = (deps: ExampleToolDeps = defaultDeps): ToolSet => ({
  lookup_order: async (params) => {
    const orderId = params.order_id;
    if (typeof orderId !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(orderId)) {
      throw new ToolInputError("order_id is required: 1 to 64 letters, digits, '_' or '-'.");
    }
    return fakeOrder(orderId);
  },
  sleep: async (params, task: TaskContext) => {
    const seconds = params.seconds;
    if (
      typeof seconds !== "number" ||
      !Number.isFinite(seconds) ||
      seconds < 0 ||
      seconds > MAX_SLEEP_SECONDS
    ) {
      throw new ToolInputError(`seconds must be a number from 0 to ${MAX_SLEEP_SECONDS}.`);
    }
    const ms = Math.round(seconds * 1000);
    const leftMs = task.deadlineAtMs - deps.now();
    if (ms > leftMs) {
      throw new ToolInputError(
        `seconds must be at most ${Math.floor(leftMs / 1000)} here: this runner stops a task after that.`,
      );
    }
    await deps.sleep(ms, task.signal);
    return { slept: seconds };
  },
});

/** The example tools with the real clock and timers. */
export const exampleTools: ToolSet = createExampleTools();

import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/** The failures DynamoDB (or the network to it) can throw at a caller once the SDK gives up. */
export type FaultKind =
  | "ProvisionedThroughputExceeded"
  | "Throttling"
  | "Timeout"
  | "NetworkReset"
  | "TransactionConflict"
  | "TransactionConflictException";

/** Every kind, for matrices. */
export const FAULT_KINDS: readonly FaultKind[] = [
  "ProvisionedThroughputExceeded",
  "Throttling",
  "Timeout",
  "NetworkReset",
  "TransactionConflict",
  "TransactionConflictException",
];

const sdkError = (name: string, message: string, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(message), {
    name,
    $fault: "client",
    $metadata: { httpStatusCode: 400, attempts: 3, totalRetryDelay: 350 },
    ...extra,
  });

/**
 * The error the SDK surfaces after its retries, shaped like the real one (name, `$metadata`,
 * `code` for socket errors, `CancellationReasons` for transactions).
 */
export const faultError = (kind: FaultKind, transactItems = 3): Error => {
  switch (kind) {
    case "ProvisionedThroughputExceeded":
      return sdkError(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
      );
    case "Throttling":
      return sdkError("ThrottlingException", "Rate of requests exceeds the allowed throughput.");
    case "Timeout":
      // What @smithy/node-http-handler throws when `requestTimeout` elapses.
      return Object.assign(new Error("Connection timed out after 2500 ms"), {
        name: "TimeoutError",
        $metadata: { attempts: 3, totalRetryDelay: 350 },
      });
    case "NetworkReset":
      return Object.assign(new Error("socket hang up"), {
        name: "Error",
        code: "ECONNRESET",
        $metadata: { attempts: 3, totalRetryDelay: 350 },
      });
    case "TransactionConflict":
      return sdkError(
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        {
          CancellationReasons: Array.from({ length: transactItems }, () => ({ Code: "TransactionConflict" })),
        },
      );
    case "TransactionConflictException":
      return sdkError("TransactionConflictException", "Transaction is ongoing for the item");
  }
};

/** Which faults can happen on which command. */
export const faultsFor = (commandName: string): FaultKind[] => {
  const write = /^(Put|Update|Delete|BatchWrite)Command$/.test(commandName);
  const transaction = commandName === "TransactWriteCommand";
  return FAULT_KINDS.filter((kind) => {
    if (kind === "TransactionConflict") return transaction;
    if (kind === "TransactionConflictException") return write;
    return true;
  });
};

/** A fault planned at the `atCall`-th DynamoDB call (0-based) of the next request. */
export interface FaultPlan {
  readonly atCall: number;
  readonly kind: FaultKind;
  /**
   * `before`: DynamoDB never applied the call (throttled, unreachable).
   * `after`: DynamoDB applied it but the response was lost (a timeout or reset on the way back).
   */
  readonly when: "before" | "after";
}

/** Controls a {@link faultyClient}. */
export interface FaultControl {
  /** Command class names of every call since the last `reset`. */
  readonly calls: string[];
  plan: FaultPlan | undefined;
  injected: number;
  reset(plan?: FaultPlan): void;
}

/**
 * Wraps a DocumentClient so a test can make exactly one of its calls fail, before or after
 * DynamoDB applied it. Every other call goes to the real client (DynamoDB Local or a mock).
 */
export const faultyClient = (
  inner: DynamoDBDocumentClient,
): { doc: DynamoDBDocumentClient; control: FaultControl } => {
  const control: FaultControl = {
    calls: [],
    plan: undefined,
    injected: 0,
    reset(plan) {
      this.calls.length = 0;
      this.plan = plan;
      this.injected = 0;
    },
  };
  const send = async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
    const index = control.calls.length;
    const name = command.constructor.name;
    control.calls.push(name);
    const plan = control.plan?.atCall === index ? control.plan : undefined;
    const items = (command as { input?: { TransactItems?: unknown[] } }).input?.TransactItems?.length;
    if (plan?.when === "before") {
      control.injected++;
      throw faultError(plan.kind, items);
    }
    const sent = (inner.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
    if (!plan) return sent;
    // DynamoDB processed the call (whether it succeeded or was cancelled); its answer is lost.
    await sent.catch(() => undefined);
    control.injected++;
    throw faultError(plan.kind, items);
  };
  const doc = new Proxy(inner, {
    get: (target, property, receiver) =>
      property === "send" ? send : Reflect.get(target, property, receiver),
  });
  return { doc, control };
};

/** What an {@link observedClient} saw. */
export interface Observations {
  /** Calls by command name. */
  readonly calls: Record<string, number>;
  /** Failed calls by error name (a cancelled transaction also by its reasons). */
  readonly failures: Record<string, number>;
}

/**
 * Wraps a DocumentClient to count what went through it, changing nothing: how many calls of
 * each command, and which errors came back (transactions cancelled by TransactionConflict and
 * retried inside `transactWrite` never reach the handler's answer, but they show here).
 */
export const observedClient = (
  inner: DynamoDBDocumentClient,
): { doc: DynamoDBDocumentClient; seen: Observations } => {
  const seen: Observations = { calls: {}, failures: {} };
  const bump = (map: Record<string, number>, key: string) => {
    map[key] = (map[key] ?? 0) + 1;
  };
  const send = async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
    bump(seen.calls, command.constructor.name);
    try {
      return await (inner.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
    } catch (error) {
      const name = error instanceof Error ? error.name : "unknown";
      const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
      const codes = [...new Set((reasons ?? []).map((r) => r.Code).filter((c) => c && c !== "None"))];
      bump(seen.failures, codes.length > 0 ? `${name}[${codes.join(",")}]` : name);
      throw error;
    }
  };
  const doc = new Proxy(inner, {
    get: (target, property, receiver) =>
      property === "send" ? send : Reflect.get(target, property, receiver),
  });
  return { doc, seen };
};

/**
 * Wraps a DocumentClient so that a share of transactions is cancelled with TransactionConflict
 * before DynamoDB sees them, as real DynamoDB does when two transactions touch the same item at
 * once. DynamoDB Local serializes transactions and never reports such conflicts, so without this
 * the retry path (and a 503 when conflicts persist) would never run in a race test.
 */
export const conflictingClient = (
  inner: DynamoDBDocumentClient,
  rate: number,
  random: () => number = Math.random,
): DynamoDBDocumentClient => {
  const send = async (command: { constructor: { name: string }; input?: unknown }, ...rest: unknown[]) => {
    const items = (command.input as { TransactItems?: unknown[] } | undefined)?.TransactItems?.length;
    if (command.constructor.name === "TransactWriteCommand" && random() < rate) {
      throw faultError("TransactionConflict", items);
    }
    return (inner.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
  };
  return new Proxy(inner, {
    get: (target, property, receiver) =>
      property === "send" ? send : Reflect.get(target, property, receiver),
  });
};

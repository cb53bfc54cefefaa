/**
 * Benchmarks 1 and 2: our code against the raw SDK calls it makes, side by side on one
 * DynamoDB Local, with the same DocumentClient (same config, same connection pool).
 *
 * Import this module only after `process.env` holds the table names and the Powertools
 * settings: the handler module builds its default dependencies (and Powertools reads its
 * environment) at import, exactly as in a Lambda container.
 */
import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { hashToken } from "../functions/core/auth.js";
import { META_SK, messageSortKey, taskSortKey } from "../functions/core/conversation-items.js";
import { createDependencies, DYNAMO_CLIENT_SETTINGS } from "../functions/core/dependencies.js";
import type { Notifier } from "../functions/core/notifier.js";
import { CONVERSATIONS_TABLE } from "../functions/core/table-schema.js";
import { makeHandler } from "../functions/record-task-result/handler.js";
import { createTables, type TableNames } from "../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../local/dynamodb-local.js";
import { apiEvent } from "../test/support/events.js";
import type { Section } from "./report.js";
import { fmtDeltaMs, fmtMs, fmtRatio, type Summary, summarize, timeAsync, verdict } from "./stats.js";

/** Iteration counts of the two latency benchmarks. */
export interface LatencyOptions {
  readonly endpoint: string;
  readonly names: TableNames;
  readonly get: { readonly warmup: number; readonly iterations: number };
  readonly taskResult: { readonly warmup: number; readonly iterations: number };
  /** Target of benchmark 1 (ours / raw at p50). */
  readonly getTarget: number;
}

/** What a benchmark hands back to the runner. */
export interface BenchOutcome {
  readonly section: Section;
  /** One line for the summary table. */
  readonly summary: {
    readonly name: string;
    readonly measured: string;
    readonly target: string;
    readonly result: string;
  };
  /** Sentences explaining a MISS (empty on PASS or when there is no target). */
  readonly misses: readonly string[];
}

type Op = () => Promise<unknown>;

/**
 * Runs `a` and `b` alternately (A B, B A, A B, ...) so both see the same machine state
 * (DynamoDB Local's JIT and GC, the SDK's sockets) and neither always goes first.
 */
const interleave = async (
  iterations: number,
  a: (i: number) => Op,
  b: (i: number) => Op,
): Promise<{ a: number[]; b: number[] }> => {
  const timesA: number[] = [];
  const timesB: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const opA = a(i);
    const opB = b(i);
    if (i % 2 === 0) {
      timesA.push((await timeAsync(opA)).ms);
      timesB.push((await timeAsync(opB)).ms);
    } else {
      timesB.push((await timeAsync(opB)).ms);
      timesA.push((await timeAsync(opA)).ms);
    }
  }
  return { a: timesA, b: timesB };
};

const latencyTable = (baselineLabel: string, oursLabel: string, baseline: Summary, ours: Summary) => ({
  columns: ["operation", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
  numeric: [1, 2, 3, 4, 5],
  rows: [
    [
      baselineLabel,
      String(baseline.n),
      fmtMs(baseline.p50),
      fmtMs(baseline.p90),
      fmtMs(baseline.p99),
      fmtMs(baseline.max),
    ],
    [oursLabel, String(ours.n), fmtMs(ours.p50), fmtMs(ours.p90), fmtMs(ours.p99), fmtMs(ours.max)],
    [
      "ratio ours / baseline",
      "",
      fmtRatio(ours.p50 / baseline.p50),
      fmtRatio(ours.p90 / baseline.p90),
      fmtRatio(ours.p99 / baseline.p99),
      "",
    ],
    [
      "overhead ours − baseline",
      "",
      fmtDeltaMs(ours.p50 - baseline.p50),
      fmtDeltaMs(ours.p90 - baseline.p90),
      fmtDeltaMs(ours.p99 - baseline.p99),
      "",
    ],
  ],
});

/** The DocumentClient both sides use: the service's settings (`createDocumentClient`) plus local credentials. */
const createBenchClient = (endpoint: string) => {
  const client = new DynamoDBClient({
    ...DYNAMO_CLIENT_SETTINGS,
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { client, doc };
};

/** A notifier that resolves at once: the push is not what is measured. */
const instantNotifier: Notifier = { push: async () => ({ ok: true }) };

/** Sets up the tables and dependencies once; the two benchmarks share them. */
export const openLatencyBench = async (options: LatencyOptions) => {
  const { client, doc } = createBenchClient(options.endpoint);
  await createTables(client, options.names);
  const env = {
    ...process.env,
    SESSIONS_TABLE: options.names.sessions,
    CONVERSATIONS_TABLE: options.names.conversations,
  };
  const deps = createDependencies(env, { doc }, ["tables"]);
  const suffix = randomUUID().slice(0, 8);

  /** Benchmark 1: `SessionStore.get` against the raw consistent GetItem it wraps. */
  const sessionGet = async (): Promise<BenchOutcome> => {
    const conversationId = `bench-get-${suffix}`;
    await deps.sessions.set(conversationId, {
      agentId: "agent_bench",
      notifyUrl: "https://app.example.test/live",
      metadata: { plan: "pro", seats: 3, beta: true },
    });
    const ours = () => () => deps.sessions.get(conversationId);
    const raw = () => () =>
      doc.send(
        new GetCommand({ TableName: options.names.sessions, Key: { conversationId }, ConsistentRead: true }),
      );
    if ((await deps.sessions.get(conversationId)) === null)
      throw new Error("Benchmark session is not active");
    await interleave(options.get.warmup, ours, raw);
    const times = await interleave(options.get.iterations, ours, raw);
    const o = summarize(times.a);
    const b = summarize(times.b);
    const ratio = o.p50 / b.p50;
    const result = verdict(ratio, options.getTarget);
    return {
      section: {
        title: "1. SessionStore.get vs raw GetItem",
        intro: [
          `Same item, same DocumentClient (service retry/timeout settings), ConsistentRead on both sides; ` +
            `${options.get.warmup} warm-up pairs, then ${options.get.iterations} interleaved pairs (A B, B A, ...).`,
          `Target: SessionStore.get p50 ≤ ${options.getTarget}× raw p50. **${result}** (${fmtRatio(ratio)}).`,
        ],
        tables: [latencyTable("raw GetCommand (baseline)", "SessionStore.get", b, o)],
      },
      summary: {
        name: "1. SessionStore.get / raw GetItem (p50)",
        measured: `${fmtRatio(ratio)} (${fmtMs(o.p50)} vs ${fmtMs(b.p50)} ms)`,
        target: `≤ ${options.getTarget}×`,
        result,
      },
      misses:
        result === "MISS"
          ? [
              `SessionStore.get adds ${fmtMs(o.p50 - b.p50)} ms at p50 over the raw GetItem; its own work is ` +
                "assertValidId, the guard() wrapper, fromItem/dropUndefined and classify (two Date→ISO conversions).",
            ]
          : [],
    };
  };

  /** Benchmark 2: the record-task-result handler in-process against the raw calls it makes. */
  const taskResult = async (): Promise<BenchOutcome> => {
    const total = options.taskResult.warmup + options.taskResult.iterations;
    const token = `bench-token-${randomUUID()}`;
    const tokenHash = hashToken(token);
    const notifyUrl = "https://app.example.test/live";
    const payload = { ok: true, orderId: "A1", status: "shipped", eta: "2026-11-28" };
    const sides = { handler: `bench-handler-${suffix}`, raw: `bench-raw-${suffix}` };
    const sessions = {
      handler: await deps.sessions.set(sides.handler, { notifyUrl }),
      raw: await deps.sessions.set(sides.raw, { notifyUrl }),
    };
    const taskId = (side: keyof typeof sides, i: number) => `task-${side}-${i}`;

    // One fresh pending task per iteration and side, so every callback is a first delivery.
    const createdAt = new Date().toISOString();
    const items = (Object.keys(sides) as (keyof typeof sides)[]).flatMap((side) =>
      Array.from({ length: total }, (_, i) => ({
        conversationId: sides[side],
        sk: taskSortKey(taskId(side, i)),
        taskId: taskId(side, i),
        toolName: "lookup_order",
        params: { order_id: "A1" },
        status: "pending",
        createdAt,
        tokenHash,
        sessionId: sessions[side].sessionId,
        notifyUrl,
      })),
    );
    for (let i = 0; i < items.length; i += 25) {
      let pending = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      while (pending.length > 0) {
        const out = await doc.send(
          new BatchWriteCommand({ RequestItems: { [options.names.conversations]: pending } }),
        );
        pending = (out.UnprocessedItems?.[options.names.conversations] ?? []) as typeof pending;
      }
    }

    const handler = makeHandler({ ...deps, notifier: instantNotifier });
    const conversationId = sides.handler;
    // Events are built before timing: API Gateway hands the handler a ready event.
    const events = Array.from({ length: total }, (_, i) =>
      apiEvent({
        path: `/conversations/${conversationId}/tasks/${taskId("handler", i)}/result`,
        pathParameters: { conversationId, taskId: taskId("handler", i) },
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: { result: payload },
      }),
    );
    const failures: string[] = [];
    const ours = (offset: number) => (i: number) => async () => {
      const event = events[offset + i];
      if (!event) throw new Error(`No event ${offset + i}`);
      const response = await handler(event);
      if (response.statusCode !== 200 || !response.body.includes('"outcome":"delivered"')) {
        failures.push(`${response.statusCode} ${response.body}`);
      }
    };
    const raw = (offset: number) => (i: number) => () =>
      rawRecordTaskResult(doc, options.names, sides.raw, taskId("raw", offset + i), {
        status: "succeeded",
        result: payload,
      });

    await interleave(options.taskResult.warmup, ours(0), raw(0));
    const times = await interleave(
      options.taskResult.iterations,
      ours(options.taskResult.warmup),
      raw(options.taskResult.warmup),
    );
    if (failures.length > 0) {
      throw new Error(`The handler did not deliver ${failures.length} callbacks, e.g. ${failures[0]}`);
    }
    const check = await deps.tasks.getTask(sides.raw, taskId("raw", total - 1));
    if (check?.outcome !== "delivered") throw new Error("The raw path did not record its last result");

    const o = summarize(times.a);
    const b = summarize(times.b);
    const p50 = o.p50 / b.p50;
    const p99 = o.p99 / b.p99;
    return {
      section: {
        title: "2. record-task-result handler vs the raw DynamoDB calls it makes",
        intro: [
          "Ours: `makeHandler` from functions/record-task-result/handler.ts with `createDependencies` on " +
            "DynamoDB Local (Powertools Logger at SILENT, Metrics disabled), a notifier that resolves at once, " +
            "invoked in-process with a prebuilt API Gateway v2 event; each callback is a first delivery to a " +
            "fresh pending task that has a notifyUrl (so the delivered + pushed path runs).",
          "Baseline: the same four requests sent directly with the same DocumentClient: GetItem task " +
            "(consistent) → TransactWriteItems (task Update with push pending + msg Put + meta Update + " +
            "session ConditionCheck) → UpdateItem (claim the push) → UpdateItem (record the push).",
          `${options.taskResult.warmup} warm-up pairs, then ${options.taskResult.iterations} interleaved pairs. ` +
            `No target: overhead ratio **${fmtRatio(p50)} at p50, ${fmtRatio(p99)} at p99** ` +
            `(${fmtDeltaMs(o.p50 - b.p50)} ms at p50).`,
        ],
        tables: [latencyTable("raw SDK calls (baseline)", "handler in-process", b, o)],
        notes: [
          "Not measured here: writing the log line (SILENT) and the EMF metric (disabled) to stdout, which " +
            "Lambda does with INFO logging and metrics on.",
        ],
      },
      summary: {
        name: "2. record-task-result handler / raw calls",
        measured: `${fmtRatio(p50)} p50, ${fmtRatio(p99)} p99 (${fmtDeltaMs(o.p50 - b.p50)} ms p50)`,
        target: "report only",
        result: "—",
      },
      misses: [],
    };
  };

  return {
    sessionGet,
    taskResult,
    close: () => client.destroy(),
  };
};

/** The meta "touch" `ConversationStore.metaTouch` sends (no agentId, no status change). */
const META_TOUCH =
  "SET createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #listPk = :listPk, " +
  "#listSk = if_not_exists(#listSk, :listSk), #status = if_not_exists(#status, :status)";

/**
 * The requests `recordTaskResult` makes on the delivered path, sent directly: the expressions,
 * items and keys are copied from ConversationStore and SessionStore so both sides do the same
 * DynamoDB work.
 */
const rawRecordTaskResult = async (
  doc: DynamoDBDocumentClient,
  names: TableNames,
  conversationId: string,
  taskId: string,
  result: Record<string, unknown>,
): Promise<void> => {
  const key = { conversationId, sk: taskSortKey(taskId) };
  const before = await doc.send(
    new GetCommand({ TableName: names.conversations, Key: key, ConsistentRead: true }),
  );
  if (!before.Item) throw new Error(`Task ${taskId} is missing`);
  const nowMs = Date.now();
  const at = new Date(nowMs).toISOString();
  const { listIndex } = CONVERSATIONS_TABLE;
  await doc.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: names.conversations,
            Key: key,
            UpdateExpression:
              "SET #status = :completed, #result = :result, outcome = :outcome, resultAt = :resultAt, push = :pending",
            ConditionExpression: "attribute_exists(sk) AND attribute_not_exists(outcome)",
            ExpressionAttributeNames: { "#status": "status", "#result": "result" },
            ExpressionAttributeValues: {
              ":completed": "completed",
              ":result": result,
              ":outcome": "delivered",
              ":resultAt": at,
              ":pending": "pending",
            },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          },
        },
        {
          Put: {
            TableName: names.conversations,
            Item: {
              conversationId,
              sk: messageSortKey({ atMs: nowMs, kind: "task_result", id: taskId }),
              kind: "task_result",
              at,
              atMs: nowMs,
              seq: 0,
              id: taskId,
              data: { taskId, outcome: "delivered", result },
            },
          },
        },
        {
          Update: {
            TableName: names.conversations,
            Key: { conversationId, sk: META_SK },
            UpdateExpression: META_TOUCH,
            ExpressionAttributeNames: {
              "#listPk": listIndex.partitionKey,
              "#listSk": listIndex.sortKey,
              "#status": "status",
            },
            ExpressionAttributeValues: {
              ":at": at,
              ":listPk": "conversation",
              ":listSk": `${at}#${conversationId}`,
              ":status": "active",
            },
          },
        },
        {
          ConditionCheck: {
            TableName: names.sessions,
            Key: { conversationId },
            ConditionExpression: "expiresAtMs > :now",
            ExpressionAttributeValues: { ":now": nowMs },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          },
        },
      ],
    }),
  );
  // The live push is claimed (pending -> claimed) before it is sent, then its result recorded.
  await doc.send(
    new UpdateCommand({
      TableName: names.conversations,
      Key: key,
      UpdateExpression: "SET push = :claimed, pushClaimedAt = :at",
      ConditionExpression: "push = :pending",
      ExpressionAttributeValues: { ":claimed": "claimed", ":pending": "pending", ":at": at },
    }),
  );
  await doc.send(
    new UpdateCommand({
      TableName: names.conversations,
      Key: key,
      UpdateExpression: "SET push = :state, outcome = :outcome",
      ConditionExpression: "push = :claimed",
      ExpressionAttributeValues: { ":state": "done", ":outcome": "delivered", ":claimed": "claimed" },
    }),
  );
};

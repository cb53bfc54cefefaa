/**
 * The DynamoDB Local half of `npm run bench`, run as its own process by bench/run.ts so the
 * handlers log at INFO and publish their EMF metrics to stdout exactly as in Lambda (the parent
 * sends that stdout to a file in the run's folder). Usage: `tsx bench/dynamo-bench.ts <options.json>`;
 * writes the samples as JSON to `options.out`. Every benchmark runs `runs` times, interleaved
 * with the others (run 1 of all, then run 2 of all, ...); within a run, ours and its baseline
 * alternate A B, B A, ... so both see the same machine state.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import {
  DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { hashToken } from "../functions/core/auth.js";
import type { MessageInput } from "../functions/core/conversation-items.js";
import type { Notifier } from "../functions/core/notifier.js";
import { DYNAMO_CLIENT_SETTINGS } from "../functions/core/table-dependencies.js";
import { createTables, type TableNames } from "../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../local/dynamodb-local.js";
import { apiEvent } from "../test/support/events.js";
import { median } from "./stats.js";

/** What the parent hands the child. */
export interface DynamoBenchOptions {
  readonly endpoint: string;
  readonly names: TableNames;
  readonly runs: number;
  /** Interleaved pairs per run and benchmark (after `warmup` uncounted pairs in the first run). */
  readonly pairs: number;
  readonly warmup: number;
  /** History sizes (lines) and first-page reads per run and size. */
  readonly historySizes: readonly number[];
  readonly historyReads: number;
  readonly pageSize: number;
  readonly serviceToken: string;
  readonly out: string;
}

/** Per-run p50s (ms) of one A/B benchmark. */
export interface PairResult {
  readonly id: string;
  readonly ours: string;
  readonly baseline: string;
  readonly oursP50: number[];
  readonly baselineP50: number[];
  /** Requests per operation: ours as counted by a middleware, the baseline's by construction. */
  readonly oursRequests: number;
  readonly baselineRequests: number;
}

/** One history size. */
export interface HistoryResult {
  readonly lines: number;
  readonly firstPageMs: number[];
  readonly minimalPageMs: number[];
  readonly firstPage: ReadCount;
  readonly minimalPage: ReadCount;
  readonly fullRead: ReadCount & { readonly pages: number; readonly ms: number };
}

export interface ReadCount {
  readonly requests: number;
  /** Items DynamoDB read: ScannedCount of a Query (before any filter), 1 per GetItem hit. */
  readonly items: number;
  readonly rcu: number;
}

export interface DynamoBenchResult {
  readonly pairs: PairResult[];
  readonly history: HistoryResult[];
}

const log = (message: string) => process.stderr.write(`[bench]    ${message}\n`);

type Op = () => Promise<unknown>;

const time = async (op: Op): Promise<number> => {
  const start = process.hrtime.bigint();
  await op();
  return Number(process.hrtime.bigint() - start) / 1e6;
};

/** `n` pairs, alternating which side goes first; returns each side's p50. */
const interleave = async (n: number, a: (i: number) => Op, b: (i: number) => Op) => {
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < n; i++) {
    const opA = a(i);
    const opB = b(i);
    if (i % 2 === 0) {
      ta.push(await time(opA));
      tb.push(await time(opB));
    } else {
      tb.push(await time(opB));
      ta.push(await time(opA));
    }
  }
  return { a: median(ta), b: median(tb) };
};

/**
 * Counts the requests a client sends and, while `counting.on`, asks DynamoDB for the capacity it
 * consumed and adds up the items it read. Counting runs are separate from timed runs, so the
 * extra response fields never land in a timing.
 */
const instrument = (client: DynamoDBClient) => {
  const counting = { on: false, requests: 0, items: 0, rcu: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (counting.on) input.ReturnConsumedCapacity = "TOTAL";
      // Counted before the answer: a request DynamoDB refuses (a failed condition) is still a request.
      counting.requests += 1;
      const result = await next(args);
      if (counting.on) {
        const output = result.output as {
          ScannedCount?: number;
          Item?: unknown;
          Responses?: Record<string, unknown[]>;
          ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
        };
        const command = (context as { commandName?: string }).commandName ?? "";
        if (command.startsWith("Query") || command.startsWith("Scan"))
          counting.items += output.ScannedCount ?? 0;
        else if (command.startsWith("GetItem") || command === "GetCommand")
          counting.items += output.Item ? 1 : 0;
        const consumed = output.ConsumedCapacity;
        for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : [])
          counting.rcu += c.CapacityUnits ?? 0;
      }
      return result;
    },
    { step: "initialize", name: "benchCounter" },
  );
  return counting;
};

const main = async () => {
  const options = JSON.parse(readFileSync(String(process.argv[2]), "utf8")) as DynamoBenchOptions;
  const clientSettings = {
    ...DYNAMO_CLIENT_SETTINGS,
    endpoint: options.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  };
  // Ours: the DocumentClient the service builds (createDocumentClient's settings).
  const oursClient = new DynamoDBClient(clientSettings);
  const counter = instrument(oursClient);
  const doc = DynamoDBDocumentClient.from(oursClient, { marshallOptions: { removeUndefinedValues: true } });
  // Baseline: the low-level client, no DocumentClient, same settings.
  const raw = new DynamoDBClient(clientSettings);
  const rawCounter = instrument(raw);
  await createTables(raw, options.names);

  // Handler modules build their default dependencies at import (env set by the parent); the
  // benchmark hands each makeHandler the same kind of dependencies, on DynamoDB Local.
  const { createDependencies } = await import("../functions/core/dependencies.js");
  const { createConversationDependencies } = await import("../functions/core/table-dependencies.js");
  const registerSession = await import("../functions/register-session/handler.js");
  const getSession = await import("../functions/get-session/handler.js");
  const recordTaskResult = await import("../functions/record-task-result/handler.js");
  const getConversation = await import("../functions/get-conversation/handler.js");
  const deps = createDependencies(process.env, { doc });
  const historyDeps = createConversationDependencies(process.env, { doc });
  const instant: Notifier = { push: async () => ({ ok: true }) };
  const handlers = {
    register: registerSession.makeHandler(deps),
    get: getSession.makeHandler(deps),
    result: recordTaskResult.makeHandler({ ...deps, notifier: instant }),
    history: getConversation.makeHandler(historyDeps),
  };
  const auth = { authorization: `Bearer ${options.serviceToken}`, "content-type": "application/json" };
  const expectStatus = async (call: Promise<{ statusCode: number; body: string }>, status: number) => {
    const response = await call;
    if (response.statusCode !== status)
      throw new Error(`Expected ${status}, got ${response.statusCode}: ${response.body.slice(0, 200)}`);
    return response;
  };
  const suffix = randomUUID().slice(0, 8);
  const S = (value: string) => ({ S: value });
  const N = (value: number) => ({ N: String(value) });
  const { sessions: sessionsTable, conversations: conversationsTable } = options.names;
  const registerEvent = (conversationId: string) =>
    apiEvent({
      path: `/conversations/${conversationId}/session`,
      pathParameters: { conversationId },
      headers: auth,
      body: { agentId: "agent_bench", notifyUrl: "https://app.example.test/live", metadata: { plan: "pro" } },
    });
  /** The one request a registration or refresh needs: session, history line and meta in one transaction. */
  const minimalRegistration = (conversationId: string) => {
    const nowMs = Date.now();
    return raw.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Put: {
              TableName: sessionsTable,
              Item: {
                conversationId: S(conversationId),
                sessionId: S(randomUUID()),
                agentId: S("agent_bench"),
                notifyUrl: S("https://app.example.test/live"),
                metadata: { M: { plan: S("pro") } },
                createdAtMs: N(nowMs),
                expiresAtMs: N(nowMs + 600_000),
                expiresAt: N(Math.ceil((nowMs + 600_000) / 1000)),
              },
            },
          },
          {
            Put: {
              TableName: conversationsTable,
              Item: {
                conversationId: S(conversationId),
                sk: S(`msg#${String(nowMs).padStart(15, "0")}#0#session_registered#${randomUUID()}`),
                kind: S("session_registered"),
                atMs: N(nowMs),
              },
            },
          },
          {
            Update: {
              TableName: conversationsTable,
              Key: { conversationId: S(conversationId), sk: S("meta") },
              UpdateExpression: "SET updatedAt = :at, createdAt = if_not_exists(createdAt, :at)",
              ExpressionAttributeValues: { ":at": S(new Date(nowMs).toISOString()) },
            },
          },
        ],
      }),
    );
  };

  const pairs: PairResult[] = [];
  const total = options.warmup + options.pairs;
  const ids = (prefix: string) =>
    Array.from({ length: options.runs * total }, (_, i) => `${prefix}-${suffix}-${i}`);

  // Setup (untimed): sessions to read and to refresh, tasks waiting for their result.
  log("setting up sessions and tasks");
  const readId = `bench-read-${suffix}`;
  await expectStatus(handlers.register(registerEvent(readId)), 201);
  await minimalRegistration(`raw-read-${suffix}`);
  const refreshOurs = ids("refresh-ours");
  const refreshRaw = ids("refresh-raw");
  for (const id of refreshOurs) await expectStatus(handlers.register(registerEvent(id)), 201);
  for (const id of refreshRaw) await minimalRegistration(id);
  const resultConversation = `bench-result-${suffix}`;
  await expectStatus(handlers.register(registerEvent(resultConversation)), 201);
  const rawResultConversation = `raw-result-${suffix}`;
  await minimalRegistration(rawResultConversation);
  const token = `bench-token-${randomUUID()}`;
  const tokenHash = hashToken(token);
  const resultTasks = ids("task");
  for (const taskId of resultTasks)
    await deps.tasks.createTask(resultConversation, {
      taskId,
      toolName: "lookup_order",
      params: { order_id: "A1" },
      tokenHash,
    });
  const rawTasks = ids("raw-task");
  for (const taskId of rawTasks)
    await deps.tasks.createTask(rawResultConversation, {
      taskId,
      toolName: "lookup_order",
      params: { order_id: "A1" },
      tokenHash,
    });
  const payload = { ok: true, orderId: "A1", status: "shipped", eta: "2026-11-28" };

  interface Bench {
    readonly id: string;
    readonly ours: string;
    readonly baseline: string;
    readonly baselineRequests: number;
    readonly a: (i: number) => Op;
    readonly b: (i: number) => Op;
  }
  const benches: Bench[] = [
    {
      id: "session-get",
      ours: "SessionStore.get",
      baseline: "GetItemCommand (client-dynamodb, consistent)",
      baselineRequests: 1,
      a: () => () => deps.sessions.get(readId),
      b: () => () =>
        raw.send(
          new GetItemCommand({
            TableName: sessionsTable,
            Key: { conversationId: S(`raw-read-${suffix}`) },
            ConsistentRead: true,
          }),
        ),
    },
    {
      id: "get-session",
      ours: "get-session handler",
      baseline: "1 GetItemCommand (the session, consistent)",
      baselineRequests: 1,
      a: () => () =>
        expectStatus(
          handlers.get(
            apiEvent({
              method: "GET",
              path: `/conversations/${readId}/session`,
              pathParameters: { conversationId: readId },
              headers: auth,
            }),
          ),
          200,
        ),
      b: () => () =>
        raw.send(
          new GetItemCommand({
            TableName: sessionsTable,
            Key: { conversationId: S(`raw-read-${suffix}`) },
            ConsistentRead: true,
          }),
        ),
    },
    {
      id: "register-new",
      ours: "register-session handler, new session",
      baseline: "1 TransactWriteItems (session Put + history line Put + meta Update)",
      baselineRequests: 1,
      a: (i) => () =>
        expectStatus(handlers.register(registerEvent(`new-ours-${suffix}-${i}-${randomUUID()}`)), 201),
      b: (i) => () => minimalRegistration(`new-raw-${suffix}-${i}-${randomUUID()}`),
    },
    {
      id: "register-refresh",
      ours: "register-session handler, refresh of an active session",
      baseline: "1 TransactWriteItems (same three items)",
      baselineRequests: 1,
      a: (i) => () => expectStatus(handlers.register(registerEvent(String(refreshOurs[i]))), 201),
      b: (i) => () => minimalRegistration(String(refreshRaw[i])),
    },
    {
      id: "record-task-result",
      ours: "record-task-result handler (delivered, push instant)",
      baseline:
        "GetItem (session, consistent) + TransactWriteItems (task Update conditioned on token and no outcome, " +
        "history line Put, meta Update, session ConditionCheck)",
      baselineRequests: 2,
      a: (i) => () => {
        const taskId = String(resultTasks[i]);
        return expectStatus(
          handlers.result(
            apiEvent({
              path: `/conversations/${resultConversation}/tasks/${taskId}/result`,
              pathParameters: { conversationId: resultConversation, taskId },
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: { status: "succeeded", result: payload },
            }),
          ),
          200,
        );
      },
      b: (i) => async () => {
        const taskId = String(rawTasks[i]);
        const nowMs = Date.now();
        const at = new Date(nowMs).toISOString();
        await raw.send(
          new GetItemCommand({
            TableName: sessionsTable,
            Key: { conversationId: S(rawResultConversation) },
            ConsistentRead: true,
          }),
        );
        await raw.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Update: {
                  TableName: conversationsTable,
                  Key: { conversationId: S(rawResultConversation), sk: S(`task#${taskId}`) },
                  UpdateExpression:
                    "SET #status = :done, #result = :result, outcome = :outcome, resultAt = :at",
                  ConditionExpression: "tokenHash = :hash AND attribute_not_exists(outcome)",
                  ExpressionAttributeNames: { "#status": "status", "#result": "result" },
                  ExpressionAttributeValues: {
                    ":done": S("completed"),
                    ":result": {
                      M: { ok: { BOOL: true }, orderId: S("A1"), status: S("shipped"), eta: S("2026-11-28") },
                    },
                    ":outcome": S("delivered"),
                    ":at": S(at),
                    ":hash": S(tokenHash),
                  },
                },
              },
              {
                Put: {
                  TableName: conversationsTable,
                  Item: {
                    conversationId: S(rawResultConversation),
                    sk: S(`msg#${String(nowMs).padStart(15, "0")}#0#task_result#${taskId}`),
                    kind: S("task_result"),
                    atMs: N(nowMs),
                    data: { M: { taskId: S(taskId), outcome: S("delivered") } },
                  },
                },
              },
              {
                Update: {
                  TableName: conversationsTable,
                  Key: { conversationId: S(rawResultConversation), sk: S("meta") },
                  UpdateExpression: "SET updatedAt = :at",
                  ExpressionAttributeValues: { ":at": S(at) },
                },
              },
              {
                ConditionCheck: {
                  TableName: sessionsTable,
                  Key: { conversationId: S(rawResultConversation) },
                  ConditionExpression: "expiresAtMs > :now",
                  ExpressionAttributeValues: { ":now": N(nowMs) },
                },
              },
            ],
          }),
        );
      },
    },
  ];

  const samples = new Map(benches.map((b) => [b.id, { a: [] as number[], b: [] as number[], requests: 0 }]));
  let cursor = 0;
  for (let run = 0; run < options.runs; run++) {
    const count = run === 0 ? total : options.pairs;
    // Keep the task callbacks' sessions active (10 minutes, as deployed) whatever the run takes.
    await expectStatus(handlers.register(registerEvent(resultConversation)), 201);
    await minimalRegistration(rawResultConversation);
    for (const bench of benches) {
      const from = cursor;
      const entry = samples.get(bench.id);
      if (!entry) continue;
      const before = counter.requests;
      if (run === 0) {
        await interleave(
          options.warmup,
          (i) => bench.a(from + i),
          (i) => bench.b(from + i),
        );
        entry.requests = (counter.requests - before) / Math.max(1, options.warmup);
      }
      const offset = run === 0 ? from + options.warmup : from;
      const { a, b } = await interleave(
        options.pairs,
        (i) => bench.a(offset + i),
        (i) => bench.b(offset + i),
      );
      entry.a.push(a);
      entry.b.push(b);
    }
    cursor += count;
    log(`run ${run + 1}/${options.runs} of the handler benchmarks done`);
  }
  for (const bench of benches) {
    const entry = samples.get(bench.id);
    if (!entry) continue;
    pairs.push({
      id: bench.id,
      ours: bench.ours,
      baseline: bench.baseline,
      oursP50: entry.a,
      baselineP50: entry.b,
      oursRequests: entry.requests,
      baselineRequests: bench.baselineRequests,
    });
  }

  // History series ------------------------------------------------------------------------------
  const history: HistoryResult[] = [];
  const seeded = new Map<number, string>();
  for (const lines of options.historySizes) {
    const conversationId = `bench-history-${lines}-${suffix}`;
    log(`seeding a ${lines}-line history`);
    await expectStatus(handlers.register(registerEvent(conversationId)), 201);
    const startMs = Date.now() - lines * 1000;
    const messages: MessageInput[] = Array.from({ length: lines - 1 }, (_, i) => ({
      kind: "transcript",
      atMs: startMs + i * 1000,
      seq: i,
      id: `line-${i}`,
      role: i % 2 === 0 ? "agent" : "user",
      text: `Transcript line ${i}: a sentence of ordinary length, as a caller would say it.`,
    }));
    await deps.conversations.appendMessages(conversationId, messages);
    seeded.set(lines, conversationId);
  }
  const pageEvent = (conversationId: string, cursorValue?: string) =>
    apiEvent({
      method: "GET",
      path: `/conversations/${conversationId}`,
      pathParameters: { conversationId },
      headers: auth,
      query: { limit: String(options.pageSize), ...(cursorValue ? { cursor: cursorValue } : {}) },
    });
  const minimalPage = (conversationId: string) =>
    raw.send(
      new QueryCommand({
        TableName: conversationsTable,
        KeyConditionExpression: "conversationId = :id",
        ExpressionAttributeValues: { ":id": S(conversationId) },
        Limit: options.pageSize + 1,
      }),
    );
  const firstPage = (conversationId: string) => () =>
    expectStatus(handlers.history(pageEvent(conversationId)), 200);
  const count = async (c: typeof counter, op: Op): Promise<ReadCount> => {
    Object.assign(c, { on: true, requests: 0, items: 0, rcu: 0 });
    await op();
    c.on = false;
    return { requests: c.requests, items: c.items, rcu: c.rcu };
  };
  const timings = new Map<number, { ours: number[]; minimal: number[] }>(
    options.historySizes.map((n) => [n, { ours: [], minimal: [] }]),
  );
  for (let run = 0; run < options.runs; run++) {
    for (const lines of options.historySizes) {
      const id = String(seeded.get(lines));
      const { a, b } = await interleave(
        options.historyReads,
        () => firstPage(id),
        () => () => minimalPage(id),
      );
      timings.get(lines)?.ours.push(a);
      timings.get(lines)?.minimal.push(b);
    }
    log(`run ${run + 1}/${options.runs} of the history series done`);
  }
  for (const lines of options.historySizes) {
    const id = String(seeded.get(lines));
    const ours = await count(counter, firstPage(id));
    const minimal = await count(rawCounter, () => minimalPage(id));
    // The whole history, page by page, as a client reading it all would.
    let pages = 0;
    const start = process.hrtime.bigint();
    const full = await count(counter, async () => {
      let next: string | undefined;
      do {
        const response = await expectStatus(handlers.history(pageEvent(id, next)), 200);
        next = (JSON.parse(response.body) as { nextCursor?: string }).nextCursor;
        pages += 1;
      } while (next);
    });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const t = timings.get(lines);
    history.push({
      lines,
      firstPageMs: t?.ours ?? [],
      minimalPageMs: t?.minimal ?? [],
      firstPage: ours,
      minimalPage: minimal,
      fullRead: { ...full, pages, ms },
    });
    log(
      `${lines} lines: first page ${ours.items} items, whole history ${full.items} items in ${pages} pages`,
    );
  }

  const result: DynamoBenchResult = { pairs, history };
  writeFileSync(options.out, JSON.stringify(result, null, 2));
  oursClient.destroy();
  raw.destroy();
};

main().catch((error: unknown) => {
  process.stderr.write(
    `[bench] DynamoDB benchmarks failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});

/**
 * `npm run bench:inline [-- --runs N] [-- --calls N]`: how long the agent waits for a quick
 * task's result at TOOL_INLINE_WAIT_MS = 0, 1 000 and 3 000 ms (issue 16), on DynamoDB Local.
 *
 * Each call is a real call-tool handler (first tool call of a fresh conversation, so the session
 * starts in the same transaction) whose task the example runner's `lookup_order` runs in process
 * through the runner library (`runTask`, as on Lambda), reporting through the record-task-result
 * handler. "Result in hand" is the tool answer itself when it came inline; otherwise the tool
 * answer plus polls of get_task_result every 250 ms until the task reads completed — a lower
 * bound: a real agent polls only after another LLM turn (typically 0.5–2 s more).
 * The settings are interleaved call by call; each figure is the median over runs of the run's
 * p50 (or p90), with the min–max over the runs.
 */
import { randomUUID } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { exampleTools } from "../examples/runner/tools.js";
import { createDependencies } from "../functions/core/dependencies.js";
import type { TaskDispatcher, TaskMessage } from "../functions/core/dispatcher.js";
import type { AppLogger } from "../functions/core/powertools.js";
import { defineTools } from "../functions/runner/index.js";
import { createTables } from "../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "../local/dynamodb-local.js";
import { apiEvent } from "../test/support/events.js";
import { fmtMs, fmtSpread, median, summarize } from "./stats.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) || fallback : fallback;
};
const RUNS = Math.max(3, arg("--runs", 5));
const CALLS = Math.max(5, arg("--calls", 20));
const WAITS = [0, 1_000, 3_000];
const TOOL_SECRET = "bench-tool-secret";
const BASE_URL = "https://api.bench.test";

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  appendKeys() {},
  removeKeys() {},
} as unknown as AppLogger;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const toolAuth = { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" };

const main = async () => {
  const dynamo = await startDynamoDbLocal();
  try {
    const raw = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
    const names = {
      sessions: `bench-sessions-${randomUUID()}`,
      conversations: `bench-conversations-${randomUUID()}`,
    };
    await createTables(raw, names);
    // The handler modules build their Lambda dependencies at import: give them a valid environment.
    Object.assign(process.env, {
      SESSIONS_TABLE: names.sessions,
      CONVERSATIONS_TABLE: names.conversations,
      PUBLIC_BASE_URL: BASE_URL,
      AWS_REGION: LOCAL_REGION,
    });
    const { makeHandler: makeCallTool } = await import("../functions/call-tool/handler.js");
    const { makeHandler: makePoll } = await import("../functions/get-task-result/handler.js");
    const { makeHandler: makeResult } = await import("../functions/record-task-result/handler.js");
    const deps = createDependencies(
      {
        SESSIONS_TABLE: names.sessions,
        CONVERSATIONS_TABLE: names.conversations,
        PUBLIC_BASE_URL: BASE_URL,
        TOOL_SECRET,
        SERVICE_TOKEN: "bench-service-token",
        NOTIFY_SIGNING_SECRET: "bench-notify-secret",
      },
      { doc, logger: quiet },
      ["tables", "publicBaseUrl"],
    );
    const result = makeResult({ ...deps, notifier: { push: async () => ({ ok: true }) } });
    const poll = makePoll(deps);
    const runner = defineTools(exampleTools, {
      publicBaseUrl: BASE_URL,
      logger: quiet,
      fetch: async (url, init) => {
        const [, conversationId, taskId] =
          /conversations\/([^/]+)\/tasks\/([^/]+)\/result$/.exec(String(url)) ?? [];
        const response = await result(
          apiEvent({
            method: "POST",
            path: `/conversations/${conversationId}/tasks/${taskId}/result`,
            pathParameters: { conversationId: String(conversationId), taskId: String(taskId) },
            headers: Object.fromEntries(new Headers(init?.headers).entries()),
            body: JSON.parse(String(init?.body)),
          }),
        );
        return new Response(response.body, { status: response.statusCode });
      },
    });
    const dispatcher: TaskDispatcher = {
      kind: "in-process",
      dispatch: async (message: TaskMessage) => void runner.runTask(message).catch(() => undefined),
    };
    const callTools = new Map(
      WAITS.map((w) => [
        w,
        makeCallTool({ ...deps, config: { ...deps.config, toolInlineWaitMs: w }, dispatcher }),
      ]),
    );

    const once = async (waitMs: number) => {
      const id = `bench-${randomUUID()}`;
      const t0 = performance.now();
      const response = await callTools.get(waitMs)?.(
        apiEvent({
          method: "POST",
          path: "/tools/lookup_order",
          pathParameters: { toolName: "lookup_order" },
          headers: toolAuth,
          body: { conversation_id: id, order_id: "A1042" },
        }),
      );
      const toolMs = performance.now() - t0;
      const body = JSON.parse(response?.body ?? "{}") as { status?: string; taskId?: string };
      if (body.status === "completed") return { toolMs, inHandMs: toolMs, inline: true, polls: 0 };
      for (let polls = 1; polls <= 200; polls++) {
        await sleep(250);
        const answer = await poll(
          apiEvent({
            method: "POST",
            path: "/tools/get_task_result",
            headers: toolAuth,
            body: { conversation_id: id, task_id: body.taskId },
          }),
        );
        const tasks = (JSON.parse(answer.body) as { tasks?: { status?: string }[] }).tasks ?? [];
        if (tasks[0]?.status === "completed")
          return { toolMs, inHandMs: performance.now() - t0, inline: false, polls };
      }
      throw new Error("the task never completed");
    };

    for (let i = 0; i < 10; i++) await once(WAITS[i % WAITS.length] ?? 0); // warm-up, uncounted
    const perRun = new Map(
      WAITS.map((w) => [
        w,
        [] as {
          toolP50: number;
          toolP90: number;
          inHandP50: number;
          inHandP90: number;
          inline: number;
          polls: number;
        }[],
      ]),
    );
    for (let run = 0; run < RUNS; run++) {
      const samples = new Map(WAITS.map((w) => [w, [] as Awaited<ReturnType<typeof once>>[]]));
      for (let call = 0; call < CALLS; call++) {
        // Rotate the order so no setting always goes first.
        for (let k = 0; k < WAITS.length; k++) {
          const w = WAITS[(call + k) % WAITS.length] ?? 0;
          samples.get(w)?.push(await once(w));
        }
      }
      for (const w of WAITS) {
        const s = samples.get(w) ?? [];
        const tool = summarize(s.map((x) => x.toolMs));
        const inHand = summarize(s.map((x) => x.inHandMs));
        perRun.get(w)?.push({
          toolP50: tool.p50,
          toolP90: tool.p90,
          inHandP50: inHand.p50,
          inHandP90: inHand.p90,
          inline: s.filter((x) => x.inline).length / s.length,
          polls: s.reduce((n, x) => n + x.polls, 0) / s.length,
        });
      }
      process.stderr.write(`[bench:inline] run ${run + 1}/${RUNS} done\n`);
    }
    const lines = [
      `Inline wait (lookup_order, in process on DynamoDB Local): ${RUNS} runs × ${CALLS} calls per setting, interleaved; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" / ")} on ${cpus().length} cores.`,
      "",
      "| TOOL_INLINE_WAIT_MS | answered inline | tool answer p50 ms (min–max over runs) | tool answer p90 ms | result in hand p50 ms, lower bound (min–max) | result in hand p90 ms | polls per call |",
      "|---:|---:|---:|---:|---:|---:|---:|",
      ...WAITS.map((w) => {
        const r = perRun.get(w) ?? [];
        const pick = (f: (x: (typeof r)[number]) => number) => r.map(f);
        return `| ${w} | ${(median(pick((x) => x.inline)) * 100).toFixed(0)} % | ${fmtSpread(pick((x) => x.toolP50))} | ${fmtMs(median(pick((x) => x.toolP90)))} | ${fmtSpread(pick((x) => x.inHandP50))} | ${fmtMs(median(pick((x) => x.inHandP90)))} | ${median(pick((x) => x.polls)).toFixed(1)} |`;
      }),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await dynamo.stop();
  }
};

main().catch((error: unknown) => {
  process.stderr.write(`bench:inline failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});

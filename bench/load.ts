/**
 * Bounded load test (`npm run load`): starts the local server in this process on 127.0.0.1 with
 * an in-memory DynamoDB Local, drives a mixed workload through it with autocannon at a fixed
 * overall rate for a fixed time, then checks that every task result the API accepted is in the
 * conversation's history exactly once. Writes the latest figures to bench/LOAD.md.
 *
 * Knobs (bounded): LOAD_DURATION_S (default 30, max 120), LOAD_RATE req/s (default 150, max 400),
 * LOAD_CONNECTIONS (default 20, max 50). It only ever targets the server it started.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { arch, cpus, loadavg, platform, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import autocannon from "autocannon";
import { startLocalServer } from "../local/local-service.js";
import { bounded } from "./settings.js";

const DURATION_S = bounded("LOAD_DURATION_S", 30, 120);
const RATE = bounded("LOAD_RATE", 150, 400);
const CONNECTIONS = bounded("LOAD_CONNECTIONS", 20, 50);

/** What one connection remembers between the requests of one cycle. */
interface Cycle {
  conversationId?: string;
  taskId?: string;
  token?: string;
  nonce?: string;
}

/** A result the API accepted (first answer, not a duplicate): it must be in the history once. */
interface Accepted {
  readonly conversationId: string;
  readonly taskId: string;
  readonly nonce: string;
  readonly outcome: string;
}

const main = async () => {
  // Handlers log one line per request at INFO: keep the server quiet so it measures the work.
  process.env.POWERTOOLS_LOG_LEVEL ??= "ERROR";
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const dataDir = await mkdtemp(join(tmpdir(), "load-"));
  const server = await startLocalServer({ port: 0, inMemory: true, quiet: true, dataDir });
  // Guard rail: whatever happens, this process ends.
  const deadline = setTimeout(
    () => {
      console.error("load test did not finish in time; stopping");
      process.exit(2);
    },
    (DURATION_S + 180) * 1000,
  );
  deadline.unref();

  try {
    if (!server.url.startsWith("http://127.0.0.1:")) throw new Error(`refusing to load ${server.url}`);
    const serviceToken = process.env.SERVICE_TOKEN ?? "";
    const toolSecret = process.env.TOOL_SECRET ?? "";
    const accepted: Accepted[] = [];
    const answers: Record<string, number> = {};
    const count = (what: string) => {
      answers[what] = (answers[what] ?? 0) + 1;
    };
    const json = (body: string): Record<string, unknown> => {
      try {
        return JSON.parse(body) as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    const service = { authorization: `Bearer ${serviceToken}`, "content-type": "application/json" };
    const tool = { "x-tool-secret": toolSecret, "content-type": "application/json" };

    // One cycle per connection, repeated: register → tool call → result → read session → poll → history.
    const requests: autocannon.Request[] = [
      {
        method: "POST",
        setupRequest: (request, context) => {
          const cycle = context as Cycle;
          cycle.conversationId = `load-${randomUUID()}`;
          return {
            ...request,
            path: `/conversations/${cycle.conversationId}/session`,
            headers: service,
            body: "{}",
          };
        },
        onResponse: (status) => count(`register ${status}`),
      },
      {
        method: "POST",
        setupRequest: (request, context) => {
          const cycle = context as Cycle;
          return {
            ...request,
            path: "/tools/lookup_order",
            headers: tool,
            body: JSON.stringify({ conversation_id: cycle.conversationId, order_id: "A1042" }),
          };
        },
        onResponse: (status, body, context) => {
          count(`tool ${status}`);
          const answer = json(body);
          const cycle = context as Cycle;
          if (status === 200 && answer.status === "accepted") {
            cycle.taskId = String(answer.taskId);
            cycle.token = String(answer.callbackToken);
          }
        },
      },
      {
        method: "POST",
        setupRequest: (request, context) => {
          const cycle = context as Cycle;
          // No task (the tool call failed): start the next cycle instead.
          if (!cycle.taskId || !cycle.token) return undefined as unknown as autocannon.Request;
          cycle.nonce = randomUUID();
          return {
            ...request,
            path: `/conversations/${cycle.conversationId}/tasks/${cycle.taskId}/result`,
            headers: { authorization: `Bearer ${cycle.token}`, "content-type": "application/json" },
            body: JSON.stringify({
              status: "succeeded",
              result: { nonce: cycle.nonce, order: "A1042", state: "shipped" },
            }),
          };
        },
        onResponse: (status, body, context) => {
          count(`result ${status}`);
          const answer = json(body);
          const cycle = context as Cycle;
          if (status === 200 && answer.duplicate !== true && typeof answer.outcome === "string") {
            accepted.push({
              conversationId: cycle.conversationId ?? "",
              taskId: cycle.taskId ?? "",
              nonce: cycle.nonce ?? "",
              outcome: answer.outcome,
            });
          }
        },
      },
      {
        method: "GET",
        setupRequest: (request, context) => ({
          ...request,
          path: `/conversations/${(context as Cycle).conversationId}/session`,
          headers: { authorization: `Bearer ${serviceToken}` },
        }),
        onResponse: (status) => count(`session ${status}`),
      },
      {
        method: "POST",
        setupRequest: (request, context) => ({
          ...request,
          path: "/tools/get_task_result",
          headers: tool,
          body: JSON.stringify({ conversation_id: (context as Cycle).conversationId }),
        }),
        onResponse: (status) => count(`poll ${status}`),
      },
      {
        method: "GET",
        setupRequest: (request, context) => ({
          ...request,
          path: `/conversations/${(context as Cycle).conversationId}`,
          headers: { authorization: `Bearer ${serviceToken}` },
        }),
        onResponse: (status) => count(`history ${status}`),
      },
    ];

    const before = loadavg()
      .map((l) => l.toFixed(2))
      .join(" / ");
    // Warm-up (not measured): the JVM of DynamoDB Local and V8 compile the hot paths first.
    await autocannon({ url: server.url, connections: 4, overallRate: 40, duration: 5, requests });
    accepted.length = 0;
    for (const key of Object.keys(answers)) delete answers[key];

    console.log(
      `load: ${DURATION_S} s at ${RATE} req/s over ${CONNECTIONS} connections against ${server.url}`,
    );
    const result = await autocannon({
      url: server.url,
      connections: CONNECTIONS,
      overallRate: RATE,
      duration: DURATION_S,
      timeout: 10,
      requests,
    });

    // Every accepted result is in its conversation's history, exactly once, as sent.
    let lost = 0;
    let doubled = 0;
    let altered = 0;
    for (const item of accepted) {
      const response = await fetch(`${server.url}/conversations/${item.conversationId}?limit=100`, {
        headers: { authorization: `Bearer ${serviceToken}` },
      });
      const history = (await response.json()) as {
        messages?: { kind: string; id: string; data?: { result?: { result?: { nonce?: string } } } }[];
        tasks?: { taskId: string; outcome?: string }[];
      };
      const lines = (history.messages ?? []).filter((m) => m.kind === "task_result" && m.id === item.taskId);
      const task = (history.tasks ?? []).find((t) => t.taskId === item.taskId);
      if (lines.length === 0 || !task?.outcome) lost++;
      else if (lines.length > 1) doubled++;
      else if (lines[0]?.data?.result?.result?.nonce !== item.nonce || task.outcome !== item.outcome)
        altered++;
    }

    const statusCounts = Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count ?? 0]),
    );
    const figures = {
      date: new Date().toISOString(),
      loadAverageBefore: before,
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()} ${arch()}, Node ${process.version}`,
      config: { durationSeconds: DURATION_S, targetRate: RATE, connections: CONNECTIONS },
      requests: result.requests.total,
      requestsPerSecond: Number(result.requests.average.toFixed(1)),
      latencyMs: {
        p50: result.latency.p50,
        p99: result.latency.p99,
        max: result.latency.max,
        mean: Number(result.latency.mean.toFixed(1)),
      },
      non2xx: result.non2xx,
      statusCounts,
      errors: result.errors,
      timeouts: result.timeouts,
      pipelineResets: result.resets,
      answers,
      acceptedResults: accepted.length,
      resultsLost: lost,
      resultsStoredTwice: doubled,
      resultsAltered: altered,
    };
    console.log(JSON.stringify(figures, null, 2));
    await writeFile(resolve(import.meta.dirname, "LOAD.md"), report(figures));
    const ok =
      lost === 0 && doubled === 0 && altered === 0 && result.errors === 0 && (statusCounts["500"] ?? 0) === 0;
    if (!ok) {
      console.error("load test FAILED: see the figures above");
      process.exitCode = 1;
    }
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    clearTimeout(deadline);
  }
};

type Figures = {
  date: string;
  loadAverageBefore: string;
  machine: string;
  config: { durationSeconds: number; targetRate: number; connections: number };
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  non2xx: number;
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
  pipelineResets: number;
  answers: Record<string, number>;
  acceptedResults: number;
  resultsLost: number;
  resultsStoredTwice: number;
  resultsAltered: number;
};

const report = (f: Figures): string => `# Load test: latest figures

Produced by \`npm run load\` (bench/load.ts); overwritten on every run. Not part of \`npm test\`.

- **When:** ${f.date}
- **Machine:** ${f.machine}; load average (1/5/15 min) before the run: ${f.loadAverageBefore}
  (other processes share this machine, so figures vary between runs)
- **Setup:** after a 5 s warm-up (not measured), the local server in-process on 127.0.0.1 (all routes, the Lambda handler modules),
  in-memory DynamoDB Local (a single Java process on the same machine), autocannon with
  ${f.config.connections} connections at an overall rate of ${f.config.targetRate} req/s for ${f.config.durationSeconds} s.
- **Workload:** each connection repeats one cycle: register a new conversation → tool call
  (the answer carries the callback token: no runner configured) → post the task result →
  read the session → poll \`get_task_result\` → read the history.

| figure | value |
|---|---|
| requests | ${f.requests} |
| requests/s (mean) | ${f.requestsPerSecond} |
| latency p50 / p99 / max (ms) | ${f.latencyMs.p50} / ${f.latencyMs.p99} / ${f.latencyMs.max} |
| non-2xx responses | ${f.non2xx} |
| responses by status | ${Object.entries(f.statusCounts)
  .map(([code, n]) => `${code}: ${n}`)
  .join(", ")} |
| connection errors / timeouts | ${f.errors} / ${f.timeouts} |
| accepted task results | ${f.acceptedResults} |
| results lost / stored twice / altered | **${f.resultsLost} / ${f.resultsStoredTwice} / ${f.resultsAltered}** |

Answers by step: ${Object.entries(f.answers)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([k, n]) => `\`${k}\` ${n}`)
  .join(", ")}.

Latency is measured on one machine that also runs DynamoDB Local and the load generator, so it
is an upper bound for the code path, not a prediction of Lambda + DynamoDB latency in AWS.
`;

await main();

/**
 * `npm run soak` (outside CI): expiry-boundary trials over HTTP against a spawned `npm start`
 * (loopback only), then a freeze/kill DynamoDB Local fault cycle under load. Judges every trial
 * with bench/soak-core.ts and writes the figures to bench/SOAK.md.
 *
 * Bounded: SOAK_TRIALS judged trials (default 10 000, max 20 000; at most 1.25× as many started),
 * SOAK_CONCURRENCY (default 40, max 100),
 * SOAK_MAX_S (default 1500 s, max 3600): it stops early at the time bound and says so.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { signPayload } from "../functions/core/notifier.js";
import { findFreePort } from "../local/dynamodb-local.js";
import { LOCAL_SECRETS } from "../local/local-env.js";
import { spawnLocalServer } from "../test/support/spawn-local-server.js";
import { bounded } from "./settings.js";
import {
  type Answer,
  emptySummary,
  judge,
  offsetOf,
  type SeenTask,
  TRIAL_KINDS,
  type TrialRecord,
  tally,
} from "./soak-core.js";
import { median } from "./stats.js";

const TRIALS = bounded("SOAK_TRIALS", 10_000, 20_000);
const CONCURRENCY = bounded("SOAK_CONCURRENCY", 40, 100);
const MAX_S = bounded("SOAK_MAX_S", 1500, 3600);
/** Trials started at most, judged or not (a set-up can fail on a loaded machine). */
const MAX_ATTEMPTS = Math.ceil(TRIALS * 1.25);
const TTL_MS = 1500;
const APP = { authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}`, "content-type": "application/json" };
const TOOL = { "x-tool-secret": LOCAL_SECRETS.TOOL_SECRET, "content-type": "application/json" };

let base = "";
const call = async (
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> => {
  try {
    const response = await fetch(`${base}${path}`, { method, headers, ...(body ? { body } : {}) });
    const text = await response.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, ...(parsed ? { body: parsed } : {}) };
  } catch {
    return { status: 0 };
  }
};

const signedWebhook = (conversationId: string) => {
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    type: "post_call_transcription",
    event_timestamp: now,
    data: {
      agent_id: "agent_soak",
      conversation_id: conversationId,
      status: "done",
      transcript: [{ role: "agent", message: "Hi", time_in_call_secs: 0 }],
      metadata: { start_time_unix_secs: now - 2, call_duration_secs: 2 },
      analysis: { call_successful: "success", transcript_summary: "soak" },
    },
  });
  return {
    body,
    headers: {
      "content-type": "application/json",
      "elevenlabs-signature": signPayload(LOCAL_SECRETS.WEBHOOK_SECRET, body, now),
    },
  };
};

/**
 * The median of the last 101 send-to-receive lags of a callback (the server's stored `resultAt`
 * minus the instant this process sent it; one machine, one clock). Trials aim that much early.
 */
const lag = (() => {
  const recent: number[] = [];
  return {
    observe(ms: number) {
      if (!Number.isFinite(ms)) return;
      recent.push(ms);
      if (recent.length > 101) recent.shift();
    },
    median: () => (recent.length === 0 ? 0 : median(recent)),
  };
})();

/**
 * Where the judged callbacks landed, by the server's clock: its receive time (`resultAt`) minus
 * the expiry, per ms from -5 to +5, and how many landed further out.
 */
const landing = (record: TrialRecord, into: Record<string, number>) => {
  const resultAt = record.tasks.find((t) => t.taskId === record.taskId)?.resultAt;
  if (!resultAt) return;
  const ms = Date.parse(resultAt) - Date.parse(record.expiresAt);
  const key = ms < -5 ? "before -5" : ms > 5 ? "after +5" : ms > 0 ? `+${ms}` : String(ms);
  into[key] = (into[key] ?? 0) + 1;
};

const fmtLag = () => `${lag.median()} ms`;

const LANDING_ORDER = [
  "before -5",
  ...Array.from({ length: 11 }, (_, i) => (i > 5 ? `+${i - 5}` : String(i - 5))),
  "after +5",
];
const fmtLanded = (landed: Record<string, number>) =>
  LANDING_ORDER.filter((key) => landed[key])
    .map((key) => `${key}: ${landed[key]}`)
    .join(", ");

/** Sleeps until `atMs` on this process's clock (a short spin for the last 2 ms). */
const until = async (atMs: number) => {
  const wait = atMs - Date.now() - 2;
  if (wait > 0) await sleep(wait);
  while (Date.now() < atMs) {}
};

/** One trial: a live session and task, then the task's result (and one racing call) at expiry + offset. */
const trial = async (i: number): Promise<TrialRecord | { readonly setupFailed: string }> => {
  const kind = TRIAL_KINDS[i % TRIAL_KINDS.length] ?? "callback";
  const offsetMs = offsetOf(Math.floor(i / TRIAL_KINDS.length));
  const id = `soak-${i}-${randomUUID().slice(0, 8)}`;
  const reg = await call("POST", `/conversations/${id}/session`, APP, "{}");
  if (reg.status !== 201) return { setupFailed: `register ${reg.status} ${String(reg.body?.error ?? "")}` };
  const expiresAt = String(reg.body?.expiresAt);
  const tool = await call("POST", "/tools/soak_task", TOOL, JSON.stringify({ conversation_id: id, n: i }));
  if (tool.body?.status !== "accepted") {
    // With 1.5 s sessions, a tool call that waited too long for a core finds the session over.
    const why = tool.body?.status ?? tool.body?.error ?? "";
    return { setupFailed: `tool call ${tool.status} ${String(why)}` };
  }
  const taskId = String(tool.body.taskId);
  const callbackPath = new URL(String(tool.body.callbackUrl)).pathname;
  const result = JSON.stringify({ status: "succeeded", result: { trial: i } });
  const cbHeaders = {
    authorization: `Bearer ${String(tool.body.callbackToken)}`,
    "content-type": "application/json",
  };
  // Aimed early by the recent send-to-receive lag, so the server receives it near expiry + offset.
  await until(Date.parse(expiresAt) + offsetMs - lag.median());
  const sentAtMs = Date.now();
  const racing: Promise<Answer>[] = [call("POST", callbackPath, cbHeaders, result)];
  if (kind === "duplicate") racing.push(call("POST", callbackPath, cbHeaders, result));
  if (kind === "tool")
    racing.push(call("POST", "/tools/soak_task", TOOL, JSON.stringify({ conversation_id: id })));
  if (kind === "reregister") racing.push(call("POST", `/conversations/${id}/session`, APP, "{}"));
  if (kind === "postcall") {
    const hook = signedWebhook(id);
    racing.push(call("POST", "/webhooks/elevenlabs/post-call", hook.headers, hook.body));
  }
  const answers = await Promise.all(racing);
  const callbacks = kind === "duplicate" ? answers : answers.slice(0, 1);
  const extra = kind === "duplicate" || kind === "callback" ? undefined : answers[1];
  const history = await call("GET", `/conversations/${id}?limit=100`, APP);
  const tasks = ((history.body?.tasks ?? []) as SeenTask[]).map((t) => ({ ...t }));
  const messages = (history.body?.messages ?? []) as { kind: string; data?: { taskId?: string } }[];
  const resultLines = messages.filter((m) => m.kind === "task_result" && m.data?.taskId === taskId).length;
  const resultAt = tasks.find((t) => t.taskId === taskId)?.resultAt;
  if (resultAt) lag.observe(Date.parse(resultAt) - sentAtMs);
  return { kind, offsetMs, expiresAt, taskId, callbacks, ...(extra ? { extra } : {}), tasks, resultLines };
};

/** Fault cycle: tool calls and callbacks under load while DynamoDB Local is frozen, then killed. */
const faultCycle = async (dynamoPid: number) => {
  const counts = {
    requests: 0,
    status: {} as Record<string, number>,
    acceptedTasks: 0,
    storedTasks: 0,
    orphans: 0,
    unacknowledged: 0,
    /** Accepted tasks not in the history (or in a history that could not be read). */
    lost: 0,
    /** Conversations whose history never answered 200 after the fault. */
    unreadable: 0,
    recoveredAfterS: 0,
  };
  const conversations: { id: string; accepted: Set<string> }[] = [];
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const id = `fault-${randomUUID().slice(0, 8)}`;
      const reg = await call("POST", `/conversations/${id}/session`, APP, "{}");
      counts.requests++;
      counts.status[reg.status] = (counts.status[reg.status] ?? 0) + 1;
      if (reg.status !== 201) continue;
      const entry = { id, accepted: new Set<string>() };
      conversations.push(entry);
      for (let k = 0; k < 3 && !stop; k++) {
        const tool = await call("POST", "/tools/soak_task", TOOL, JSON.stringify({ conversation_id: id, k }));
        counts.requests++;
        counts.status[tool.status] = (counts.status[tool.status] ?? 0) + 1;
        if (tool.body?.status === "accepted") {
          entry.accepted.add(String(tool.body.taskId));
          counts.acceptedTasks++;
        }
      }
    }
  };
  const workers = Array.from({ length: 20 }, worker);
  await sleep(3000);
  process.kill(dynamoPid, "SIGSTOP");
  await sleep(6000);
  process.kill(dynamoPid, "SIGCONT");
  await sleep(3000);
  process.kill(dynamoPid, "SIGKILL");
  await sleep(8000);
  stop = true;
  await Promise.all(workers);
  // Let queued writes land and DynamoDB Local come back, then read every conversation back.
  await sleep(3000);
  counts.recoveredAfterS = await recovered();
  for (const { id, accepted } of conversations) {
    const history = await readBack(id);
    if (!history) {
      counts.unreadable++;
      counts.lost += accepted.size;
      continue;
    }
    const seen = new Set<string>();
    for (const t of (history.body?.tasks ?? []) as SeenTask[]) {
      counts.storedTasks++;
      seen.add(t.taskId);
      if (accepted.has(t.taskId)) continue;
      counts.unacknowledged++;
      // Unacknowledged and dispatched would be pending forever; undispatched reads as abandoned.
      if (t.status === "pending" && t.dispatchedAt !== undefined) counts.orphans++;
    }
    // An accepted task (its tool call answered with a task id) missing from the history is lost.
    for (const taskId of accepted) if (!seen.has(taskId)) counts.lost++;
  }
  return counts;
};

/** Seconds until `/health` says ok again (DynamoDB Local restarted), at most 120; -1 if never. */
const recovered = async (): Promise<number> => {
  const since = Date.now();
  while (Date.now() - since < 120_000) {
    if ((await call("GET", "/health", {})).status === 200) return Math.round((Date.now() - since) / 100) / 10;
    await sleep(250);
  }
  return -1;
};

/** A conversation's history, retried while the service answers 503 (at most 20 tries). */
const readBack = async (id: string): Promise<Answer | undefined> => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const history = await call("GET", `/conversations/${id}?limit=100`, APP);
    if (history.status === 200) return history;
    await sleep(250);
  }
  return undefined;
};

const main = async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "soak-"));
  const port = await findFreePort();
  const started = Date.now();
  const service = await spawnLocalServer({
    // Manual mode: the soak plays the task runner itself, through the callback in each tool answer.
    args: ["--port", String(port), "--data-dir", join(dataDir, "data"), "--quiet", "--no-runner"],
    env: { SESSION_TTL_MS: String(TTL_MS), POWERTOOLS_LOG_LEVEL: "ERROR" },
  });
  base = service.url;
  const summary = emptySummary();
  const setupFailures: Record<string, number> = {};
  const landed: Record<string, number> = {};
  let skipped = 0;
  let next = 0;
  let running = 0;
  let timedOut = false;
  try {
    // Runs until TRIALS trials are judged: a trial whose set-up failed is not judged and is
    // replaced, up to MAX_ATTEMPTS trials in all and the time bound.
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (summary.trials + running < TRIALS && next < MAX_ATTEMPTS) {
          if (Date.now() - started > MAX_S * 1000) {
            timedOut = true;
            return;
          }
          const i = next++;
          running++;
          const record = await trial(i).finally(() => running--);
          if ("setupFailed" in record) {
            skipped++;
            setupFailures[record.setupFailed] = (setupFailures[record.setupFailed] ?? 0) + 1;
          } else {
            tally(summary, record, judge(record));
            landing(record, landed);
          }
        }
      }),
    );
    const trialsS = (Date.now() - started) / 1000;
    const faults = service.dynamoPid ? await faultCycle(service.dynamoPid) : undefined;
    const report = [
      "# Soak figures (`npm run soak`)",
      "",
      `Run ${new Date().toISOString()} on ${cpus().length} cores (load average ${loadavg()[0]?.toFixed(1)}), against a spawned \`npm start\` on 127.0.0.1 (SESSION_TTL_MS=${TTL_MS}, data on disk), ${CONCURRENCY} trials in flight.`,
      "",
      `- trials judged: ${summary.trials} of ${TRIALS}${timedOut ? ` (stopped at the ${MAX_S} s bound)` : ""}; set-up failed (not judged, replaced): ${skipped} ${JSON.stringify(setupFailures)}; ${trialsS.toFixed(0)} s`,
      `- by kind: ${JSON.stringify(summary.byKind)}`,
      `- violations: ${summary.violations}; 5xx: ${summary.fiveHundreds}; lost results: ${summary.lost}; duplicated results: ${summary.duplicated}; orphan tasks: ${summary.orphans}`,
      `- outcomes by aimed offset from the expiry (ms): ${JSON.stringify(summary.outcomes)}`,
      `- where the first callback landed, by the server's clock (its receive time minus the expiry, ms): ${fmtLanded(landed)}; aimed early by the median send-to-receive lag, last ${fmtLag()}`,
      ...(summary.examples.length > 0
        ? ["- first violations:", ...summary.examples.map((e) => `  - ${e}`)]
        : []),
      "",
      "## Fault cycle under load (DynamoDB Local frozen 6 s, resumed, then killed and restarted)",
      "",
      faults
        ? `- requests: ${faults.requests}; answers by status: ${JSON.stringify(faults.status)}; accepted tasks: ${faults.acceptedTasks}; stored tasks: ${faults.storedTasks}; stored but never acknowledged: ${faults.unacknowledged} (undispatched: they read as abandoned); accepted but not stored (lost): ${faults.lost}; histories unreadable: ${faults.unreadable}; orphan tasks (pending forever): ${faults.orphans}; /health ok again ${faults.recoveredAfterS} s after the read-back began`
        : "- skipped: DynamoDB Local's PID unknown",
      "",
    ].join("\n");
    console.log(report);
    await writeFile(resolve(import.meta.dirname, "SOAK.md"), report);
  } finally {
    await service.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
};

await main();

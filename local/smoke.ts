/**
 * `npm run smoke -- --url <ApiUrl> [--stage <stage>]`: a post-deploy (and local) check of the
 * whole path, one line per step, exit 1 at the first failure. It registers a throwaway session,
 * calls a tool, completes the task (through the callback the tool answer carries when no runner
 * is configured, else by polling get_task_result while a runner does it), reads it back, sends
 * a signed post-call test event (and checks a wrongly signed one is refused), reads the history
 * and removes its test data when the service offers `DELETE /conversations/{id}`.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { signPayload } from "../functions/core/notifier.js";
import { ApiUrlError, normalizeApiUrl, routeUrl } from "./api-url.js";
import { isParseArgsError, runIfMain } from "./cli.js";
import { localSecret } from "./local-env.js";
import { readStageSecrets, StageSecretError } from "./stage-secrets.js";

/** The secrets the smoke test presents, as the service's callers would. */
export interface SmokeSecrets {
  readonly serviceToken: string;
  readonly toolSecret: string;
  readonly webhookSecret: string;
}

export interface SmokeOptions {
  /** The service's base URL (normalized). */
  readonly url: string;
  readonly secrets: SmokeSecrets;
  /** Where step lines go. */
  readonly out: (line: string) => void;
  readonly fetchImpl?: typeof fetch;
  /** How long a task runner may take to complete the smoke task. @default 30 000 */
  readonly taskTimeoutMs?: number;
  /** @default 500 */
  readonly pollIntervalMs?: number;
  /** Per-request timeout. @default 10 000 */
  readonly requestTimeoutMs?: number;
  readonly now?: () => number;
}

/** The tool the smoke test calls: a name no real agent uses, so a runner can recognise it. */
export const SMOKE_TOOL = "smoke_check";

/** A step that did not get the expected answer: its line is the one the operator reads. */
class StepFailed extends Error {
  override readonly name = "StepFailed";
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly ms: number;
}

const shortPath = (path: string, conversationId: string) =>
  path.replace(conversationId, "…").replace(/\/tasks\/[^/]+\//, "/tasks/…/");

/** What the steps share: the run's settings, its throwaway conversation and what earlier steps learnt. */
interface SmokeRun {
  readonly options: SmokeOptions;
  readonly now: () => number;
  readonly conversationId: string;
  readonly request: (
    method: string,
    target: string,
    headers: Record<string, string>,
    body?: string,
  ) => Promise<Answer>;
  readonly app: Record<string, string>;
  readonly tool: Record<string, string>;
  taskId: string;
  /** The callback the tool answer carried (no runner configured). */
  callback?: { url: string; token: string };
  /** The tool answer already carried the result (a runner finished within the inline wait). */
  completedInline: boolean;
}

interface Step {
  readonly name: string;
  readonly label: (run: SmokeRun) => string;
  /** Whether the step applies to this run. @default always */
  readonly when?: (run: SmokeRun) => boolean;
  readonly act: (run: SmokeRun) => Promise<{ answer?: Answer; note: string }>;
}

/** The status and, for an error body, its code and message: what the operator needs to see. */
const unexpected = (answer: Answer, wanted: string): StepFailed => {
  const { error, message, status } = answer.body;
  const detail = [error ?? status, message].filter((p) => typeof p === "string").join(": ");
  return new StepFailed(`HTTP ${answer.status}${detail ? ` ${detail}` : ""} (expected ${wanted})`);
};

/** One HTTP request with a timeout, answered as status, JSON body (or its first bytes) and ms. */
const makeRequest =
  (options: SmokeOptions) =>
  async (method: string, target: string, headers: Record<string, string>, body?: string): Promise<Answer> => {
    const fetchImpl = options.fetchImpl ?? fetch;
    const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    const url = target.startsWith("http") ? target : routeUrl(options.url, target);
    const t0 = performance.now();
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method,
        headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(requestTimeoutMs),
        redirect: "error",
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason =
        (error as Error).name === "TimeoutError"
          ? `no answer within ${requestTimeoutMs} ms`
          : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new StepFailed(`${method} ${new URL(url).host}: ${reason}`);
    }
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      const value: unknown = text ? JSON.parse(text) : {};
      if (value && typeof value === "object" && !Array.isArray(value))
        parsed = value as Record<string, unknown>;
    } catch {
      parsed = { raw: text.slice(0, 120) };
    }
    return { status: response.status, body: parsed, ms: Math.round(performance.now() - t0) };
  };

const sessionPath = (run: SmokeRun) => `/conversations/${run.conversationId}/session`;
const resultPath = (run: SmokeRun) => `/conversations/${run.conversationId}/tasks/${run.taskId}/result`;
const historyPath = (run: SmokeRun) => `/conversations/${run.conversationId}`;
const pollBody = (run: SmokeRun) =>
  JSON.stringify({ conversation_id: run.conversationId, task_id: run.taskId });
const WEBHOOK_PATH = "/webhooks/elevenlabs/post-call";

/** A post-call transcription for the throwaway conversation, and its signature with a secret. */
const testEvent = (run: SmokeRun) => {
  const nowSecs = Math.floor(run.now() / 1000);
  const event = JSON.stringify({
    type: "post_call_transcription",
    event_timestamp: nowSecs,
    data: {
      agent_id: "smoke",
      conversation_id: run.conversationId,
      status: "done",
      transcript: [
        { role: "agent", message: "Smoke test.", time_in_call_secs: 0 },
        { role: "user", message: "Smoke test reply.", time_in_call_secs: 1 },
      ],
      metadata: { start_time_unix_secs: nowSecs, call_duration_secs: 2 },
      analysis: { call_successful: "success", transcript_summary: "Smoke test." },
    },
  });
  const sign = (secret: string) => signPayload(secret, event, nowSecs);
  return { event, sign };
};

const registerSession: Step = {
  name: "register session",
  label: (run) => `POST ${shortPath(sessionPath(run), run.conversationId)}`,
  act: async (run) => {
    const body = JSON.stringify({ agentId: "smoke", metadata: { smoke: true } });
    const answer = await run.request("POST", sessionPath(run), run.app, body);
    if (answer.status !== 201) throw unexpected(answer, "201");
    return { answer, note: `expires ${String(answer.body.expiresAt)}` };
  },
};

const readSession: Step = {
  name: "read session",
  label: (run) => `GET  ${shortPath(sessionPath(run), run.conversationId)}`,
  act: async (run) => {
    const answer = await run.request("GET", sessionPath(run), run.app);
    if (answer.status !== 200 || answer.body.status !== "active") throw unexpected(answer, "200 active");
    return { answer, note: `active, ${String(answer.body.remainingMs)} ms left` };
  },
};

const callTool: Step = {
  name: "tool call",
  label: () => `POST /tools/${SMOKE_TOOL}`,
  act: async (run) => {
    const body = JSON.stringify({ conversation_id: run.conversationId, probe: "smoke" });
    const answer = await run.request("POST", `/tools/${SMOKE_TOOL}`, run.tool, body);
    if (answer.status !== 200 || (answer.body.status !== "accepted" && answer.body.status !== "completed"))
      throw unexpected(answer, "200 accepted or completed");
    run.taskId = String(answer.body.taskId);
    run.completedInline = answer.body.status === "completed";
    const { callbackUrl, callbackToken } = answer.body;
    if (typeof callbackUrl === "string" && typeof callbackToken === "string")
      run.callback = { url: callbackUrl, token: callbackToken };
    const how = run.completedInline
      ? "the runner finished it within the inline wait"
      : run.callback
        ? "callback in the answer (no runner)"
        : "dispatched to the runner";
    return { answer, note: `task ${run.taskId.slice(0, 8)}…, ${how}` };
  },
};

const taskCallback: Step = {
  name: "task callback",
  label: (run) => `POST ${shortPath(resultPath(run), run.conversationId)}`,
  when: (run) => run.callback !== undefined,
  act: async (run) => {
    const target = run.callback as { url: string; token: string };
    if (!target.url.endsWith(resultPath(run)))
      throw new StepFailed(`the tool answer's callbackUrl ${target.url} is not this task's result route`);
    const body = JSON.stringify({ status: "succeeded", result: { smoke: "ok" } });
    const answer = await run.request("POST", target.url, { authorization: `Bearer ${target.token}` }, body);
    if (answer.status !== 200 || answer.body.outcome !== "delivered")
      throw unexpected(answer, "200 delivered");
    return { answer, note: "delivered to the live session" };
  },
};

const taskByRunner: Step = {
  name: "task by the runner",
  label: () => "POST /tools/get_task_result (polling)",
  when: (run) => run.callback === undefined && !run.completedInline,
  act: async (run) => {
    const taskTimeoutMs = run.options.taskTimeoutMs ?? 30_000;
    const deadline = run.now() + taskTimeoutMs;
    for (;;) {
      const answer = await run.request("POST", "/tools/get_task_result", run.tool, pollBody(run));
      if (answer.status !== 200 || answer.body.status !== "active") throw unexpected(answer, "200 active");
      const task = (answer.body.tasks as { status?: string }[] | undefined)?.[0];
      if (task?.status === "completed") return { answer, note: "the runner completed the task" };
      if (run.now() >= deadline)
        throw new StepFailed(
          `the task is still ${task?.status ?? "missing"} after ${taskTimeoutMs} ms: is a task runner consuming the task queue?`,
        );
      await new Promise((wake) => setTimeout(wake, run.options.pollIntervalMs ?? 500));
    }
  },
};

const agentReadsResult: Step = {
  name: "agent reads result",
  label: () => "POST /tools/get_task_result",
  act: async (run) => {
    const answer = await run.request("POST", "/tools/get_task_result", run.tool, pollBody(run));
    const tasks = answer.body.tasks as { taskId?: string; status?: string }[] | undefined;
    const task = tasks?.find((t) => t.taskId === run.taskId);
    if (answer.status !== 200 || task?.status !== "completed")
      throw unexpected(answer, "200, task completed");
    return { answer, note: String(answer.body.message ?? "completed") };
  },
};

const unsignedWebhook: Step = {
  name: "unsigned webhook",
  label: () => `POST ${WEBHOOK_PATH}`,
  act: async (run) => {
    const { event, sign } = testEvent(run);
    const answer = await run.request(
      "POST",
      WEBHOOK_PATH,
      { "elevenlabs-signature": sign("not-the-secret") },
      event,
    );
    if (answer.status !== 401) throw unexpected(answer, "401: a wrong signature must be refused");
    return { answer, note: "a wrong signature is refused" };
  },
};

const signedWebhook: Step = {
  name: "signed webhook",
  label: () => `POST ${WEBHOOK_PATH}`,
  act: async (run) => {
    const { event, sign } = testEvent(run);
    const headers = { "elevenlabs-signature": sign(run.options.secrets.webhookSecret) };
    const answer = await run.request("POST", WEBHOOK_PATH, headers, event);
    if (answer.status !== 200 || answer.body.status !== "stored")
      throw unexpected(answer, "200 stored (is the webhook secret the one ElevenLabs signs with?)");
    return { answer, note: "signature accepted, transcript stored" };
  },
};

const readHistory: Step = {
  name: "read history",
  label: (run) => `GET  ${shortPath(historyPath(run), run.conversationId)}`,
  act: async (run) => {
    const answer = await run.request("GET", historyPath(run), run.app);
    const tasks = answer.body.tasks as { taskId?: string; status?: string }[] | undefined;
    const messages = answer.body.messages as { kind?: string }[] | undefined;
    const transcript = messages?.filter((m) => m.kind === "transcript").length ?? 0;
    if (
      answer.status !== 200 ||
      !tasks?.some((t) => t.taskId === run.taskId && t.status === "completed") ||
      transcript < 2
    )
      throw unexpected(answer, "200 with the completed task and 2 transcript lines");
    return { answer, note: `${messages?.length ?? 0} messages, ${tasks.length} task(s)` };
  },
};

const removeTestData: Step = {
  name: "remove test data",
  label: (run) => `DELETE ${shortPath(historyPath(run), run.conversationId)}`,
  act: async (run) => {
    const answer = await run.request("DELETE", historyPath(run), run.app);
    // Services without the erasure route answer 404 (API Gateway) or 405 (local server).
    if (answer.status === 404 || answer.status === 405)
      return {
        answer,
        note: `left in place: this service has no DELETE /conversations/{id}; ${run.conversationId} stays in the history`,
      };
    if (answer.status !== 200 && answer.status !== 204)
      throw unexpected(answer, "200/204, or 404/405 without erasure");
    return { answer, note: "conversation, tasks and session removed" };
  },
};

/** The smoke test, in order: a short table a reader can follow. */
const STEPS: readonly Step[] = [
  registerSession,
  readSession,
  callTool,
  taskCallback,
  taskByRunner,
  agentReadsResult,
  unsignedWebhook,
  signedWebhook,
  readHistory,
  removeTestData,
];

/** Runs every step; returns the exit code (0: all passed). */
export const runSmoke = async (options: SmokeOptions): Promise<number> => {
  const now = options.now ?? Date.now;
  const started = now();
  const stamp = new Date(started).toISOString().replace(/[-:]/g, "").slice(0, 15);
  const run: SmokeRun = {
    options,
    now,
    conversationId: `smoke-${stamp}-${randomBytes(3).toString("hex")}`,
    request: makeRequest(options),
    app: { authorization: `Bearer ${options.secrets.serviceToken}` },
    tool: { "x-tool-secret": options.secrets.toolSecret },
    taskId: "",
    completedInline: false,
  };
  options.out(`Smoke test of ${options.url} with the throwaway conversation ${run.conversationId}`);
  let step = 0;
  for (const { name, label, when, act } of STEPS) {
    if (when && !when(run)) continue;
    step += 1;
    // One line per step: ✓ with its note, or ✗ with why, and the run stops there.
    const head = `${String(step).padStart(2)} ${name.padEnd(20)} ${label(run).padEnd(44)}`;
    try {
      const { answer, note } = await act(run);
      options.out(`✓ ${head} ${answer ? `${answer.status} ${`${answer.ms} ms`.padStart(7)}  ` : ""}${note}`);
    } catch (error) {
      const why = error instanceof StepFailed ? error.message : `unexpected error: ${String(error)}`;
      options.out(`✗ ${head} ${why}`);
      return 1;
    }
  }
  options.out(`✓ Smoke test passed in ${((now() - started) / 1000).toFixed(1)} s: ${step} steps.`);
  return 0;
};

/** The CLI: `--url`, `--stage`, `--region`, `--task-timeout-ms`. Returns the exit code. */
export const runSmokeCli = async (
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> => {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: "string" },
        stage: { type: "string" },
        region: { type: "string" },
        "task-timeout-ms": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    const url = normalizeApiUrl(values.url ?? "");
    const timeoutText = values["task-timeout-ms"] ?? "30000";
    if (!/^\d{1,7}$/.test(timeoutText))
      throw new ApiUrlError(`--task-timeout-ms must be a whole number of ms, not "${timeoutText}".`);
    const secrets: SmokeSecrets = values.stage
      ? await readStageSecrets(
          values.stage,
          ["service-token", "tool-secret", "webhook-secret"],
          values.region,
        ).then((s) => ({
          serviceToken: s["service-token"],
          toolSecret: s["tool-secret"],
          webhookSecret: s["webhook-secret"],
        }))
      : {
          serviceToken: localSecret("SERVICE_TOKEN", env),
          toolSecret: localSecret("TOOL_SECRET", env),
          webhookSecret: localSecret("WEBHOOK_SECRET", env),
        };
    return await runSmoke({ url, secrets, out: io.out, taskTimeoutMs: Number(timeoutText) });
  } catch (error) {
    const known =
      error instanceof ApiUrlError || error instanceof StageSecretError || isParseArgsError(error);
    io.err(`npm run smoke: ${known ? (error as Error).message : `failed: ${String(error)}`}`);
    return 1;
  }
};

runIfMain(import.meta.url, runSmokeCli);

/**
 * `npm run smoke -- --url <ApiUrl> [--stage <stage>]`: a post-deploy (and local) check of the
 * whole path, one line per step, exit 1 at the first failure. It registers a throwaway session,
 * calls a tool, completes the task (through the callback the tool answer carries when no runner
 * is configured, else by polling get_task_result while a runner does it), reads it back, sends
 * a signed post-call test event (and checks a wrongly signed one is refused), reads the history
 * and removes its test data when the service offers `DELETE /conversations/{id}`.
 */
import { createHmac, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
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

/** Runs every step; returns the exit code (0: all passed). */
export const runSmoke = async (options: SmokeOptions): Promise<number> => {
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  const taskTimeoutMs = options.taskTimeoutMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const { secrets } = options;
  const started = now();
  const stamp = new Date(started).toISOString().replace(/[-:]/g, "").slice(0, 15);
  const conversationId = `smoke-${stamp}-${randomBytes(3).toString("hex")}`;
  let step = 0;

  const request = async (method: string, target: string, headers: Record<string, string>, body?: string) => {
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
    return { status: response.status, body: parsed, ms: Math.round(performance.now() - t0) } satisfies Answer;
  };

  /** One step: runs `act`, prints ✓ with its note, or ✗ with why, and stops the run. */
  const run = async (name: string, label: string, act: () => Promise<{ answer?: Answer; note: string }>) => {
    step += 1;
    const head = `${String(step).padStart(2)} ${name.padEnd(20)} ${label.padEnd(44)}`;
    try {
      const { answer, note } = await act();
      options.out(`✓ ${head} ${answer ? `${answer.status} ${`${answer.ms} ms`.padStart(7)}  ` : ""}${note}`);
    } catch (error) {
      const why = error instanceof StepFailed ? error.message : `unexpected error: ${String(error)}`;
      options.out(`✗ ${head} ${why}`);
      throw new StepFailed(why);
    }
  };

  /** The status and, for an error body, its code and message: what the operator needs to see. */
  const unexpected = (answer: Answer, wanted: string): StepFailed => {
    const { error, message, status } = answer.body;
    const detail = [error ?? status, message].filter((p) => typeof p === "string").join(": ");
    return new StepFailed(`HTTP ${answer.status}${detail ? ` ${detail}` : ""} (expected ${wanted})`);
  };

  const app = { authorization: `Bearer ${secrets.serviceToken}` };
  const tool = { "x-tool-secret": secrets.toolSecret };
  const sessionPath = `/conversations/${conversationId}/session`;
  let taskId = "";
  let callback: { url: string; token: string } | undefined;

  try {
    options.out(`Smoke test of ${options.url} with the throwaway conversation ${conversationId}`);
    await run("register session", `POST ${shortPath(sessionPath, conversationId)}`, async () => {
      const answer = await request(
        "POST",
        sessionPath,
        app,
        JSON.stringify({ agentId: "smoke", metadata: { smoke: true } }),
      );
      if (answer.status !== 201) throw unexpected(answer, "201");
      return { answer, note: `expires ${String(answer.body.expiresAt)}` };
    });
    await run("read session", `GET  ${shortPath(sessionPath, conversationId)}`, async () => {
      const answer = await request("GET", sessionPath, app);
      if (answer.status !== 200 || answer.body.status !== "active") throw unexpected(answer, "200 active");
      return { answer, note: `active, ${String(answer.body.remainingMs)} ms left` };
    });
    await run("tool call", `POST /tools/${SMOKE_TOOL}`, async () => {
      const answer = await request(
        "POST",
        `/tools/${SMOKE_TOOL}`,
        tool,
        JSON.stringify({ conversation_id: conversationId, probe: "smoke" }),
      );
      if (answer.status !== 200 || answer.body.status !== "accepted")
        throw unexpected(answer, "200 accepted");
      taskId = String(answer.body.taskId);
      const { callbackUrl, callbackToken } = answer.body;
      if (typeof callbackUrl === "string" && typeof callbackToken === "string")
        callback = { url: callbackUrl, token: callbackToken };
      return {
        answer,
        note: `task ${taskId.slice(0, 8)}…, ${callback ? "callback in the answer (no runner)" : "dispatched to the runner"}`,
      };
    });
    const resultPath = `/conversations/${conversationId}/tasks/${taskId}/result`;
    const pollBody = JSON.stringify({ conversation_id: conversationId, task_id: taskId });
    if (callback) {
      const target = callback;
      await run("task callback", `POST ${shortPath(resultPath, conversationId)}`, async () => {
        if (!target.url.endsWith(resultPath))
          throw new StepFailed(`the tool answer's callbackUrl ${target.url} is not this task's result route`);
        const answer = await request(
          "POST",
          target.url,
          { authorization: `Bearer ${target.token}` },
          JSON.stringify({ status: "succeeded", result: { smoke: "ok" } }),
        );
        if (answer.status !== 200 || answer.body.outcome !== "delivered")
          throw unexpected(answer, "200 delivered");
        return { answer, note: "delivered to the live session" };
      });
    } else {
      await run("task by the runner", "POST /tools/get_task_result (polling)", async () => {
        const deadline = now() + taskTimeoutMs;
        for (;;) {
          const answer = await request("POST", "/tools/get_task_result", tool, pollBody);
          if (answer.status !== 200 || answer.body.status !== "active")
            throw unexpected(answer, "200 active");
          const task = (answer.body.tasks as { status?: string }[] | undefined)?.[0];
          if (task?.status === "completed") return { answer, note: "the runner completed the task" };
          if (now() >= deadline)
            throw new StepFailed(
              `the task is still ${task?.status ?? "missing"} after ${taskTimeoutMs} ms: is a task runner consuming the task queue?`,
            );
          await new Promise((wake) => setTimeout(wake, pollIntervalMs));
        }
      });
    }
    await run("agent reads result", "POST /tools/get_task_result", async () => {
      const answer = await request("POST", "/tools/get_task_result", tool, pollBody);
      const tasks = answer.body.tasks as { taskId?: string; status?: string }[] | undefined;
      const task = tasks?.find((t) => t.taskId === taskId);
      if (answer.status !== 200 || task?.status !== "completed")
        throw unexpected(answer, "200, task completed");
      return { answer, note: String(answer.body.message ?? "completed") };
    });

    const nowSecs = Math.floor(now() / 1000);
    const event = JSON.stringify({
      type: "post_call_transcription",
      event_timestamp: nowSecs,
      data: {
        agent_id: "smoke",
        conversation_id: conversationId,
        status: "done",
        transcript: [
          { role: "agent", message: "Smoke test.", time_in_call_secs: 0 },
          { role: "user", message: "Smoke test reply.", time_in_call_secs: 1 },
        ],
        metadata: { start_time_unix_secs: nowSecs, call_duration_secs: 2 },
        analysis: { call_successful: "success", transcript_summary: "Smoke test." },
      },
    });
    const sign = (secret: string) =>
      `t=${nowSecs},v0=${createHmac("sha256", secret).update(`${nowSecs}.${event}`).digest("hex")}`;
    const webhookPath = "/webhooks/elevenlabs/post-call";
    await run("unsigned webhook", `POST ${webhookPath}`, async () => {
      const answer = await request(
        "POST",
        webhookPath,
        { "elevenlabs-signature": sign("not-the-secret") },
        event,
      );
      if (answer.status !== 401) throw unexpected(answer, "401: a wrong signature must be refused");
      return { answer, note: "a wrong signature is refused" };
    });
    await run("signed webhook", `POST ${webhookPath}`, async () => {
      const answer = await request(
        "POST",
        webhookPath,
        { "elevenlabs-signature": sign(secrets.webhookSecret) },
        event,
      );
      if (answer.status !== 200 || answer.body.status !== "stored")
        throw unexpected(answer, "200 stored (is the webhook secret the one ElevenLabs signs with?)");
      return { answer, note: "signature accepted, transcript stored" };
    });
    const historyPath = `/conversations/${conversationId}`;
    await run("read history", `GET  ${shortPath(historyPath, conversationId)}`, async () => {
      const answer = await request("GET", historyPath, app);
      const tasks = answer.body.tasks as { taskId?: string; status?: string }[] | undefined;
      const messages = answer.body.messages as { kind?: string }[] | undefined;
      const transcript = messages?.filter((m) => m.kind === "transcript").length ?? 0;
      if (
        answer.status !== 200 ||
        !tasks?.some((t) => t.taskId === taskId && t.status === "completed") ||
        transcript < 2
      )
        throw unexpected(answer, "200 with the completed task and 2 transcript lines");
      return { answer, note: `${messages?.length ?? 0} messages, ${tasks.length} task(s)` };
    });
    await run("remove test data", `DELETE ${shortPath(historyPath, conversationId)}`, async () => {
      const answer = await request("DELETE", historyPath, app);
      // Services without the erasure route answer 404 (API Gateway) or 405 (local server).
      if (answer.status === 404 || answer.status === 405)
        return {
          answer,
          note: `left in place: this service has no DELETE /conversations/{id}; ${conversationId} stays in the history`,
        };
      if (answer.status !== 200 && answer.status !== 204)
        throw unexpected(answer, "200/204, or 404/405 without erasure");
      return { answer, note: "conversation, tasks and session removed" };
    });
  } catch (error) {
    if (error instanceof StepFailed) return 1;
    throw error;
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

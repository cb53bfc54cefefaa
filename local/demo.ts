/**
 * `npm run demo`: plays one whole conversation against the running local service, as the app,
 * ElevenLabs and a task runner would, and prints one line per step. The session expires in the
 * middle on purpose: a late result, a tool call after the expiry and the post-call webhook show
 * that expiry is an ordinary outcome and that the history keeps everything.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { TOOL_SECRET_HEADER } from "../functions/core/auth.js";
import { NOTIFY_SIGNATURE_HEADER } from "../functions/core/notifier.js";
import { SIGNATURE_HEADER } from "../functions/core/webhook-signature.js";
import { type LocalHealth, localSecret } from "./local-env.js";

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Base URL of the running service. @default http://127.0.0.1:3000 */
  readonly url?: string;
  /** Wait for the expiry even when sessions last longer than a minute. @default false */
  readonly wait?: boolean;
  /** Where the secrets come from (the same variables as the service). @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Every request gives up after this long, so the demo never hangs. @default 10 000 */
  readonly requestTimeoutMs?: number;
  /** Receives each line of the run. @default console.log */
  readonly print?: (line: string) => void;
  /** Receives the one line that explains why the demo cannot run. @default print */
  readonly printProblem?: (line: string) => void;
}

/** What one step did: printed as one row, returned for tests. */
export interface DemoStep {
  /** 0 (health) to 12; the check of the live push shares step 5's number. */
  readonly number: number;
  readonly title: string;
  /** e.g. `POST /conversations/…/session`; absent for the wait. */
  readonly request?: string;
  /** The HTTP status; absent when nothing answered (and for the wait). */
  readonly status?: number;
  /** What came back, in a word or two: `delivered`, `session_expired`... */
  readonly outcome: string;
  /** What the step should get, e.g. `200 delivered`. */
  readonly expected: string;
  readonly ok: boolean;
  readonly ms: number;
}

/** What a run did. Exit code 0: every step as expected; 1: a step differed or no service; 2: unsuitable service. */
export interface DemoResult {
  readonly exitCode: 0 | 1 | 2;
  readonly conversationId?: string;
  readonly steps: readonly DemoStep[];
  readonly totalMs: number;
}

export const DEFAULT_DEMO_URL = "http://127.0.0.1:3000";

/** Above this the demo does not wait for the expiry unless told to (`--wait`). */
const MAX_UNASKED_WAIT_MS = 60_000;
/** How long after `expiresAt` the demo checks the expiry (the service's clock is this machine's). */
const EXPIRY_MARGIN_MS = 50;
/** A service still starting (DynamoDB Local boots after the port is bound) gets this long. */
const STARTING_GRACE_MS = 60_000;
/** The service pushes with a 2 s timeout (NOTIFY_TIMEOUT_MS); the push is done before it answers. */
const PUSH_WAIT_MS = 3_000;

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/** An answer, or why there was none. */
interface Reply {
  /** Absent when nothing answered. */
  readonly status?: number;
  readonly body: Record<string, unknown>;
  readonly ms: number;
  /** Why nothing answered: `connection refused`, `no answer within 10000 ms`... */
  readonly failure?: string;
}

interface Call {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** An object is sent as JSON; a string is sent as is (the exact bytes a signature covers). */
  readonly body?: unknown;
}

const send = async (base: string, call: Call, timeoutMs: number): Promise<Reply> => {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(`${base}${call.path}`, {
      method: call.method,
      headers: {
        ...(call.body !== undefined ? { "content-type": "application/json" } : {}),
        ...call.headers,
      },
      ...(call.body !== undefined
        ? { body: typeof call.body === "string" ? call.body : JSON.stringify(call.body) }
        : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, body: parseObject(text), ms: elapsed() };
  } catch (error) {
    return { body: {}, ms: elapsed(), failure: whyNoAnswer(error, timeoutMs) };
  }
};

const parseObject = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
};

const whyNoAnswer = (error: unknown, timeoutMs: number): string => {
  if (error instanceof Error && error.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  // fetch reports a refused connection as TypeError("fetch failed") with the socket error as cause.
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (cause?.code === "ECONNREFUSED") return "connection refused";
  if (cause?.code) return cause.code;
  return error instanceof Error ? error.message : String(error);
};

// ---------------------------------------------------------------------------------------------
// The app's notify receiver: where the service pushes live results
// ---------------------------------------------------------------------------------------------

/** A push the receiver got. */
interface Push {
  /** `performance.now()` when it arrived. */
  readonly arrivedAt: number;
  /** The receiver's answer: 204 verified, 401 not. */
  readonly status: number;
  /** Why the signature did not verify; absent when it did. */
  readonly problem?: string;
  readonly body: Record<string, unknown>;
}

interface NotifyReceiver {
  readonly url: string;
  /** The first push for this task, or undefined once `timeoutMs` passed without one. */
  waitFor(taskId: string, timeoutMs: number): Promise<Push | undefined>;
  close(): Promise<void>;
}

/**
 * Verifies `x-signature: t=<unix secs>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` as an app
 * would: written out here rather than imported, so the demo also checks the service's signing.
 */
export const verifyPushSignature = (
  rawBody: Buffer,
  header: string | undefined,
  secret: string,
  nowMs: number,
): string | undefined => {
  if (!header) return `no ${NOTIFY_SIGNATURE_HEADER} header`;
  const parts = header.split(",");
  const t = parts.find((p) => p.startsWith("t="))?.slice(2) ?? "";
  const v0 = parts.find((p) => p.startsWith("v0="))?.slice(3) ?? "";
  if (!/^\d{1,12}$/.test(t) || !/^[0-9a-f]{64}$/.test(v0))
    return `malformed ${NOTIFY_SIGNATURE_HEADER} header`;
  // Like the webhook's check: a replayed push older than 5 minutes is refused.
  if (Math.abs(nowMs - Number(t) * 1000) > 5 * 60_000) return "signature timestamp too far from now";
  const expected = createHmac("sha256", secret).update(`${t}.`).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(v0, "hex"))
    ? undefined
    : "signature does not match (is NOTIFY_SIGNING_SECRET the same for the service and the demo?)";
};

const startReceiver = async (secret: string): Promise<NotifyReceiver> => {
  const pushes: Push[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const header = req.headers[NOTIFY_SIGNATURE_HEADER];
      const problem = verifyPushSignature(
        raw,
        Array.isArray(header) ? header[0] : header,
        secret,
        Date.now(),
      );
      const status = problem ? 401 : 204;
      pushes.push({
        arrivedAt: performance.now(),
        status,
        body: parseObject(raw.toString("utf8")),
        ...(problem ? { problem } : {}),
      });
      res.writeHead(status).end();
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notify`,
    waitFor: (taskId, timeoutMs) =>
      new Promise((done) => {
        const find = () => pushes.find((p) => p.body.taskId === taskId);
        const check = () => {
          const push = find();
          if (!push) return;
          clearTimeout(timer);
          waiters.delete(check);
          done(push);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          done(find());
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
};

// ---------------------------------------------------------------------------------------------
// Output: one aligned row per step
// ---------------------------------------------------------------------------------------------

const TITLE_WIDTH = 20;
const REQUEST_WIDTH = 38;
const OUTCOME_WIDTH = 18;

const row = (
  mark: string,
  number: number | undefined,
  title: string,
  request: string,
  result: string,
  ms: number | undefined,
  detail: string,
): string =>
  [
    mark,
    (number === undefined ? "" : String(number)).padStart(2),
    title.padEnd(TITLE_WIDTH),
    request.padEnd(REQUEST_WIDTH),
    result.padEnd(3 + 1 + OUTCOME_WIDTH),
    (ms === undefined ? "" : `${ms} ms`).padStart(7),
    ` ${detail}`,
  ]
    .join(" ")
    .trimEnd();

/** `12:00:05.123Z`: the demo runs for seconds, so the date is noise. */
const clock = (at: number | string | undefined): string => {
  const ms = typeof at === "string" ? Date.parse(at) : (at ?? Number.NaN);
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().slice(11, 23)}Z` : "?";
};

const duration = (ms: number): string =>
  ms < 120_000 ? `${ms} ms` : `${ms} ms (about ${Math.round(ms / 60_000)} min)`;

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`;

const compactJson = (value: unknown, max = 70): string => {
  const text = JSON.stringify(value) ?? "null";
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);
const records = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value) ? value.filter(isRecord) : [];

/**
 * What a task produced, as a person reads it: the service stores the runner's whole answer
 * (`{status, result}` or `{status: "failed", error}`), so the envelope is unwrapped here.
 */
const taskOutput = (stored: unknown, max: number): string => {
  if (!isRecord(stored)) return compactJson(stored, max);
  if (stored.status === "failed") return `failed: ${str(stored.error) ?? "no reason given"}`;
  return compactJson("result" in stored ? stored.result : stored, max);
};

/** The word an answer carries: `outcome` (callbacks), `status` (tools, webhook) or `error`. */
const wordOf = (body: Record<string, unknown>): string =>
  str(body.outcome) ?? str(body.error) ?? str(body.status) ?? "unexpected answer";

// ---------------------------------------------------------------------------------------------
// The conversation
// ---------------------------------------------------------------------------------------------

/** `demo-20250601T120000-3fa2`: sorts by time in the conversation list, unique per run. */
const newConversationId = (now: Date): string =>
  `demo-${now.toISOString().replace(/[-:]/g, "").slice(0, 15)}-${randomBytes(2).toString("hex")}`;

const isLocalHealth = (body: Record<string, unknown>): body is Record<string, unknown> & LocalHealth =>
  typeof body.sessionTtlMs === "number" && typeof body.callbackInToolResponse === "boolean";

/** `SESSION_TTL_MS=5000 npm start`, with the port when it is not the default. */
const startCommand = (base: string): string => {
  const port = URL.canParse(base) ? new URL(base).port : "";
  return `SESSION_TTL_MS=5000 npm start -- --no-runner${port && port !== "3000" ? ` --port ${port}` : ""}`;
};
/** `npm run demo`, with the URL when it is not the default and any extra flags. */
const demoCommand = (base: string, ...flags: string[]): string => {
  const args = [...(base === DEFAULT_DEMO_URL ? [] : ["--url", base]), ...flags];
  return args.length > 0 ? `npm run demo -- ${args.join(" ")}` : "npm run demo";
};

/** One transcript line as ElevenLabs sends it in `post_call_transcription`. */
const transcriptLine = (role: "agent" | "user", message: string, atMs: number, startMs: number) => ({
  role,
  message,
  // ElevenLabs counts whole seconds; this demo's call lasts a few, so ms precision keeps the order.
  time_in_call_secs: (atMs - startMs) / 1000,
  tool_calls: [],
  tool_results: [],
  feedback: null,
  interrupted: false,
});

/**
 * Plays the conversation and reports every step. Stops at the first step that differs from
 * what the service should answer (later steps build on it), and closes its receiver in any case.
 */
export const runDemo = async (options: DemoOptions = {}): Promise<DemoResult> => {
  const print = options.print ?? ((line: string) => console.log(line));
  const printProblem = options.printProblem ?? print;
  const base = (options.url ?? DEFAULT_DEMO_URL).replace(/\/+$/, "");
  const env = options.env ?? process.env;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const started = performance.now();
  const steps: DemoStep[] = [];
  const totalMs = () => Math.round(performance.now() - started);
  const request = (call: Call) => send(base, call, timeoutMs);

  // --- Step 0: is the local service there, and can it play this demo? ---
  let health = await request({ method: "GET", path: "/health" });
  const graceEnd = performance.now() + STARTING_GRACE_MS;
  let saidStarting = false;
  while (health.status === 503 && health.body.status === "starting" && performance.now() < graceEnd) {
    if (!saidStarting) print(`The service at ${base} is still starting; waiting for it...`);
    saidStarting = true;
    await sleep(500);
    health = await request({ method: "GET", path: "/health" });
  }
  if (health.status === undefined) {
    printProblem(
      `No service answers at ${base}: start it in another terminal with ${startCommand(base)}, then run ${demoCommand(base)} again.`,
    );
    return { exitCode: 1, steps, totalMs: totalMs() };
  }
  if (health.status !== 200 || !isLocalHealth(health.body)) {
    printProblem(
      `${base} answers GET /health with ${health.status} ${wordOf(health.body)}, not as the local service does: the demo needs ${startCommand(base)}.`,
    );
    return { exitCode: 1, steps, totalMs: totalMs() };
  }
  const ttlMs = health.body.sessionTtlMs;
  if (!health.body.callbackInToolResponse) {
    printProblem(
      `The service at ${base} hands tasks to a runner (the in-process example runner, or RUNNER_URL), so its tool answers carry no callbackUrl/callbackToken and the demo cannot play the task runner: restart it in manual mode (${startCommand(base)}).`,
    );
    return { exitCode: 2, steps, totalMs: totalMs() };
  }
  if (ttlMs > MAX_UNASKED_WAIT_MS && !options.wait) {
    printProblem(
      `The service's sessions last ${ttlMs} ms (SESSION_TTL_MS), so the demo would wait ${duration(ttlMs)} for the expiry: restart it with ${startCommand(base)}, or run ${demoCommand(base, "--wait")} to wait that long.`,
    );
    return { exitCode: 2, steps, totalMs: totalMs() };
  }
  steps.push({
    number: 0,
    title: "health",
    request: "GET  /health",
    status: 200,
    outcome: "ok",
    expected: "200 ok",
    ok: true,
    ms: health.ms,
  });
  print(
    row(
      "✓",
      0,
      "health",
      "GET  /health",
      "200 ok",
      health.ms,
      `sessions last ${ttlMs} ms (SESSION_TTL_MS); tool answers carry the callback`,
    ),
  );

  const conversationId = newConversationId(new Date());
  const receiver = await startReceiver(localSecret("NOTIFY_SIGNING_SECRET", env));
  print(`   conversation ${conversationId}; the app's live pushes go to ${receiver.url}`);
  try {
    const ok = await playConversation({
      conversationId,
      ttlMs,
      env,
      receiver,
      request,
      print,
      steps,
    });
    const numbered = new Set(steps.filter((s) => s.number > 0).map((s) => s.number)).size;
    if (ok) {
      print(`✓ Done in ${(totalMs() / 1000).toFixed(1)} s: all ${numbered} steps as expected.`);
      return { exitCode: 0, conversationId, steps, totalMs: totalMs() };
    }
    const failed = steps.find((s) => !s.ok);
    const asExpected = new Set(steps.filter((s) => s.number > 0 && s.ok).map((s) => s.number));
    if (failed) asExpected.delete(failed.number);
    print(
      `✗ Step ${failed?.number ?? "?"} (${failed?.title ?? "?"}) did not go as expected, after ${(totalMs() / 1000).toFixed(1)} s; the ${asExpected.size} steps before it did.`,
    );
    return { exitCode: 1, conversationId, steps, totalMs: totalMs() };
  } finally {
    await receiver.close();
  }
};

interface Play {
  readonly conversationId: string;
  readonly ttlMs: number;
  readonly env: NodeJS.ProcessEnv;
  readonly receiver: NotifyReceiver;
  readonly request: (call: Call) => Promise<Reply>;
  readonly print: (line: string) => void;
  readonly steps: DemoStep[];
}

interface StepSpec extends Call {
  readonly number: number;
  readonly title: string;
  /** The path as printed: ids shortened to `…`. */
  readonly shown: string;
  readonly expect: { readonly status: number; readonly outcome: string };
  /** The outcome word of an answer; only an answer with every field the demo needs gets the expected one. */
  readonly outcomeOf?: (body: Record<string, unknown>) => string;
  /** The rest of the row when the step went as expected. */
  readonly detail: (body: Record<string, unknown>) => string;
}

/** Steps 1 to 12. Returns false at the first step that differs (already printed). */
const playConversation = async (play: Play): Promise<boolean> => {
  const { conversationId, receiver, print, steps } = play;
  const service = { authorization: `Bearer ${localSecret("SERVICE_TOKEN", play.env)}` };
  const tool = { [TOOL_SECRET_HEADER]: localSecret("TOOL_SECRET", play.env) };
  const sessionPath = `/conversations/${conversationId}/session`;

  /** Sends a step's request, prints its row (and why, when it differs); the body when as expected. */
  const step = async (spec: StepSpec): Promise<Record<string, unknown> | undefined> => {
    const reply = await play.request(spec);
    const outcome = reply.status === undefined ? "no answer" : (spec.outcomeOf ?? wordOf)(reply.body);
    const ok = reply.status === spec.expect.status && outcome === spec.expect.outcome;
    const requestText = `${spec.method.padEnd(4)} ${spec.shown}`;
    const expected = `${spec.expect.status} ${spec.expect.outcome}`;
    steps.push({
      number: spec.number,
      title: spec.title,
      request: requestText,
      ...(reply.status !== undefined ? { status: reply.status } : {}),
      outcome,
      expected,
      ok,
      ms: reply.ms,
    });
    const result = reply.status === undefined ? "---" : `${reply.status} ${outcome}`;
    print(
      row(
        ok ? "✓" : "✗",
        spec.number,
        spec.title,
        requestText,
        result,
        reply.ms,
        ok ? spec.detail(reply.body) : "",
      ),
    );
    if (ok) return reply.body;
    const said = str(reply.body.message);
    const got = reply.status === undefined ? `no answer (${reply.failure})` : result;
    print(`     expected ${expected}, got ${got}${said ? `: ${said}` : ""}`);
    if (outcome === "session_expired" && spec.number < 7) {
      print(
        `     The session expired before step 7: SESSION_TTL_MS=${play.ttlMs} is too short for this machine; restart the service with SESSION_TTL_MS=5000.`,
      );
    }
    return undefined;
  };

  // 1. The app registers the session, asking for live pushes to its receiver.
  const registered = await step({
    number: 1,
    title: "register session",
    method: "POST",
    path: sessionPath,
    shown: "/conversations/…/session",
    headers: service,
    body: { agentId: "demo-agent", notifyUrl: receiver.url, metadata: { source: "npm run demo" } },
    expect: { status: 201, outcome: "registered" },
    outcomeOf: (b) => (str(b.expiresAt) && str(b.createdAt) ? "registered" : wordOf(b)),
    detail: (b) => `expires ${clock(str(b.expiresAt))} (TTL ${(num(b.ttlSeconds) ?? 0) * 1000} ms)`,
  });
  if (!registered) return false;
  const createdAtMs = Date.parse(String(registered.createdAt));
  const expiresAtMs = Date.parse(String(registered.expiresAt));
  // The call starts when the session is registered; ElevenLabs reports whole seconds.
  const callStartMs = Math.floor(createdAtMs / 1000) * 1000;
  const saidAt: number[] = [createdAtMs + 1];

  // 2. The app reads it back.
  if (
    !(await step({
      number: 2,
      title: "read session",
      method: "GET",
      path: sessionPath,
      shown: "/conversations/…/session",
      headers: service,
      expect: { status: 200, outcome: "active" },
      detail: (b) => `${num(b.remainingMs) ?? "?"} ms left`,
    }))
  )
    return false;

  // 3 and 4. The caller asks; the agent calls two server tools, as ElevenLabs does.
  saidAt.push(Date.now());
  const toolCall = (number: number, toolName: string, params: Record<string, unknown>, note: string) =>
    step({
      number,
      title: number === 3 ? "tool call" : "second tool call",
      method: "POST",
      path: `/tools/${toolName}`,
      shown: `/tools/${toolName}`,
      headers: tool,
      body: { conversation_id: conversationId, ...params },
      expect: { status: 200, outcome: "accepted" },
      // Without the callback the demo cannot play the runner: not what it expects.
      outcomeOf: (b) =>
        b.status === "accepted" && !(str(b.taskId) && str(b.callbackUrl) && str(b.callbackToken))
          ? "accepted without callback"
          : wordOf(b),
      detail: (b) => `task ${String(b.taskId).slice(0, 8)}…, ${note}`,
    });
  const first = await toolCall(
    3,
    "lookup_order",
    { order_id: "A1042" },
    "callbackUrl + callbackToken for the runner",
  );
  if (!first) return false;
  const second = await toolCall(
    4,
    "schedule_callback",
    { preferred_time: "tomorrow 10:00" },
    "its result will come after the expiry",
  );
  if (!second) return false;

  // The runner posts to the callbackUrl; its path is taken so that --url decides the host.
  const resultCall = (task: Record<string, unknown>, result: Record<string, unknown>) => ({
    method: "POST" as const,
    path: new URL(String(task.callbackUrl)).pathname,
    shown: "/conversations/…/tasks/…/result",
    headers: { authorization: `Bearer ${String(task.callbackToken)}` },
    body: { status: "succeeded", result },
  });

  // 5. The first result arrives while the session is live: stored and pushed to the app.
  const postedAt = performance.now();
  const delivered = await step({
    number: 5,
    title: "result while live",
    ...resultCall(first, { order_id: "A1042", status: "shipped", eta: "Thursday" }),
    expect: { status: 200, outcome: "delivered" },
    detail: (b) => (b.pushed === true ? "stored, and pushed to the app" : "stored (not pushed)"),
  });
  // The push is checked even when step 5 differed, as long as the service answered: a push the
  // app refused is what explains a `delivery_failed`.
  const serviceAnswered = steps.at(-1)?.status !== undefined;
  if (!delivered && !serviceAnswered) return false;
  const push = await receiver.waitFor(String(first.taskId), PUSH_WAIT_MS);
  const pushOk = push?.status === 204 && push.body.type === "task_result" && push.body.result !== undefined;
  const pushOutcome = !push
    ? "no push"
    : push.problem
      ? "bad signature"
      : pushOk
        ? "verified"
        : "unexpected body";
  const pushMs = push ? Math.round(push.arrivedAt - postedAt) : PUSH_WAIT_MS;
  const receiverPath = `${new URL(receiver.url).host}/notify`;
  steps.push({
    number: 5,
    title: "push to the app",
    request: `POST ${receiverPath}`,
    ...(push ? { status: push.status } : {}),
    outcome: pushOutcome,
    expected: "204 verified",
    ok: pushOk,
    ms: pushMs,
  });
  print(
    row(
      pushOk ? "✓" : "✗",
      undefined,
      "  push to the app",
      `POST ${receiverPath}`,
      push ? `${push.status} ${pushOutcome}` : "--- no push",
      pushMs,
      pushOk
        ? `${NOTIFY_SIGNATURE_HEADER} verified with NOTIFY_SIGNING_SECRET (ms from the result's POST)`
        : "",
    ),
  );
  if (!pushOk) {
    print(
      `     expected a signed push for task ${String(first.taskId).slice(0, 8)}… within ${PUSH_WAIT_MS} ms, got ${push ? (push.problem ?? compactJson(push.body)) : "none"}`,
    );
    return false;
  }
  if (!delivered) return false;

  // 6. The agent polls its results (ElevenLabs cannot be pushed into mid-call).
  const polled = await step({
    number: 6,
    title: "agent polls",
    method: "POST",
    path: "/tools/get_task_result",
    shown: "/tools/get_task_result",
    headers: tool,
    body: { conversation_id: conversationId },
    expect: { status: 200, outcome: "1 done, 1 pending" },
    outcomeOf: (b) => {
      if (b.status !== "active") return wordOf(b);
      const tasks = records(b.tasks);
      const done = tasks.filter((t) => t.status === "completed").length;
      return `${done} done, ${tasks.length - done} pending`;
    },
    detail: (b) =>
      records(b.tasks)
        // Completed first: the order the agent would report them in.
        .sort((x, y) => Number(y.status === "completed") - Number(x.status === "completed"))
        .map(
          (t) => `${String(t.toolName)} ${t.status === "completed" ? taskOutput(t.result, 50) : "pending"}`,
        )
        .join(", "),
  });
  if (!polled) return false;
  saidAt.push(Date.now(), Date.now() + 1);

  // 7. Nothing happens until the session's window runs out.
  const wakeAt = expiresAtMs + EXPIRY_MARGIN_MS;
  const waitMs = Math.max(0, wakeAt - Date.now());
  print(
    row(
      "·",
      7,
      "wait for expiry",
      `sleep ${duration(waitMs)}, until ${clock(wakeAt)} (expiresAt + ${EXPIRY_MARGIN_MS} ms)`,
      "",
      undefined,
      "",
    ),
  );
  await sleep(waitMs);
  steps.push({
    number: 7,
    title: "wait for expiry",
    outcome: "waited",
    expected: "waited",
    ok: true,
    ms: waitMs,
  });

  // 8. The app reads the session again: 410, with how long ago it ended.
  if (
    !(await step({
      number: 8,
      title: "read session",
      method: "GET",
      path: sessionPath,
      shown: "/conversations/…/session",
      headers: service,
      expect: { status: 410, outcome: "session_expired" },
      detail: (b) => `expired ${num(b.expiredForMs) ?? "?"} ms ago, at ${clock(str(b.expiredAt))}`,
    }))
  )
    return false;

  // 9. The second result is late: a graceful 200, and the result is still kept.
  if (
    !(await step({
      number: 9,
      title: "result after expiry",
      ...resultCall(second, { scheduled_for: "tomorrow 10:00", confirmation: "CB-7731" }),
      expect: { status: 200, outcome: "session_expired" },
      detail: (b) =>
        `${num(b.expiredForMs) ?? "?"} ms after the expiry; the result is still kept in the history`,
    }))
  )
    return false;

  // 10. A tool call after the expiry: nothing starts, and the agent gets a sentence to say.
  if (
    !(await step({
      number: 10,
      title: "tool after expiry",
      method: "POST",
      path: "/tools/lookup_order",
      shown: "/tools/lookup_order",
      headers: tool,
      body: { conversation_id: conversationId, order_id: "A1042" },
      expect: { status: 200, outcome: "session_expired" },
      detail: (b) => `the agent says: "${str(b.message) ?? ""}"`,
    }))
  )
    return false;

  // 11. After the call, ElevenLabs sends the transcript and its analysis, signed.
  const event = transcriptionEvent(conversationId, callStartMs, expiresAtMs, saidAt);
  const rawEvent = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const signature = `t=${t},v0=${createHmac("sha256", localSecret("WEBHOOK_SECRET", play.env)).update(`${t}.${rawEvent}`).digest("hex")}`;
  if (
    !(await step({
      number: 11,
      title: "post-call webhook",
      method: "POST",
      path: "/webhooks/elevenlabs/post-call",
      shown: "/webhooks/elevenlabs/post-call",
      headers: { [SIGNATURE_HEADER]: signature },
      body: rawEvent,
      expect: { status: 200, outcome: "stored" },
      detail: () => `${event.data.transcript.length} transcript lines and the analysis, signed`,
    }))
  )
    return false;

  // 12. The history: every window, message and task, long after the session ended.
  const history = await step({
    number: 12,
    title: "read history",
    method: "GET",
    path: `/conversations/${conversationId}`,
    shown: "/conversations/…",
    headers: service,
    expect: { status: 200, outcome: "complete" },
    outcomeOf: (b) => historyGap(b, event.data.transcript.length) ?? "complete",
    detail: (b) =>
      [
        count(records(b.sessions).length, "session window"),
        count(records(b.messages).length, "message"),
        count(records(b.tasks).length, "task"),
      ].join(", "),
  });
  if (!history) return false;
  for (const line of historyLines(history)) print(`      ${line}`);
  return true;
};

/** What the history lacks that this demo put there, or undefined when it has it all. */
const historyGap = (body: Record<string, unknown>, transcriptLines: number): string | undefined => {
  if (!Array.isArray(body.messages)) return wordOf(body);
  const windows = records(body.sessions);
  if (windows.length !== 1 || windows[0]?.status !== "expired") return "session window not expired";
  const spoken = records(body.messages).filter((m) => m.kind === "transcript" && str(m.text));
  if (spoken.length !== transcriptLines) return `${spoken.length} of ${transcriptLines} transcript lines`;
  const outcomes = records(body.tasks).map((t) => `${String(t.toolName)}:${String(t.outcome)}`);
  for (const wanted of ["lookup_order:delivered", "schedule_callback:session_expired"]) {
    if (!outcomes.includes(wanted)) return `no ${wanted.replace(":", " ")}`;
  }
  return undefined;
};

/** The history, compactly: windows, then every message in order, then every task. */
const historyLines = (body: Record<string, unknown>): string[] => {
  const tasks = records(body.tasks);
  const toolOf = new Map(tasks.map((t) => [String(t.taskId), String(t.toolName)]));
  const lines: string[] = [];
  for (const w of records(body.sessions)) {
    const end = w.status === "active" ? "active" : `${String(w.status)} at ${clock(str(w.endedAt))}`;
    lines.push(`window   ${clock(str(w.createdAt))} → ${clock(str(w.expiresAt))}  ${end}`);
  }
  for (const m of records(body.messages)) {
    const data = isRecord(m.data) ? m.data : {};
    const [who, text] = describeMessage(m, data, toolOf);
    lines.push(`${clock(str(m.at))}  ${who.padEnd(9)} ${text}`);
  }
  for (const t of tasks) {
    const late = t.outcome === "session_expired" ? `, ${num(t.expiredForMs) ?? "?"} ms after the expiry` : "";
    lines.push(
      `task     ${String(t.toolName).padEnd(18)} ${String(t.status).padEnd(10)} ${String(t.outcome ?? "-").padEnd(16)} ${taskOutput(t.result, 60)}${late}`,
    );
  }
  return lines;
};

const describeMessage = (
  m: Record<string, unknown>,
  data: Record<string, unknown>,
  toolOf: ReadonlyMap<string, string>,
): [string, string] => {
  switch (m.kind) {
    case "transcript":
      return [String(m.role ?? "?"), str(m.text) ?? ""];
    case "session_registered":
      return ["session", `registered, expires ${clock(str(data.expiresAt))}`];
    case "task_started":
      return ["task", `${String(data.toolName)} started ${compactJson(data.params, 50)}`];
    case "task_result":
      return [
        "task",
        `${toolOf.get(String(data.taskId)) ?? "?"} result, ${String(data.outcome)}: ${taskOutput(data.result, 50)}`,
      ];
    case "call_analysis":
      return ["analysis", `${String(data.callSuccessful ?? "?")}: ${str(m.text) ?? ""}`];
    default:
      return [String(m.kind), str(m.text) ?? ""];
  }
};

/** A `post_call_transcription` event for this run: the lines at the moments they were said. */
const transcriptionEvent = (
  conversationId: string,
  callStartMs: number,
  callEndMs: number,
  saidAt: readonly number[],
) => {
  const at = (index: number) => saidAt[index] ?? saidAt[saidAt.length - 1] ?? callStartMs;
  return {
    type: "post_call_transcription",
    event_timestamp: Math.floor(Date.now() / 1000),
    data: {
      agent_id: "demo-agent",
      conversation_id: conversationId,
      status: "done",
      transcript: [
        transcriptLine("agent", "Hi, this is Ava from Acme. How can I help?", at(0), callStartMs),
        transcriptLine(
          "user",
          "Where is my order A1042? And could someone call me back tomorrow?",
          at(1),
          callStartMs,
        ),
        transcriptLine(
          "agent",
          "Order A1042 shipped and arrives Thursday. The callback is still being scheduled.",
          at(2),
          callStartMs,
        ),
        transcriptLine("user", "Great, thanks. Bye!", at(3), callStartMs),
      ],
      metadata: {
        start_time_unix_secs: callStartMs / 1000,
        // The caller stayed on until the session ran out.
        call_duration_secs: Math.ceil((callEndMs - callStartMs) / 1000),
        termination_reason: "Client disconnected",
        main_language: "en",
      },
      analysis: {
        call_successful: "success",
        transcript_summary: "The caller asked about order A1042 (shipped, arriving Thursday) and a callback.",
        call_summary_title: "Order status and callback",
        data_collection_results: {
          order_id: { data_collection_id: "order_id", value: "A1042", rationale: "Stated by the caller." },
        },
      },
    },
  };
};

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const USAGE = `Usage: npm run demo [-- --url <base>] [--wait]

Plays one conversation against the running local service (npm start), as the app, ElevenLabs and
a task runner: register, two tool calls, a result while live (pushed and verified), the expiry, a
late result, a tool call after the expiry, the post-call webhook and the history.

  --url   the service (env DEMO_URL, default ${DEFAULT_DEMO_URL})
  --wait  wait for the expiry even when sessions last more than a minute

Start the service with short sessions first: SESSION_TTL_MS=5000 npm start
Secrets are read like the service reads them: SERVICE_TOKEN, TOOL_SECRET, WEBHOOK_SECRET,
NOTIFY_SIGNING_SECRET (local defaults when unset).
Exit code: 0 every step as expected, 1 a step differed or no service answers, 2 the service
cannot play this demo (long sessions without --wait, or a task runner: start with --no-runner).`;

/** Reads flags and DEMO_URL; throws with one sentence on bad input. */
export const parseDemoCli = (
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { url: string; wait: boolean } | "help" => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: "string" },
      wait: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const fromEnv = env.DEMO_URL?.trim();
  const url = values.url ?? (fromEnv || DEFAULT_DEMO_URL);
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(url) || !URL.canParse(url))
    throw new Error(
      `${values.url === undefined ? "DEMO_URL" : "--url"} must be an http(s) URL, not "${url}"`,
    );
  return { url: url.replace(/\/+$/, ""), wait: values.wait === true };
};

const main = async () => {
  let cli: ReturnType<typeof parseDemoCli>;
  try {
    cli = parseDemoCli(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(
      `npm run demo: ${(error as Error).message.split("\n")[0]} (npm run demo -- --help lists the options).`,
    );
    process.exit(1);
  }
  if (cli === "help") {
    console.log(USAGE);
    return;
  }
  const result = await runDemo({ ...cli, printProblem: (line) => console.error(line) });
  process.exitCode = result.exitCode;
};

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) void main();

/**
 * `npm run demo`: plays one whole conversation against the running local service, as the app and
 * ElevenLabs would, while the service's task runner (`npm start`'s in-process example runner) does
 * the tasks, and prints one line per step. The session expires in the middle on purpose: a late
 * result, a tool call after the expiry and the post-call webhook show that expiry is an ordinary
 * outcome and that the history keeps everything. The steps are a table (demo-steps.ts); this
 * file checks the service, plays the table and reads the command line.
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Call, send, str } from "./demo-http.js";
import { duration, row, wordOf } from "./demo-output.js";
import { startReceiver } from "./demo-receiver.js";
import { DEMO_STEPS, type DemoStepSpec, type Run, waitText } from "./demo-steps.js";
import { type LocalHealth, localSecret } from "./local-env.js";

export { verifyPushSignature } from "./demo-receiver.js";

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
  /** 0 (health) to 12. */
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
/** A service still starting (DynamoDB Local boots after the port is bound) gets this long. */
const STARTING_GRACE_MS = 60_000;
/** The wait step's number: a step answered `session_expired` before it means the sessions are too short. */
const WAIT_STEP = DEMO_STEPS.findIndex((s) => "until" in s) + 1;

/** `SESSION_TTL_MS=5000 npm start`, with the port when it is not the default. */
const startCommand = (base: string): string => {
  const port = URL.canParse(base) ? new URL(base).port : "";
  return `SESSION_TTL_MS=5000 npm start${port && port !== "3000" ? ` -- --port ${port}` : ""}`;
};
/** `npm run demo`, with the URL when it is not the default and any extra flags. */
const demoCommand = (base: string, ...flags: string[]): string => {
  const args = [...(base === DEFAULT_DEMO_URL ? [] : ["--url", base]), ...flags];
  return args.length > 0 ? `npm run demo -- ${args.join(" ")}` : "npm run demo";
};

const isLocalHealth = (body: Record<string, unknown>): body is Record<string, unknown> & LocalHealth =>
  typeof body.sessionTtlMs === "number" && typeof body.callbackInToolResponse === "boolean";

/** `/health` once the service is past starting (it gets {@link STARTING_GRACE_MS}). */
const readHealth = async (
  base: string,
  request: (call: Call) => ReturnType<typeof send>,
  print: (line: string) => void,
) => {
  let health = await request({ method: "GET", path: "/health" });
  const graceEnd = performance.now() + STARTING_GRACE_MS;
  for (let said = false; health.status === 503 && health.body.status === "starting"; said = true) {
    if (performance.now() >= graceEnd) break;
    if (!said) print(`The service at ${base} is still starting; waiting for it...`);
    await sleep(500);
    health = await request({ method: "GET", path: "/health" });
  }
  return health;
};

/** Step 0: the session window, or why this service cannot play the demo (one line, and the exit code). */
const checkService = async (
  base: string,
  request: (call: Call) => ReturnType<typeof send>,
  options: DemoOptions,
  print: (line: string) => void,
): Promise<{ ttlMs: number; row: string; ms: number } | { problem: string; exitCode: 1 | 2 }> => {
  const health = await readHealth(base, request, print);
  if (health.status === undefined)
    return {
      exitCode: 1,
      problem: `No service answers at ${base}: start it in another terminal with ${startCommand(base)}, then run ${demoCommand(base)} again.`,
    };
  if (health.status !== 200 || !isLocalHealth(health.body))
    return {
      exitCode: 1,
      problem: `${base} answers GET /health with ${health.status} ${wordOf(health.body)}, not as the local service does: the demo needs ${startCommand(base)}.`,
    };
  const ttlMs = health.body.sessionTtlMs;
  if (health.body.callbackInToolResponse)
    return {
      exitCode: 2,
      problem: `The service at ${base} runs no task runner (manual mode, --no-runner), so nobody would do the demo's tasks: restart it without --no-runner (${startCommand(base)}).`,
    };
  if (ttlMs > MAX_UNASKED_WAIT_MS && !options.wait)
    return {
      exitCode: 2,
      problem: `The service's sessions last ${ttlMs} ms (SESSION_TTL_MS), so the demo would wait ${duration(ttlMs)} for the expiry: restart it with ${startCommand(base)}, or run ${demoCommand(base, "--wait")} to wait that long.`,
    };
  const runner =
    health.body.taskRunner === "runner-url"
      ? "tasks go to RUNNER_URL's runner"
      : "tasks run by the in-process example runner";
  const detail = `sessions last ${ttlMs} ms (SESSION_TTL_MS); ${runner}`;
  return { ttlMs, ms: health.ms, row: row("✓", 0, "health", "GET  /health", "200 ok", health.ms, detail) };
};

/** Plays one step of the table: acts, prints its row (and why, when it differs); true when as expected. */
const playStep = async (
  spec: DemoStepSpec,
  number: number,
  run: Run,
  steps: DemoStep[],
): Promise<boolean> => {
  if ("until" in spec) {
    const untilMs = spec.until(run);
    const waitMs = Math.max(0, untilMs - Date.now());
    run.print(row("·", number, spec.title, waitText(waitMs, untilMs, spec.why), "", undefined, ""));
    await sleep(waitMs);
    steps.push({ number, title: spec.title, outcome: "waited", expected: "waited", ok: true, ms: waitMs });
    return true;
  }
  const { request, reply, outcome } = await spec.act(run);
  const result = reply.status === undefined ? "--- no answer" : `${reply.status} ${outcome}`;
  const ok = result === spec.expected || result === spec.orElse;
  steps.push({
    number,
    title: spec.title,
    request,
    ...(reply.status !== undefined ? { status: reply.status } : {}),
    outcome,
    expected: spec.orElse ? `${spec.expected} or ${spec.orElse}` : spec.expected,
    ok,
    ms: reply.ms,
  });
  const detail = ok ? spec.detail(reply.body, run) : "";
  run.print(row(ok ? "✓" : "✗", number, spec.title, request, result, reply.ms, detail));
  if (ok) {
    spec.after?.(reply.body, run);
    return true;
  }
  const said = str(reply.body.message);
  const got = reply.status === undefined ? `no answer (${reply.failure})` : result;
  const expected = spec.orElse ? `${spec.expected} or ${spec.orElse}` : spec.expected;
  run.print(`     expected ${expected}, got ${got}${said ? `: ${said}` : ""}`);
  if (outcome === "session_expired" && number < WAIT_STEP)
    run.print(
      `     The session expired before step ${WAIT_STEP}: SESSION_TTL_MS=${run.ttlMs} is too short for this machine; restart the service with SESSION_TTL_MS=5000.`,
    );
  return false;
};

/** `demo-20250601T120000-3fa2`: sorts by time in the conversation list, unique per run. */
const newConversationId = (now: Date): string =>
  `demo-${now.toISOString().replace(/[-:]/g, "").slice(0, 15)}-${randomBytes(2).toString("hex")}`;

/**
 * Plays the conversation and reports every step. Stops at the first step that differs from
 * what the service should answer (later steps build on it), and closes its receiver in any case.
 */
export const runDemo = async (options: DemoOptions = {}): Promise<DemoResult> => {
  const print = options.print ?? ((line: string) => console.log(line));
  const base = (options.url ?? DEFAULT_DEMO_URL).replace(/\/+$/, "");
  const env = options.env ?? process.env;
  const started = performance.now();
  const steps: DemoStep[] = [];
  const totalMs = () => Math.round(performance.now() - started);
  const request = (call: Call) => send(base, call, options.requestTimeoutMs ?? 10_000);

  const service = await checkService(base, request, options, print);
  if ("problem" in service) {
    (options.printProblem ?? print)(service.problem);
    return { exitCode: service.exitCode, steps, totalMs: totalMs() };
  }
  steps.push({
    number: 0,
    title: "health",
    request: "GET  /health",
    status: 200,
    outcome: "ok",
    expected: "200 ok",
    ok: true,
    ms: service.ms,
  });
  print(service.row);
  const conversationId = newConversationId(new Date());
  const receiver = await startReceiver(localSecret("NOTIFY_SIGNING_SECRET", env));
  print(`   conversation ${conversationId}; the app's live pushes go to ${receiver.url}`);
  const run: Run = {
    conversationId,
    ttlMs: service.ttlMs,
    receiver,
    request,
    print,
    secrets: {
      service: localSecret("SERVICE_TOKEN", env),
      tool: localSecret("TOOL_SECRET", env),
      webhook: localSecret("WEBHOOK_SECRET", env),
    },
    createdAtMs: 0,
    expiresAtMs: 0,
    saidAt: [],
    lookupTaskId: "",
    lookupCalledAt: 0,
    sleepTaskId: "",
    sleepSeconds: 0,
    sleepDueAtMs: 0,
    transcriptLines: 0,
  };
  try {
    for (const [index, spec] of DEMO_STEPS.entries()) {
      if (await playStep(spec, index + 1, run, steps)) continue;
      const failed = steps.at(-1);
      print(
        `✗ Step ${failed?.number ?? "?"} (${failed?.title ?? "?"}) did not go as expected, after ${(totalMs() / 1000).toFixed(1)} s; the ${index} steps before it did.`,
      );
      return { exitCode: 1, conversationId, steps, totalMs: totalMs() };
    }
    print(`✓ Done in ${(totalMs() / 1000).toFixed(1)} s: all ${DEMO_STEPS.length} steps as expected.`);
    return { exitCode: 0, conversationId, steps, totalMs: totalMs() };
  } finally {
    await receiver.close();
  }
};

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const USAGE = `Usage: npm run demo [-- --url <base>] [--wait]

Plays one conversation against the running local service (npm start), as the app and ElevenLabs,
while the service's task runner does the tasks: register, two tool calls (lookup_order, and a
sleep that outlives the session), the first result pushed to the app (verified), the expiry, the
late result, a tool call after the expiry, the post-call webhook and the history.

  --url   the service (env DEMO_URL, default ${DEFAULT_DEMO_URL})
  --wait  wait for the expiry even when sessions last more than a minute

Start the service with short sessions first: SESSION_TTL_MS=5000 npm start
Secrets are read like the service reads them: SERVICE_TOKEN, TOOL_SECRET, WEBHOOK_SECRET,
NOTIFY_SIGNING_SECRET (local defaults when unset).
Exit code: 0 every step as expected, 1 a step differed or no service answers, 2 the service
cannot play this demo (long sessions without --wait, or no task runner: --no-runner).`;

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

import { setTimeout as sleep } from "node:timers/promises";
import { MAX_SLEEP_SECONDS } from "../examples/runner/tools.js";
import { TOOL_SECRET_HEADER } from "../functions/core/auth.js";
import { NOTIFY_SIGNATURE_HEADER, signPayload } from "../functions/core/notifier.js";
import { SIGNATURE_HEADER } from "../functions/core/webhook-signature.js";
import { type Call, num, type Reply, records, str } from "./demo-http.js";
import { clock, count, duration, historyLines, taskOutput, wordOf } from "./demo-output.js";
import type { NotifyReceiver } from "./demo-receiver.js";

// The conversation `npm run demo` plays, as a table: one entry per step, played in order by the
// loop in demo.ts. The session expires in the middle on purpose. The service's task runner (the
// in-process example runner of `npm start`) does the two tasks: `lookup_order` answers while the
// session is live, `sleep` outlives it, so its result is a late callback.

/** What the steps share: the run's settings, and what earlier steps learned. */
export interface Run {
  readonly conversationId: string;
  readonly ttlMs: number;
  readonly receiver: NotifyReceiver;
  readonly request: (call: Call) => Promise<Reply>;
  readonly print: (line: string) => void;
  readonly secrets: { readonly service: string; readonly tool: string; readonly webhook: string };
  /** From step 1 on. */
  createdAtMs: number;
  expiresAtMs: number;
  /** When each transcript line was said (the post-call transcript uses them). */
  readonly saidAt: number[];
  lookupTaskId: string;
  /** `performance.now()` when the first tool call was sent: the push's time is counted from it. */
  lookupCalledAt: number;
  sleepTaskId: string;
  sleepSeconds: number;
  /** When the `sleep` task should have its result. */
  sleepDueAtMs: number;
  /** Transcript lines the webhook sent (step 11), checked in the history (step 12). */
  transcriptLines: number;
}

/** What a step saw: the request as printed, the answer, and the word it got. */
export interface Observed {
  readonly request: string;
  readonly reply: Reply;
  readonly outcome: string;
}

/** A step that sends something and checks what comes back. */
export interface ActStep {
  readonly title: string;
  /** `<status> <outcome>` when the service behaves, e.g. `201 registered`. */
  readonly expected: string;
  /** Another answer that is just as right (a quick task answered inline, or not). */
  readonly orElse?: string;
  readonly act: (run: Run) => Promise<Observed>;
  /** The rest of the row when the step went as expected; may keep what later steps need. */
  readonly detail: (body: Record<string, unknown>, run: Run) => string;
  /** Runs after the row is printed, when the step went as expected (the history under the last one). */
  readonly after?: (body: Record<string, unknown>, run: Run) => void;
}

/** A step that only waits, announced before it starts. */
export interface WaitStep {
  readonly title: string;
  readonly until: (run: Run) => number;
  readonly why: string;
}

export type DemoStepSpec = ActStep | WaitStep;

/** How long after `expiresAt` the demo checks the expiry (the service's clock is this machine's). */
const EXPIRY_MARGIN_MS = 50;
/** The runner's first result is pushed within milliseconds; this only bounds a service that never pushes. */
const PUSH_WAIT_MS = 10_000;
/** How often the history is read while the late result is on its way, and for how many reads after it is due. */
const POLL_EVERY_MS = 250;
const POLLS_AFTER_DUE = 40;
/** The `sleep` tool lasts at most 300 s: with longer sessions it is called this long before the expiry. */
const SLEEP_LEAD_MS = (MAX_SLEEP_SECONDS - 10) * 1000;

/** Sends one request; its outcome word is `outcomeOf(body)` (default: the word the answer carries). */
const call = async (
  run: Run,
  spec: Call & { shown: string; outcomeOf?: (body: Record<string, unknown>) => string },
): Promise<Observed> => {
  const reply = await run.request(spec);
  const outcome = reply.status === undefined ? "no answer" : (spec.outcomeOf ?? wordOf)(reply.body);
  return { request: `${spec.method.padEnd(4)} ${spec.shown}`, reply, outcome };
};

const service = (run: Run) => ({ authorization: `Bearer ${run.secrets.service}` });
const tool = (run: Run) => ({ [TOOL_SECRET_HEADER]: run.secrets.tool });
const sessionPath = (run: Run) => `/conversations/${run.conversationId}/session`;

/** A tool call as ElevenLabs makes it. With a task runner the answer never carries the callback token. */
/** `GET …/session` (the app's check, while active and after expiry). */
const readSession = (run: Run) =>
  call(run, {
    method: "GET",
    path: sessionPath(run),
    shown: "/conversations/…/session",
    headers: service(run),
  });

const toolCall = (run: Run, toolName: string, params: Record<string, unknown>) =>
  call(run, {
    method: "POST",
    path: `/tools/${toolName}`,
    shown: `/tools/${toolName}`,
    headers: tool(run),
    body: { conversation_id: run.conversationId, ...params },
    outcomeOf: (b) => ("callbackToken" in b ? `${wordOf(b)} with token` : wordOf(b)),
  });

/** Waits for the service's signed push of the first task's result to the app's receiver. */
const awaitPush = async (run: Run): Promise<Observed> => {
  const push = await run.receiver.waitFor(run.lookupTaskId, PUSH_WAIT_MS);
  const ok = push?.status === 204 && push.body.type === "task_result" && push.body.result !== undefined;
  const outcome = !push ? "no push" : push.problem ? "bad signature" : ok ? "verified" : "unexpected body";
  const body = push ? { ...push.body, ...(push.problem ? { message: push.problem } : {}) } : {};
  const reply = push
    ? { status: push.status, body, ms: Math.max(0, Math.round(push.arrivedAt - run.lookupCalledAt)) }
    : { body, ms: PUSH_WAIT_MS, failure: `no push for the task within ${PUSH_WAIT_MS} ms` };
  return { request: `POST ${new URL(run.receiver.url).host}/notify`, reply, outcome };
};

/** Reads the history until the `sleep` task has its result: a bounded number of reads. */
const awaitLateResult = async (run: Run): Promise<Observed> => {
  const started = performance.now();
  const reads = Math.ceil(Math.max(0, run.sleepDueAtMs - Date.now()) / POLL_EVERY_MS) + POLLS_AFTER_DUE;
  let observed: Observed | undefined;
  for (let read = 0; read < reads; read++) {
    if (read > 0) await sleep(POLL_EVERY_MS);
    observed = await call(run, {
      method: "GET",
      path: `/conversations/${run.conversationId}`,
      shown: "/conversations/…",
      headers: service(run),
      outcomeOf: (b) => {
        const task = records(b.tasks).find((t) => t.taskId === run.sleepTaskId);
        if (!task) return wordOf(b);
        return task.status === "completed" ? String(task.outcome) : "still pending";
      },
    });
    if (observed.outcome !== "still pending") break;
  }
  const last = observed as Observed;
  return { ...last, reply: { ...last.reply, ms: Math.round(performance.now() - started) } };
};

/** What the history lacks that this demo put there, or undefined when it has it all. */
const historyGap = (body: Record<string, unknown>, transcriptLines: number): string | undefined => {
  if (!Array.isArray(body.messages)) return wordOf(body);
  const windows = records(body.sessions);
  if (windows.length !== 1 || windows[0]?.status !== "expired") return "session window not expired";
  const spoken = records(body.messages).filter((m) => m.kind === "transcript" && str(m.text));
  if (spoken.length !== transcriptLines) return `${spoken.length} of ${transcriptLines} transcript lines`;
  const outcomes = records(body.tasks).map((t) => `${String(t.toolName)}:${String(t.outcome)}`);
  for (const wanted of ["lookup_order:delivered", "sleep:session_expired"]) {
    if (!outcomes.includes(wanted)) return `no ${wanted.replace(":", " ")}`;
  }
  return undefined;
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

const TRANSCRIPT: readonly (readonly ["agent" | "user", string])[] = [
  ["agent", "Hi, this is Ava from Acme. How can I help?"],
  ["user", "Where is my order A1042? And can you check with the warehouse too?"],
  ["agent", "Order A1042 is on its way. The warehouse check takes a few more seconds."],
  ["user", "Great, thanks. Bye!"],
];

/** A signed `post_call_transcription` event for this run: the lines at the moments they were said. */
export const transcriptionEvent = (run: Run, nowMs: number) => {
  // The call starts when the session is registered; ElevenLabs reports whole seconds.
  const startMs = Math.floor(run.createdAtMs / 1000) * 1000;
  const at = (i: number) => run.saidAt[i] ?? run.saidAt.at(-1) ?? startMs;
  const event = {
    type: "post_call_transcription",
    event_timestamp: Math.floor(nowMs / 1000),
    data: {
      agent_id: "demo-agent",
      conversation_id: run.conversationId,
      status: "done",
      transcript: TRANSCRIPT.map(([role, text], i) => transcriptLine(role, text, at(i), startMs)),
      metadata: {
        start_time_unix_secs: startMs / 1000,
        // The caller stayed on until the session ran out.
        call_duration_secs: Math.ceil((run.expiresAtMs - startMs) / 1000),
        termination_reason: "Client disconnected",
        main_language: "en",
      },
      analysis: {
        call_successful: "success",
        transcript_summary: "The caller asked about order A1042 (on its way) and a warehouse check.",
        call_summary_title: "Order status",
        data_collection_results: {
          order_id: { data_collection_id: "order_id", value: "A1042", rationale: "Stated by the caller." },
        },
      },
    },
  };
  const raw = JSON.stringify(event);
  const t = Math.floor(nowMs / 1000);
  const signature = signPayload(run.secrets.webhook, raw, t);
  return { raw, signature, lines: event.data.transcript.length };
};

/** Steps 1 to 12 (step 0, the health check, decides whether the demo can run at all). */
export const DEMO_STEPS: readonly DemoStepSpec[] = [
  {
    title: "register session",
    expected: "201 registered",
    act: (run) =>
      call(run, {
        method: "POST",
        path: sessionPath(run),
        shown: "/conversations/…/session",
        headers: service(run),
        body: { agentId: "demo-agent", notifyUrl: run.receiver.url, metadata: { source: "npm run demo" } },
        outcomeOf: (b) => (str(b.expiresAt) && str(b.createdAt) ? "registered" : wordOf(b)),
      }),
    detail: (b, run) => {
      run.createdAtMs = Date.parse(String(b.createdAt));
      run.expiresAtMs = Date.parse(String(b.expiresAt));
      run.saidAt.push(run.createdAtMs + 1);
      return `expires ${clock(run.expiresAtMs)} (TTL ${(num(b.ttlSeconds) ?? 0) * 1000} ms)`;
    },
  },
  {
    title: "read session",
    expected: "200 active",
    act: (run) => readSession(run),
    detail: (b) => `${num(b.remainingMs) ?? "?"} ms left`,
  },
  {
    title: "tool call",
    // Quick: the tool route waits up to TOOL_INLINE_WAIT_MS for the runner's result and answers
    // it inline; a slower runner leaves it `accepted`, and the agent polls.
    expected: "200 completed",
    orElse: "200 accepted",
    act: (run) => {
      run.saidAt.push(Date.now());
      run.lookupCalledAt = performance.now();
      return toolCall(run, "lookup_order", { order_id: "A1042" });
    },
    detail: (b, run) => {
      run.lookupTaskId = String(b.taskId);
      const answer =
        b.status === "completed" ? `answered inline ${taskOutput(b.result, 40)}` : "the agent will poll";
      return `task ${run.lookupTaskId.slice(0, 8)}…, ${answer}; no callback token: the runner has it`;
    },
  },
  {
    title: "second tool call",
    expected: "200 accepted",
    act: async (run) => {
      // Long sessions (--wait): the sleep starts shortly before the expiry, as it lasts at most 300 s.
      const leadMs = run.expiresAtMs - Date.now();
      if (leadMs > SLEEP_LEAD_MS) {
        run.print(
          `   waiting until ${clock(run.expiresAtMs - SLEEP_LEAD_MS)} to start a sleep that outlives the session`,
        );
        await sleep(leadMs - SLEEP_LEAD_MS);
      }
      run.sleepSeconds = Math.max(1, Math.ceil((run.expiresAtMs - Date.now()) / 1000) + 1);
      run.sleepDueAtMs = Date.now() + run.sleepSeconds * 1000;
      return toolCall(run, "sleep", { seconds: run.sleepSeconds });
    },
    detail: (b, run) => {
      run.sleepTaskId = String(b.taskId);
      return `task ${run.sleepTaskId.slice(0, 8)}…, sleeps ${run.sleepSeconds} s: its result will come after the expiry`;
    },
  },
  {
    title: "result while live",
    expected: "204 verified",
    act: awaitPush,
    detail: () =>
      `the runner's lookup_order result: stored, pushed to the app, ${NOTIFY_SIGNATURE_HEADER} verified (ms from the tool call)`,
  },
  {
    title: "agent polls",
    expected: "200 1 done, 1 pending",
    act: (run) =>
      call(run, {
        method: "POST",
        path: "/tools/get_task_result",
        shown: "/tools/get_task_result",
        headers: tool(run),
        body: { conversation_id: run.conversationId },
        outcomeOf: (b) => {
          if (b.status !== "active") return wordOf(b);
          const tasks = records(b.tasks);
          const done = tasks.filter((t) => t.status === "completed").length;
          return `${done} done, ${tasks.length - done} pending`;
        },
      }),
    detail: (b, run) => {
      run.saidAt.push(Date.now(), Date.now() + 1);
      return (
        records(b.tasks)
          // Completed first: the order the agent would report them in.
          .sort((x, y) => Number(y.status === "completed") - Number(x.status === "completed"))
          .map(
            (t) => `${String(t.toolName)} ${t.status === "completed" ? taskOutput(t.result, 50) : "pending"}`,
          )
          .join(", ")
      );
    },
  },
  {
    title: "wait for expiry",
    until: (run) => run.expiresAtMs + EXPIRY_MARGIN_MS,
    why: `expiresAt + ${EXPIRY_MARGIN_MS} ms`,
  },
  {
    title: "read session",
    expected: "410 session_expired",
    act: (run) => readSession(run),
    detail: (b) => `expired ${num(b.expiredForMs) ?? "?"} ms ago, at ${clock(str(b.expiredAt))}`,
  },
  {
    title: "result after expiry",
    expected: "200 session_expired",
    act: awaitLateResult,
    detail: (b, run) => {
      const task = records(b.tasks).find((t) => t.taskId === run.sleepTaskId) ?? {};
      return `the runner's sleep result came ${num(task.expiredForMs) ?? "?"} ms after the expiry; the result is still kept in the history (ms waited)`;
    },
  },
  {
    title: "tool after expiry",
    expected: "200 session_expired",
    act: (run) => toolCall(run, "lookup_order", { order_id: "A1042" }),
    detail: (b) => `the agent says: "${str(b.message) ?? ""}"`,
  },
  {
    title: "post-call webhook",
    expected: "200 stored",
    act: (run) => {
      const event = transcriptionEvent(run, Date.now());
      run.transcriptLines = event.lines;
      return call(run, {
        method: "POST",
        path: "/webhooks/elevenlabs/post-call",
        shown: "/webhooks/elevenlabs/post-call",
        headers: { [SIGNATURE_HEADER]: event.signature },
        body: event.raw,
      });
    },
    detail: (_b, run) => `${run.transcriptLines} transcript lines and the analysis, signed`,
  },
  {
    title: "read history",
    expected: "200 complete",
    act: (run) =>
      call(run, {
        method: "GET",
        path: `/conversations/${run.conversationId}`,
        shown: "/conversations/…",
        headers: service(run),
        outcomeOf: (b) => historyGap(b, run.transcriptLines) ?? "complete",
      }),
    detail: (b) =>
      [
        count(records(b.sessions).length, "session window"),
        count(records(b.messages).length, "message"),
        count(records(b.tasks).length, "task"),
      ].join(", "),
    after: (b, run) => {
      for (const line of historyLines(b)) run.print(`      ${line}`);
    },
  },
];

/** The wait step's request column: `sleep 2312 ms, until 06:42:09.722Z (expiresAt + 50 ms)`. */
export const waitText = (waitMs: number, untilMs: number, why: string): string =>
  `sleep ${duration(waitMs)}, until ${clock(untilMs)} (${why})`;

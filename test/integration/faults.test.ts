import { randomUUID } from "node:crypto";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import type { HttpResponse } from "../../functions/core/http.js";
import { replayParked } from "../../functions/core/post-call-api.js";
import { DISPATCH_DEADLINE_MS } from "../../functions/core/task-dispatch.js";
import { makeHandler as makeGetConversation } from "../../functions/get-conversation/handler.js";
import { makeHandler as makeListConversations } from "../../functions/list-conversations/handler.js";
import { makeHandler as makeWebhook } from "../../functions/post-call-webhook/handler.js";
import { frozenAtRealNow } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import {
  type FaultControl,
  type FaultKind,
  type FaultPlan,
  faultsFor,
  faultyClient,
} from "../support/fault-client.js";
import { SERVICE_TOKEN } from "../support/live-fixtures.js";
import { createLiveHarness, type LiveHarness, liveRequests } from "../support/live-harness.js";
import {
  memoryParker,
  transcriptionEvent,
  WEBHOOK_SECRET,
  webhookRequest,
} from "../support/post-call-fixtures.js";
import { requestClock, runAt } from "../support/request-clock.js";
import { conversationItems } from "../support/table-snapshot.js";

/**
 * The fault matrix on DynamoDB Local. For each live-path request, the DynamoDB calls it makes are
 * recorded once; then, for every call k and every fault that call can meet, a fresh conversation
 * is arranged, the fault is injected at call k (before DynamoDB applied the call, or, for
 * timeouts and resets, after it applied it and the answer was lost), and the same request is
 * retried without a fault, like the caller would after Retry-After.
 *
 * Required for every cell: the faulted answer is a 503 with Retry-After (a TransactionConflict
 * cancellation is retried inside `transactWrite`, so that request simply succeeds; the post-call
 * webhook parks a signed event it cannot store and answers 200, and the replay completes it);
 * the retry succeeds; the stored state is whole (exactly one result line per task, at most one
 * push, session and meta agree, the transcript stored once, nothing written by reads).
 */

const TTL = 600_000;
/** Each scenario's registration instant: the real now when the scenario starts (see clock.ts). */
let T0 = 0;

interface Context {
  readonly conversationId: string;
  readonly at: number;
  readonly message?: TaskMessage;
}

/** One cell's own handlers on one fault-injecting client, so cells can run concurrently. */
interface Rig {
  readonly control: FaultControl;
  readonly h: LiveHarness;
  /** The same handlers, with a live push that always fails. */
  readonly failingPush: LiveHarness;
  /** The post-call webhook, parking what it cannot store in `parker`. */
  readonly webhook: ReturnType<typeof makeWebhook>;
  readonly parker: ReturnType<typeof memoryParker>;
  /** The post-call webhook with a parking place that is down too. */
  readonly webhookNoParking: ReturnType<typeof makeWebhook>;
  readonly getConversation: ReturnType<typeof makeGetConversation>;
  readonly listConversations: ReturnType<typeof makeListConversations>;
}

interface Scenario {
  readonly name: string;
  readonly arrange: (rig: Rig, conversationId: string) => Promise<Context>;
  readonly act: (rig: Rig, ctx: Context) => Promise<HttpResponse>;
  /** The answer a successful attempt gives (first try or retry). */
  readonly succeeded: (response: HttpResponse) => boolean;
  /** Invariants of the stored state after the retry; returns violations. */
  readonly verify: (rig: Rig, ctx: Context, responses: HttpResponse[]) => Promise<string[]>;
  /** A documented answer to a fault other than a 503 (the webhook parks what it cannot store). */
  readonly faultedOk?: (response: HttpResponse, call: string) => boolean;
  /** How the caller completes after that documented answer. @default the same request again */
  readonly complete?: (rig: Rig, ctx: Context, first: HttpResponse) => Promise<HttpResponse>;
}

interface Cell {
  readonly scenario: string;
  readonly call: string;
  readonly fault: FaultKind;
  readonly when: FaultPlan["when"];
  readonly faulted: number;
  readonly retried: number;
  readonly notes: string[];
  readonly violations: string[];
}

/** The webhook's first DynamoDB call: reading the session it ends (issue 15), which is best effort. */
const SESSION_END_READ = "0:GetCommand";

describe("DynamoDB faults at every call of every handler that uses DynamoDB (DynamoDB Local)", () => {
  let tables: LocalTables;
  const cells: Cell[] = [];

  beforeAll(async () => {
    tables = await createLocalTables();
  });
  beforeEach(() => {
    T0 = frozenAtRealNow();
  });

  const newRig = (): Rig => {
    const { doc, control } = faultyClient(tables.doc);
    const base = { doc, tables: tables.names, now: requestClock, env: { WEBHOOK_SECRET } };
    const h = createLiveHarness(base);
    const parker = memoryParker();
    return {
      control,
      h,
      failingPush: createLiveHarness({ ...base, pushSucceeds: () => false }),
      webhook: makeWebhook({ ...h.deps, parker }),
      parker,
      webhookNoParking: makeWebhook({ ...h.deps, parker: memoryParker({ fail: true }) }),
      getConversation: makeGetConversation(h.deps),
      listConversations: makeListConversations(h.deps),
    };
  };
  afterAll(async () => {
    console.log(`fault matrix: ${cells.length} cells\n${summarize(cells)}`);
    await tables.drop();
  });

  const items = async (conversationId: string) => {
    const all = await conversationItems(tables.doc, tables.names.conversations, conversationId);
    const session = await tables.doc.send(
      new GetCommand({ TableName: tables.names.sessions, Key: { conversationId }, ConsistentRead: true }),
    );
    return {
      session: session.Item,
      meta: all.find((i) => i.sk === "meta"),
      tasks: all.filter((i) => String(i.sk).startsWith("task#")),
      lines: all.filter((i) => String(i.sk).startsWith("msg#")),
      snapshot: JSON.stringify({ all, session: session.Item }),
    };
  };

  const register = async ({ h }: Rig, conversationId: string, at: number) => {
    const response = await runAt(at, () => h.handlers.register(liveRequests.register(conversationId)));
    expect(response.statusCode).toBe(201);
  };
  const startTask = async ({ h }: Rig, conversationId: string, at: number): Promise<TaskMessage> => {
    const response = await runAt(at, () => h.handlers.callTool(liveRequests.callTool(conversationId)));
    const taskId = bodyOf(response).taskId;
    const message = h.dispatched.find((m) => m.taskId === taskId);
    if (!message) throw new Error(`Tool call was not accepted: ${response.body}`);
    return message;
  };
  const dropSessionItem = (conversationId: string) =>
    tables.doc.send(new DeleteCommand({ TableName: tables.names.sessions, Key: { conversationId } }));

  /** Session item and meta agree, and the meta counts what the history holds. */
  const sessionConsistency = async (_rig: Rig, ctx: Context, responses: HttpResponse[]) => {
    const state = await items(ctx.conversationId);
    const problems: string[] = [];
    const last = state.meta?.lastSession as { sessionId?: string } | undefined;
    if (!state.session) problems.push("no session item");
    if (last?.sessionId !== state.session?.sessionId)
      problems.push("meta.lastSession is not the stored session");
    const registered = state.lines.filter((l) => l.kind === "session_registered").length;
    if (state.meta?.sessionCount !== registered)
      problems.push(
        `sessionCount ${String(state.meta?.sessionCount)} but ${registered} session_registered lines`,
      );
    const final = responses.at(-1);
    if (final && bodyOf(final).sessionId !== state.session?.sessionId)
      problems.push("answered another session");
    if (!(Number(state.session?.expiresAtMs) > ctx.at)) problems.push("session not active after the retry");
    return problems;
  };

  /** The task has exactly one outcome and one result line; pushes at most once. */
  const resultOnce =
    (expected: string) =>
    async ({ h, failingPush }: Rig, ctx: Context) => {
      const message = ctx.message as TaskMessage;
      const state = await items(ctx.conversationId);
      const task = state.tasks.find((t) => t.taskId === message.taskId);
      const lines = state.lines.filter((l) => l.kind === "task_result" && l.id === message.taskId);
      const pushes = [...h.pushes, ...failingPush.pushes].filter((p) => p.taskId === message.taskId).length;
      const problems: string[] = [];
      if (task?.outcome !== expected)
        problems.push(`stored outcome ${String(task?.outcome)}, expected ${expected}`);
      if (lines.length !== 1) problems.push(`${lines.length} task_result lines`);
      if (pushes > 1) problems.push(`${pushes} pushes`);
      return problems;
    };

  const historyRequest = (conversationId: string) =>
    apiEvent({
      method: "GET",
      path: `/conversations/${conversationId}`,
      pathParameters: { conversationId },
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    });
  const listRequest = () =>
    apiEvent({
      method: "GET",
      path: "/conversations",
      query: { limit: "5" },
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    });
  const postCallRequest = (ctx: Context) =>
    webhookRequest(JSON.stringify(transcriptionEvent(ctx.conversationId)), { signedAtMs: ctx.at });

  /** The transcript (3 lines and the analysis) is stored once, and the call facts are on the meta. */
  const transcriptOnce = async (_rig: Rig, ctx: Context) => {
    const state = await items(ctx.conversationId);
    const kinds = state.lines.map((l) => String(l.kind));
    const problems: string[] = [];
    const transcript = kinds.filter((k) => k === "transcript").length;
    const analysis = kinds.filter((k) => k === "call_analysis").length;
    if (transcript !== 3 || analysis !== 1)
      problems.push(`${transcript} transcript lines, ${analysis} analyses`);
    if (state.meta?.status !== "done") problems.push(`meta status ${String(state.meta?.status)}`);
    if (!(state.meta?.call as { summary?: string } | undefined)?.summary)
      problems.push("no call facts on the meta");
    return problems;
  };

  const readOnly = async (_rig: Rig, ctx: Context & { before?: string }) =>
    ctx.before !== undefined && (await items(ctx.conversationId)).snapshot !== ctx.before
      ? ["a read wrote something"]
      : [];

  const withSnapshot = async (ctx: Context) => ({
    ...ctx,
    before: (await items(ctx.conversationId)).snapshot,
  });

  const scenarios: Scenario[] = [
    {
      name: "register-session (new)",
      arrange: async (_rig, conversationId) => ({ conversationId, at: T0 }),
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.register(liveRequests.register(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 201,
      verify: sessionConsistency,
    },
    {
      name: "register-session (refresh)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return { conversationId, at: T0 + 60_000 };
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.register(liveRequests.register(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 201,
      verify: sessionConsistency,
    },
    {
      name: "get-session (active)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return withSnapshot({ conversationId, at: T0 + 1_000 });
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.getSession(liveRequests.getSession(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).status === "active",
      verify: readOnly,
    },
    {
      name: "get-session (expired, item removed by TTL)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        await dropSessionItem(conversationId);
        return withSnapshot({ conversationId, at: T0 + TTL + 5_000 });
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.getSession(liveRequests.getSession(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 410,
      verify: readOnly,
    },
    {
      name: "call-tool",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return { conversationId, at: T0 + 1_000 };
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.callTool(liveRequests.callTool(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).status === "accepted",
      // A fault at the dispatch mark comes after the runner took the task: still accepted, and
      // the agent, having its answer, does not call again.
      faultedOk: (r) => r.statusCode === 200 && bodyOf(r).status === "accepted",
      complete: async (_rig, _ctx, first) => first,
      verify: async ({ h }, ctx, responses) => {
        const state = await items(ctx.conversationId);
        const problems: string[] = [];
        const accepted = bodyOf(responses.at(-1) as HttpResponse).taskId;
        const dispatched = h.dispatched.filter((m) => m.conversationId === ctx.conversationId);
        if (!state.tasks.some((t) => t.taskId === accepted)) problems.push("accepted task not stored");
        if (dispatched.length !== 1) problems.push(`${dispatched.length} tasks dispatched`);
        for (const m of dispatched)
          if (!state.tasks.some((t) => t.taskId === m.taskId))
            problems.push("dispatched a task that is not stored");
        const started = state.lines.filter((l) => l.kind === "task_started").length;
        if (started !== state.tasks.length || state.meta?.taskCount !== state.tasks.length)
          problems.push(
            `tasks ${state.tasks.length}, task_started ${started}, taskCount ${String(state.meta?.taskCount)}`,
          );
        return problems;
      },
    },
    {
      name: "get-task-result (poll)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        await startTask(rig, conversationId, T0 + 1_000);
        return withSnapshot({ conversationId, at: T0 + 2_000 });
      },
      act: ({ h }, ctx) => runAt(ctx.at, () => h.handlers.poll(liveRequests.poll(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).status === "active",
      verify: readOnly,
    },
    {
      name: "record-task-result (delivered)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        const message = await startTask(rig, conversationId, T0 + 1_000);
        return { conversationId, at: T0 + 2_000, message };
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.result(liveRequests.result(ctx.message as TaskMessage))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).outcome === "delivered",
      verify: resultOnce("delivered"),
    },
    {
      name: "record-task-result (after expiry)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        const message = await startTask(rig, conversationId, T0 + 1_000);
        return { conversationId, at: T0 + TTL + 1_000, message };
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.result(liveRequests.result(ctx.message as TaskMessage))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).outcome === "session_expired",
      verify: resultOnce("session_expired"),
    },
    {
      name: "record-task-result (hours late, item removed by TTL)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        const message = await startTask(rig, conversationId, T0 + 1_000);
        await dropSessionItem(conversationId);
        return { conversationId, at: T0 + TTL + 3_600_000, message };
      },
      act: ({ h }, ctx) =>
        runAt(ctx.at, () => h.handlers.result(liveRequests.result(ctx.message as TaskMessage))),
      succeeded: (r) =>
        r.statusCode === 200 &&
        bodyOf(r).outcome === "session_expired" &&
        bodyOf(r).expiredAt === new Date(T0 + TTL).toISOString(),
      verify: resultOnce("session_expired"),
    },
    {
      name: "record-task-result (push fails)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        const message = await startTask(rig, conversationId, T0 + 1_000);
        return { conversationId, at: T0 + 2_000, message };
      },
      act: ({ failingPush }, ctx) =>
        runAt(ctx.at, () => failingPush.handlers.result(liveRequests.result(ctx.message as TaskMessage))),
      succeeded: (r) => r.statusCode === 200 && typeof bodyOf(r).outcome === "string",
      verify: async (rig, ctx) => resultOnceAnyOf(await resultOnce("delivery_failed")(rig, ctx)),
    },
    {
      name: "get-conversation (history)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        const message = await startTask(rig, conversationId, T0 + 1_000);
        await runAt(T0 + 2_000, () => rig.h.handlers.result(liveRequests.result(message)));
        return withSnapshot({ conversationId, at: T0 + TTL + 60_000 });
      },
      act: (rig, ctx) => runAt(ctx.at, () => rig.getConversation(historyRequest(ctx.conversationId))),
      succeeded: (r) => r.statusCode === 200 && Array.isArray(bodyOf(r).messages),
      verify: readOnly,
    },
    {
      name: "list-conversations",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return withSnapshot({ conversationId, at: T0 + 1_000 });
      },
      act: (rig, ctx) => runAt(ctx.at, () => rig.listConversations(listRequest())),
      succeeded: (r) => r.statusCode === 200 && Array.isArray(bodyOf(r).conversations),
      verify: readOnly,
    },
    {
      name: "post-call-webhook (parks what it cannot store)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return { conversationId, at: T0 + TTL + 30_000 };
      },
      act: (rig, ctx) => runAt(ctx.at, () => rig.webhook(postCallRequest(ctx))),
      succeeded: (r) =>
        r.statusCode === 200 && (bodyOf(r).status === "stored" || bodyOf(r).replayed === true),
      // Signed events are never refused (ElevenLabs disables failing webhooks): parked instead.
      // A fault while reading the session to end it (the end of the call) is best effort: the
      // event is stored and the session closes at its expiry (logged as a WARN).
      faultedOk: (r, call) =>
        r.statusCode === 200 &&
        (bodyOf(r).status === "parked" || (bodyOf(r).status === "stored" && call === SESSION_END_READ)),
      // The operator's `npm run replay-parked` completes it.
      complete: async (rig) => {
        const results = await replayParked({ conversations: rig.h.deps.conversations }, rig.parker.parked);
        const stored = results.every((r) => r.outcome === "stored");
        return { statusCode: stored ? 200 : 500, body: JSON.stringify({ replayed: stored, results }) };
      },
      verify: transcriptOnce,
    },
    {
      name: "post-call-webhook (parking down too)",
      arrange: async (rig, conversationId) => {
        await register(rig, conversationId, T0);
        return { conversationId, at: T0 + TTL + 30_000 };
      },
      act: (rig, ctx) => runAt(ctx.at, () => rig.webhookNoParking(postCallRequest(ctx))),
      succeeded: (r) => r.statusCode === 200 && bodyOf(r).status === "stored",
      faultedOk: (r, call) =>
        r.statusCode === 200 && bodyOf(r).status === "stored" && call === SESSION_END_READ,
      verify: transcriptOnce,
    },
  ];

  /** Runs one cell: arrange, inject the fault at call k, answer, retry cleanly, verify. */
  const runCell = async (
    scenario: Scenario,
    k: number,
    call: string,
    fault: FaultKind,
    when: FaultPlan["when"],
  ) => {
    const rig = newRig();
    const ctx = await scenario.arrange(rig, `fault-${randomUUID()}`);
    rig.control.reset({ atCall: k, kind: fault, when });
    const first = await scenario.act(rig, ctx);
    const injected = rig.control.injected;
    rig.control.reset();
    const responses = [first];
    const notes: string[] = [];
    const violations: string[] = [];
    if (injected !== 1) violations.push(`fault not reached (${injected})`);
    if (fault === "TransactionConflict") {
      // Cancelled by a concurrent transaction: retried inside transactWrite, so no 503.
      if (!scenario.succeeded(first)) violations.push(`conflict answered ${first.statusCode} ${first.body}`);
    } else {
      if (scenario.faultedOk?.(first, `${k}:${call}`))
        notes.push(`documented answer ${first.statusCode} ${String(bodyOf(first).status)}`);
      else if (first.statusCode !== 503) violations.push(`answered ${first.statusCode} ${first.body}`);
      else {
        const retryAfter = Number(first.headers?.["retry-after"]);
        if (!(retryAfter >= 1)) violations.push("503 without Retry-After");
        if (bodyOf(first).error !== "service_unavailable") violations.push(`error ${first.body}`);
        if (/Exception|socket|timed out|at .*\.ts/.test(first.body)) violations.push("leaks the SDK error");
      }
      const retry =
        scenario.faultedOk?.(first, `${k}:${call}`) && scenario.complete
          ? await scenario.complete(rig, ctx, first)
          : await scenario.act(rig, ctx);
      responses.push(retry);
      if (!scenario.succeeded(retry)) violations.push(`retry answered ${retry.statusCode} ${retry.body}`);
      if (bodyOf(retry).duplicate === true) notes.push("retry answered duplicate:true");
    }
    violations.push(...(await scenario.verify(rig, ctx, responses)));
    cells.push({
      scenario: scenario.name,
      call: `${k}:${call}`,
      fault,
      when,
      faulted: first.statusCode,
      retried: responses.at(-1)?.statusCode ?? 0,
      notes: [...notes, ...(await knownGaps(rig, scenario.name, ctx))],
      violations,
    });
  };

  for (const scenario of scenarios) {
    it(`${scenario.name}: every fault at every DynamoDB call is a 503 with Retry-After (or its documented answer), and the retry completes it`, async () => {
      // 1. Which calls does the request make? (A clean run; it must succeed and pass its checks.)
      const rig = newRig();
      const probe = await scenario.arrange(rig, `probe-${randomUUID()}`);
      rig.control.reset();
      const clean = await scenario.act(rig, probe);
      const calls = [...rig.control.calls];
      expect(scenario.succeeded(clean), clean.body).toBe(true);
      expect(await scenario.verify(rig, probe, [clean])).toEqual([]);
      expect(calls.length).toBeGreaterThan(0);

      // 2. Each fault at each call (timeouts and resets also after DynamoDB applied it), in parallel.
      const plans = calls.flatMap((call, k) =>
        faultsFor(call).flatMap((fault) =>
          (fault === "Timeout" || fault === "NetworkReset"
            ? (["before", "after"] as const)
            : (["before"] as const)
          ).map((when) => () => runCell(scenario, k, call, fault, when)),
        ),
      );
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          for (let plan = plans.shift(); plan; plan = plans.shift()) await plan();
        }),
      );
      const failed = cells.filter((c) => c.scenario === scenario.name && c.violations.length > 0);
      expect(failed).toEqual([]);
    });
  }

  /** Gaps the matrix observes but does not fail on: reported, with their own failing tests below. */
  const knownGaps = async ({ h }: Rig, scenario: string, ctx: Context): Promise<string[]> => {
    const gaps: string[] = [];
    if (scenario === "record-task-result (delivered)" && ctx.message) {
      const pushes = h.pushes.filter((p) => p.taskId === ctx.message?.taskId).length;
      if (pushes === 0) gaps.push("GAP: stored as delivered but never pushed");
    }
    if (scenario === "call-tool") {
      const state = await items(ctx.conversationId);
      const dispatched = new Set(h.dispatched.map((m) => m.taskId));
      // Never dispatched and not marked as such: it would stay pending forever (an orphan). A task
      // still marked `dispatch: pending` reads as abandoned after the deadline instead.
      const orphans = state.tasks.filter(
        (t) => !dispatched.has(String(t.taskId)) && t.dispatch !== "pending",
      ).length;
      if (orphans > 0) gaps.push(`GAP: ${orphans} pending task(s) recorded but never dispatched`);
    }
    if (scenario === "record-task-result (push fails)" && ctx.message) {
      const task = (await items(ctx.conversationId)).tasks.find((t) => t.taskId === ctx.message?.taskId);
      if (task?.outcome !== "delivery_failed")
        gaps.push(`GAP: push failed but stored outcome is ${String(task?.outcome)}`);
    }
    return gaps;
  };

  /** In the push-fails scenario a stale "delivered" is a known gap (reported), not a matrix failure. */
  const resultOnceAnyOf = (problems: string[]) =>
    problems.filter((p) => !p.startsWith("stored outcome delivered, expected delivery_failed"));

  /**
   * One faulted attempt and one clean retry of a scenario. The fault goes to the call `pick`
   * chooses among the calls a clean run makes; when there is no such call (the code no longer
   * makes it), there is nothing to fault and the request simply runs once.
   */
  const faultThenRetry = async (
    name: string,
    pick: (calls: string[]) => number,
    fault: Pick<FaultPlan, "kind" | "when">,
  ) => {
    const scenario = scenarios.find((s) => s.name === name);
    if (!scenario) throw new Error(name);
    const probe = newRig();
    const probeCtx = await scenario.arrange(probe, `probe-${randomUUID()}`);
    probe.control.reset();
    await scenario.act(probe, probeCtx);
    const atCall = pick([...probe.control.calls]);
    const rig = newRig();
    const ctx = await scenario.arrange(rig, `gap-${randomUUID()}`);
    if (atCall >= 0) {
      rig.control.reset({ atCall, ...fault });
      expect((await scenario.act(rig, ctx)).statusCode).toBe(503);
      rig.control.reset();
    }
    expect((await scenario.act(rig, ctx)).statusCode).toBe(200);
    return { rig, ctx, taskId: ctx.message?.taskId ?? "" };
  };
  const firstTransaction = (calls: string[]) => calls.indexOf("TransactWriteCommand");
  const readAfterCommit = (calls: string[]) =>
    calls.findIndex((c, i) => c === "GetCommand" && i > calls.indexOf("TransactWriteCommand"));
  // A failed push is recorded (task and history line) by the handler's last transaction.
  const failedPushRecord = (calls: string[]) => calls.lastIndexOf("TransactWriteCommand");

  // A half-done live push: the result is stored with push "pending", and the runner's retry
  // (answered as a duplicate) claims and finishes the push, still at most once.
  it("when the answer to the committing write is lost, the retry still pushes the result once", async () => {
    const { rig, taskId } = await faultThenRetry("record-task-result (delivered)", firstTransaction, {
      kind: "Timeout",
      when: "after",
    });
    expect(rig.h.pushes.filter((p) => p.taskId === taskId)).toHaveLength(1);
  });

  it("when the read after the commit is throttled, the retry still pushes the result once", async () => {
    const { rig, taskId } = await faultThenRetry("record-task-result (delivered)", readAfterCommit, {
      kind: "Throttling",
      when: "before",
    });
    expect(rig.h.pushes.filter((p) => p.taskId === taskId)).toHaveLength(1);
  });

  // KNOWN GAP (expected to fail): the push already failed and was claimed, so the retry cannot
  // tell; the stored outcome stays "delivered" while the result itself is safely stored.
  it.fails("KNOWN GAP when recording delivery_failed is throttled, the retry still records delivery_failed", async () => {
    const { ctx, taskId } = await faultThenRetry("record-task-result (push fails)", failedPushRecord, {
      kind: "Throttling",
      when: "before",
    });
    const task = (await items(ctx.conversationId)).tasks.find((t) => t.taskId === taskId);
    expect(task?.outcome).toBe("delivery_failed");
  });

  // Issue 19, reproduction 5: the task transaction is applied but its answer is lost (DynamoDB slow,
  // the SDK gave up): the caller got a 503, the task was never dispatched and no one holds its
  // token. It must not stay pending forever: it reads as abandoned once the deadline passed.
  it("a task whose create answer was lost is never dispatched and reads as abandoned after the deadline", async () => {
    const { rig, ctx } = await faultThenRetry("call-tool", firstTransaction, {
      kind: "Timeout",
      when: "after",
    });
    const state = await items(ctx.conversationId);
    expect(state.tasks).toHaveLength(2);
    const dispatched = new Set(rig.h.dispatched.map((m) => m.taskId));
    const lost = state.tasks.find((t) => !dispatched.has(String(t.taskId)));
    expect(lost).toMatchObject({ status: "pending", dispatch: "pending" });
    const poll = (atMs: number) =>
      runAt(atMs, () => rig.h.handlers.poll(liveRequests.poll(ctx.conversationId)));
    const statuses = async (atMs: number) =>
      Object.fromEntries(
        (bodyOf(await poll(atMs)).tasks as { taskId: string; status: string }[]).map((t) => [
          t.taskId === lost?.taskId ? "lost" : "retried",
          t.status,
        ]),
      );
    const createdMs = Date.parse(String(lost?.createdAt));
    expect(await statuses(createdMs + DISPATCH_DEADLINE_MS - 1)).toEqual({
      lost: "pending",
      retried: "pending",
    });
    expect(await statuses(createdMs + DISPATCH_DEADLINE_MS)).toEqual({
      lost: "abandoned",
      retried: "pending",
    });
    const history = await runAt(createdMs + DISPATCH_DEADLINE_MS, () =>
      rig.getConversation(
        apiEvent({
          method: "GET",
          path: `/conversations/${ctx.conversationId}`,
          pathParameters: { conversationId: ctx.conversationId },
          headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
        }),
      ),
    );
    const shown = (bodyOf(history).tasks as { taskId: string; status: string }[]).find(
      (t) => t.taskId === lost?.taskId,
    );
    expect(shown?.status).toBe("abandoned");
  });

  it("covered every live-path handler, every call and every fault kind", () => {
    const byScenario = new Set(cells.map((c) => c.scenario));
    expect(byScenario.size).toBe(scenarios.length);
    const kinds = new Set(cells.map((c) => c.fault));
    expect([...kinds].sort()).toEqual(
      [
        "NetworkReset",
        "ProvisionedThroughputExceeded",
        "Throttling",
        "Timeout",
        "TransactionConflict",
        "TransactionConflictException",
      ].sort(),
    );
    expect(cells.length).toBeGreaterThan(100);
  });
});

const summarize = (cells: readonly Cell[]): string => {
  const lines: string[] = [];
  const byScenario = new Map<string, Cell[]>();
  for (const cell of cells) byScenario.set(cell.scenario, [...(byScenario.get(cell.scenario) ?? []), cell]);
  for (const [scenario, group] of byScenario) {
    const calls = [...new Set(group.map((c) => c.call))].join(", ");
    const statuses = group.reduce<Record<string, number>>((acc, c) => {
      const key = `${c.faulted}->${c.retried}`;
      acc[key] = (acc[key] ?? 0) + 1;
      return acc;
    }, {});
    const gaps = [...new Set(group.flatMap((c) => c.notes.filter((n) => n.startsWith("GAP"))))];
    const gapCells = group
      .filter((c) => c.notes.some((n) => n.startsWith("GAP")))
      .map((c) => `${c.call}/${c.fault}/${c.when}`);
    const violations = group.filter((c) => c.violations.length > 0).length;
    lines.push(
      `- ${scenario}: ${group.length} cells over [${calls}] statuses ${JSON.stringify(statuses)} violations ${violations}` +
        (gaps.length > 0 ? `\n    ${gaps.join("; ")} in ${gapCells.join(", ")}` : ""),
    );
  }
  return lines.join("\n");
};

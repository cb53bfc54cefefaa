import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskRecord } from "../../functions/core/conversation-items.js";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import type { HttpResponse } from "../../functions/core/http.js";
import { makeHandler as makeWebhook } from "../../functions/post-call-webhook/handler.js";
import { measureUnitMs, timeLimitFor } from "../support/budget.js";
import { frozenAtRealNow } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { bodyOf } from "../support/events.js";
import { conflictingClient, observedClient } from "../support/fault-client.js";
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
 * Expiry races on DynamoDB Local. Each trial registers a fresh conversation, starts a task, then
 * fires concurrent requests whose clocks straddle the session's expiry instant
 * (createdAtMs + 600 000). Every request has its own clock (see request-clock.ts), so in one trial
 * a callback can be 1 ms early while its duplicate is 1 ms late; in half the trials the clock also
 * advances 1 ms on every read, so the instant passes in the middle of a request.
 *
 * After each trial: exactly one stored outcome per task, consistent with the instant the result
 * was received; exactly one `task_result` line; at most one push (exactly one iff delivered);
 * every response 200 (a 503 is retried like a runner would, and counted).
 *
 * DynamoDB Local runs transactions one at a time and never cancels one for a TransactionConflict,
 * which real DynamoDB does whenever two transactions touch the same item (here: the conversation's
 * meta, touched by every write). So half of all transactions are cancelled that way on purpose:
 * `transactWrite` retries them, and when 7 attempts in a row conflict the caller gets a 503.
 */

const TTL = 600_000;
const DELTAS = [-2, -1, 0, 1, 2] as const;
const CONCURRENCY = 20;
/** Share of transactions cancelled with TransactionConflict (DynamoDB Local never reports it). */
const CONFLICT_RATE = 0.5;
const TRIALS = {
  expiryInstant: 400,
  duplicates: 300,
  reRegistration: 150,
  deletion: 100,
  postCallWebhook: 100,
} as const;
/**
 * What one trial of each test costs, in calibration trials (register, tool call, one callback, at
 * the same concurrency). Measured on a loaded 2-core machine: 0.5–1.0 for every test (the
 * duplicates test, with 2–10 copies of a callback, the dearest), so 1 each; HEADROOM covers the rest.
 */
const TRIAL_COST: Record<keyof typeof TRIALS, number> = {
  expiryInstant: 1,
  duplicates: 1,
  reRegistration: 1,
  deletion: 1,
  postCallWebhook: 1,
};

interface RaceStats {
  trials: number;
  outcomes: Record<string, number>;
  toolCalls: Record<string, number>;
  duplicateAnswers: number;
  deliveredThanksToReRegistration: number;
  webhooks: Record<string, number>;
  dynamoCalls: Record<string, number>;
  dynamoFailures: Record<string, number>;
  retried503: number;
  final5xx: number;
  resultsLost: number;
  resultsStoredTwice: number;
  doublePushes: number;
  violations: string[];
}

const stats: RaceStats = {
  trials: 0,
  outcomes: {},
  toolCalls: {},
  duplicateAnswers: 0,
  deliveredThanksToReRegistration: 0,
  webhooks: {},
  dynamoCalls: {},
  dynamoFailures: {},
  retried503: 0,
  final5xx: 0,
  resultsLost: 0,
  resultsStoredTwice: 0,
  doublePushes: 0,
  violations: [],
};

const bump = (histogram: Record<string, number>, key: string) => {
  histogram[key] = (histogram[key] ?? 0) + 1;
};

/**
 * Sends a request at a logical time; a 503 is retried like a task runner would: after its
 * Retry-After (in logical time), after a short real pause so competing transactions finish.
 */
const send = async (
  startMs: number,
  tickMs: number,
  call: () => Promise<HttpResponse>,
  tally: Pick<RaceStats, "final5xx" | "retried503" | "violations"> = stats,
): Promise<HttpResponse> => {
  let at = startMs;
  for (let attempt = 0; ; attempt++) {
    const response = await runAt(at, call, tickMs);
    if (response.statusCode !== 503 || attempt >= 8) {
      if (response.statusCode >= 500) tally.final5xx++;
      return response;
    }
    tally.retried503++;
    const retryAfter = Number(response.headers?.["retry-after"]);
    if (!(retryAfter > 0)) tally.violations.push(`503 without Retry-After: ${response.body}`);
    at += retryAfter * 1000;
    await sleep(2 + Math.random() * 15);
  }
};

/**
 * The time limits come from a measured budget: 60 calibration trials (after 40 to warm up),
 * `CONCURRENCY` at a time as in the races, on their own tables with the same conflicting client,
 * just before the races are declared. A loaded machine measures slower and gets proportionally
 * longer limits (printed); the trial counts never change.
 */
const CALIBRATION = { runs: 60, concurrency: CONCURRENCY, warmUps: 40 } as const;
const untallied = { final5xx: 0, retried503: 0, violations: [] as string[] };
const calibrationTrialMs = await (async () => {
  const own = await createLocalTables();
  try {
    const cal = createLiveHarness({
      doc: conflictingClient(own.doc, CONFLICT_RATE),
      tables: own.names,
      now: requestClock,
    });
    return await measureUnitMs(async (i) => {
      const conversationId = `calibrate-${i}-${randomUUID().slice(0, 8)}`;
      const t0 = frozenAtRealNow();
      await send(t0, 0, () => cal.handlers.register(liveRequests.register(conversationId)), untallied);
      await send(
        t0 + 1_000,
        0,
        () => cal.handlers.callTool(liveRequests.callTool(conversationId)),
        untallied,
      );
      const message = cal.dispatched.find((m) => m.conversationId === conversationId);
      // (Seldom, a request still answers 503 after its retries: its time was measured all the same.)
      if (message)
        await send(t0 + 2_000, 0, () => cal.handlers.result(liveRequests.result(message)), untallied);
    }, CALIBRATION);
  } finally {
    await own.drop();
  }
})();
const LIMIT_MS = Object.fromEntries(
  Object.entries(TRIALS).map(([name, count]) => [
    name,
    timeLimitFor(count * TRIAL_COST[name as keyof typeof TRIALS], calibrationTrialMs),
  ]),
) as Record<keyof typeof TRIALS, number>;
console.log(
  `race budget: one calibration trial ${calibrationTrialMs.toFixed(1)} ms here now; time limits (s) ${JSON.stringify(
    Object.fromEntries(Object.entries(LIMIT_MS).map(([name, ms]) => [name, Math.round(ms / 1000)])),
  )}`,
);

describe("expiry races on DynamoDB Local", () => {
  let tables: LocalTables;
  let h: LiveHarness;
  let webhook: ReturnType<typeof makeWebhook>;
  const parker = memoryParker();

  beforeAll(async () => {
    tables = await createLocalTables();
    // Half of all transactions are cancelled by a (simulated) concurrent one, as on real DynamoDB.
    const observed = observedClient(conflictingClient(tables.doc, CONFLICT_RATE));
    stats.dynamoCalls = observed.seen.calls;
    stats.dynamoFailures = observed.seen.failures;
    h = createLiveHarness({
      doc: observed.doc,
      tables: tables.names,
      now: requestClock,
      env: { WEBHOOK_SECRET },
    });
    webhook = makeWebhook({ ...h.deps, parker });
  });
  afterAll(async () => {
    await tables.drop();
  });

  /** Registers a conversation at `t0` and starts one task at `t0 + 1 000`; returns its message. */
  const prepare = async (label: string, t0: number) => {
    const conversationId = `${label}-${randomUUID().slice(0, 12)}`;
    const registered = await send(t0, 0, () => h.handlers.register(liveRequests.register(conversationId)));
    expect(registered.statusCode).toBe(201);
    const accepted = await send(t0 + 1000, 0, () =>
      h.handlers.callTool(liveRequests.callTool(conversationId)),
    );
    expect(bodyOf(accepted)).toMatchObject({ status: "accepted" });
    const message = h.dispatched.find((m) => m.conversationId === conversationId);
    if (!message) throw new Error(`No task was dispatched for ${conversationId}`);
    // A registration retried after a 503 starts its window later: take the window it answered.
    return { conversationId, message, expiresAtMs: Date.parse(String(bodyOf(registered).expiresAt)) };
  };

  /** Every item of a conversation (meta, tasks, history lines) in one consistent query. */
  const partition = async (conversationId: string) => {
    const items = await conversationItems(tables.doc, tables.names.conversations, conversationId);
    const tasks = items.filter((item) => String(item.sk).startsWith("task#")) as unknown as TaskRecord[];
    return {
      meta: items.find((item) => item.sk === "meta"),
      tasks,
      messages: items.filter((item) => String(item.sk).startsWith("msg#")),
    };
  };

  /** Checks the exactly-once properties of one task after its callbacks settled. */
  const verifyTask = async (
    trial: string,
    message: TaskMessage,
    responses: HttpResponse[],
  ): Promise<TaskRecord | undefined> => {
    const { conversationId, taskId } = message;
    const fail = (what: string) => {
      stats.violations.push(`${trial}: ${what}`);
    };
    const items = await partition(conversationId);
    const task = items.tasks.find((t) => t.taskId === taskId);
    const lines = items.messages.filter((m) => m.kind === "task_result" && m.id === taskId) as {
      data?: { outcome?: string; result?: unknown };
    }[];
    const pushes = h.pushes.filter((p) => p.taskId === taskId).length;
    if (!task?.outcome || lines.length === 0) {
      stats.resultsLost++;
      fail(`result lost (outcome ${task?.outcome}, ${lines.length} lines)`);
      return undefined;
    }
    if (lines.length > 1) {
      stats.resultsStoredTwice++;
      fail(`result stored ${lines.length} times`);
    }
    if (pushes > 1) {
      stats.doublePushes++;
      fail(`pushed ${pushes} times`);
    }
    if (pushes !== (task.outcome === "delivered" ? 1 : 0))
      fail(`${pushes} pushes for outcome ${task.outcome}`);
    if (task.status !== "completed") fail(`status ${task.status}`);
    const line = lines[0];
    if (line?.data?.outcome !== task.outcome) fail(`history says ${String(line?.data?.outcome)}`);
    if (JSON.stringify(line?.data?.result) !== JSON.stringify(task.result)) fail("history result differs");
    const bodies = responses.map(bodyOf);
    for (const response of responses) if (response.statusCode !== 200) fail(`status ${response.statusCode}`);
    const firsts = bodies.filter((b) => b.duplicate !== true);
    if (firsts.length !== 1) fail(`${firsts.length} non-duplicate answers`);
    stats.duplicateAnswers += bodies.length - firsts.length;
    for (const body of bodies) {
      if (body.outcome !== task.outcome) fail(`answered ${String(body.outcome)} but stored ${task.outcome}`);
    }
    bump(stats.outcomes, task.outcome);
    return task;
  };

  /** Runs `count` trials, `CONCURRENCY` conversations at a time (a pool, not lock-step batches). */
  const runTrials = async (count: number, trial: (i: number) => Promise<void>) => {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        await trial(i);
        stats.trials++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };

  it(
    `resolves ${TRIALS.expiryInstant} callbacks (1–3 copies) and tool calls landing within ±2 ms of the expiry instant`,
    async () => {
      await runTrials(TRIALS.expiryInstant, async (i) => {
        const t0 = frozenAtRealNow();
        const { conversationId, message, expiresAtMs } = await prepare("instant", t0);
        const tick = i % 2;
        const copies = 1 + (i % 3);
        const [tool, ...callbacks] = await Promise.all([
          send(expiresAtMs + (DELTAS[(i + 2) % 5] ?? 0), tick, () =>
            h.handlers.callTool(liveRequests.callTool(conversationId)),
          ),
          ...Array.from({ length: copies }, (_, k) =>
            send(expiresAtMs + (DELTAS[(i + k) % 5] ?? 0), tick, () =>
              h.handlers.result(liveRequests.result(message, { result: { copy: k } })),
            ),
          ),
        ]);
        const trial = `instant#${i}`;
        const task = await verifyTask(trial, message, callbacks);
        if (task) {
          const receivedAtMs = Date.parse(task.resultAt ?? "");
          const expected = receivedAtMs < expiresAtMs ? "delivered" : "session_expired";
          if (task.outcome !== expected) {
            stats.violations.push(
              `${trial}: ${task.outcome} at ${receivedAtMs - expiresAtMs} ms from expiry`,
            );
          }
        }
        // The concurrent tool call: accepted only while the session is active, never an error.
        const toolBody = bodyOf(tool);
        bump(stats.toolCalls, String(toolBody.status));
        const { tasks } = await partition(conversationId);
        if (toolBody.status === "accepted") {
          const created = tasks.find((t) => t.taskId === toolBody.taskId);
          if (!created) stats.violations.push(`${trial}: accepted tool task not recorded`);
          // With a ticking clock the task's createdAt is read 1 ms after the guard's instant.
          else if (Date.parse(created.createdAt) >= expiresAtMs + tick)
            stats.violations.push(`${trial}: task accepted at ${created.createdAt}, after expiry`);
        } else if (toolBody.status !== "session_expired" || tasks.length !== 1) {
          stats.violations.push(
            `${trial}: tool answered ${tool.statusCode} ${tool.body} with ${tasks.length} tasks`,
          );
        }
      });
      expect(stats.violations.filter((v) => v.startsWith("instant#"))).toEqual([]);
    },
    LIMIT_MS.expiryInstant,
  );

  it(
    `stores a callback sent 2–10 times concurrently exactly once (${TRIALS.duplicates} trials)`,
    async () => {
      await runTrials(TRIALS.duplicates, async (i) => {
        const t0 = frozenAtRealNow();
        const { message, expiresAtMs } = await prepare("dupes", t0);
        const copies = 2 + (i % 9);
        // Half the trials well inside the window, half straddling the expiry instant.
        const centre = i % 2 === 0 ? t0 + 2_000 + Math.floor(Math.random() * (TTL - 4_000)) : expiresAtMs;
        const callbacks = await Promise.all(
          Array.from({ length: copies }, (_, k) =>
            send(centre + (DELTAS[(i + k) % 5] ?? 0), k % 2, () =>
              h.handlers.result(liveRequests.result(message, { result: { copy: k } })),
            ),
          ),
        );
        const trial = `dupes#${i}`;
        const task = await verifyTask(trial, message, callbacks);
        if (task) {
          const receivedAtMs = Date.parse(task.resultAt ?? "");
          if (receivedAtMs < expiresAtMs !== (task.outcome === "delivered"))
            stats.violations.push(
              `${trial}: ${task.outcome} at ${receivedAtMs - expiresAtMs} ms from expiry`,
            );
          const copy = (task.result as { result?: { copy?: number } }).result?.copy;
          if (copy === undefined || copy < 0 || copy >= copies)
            stats.violations.push(`${trial}: stored result is none of the ones sent`);
        }
      });
      expect(stats.violations.filter((v) => v.startsWith("dupes#"))).toEqual([]);
    },
    LIMIT_MS.duplicates,
  );

  it(
    `has one outcome when a re-registration races a callback at the expiry instant (${TRIALS.reRegistration} trials)`,
    async () => {
      await runTrials(TRIALS.reRegistration, async (i) => {
        const t0 = frozenAtRealNow();
        const { conversationId, message, expiresAtMs } = await prepare("rereg", t0);
        const [registered, ...callbacks] = await Promise.all([
          send(expiresAtMs + (DELTAS[(i + 1) % 5] ?? 0), 0, () =>
            h.handlers.register(liveRequests.register(conversationId)),
          ),
          send(expiresAtMs + (DELTAS[i % 5] ?? 0), i % 2, () =>
            h.handlers.result(liveRequests.result(message)),
          ),
          ...(i % 3 === 0
            ? [
                send(expiresAtMs + (DELTAS[(i + 3) % 5] ?? 0), 0, () =>
                  h.handlers.result(liveRequests.result(message)),
                ),
              ]
            : []),
        ]);
        const trial = `rereg#${i}`;
        if (registered.statusCode !== 201)
          stats.violations.push(`${trial}: register answered ${registered.statusCode}`);
        const task = await verifyTask(trial, message, callbacks);
        if (!task) return;
        const receivedAtMs = Date.parse(task.resultAt ?? "");
        if (task.outcome === "session_expired") {
          // Expired only if the old window was over, and then it says when that window ended.
          if (receivedAtMs < expiresAtMs)
            stats.violations.push(`${trial}: expired ${expiresAtMs - receivedAtMs} ms early`);
          if (task.expiredAt !== new Date(expiresAtMs).toISOString())
            stats.violations.push(`${trial}: expiredAt ${task.expiredAt}`);
        } else if (receivedAtMs >= expiresAtMs) {
          stats.deliveredThanksToReRegistration++;
        }
        const { meta } = await partition(conversationId);
        if (meta?.sessionCount !== 2)
          stats.violations.push(`${trial}: sessionCount ${String(meta?.sessionCount)}`);
      });
      expect(stats.violations.filter((v) => v.startsWith("rereg#"))).toEqual([]);
    },
    LIMIT_MS.reRegistration,
  );

  it(
    `has one outcome when the session is deleted while a callback lands just before expiry (${TRIALS.deletion} trials)`,
    async () => {
      await runTrials(TRIALS.deletion, async (i) => {
        const t0 = frozenAtRealNow();
        const { conversationId, message, expiresAtMs } = await prepare("delete", t0);
        const [callback] = await Promise.all([
          send(expiresAtMs - 1 - (i % 3), i % 2, () => h.handlers.result(liveRequests.result(message))),
          runAt(expiresAtMs - 3, () => h.deps.sessions.delete(conversationId)),
        ]);
        const trial = `delete#${i}`;
        const task = await verifyTask(trial, message, callback ? [callback] : []);
        if (task?.outcome === "session_expired") {
          const expiredAtMs = Date.parse(task.expiredAt ?? "");
          if (!(expiredAtMs <= Date.parse(task.resultAt ?? "")))
            stats.violations.push(`${trial}: expiredAt ${task.expiredAt} after resultAt ${task.resultAt}`);
        }
      });
      expect(stats.violations.filter((v) => v.startsWith("delete#"))).toEqual([]);
    },
    LIMIT_MS.deletion,
  );

  it(
    `has one outcome when the post-call webhook races a late callback on the same conversation (${TRIALS.postCallWebhook} trials)`,
    async () => {
      await runTrials(TRIALS.postCallWebhook, async (i) => {
        const t0 = frozenAtRealNow();
        const { conversationId, message, expiresAtMs } = await prepare("postcall", t0);
        // ElevenLabs sends the transcript right after the call ends, i.e. around the session's expiry.
        const at = expiresAtMs + (DELTAS[i % 5] ?? 0) * 500;
        const body = JSON.stringify(transcriptionEvent(conversationId, { startSecs: Math.floor(t0 / 1000) }));
        const copies = 1 + (i % 3);
        const [delivered, ...callbacks] = await Promise.all([
          send(at, 0, () => webhook(webhookRequest(body, { signedAtMs: at }))),
          ...Array.from({ length: copies }, (_, k) =>
            send(expiresAtMs + (DELTAS[(i + k) % 5] ?? 0), k % 2, () =>
              h.handlers.result(liveRequests.result(message, { result: { copy: k } })),
            ),
          ),
        ]);
        const trial = `postcall#${i}`;
        const status = String(bodyOf(delivered).status);
        bump(stats.webhooks, status);
        if (delivered.statusCode !== 200 || status !== "stored")
          stats.violations.push(`${trial}: webhook answered ${delivered.statusCode} ${delivered.body}`);
        const task = await verifyTask(trial, message, callbacks);
        const { meta, messages } = await partition(conversationId);
        if (task) {
          // Every request has its own clock, so which of the webhook (the end of the call) and a
          // callback ran first is the store's serialization order, not their clocks. What must hold:
          // delivered only before the expiry instant; timed_out only from it, saying that instant;
          // call_ended only if the webhook did end that session, never later than the callback.
          const lastSession = meta?.lastSession as { endedAtMs?: number; endReason?: string } | undefined;
          const receivedAtMs = Date.parse(task.resultAt ?? "");
          const expiredAtMs = Date.parse(task.expiredAt ?? "");
          if (task.outcome === "delivered" && receivedAtMs >= expiresAtMs)
            stats.violations.push(`${trial}: delivered ${receivedAtMs - expiresAtMs} ms after expiry`);
          if (task.outcome === "session_expired" && task.endReason === "timed_out") {
            if (receivedAtMs < expiresAtMs)
              stats.violations.push(`${trial}: timed out ${expiresAtMs - receivedAtMs} ms early`);
            if (expiredAtMs !== expiresAtMs) stats.violations.push(`${trial}: expiredAt ${task.expiredAt}`);
          }
          if (task.outcome === "session_expired" && task.endReason === "call_ended") {
            if (lastSession?.endReason !== "call_ended" || lastSession.endedAtMs === undefined)
              stats.violations.push(`${trial}: call_ended but the meta says ${JSON.stringify(lastSession)}`);
            if (!(expiredAtMs <= receivedAtMs && expiredAtMs <= expiresAtMs))
              stats.violations.push(`${trial}: call_ended expiredAt ${task.expiredAt}`);
          }
          if (
            task.outcome === "session_expired" &&
            !["timed_out", "call_ended"].includes(String(task.endReason))
          )
            stats.violations.push(`${trial}: reason ${String(task.endReason)}`);
        }
        // The transcript is whole and stored once, next to the one task result.
        const kinds = messages.map((m) => String(m.kind));
        const transcript = kinds.filter((k) => k === "transcript").length;
        const analysis = kinds.filter((k) => k === "call_analysis").length;
        if (transcript !== 3 || analysis !== 1)
          stats.violations.push(`${trial}: ${transcript} transcript lines, ${analysis} analyses`);
        if (meta?.status !== "done" || !(meta.call as { summary?: string } | undefined)?.summary)
          stats.violations.push(`${trial}: meta after the webhook ${JSON.stringify(meta)}`);
      });
      expect(parker.parked).toEqual([]);
      expect(stats.violations.filter((v) => v.startsWith("postcall#"))).toEqual([]);
    },
    LIMIT_MS.postCallWebhook,
  );

  it("ran at least 1 000 trials with zero 5xx, no lost, doubled or double-pushed result", () => {
    console.log(`race summary ${JSON.stringify(stats, null, 2)}`);
    expect(stats.trials).toBeGreaterThanOrEqual(1000);
    expect(stats.final5xx).toBe(0);
    expect(stats.resultsLost).toBe(0);
    expect(stats.resultsStoredTwice).toBe(0);
    expect(stats.doublePushes).toBe(0);
    expect(stats.violations).toEqual([]);
    // Both sides of the instant were exercised.
    expect(stats.outcomes.delivered).toBeGreaterThan(100);
    expect(stats.outcomes.session_expired).toBeGreaterThan(100);
  });
});

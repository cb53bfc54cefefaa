import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../../functions/core/clock.js";
import type { ConversationStore } from "../../../functions/core/conversation-store.js";
import type { ConversationAnswer } from "../../../functions/core/elevenlabs-conversations.js";
import {
  CLAIM_LEASE_MS,
  classifyAnswer,
  MAX_ATTEMPTS,
  RETRY_BASE_MS,
  RETRY_CAP_MS,
  type ReconcileDeps,
  retryDelayMs,
  runReconcilePass,
} from "../../../functions/core/reconcile.js";
import type {
  ClaimedConversation,
  DueEntry,
  ReconcileOutcome,
  TranscriptBacklog,
} from "../../../functions/core/transcript-backlog.js";
import { reconcileShardOf, reconcileShards } from "../../../functions/core/transcript-backlog.js";
import { captureMetrics } from "../../support/live-fixtures.js";
import { captureLogger } from "../../support/log-capture.js";
import { transcriptionEvent } from "../../support/post-call-fixtures.js";

const ID = "conv_01";
const ok = (body: unknown): ConversationAnswer => ({ kind: "ok", body });
const NOW = 1_800_000_000_000;

describe("classifyAnswer", () => {
  it("stores a done conversation as the webhook's own transcription event", () => {
    const decision = classifyAnswer(ok(transcriptionEvent(ID).data), ID, NOW);
    expect(decision.kind).toBe("store");
    if (decision.kind !== "store") return;
    expect(decision.event).toMatchObject({
      kind: "transcription",
      conversationId: ID,
      agentId: "agent_01jxyz",
    });
    expect(decision.event.messages.map((m) => m.id)).toEqual(["t-0", "t-1", "t-2", "analysis"]);
  });

  it("interprets ElevenLabs' exact text: 1e400 is kept as noted text, as the webhook keeps it", () => {
    const text = JSON.stringify(transcriptionEvent(ID).data).replace(
      '"data_collection_results":{',
      '"data_collection_results":{"lap":{"value":1e400},',
    );
    const decision = classifyAnswer({ kind: "ok", body: JSON.parse(text), text }, ID, NOW);
    if (decision.kind !== "store") throw new Error(`expected store, got ${decision.kind}`);
    expect(JSON.stringify(decision.event)).toContain('"value":"Infinity"');
    expect(JSON.stringify(decision.event)).toContain("lap.value is not a finite number");
  });

  it("answers malformed, never throws, when interpreting the answer fails", () => {
    // A body too deep to serialize again (no text kept): the pass must go on.
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    const body = { ...transcriptionEvent(ID).data, analysis: deep };
    expect(classifyAnswer(ok(body), ID, NOW)).toMatchObject({ kind: "malformed" });
  });

  it.each(["initiated", "in-progress", "processing"])("retries a conversation that is %s", (status) => {
    expect(classifyAnswer(ok({ ...transcriptionEvent(ID).data, status }), ID, NOW)).toEqual({
      kind: "still_processing",
      status,
    });
  });

  it("records failed and 404 as final, 401/403 as configuration errors", () => {
    expect(classifyAnswer(ok({ conversation_id: ID, status: "failed" }), ID, NOW)).toEqual({
      kind: "failed",
    });
    expect(classifyAnswer({ kind: "not_found" }, ID, NOW)).toEqual({ kind: "not_found" });
    expect(classifyAnswer({ kind: "auth_failed", status: 403 }, ID, NOW)).toEqual({
      kind: "auth_error",
      status: 403,
    });
  });

  it("keeps a transient failure's Retry-After", () => {
    expect(
      classifyAnswer({ kind: "transient", reason: "HTTP 429", status: 429, retryAfterMs: 30_000 }, ID, NOW),
    ).toEqual({ kind: "transient", reason: "HTTP 429", retryAfterMs: 30_000 });
  });

  it.each([
    ["an unknown status", { conversation_id: ID, status: "archived" }, "answer.status must be one of"],
    ["no status", { conversation_id: ID }, "answer.status must be one of"],
    ["another conversation", { ...transcriptionEvent("conv_other").data }, "another conversation's id"],
    [
      "done without metadata",
      { conversation_id: ID, status: "done", transcript: [] },
      "data.metadata is required",
    ],
    ["a list", [], "answer "],
  ])("calls %s malformed, naming the field and never its value", (_label, body, problem) => {
    const decision = classifyAnswer(ok(body), ID, NOW);
    expect(decision.kind).toBe("malformed");
    expect(decision.kind === "malformed" && decision.problem).toContain(problem);
  });

  it("never throws, and stores only a done conversation with this id, whatever the body", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            conversation_id: fc.constantFrom(ID, "conv_other"),
            status: fc.constantFrom("done", "processing", "failed", "weird"),
            transcript: fc.oneof(fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 })),
            metadata: fc.oneof(fc.jsonValue(), fc.record({ start_time_unix_secs: fc.integer({ min: 0 }) })),
          }),
        ),
        (body) => {
          const decision = classifyAnswer(ok(body), ID, NOW);
          if (decision.kind === "store") {
            const b = body as Record<string, unknown>;
            expect(b.conversation_id).toBe(ID);
            expect(b.status).toBe("done");
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("retryDelayMs", () => {
  it("doubles from 5 minutes per attempt and stops at 6 hours", () => {
    expect([0, 1, 2, 3].map((a) => retryDelayMs(a))).toEqual([300_000, 600_000, 1_200_000, 2_400_000]);
    expect(retryDelayMs(7)).toBe(RETRY_CAP_MS);
    expect(retryDelayMs(1000)).toBe(RETRY_CAP_MS);
  });

  it("never retries sooner than Retry-After asks, nor later than the cap because of it", () => {
    expect(retryDelayMs(0, 60_000)).toBe(RETRY_BASE_MS);
    expect(retryDelayMs(0, 3_600_000)).toBe(3_600_000);
    expect(retryDelayMs(0, 10 * 86_400_000)).toBe(RETRY_CAP_MS);
  });
});

it("spreads conversations over every shard and keeps each one in its shard", () => {
  const shards = new Set(Array.from({ length: 200 }, (_, i) => reconcileShardOf(`conv_${i}`)));
  expect([...shards].sort()).toEqual(reconcileShards());
  expect(reconcileShardOf("conv_7")).toBe(reconcileShardOf("conv_7"));
});

/** A backlog in memory with the same conditional semantics as the DynamoDB one. */
const memoryBacklog = () => {
  const entries = new Map<string, { dueAtMs: number; attempts: number; outcome?: ReconcileOutcome }>();
  const finished = new Map<string, ReconcileOutcome | undefined>();
  const backlog = {
    entries,
    finished,
    async listDue(shard: string, nowMs: number, limit: number): Promise<DueEntry[]> {
      return [...entries]
        .filter(([id, e]) => reconcileShardOf(id) === shard && e.dueAtMs <= nowMs)
        .sort((a, b) => a[1].dueAtMs - b[1].dueAtMs)
        .slice(0, limit)
        .map(([conversationId, e]) => ({ conversationId, dueAtMs: e.dueAtMs }));
    },
    async claim(entry: DueEntry, leaseUntilMs: number): Promise<ClaimedConversation | null> {
      const e = entries.get(entry.conversationId);
      if (!e || e.dueAtMs !== entry.dueAtMs) return null;
      e.dueAtMs = leaseUntilMs;
      return { conversationId: entry.conversationId, attempts: e.attempts, leaseUntilMs };
    },
    async reschedule(c: ClaimedConversation, dueAtMs: number, countAttempt: boolean): Promise<boolean> {
      const e = entries.get(c.conversationId);
      if (!e || e.dueAtMs !== c.leaseUntilMs) return false;
      e.dueAtMs = dueAtMs;
      if (countAttempt) e.attempts += 1;
      return true;
    },
    async finish(c: ClaimedConversation, outcome: ReconcileOutcome | undefined): Promise<boolean> {
      entries.delete(c.conversationId);
      finished.set(c.conversationId, outcome);
      return true;
    },
    async transcriptStored(): Promise<boolean> {
      return false;
    },
  };
  return backlog;
};

describe("runReconcilePass", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const depsWith = (
    backlog: ReturnType<typeof memoryBacklog>,
    answer: (id: string) => Promise<ConversationAnswer>,
  ) => {
    const logger = captureLogger();
    const metrics = captureMetrics();
    const stored: string[] = [];
    const conversations = {
      getMeta: async () => null,
      appendMessages: async (id: string) => void stored.push(id),
      updateCallFacts: async () => undefined,
    } as unknown as ConversationStore;
    const deps: ReconcileDeps = {
      backlog: backlog as unknown as TranscriptBacklog,
      conversations,
      elevenlabs: { getConversation: answer },
      now: systemClock,
      logger,
      metrics,
    };
    return { deps, logger, metrics, stored };
  };

  it("handles the most overdue first, within the max count, and reports the backlog age", async () => {
    const backlog = memoryBacklog();
    for (let i = 0; i < 5; i++)
      backlog.entries.set(`conv_${i}`, { dueAtMs: NOW - (i + 1) * 60_000, attempts: 0 });
    backlog.entries.set("conv_future", { dueAtMs: NOW + 1, attempts: 0 });
    const seen: string[] = [];
    const { deps } = depsWith(backlog, async (id) => {
      seen.push(id);
      return { kind: "ok", body: { conversation_id: id, status: "processing" } };
    });
    const summary = await runReconcilePass(deps, { maxConversations: 3 });
    expect(seen).toEqual(["conv_4", "conv_3", "conv_2"]);
    expect(summary).toMatchObject({ handled: 3, deferred: 2, backlogAgeMs: 5 * 60_000 });
  });

  it("starts no new conversation once the time budget is used", async () => {
    const backlog = memoryBacklog();
    for (let i = 0; i < 4; i++) backlog.entries.set(`conv_${i}`, { dueAtMs: NOW - 1000 + i, attempts: 0 });
    const { deps } = depsWith(backlog, async (id) => {
      vi.advanceTimersByTime(4000); // ElevenLabs takes 4 s per answer
      return { kind: "ok", body: { conversation_id: id, status: "processing" } };
    });
    const summary = await runReconcilePass(deps, { budgetMs: 10_000 });
    expect(summary).toMatchObject({ handled: 3, deferred: 1, stoppedEarly: "time budget of 10000 ms used" });
  });

  it("backs off exponentially, honours Retry-After, stops on 429 and gives up after the last attempt", async () => {
    const backlog = memoryBacklog();
    backlog.entries.set("conv_a", { dueAtMs: NOW - 2, attempts: 2 });
    backlog.entries.set("conv_b", { dueAtMs: NOW - 1, attempts: 0 });
    const { deps, metrics } = depsWith(backlog, async (id) =>
      id === "conv_a"
        ? { kind: "transient", reason: "HTTP 503", status: 503 }
        : { kind: "transient", reason: "HTTP 429", status: 429, retryAfterMs: 7_200_000 },
    );
    const first = await runReconcilePass(deps);
    expect(first.results.map((r) => [r.conversationId, r.outcome, r.attempts])).toEqual([
      ["conv_a", "transient_error", 3],
      ["conv_b", "transient_error", 1],
    ]);
    expect(backlog.entries.get("conv_a")).toEqual({ dueAtMs: NOW + 4 * RETRY_BASE_MS, attempts: 3 });
    expect(backlog.entries.get("conv_b")).toEqual({ dueAtMs: NOW + 7_200_000, attempts: 1 });
    expect(first.stoppedEarly).toBe("ElevenLabs is rate limiting");

    backlog.entries.delete("conv_b");
    backlog.entries.set("conv_a", { dueAtMs: NOW, attempts: MAX_ATTEMPTS - 1 });
    const last = await runReconcilePass(deps);
    expect(last.results).toEqual([expect.objectContaining({ outcome: "gave_up", attempts: MAX_ATTEMPTS })]);
    expect(backlog.finished.get("conv_a")).toBe("gave_up");
    expect(metrics.counts).toMatchObject({ ReconcileTransientError: 2, ReconcileGaveUp: 1 });
  });

  it("hides a claimed entry for the lease, so a pass that dies mid-way leaves it due again later", async () => {
    const backlog = memoryBacklog();
    backlog.entries.set("conv_b", { dueAtMs: NOW, attempts: 0 });
    // ElevenLabs never answers and the pass is stuck (or killed) right after the claim.
    const { deps } = depsWith(backlog, () => new Promise<never>(() => undefined));
    void runReconcilePass(deps, { maxConversations: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(await backlog.listDue(reconcileShardOf("conv_b"), NOW + CLAIM_LEASE_MS - 1, 10)).toEqual([]);
    expect(await backlog.listDue(reconcileShardOf("conv_b"), NOW + CLAIM_LEASE_MS, 10)).toEqual([
      { conversationId: "conv_b", dueAtMs: NOW + CLAIM_LEASE_MS },
    ]);
  });

  it("keeps going after one conversation fails unexpectedly, and logs without contents", async () => {
    const backlog = memoryBacklog();
    backlog.entries.set("conv_a", { dueAtMs: NOW - 2, attempts: 0 });
    backlog.entries.set("conv_b", { dueAtMs: NOW - 1, attempts: 0 });
    const { deps, logger, stored } = depsWith(backlog, async (id) => ({
      kind: "ok",
      body: transcriptionEvent(id).data,
    }));
    backlog.claim = async (entry, lease) => {
      if (entry.conversationId === "conv_a")
        throw Object.assign(new Error("boom"), { name: "InternalServerError" });
      return { conversationId: entry.conversationId, attempts: 0, leaseUntilMs: lease };
    };
    const summary = await runReconcilePass(deps);
    expect(summary.results.map((r) => [r.conversationId, r.outcome, r.detail])).toEqual([
      ["conv_a", "error", "InternalServerError"],
      ["conv_b", "stored", undefined],
    ]);
    expect(stored).toEqual(["conv_b"]);
    expect(logger.text()).not.toContain("Caller asked about order");
    expect(logger.lines.find((l) => l.message.startsWith("Transcript reconciled"))?.data).toMatchObject({
      conversationId: "conv_b",
      outcome: "stored",
      lines: 3,
    });
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../../functions/core/clock.js";
import type { ConversationStore } from "../../../functions/core/conversation-store.js";
import type { TranscriptBacklog } from "../../../functions/core/transcript-backlog.js";
import { reconcileShardOf } from "../../../functions/core/transcript-backlog.js";
import { makeHandler } from "../../../functions/reconcile-transcripts/handler.js";
import { captureMetrics } from "../../support/live-fixtures.js";
import { captureLogger } from "../../support/log-capture.js";

const NOW = 1_800_000_000_000;

/** Due entries that ElevenLabs answers slowly (`answerMs` each), always "processing". */
const slowDeps = (ids: string[], answerMs: number) => {
  const metrics = captureMetrics();
  const publish = vi.fn();
  const backlog = {
    listDue: async (shard: string) =>
      ids
        .filter((id) => reconcileShardOf(id) === shard)
        .map((conversationId) => ({ conversationId, dueAtMs: NOW - 1 })),
    claim: async (entry: { conversationId: string }, leaseUntilMs: number) => ({
      conversationId: entry.conversationId,
      attempts: 0,
      leaseUntilMs,
    }),
    reschedule: async () => true,
    finish: async () => true,
    transcriptStored: async () => false,
  } as unknown as TranscriptBacklog;
  return {
    publish,
    metrics,
    deps: {
      backlog,
      conversations: {} as ConversationStore,
      elevenlabs: {
        getConversation: async (id: string) => {
          vi.advanceTimersByTime(answerMs);
          return { kind: "ok" as const, body: { conversation_id: id, status: "processing" } };
        },
      },
      now: systemClock,
      logger: captureLogger(),
      metrics: { ...metrics, publishStoredMetrics: publish },
    },
  };
};

describe("reconcile-transcripts handler (EventBridge schedule)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("leaves 40 s of the invocation for the conversation in flight, and returns the summary", async () => {
    const { deps, publish } = slowDeps(["conv_a", "conv_b", "conv_c"], 6000);
    const result = await makeHandler(deps)({}, { getRemainingTimeInMillis: () => 50_000 });
    expect(result).toMatchObject({
      read: 3,
      handled: 2,
      deferred: 1,
      stoppedEarly: "time budget of 10000 ms used",
    });
    expect(result).not.toHaveProperty("results");
    expect(publish).toHaveBeenCalledTimes(1);
  });

  it("publishes its metrics even when the pass fails, and fails the invocation (alarmed)", async () => {
    const { deps, publish } = slowDeps([], 0);
    (deps.backlog as { listDue: unknown }).listDue = async () => {
      throw new Error("DynamoDB unavailable");
    };
    await expect(makeHandler(deps)({}, { getRemainingTimeInMillis: () => 180_000 })).rejects.toThrow(
      "DynamoDB unavailable",
    );
    expect(publish).toHaveBeenCalledTimes(1);
  });
});

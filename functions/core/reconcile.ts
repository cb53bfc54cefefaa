import { MetricUnit } from "@aws-lambda-powertools/metrics";
import * as z from "zod/mini";
import type { Clock } from "./clock.js";
import type { ConversationStore } from "./conversation-store.js";
import type { ConversationAnswer, ConversationsClient } from "./elevenlabs-conversations.js";
import { storePostCallEvent } from "./post-call-api.js";
import { errorName, interpretPostCallEvent, type PostCallEvent } from "./post-call-payload.js";
import type { AppLogger, AppMetrics } from "./powertools.js";
import { RECONCILE_OUTCOMES, type ReconcileOutcomeKind } from "./reconcile-outcomes.js";
import { SecretNotConfiguredError } from "./secrets.js";
import {
  type ClaimedConversation,
  type DueEntry,
  reconcileShards,
  type TranscriptBacklog,
} from "./transcript-backlog.js";
import { formatIssues } from "./validation.js";

export { RECONCILE_OUTCOMES, type ReconcileOutcomeKind } from "./reconcile-outcomes.js";

/**
 * Reconciliation: a transcript is fetched when its webhook never came. A pass reads the due
 * entries of the awaiting-transcript index, claims each one (re-reading its meta: a webhook may
 * have just arrived), asks ElevenLabs for the conversation and stores a finished one through the
 * webhook's own interpretation and storage, so a webhook arriving later stores nothing twice.
 */

/** What a pass needs. Built once per container (Lambda) or once per process (local). */
export interface ReconcileDeps {
  readonly backlog: TranscriptBacklog;
  readonly conversations: ConversationStore;
  readonly elevenlabs: ConversationsClient;
  readonly now: Clock;
  readonly logger: AppLogger;
  readonly metrics: AppMetrics;
}

/** Limits of one pass. */
export interface PassOptions {
  /** Conversations handled at most. @default 50 */
  readonly maxConversations?: number;
  /** No new conversation is started after this long. @default 120 000 ms */
  readonly budgetMs?: number;
}

/** First retry delay after a transient failure; doubles per attempt. */
export const RETRY_BASE_MS = 5 * 60_000;
/** Longest wait between two attempts (also caps a Retry-After). */
export const RETRY_CAP_MS = 6 * 60 * 60_000;
/** Attempts (still processing, transient failures, malformed answers) before giving up: about 1.5 days. */
export const MAX_ATTEMPTS = 12;
/**
 * How long a claimed entry is hidden from other passes while this one works on it. Longer than
 * one conversation can take (fetch timeout plus storage retries), so a pass that dies mid-way
 * leaves the entry due again after this, never lost.
 */
export const CLAIM_LEASE_MS = 10 * 60_000;

/** ElevenLabs' conversation statuses (`GetConversationResponseModelStatus`). */
const STATUSES = ["initiated", "in-progress", "processing", "done", "failed"] as const;

/** Just enough of `GET /v1/convai/conversations/{id}` to decide; a `done` one is then read as a webhook's `data`. */
const answerSchema = z.looseObject({
  conversation_id: z.string(),
  status: z.enum(STATUSES),
});

/** What ElevenLabs' answer means for a conversation. Pure. */
export type Decision =
  | { readonly kind: "store"; readonly event: Extract<PostCallEvent, { kind: "transcription" }> }
  | { readonly kind: "still_processing"; readonly status: string }
  | { readonly kind: "not_found" }
  | { readonly kind: "failed" }
  | { readonly kind: "auth_error"; readonly status: number }
  | { readonly kind: "transient"; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: "malformed"; readonly problem: string };

/**
 * Classifies ElevenLabs' answer. A `done` conversation is wrapped as the `post_call_transcription`
 * event ElevenLabs would have sent (its JSON is the webhook's `data`) and interpreted by the
 * webhook's own code; anything not in the documented shape is `malformed` (retried, never stored
 * half). Problems name fields, never values, so they can be logged.
 */
export const classifyAnswer = (
  answer: ConversationAnswer,
  conversationId: string,
  nowMs: number,
): Decision => {
  switch (answer.kind) {
    case "not_found":
      return { kind: "not_found" };
    case "auth_failed":
      return { kind: "auth_error", status: answer.status };
    case "transient":
      return {
        kind: "transient",
        reason: answer.reason,
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    case "malformed":
      return { kind: "malformed", problem: answer.problem };
    case "ok":
      break;
  }
  const parsed = answerSchema.safeParse(answer.body);
  if (!parsed.success)
    return { kind: "malformed", problem: formatIssues(parsed.error.issues, "answer").slice(0, 5).join("; ") };
  if (parsed.data.conversation_id !== conversationId)
    return { kind: "malformed", problem: "answer.conversation_id is another conversation's id" };
  const { status } = parsed.data;
  if (status === "failed") return { kind: "failed" };
  if (status !== "done") return { kind: "still_processing", status };
  // The webhook's envelope around ElevenLabs' exact text, so the webhook's interpretation sees the
  // same JSON (1e400 included) and the storable module replaces and notes what it would there.
  let event: PostCallEvent;
  try {
    const data = answer.text ?? JSON.stringify(answer.body);
    const eventTimestamp = Math.floor(nowMs / 1000);
    event = interpretPostCallEvent(
      `{"type":"post_call_transcription","event_timestamp":${eventTimestamp},"data":${data}}`,
      nowMs,
    );
  } catch (error) {
    // Nothing a payload holds may stop the pass: retried later like any other malformed answer.
    return { kind: "malformed", problem: `interpretation failed: ${errorName(error)}` };
  }
  if (event.kind !== "transcription")
    return { kind: "malformed", problem: event.kind === "unusable" ? event.problem : event.kind };
  return { kind: "store", event };
};

/**
 * When to try again after `attempts` earlier transient failures: 5 min, 10 min, 20 min, ... up to
 * 6 h, and never sooner than a Retry-After ElevenLabs sent (capped at 6 h as well).
 */
export const retryDelayMs = (attempts: number, retryAfterMs?: number): number => {
  const backoff = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, Math.min(attempts, 20)));
  return Math.max(backoff, Math.min(retryAfterMs ?? 0, RETRY_CAP_MS));
};

/** The result of one conversation, as the log line and `npm run reconcile` show it. */
export interface ConversationResult {
  readonly conversationId: string;
  readonly outcome: ReconcileOutcomeKind;
  /** Attempts counted so far, after this one. */
  readonly attempts: number;
  /** When it is due again (retried outcomes). */
  readonly nextDueAt?: string;
  /** Content-free detail: the status, HTTP code, timeout, or which field was wrong. */
  readonly detail?: string;
  /** Transcript lines stored (`stored`). */
  readonly lines?: number;
}

/** What a pass did. */
export interface PassSummary {
  /** Entries the index queries returned (only due entries are ever read). */
  readonly read: number;
  readonly handled: number;
  /** Due entries left for the next pass (budget, max count, or an early stop). */
  readonly deferred: number;
  /** How overdue the oldest due entry was when the pass started; 0 when nothing was due. */
  readonly backlogAgeMs: number;
  readonly counts: Readonly<Partial<Record<ReconcileOutcomeKind, number>>>;
  /** Why the pass stopped before the end (an auth error or rate limiting affects every request). */
  readonly stoppedEarly?: string;
  readonly results: readonly ConversationResult[];
}

/**
 * One reconciliation pass. Reads each shard's due entries (oldest first), handles at most
 * `maxConversations` within `budgetMs`, one at a time, and never throws for one conversation.
 * Emits one metric per outcome and the backlog age; the caller publishes them.
 */
export const runReconcilePass = async (
  deps: ReconcileDeps,
  options: PassOptions = {},
): Promise<PassSummary> => {
  const max = options.maxConversations ?? 50;
  const budgetMs = options.budgetMs ?? 120_000;
  const startedMs = deps.now();
  const perShard = await Promise.all(
    reconcileShards().map((shard) => deps.backlog.listDue(shard, startedMs, max)),
  );
  const read = perShard.reduce((sum, entries) => sum + entries.length, 0);
  const due = perShard.flat().sort((a, b) => a.dueAtMs - b.dueAtMs);
  const backlogAgeMs = due[0] ? Math.max(0, startedMs - due[0].dueAtMs) : 0;
  deps.metrics.addMetric("ReconcileBacklogAgeMs", MetricUnit.Milliseconds, backlogAgeMs);
  deps.metrics.addMetric("ReconcileDue", MetricUnit.Count, due.length);

  const results: ConversationResult[] = [];
  let stoppedEarly: string | undefined;
  for (const entry of due.slice(0, max)) {
    if (deps.now() - startedMs >= budgetMs) {
      stoppedEarly = `time budget of ${budgetMs} ms used`;
      break;
    }
    const result = await reconcileConversation(deps, entry);
    results.push(result);
    if (result.outcome === "auth_error") {
      stoppedEarly = "ElevenLabs refused the API key";
      break;
    }
    if (result.outcome === "transient_error" && result.detail === "HTTP 429") {
      stoppedEarly = "ElevenLabs is rate limiting";
      break;
    }
  }
  const counts: Partial<Record<ReconcileOutcomeKind, number>> = {};
  for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  const summary: PassSummary = {
    read,
    handled: results.length,
    deferred: due.length - results.length,
    backlogAgeMs,
    counts,
    ...(stoppedEarly ? { stoppedEarly } : {}),
    results,
  };
  deps.logger.info("Reconciliation pass finished", {
    read,
    handled: summary.handled,
    deferred: summary.deferred,
    backlogAgeMs,
    counts,
    ...(stoppedEarly ? { stoppedEarly } : {}),
  });
  return summary;
};

/**
 * Reconciles one due entry: claim (re-reading the meta), fetch, decide, then store, record or
 * reschedule. Logs one line and counts one metric; never throws.
 */
export const reconcileConversation = async (
  deps: ReconcileDeps,
  entry: DueEntry,
): Promise<ConversationResult> => {
  const result = await attempt(deps, entry).catch(
    (error: unknown): ConversationResult => ({
      conversationId: entry.conversationId,
      outcome: "error",
      attempts: 0,
      detail: error instanceof Error ? error.name : "Error",
    }),
  );
  const spec = RECONCILE_OUTCOMES[result.outcome];
  deps.logger[spec.level](spec.message, { ...result });
  deps.metrics.addMetric(spec.metric, MetricUnit.Count, 1);
  return result;
};

const attempt = async (deps: ReconcileDeps, entry: DueEntry): Promise<ConversationResult> => {
  const { conversationId } = entry;
  const claimed = await deps.backlog.claim(entry, deps.now() + CLAIM_LEASE_MS);
  if (!claimed) return { conversationId, outcome: "skipped", attempts: 0 };
  const base = { conversationId, attempts: claimed.attempts };
  // A new session window after the transcript was stored puts it back in the index: nothing to fetch.
  if (claimed.outcome === "transcript_stored") {
    await deps.backlog.finish(claimed, undefined, deps.now());
    return { ...base, outcome: "already_stored" };
  }

  const decision = classifyAnswer(await fetchAnswer(deps, conversationId), conversationId, deps.now());
  switch (decision.kind) {
    case "store": {
      // The last check before writing: the webhook may have landed while ElevenLabs answered.
      if (await deps.backlog.transcriptStored(conversationId)) {
        return { ...base, outcome: "already_stored" };
      }
      try {
        // The webhook's own storage: same keys, and it takes the entry out of the backlog.
        await storePostCallEvent(deps, decision.event);
      } catch (error) {
        // The lease expires and the entry is due again: nothing half-done is lost.
        return { ...base, outcome: "store_failed", detail: error instanceof Error ? error.name : "Error" };
      }
      return { ...base, outcome: "stored", lines: decision.event.messages.length - 1 };
    }
    case "not_found":
    case "failed":
      if (!(await deps.backlog.finish(claimed, decision.kind, deps.now()))) return changed(base);
      return { ...base, outcome: decision.kind };
    case "auth_error": {
      // A configuration problem, not the conversation's: retried without using up its attempts.
      const dueAtMs = deps.now() + retryDelayMs(claimed.attempts);
      await deps.backlog.reschedule(claimed, dueAtMs, false, `auth HTTP ${decision.status}`);
      return { ...base, outcome: "auth_error", nextDueAt: iso(dueAtMs), detail: `HTTP ${decision.status}` };
    }
    case "still_processing":
      return retryLater(deps, claimed, "still_processing", decision.status);
    case "transient":
      return retryLater(deps, claimed, "transient_error", decision.reason, decision.retryAfterMs);
    case "malformed":
      return retryLater(deps, claimed, "malformed_answer", decision.problem);
  }
};

const fetchAnswer = async (deps: ReconcileDeps, conversationId: string): Promise<ConversationAnswer> => {
  try {
    return await deps.elevenlabs.getConversation(conversationId);
  } catch (error) {
    // The key could not be read: a missing secret is configuration, anything else is transient.
    if (error instanceof SecretNotConfiguredError) return { kind: "auth_failed", status: 0 };
    return {
      kind: "transient",
      reason: `API key unavailable (${error instanceof Error ? error.name : "Error"})`,
    };
  }
};

const retryLater = async (
  deps: ReconcileDeps,
  claimed: ClaimedConversation,
  outcome: "still_processing" | "transient_error" | "malformed_answer",
  detail: string,
  retryAfterMs?: number,
): Promise<ConversationResult> => {
  const attempts = claimed.attempts + 1;
  const nowMs = deps.now();
  const base = { conversationId: claimed.conversationId, attempts: claimed.attempts };
  if (attempts >= MAX_ATTEMPTS) {
    if (!(await deps.backlog.finish(claimed, "gave_up", nowMs))) return changed(base);
    return {
      conversationId: claimed.conversationId,
      outcome: "gave_up",
      attempts,
      detail: `${outcome}: ${detail}`,
    };
  }
  const dueAtMs = nowMs + retryDelayMs(claimed.attempts, retryAfterMs);
  if (!(await deps.backlog.reschedule(claimed, dueAtMs, true, `${outcome}: ${detail}`))) return changed(base);
  return { conversationId: claimed.conversationId, outcome, attempts, nextDueAt: iso(dueAtMs), detail };
};

/**
 * The lease was lost while ElevenLabs answered: a new session window (which sets its own due
 * time) or a webhook changed the entry, and what they wrote wins.
 */
const changed = (base: { conversationId: string; attempts: number }): ConversationResult => ({
  ...base,
  outcome: "skipped",
  detail: "changed while ElevenLabs answered (a new session window or a webhook)",
});

const iso = (ms: number) => new Date(ms).toISOString();
